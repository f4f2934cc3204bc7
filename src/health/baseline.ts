/**
 * The learned normal latency of one stream of operations: what "slow" is measured against.
 *
 * Learned only from healthy periods (the monitor decides which updates are eligible) so that a
 * fault never becomes the norm, and even then it rises slowly and falls quickly: a slow
 * degradation that stays under the suspect threshold at every step must not drag the baseline up
 * with it. It is also capped below the latency limit, where "k x baseline" would stop meaning
 * anything.
 *
 * Warm-up: the first eligible updates are averaged plainly (an EWMA seeded from one sample would
 * take minutes to forget an odd first second); the baseline counts as established after
 * warmupMs of eligible updates.
 */

export interface BaselineSettings {
  /** EWMA half-life for decreases. Default 10 min. */
  halfLifeMs: number;
  /** Increases are learned this many times more slowly. Default 8. */
  riseSlowdown: number;
  /** Eligible time needed before the baseline is trusted. Default 10 s. */
  warmupMs: number;
  /** The baseline never exceeds this (µs). Default: no cap. */
  ceilingUs: number;
}

export const DEFAULT_BASELINE_SETTINGS: BaselineSettings = {
  halfLifeMs: 600_000,
  riseSlowdown: 8,
  warmupMs: 10_000,
  ceilingUs: Infinity,
};

/** An update is not allowed to cover more time than this (a long gap is not a long healthy period). */
const MAX_STEP_MS = 10_000;

export class LatencyBaseline {
  private readonly settings: BaselineSettings;
  private p50?: number;
  private p95?: number;
  private lastUpdateMs?: number;
  /** Eligible time learned so far (capped at warmupMs; only the warm-up needs it). */
  private learnedMs = 0;
  private warmupUpdates = 0;

  constructor(settings: Partial<BaselineSettings> = {}) {
    this.settings = { ...DEFAULT_BASELINE_SETTINGS, ...settings };
  }

  /** Trusted: enough healthy time has been seen. */
  get established(): boolean {
    return this.p95 !== undefined && this.learnedMs >= this.settings.warmupMs;
  }

  get p50Us(): number | undefined {
    return this.p50;
  }

  get p95Us(): number | undefined {
    return this.p95;
  }

  /**
   * One observation of the current p50/p95 at nowMs. Pass eligible=false when the period is not
   * known to be healthy: the observation is then ignored, and the time elapsed does not count
   * towards the next update's weight.
   */
  update(p50Us: number, p95Us: number, nowMs: number, eligible: boolean): void {
    const prev = this.lastUpdateMs;
    this.lastUpdateMs = nowMs;
    if (!eligible || !Number.isFinite(p50Us) || !Number.isFinite(p95Us)) return;
    const stepMs = prev === undefined ? 0 : Math.min(MAX_STEP_MS, Math.max(0, nowMs - prev));
    const cap = (v: number): number => Math.min(v, this.settings.ceilingUs);
    if (this.p95 === undefined || this.p50 === undefined || this.learnedMs < this.settings.warmupMs) {
      // Warm-up: plain running mean.
      this.warmupUpdates++;
      const n = this.warmupUpdates;
      this.p50 = cap(this.p50 === undefined ? p50Us : this.p50 + (p50Us - this.p50) / n);
      this.p95 = cap(this.p95 === undefined ? p95Us : this.p95 + (p95Us - this.p95) / n);
      this.learnedMs = Math.min(this.settings.warmupMs, this.learnedMs + stepMs);
      return;
    }
    this.p50 = cap(ewma(this.p50, p50Us, stepMs, this.settings));
    this.p95 = cap(ewma(this.p95, p95Us, stepMs, this.settings));
  }
}

function ewma(current: number, observed: number, stepMs: number, s: BaselineSettings): number {
  const halfLife = observed > current ? s.halfLifeMs * s.riseSlowdown : s.halfLifeMs;
  const alpha = 1 - Math.pow(0.5, stepMs / halfLife);
  return current + alpha * (observed - current);
}
