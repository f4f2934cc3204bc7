/**
 * `node dist/src/bench/report.js RESULTS_DIR`: the benchmark table, as Markdown, from the files
 * bench/run-bench.sh leaves in RESULTS_DIR:
 *
 *   run.json                                    when, where and with which parameters
 *   <job>.nj<N>.<target>.r<K>.fio.json          fio --output-format=json of one run (round K)
 *   <job>.nj<N>.<target>.r<K>.error             why a run has no result (mount failed, fio failed)
 *   <job>.nj<N>.<target>.r<K>.daemon.json       {pid, vmRssKiB, vmHwmKiB} of the FUSE daemon, after the run
 *   <job>.nj<N>.shadowfs.r<K>.status.json       `shadowfs status --json` after the run
 *   <job>.nj<N>.shadowfs.r<K>.extents.json      src/bench/extent-meta.ts after the unmount
 * (results of runs before rounds existed have no `.r<K>`: read as one round).
 *
 * Ratios are of IOPS; within a row every target ran the same block size, so they are also the
 * bandwidth ratios. With several rounds, a row's ratio is the median of the rounds' ratios: each
 * round ran the targets back to back, so a ratio compares runs minutes apart at most, and the
 * machine's drift over the whole bench (on a shared VM, tens of percent) cancels out of it. The
 * IOPS, bandwidth and latency shown for a target are those of its median run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FioSummary, summariseFio } from './fio-json';
import type { ExtentMeta } from './extent-meta';
import { StatusReport, liveShare } from '../control/protocol';

export interface RunInfo {
  date: string;
  host: string;
  kernel: string;
  cpus: number;
  memoryGiB: number;
  disk: string;
  fio: string;
  mergerfs: string;
  node: string;
  commit: string;
  sizePerJob: string;
  runtimeSeconds: number;
  rampSeconds: number;
  tierCapacity: string;
  extentSize: string;
  admitAfter: string;
  mergerfsOptions: string;
  /** Whether fio opened files on the mergerfs mount with O_DIRECT (raw and shadowfs always are). */
  mergerfsDirect: boolean;
  jobs: string[];
  numjobs: number[];
  targets: string[];
  /** Rounds per row (absent in results from before rounds: one). */
  rounds?: number;
}

interface DaemonSample {
  pid: number;
  vmRssKiB: number;
  vmHwmKiB: number;
}

type Outcome = { ok: true; fio: FioSummary } | { ok: false; reason: string } | undefined;

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function outcome(dir: string, stem: string): Outcome {
  const error = path.join(dir, `${stem}.error`);
  if (fs.existsSync(error)) return { ok: false, reason: fs.readFileSync(error, 'utf8').trim().split('\n').join('; ') || 'failed' };
  const file = path.join(dir, `${stem}.fio.json`);
  if (!fs.existsSync(file)) return undefined;
  try {
    return { ok: true, fio: summariseFio(fs.readFileSync(file, 'utf8')) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

const mib = (bytesPerSec: number): string => (bytesPerSec / 1024 ** 2).toFixed(1);
const iops = (o: Outcome): string => (o === undefined ? '–' : o.ok ? Math.round(o.fio.iops).toString() : 'FAIL');
const bw = (o: Outcome): string => (o === undefined ? '–' : o.ok ? mib(o.fio.bandwidthBytesPerSec) : 'FAIL');
const lat = (o: Outcome): string => {
  if (o === undefined) return '–';
  if (!o.ok) return 'FAIL';
  const p99 = o.fio.p99LatencyUs;
  return `${Math.round(o.fio.meanLatencyUs)} / ${p99 === undefined ? '?' : Math.round(p99)}`;
};

/** a/b of one round, when both ran. */
function roundRatio(a: Outcome, b: Outcome): number | undefined {
  return a?.ok && b?.ok && b.fio.iops > 0 ? a.fio.iops / b.fio.iops : undefined;
}

/** The lower median (an actual value, not a mean of two). */
export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Median of the rounds' ratios, and their range when there is more than one. */
export function pairedRatio(a: Outcome[], b: Outcome[]): string {
  const ratios = a.map((o, k) => roundRatio(o, b[k])).filter((r): r is number => r !== undefined);
  const m = median(ratios);
  if (m === undefined) return '–';
  if (ratios.length === 1) return `${m.toFixed(2)}×`;
  return `${m.toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
}

/** The round whose run had the median IOPS (undefined when none produced a number). */
function medianRound(runs: Outcome[]): number | undefined {
  const ok = runs.flatMap((o, k) => (o?.ok ? [{ k, iops: o.fio.iops }] : []));
  const m = median(ok.map((x) => x.iops));
  return ok.find((x) => x.iops === m)?.k;
}

/**
 * Shares of reads by source; reads the native fast path served count as "fast path" (from a tier
 * copy) or "fast path (live)" (from the live file, for extents without a copy).
 */
function servedByTier(status: StatusReport | undefined): string {
  if (!status) return '–';
  const rows = status.served.map((s) => ({ source: s.source, reads: s.reads }));
  const hits = status.fastPath?.hits ?? 0;
  const live = Math.round(hits * liveShare(status.fastPath?.liveHits ?? 0, status.fastPath?.copyHits ?? 0));
  if (hits - live > 0) rows.push({ source: 'fast path', reads: hits - live });
  if (live > 0) rows.push({ source: 'fast path (live)', reads: live });
  const total = rows.reduce((a, s) => a + s.reads, 0);
  if (total === 0) return 'no reads';
  return rows
    .filter((s) => s.reads > 0)
    .sort((a, b) => b.reads - a.reads)
    .map((s) => `${s.source} ${((100 * s.reads) / total).toFixed(0)}%`)
    .join(', ');
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

export function buildReport(dir: string): { markdown: string; failures: string[] } {
  const run = readJson<RunInfo>(path.join(dir, 'run.json'));
  if (!run) throw new Error(`${dir}/run.json is missing or unreadable`);
  const failures: string[] = [];
  const main: string[] = [
    row(['workload', 'jobs', 'raw IOPS', 'raw MiB/s', 'mergerfs IOPS', 'mergerfs MiB/s', 'shadowfs IOPS', 'shadowfs MiB/s',
      'shadowfs / mergerfs', 'shadowfs / raw', 'shadowfs RSS MiB (peak)', 'metadata B/extent (extents)']),
    row(Array(12).fill('---')),
  ];
  const detail: string[] = [
    row(['workload', 'jobs', 'raw lat µs mean / p99', 'mergerfs lat µs', 'shadowfs lat µs', 'shadowfs reads served by (share of reads)',
      'metadata: LevelDB dir / key+value B per extent', 'mergerfs RSS MiB']),
    row(Array(8).fill('---')),
  ];
  const rounds = Math.max(1, run.rounds ?? 1);
  // Results from before rounds existed name each run without its round.
  const suffix = (k: number): string => (run.rounds === undefined ? '' : `.r${k + 1}`);
  for (const job of run.jobs) {
    for (const nj of run.numjobs) {
      const stem = (target: string, k: number): string => `${job}.nj${nj}.${target}${suffix(k)}`;
      const runsOf = (target: string): Outcome[] => Array.from({ length: rounds }, (_, k) => outcome(dir, stem(target, k)));
      const raws = runsOf('raw');
      const mfss = runsOf('mergerfs');
      const sfss = runsOf('shadowfs');
      for (const [target, runs] of [['raw', raws], ['mergerfs', mfss], ['shadowfs', sfss]] as const) {
        runs.forEach((o, k) => {
          if (o && !o.ok) failures.push(`${job} numjobs=${nj} ${target}${rounds > 1 ? ` round ${k + 1}` : ''}: ${o.reason}`);
        });
      }
      const pick = (runs: Outcome[]): Outcome => {
        const k = medianRound(runs);
        return k === undefined ? runs.find((o) => o !== undefined) : runs[k];
      };
      const raw = pick(raws);
      const mfs = pick(mfss);
      const sfs = pick(sfss);
      const sfsRound = medianRound(sfss) ?? rounds - 1;
      const daemons = Array.from({ length: rounds }, (_, k) => readJson<DaemonSample>(path.join(dir, `${stem('shadowfs', k)}.daemon.json`)))
        .filter((d): d is DaemonSample => d !== undefined);
      // RSS after the last round; peak over all of them.
      const daemon = daemons.length ? { ...daemons[daemons.length - 1], vmHwmKiB: Math.max(...daemons.map((d) => d.vmHwmKiB)) } : undefined;
      const mfsDaemon = readJson<DaemonSample>(path.join(dir, `${stem('mergerfs', rounds - 1)}.daemon.json`));
      const meta = readJson<ExtentMeta>(path.join(dir, `${stem('shadowfs', rounds - 1)}.extents.json`));
      const status = readJson<StatusReport>(path.join(dir, `${stem('shadowfs', sfsRound)}.status.json`));
      const rss = daemon ? `${(daemon.vmRssKiB / 1024).toFixed(0)} (${(daemon.vmHwmKiB / 1024).toFixed(0)})` : '–';
      const metaCell = meta && meta.dirBytesPerExtent !== null
        ? `${meta.dirBytesPerExtent.toFixed(0)} (${meta.extentsWithCopies})`
        : meta ? `– (0)` : '–';
      main.push(row([job, String(nj), iops(raw), bw(raw), iops(mfs), bw(mfs), iops(sfs), bw(sfs),
        pairedRatio(sfss, mfss), pairedRatio(sfss, raws), rss, metaCell]));
      detail.push(row([job, String(nj), lat(raw), lat(mfs), lat(sfs),
        sfs?.ok && sfs.fio.direction === 'read' ? servedByTier(status) : '–',
        meta && meta.dirBytesPerExtent !== null && meta.payloadBytesPerExtent !== null
          ? `${meta.dirBytes} B / ${meta.extentsWithCopies} = ${meta.dirBytesPerExtent.toFixed(0)}; ${meta.payloadBytesPerExtent.toFixed(0)}`
          : '–',
        mfsDaemon ? (mfsDaemon.vmRssKiB / 1024).toFixed(0) : '–']));
    }
  }
  const header = [
    `Run ${run.date} on ${run.host}: ${run.cpus} CPUs, ${run.memoryGiB} GiB RAM, disk ${run.disk}, kernel ${run.kernel}; ` +
      `${run.fio}, mergerfs ${run.mergerfs}, node ${run.node}, shadowfs ${run.commit}.`,
    `Per run: ${run.runtimeSeconds} s measured after ${run.rampSeconds} s ramp, ${run.sizePerJob} file per job; ` +
      `shadowfs: one nvme tier (${run.tierCapacity}) on the same disk, extent ${run.extentSize}, admit after ${run.admitAfter} reads; ` +
      `mergerfs -o ${run.mergerfsOptions}. fio opens with O_DIRECT on raw and shadowfs, ` +
      `${run.mergerfsDirect ? 'and on mergerfs' : 'buffered on mergerfs (cache.files=off already bypasses the kernel cache)'}.`,
    ...(rounds > 1
      ? [`${rounds} rounds per row; each round runs the three targets back to back, in rotating order. Ratio: the median of the ` +
          `rounds' ratios (their range in brackets); IOPS, MiB/s and latency: each target's median run.`]
      : []),
  ];
  const markdown = [
    ...header,
    '',
    ...main,
    '',
    ...detail,
    ...(failures.length ? ['', 'Failed runs:', ...failures.map((f) => `- ${f}`)] : []),
  ].join('\n');
  return { markdown, failures };
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: report RESULTS_DIR\n');
    process.exit(2);
  }
  try {
    const { markdown } = buildReport(dir);
    process.stdout.write(markdown + '\n');
  } catch (err) {
    process.stderr.write(`report: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
