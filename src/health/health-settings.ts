/**
 * The knobs of the health model, with their defaults and why they are what they are. One
 * HealthMonitor (one set of settings) per live volume and per tier.
 */

export interface HealthSettings {
  /**
   * The volume's latency limit: a p95 above it is a failing volume. Also the line the trend is
   * projected against. Default 1000 ms.
   */
  latencyLimitMs: number;
  /**
   * Fail over when the trend reaches the limit within this long (suspect within twice as long).
   * Should exceed the time a failover takes, so that it completes before the limit is hit. Default 30 s.
   */
  horizonMs: number;
  /** failed-over -> resyncing only after this long of clean probes and near-baseline latency. Default 60 s. */
  minHealthyForFailbackMs: number;
  /**
   * healthy -> suspect only once warning signs have lasted this long: a burst of slow ops that
   * leaves as fast as it came is noise. Fail signs never wait. Default 5 s.
   */
  suspectConfirmMs: number;
  /** suspect -> healthy only after this long without any warning sign (no flapping). Default 20 s. */
  minHealthyForClearMs: number;
  /** Fail over when more than this share of the ops in the error window failed. Default 5%. */
  errorRateThreshold: number;
  /** ...and at least this many failed (one failure out of two ops is not a rate). Default 3. */
  minErrorsForRate: number;
  /** An op that has not answered after this long is a timeout: fail over at once. Default 5 s. */
  opTimeoutMs: number;
  /** suspect when p95 exceeds this multiple of the baseline p95 (and minLatencyDeltaMs more). Default 3. */
  suspectRatio: number;
  /** "Near baseline" (to clear suspect, to fail back): p95 under this multiple of the baseline. Default 1.5. */
  recoverRatio: number;
  /**
   * Latency differences smaller than this never count: on a fast device a p95 going from 40 to
   * 150 µs is a large ratio and no problem at all. Default 1 ms.
   */
  minLatencyDeltaMs: number;
  /**
   * Window over which p95 and error rate are judged. Long enough that a p95 rests on many samples
   * (stray slow ops do not move it); a step change still shows as soon as 5% of the window is slow. Default 30 s.
   */
  evalWindowMs: number;
  /**
   * Window of the error-rate rule: short, so that errors starting are not diluted by a long healthy
   * past (isolated errors are still seen over the whole eval window). Default 5 s.
   */
  errorWindowMs: number;
  /** Window of per-bucket p95 values the trend line is fitted to. Default 15 s. */
  trendWindowMs: number;
  /** Bucket width of the latency windows (trend resolution). Default 1 s. */
  bucketMs: number;
  /** With fewer samples in the eval window latency is not judged (errors and timeouts still are). Default 10. */
  minSamples: number;
  /** Failback also needs at least this many successful probes in the last minHealthyForFailbackMs. Default 3. */
  minProbesForFailback: number;
  /** Baseline learning: half-life of its EWMA (increases 8 times slower). Default 10 min. */
  baselineHalfLifeMs: number;
  /** Healthy time before the baseline is trusted (until then only the limit, errors and trend count). Default 10 s. */
  baselineWarmupMs: number;
  /** Transitions kept in the log. Default 64. */
  transitionLogSize: number;
}

export const DEFAULT_HEALTH_SETTINGS: Readonly<HealthSettings> = Object.freeze({
  latencyLimitMs: 1_000,
  horizonMs: 30_000,
  minHealthyForFailbackMs: 60_000,
  suspectConfirmMs: 5_000,
  minHealthyForClearMs: 20_000,
  errorRateThreshold: 0.05,
  minErrorsForRate: 3,
  opTimeoutMs: 5_000,
  suspectRatio: 3,
  recoverRatio: 1.5,
  minLatencyDeltaMs: 1,
  evalWindowMs: 30_000,
  errorWindowMs: 5_000,
  trendWindowMs: 15_000,
  bucketMs: 1_000,
  minSamples: 10,
  minProbesForFailback: 3,
  baselineHalfLifeMs: 600_000,
  baselineWarmupMs: 10_000,
  transitionLogSize: 64,
});

/** Defaults filled in and checked; throws RangeError naming the bad setting. */
export function resolveHealthSettings(partial: Partial<HealthSettings> = {}): HealthSettings {
  const s: HealthSettings = { ...DEFAULT_HEALTH_SETTINGS, ...partial };
  const positive: (keyof HealthSettings)[] = [
    'latencyLimitMs', 'horizonMs', 'opTimeoutMs', 'suspectRatio', 'recoverRatio', 'evalWindowMs', 'errorWindowMs', 'trendWindowMs',
    'bucketMs', 'baselineHalfLifeMs', 'transitionLogSize',
  ];
  for (const key of positive) {
    if (!(Number.isFinite(s[key]) && s[key] > 0)) throw new RangeError(`health setting ${key}: expected a number > 0, got ${s[key]}`);
  }
  const nonNegative: (keyof HealthSettings)[] = [
    'minHealthyForFailbackMs', 'suspectConfirmMs', 'minHealthyForClearMs', 'minErrorsForRate', 'minLatencyDeltaMs', 'minSamples',
    'minProbesForFailback', 'baselineWarmupMs',
  ];
  for (const key of nonNegative) {
    if (!(Number.isFinite(s[key]) && s[key] >= 0)) throw new RangeError(`health setting ${key}: expected a number >= 0, got ${s[key]}`);
  }
  if (!(s.errorRateThreshold >= 0 && s.errorRateThreshold < 1)) throw new RangeError('health setting errorRateThreshold: expected 0 <= x < 1');
  if (s.recoverRatio > s.suspectRatio) throw new RangeError('health setting recoverRatio must not exceed suspectRatio (no hysteresis otherwise)');
  if (Math.min(s.evalWindowMs, s.errorWindowMs, s.trendWindowMs) < s.bucketMs) throw new RangeError('health settings: windows must be at least one bucket');
  return s;
}
