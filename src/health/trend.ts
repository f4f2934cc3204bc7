/**
 * Where latency is heading: a least-squares line (ml-regression's SimpleLinearRegression) through
 * recent per-bucket p95 values, and when that line reaches the latency limit.
 *
 * Robust to noise in three ways: it is fed per-bucket p95s rather than raw samples (one slow op
 * moves a bucket's p95 little); a slope only counts when it is significant (one-sided t-test at
 * 99.5%, so a flat noisy series almost never "trends"); and a crossing must be reached from the
 * fitted line, not from one high point. It is also fitted over the recent half of the points,
 * because a ramp that starts after a long flat stretch (a hockey stick) is badly underestimated by
 * one line through both; the earliest significant crossing wins.
 */
import { fitLine } from '../predict/ml';

export interface TrendPoint {
  timeMs: number;
  valueUs: number;
}

export interface Trend {
  /** Points the line was fitted to. */
  points: number;
  slopeUsPerSec: number;
  /** The line's value at nowMs. */
  nowUs: number;
  /** Slope over its standard error (Infinity for an exact fit). */
  tStat: number;
  /** Rising, with a slope unlikely to be noise. */
  rising: boolean;
  /** ms from nowMs until the line reaches the limit: 0 when already there; undefined unless rising. */
  msToLimit?: number;
}

export interface TrendOptions {
  /** Fewer points than this: no trend. Default 4. */
  minPoints?: number;
}

/** One-sided 99.5% critical values of Student's t by degrees of freedom (n - 2); 2.58 beyond. */
const T_CRITICAL: readonly number[] = [Infinity, 63.66, 9.92, 5.84, 4.6, 4.03, 3.71, 3.5, 3.36, 3.25, 3.17, 3.11, 3.05, 3.01, 2.98, 2.95, 2.92, 2.9, 2.88, 2.86, 2.85];

function tCritical(dof: number): number {
  if (dof < T_CRITICAL.length) return T_CRITICAL[dof];
  return dof < 30 ? 2.8 : dof < 60 ? 2.7 : 2.58;
}

/** A line through the points, evaluated at nowMs. Undefined with fewer than minPoints points or no spread in time. */
export function fitTrend(points: readonly TrendPoint[], limitUs: number, nowMs: number, options: TrendOptions = {}): Trend | undefined {
  const n = points.length;
  if (n < Math.max(3, options.minPoints ?? 4)) return undefined;
  // x in seconds relative to now: the intercept is the fitted value now, and numbers stay small.
  const x = points.map((p) => (p.timeMs - nowMs) / 1000);
  const y = points.map((p) => p.valueUs);
  const xMean = x.reduce((a, b) => a + b, 0) / n;
  const sxx = x.reduce((a, b) => a + (b - xMean) ** 2, 0);
  if (!(sxx > 0)) return undefined;
  const { slope, intercept: nowUs } = fitLine(x, y);
  const ssr = y.reduce((a, yi, i) => a + (yi - (nowUs + slope * x[i])) ** 2, 0);
  const se = Math.sqrt(ssr / (n - 2) / sxx);
  const tStat = se > 0 ? slope / se : slope > 0 ? Infinity : slope < 0 ? -Infinity : 0;
  const rising = slope > 0 && tStat >= tCritical(n - 2);
  const trend: Trend = { points: n, slopeUsPerSec: slope, nowUs, tStat, rising };
  if (rising) trend.msToLimit = nowUs >= limitUs ? 0 : ((limitUs - nowUs) / slope) * 1000;
  return trend;
}

/**
 * The trend over all points and over the most recent half of their time span; the one predicting
 * the earliest crossing of limitUs if any is rising, else the full one. Points oldest first.
 */
export function predictCrossing(points: readonly TrendPoint[], limitUs: number, nowMs: number, options: TrendOptions = {}): Trend | undefined {
  const full = fitTrend(points, limitUs, nowMs, options);
  if (points.length === 0) return full;
  const midMs = (points[0].timeMs + nowMs) / 2;
  const recent = fitTrend(points.filter((p) => p.timeMs >= midMs), limitUs, nowMs, options);
  const candidates = [full, recent].filter((t): t is Trend => t !== undefined && t.msToLimit !== undefined);
  if (candidates.length === 0) return full ?? recent;
  return candidates.reduce((a, b) => ((b.msToLimit as number) < (a.msToLimit as number) ? b : a));
}
