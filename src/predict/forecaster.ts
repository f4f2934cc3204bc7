import { fitLinear, predictLinear, shrink, type LinearCoefficients } from './ml';

/**
 * Forecasts one volume metric (IOPS, bytes/s or latency, at 1-minute steps) for several horizons,
 * with one linear model per horizon ("direct" multi-horizon forecasting: no error compounding
 * from feeding forecasts back in).
 *
 * The forecast for horizon h at origin t is the mean of the next h steps, which is what the
 * planner wants (expected load over the next minute / 10 minutes / hour). Features, all divided
 * by the series' recent mean so that volumes of any size share one coefficient space:
 *   - level: means of the last 1, 5, 15 and 60 steps (the lagged values),
 *   - trend: mean of the last 60 steps minus the 60 before,
 *   - per seasonal period m the history covers (daily 1440, weekly 10080 steps by default):
 *     the mean of the target window one season ago, and the 5-step level one season ago
 *     (so the model can learn "same as yesterday, adjusted by how today differs so far").
 * A model per "feature level" (0 = no season yet, 1 = daily, 2 = daily + weekly); the feature
 * vectors are prefixes of each other, so a young volume uses the richest level it has.
 *
 * Online refit: every completed step yields one training row per horizon (the origin h steps ago
 * and the now-known mean of the steps since); rows go into a bounded ring per (level, horizon),
 * and the model is refitted every `refitEverySamples` rows with ml-regression's OLS (plus a tiny
 * ridge). Personalisation: the volume's coefficients are shrunk towards a global model fitted on
 * the pooled rows of every volume on the machine (see ModelStore) with weight n / (n + prior).
 * The answer is the regression's only while its recent errors beat the seasonal-naive yardstick's.
 */
export interface ForecasterOptions {
  /** Horizons in steps (default 1, 10 and 60 one-minute steps). */
  horizonsSteps: number[];
  /** Seasonal periods in steps, shortest first (default daily and weekly at 1-minute steps). */
  seasonalPeriodsSteps: number[];
  /** Training rows kept per (level, horizon). */
  trainingRows: number;
  refitEverySamples: number;
  /** Shrinkage prior strength, in rows: with this many own rows, local and global weigh equally. */
  priorSamples: number;
  /** Steps of history the scale (recent mean) is taken over. */
  scaleWindowSteps: number;
}

export const DEFAULT_FORECASTER_OPTIONS: Readonly<ForecasterOptions> = {
  horizonsSteps: [1, 10, 60],
  seasonalPeriodsSteps: [1440, 10080],
  trainingRows: 2000,
  refitEverySamples: 30,
  priorSamples: 500,
  scaleWindowSteps: 1440,
};

const LEVEL_WINDOWS = [1, 5, 15, 60];
const BASE_FEATURES = LEVEL_WINDOWS.length + 1;
/** Rows before a first fit: fewer give wild coefficients on bursty series. */
const MIN_ROWS_TO_FIT = 120;
/** Model selection: EWMA factor of the recent errors, and scored points before trusting them. */
const SELECTION_ALPHA = 0.02;
const MIN_SCORED_TO_TRUST = 60;

/** Key of a model: feature level and horizon. */
export function modelKey(level: number, horizonSteps: number): string {
  return `${level}:${horizonSteps}`;
}

export type ModelSet = Record<string, LinearCoefficients>;

export interface TrainingSet {
  rows: number[][];
  targets: number[];
}

/** Bounded ring of training rows. */
class RowRing {
  readonly rows: number[][] = [];
  readonly targets: number[] = [];
  private next = 0;
  sinceFit = 0;
  constructor(private readonly capacity: number) {}
  push(row: number[], target: number): void {
    if (this.rows.length < this.capacity) {
      this.rows.push(row);
      this.targets.push(target);
    } else {
      this.rows[this.next] = row;
      this.targets[this.next] = target;
      this.next = (this.next + 1) % this.capacity;
    }
    this.sinceFit++;
  }
  last(n: number): TrainingSet {
    const k = Math.min(n, this.rows.length);
    const out: TrainingSet = { rows: [], targets: [] };
    for (let i = this.rows.length - k; i < this.rows.length; i++) {
      const j = (this.next + i) % this.rows.length;
      out.rows.push(this.rows[j]);
      out.targets.push(this.targets[j]);
    }
    return out;
  }
}

/** Forecast quality accumulator: model vs seasonal-naive absolute errors on the same points. */
export interface MaseAccumulator {
  modelAbsError: number;
  benchmarkAbsError: number;
  points: number;
}

/** One scored forecast: from origin step `origin`, the mean of steps origin+1..origin+h. */
export interface ScoredPoint {
  origin: number;
  forecast: number;
  /** The seasonal-naive yardstick's forecast for the same window. */
  naive: number;
  actual: number;
}

/** Scored forecasts kept per horizon, newest last (what `shadowfs forecast` shows). */
export const RECENT_POINTS = 120;

export class SeriesForecaster {
  readonly o: ForecasterOptions;
  /** Cumulative sums of the series in a ring: mean over any window is O(1). */
  private readonly cum: Float64Array;
  private readonly capacity: number;
  /** Number of steps pushed so far; step i is stored at i % capacity. */
  private length = 0;
  private readonly training = new Map<string, RowRing>();
  private readonly local = new Map<string, LinearCoefficients>();
  private global: ModelSet = {};
  /** Pending forecasts per horizon, by origin step, for scoring. */
  private readonly pending = new Map<number, Map<number, { model: number | undefined; bench: number; chosen: number; level: number }>>();
  /** Recent absolute error (EWMA) of the regression and of the yardstick, per horizon. */
  private readonly recentError = new Map<number, { model: number; bench: number; n: number }>();
  readonly score = new Map<number, MaseAccumulator>();
  private readonly recent = new Map<number, ScoredPoint[]>();
  private refitsDeferred = false;

  constructor(options: Partial<ForecasterOptions> = {}) {
    this.o = { ...DEFAULT_FORECASTER_OPTIONS, ...options };
    this.o.seasonalPeriodsSteps = [...this.o.seasonalPeriodsSteps].sort((a, b) => a - b);
    const maxH = Math.max(...this.o.horizonsSteps);
    const maxM = Math.max(0, ...this.o.seasonalPeriodsSteps);
    this.capacity = Math.max(maxM + maxH + 130, this.o.scaleWindowSteps + maxH + 2, 256);
    this.cum = new Float64Array(this.capacity);
    for (const h of this.o.horizonsSteps) {
      this.pending.set(h, new Map());
      this.recentError.set(h, { model: 0, bench: 0, n: 0 });
      this.score.set(h, { modelAbsError: 0, benchmarkAbsError: 0, points: 0 });
      this.recent.set(h, []);
    }
  }

  get steps(): number {
    return this.length;
  }

  /** Number of seasonal periods the history covers (the richest feature level usable now). */
  levelAt(t: number): number {
    let level = 0;
    for (const m of this.o.seasonalPeriodsSteps) if (t - m - 4 >= 0) level++;
    return level;
  }

  featureCount(level: number): number {
    return BASE_FEATURES + 2 * level;
  }

  setGlobal(models: ModelSet): void {
    this.global = models;
  }

  /** The coefficients forecasts use for a model key: the volume's own, shrunk towards the global. */
  personalisedModel(key: string): LinearCoefficients | undefined {
    return shrink(this.local.get(key), this.global[key], this.o.priorSamples);
  }

  localModels(): ModelSet {
    return Object.fromEntries(this.local);
  }

  /** The newest training rows per model key (what a volume contributes to the global pool). */
  exportSamples(maxRowsPerKey: number): Record<string, TrainingSet> {
    const out: Record<string, TrainingSet> = {};
    for (const [key, ring] of this.training) out[key] = ring.last(maxRowsPerKey);
    return out;
  }

  /** The last scored forecasts at horizon h (at most RECENT_POINTS), oldest first. */
  recentPoints(h: number): readonly ScoredPoint[] {
    return this.recent.get(h) ?? [];
  }

  /** Append the value of the step that just completed. */
  push(value: number): void {
    const v = Number.isFinite(value) ? value : this.length > 0 ? this.valueAt(this.length - 1) : 0;
    const t = this.length;
    this.cum[t % this.capacity] = (t > 0 ? this.cum[(t - 1) % this.capacity] : 0) + v;
    this.length++;
    this.scorePending(t);
    this.learn(t);
    // Forecasts from the new origin, kept to be scored when their windows complete.
    for (const h of this.o.horizonsSteps) {
      const model = this.regression(h);
      const bench = this.benchmark(t, h);
      const chosen = this.forecast(h);
      if (bench !== undefined && chosen !== undefined) this.pending.get(h)?.set(t, { model, bench, chosen, level: this.levelAt(t) });
    }
  }

  /**
   * Mean over the next h steps from the latest origin; undefined with no history. This is the
   * regression's forecast while it has recently been at least as accurate as the seasonal-naive
   * yardstick, and the yardstick otherwise (online model selection on past errors only): a young
   * model, or one thrown by a regime change, never does worse than the yardstick for long.
   */
  forecast(h: number): number | undefined {
    const t = this.length - 1;
    if (t < 0) return undefined;
    const e = this.recentError.get(h);
    const model = this.regression(h);
    if (model === undefined || !e || e.n < MIN_SCORED_TO_TRUST || !(e.model < e.bench)) return this.benchmark(t, h);
    return model;
  }

  /** The regression's own forecast (richest fitted feature level), if any model is fitted. */
  regression(h: number): number | undefined {
    const t = this.length - 1;
    if (t < 0) return undefined;
    const level = this.levelAt(t);
    for (let l = level; l >= 0; l--) {
      const coef = shrink(this.local.get(modelKey(l, h)), this.global[modelKey(l, h)], this.o.priorSamples);
      if (!coef) continue;
      const scale = this.scale(t);
      const x = this.features(t, h, l, scale);
      return Math.max(0, predictLinear(coef, x) * scale);
    }
    return undefined;
  }

  /**
   * MASE at horizon h: mean absolute error of what forecast() returned over that of the
   * seasonal-naive forecast on the same points (NaN if none). Below 1: better than the yardstick.
   */
  mase(h: number): number {
    const s = this.score.get(h);
    if (!s || s.points === 0) return Number.NaN;
    if (s.benchmarkAbsError === 0) return s.modelAbsError === 0 ? 1 : Number.POSITIVE_INFINITY;
    return s.modelAbsError / s.benchmarkAbsError;
  }

  /**
   * The yardstick: seasonal naive (the same window one season ago) with the shortest season the
   * history covers; plain naive (mean of the last h steps) before one season has been seen.
   */
  benchmark(t: number, h: number): number | undefined {
    if (t < 0) return undefined;
    for (const m of this.o.seasonalPeriodsSteps) {
      if (m >= h && t + 1 - m >= 0) return this.mean(t + 1 - m, t + h - m);
    }
    return this.mean(Math.max(0, t - h + 1), t);
  }

  valueAt(i: number): number {
    return this.cum[i % this.capacity] - (i > 0 ? this.cum[(i - 1) % this.capacity] : 0);
  }

  /** Mean of steps [a, b] (inclusive), both within retained history. */
  private mean(a: number, b: number): number {
    const lo = Math.max(a, 0, this.length - this.capacity + 1);
    if (b < lo) return 0;
    const s = this.cum[b % this.capacity] - (lo > 0 ? this.cum[(lo - 1) % this.capacity] : 0);
    return s / (b - lo + 1);
  }

  private scale(t: number): number {
    return Math.max(1e-6, this.mean(Math.max(0, t - this.o.scaleWindowSteps + 1), t));
  }

  private features(t: number, h: number, level: number, scale: number): number[] {
    const x: number[] = [];
    for (const w of LEVEL_WINDOWS) x.push(this.mean(Math.max(0, t - w + 1), t) / scale);
    const recent = this.mean(Math.max(0, t - 59), t);
    const before = t >= 60 ? this.mean(Math.max(0, t - 119), t - 60) : recent;
    x.push((recent - before) / scale);
    for (let i = 0; i < level; i++) {
      const m = this.o.seasonalPeriodsSteps[i];
      // Seasons shorter than the horizon cannot supply a past target window: repeat the level.
      const target = m >= h ? this.mean(t + 1 - m, t + h - m) : this.mean(t - m - 4, t - m);
      x.push(target / scale, this.mean(t - m - 4, t - m) / scale);
    }
    return x;
  }

  private learn(newest: number): void {
    for (const h of this.o.horizonsSteps) {
      const origin = newest - h;
      if (origin < 1) continue;
      const scale = this.scale(origin);
      const target = this.mean(origin + 1, newest) / scale;
      const top = this.levelAt(origin);
      const full = this.features(origin, h, top, scale);
      for (let l = 0; l <= top; l++) {
        const key = modelKey(l, h);
        let ring = this.training.get(key);
        if (!ring) {
          ring = new RowRing(this.o.trainingRows);
          this.training.set(key, ring);
        }
        ring.push(full.slice(0, this.featureCount(l)), target);
        if (!this.refitsDeferred && ring.sinceFit >= this.o.refitEverySamples && ring.rows.length >= MIN_ROWS_TO_FIT) this.refit(key, ring);
      }
    }
  }

  private refit(key: string, ring: RowRing): void {
    ring.sinceFit = 0;
    const fit = fitLinear(ring.rows, ring.targets, { ridge: 1e-3 });
    if (fit) this.local.set(key, fit);
  }

  /**
   * While deferred, rows are collected but models not refitted (catching up on many steps at once:
   * one fit at the end instead of one per refitEverySamples rows, which would hold the event loop
   * for minutes after a remount with weeks of history). Ending the deferral fits what is due.
   */
  deferRefits(on: boolean): void {
    this.refitsDeferred = on;
    if (on) return;
    for (const [key, ring] of this.training) {
      if (ring.sinceFit >= this.o.refitEverySamples && ring.rows.length >= MIN_ROWS_TO_FIT) this.refit(key, ring);
    }
  }

  private scorePending(newest: number): void {
    for (const h of this.o.horizonsSteps) {
      const pend = this.pending.get(h);
      const acc = this.score.get(h);
      if (!pend || !acc) continue;
      const origin = newest - h;
      const f = pend.get(origin);
      if (!f) continue;
      pend.delete(origin);
      const actual = this.mean(origin + 1, newest);
      acc.modelAbsError += Math.abs(actual - f.chosen);
      acc.benchmarkAbsError += Math.abs(actual - f.bench);
      acc.points++;
      const ring = this.recent.get(h);
      if (ring) {
        ring.push({ origin, forecast: f.chosen, naive: f.bench, actual });
        if (ring.length > RECENT_POINTS) ring.shift();
      }
      const e = this.recentError.get(h);
      // Only forecasts where both existed, from the current feature level, inform the selection:
      // when a season becomes available the yardstick changes (naive -> seasonal naive) and
      // the comparison starts over.
      if (e && f.model !== undefined && f.level === this.levelAt(newest)) {
        e.model += SELECTION_ALPHA * (Math.abs(actual - f.model) - e.model);
        e.bench += SELECTION_ALPHA * (Math.abs(actual - f.bench) - e.bench);
        e.n++;
      } else if (e && f.level !== this.levelAt(newest)) {
        e.model = 0;
        e.bench = 0;
        e.n = 0;
      }
    }
  }
}

/** The volume's metrics forecast together; latency gaps (idle minutes) carry the last value. */
export type VolumeMetric = 'iops' | 'bytesPerS' | 'latencyUs';
export const VOLUME_METRICS: readonly VolumeMetric[] = ['iops', 'bytesPerS', 'latencyUs'];

export interface VolumeForecast {
  horizonSteps: number;
  iops: number;
  bytesPerS: number;
  latencyUs: number;
}

export class VolumeForecaster {
  readonly metrics: Record<VolumeMetric, SeriesForecaster>;

  constructor(options: Partial<ForecasterOptions> = {}) {
    this.metrics = {
      iops: new SeriesForecaster(options),
      bytesPerS: new SeriesForecaster(options),
      latencyUs: new SeriesForecaster(options),
    };
  }

  get horizonsSteps(): readonly number[] {
    return this.metrics.iops.o.horizonsSteps;
  }

  /** Feed one completed step (minute). */
  push(step: { iops: number; bytesPerS: number; latencyUs: number }): void {
    this.metrics.iops.push(step.iops);
    this.metrics.bytesPerS.push(step.bytesPerS);
    this.metrics.latencyUs.push(step.latencyUs);
  }

  forecast(horizonSteps: number): VolumeForecast | undefined {
    const iops = this.metrics.iops.forecast(horizonSteps);
    if (iops === undefined) return undefined;
    return {
      horizonSteps,
      iops,
      bytesPerS: this.metrics.bytesPerS.forecast(horizonSteps) ?? 0,
      latencyUs: this.metrics.latencyUs.forecast(horizonSteps) ?? 0,
    };
  }

  mase(metric: VolumeMetric, horizonSteps: number): number {
    return this.metrics[metric].mase(horizonSteps);
  }

  /** See SeriesForecaster.deferRefits. */
  deferRefits(on: boolean): void {
    for (const m of VOLUME_METRICS) this.metrics[m].deferRefits(on);
  }

  setGlobal(models: Partial<Record<VolumeMetric, ModelSet>>): void {
    for (const m of VOLUME_METRICS) this.metrics[m].setGlobal(models[m] ?? {});
  }

  exportSamples(maxRowsPerKey: number): Record<VolumeMetric, Record<string, TrainingSet>> {
    return {
      iops: this.metrics.iops.exportSamples(maxRowsPerKey),
      bytesPerS: this.metrics.bytesPerS.exportSamples(maxRowsPerKey),
      latencyUs: this.metrics.latencyUs.exportSamples(maxRowsPerKey),
    };
  }
}
