/**
 * The tables of `bench/replication-bench.sh` (issue 3, speed): from the files one run leaves in its
 * results directory, a Markdown report on stdout; with `--append-docs FILE`, also inserted into
 * FILE under "## Replication (issue 3)" (newest run first, after the marker line).
 *
 *   node dist/src/bench/replication-report.js RESULTS_DIR [--append-docs docs/benchmarks.md]
 *
 * Files read (written by the script): run.json; per throughput round K, cp.rK.json, cp.rK.cpu.json,
 * repl.rK.json, repl.rK.cpu.json, repl.rK.watch.json (runs from before rounds: the same without
 * `.rK`, one round); fg-base.json, fg-repl.json (each with its fio JSON and before/after samples),
 * fg-repl.watch.json.
 *
 * With several throughput rounds (cp and shadowfs back to back in each, in alternating order) the
 * headline is the ratio of their total times over the rounds, and the detailed table is that of
 * the round with the median ratio. One round's ratio moves with the order (see buildThroughputRounds).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { liveShare } from '../control/protocol';
import { summariseFio } from './fio-json';
import type { ReplicationSample } from './replication-watch';

const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
export const DOCS_HEADING = '## Replication (issue 3)';
export const DOCS_MARKER = '<!-- replication-bench: runs are inserted below this line, newest first (bench/replication-bench.sh --append-docs) -->';

interface RunInfo {
  date: string;
  host: string;
  kernel: string;
  cpus: number;
  memoryGiB: number;
  disk: string;
  fio: string;
  node: string;
  cp: string;
  commit: string;
  dataBytes: number;
  files: string;
  copyRate: string;
  extentSize: string;
  fioRuntime: number;
  fioRamp: number;
  fgFile: string;
  fgSizeBytes: number;
  loadAtStart?: string;
  /** The measurements the run made (REPL_PHASES); absent in runs from before it was recorded: all. */
  phases?: string[];
  /** Throughput rounds; absent in runs from before rounds: one, its files named without `.rK`. */
  rounds?: number;
}

export const ALL_PHASES = ['throughput', 'foreground', 'cp-contention'] as const;
export type Phase = (typeof ALL_PHASES)[number];

interface CpResult {
  bytes: number;
  cpMs: number;
  syncMs: number;
}

interface WatchSummary {
  covered: boolean;
  coveredAtMs: number | null;
  stoppedBy: string;
  samples: number;
  first?: ReplicationSample;
  last?: ReplicationSample;
}

interface CpuTimes {
  userS: number;
  sysS: number;
}

interface ReplResult {
  mountStartMs: number;
  mountedMs: number;
}

interface FgResult {
  mountStartMs: number;
  mountedMs: number;
  fioStartMs: number;
  fioEndMs: number;
  error?: string;
}

interface FgPhase {
  meta: FgResult;
  iops: number | undefined;
  meanLatencyUs: number | undefined;
  p99LatencyUs: number | undefined;
  fioError: string | undefined;
  before: ReplicationSample | undefined;
  after: ReplicationSample | undefined;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function fgPhase(dir: string, name: string): FgPhase | undefined {
  const meta = readJson<FgResult>(path.join(dir, `${name}.json`));
  if (!meta) return undefined;
  let iops: number | undefined;
  let meanLatencyUs: number | undefined;
  let p99LatencyUs: number | undefined;
  let fioError = meta.error;
  try {
    const s = summariseFio(fs.readFileSync(path.join(dir, `${name}.fio.json`), 'utf8'));
    iops = s.iops;
    meanLatencyUs = s.meanLatencyUs;
    p99LatencyUs = s.p99LatencyUs;
  } catch (err) {
    fioError ??= (err as Error).message;
  }
  return {
    meta, iops, meanLatencyUs, p99LatencyUs, fioError,
    before: readJson<ReplicationSample>(path.join(dir, `${name}.before.json`)),
    after: readJson<ReplicationSample>(path.join(dir, `${name}.after.json`)),
  };
}

const sec = (ms: number): string => (ms / 1000).toFixed(2);
const mibps = (bytes: number, ms: number): string => (ms > 0 ? (bytes / MIB / (ms / 1000)).toFixed(0) : '–');
const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}×` : '–');
const verdict = (r: number | undefined, target: number): string => (r === undefined ? '' : r >= target ? ' (meets ≥ 0.8)' : ' (below 0.8)');
const sum = (o: Record<string, number> | undefined): number => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

/**
 * Reads the daemon answered between two samples, and how many of them came from a tier copy. Native
 * reads (fast path hits) are requests; their split between the live file and tier copies is known
 * per extent touched (liveHits / copyHits), so the live file's share of them is not a tier read.
 */
export function readsDuring(b: ReplicationSample | undefined, a: ReplicationSample | undefined): { total: number; fromTier: number } | undefined {
  if (!a || !b) return undefined;
  const live = (a.servedReads.live ?? 0) - (b.servedReads.live ?? 0);
  const redirected = sum(a.servedReads) - sum(b.servedReads);
  const fast = a.fastPathHits - b.fastPathHits;
  const fastLive = Math.round(fast * liveShare((a.fastPathLiveHits ?? 0) - (b.fastPathLiveHits ?? 0), (a.fastPathCopyHits ?? 0) - (b.fastPathCopyHits ?? 0)));
  return { total: redirected + fast, fromTier: redirected - live + fast - fastLive };
}

export function buildReport(dir: string): string {
  const run = readJson<RunInfo>(path.join(dir, 'run.json'));
  if (!run) throw new Error(`${dir}/run.json is missing`);
  const base = fgPhase(dir, 'fg-base');
  const withRepl = fgPhase(dir, 'fg-repl');
  const fgWatch = readJson<WatchSummary>(path.join(dir, 'fg-repl.watch.json'));
  const load = readJson<{ loadAtEnd?: string; cpuPressureAvg60?: number | null }>(path.join(dir, 'load.json'));
  const ran = new Set<string>(run.phases ?? ALL_PHASES);
  const out: string[] = [];

  out.push(`Run ${run.date} on ${run.host}: ${run.cpus} CPUs, ${run.memoryGiB} GiB RAM, disk ${run.disk}, kernel ${run.kernel}; ${run.fio}, ${run.cp}, node ${run.node}, shadowfs ${run.commit}.`);
  out.push(`Data: ${(run.dataBytes / GIB).toFixed(2)} GiB in ${run.files}, random bytes, on the same ext4 as the copy destinations. shadowfs: one directory tier \`hdd\` on the same disk as coverage tier, --copy-rate ${run.copyRate}, extent ${run.extentSize}, concurrentCopies at its default, --admit-after 1000000000 (reactive admission off). Page cache dropped (\`sync; echo 3 > /proc/sys/vm/drop_caches\`) before every phase.` +
    (run.loadAtStart || load ? ` Machine shared with other work: load average ${run.loadAtStart ?? '?'} at the start, ${load?.loadAtEnd ?? '?'} at the end${load?.cpuPressureAvg60 != null ? `, CPU pressure (some, last 60 s) ${load.cpuPressureAvg60}%` : ''}.` : ''));
  out.push('');

  // --- throughput -------------------------------------------------------------------------------
  if (ran.has('throughput')) buildThroughputRounds(out, dir, run);
  else out.push('Throughput: not run in this run (REPL_PHASES).', '');

  // --- foreground ---------------------------------------------------------------------------------
  if (ran.has('foreground') || ran.has('cp-contention')) buildForeground(out, dir, run, ran, base, withRepl, fgWatch);
  else out.push('Foreground impact: not run in this run (REPL_PHASES).', '');
  return out.join('\n').replace(/\n+$/, '') + '\n';
}

/** One throughput round's files. */
interface ThroughputRound {
  /** Its files' names: `<base>${suffix}.json`. */
  suffix: string;
  cp: CpResult | undefined;
  repl: ReplResult | undefined;
  watch: WatchSummary | undefined;
}

/** Replication time of a round: `mount` started → coverage 100% (undefined: it never got there). */
function replMs(r: ThroughputRound): number | undefined {
  return r.repl && r.watch?.covered && r.watch.coveredAtMs !== null ? r.watch.coveredAtMs - r.repl.mountStartMs : undefined;
}

function roundRatio(r: ThroughputRound): number | undefined {
  const total = replMs(r);
  return r.cp && total !== undefined && total > 0 ? r.cp.cpMs / total : undefined;
}

function buildThroughputRounds(out: string[], dir: string, run: RunInfo): void {
  const n = Math.max(1, run.rounds ?? 1);
  const rounds: ThroughputRound[] = Array.from({ length: n }, (_, k) => {
    const suffix = run.rounds === undefined ? '' : `.r${k + 1}`;
    return {
      suffix,
      cp: readJson<CpResult>(path.join(dir, `cp${suffix}.json`)),
      repl: readJson<ReplResult>(path.join(dir, `repl${suffix}.json`)),
      watch: readJson<WatchSummary>(path.join(dir, `repl${suffix}.watch.json`)),
    };
  });
  const measured = rounds.flatMap((r, k) => {
    const ratio = roundRatio(r);
    return ratio === undefined ? [] : [{ k, ratio }];
  });
  const sorted = [...measured].sort((a, b) => a.ratio - b.ratio);
  // The lower median: an actual round, whose table is shown in full.
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const shown = median?.k ?? n - 1;
  if (n > 1) out.push(`Round ${shown + 1} of ${n}, the median one:`, '');
  buildThroughput(out, dir, run, rounds[shown]);
  if (n === 1) return;
  out.push('| round | order | `cp -r` s | `cp -r` + `sync` s | shadowfs s (mount → 100%) | cp / shadowfs | (cp + sync) / shadowfs |');
  out.push('| --- | --- | --- | --- | --- | --- | --- |');
  rounds.forEach((r, k) => {
    const total = replMs(r);
    out.push(`| ${k + 1} | ${k % 2 === 0 ? 'cp, then shadowfs' : 'shadowfs, then cp'} | ${r.cp ? sec(r.cp.cpMs) : 'FAIL'} | ${r.cp ? sec(r.cp.cpMs + r.cp.syncMs) : '–'} | ${total !== undefined ? sec(total) : 'FAIL'} | ${ratio(r.cp?.cpMs, total)} | ${ratio(r.cp ? r.cp.cpMs + r.cp.syncMs : undefined, total)} |`);
  });
  // The headline: total cp time over total shadowfs time, over the rounds where both finished.
  // On this VM cp is 3-4x faster right after another cp than after anything else: freed guest
  // memory goes back to the host, and cp's page cache pays a host fault per page unless a cp just
  // freed pages (docs/benchmarks.md). shadowfs (direct I/O) does not care. With as many rounds of
  // each order the totals hold as many warm cps as cold ones; one round's ratio holds one or the other.
  const both = rounds.filter((r) => roundRatio(r) !== undefined);
  if (both.length > 0) {
    const cpTotal = both.reduce((a, r) => a + (r.cp as CpResult).cpMs, 0);
    const cpSyncTotal = both.reduce((a, r) => a + (r.cp as CpResult).cpMs + (r.cp as CpResult).syncMs, 0);
    const replTotal = both.reduce((a, r) => a + (replMs(r) as number), 0);
    const firsts = both.filter((r) => rounds.indexOf(r) % 2 === 0).length;
    const balance = firsts * 2 === both.length ? 'as many rounds of each order' : `${firsts} rounds with cp first, ${both.length - firsts} with shadowfs first: unbalanced`;
    const range = `${sorted[0].ratio.toFixed(2)}–${sorted[sorted.length - 1].ratio.toFixed(2)}`;
    out.push(`| **all ${both.length} round${both.length === 1 ? '' : 's'}** (${balance}) | | ${sec(cpTotal)} | ${sec(cpSyncTotal)} | ${sec(replTotal)} | **${ratio(cpTotal, replTotal)}**${verdict(cpTotal / replTotal, 0.8)}; rounds ${range}, median ${median.ratio.toFixed(2)}× | ${ratio(cpSyncTotal, replTotal)} |`);
  }
  out.push('');
}

function buildThroughput(out: string[], dir: string, run: RunInfo, round: ThroughputRound): void {
  const { cp, repl, watch, suffix } = round;
  out.push('| replication of the whole volume | seconds | MiB/s | ratio cp / this (target ≥ 0.8×) |');
  out.push('| --- | --- | --- | --- |');
  let headline: number | undefined;
  if (cp) {
    out.push(`| \`cp -r\` to a directory on the same disk | ${sec(cp.cpMs)} | ${mibps(cp.bytes, cp.cpMs)} | 1.00× |`);
    out.push(`| \`cp -r\` then \`sync\` (durable, as shadowfs copies are) | ${sec(cp.cpMs + cp.syncMs)} | ${mibps(cp.bytes, cp.cpMs + cp.syncMs)} | – |`);
  } else {
    out.push('| `cp -r` | FAIL | – | – |');
  }
  if (repl && watch?.covered && watch.coveredAtMs !== null) {
    const total = watch.coveredAtMs - repl.mountStartMs;
    const afterMount = watch.coveredAtMs - repl.mountedMs;
    const bytes = watch.last?.copyBytes ?? 0;
    headline = cp ? cp.cpMs / total : undefined;
    out.push(`| shadowfs: \`mount\` started → \`status\` says coverage 100% | ${sec(total)} | ${mibps(run.dataBytes, total)} | **${ratio(cp?.cpMs, total)}**${verdict(headline, 0.8)}; against cp + sync: ${ratio(cp ? cp.cpMs + cp.syncMs : undefined, total)} |`);
    out.push(`| (of which: \`mount --daemon\` until mounted ${sec(repl.mountedMs - repl.mountStartMs)} s; mounted → 100%) | ${sec(afterMount)} | ${mibps(bytes, afterMount)} | ${ratio(cp?.cpMs, afterMount)} |`);
  } else {
    out.push(`| shadowfs: \`mount\` started → coverage 100% | FAIL (${watch ? `stopped by ${watch.stoppedBy}, coverage ${((watch.last?.coveredShare ?? 0) * 100).toFixed(1)}%` : 'no samples'}) | – | – |`);
  }
  const cpCpu = readJson<CpuTimes>(path.join(dir, `cp${suffix}.cpu.json`));
  const daemonCpu = readJson<CpuTimes>(path.join(dir, `repl${suffix}.cpu.json`));
  if (cpCpu || daemonCpu) {
    const cpu = (c: CpuTimes | undefined, what: string): string | undefined =>
      c ? `${what} ${(c.userS + c.sysS).toFixed(2)} s (user ${c.userS.toFixed(2)}, system ${c.sysS.toFixed(2)}; ${((1000 * (c.userS + c.sysS)) / (run.dataBytes / MIB)).toFixed(2)} ms per MiB)` : undefined;
    out.push('');
    out.push(`CPU time (moves less than wall time on a shared machine): ${[cpu(cpCpu, '`cp -r`'), cpu(daemonCpu, 'the shadowfs daemon from its start to coverage 100%')].filter(Boolean).join('; ')}.`);
  }
  out.push('');
}

/**
 * fio on a mount without a coverage tier ("without", its native live-file reads turned off by the
 * script so it reads uncopied extents through JS as a coverage-tier mount must) and during replication.
 */
function buildForeground(out: string[], dir: string, run: RunInfo, ran: Set<string>, base: FgPhase | undefined, withRepl: FgPhase | undefined, fgWatch: WatchSummary | undefined): void {
  const fgRatio = base?.iops !== undefined && withRepl?.iops !== undefined && base.iops > 0 ? withRepl.iops / base.iops : undefined;
  out.push(`| fio 4 KiB randread, 1 job, psync, O_DIRECT, ${run.fioRuntime} s after ${run.fioRamp} s ramp, on ${run.fgFile} (${(run.fgSizeBytes / MIB).toFixed(0)} MiB) | IOPS | mean / p99 µs | reads served from a tier copy |`);
  out.push('| --- | --- | --- | --- |');
  const row = (label: string, p: FgPhase | undefined): string => {
    if (!p || p.iops === undefined) return `| ${label} | FAIL${p?.fioError ? ` (${p.fioError.slice(0, 120)})` : ''} | – | – |`;
    const r = readsDuring(p.before, p.after);
    const tier = r ? `${r.fromTier} of ${r.total}` : '–';
    return `| ${label} | ${Math.round(p.iops)} | ${Math.round(p.meanLatencyUs ?? 0)} / ${p.p99LatencyUs !== undefined ? Math.round(p.p99LatencyUs) : '–'} | ${tier} |`;
  };
  if (ran.has('foreground')) {
    out.push(row('(a) without replication (mount with the same tier, no coverage tier; native live-file reads off, so reads go through JS as on (b))', base));
    out.push(row('(b) during full-volume replication (fresh state, coverage tier `hdd`)', withRepl));
  }
  const cpRef = fgPhase(dir, 'fg-cp');
  if (ran.has('cp-contention')) {
    const r = cpRef?.iops !== undefined && base?.iops ? ` (${(cpRef.iops / base.iops).toFixed(2)}× of (a))` : '';
    out.push(row('for scale: a mount like (a), a loop of plain `cp` of the other files running beside fio (the disk\'s share)', cpRef).replace(/^(\| [^|]+\| [0-9]+)/, `$1${r}`));
  }
  if (ran.has('foreground')) out.push(`| **ratio (b) / (a) (target ≥ 0.8×)** | **${fgRatio !== undefined ? `${fgRatio.toFixed(2)}×` : '–'}**${verdict(fgRatio, 0.8)} | | |`);
  out.push('');

  // --- what the replication did meanwhile ------------------------------------------------------------
  if (withRepl?.before && withRepl.after) {
    const b = withRepl.before;
    const a = withRepl.after;
    const ms = a.tMs - b.tMs;
    const copied = a.copyBytes - b.copyBytes;
    const stillRunning = a.coveredShare !== null && a.coveredShare < 1;
    out.push(`During that fio run the replication copied ${(copied / MIB).toFixed(0)} MiB in ${sec(ms)} s (${mibps(copied, ms)} MiB/s; coverage ${((b.coveredShare ?? 0) * 100).toFixed(1)}% → ${((a.coveredShare ?? 0) * 100).toFixed(1)}%)` +
      (stillRunning ? ', so it ran for the whole fio run.' : ' — **it finished before fio did**, so part of the fio run had no replication beside it (make the data larger: REPL_BULK_FILES / REPL_BULK_SIZE).'));
    if (fgWatch?.last && fgWatch.samples > 1) out.push(`(${fgWatch.samples} status samples at 100 ms during the run; failed copies: ${a.failedCopies}.)`);
    const r = readsDuring(withRepl.before, withRepl.after);
    if (r && r.fromTier > 0) out.push(`**Note:** ${r.fromTier} fio reads were served from tier copies of the fio file (it was replicated while fio ran), which are fresh in the page cache: the (b) number is then flattered.`);
  }
}

/** Inserts a run's report into the docs file under the Replication heading, newest first. */
export function appendToDocs(file: string, title: string, report: string): void {
  let text = fs.readFileSync(file, 'utf8');
  if (!text.includes(DOCS_MARKER)) {
    if (!text.includes(DOCS_HEADING)) text = `${text.replace(/\n*$/, '\n')}\n${DOCS_HEADING}\n`;
    // The marker goes at the end of the section (before the next "## " heading, or at the end).
    const start = text.indexOf(DOCS_HEADING) + DOCS_HEADING.length;
    const next = text.slice(start).search(/\n## /);
    const at = next < 0 ? text.length : start + next + 1;
    text = `${text.slice(0, at).replace(/\n*$/, '\n')}\n${DOCS_MARKER}\n${next < 0 ? '' : '\n'}${text.slice(at)}`;
  }
  const i = text.indexOf(DOCS_MARKER) + DOCS_MARKER.length;
  text = `${text.slice(0, i)}\n\n${title}\n\n${report.trimEnd()}\n${text.slice(i).replace(/^\n*/, '\n')}`;
  fs.writeFileSync(file, text);
}

if (require.main === module) {
  const dir = process.argv[2];
  const docsAt = process.argv.indexOf('--append-docs');
  try {
    if (!dir) throw new Error('usage: replication-report RESULTS_DIR [--append-docs FILE]');
    const report = buildReport(dir);
    process.stdout.write(report);
    if (docsAt > 0) {
      const file = process.argv[docsAt + 1];
      if (!file) throw new Error('--append-docs needs a file');
      const run = readJson<RunInfo>(path.join(dir, 'run.json')) as RunInfo;
      appendToDocs(file, `### ${run.date} — main at ${run.commit}`, report);
      process.stderr.write(`replication-report: inserted into ${file}\n`);
    }
  } catch (err) {
    process.stderr.write(`replication-report: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
