/**
 * Recent read latency per tier, as a histogram that halves every few thousand samples so it
 * follows the tier as it is now. Hedged reads use its p95: a read slower than that is also sent
 * to the next fresh copy. Also what the metrics report per tier.
 */
import { newHistogram, quantileUs, binOf } from '../health/latency-histogram';

const HALVE_EVERY = 4096;
/** Too few samples for a p95 to mean anything: no hedging yet. */
const MIN_SAMPLES = 32;

interface TierHistory {
  hist: Uint32Array;
  total: number;
  sinceHalving: number;
  p95Us: number | undefined;
}

export class TierLatencies {
  private readonly tiers = new Map<number, TierHistory>();

  record(tierId: number, latencyUs: number): void {
    let t = this.tiers.get(tierId);
    if (!t) this.tiers.set(tierId, (t = { hist: newHistogram(), total: 0, sinceHalving: 0, p95Us: undefined }));
    t.hist[binOf(latencyUs)]++;
    t.total++;
    if (++t.sinceHalving >= HALVE_EVERY) {
      t.total = 0;
      for (let i = 0; i < t.hist.length; i++) {
        t.hist[i] >>>= 1;
        t.total += t.hist[i];
      }
      t.sinceHalving = 0;
    }
    // Recomputed every few samples: a quantile walks the bins.
    if (t.total < MIN_SAMPLES) t.p95Us = undefined;
    else if (t.p95Us === undefined || (t.sinceHalving & 31) === 0) t.p95Us = quantileUs(t.hist, t.total, 0.95);
  }

  /** Recent p95 of the tier's reads, undefined until there are enough samples. */
  p95Us(tierId: number): number | undefined {
    return this.tiers.get(tierId)?.p95Us;
  }

  forget(tierId: number): void {
    this.tiers.delete(tierId);
  }
}
