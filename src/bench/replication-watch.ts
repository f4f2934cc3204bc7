/**
 * Replication benchmark helper (`bench/replication-bench.sh`): samples a mount's coverage and copy
 * counters over its control socket, from one process (spawning `shadowfs status` every 100 ms
 * would cost a Node start-up each time, on the same 2 CPUs the daemon copies with).
 *
 *   node dist/src/bench/replication-watch.js MOUNTPOINT --once
 *       one sample as JSON on stdout
 *   node dist/src/bench/replication-watch.js MOUNTPOINT [--until-covered] [--interval-ms 100]
 *       [--timeout-s 180] [--samples FILE]
 *       polls every interval-ms (one sample per line to FILE if given) until coverage is 100% (with
 *       --until-covered), the timeout, or SIGTERM/SIGINT; then prints a summary as JSON on stdout:
 *       {covered, coveredAtMs, firstOkMs, samples, first, last}. Exit 0 when covered (or stopped by
 *       a signal without --until-covered), 3 on timeout or a signal before coverage was reached.
 *
 * Times are Unix epoch milliseconds, so the shell can subtract them from `date +%s%3N`.
 */
import * as fs from 'node:fs';
import { controlRequest } from '../control/control-client';
import { StatusReport } from '../control/protocol';

export interface ReplicationSample {
  tMs: number;
  coveredShare: number | null;
  totalBytes: number | null;
  pendingBytes: number | null;
  lagMs: number | null;
  scanned: boolean;
  copies: number;
  copyBytes: number;
  failedCopies: number;
  discardedCopies: number;
  tierUsedBytes: Record<string, number>;
  fastPathHits: number;
  fastPathMisses: number;
  /** Of the extents native reads touched, those the live file answered and those a tier copy did (absent in older samples). */
  fastPathLiveHits?: number;
  fastPathCopyHits?: number;
  /** Reads the redirector served, by source (live volume or a tier name). */
  servedReads: Record<string, number>;
  servedBytes: Record<string, number>;
}

export function sampleOf(s: StatusReport, tMs: number): ReplicationSample {
  const servedReads: Record<string, number> = {};
  const servedBytes: Record<string, number> = {};
  for (const r of s.served) {
    servedReads[r.source] = r.reads;
    servedBytes[r.source] = r.bytes;
  }
  const tierUsedBytes: Record<string, number> = {};
  for (const t of s.tiers) tierUsedBytes[t.name] = t.usedBytes;
  return {
    tMs,
    coveredShare: s.coverage ? s.coverage.coveredShare : null,
    totalBytes: s.coverage ? s.coverage.totalBytes : null,
    pendingBytes: s.coverage ? s.coverage.pendingBytes : null,
    lagMs: s.coverage ? s.coverage.lagMs : null,
    scanned: !!s.coverage && s.coverage.lastScanMs !== null,
    copies: s.shadow.copies,
    copyBytes: s.shadow.copyBytes,
    failedCopies: s.shadow.failedCopies,
    discardedCopies: s.shadow.discardedCopies,
    tierUsedBytes,
    fastPathHits: s.fastPath.hits,
    fastPathMisses: s.fastPath.misses,
    fastPathLiveHits: s.fastPath.liveHits ?? 0,
    fastPathCopyHits: s.fastPath.copyHits ?? 0,
    servedReads,
    servedBytes,
  };
}

/** Coverage is complete: the first scan is done, nothing pending, share 1. */
export function isCovered(s: ReplicationSample): boolean {
  return s.scanned && s.coveredShare !== null && s.coveredShare >= 1 && s.pendingBytes === 0;
}

async function sample(mountpoint: string): Promise<ReplicationSample> {
  const report = (await controlRequest(mountpoint, { command: 'status' }, 10_000)) as StatusReport;
  return sampleOf(report, Date.now());
}

interface Options {
  mountpoint: string;
  once: boolean;
  untilCovered: boolean;
  intervalMs: number;
  timeoutS: number;
  samplesFile: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { mountpoint: '', once: false, untilCovered: false, intervalMs: 100, timeoutS: 180, samplesFile: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--once') o.once = true;
    else if (a === '--until-covered') o.untilCovered = true;
    else if (a === '--interval-ms') o.intervalMs = Number(value());
    else if (a === '--timeout-s') o.timeoutS = Number(value());
    else if (a === '--samples') o.samplesFile = value();
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.mountpoint = a;
  }
  if (!o.mountpoint) throw new Error('usage: replication-watch MOUNTPOINT [--once] [--until-covered] [--interval-ms N] [--timeout-s N] [--samples FILE]');
  if (!(o.intervalMs > 0) || !(o.timeoutS > 0)) throw new Error('--interval-ms and --timeout-s must be positive numbers');
  return o;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (o.once) {
    process.stdout.write(JSON.stringify(await sample(o.mountpoint)) + '\n');
    return 0;
  }
  const out = o.samplesFile ? fs.openSync(o.samplesFile, 'a') : undefined;
  const startedMs = Date.now();
  const deadline = startedMs + o.timeoutS * 1000;
  let first: ReplicationSample | undefined;
  let last: ReplicationSample | undefined;
  let count = 0;
  let lastError = '';
  let stopSignal: string | undefined;
  const onSignal = (sig: string): void => {
    stopSignal = sig;
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  let covered = false;
  while (!stopSignal && Date.now() < deadline) {
    const tick = Date.now();
    try {
      const s = await sample(o.mountpoint);
      count++;
      first ??= s;
      last = s;
      if (out !== undefined) fs.writeSync(out, JSON.stringify(s) + '\n');
      if (o.untilCovered && isCovered(s)) {
        covered = true;
        break;
      }
    } catch (err) {
      lastError = (err as Error).message; // not up yet, or busy: try again next tick
    }
    const wait = o.intervalMs - (Date.now() - tick);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  if (out !== undefined) fs.closeSync(out);
  process.stdout.write(JSON.stringify({
    covered,
    coveredAtMs: covered && last ? last.tMs : null,
    firstOkMs: first ? first.tMs : null,
    startedMs,
    stoppedBy: covered ? 'covered' : stopSignal ?? 'timeout',
    samples: count,
    lastError: count === 0 ? lastError : undefined,
    first,
    last,
  }) + '\n');
  if (covered) return 0;
  return stopSignal && !o.untilCovered ? 0 : 3;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (err: Error) => {
    process.stderr.write(`replication-watch: ${err.message}\n`);
    process.exit(2);
  });
}
