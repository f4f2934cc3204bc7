/** `shadowfs scrub MOUNTPOINT`: verify every shadow copy against its checksum, repairing what fails. */
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import type { ScrubProgress } from '../../shadow/scrubber';
import { formatBytes } from '../../util/units';
import { progress } from '../progress';

export interface ScrubArgs {
  mountpoint: string;
  json: boolean;
}

export const scrubCommand: CommandModule<object, ScrubArgs> = {
  command: 'scrub <mountpoint>',
  describe: 'Read every shadow copy and check it against its checksum; bad copies are dropped and made again',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'A running shadowfs mount' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the summary as JSON' }) as unknown as Argv<ScrubArgs>,
  handler: async (args) => {
    const bar = args.json ? undefined : progress('scrub', { interruptNote: `the scrub goes on in the mount; \`shadowfs scrub ${args.mountpoint}\` follows it again` });
    const poll = setInterval(() => {
      controlRequest(args.mountpoint, { command: 'scrub-progress' }, 5_000)
        .then((p) => {
          const s = p as ScrubProgress;
          if (s.running) bar?.update(s.checkedCopies, s.totalCopies, `${formatBytes(s.checkedBytes)}, ${s.badCopies} bad`);
        })
        .catch(() => undefined);
    }, 250);
    let result: ScrubProgress;
    try {
      result = (await controlRequest(args.mountpoint, { command: 'scrub' }, 24 * 3600 * 1000)) as ScrubProgress;
    } finally {
      clearInterval(poll);
      bar?.stop();
    }
    if (args.json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    const secs = ((result.finishedAtMs ?? 0) - (result.startedAtMs ?? 0)) / 1000;
    process.stdout.write(`scrub: ${result.checkedCopies} copies (${formatBytes(result.checkedBytes)}) checked in ${secs.toFixed(1)} s: ` +
      `${result.badCopies} bad (dropped, to be copied again), ${result.checksumsAdded} checksums added\n`);
  },
};
