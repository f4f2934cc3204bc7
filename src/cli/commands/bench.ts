/**
 * `shadowfs bench MOUNTPOINT --preset NAME`: runs a preset's fio jobs (fixtures/fio/presets/)
 * against a running mount and prints IOPS, bandwidth, p50/p99 latency and which tier served the
 * reads (from the mount's status before and after each job).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { controlRequest, staleMountMessage } from '../../control/control-client';
import type { StatusReport } from '../../control/protocol';
import { fuseMountsAt, meansDaemonGone } from '../../fuse/mount-table';
import { formatBenchTable, formatJobLine } from '../../bench/bench-table';
import { fioVersion } from '../../bench/fio-process';
import { PRESET_NAMES, PRESETS, PresetName } from '../../bench/presets';
import { runPreset } from '../../bench/run-preset';
import { ShadowfsError, errorCode } from '../../util/errors';
import { formatBytes, parseBytes } from '../../util/units';

export interface BenchArgs {
  mountpoint: string;
  preset: PresetName;
  size?: string;
  runtime?: string;
  'keep-files': boolean;
  json: boolean;
}

const MIN_SIZE_BYTES = 1024 * 1024;

/** The mount point must exist and be a shadowfs mount; says which it is not, on one line. */
async function checkShadowfsMount(mountpoint: string): Promise<void> {
  try {
    if (!fs.statSync(mountpoint).isDirectory()) throw new ShadowfsError(`${mountpoint} is not a directory, so not a mount point`);
  } catch (err) {
    if (err instanceof ShadowfsError) throw err;
    if (errorCode(err) === 'ENOENT') throw new ShadowfsError(`no such mount point: ${mountpoint}`);
    if (meansDaemonGone(err)) {
      const type = (await fuseMountsAt(mountpoint)).at(-1);
      throw new ShadowfsError(type === 'fuse.shadowfs' ? staleMountMessage(mountpoint) : `${mountpoint} is not a shadowfs mount (it is ${type ?? 'a FUSE mount'}, and its daemon is gone)`);
    }
    throw new ShadowfsError(`${mountpoint}: ${errorCode(err) ?? (err as Error).message}`);
  }
  const types = await fuseMountsAt(mountpoint);
  if (types.length === 0) throw new ShadowfsError(`${mountpoint} is not a mount point (mount shadowfs there first)`);
  if (!types.includes('fuse.shadowfs')) throw new ShadowfsError(`${mountpoint} is not a shadowfs mount (it is ${types[types.length - 1]})`);
}

/** `--runtime N`: whole seconds, at least 1 (fio's runtime= takes no fractions). */
function parseRuntimeSeconds(given: string): number {
  const seconds = /^\s*\d+\s*$/.test(given) ? Number(given) : NaN;
  if (!(Number.isSafeInteger(seconds) && seconds >= 1)) throw new ShadowfsError(`--runtime "${given}": expected whole seconds per job, at least 1 (e.g. --runtime 30)`);
  return seconds;
}

export const benchCommand: CommandModule<object, BenchArgs> = {
  command: 'bench <mountpoint>',
  describe: 'Run a fio preset against a mount: IOPS, bandwidth, p50/p99 latency, reads served by each tier',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'A running shadowfs mount' })
    .option('preset', {
      choices: PRESET_NAMES,
      demandOption: true,
      describe: `The workload: ${PRESET_NAMES.map((n) => `${n} (${PRESETS[n].describe}; default ${formatBytes(PRESETS[n].defaultSizeBytes)}, ${PRESETS[n].defaultRuntimeSeconds} s per job)`).join('; ')}`,
    })
    .option('size', { type: 'string', describe: 'Bytes of the file (of the file set, for zipf), e.g. 256MiB' })
    // A string, parsed below: yargs' number type turns "abc" into NaN, and the message could only show that.
    .option('runtime', { type: 'string', requiresArg: true, describe: 'Seconds per job (shift runs three jobs, seq and rand two)' })
    .option('keep-files', { type: 'boolean', default: false, describe: 'Leave the files in MOUNTPOINT/.shadowfs-bench/ (a rerun skips laying them out)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' })
    .example('$0 bench /mnt/app --preset zipf', '')
    .example('$0 bench /mnt/app --preset rand --size 8MiB --runtime 2 --json', '') as unknown as Argv<BenchArgs>,
  handler: async (args) => {
    const mountpoint = path.resolve(args.mountpoint);
    const preset = PRESETS[args.preset];
    const sizeBytes = args.size === undefined ? preset.defaultSizeBytes : parseBytes(args.size, '--size');
    if (sizeBytes < MIN_SIZE_BYTES) throw new ShadowfsError(`--size ${args.size}: at least 1MiB`);
    const runtimeSeconds = args.runtime === undefined ? preset.defaultRuntimeSeconds : parseRuntimeSeconds(args.runtime);
    await checkShadowfsMount(mountpoint);
    const version = fioVersion();
    const status = async (): Promise<StatusReport> => (await controlRequest(mountpoint, { command: 'status' })) as StatusReport;

    const err = process.stderr;
    let lineOpen = false;
    // Ctrl-C or SIGTERM: stop fio, remove the files, exit 130 (not die with files left in the mount).
    const abort = new AbortController();
    const onSignal = (): void => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const report = await runPreset({
      mountpoint, preset, fioVersion: version, sizeBytes, runtimeSeconds, keepFiles: args['keep-files'], status, abort: abort.signal,
      onJobStart: (i, n, name) => {
        if (!err.isTTY) return;
        err.write(`[${i + 1}/${n}] ${name}: running (${runtimeSeconds} s, plus laying out files the first time)`);
        lineOpen = true;
      },
      onJobDone: (i, n, job) => {
        err.write(`${lineOpen ? '\r\x1b[K' : ''}[${i + 1}/${n}] ${formatJobLine(job)}\n`);
        lineOpen = false;
      },
    }).finally(() => {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      // A failed job leaves its "running" line open: the error goes on a line of its own.
      if (lineOpen) err.write('\n');
    });
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : formatBenchTable(report) + '\n');
  },
};
