/** `shadowfs which-tier PATH`: where each extent of a file lives. */
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import { WhichTierReport } from '../../control/protocol';
import { findMountOf } from '../../fuse/mount-table';
import { ShadowfsError } from '../../util/errors';

export interface WhichTierArgs {
  path: string;
  mount?: string;
  json: boolean;
}

export const whichTierCommand: CommandModule<object, WhichTierArgs> = {
  command: 'which-tier <path>',
  describe: 'Show where each extent of a file lives (fresh and stale copies per tier)',
  builder: (y) => y
    .positional('path', { type: 'string', demandOption: true, describe: 'A file inside a shadowfs mount' })
    .option('mount', { type: 'string', describe: 'The mount point (default: the shadowfs mount holding PATH)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' }) as unknown as Argv<WhichTierArgs>,
  handler: async (args) => {
    const abs = path.resolve(args.path);
    const mount = args.mount ? path.resolve(args.mount) : await findMountOf(abs);
    if (!mount) throw new ShadowfsError(`${args.path} is not inside a shadowfs mount`);
    const r = (await controlRequest(mount, { command: 'which-tier', path: abs })) as WhichTierReport;
    if (args.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return;
    }
    process.stdout.write(`${r.path}: ${r.sizeBytes} bytes, ${r.extents.length} extents of ${r.extentSizeBytes} bytes\n`);
    for (const e of r.extents) {
      process.stdout.write(`  #${String(e.index).padEnd(6)} gen ${String(e.generation).padEnd(6)} ${e.fresh.length ? e.fresh.join(', ') : 'live only'}${e.stale.length ? `  (stale: ${e.stale.join(', ')})` : ''}\n`);
    }
  },
};
