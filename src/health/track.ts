/**
 * One stream of operations against a volume (reads, writes, metadata, syncs, or probes): its
 * latency window, its learned baseline, and the judgement of its recent past as signals.
 * Pure: time is passed in.
 */
import { LatencyBaseline } from './baseline';
import type { HealthSettings } from './health-settings';
import { LatencyWindow, SampleOutcome, WindowSummary } from './latency-window';
import { Trend, predictCrossing } from './trend';

/** Samples per trend point (buckets are merged until they hold this many). */
const TREND_POINT_SAMPLES = 20;

/** What one track says right now. */
export interface TrackAssessment {
  name: string;
  summary: WindowSummary;
  /** Only once established. */
  baselineP95Us?: number;
  trend?: Trend;
  /** Reasons to fail over now. */
  fail: string[];
  /** Reasons to be suspicious. */
  warn: string[];
  /** No errors, no timeouts, latency near the baseline (or too few samples to say otherwise), no trend reaching the limit soon. */
  clean: boolean;
}

export class LatencyTrack {
  readonly window: LatencyWindow;
  readonly baseline: LatencyBaseline;

  /** minSamples: fewer samples in the eval window and latency is not judged (probes come slower than ops). */
  constructor(readonly name: string, private readonly s: HealthSettings, private readonly minSamples = s.minSamples) {
    this.window = new LatencyWindow({ spanMs: Math.max(s.evalWindowMs, s.errorWindowMs, s.trendWindowMs), bucketMs: s.bucketMs });
    this.baseline = new LatencyBaseline({
      halfLifeMs: s.baselineHalfLifeMs,
      warmupMs: s.baselineWarmupMs,
      // Above this, "suspectRatio x baseline" would already be past the limit: the ratio test would be dead.
      ceilingUs: (s.latencyLimitMs * 1000) / (2 * s.suspectRatio),
    });
  }

  record(timeMs: number, latencyUs: number, outcome: SampleOutcome): void {
    this.window.record(timeMs, latencyUs, outcome);
  }

  assess(nowMs: number, pendingOverLimit: number): TrackAssessment {
    const s = this.s;
    const limitUs = s.latencyLimitMs * 1000;
    const deltaUs = s.minLatencyDeltaMs * 1000;
    const summary = this.window.summary(nowMs, s.evalWindowMs);
    const points = this.window.points(nowMs, s.trendWindowMs, TREND_POINT_SAMPLES).map((p) => ({ timeMs: p.timeMs, valueUs: p.p95Us }));
    const baseP95 = this.baseline.established ? this.baseline.p95Us : undefined;
    // Where latency counts as departed from normal: the suspect threshold (a tenth of the limit until a baseline is known).
    const departedUs = baseP95 !== undefined ? Math.max(s.suspectRatio * baseP95, baseP95 + deltaUs) : limitUs / 10;
    // A trend only counts once the line has left normal: a rising run inside the noise is not a ramp.
    const fitted = predictCrossing(points, limitUs, nowMs);
    const trend = fitted && fitted.nowUs < departedUs ? { ...fitted, rising: false, msToLimit: undefined } : fitted;
    const judged = summary.count >= this.minSamples && summary.robustP95Us !== undefined;
    // Judged by the robust p95: at low rates a plain p95 is one or two stray slow ops.
    const p95 = summary.robustP95Us ?? 0;
    const fail: string[] = [];
    const warn: string[] = [];
    const what = this.name;

    if (summary.timeouts > 0) {
      fail.push(`${summary.timeouts} ${what} op(s) timed out (no answer within ${s.opTimeoutMs} ms)`);
    }
    const recent = this.window.summary(nowMs, s.errorWindowMs);
    if (recent.errors >= s.minErrorsForRate && recent.errorRate > s.errorRateThreshold) {
      fail.push(`${recent.errors} of ${recent.count} ${what} ops failed (${pct(recent.errorRate)} > ${pct(s.errorRateThreshold)})`);
    } else if (summary.errors > 0) {
      warn.push(`${summary.errors} of ${summary.count} ${what} ops failed`);
    }
    if (judged && p95 > limitUs) {
      fail.push(`${what} p95 ${ms(p95)} is over the ${s.latencyLimitMs} ms limit`);
    }
    if (trend?.msToLimit !== undefined && trend.msToLimit <= s.horizonMs) {
      fail.push(`${what} latency trend (+${ms(trend.slopeUsPerSec)}/s) reaches the ${s.latencyLimitMs} ms limit in ${sec(trend.msToLimit)} (horizon ${sec(s.horizonMs)})`);
    } else if (trend?.msToLimit !== undefined && trend.msToLimit <= 2 * s.horizonMs) {
      warn.push(`${what} latency trend (+${ms(trend.slopeUsPerSec)}/s) reaches the ${s.latencyLimitMs} ms limit in ${sec(trend.msToLimit)}`);
    }
    if (judged && baseP95 !== undefined && p95 > departedUs) {
      warn.push(`${what} p95 ${ms(p95)} is over ${s.suspectRatio} x baseline ${ms(baseP95)}`);
    }
    if (pendingOverLimit > 0) {
      warn.push(`${pendingOverLimit} ${what} op(s) pending for longer than the ${s.latencyLimitMs} ms limit`);
    }

    // Near baseline: the lower (recover) threshold, so that entering and leaving suspect are apart.
    // Without a baseline yet, a twentieth of the limit stands in (half the stand-in departure line).
    const nearUs = baseP95 !== undefined ? Math.max(s.recoverRatio * baseP95, baseP95 + deltaUs) : limitUs / 20;
    // A rising trend only spoils "clean" if it heads for the limit within a few horizons: the t-test
    // lets a flat noisy series look rising now and then, and that must not hold failback off forever.
    const heading = trend?.msToLimit !== undefined && trend.msToLimit <= 4 * s.horizonMs;
    const clean = fail.length === 0 && warn.length === 0 && summary.errors === 0 && (!judged || p95 <= nearUs) && !heading;
    return { name: this.name, summary, baselineP95Us: baseP95, trend, fail, warn, clean };
  }

  /** Learn from the eval window, if the monitor says the period is healthy. */
  learn(nowMs: number, summary: WindowSummary, eligible: boolean): void {
    // The robust p95, as it is what the baseline is compared with.
    const ok = eligible && summary.count >= this.minSamples && summary.p50Us !== undefined && summary.robustP95Us !== undefined;
    this.baseline.update(summary.p50Us ?? NaN, summary.robustP95Us ?? NaN, nowMs, ok);
  }
}

function ms(us: number): string {
  return us >= 10_000 ? `${(us / 1000).toFixed(0)} ms` : `${(us / 1000).toFixed(2)} ms`;
}

function sec(msValue: number): string {
  return `${(msValue / 1000).toFixed(1)} s`;
}

function pct(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}
