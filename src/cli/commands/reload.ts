/**
 * `shadowfs reload MOUNTPOINT`: have a mount re-read its config file now (it also does so on its
 * own when the file changes) and say what changed, or why the file was refused (exit 1).
 */
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import { ReloadReport } from '../../control/protocol';
import { ShadowfsError } from '../../util/errors';

export interface ReloadArgs {
  mountpoint: string;
  json: boolean;
}

/** Removing a tier drains it before the reply; a long drain must not look like a dead mount. */
const RELOAD_TIMEOUT_MS = 24 * 3600 * 1000;

function formatApplied(r: ReloadReport): string {
  if (r.changes.length === 0) return `${r.file}: reloaded, nothing changed`;
  return [`${r.file}: reloaded`, ...r.changes.map((c) => `  ${c}`)].join('\n');
}

export const reloadCommand: CommandModule<object, ReloadArgs> = {
  command: 'reload <mountpoint>',
  describe: 'Re-read the mount\'s config file now: apply what can change live, or refuse it (exit 1) with the reason',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'A running shadowfs mount' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the outcome as JSON (still exit 1 when refused)' })
    .example('$0 reload /mnt/app', 'after editing the file given to mount --config') as unknown as Argv<ReloadArgs>,
  handler: async (args) => {
    const r = (await controlRequest(args.mountpoint, { command: 'reload' }, RELOAD_TIMEOUT_MS)) as ReloadReport;
    if (args.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    if (!r.accepted) {
      const applied = r.changes.length > 0 ? ` (applied before that: ${r.changes.join('; ')})` : ', the old settings are kept';
      throw new ShadowfsError(`reload of ${r.file} refused${applied}: ${r.reason ?? ''}`);
    }
    if (!args.json) process.stdout.write(formatApplied(r) + '\n');
  },
};
