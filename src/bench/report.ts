/**
 * `node dist/src/bench/report.js RESULTS_DIR`: the benchmark table, as Markdown, from the files
 * bench/run-bench.sh leaves in RESULTS_DIR:
 *
 *   run.json                               when, where and with which parameters
 *   <job>.nj<N>.<target>.fio.json          fio --output-format=json of one run
 *   <job>.nj<N>.<target>.error             why a run has no result (mount failed, fio failed)
 *   <job>.nj<N>.<target>.daemon.json       {pid, vmRssKiB, vmHwmKiB} of the FUSE daemon, after the run
 *   <job>.nj<N>.shadowfs.status.json       `shadowfs status --json` after the run
 *   <job>.nj<N>.shadowfs.extents.json      src/bench/extent-meta.ts after the unmount
 *
 * Ratios are of IOPS; within a row every target ran the same block size, so they are also the
 * bandwidth ratios.
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

function ratio(a: Outcome, b: Outcome): string {
  if (!a?.ok || !b?.ok || b.fio.iops <= 0) return '–';
  return `${(a.fio.iops / b.fio.iops).toFixed(2)}×`;
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
  for (const job of run.jobs) {
    for (const nj of run.numjobs) {
      const stem = (target: string): string => `${job}.nj${nj}.${target}`;
      const raw = outcome(dir, stem('raw'));
      const mfs = outcome(dir, stem('mergerfs'));
      const sfs = outcome(dir, stem('shadowfs'));
      for (const [target, o] of [['raw', raw], ['mergerfs', mfs], ['shadowfs', sfs]] as const) {
        if (o && !o.ok) failures.push(`${job} numjobs=${nj} ${target}: ${o.reason}`);
      }
      const daemon = readJson<DaemonSample>(path.join(dir, `${stem('shadowfs')}.daemon.json`));
      const mfsDaemon = readJson<DaemonSample>(path.join(dir, `${stem('mergerfs')}.daemon.json`));
      const meta = readJson<ExtentMeta>(path.join(dir, `${stem('shadowfs')}.extents.json`));
      const status = readJson<StatusReport>(path.join(dir, `${stem('shadowfs')}.status.json`));
      const rss = daemon ? `${(daemon.vmRssKiB / 1024).toFixed(0)} (${(daemon.vmHwmKiB / 1024).toFixed(0)})` : '–';
      const metaCell = meta && meta.dirBytesPerExtent !== null
        ? `${meta.dirBytesPerExtent.toFixed(0)} (${meta.extentsWithCopies})`
        : meta ? `– (0)` : '–';
      main.push(row([job, String(nj), iops(raw), bw(raw), iops(mfs), bw(mfs), iops(sfs), bw(sfs),
        ratio(sfs, mfs), ratio(sfs, raw), rss, metaCell]));
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
