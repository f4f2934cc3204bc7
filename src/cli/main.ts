/**
 * The shadowfs command line. User errors (ShadowfsError) print one line and exit 1; anything else
 * is a bug and says so, with the stack only under SHADOWFS_DEBUG.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ShadowfsError } from '../util/errors';
import { mountCommand } from './commands/mount';
import { unmountCommand } from './commands/unmount';
import { statusCommand } from './commands/status';
import { whichTierCommand } from './commands/which-tier';
import { scrubCommand } from './commands/scrub';
import { tierCommand } from './commands/tier';
import { replayCommand } from './commands/replay';
import { benchCommand } from './commands/bench';
import { demoteCommand, hintCommand, pinCommand, promoteCommand, unpinCommand } from './commands/placement';
import { reloadCommand } from './commands/reload';
import { forecastCommand } from './commands/forecast';
import { failbackCommand, failoverCommand, healthCommand } from './commands/health';

export async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('shadowfs')
    .usage('$0 <command> [options]\n\nA FUSE filesystem that keeps a predictive, tiered shadow of a live volume.')
    .command(mountCommand)
    .command(unmountCommand)
    .command(statusCommand)
    .command(whichTierCommand)
    .command(scrubCommand)
    .command(tierCommand)
    .command(replayCommand)
    .command(benchCommand)
    .command(pinCommand)
    .command(unpinCommand)
    .command(hintCommand)
    .command(promoteCommand)
    .command(demoteCommand)
    .command(reloadCommand)
    .command(forecastCommand)
    .command(healthCommand)
    .command(failoverCommand)
    .command(failbackCommand)
    .demandCommand(1, 'Give a command; see --help.')
    // One spelling per option (--extent-size), so "unknown argument" names it once.
    .parserConfiguration({ 'camel-case-expansion': false })
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`shadowfs: ${msg}\n(see: shadowfs --help)\n`);
      void y;
      process.exit(2);
    })
    .parseAsync();
}

export function runCli(): void {
  main(hideBin(process.argv)).catch((err: unknown) => {
    if (err instanceof ShadowfsError) {
      process.stderr.write(`shadowfs: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    const e = err as Error;
    process.stderr.write(`shadowfs: internal error: ${e?.message ?? String(err)}\n`);
    if (process.env.SHADOWFS_DEBUG) process.stderr.write(`${e?.stack}\n`);
    process.exit(70);
  });
}
