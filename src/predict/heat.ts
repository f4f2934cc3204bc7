import type { ExtentRef } from '../tiers/tier';
import { countsAt, neighbourCountAt, shortCountAt, TAUS_US, type ExtentStats, type PeriodTracker } from './extent-stats';
import type { WorkloadHistory } from './history';
import { NO_HINT, nextOccurrence, type HintEffect } from './hints';
import { fitLinear, type LinearCoefficients } from './ml';

/**
 * Extent heat: the expected number of accesses to one extent over the next horizon.
 *
 *   heat = volumeFactor x rate part + periodic part, then hints (willneed floor, dontneed zero)
 *
 * Rate part: a linear model over "what the rate was" at three time scales plus the neighbours'
 * short-term rate (spatial locality: a hot set that slides along a file warms the extents next to
 * it before they are read). Each feature is already in "accesses per horizon" units (decayed count
 * / tau x horizon), so the default weights (summing to one) are an unbiased guess for a steady
 * stream, and the learned weights say how much each time scale is worth on this workload: the
 * engine samples random extents, waits one horizon, counts what actually happened and refits with
 * ml-regression (non-negative weights, so more accesses never mean less heat). A uniform random
 * workload learns ~zero weights (nothing predicts anything, so nothing churns); a Zipf hot set
 * learns the long windows; a shifting hot set learns the short window and the neighbours.
 *
 * Periodic part: an extent with a stable session period (see extent-stats) is expected to be read
 * again at lastSessionStart + period; from `leadUs` before that, it is worth its usual session
 * size, scaled by how regular the period has been. That is what promotes the extent read every
 * night at 02:00 at 01:59. Between runs (its session over), the same confidence discounts the
 * rate part, so a periodic extent leaves the fast tier after its run instead of squatting there.
 * The rate part also fades once an extent has been silent for longer than its own usual gap.
 *
 * volumeFactor comes from the volume forecast: an expected spike (forecast / recent load > 1)
 * scales up rate-based heat, so more is pre-staged ahead of a busy period.
 */
export interface HeatOptions {
  horizonUs: number;
  /** Periodic extents are worth their session from this long before it is due. */
  leadUs: number;
  /** Gaps observed before a period is trusted (1: after one repeat, at reduced confidence). */
  minPeriodSamples: number;
  /** Jitter at which a period stops counting, as a fraction of the period. */
  maxRelativeJitter: number;
  /** Learn the rate weights online (else keep the defaults). */
  learn: boolean;
  trainingRows: number;
  refitEveryRows: number;
  /** The rate part fades once silence exceeds this many of the extent's usual gaps (0: never). */
  staleAfterGaps: number;
  /** Rate weights before (or without) learning; default DEFAULT_HEAT_WEIGHTS. */
  initialWeights?: number[];
}

export const DEFAULT_HEAT_OPTIONS: Readonly<HeatOptions> = {
  horizonUs: 60e6,
  leadUs: 60e6,
  minPeriodSamples: 1,
  maxRelativeJitter: 0.1,
  learn: true,
  trainingRows: 6000,
  refitEveryRows: 1500,
  staleAfterGaps: 1,
};

/**
 * Features: short (1 min), medium (1 h), long (1 day) rate, the neighbours' short rate and the
 * hour rate faded by silence (see features()), all in accesses per horizon. Extents whose periodic
 * part is active are left out of training: their accesses are the period's to explain, and
 * crediting them to the rate or neighbour features would make every recently-run job's
 * neighbourhood look hot.
 */
export const HEAT_FEATURES = ['rateShort', 'rateHour', 'rateDay', 'neighbours', 'rateHourRecent'] as const;
export const DEFAULT_HEAT_WEIGHTS: LinearCoefficients = { weights: [0.3, 0.2, 0.3, 0.05, 0.2], intercept: 0, samples: 0 };

/** The next expected run of a periodic extent. */
export interface NextRun {
  startUs: number;
  /** Stage this long before startUs. */
  leadUs: number;
  /** The run is over (or was skipped) after this. */
  windowEndUs: number;
  confidence: number;
  /** Period samples of the tracker behind this run (its evidence class). */
  samples: number;
  sessionSize: number;
  sessionSpanUs: number;
}

const MAX_LEAD_US = 15 * 60e6;
/** Evidence classes for run precision: periods seen repeat once, twice, three times or more. */
const RUN_CLASSES = 3;
/** Prior: as if this many announced runs had all come (a new volume trusts periods at first). */
const RUN_PRIOR = 2;
const RUN_DECAY = 0.998;

interface PendingSample {
  stats: ExtentStats;
  x: number[];
  nonScanAtSample: number;
  dueUs: number;
}

export class HeatPredictor {
  readonly o: HeatOptions;
  private coef: LinearCoefficients = DEFAULT_HEAT_WEIGHTS;
  private readonly pending: PendingSample[] = [];
  private pendingHead = 0;
  private readonly rows: number[][] = [];
  private readonly targets: number[] = [];
  private rowNext = 0;
  private rowsSinceFit = 0;
  /** Multiplier from the volume forecast (see engine); 1 = no change expected. */
  volumeFactor = 1;
  private readonly runOutcomes = Array.from({ length: RUN_CLASSES }, () => ({ came: 0, announced: 0 }));

  constructor(
    private readonly history: WorkloadHistory,
    options: Partial<HeatOptions> = {},
  ) {
    this.o = { ...DEFAULT_HEAT_OPTIONS, ...options };
    if (this.o.initialWeights) this.coef = { weights: this.o.initialWeights.slice(), intercept: 0, samples: 0 };
  }

  get weights(): Readonly<LinearCoefficients> {
    return this.coef;
  }

  /** Feature vector of an extent (stats may be undefined for an extent never seen). */
  features(fileId: string, index: number, stats: ExtentStats | undefined, nowUs: number): number[] {
    const h = this.o.horizonUs;
    let e0 = 0;
    let e1 = 0;
    let e2 = 0;
    let er = 0;
    if (stats) {
      const c = countsAt(stats, nowUs);
      // An extent whose accesses a trusted period explains, and whose session is over, is not
      // "warm" between runs: it will be staged again before the next one. Without this, every
      // job's extents would sit in the fast tier between runs on the strength of their average.
      // Staleness: silence far beyond the extent's own gap (see staleness()).
      const keep = (1 - this.betweenRunsDiscount(stats, nowUs)) * this.staleness(stats, c[1], nowUs);
      e0 = (c[0] / TAUS_US[0]) * h * keep;
      e1 = (c[1] / TAUS_US[1]) * h * keep;
      e2 = (c[2] / TAUS_US[2]) * h * keep;
      // The hour rate, faded by silence measured in the extent's own rhythm: an extent read every
      // few minutes that has not been read for half an hour has probably left its working period
      // (a phase change), whereas for a Poisson stream the silence would carry no information.
      const ratePerUs = c[1] / TAUS_US[1];
      er = e1 * Math.exp(-Math.max(0, nowUs - stats.lastAccessUs) * ratePerUs * 0.5);
    }
    let nb = 0;
    const r = this.history.statsOptions.neighbourRadius;
    if (stats) nb = ((neighbourCountAt(stats, nowUs) / TAUS_US[0]) * h) / (2 * r || 1);
    else if (r > 0) {
      // Never seen: look the neighbours up (only planning candidates next to hot extents get here).
      const file = this.history.extents.file(fileId);
      if (file) {
        let sum = 0;
        for (let d = -r; d <= r; d++) {
          const s = d === 0 ? undefined : file.get(index + d);
          if (s) sum += shortCountAt(s, nowUs);
        }
        nb = ((sum / TAUS_US[0]) * h) / (2 * r);
      }
    }
    return [e0, e1, e2, nb, er];
  }

  /** Expected accesses over the next horizon. */
  predict(ref: ExtentRef, nowUs: number, stats?: ExtentStats): number {
    const s = stats ?? this.history.extents.get(ref.fileId, ref.index);
    const hint = this.history.hints.empty ? NO_HINT : this.history.hints.effect(ref.fileId, ref.index, nowUs);
    if (hint.suppress) return 0;
    const x = this.features(ref.fileId, ref.index, s, nowUs);
    let rate = this.coef.intercept;
    for (let i = 0; i < x.length; i++) rate += this.coef.weights[i] * x[i];
    // The volume forecast scales the rate part only: a spike ahead means more of the same.
    let heat = Math.max(0, rate) * this.volumeFactor + this.periodic(s, nowUs, hint);
    if (hint.minAccesses > heat) heat = hint.minAccesses;
    return heat;
  }

  /** Periodic part of the heat: the next run's expected accesses, from `leadUs` before it. */
  periodic(s: ExtentStats | undefined, nowUs: number, hint: HintEffect = NO_HINT): number {
    if (hint.periodic && hint.periodic.periodUs > 0) {
      const next = nextOccurrence(hint.periodic.nextAtUs, hint.periodic.periodUs, nowUs - this.o.leadUs);
      return nowUs + this.o.leadUs >= next ? Math.max(1, s?.periods[0]?.sessionSizeEwma ?? 1) : 0;
    }
    if (!s) return 0;
    const run = this.nextRun(s, nowUs);
    if (!run || nowUs + run.leadUs < run.startUs) return 0;
    // A run's accesses spread over its span: a job that reads the extent once in a minute is worth
    // that access now; a hot set used all afternoon is worth its afternoon rate per horizon, the
    // same units as the rate part (otherwise a long session would outrank everything).
    const h = this.o.horizonUs;
    const spread = Math.min(1, h / Math.max(run.sessionSpanUs, h));
    return run.confidence * Math.max(1, run.sessionSize) * spread;
  }

  /**
   * How far a tracker's period is to be trusted: 0 .. 1. Its regularity (one repeat: 0.5; then
   * 1 - jitter / (maxRelativeJitter x period)) times the measured share of announced runs that
   * actually came for periods with as much evidence (see recordRunOutcome): on a workload where
   * two accesses a day apart are chance, not a schedule, single-repeat periods stop staging.
   */
  confidence(p: PeriodTracker): number {
    if (p.periodSamples < this.o.minPeriodSamples || p.periodUs <= 0) return 0;
    const regularity = p.periodSamples < 2 ? 0.5 : Math.max(0, Math.min(1, 1 - p.periodJitterUs / (this.o.maxRelativeJitter * p.periodUs)));
    return regularity > 0 ? regularity * this.runPrecision(p.periodSamples) : 0;
  }

  /** Share of announced runs that came, for periods with this many samples (optimistic prior). */
  runPrecision(periodSamples: number): number {
    const o = this.runOutcomes[Math.min(periodSamples, RUN_CLASSES) - 1];
    return o ? (o.came + RUN_PRIOR) / (o.announced + RUN_PRIOR) : 1;
  }

  /**
   * An announced run (the extent came due) came (the extent was read in its window) or did not.
   * Counts decay (about the last 500 outcomes per class count), so the precision follows the workload.
   */
  recordRunOutcome(periodSamples: number, came: boolean): void {
    const o = this.runOutcomes[Math.min(Math.max(1, periodSamples), RUN_CLASSES) - 1];
    o.came = o.came * RUN_DECAY + (came ? 1 : 0);
    o.announced = o.announced * RUN_DECAY + 1;
  }

  /**
   * Fading of the rate part once the extent has been silent for longer than its own usual gap
   * (hour count -> expected gap), by e^-(excess / gap): an extent read every five minutes that has
   * not been read for twenty has most likely left its working set (a phase ended, the data went
   * cold), which LRU notices and a pure frequency estimate does not. For a steady random stream
   * such a silence has probability e^-k after k gaps, so the fading is occasional and mild there.
   */
  staleness(s: ExtentStats, hourCount: number, nowUs: number): number {
    if (!(hourCount > 0.5) || this.o.staleAfterGaps <= 0) return 1;
    const gapUs = TAUS_US[1] / hourCount;
    const silenceUs = nowUs - s.lastAccessUs;
    const over = silenceUs - this.o.staleAfterGaps * gapUs;
    return over > 0 ? Math.exp(-over / gapUs) : 1;
  }

  /**
   * How sure we are that the extent is between two runs of a trusted period (samples >= 2): the
   * period's confidence times the probability the current session is over, judged by the silence
   * since the last access against the session's own rhythm (its span / accesses). A job extent
   * read once per run is "between runs" right after the read; a hot set used all afternoon only
   * after a silence several times its usual gap. Largest over the trackers.
   */
  betweenRunsDiscount(s: ExtentStats, nowUs: number): number {
    const silenceUs = nowUs - s.lastAccessUs;
    if (!(silenceUs > 0)) return 0;
    let d = 0;
    for (const p of s.periods) {
      if (p.periodSamples < 2) continue;
      const conf = this.confidence(p);
      if (conf <= d) continue;
      const rhythmUs = Math.max(1e6, p.sessionSpanUsEwma / Math.max(1, p.sessionSizeEwma - 1));
      d = Math.max(d, conf * (1 - Math.exp(-silenceUs / (3 * rhythmUs))));
    }
    return d;
  }

  /**
   * The earliest upcoming run among the extent's trusted period trackers (skipping up to three
   * missed runs per tracker), or undefined when no period is trusted.
   */
  nextRun(s: ExtentStats, nowUs: number): NextRun | undefined {
    let best: NextRun | undefined;
    for (const p of s.periods) {
      const confidence = this.confidence(p);
      if (confidence <= 0) continue;
      const slackUs = Math.max(this.o.leadUs, 0.05 * p.periodUs, 2 * p.periodJitterUs);
      let next = p.sessionStartUs + p.periodUs;
      let k = 0;
      while (next + p.sessionSpanUsEwma + slackUs < nowUs && k <= 3) {
        next += p.periodUs;
        k++;
      }
      if (k > 3) continue;
      if (best && best.startUs <= next) continue;
      best = {
        startUs: next,
        // Stage earlier when the start time jitters, but not by more than a small share of the
        // period (a working period that starts anywhere in an hour is staged at most 15 min early).
        leadUs: Math.max(this.o.leadUs, Math.min(2 * p.periodJitterUs, 0.02 * p.periodUs, MAX_LEAD_US)),
        windowEndUs: next + p.sessionSpanUsEwma + slackUs,
        confidence,
        samples: p.periodSamples,
        sessionSize: p.sessionSizeEwma,
        sessionSpanUs: p.sessionSpanUsEwma,
      };
    }
    return best;
  }

  /** When the periodic part of this extent switches on (for the engine's due queue). */
  dueUs(s: ExtentStats, nowUs: number): number | undefined {
    const run = this.nextRun(s, nowUs);
    return run ? run.startUs - run.leadUs : undefined;
  }

  // ---- online learning of the rate weights ----

  /** Take `count` uniformly random extents as training samples, to be scored one horizon later. */
  sample(nowUs: number, count: number, rand: () => number): void {
    if (!this.o.learn) return;
    for (let i = 0; i < count; i++) {
      const s = this.history.extents.sample(rand());
      if (!s) return;
      if (this.periodic(s, nowUs) > 0) continue;
      this.pending.push({ stats: s, x: this.features(s.fileId, s.index, s, nowUs), nonScanAtSample: s.accesses - s.scanAccesses, dueUs: nowUs + this.o.horizonUs });
    }
    if (this.pending.length > 4 * this.o.trainingRows) {
      // Bound: drop the oldest unscored samples (time stopped advancing, or sampling outran it).
      this.pending.splice(0, this.pending.length - 2 * this.o.trainingRows);
      this.pendingHead = 0;
    }
  }

  /** Score samples whose horizon has passed; refit when enough new rows arrived. */
  mature(nowUs: number): void {
    if (!this.o.learn) return;
    while (this.pendingHead < this.pending.length && this.pending[this.pendingHead].dueUs <= nowUs) {
      const p = this.pending[this.pendingHead++];
      if (p.stats.slot < 0) continue; // evicted from the table meanwhile: its count is lost
      this.addRow(p.x, p.stats.accesses - p.stats.scanAccesses - p.nonScanAtSample);
    }
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    if (this.rowsSinceFit >= this.o.refitEveryRows && this.rows.length >= 200) this.refit();
  }

  private addRow(x: number[], y: number): void {
    if (this.rows.length < this.o.trainingRows) {
      this.rows.push(x);
      this.targets.push(y);
    } else {
      this.rows[this.rowNext] = x;
      this.targets[this.rowNext] = y;
      this.rowNext = (this.rowNext + 1) % this.o.trainingRows;
    }
    this.rowsSinceFit++;
  }

  private refit(): void {
    this.rowsSinceFit = 0;
    const fit = fitLinear(this.rows, this.targets, { ridge: 1e-2, nonNegative: true });
    if (fit) this.coef = fit;
  }
}
