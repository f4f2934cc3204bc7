/**
 * A fixed-size log-scale latency histogram: 8 bins per doubling from 1 µs to 2^28 µs (~4.5 min),
 * so a percentile read from it is within ~4.5% of the true value, whatever the number of samples.
 * 226 counters: memory does not grow with traffic.
 */

const BINS_PER_OCTAVE = 8;
const OCTAVES = 28;
/** Bin 0: below 1 µs; bins 1..224: [2^((i-1)/8), 2^(i/8)) µs; last bin: 2^28 µs and above. */
export const HISTOGRAM_BINS = 1 + OCTAVES * BINS_PER_OCTAVE + 1;
const LAST_BIN = HISTOGRAM_BINS - 1;

export function binOf(latencyUs: number): number {
  if (!(latencyUs >= 1)) return 0; // also NaN and negatives: a clock that went backwards is not "slow"
  return Math.min(LAST_BIN, 1 + Math.floor(Math.log2(latencyUs) * BINS_PER_OCTAVE));
}

/** The value a bin stands for: its geometric middle (the lower edge for the open-ended last bin). */
export function binValueUs(bin: number): number {
  if (bin <= 0) return 0.5;
  if (bin >= LAST_BIN) return 2 ** OCTAVES;
  return 2 ** ((bin - 0.5) / BINS_PER_OCTAVE);
}

export function newHistogram(): Uint32Array {
  return new Uint32Array(HISTOGRAM_BINS);
}

/**
 * The q-quantile (0 < q <= 1) of a histogram holding `total` samples, or undefined when empty.
 * Nearest-rank: the smallest bin whose cumulative count reaches ceil(q * total).
 *
 * minTail > 0 makes it robust for small counts: the rank is lowered so that at least minTail
 * samples lie at or above the answer (with 20 samples, p95 is the second largest: two stray slow
 * ops would make it; with minTail 5 it takes five). For total >= minTail / (1 - q) it is the plain quantile.
 */
export function quantileUs(hist: Uint32Array, total: number, q: number, minTail = 0): number | undefined {
  if (total <= 0) return undefined;
  const rank = Math.max(1, Math.min(Math.ceil(q * total), total - minTail + 1));
  let seen = 0;
  for (let bin = 0; bin < hist.length; bin++) {
    seen += hist[bin];
    if (seen >= rank) return binValueUs(bin);
  }
  return binValueUs(LAST_BIN);
}
