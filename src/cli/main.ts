/**
 * The shadowfs command line. User errors (ShadowfsError) print one line and exit 1; anything else
 * is a bug and says so, with the stack only under SHADOWFS_DEBUG.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ShadowfsError, errorCode } from '../util/errors';
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

const COMMANDS = [
  mountCommand, unmountCommand, statusCommand, whichTierCommand, scrubCommand, tierCommand, replayCommand, benchCommand,
  pinCommand, unpinCommand, hintCommand, promoteCommand, demoteCommand, reloadCommand, forecastCommand, healthCommand,
  failoverCommand, failbackCommand,
];

/** Where a command line that does not parse is pointed: the help of its command, when it names one. */
function helpFor(argv: string[]): string {
  const first = argv.find((a) => !a.startsWith('-'));
  const names = COMMANDS.flatMap((c) => [String(c.command).split(' ')[0], ...[c.aliases ?? []].flat()]);
  return first !== undefined && names.includes(first) ? `shadowfs ${first} --help` : 'shadowfs --help';
}

/** For bug reports: the version of the tree bin/shadowfs runs (this file is dist/src/cli/main.js). */
function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[]): Promise<void> {
  let y = yargs(argv)
    .scriptName('shadowfs')
    .usage('$0 <command> [options]\n\nA FUSE filesystem that keeps a predictive, tiered shadow of a live volume.');
  for (const c of COMMANDS) y = y.command(c as unknown as CommandModule);
  await y
    .demandCommand(1, 'Give a command.')
    // One spelling per option (--extent-size), so "unknown argument" names it once.
    .parserConfiguration({ 'camel-case-expansion': false })
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      // yargs' own parse errors (YError: "Not enough arguments following: capacity") are usage
      // errors like the ones it reports by message alone; any other error is the handler's.
      if (err && err.name !== 'YError') throw err;
      process.stderr.write(`shadowfs: ${msg ?? err?.message}\n(see: ${helpFor(argv)})\n`);
      process.exit(2);
    })
    .parseAsync();
}

export function runCli(): void {
  // `shadowfs status | head`: the reader has what it wanted; not a crash with a stack trace.
  process.stdout.on('error', (err) => {
    if (errorCode(err) === 'EPIPE') process.exit(0);
    process.stderr.write(`shadowfs: cannot write the output: ${errorCode(err) ?? err.message}\n`);
    process.exit(1);
  });
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
