/**
 * `shadowfs replay`: run placement policies over a block trace in virtual time and compare them
 * (fast-tier miss ratio, promotion traffic, forecast quality). No mount, no I/O beyond reading
 * the trace: the same planner and prediction engine a mount uses, fed from the trace.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Argv, CommandModule } from 'yargs';
import { formatReport } from '../../sim/report';
import { parseCapacity, POLICY_NAMES, replayFile, type PolicyName, type ReplayReport } from '../../sim/replay';
import { DEFAULT_IOLOG_STEP_US, TRACE_FORMATS, type TraceFormat } from '../../sim/trace-reader';
import { ShadowfsError } from '../../util/errors';
import { parseBytes } from '../../util/units';
import { progress, type Progress } from '../progress';

export interface ReplayArgs {
  trace: string;
  format?: string;
  extent: string;
  capacity: string;
  policy: string;
  'iolog-step-us': number;
  json: boolean;
}

const POLICY_CHOICES = [...POLICY_NAMES, 'all'];

export const replayCommand: CommandModule<{}, ReplayArgs> = {
  command: 'replay',
  describe: 'Replay a block trace offline and compare placement policies (miss ratio, promotion traffic, forecast MASE)',
  builder: (y) =>
    y
      .option('trace', { type: 'string', demandOption: true, describe: 'Trace file (plain or .gz); read as a stream, never loaded whole' })
      .option('format', {
        type: 'string',
        choices: TRACE_FORMATS as string[],
        describe:
          'csv: timestamp_us,offset_bytes,size_bytes,op (op R|W); msr: SNIA/MSR Cambridge Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime (Windows filetime); fio-iolog: fio "version 2 iolog" (no timestamps: line order). Default: detected from the first line',
      })
      .option('extent', { type: 'string', default: '1MiB', describe: 'Extent size: the unit of placement, heat and copying' })
      .option('capacity', { type: 'string', default: '10%', describe: 'Fast-tier size: a share of the trace footprint (distinct extents read or written), e.g. 10%, or a size, e.g. 256MiB' })
      .option('policy', { type: 'string', default: 'all', choices: POLICY_CHOICES, describe: 'predictive (the prediction engine + planner), lru, arc (the yardsticks), belady (MIN: optimal without prefetch), or all' })
      .option('iolog-step-us', { type: 'number', default: DEFAULT_IOLOG_STEP_US, describe: 'fio-iolog only: virtual microseconds between consecutive I/Os' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the results as JSON instead of a table' })
      .example('$0 replay --trace fixtures/traces/sample.csv', 'all policies, fast tier = 10% of the footprint')
      .example('$0 replay --trace hm_0.csv.gz --format msr --capacity 256MiB --policy predictive', 'one MSR Cambridge volume, a 256 MiB fast tier')
      .example('$0 replay --trace job.iolog --format fio-iolog --extent 4MiB --policy lru', 'a fio iolog in line order')
      .epilog(
        'Miss ratio: share of demand accesses not served by the fast tier, counting consecutive accesses to the same extent once. ' +
          'Copies/access: extent copies into the fast tier (demand fills, readahead, pre-staging) per demand access. ' +
          'MASE: the volume IOPS forecast error over a seasonal-naive forecast on the same series, at 1 min / 10 min / 1 h (below 1 = better than seasonal naive).',
      ) as unknown as Argv<ReplayArgs>,
  handler: async (args) => {
    const extentSizeBytes = parseBytes(args.extent, '--extent');
    if (extentSizeBytes < 4096) throw new ShadowfsError(`--extent: must be at least 4KiB, got ${args.extent}`);
    const capacity = parseCapacity(args.capacity);
    if ('bytes' in capacity && capacity.bytes < extentSizeBytes) {
      throw new ShadowfsError(`--capacity: ${args.capacity} is smaller than one extent (${args.extent})`);
    }
    if (!POLICY_CHOICES.includes(args.policy)) throw new ShadowfsError(`--policy: expected one of ${POLICY_CHOICES.join(', ')}, got ${args.policy}`);
    const policies: PolicyName[] = args.policy === 'all' ? [...POLICY_NAMES] : [args.policy as PolicyName];
    if (!(args['iolog-step-us'] > 0)) throw new ShadowfsError(`--iolog-step-us: must be positive, got ${args['iolog-step-us']}`);
    const format = (args.format as TraceFormat | undefined) ?? (await detectFormat(args.trace));

    const bar: Progress | undefined = process.stderr.isTTY ? progress('replay') : undefined;
    let report: ReplayReport;
    try {
      report = await replayFile(args.trace, format, {
        extentSizeBytes,
        capacity,
        policies,
        reader: { iologStepUs: args['iolog-step-us'] },
        onLoadProgress: (s) => bar?.update(s.bytesRead, s.totalBytes, 'reading trace'),
        onProgress: (phase, done, total) => bar?.update(done, total, phase),
      });
    } finally {
      bar?.stop();
    }
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report, args.trace)}\n`);
  },
};

/** Guess the format from the first non-empty line (decompressing a .gz on the fly). */
export async function detectFormat(file: string): Promise<TraceFormat> {
  try {
    await fs.access(file);
  } catch (err) {
    throw new ShadowfsError(`cannot read trace ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const raw = createReadStream(file, { end: 1 << 20 });
  const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  input.on('error', () => undefined); // a truncated .gz: the replay itself reports it
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let first = '';
  try {
    for await (const line of rl) {
      if (line.trim() === '') continue;
      first = line.trim();
      break;
    }
  } catch {
    // unreadable start: fall through to the default and let the reader give the real error
  } finally {
    rl.close();
    raw.destroy();
  }
  if (first.startsWith('fio version')) return 'fio-iolog';
  const fields = first.split(',');
  if (fields.length === 7 || fields[0] === 'Timestamp') return 'msr';
  return 'csv';
}
