/**
 * Deterministic traffic for health-model tests: a seeded PRNG, noisy latencies, and a driver that
 * feeds a HealthMonitor ops, probes and evaluations on a simulated clock.
 */
import { HealthMonitor, HealthReport, OpKind } from '../../src/health/health-monitor';
import { seededRandom } from '../../src/util/seeded-random';

export const rng = seededRandom;

export function gaussian(random: () => number): number {
  let u = 0;
  while (u === 0) u = random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Lognormal noise around medianUs, and a share of ops `spikeFactor` times slower (GC, a busy neighbour). */
export function noisy(random: () => number, medianUs: number, sigma = 0.5, spikeShare = 0.01, spikeFactor = 20): number {
  const v = medianUs * Math.exp(sigma * gaussian(random));
  return random() < spikeShare ? v * spikeFactor : v;
}

export interface SimOptions {
  fromMs: number;
  toMs: number;
  /** 0: no ops (a failed-over volume sees only probes). */
  opsPerSec: number;
  /** Latency of an op issued at timeMs; undefined: the op hangs (begun, never ended). */
  latencyUs: (timeMs: number) => number | undefined;
  /** Whether the op at timeMs fails (default: never). */
  fails?: (timeMs: number) => boolean;
  kind?: (random: () => number) => OpKind;
  /** Probe every probeEveryMs (0: none) with this latency and outcome. */
  probeEveryMs?: number;
  probe?: (timeMs: number) => { latencyUs: number; ok: boolean };
  evalEveryMs?: number;
  random: () => number;
  /** Stop at the first report for which this holds (it is returned as `stoppedBy`). */
  until?: (r: HealthReport) => boolean;
}

export interface SimResult {
  reports: HealthReport[];
  stoppedBy?: HealthReport;
  stoppedAtMs?: number;
}

/**
 * Drives the monitor from fromMs to toMs. Ops complete at issue time + latency (recorded then,
 * in time order with evaluations: a completion is not seen before it happens).
 */
export function simulate(m: HealthMonitor, o: SimOptions): SimResult {
  const gapMs = o.opsPerSec > 0 ? 1000 / o.opsPerSec : Infinity;
  const evalEveryMs = o.evalEveryMs ?? 1000;
  const reports: SimResult['reports'] = [];
  // Completions waiting to be recorded, kept sorted by end time (small: ops in flight).
  const pending: { endMs: number; kind: OpKind; latencyUs: number; ok: boolean }[] = [];
  let nextOpMs = o.fromMs;
  let nextProbeMs = o.fromMs;
  let nextEvalMs = o.fromMs + evalEveryMs;
  const flush = (uptoMs: number): void => {
    while (pending.length && pending[0].endMs <= uptoMs) {
      const c = pending.shift() as (typeof pending)[number];
      m.recordOp(c.kind, c.latencyUs, c.ok, c.endMs);
    }
  };
  while (nextEvalMs <= o.toMs) {
    while (nextOpMs < nextEvalMs) {
      flush(nextOpMs);
      const kind = o.kind ? o.kind(o.random) : 'read';
      const latencyUs = o.latencyUs(nextOpMs);
      if (latencyUs === undefined) m.beginOp(kind, nextOpMs);
      else {
        const c = { endMs: nextOpMs + latencyUs / 1000, kind, latencyUs, ok: !(o.fails?.(nextOpMs) ?? false) };
        const at = pending.findIndex((p) => p.endMs > c.endMs);
        pending.splice(at < 0 ? pending.length : at, 0, c);
      }
      nextOpMs += gapMs;
    }
    while (o.probeEveryMs && o.probe && nextProbeMs < nextEvalMs) {
      flush(nextProbeMs);
      const p = o.probe(nextProbeMs);
      m.recordProbe(p.latencyUs, p.ok, nextProbeMs);
      nextProbeMs += o.probeEveryMs;
    }
    flush(nextEvalMs);
    const r = m.evaluate(nextEvalMs);
    reports.push(r);
    if (o.until?.(r)) return { reports, stoppedBy: r, stoppedAtMs: nextEvalMs };
    nextEvalMs += evalEveryMs;
  }
  return { reports };
}
