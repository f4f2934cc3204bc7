import { VOLUME_METRICS, type VolumeForecaster, type VolumeMetric } from './forecaster';
import { RESOLUTION_US } from './volume-series';

/**
 * What `shadowfs forecast` shows, from a volume forecaster: per horizon, the forecast for the
 * window starting now, the recent forecasts whose windows are over (forecast, seasonal naive and
 * actual side by side) and the MASE so far. Plain data, the same for a live mount and a trace.
 */
export type MetricValues = Record<VolumeMetric, number>;

export interface ForecastPoint {
  /** The forecast window (the mean over it is what was forecast). */
  fromMs: number;
  toMs: number;
  forecast: MetricValues;
  naive: MetricValues;
  actual: MetricValues;
}

export interface HorizonReport {
  /** "1m", "10m", "1h". */
  horizon: string;
  horizonSteps: number;
  /** Forecast for the window that starts after the newest complete minute; null with no history. */
  next: (MetricValues & { fromMs: number; toMs: number }) | null;
  /** MASE so far per metric (null before any window completed). */
  mase: Record<VolumeMetric, number | null>;
  scoredPoints: number;
  /** The newest scored forecasts, oldest first. */
  points: ForecastPoint[];
}

export interface ForecastReport {
  source: string;
  stepSeconds: number;
  /** Complete minutes the forecaster has seen. */
  minutesSeen: number;
  /** End of the newest complete minute (null before the first). */
  asOfMs: number | null;
  horizons: HorizonReport[];
}

const STEP_MS = RESOLUTION_US.minute / 1000;

export function horizonLabel(steps: number): string {
  return steps % 60 === 0 ? `${steps / 60}h` : `${steps}m`;
}

/** Parses "1m", "10m", "1h" (or a number of minutes) into forecaster steps. */
export function parseHorizon(s: string): number | undefined {
  const m = /^(\d+)\s*(m|min|h)?$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === 'h' ? 60 : 1);
}

/**
 * `lastMinute` is the Unix minute of the forecaster's newest step (PredictionEngine.lastFedMinute).
 * `horizons` limits the report to some of the forecaster's horizons; `points` bounds the list.
 */
export function forecastReport(
  source: string,
  f: VolumeForecaster,
  lastMinute: number,
  options: { horizons?: readonly number[]; points?: number } = {},
): ForecastReport {
  const steps = f.metrics.iops.steps;
  const minuteOf = (step: number): number => lastMinute - (steps - 1 - step);
  const maxPoints = Math.max(0, options.points ?? 10);
  const horizons = f.horizonsSteps.filter((h) => !options.horizons || options.horizons.includes(h));
  const out: HorizonReport[] = horizons.map((h) => {
    const forecast = steps > 0 ? f.forecast(h) : undefined;
    const startMinute = lastMinute + 1;
    const next = forecast ? { iops: forecast.iops, bytesPerS: forecast.bytesPerS, latencyUs: forecast.latencyUs, fromMs: startMinute * STEP_MS, toMs: (startMinute + h) * STEP_MS } : null;
    const mase = Object.fromEntries(VOLUME_METRICS.map((m) => {
      const v = f.mase(m, h);
      return [m, Number.isFinite(v) ? v : null];
    })) as Record<VolumeMetric, number | null>;
    // The three series are pushed together, so their scored points share origins.
    const byMetric = Object.fromEntries(VOLUME_METRICS.map((m) => [m, new Map(f.metrics[m].recentPoints(h).map((p) => [p.origin, p]))]));
    const points: ForecastPoint[] = [];
    const iopsPoints = f.metrics.iops.recentPoints(h);
    for (const p of iopsPoints.slice(Math.max(0, iopsPoints.length - maxPoints))) {
      const pick = (field: 'forecast' | 'naive' | 'actual'): MetricValues =>
        Object.fromEntries(VOLUME_METRICS.map((m) => [m, byMetric[m].get(p.origin)?.[field] ?? Number.NaN])) as MetricValues;
      const from = minuteOf(p.origin) + 1;
      points.push({ fromMs: from * STEP_MS, toMs: (from + h) * STEP_MS, forecast: pick('forecast'), naive: pick('naive'), actual: pick('actual') });
    }
    return { horizon: horizonLabel(h), horizonSteps: h, next, mase, scoredPoints: f.metrics.iops.score.get(h)?.points ?? 0, points };
  });
  return { source, stepSeconds: STEP_MS / 1000, minutesSeen: steps, asOfMs: steps > 0 ? (lastMinute + 1) * STEP_MS : null, horizons: out };
}
