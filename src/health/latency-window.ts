/**
 * A sliding window of operation samples (time, latency, outcome), kept as a ring of time buckets,
 * each a log-scale histogram plus counters. Memory is fixed by the window's span and bucket size,
 * never by the number of samples: percentiles are read from the merged histograms.
 *
 * Time is passed in (ms, any monotonic clock, fractions allowed), never read here.
 */
import { HISTOGRAM_BINS, binOf, newHistogram, quantileUs } from './latency-histogram';

/** ok: answered; error: failed in a way that says the volume is unwell; timeout: no answer within the op timeout. */
export type SampleOutcome = 'ok' | 'error' | 'timeout';

export interface WindowSummary {
  /** Samples in the span, of which errors (timeouts included) and timeouts. */
  count: number;
  errors: number;
  timeouts: number;
  /** errors / count; 0 when empty. */
  errorRate: number;
  /** Percentiles over every sample (failed ones too: a timeout's latency is part of the story). Undefined when empty. */
  p50Us?: number;
  p95Us?: number;
  p99Us?: number;
  maxUs?: number;
  /**
   * p95 with at least ROBUST_TAIL samples at or above it: the same as p95 from 100 samples on, a
   * lower quantile below (a couple of stray slow ops among 20 do not make a slow p95). Judge by this.
   */
  robustP95Us?: number;
}

/** Samples that must lie at or above robustP95Us. */
export const ROBUST_TAIL = 5;
/** The same for a trend point: its few samples make each point noisy, the regression averages. */
const POINT_TAIL = 3;

/** A run of consecutive buckets, for trend fitting. */
export interface BucketPoint {
  /** Sample-weighted middle of the time its buckets cover (up to nowMs for the current one). */
  timeMs: number;
  count: number;
  errors: number;
  /** p95 with at least a few samples at or above it (see quantileUs minTail). */
  p95Us: number;
}

export interface LatencyWindowOptions {
  /** How far back the window reaches. Default 30 s. */
  spanMs?: number;
  /** Bucket width: the resolution of the span and of trend points. Default 1 s. */
  bucketMs?: number;
}

interface Bucket {
  /** floor(timeMs / bucketMs) of the samples it holds; -Infinity when never used. */
  index: number;
  count: number;
  errors: number;
  timeouts: number;
  maxUs: number;
  hist: Uint32Array;
}

/** More buckets than this is a misconfiguration (memory: ~1 KiB per bucket). */
const MAX_BUCKETS = 3600;

export class LatencyWindow {
  readonly spanMs: number;
  readonly bucketMs: number;
  private readonly ring: Bucket[];
  /** Scratch histogram for merges (one per window: summaries are not reentrant anyway). */
  private readonly merged = newHistogram();

  constructor(options: LatencyWindowOptions = {}) {
    this.bucketMs = options.bucketMs ?? 1_000;
    this.spanMs = options.spanMs ?? 30_000;
    if (!(this.bucketMs > 0) || !(this.spanMs >= this.bucketMs)) throw new RangeError('LatencyWindow: need spanMs >= bucketMs > 0');
    // One extra bucket: the current one is partial, so a full span always fits.
    const buckets = Math.ceil(this.spanMs / this.bucketMs) + 1;
    if (buckets > MAX_BUCKETS) throw new RangeError(`LatencyWindow: ${buckets} buckets is too many (max ${MAX_BUCKETS})`);
    this.ring = Array.from({ length: buckets }, () => ({ index: -Infinity, count: 0, errors: 0, timeouts: 0, maxUs: 0, hist: newHistogram() }));
  }

  /**
   * Adds a sample. A sample older than the window (its bucket already reused for later time) is
   * dropped: late reports of long-finished ops must not rewrite recent history.
   */
  record(timeMs: number, latencyUs: number, outcome: SampleOutcome = 'ok'): void {
    const index = Math.floor(timeMs / this.bucketMs);
    const b = this.ring[mod(index, this.ring.length)];
    if (b.index > index) return;
    if (b.index < index) resetBucket(b, index);
    b.count++;
    if (outcome !== 'ok') b.errors++;
    if (outcome === 'timeout') b.timeouts++;
    if (latencyUs > b.maxUs) b.maxUs = latencyUs;
    b.hist[binOf(latencyUs)]++;
  }

  /** Percentiles, counts and error rate over the last spanMs (default: the whole window) before nowMs. */
  summary(nowMs: number, spanMs = this.spanMs): WindowSummary {
    const hist = this.merged;
    hist.fill(0);
    let count = 0;
    let errors = 0;
    let timeouts = 0;
    let maxUs = 0;
    for (const b of this.bucketsIn(nowMs, spanMs)) {
      count += b.count;
      errors += b.errors;
      timeouts += b.timeouts;
      if (b.maxUs > maxUs) maxUs = b.maxUs;
      for (let i = 0; i < HISTOGRAM_BINS; i++) hist[i] += b.hist[i];
    }
    const s: WindowSummary = { count, errors, timeouts, errorRate: count ? errors / count : 0 };
    if (count) {
      s.p50Us = quantileUs(hist, count, 0.5);
      s.p95Us = quantileUs(hist, count, 0.95);
      s.p99Us = quantileUs(hist, count, 0.99);
      s.maxUs = maxUs;
      s.robustP95Us = quantileUs(hist, count, 0.95, ROBUST_TAIL);
    }
    return s;
  }

  /**
   * The last spanMs before nowMs as points of at least minSamples samples each, oldest first:
   * one per bucket when traffic is brisk, runs of consecutive buckets merged when it is thin (a
   * p95 of three samples is noise, not a measurement). Runs are formed from the newest bucket
   * back, so the newest point is as recent as it can be; an oldest run short of minSamples is dropped.
   */
  points(nowMs: number, spanMs = this.spanMs, minSamples = 20): BucketPoint[] {
    const buckets = this.bucketsIn(nowMs, spanMs).filter((b) => b.count > 0);
    const out: BucketPoint[] = [];
    const hist = this.merged;
    let count = 0;
    let errors = 0;
    let weightedMs = 0;
    hist.fill(0);
    for (let i = buckets.length - 1; i >= 0; i--) {
      const b = buckets[i];
      const startMs = b.index * this.bucketMs;
      const endMs = Math.min(startMs + this.bucketMs, Math.max(startMs, nowMs));
      count += b.count;
      errors += b.errors;
      weightedMs += b.count * (startMs + endMs) / 2;
      for (let j = 0; j < HISTOGRAM_BINS; j++) hist[j] += b.hist[j];
      if (count >= minSamples) {
        out.push({ timeMs: weightedMs / count, count, errors, p95Us: quantileUs(hist, count, 0.95, POINT_TAIL) as number });
        count = 0;
        errors = 0;
        weightedMs = 0;
        hist.fill(0);
      }
    }
    return out.reverse();
  }

  /** Buckets covering (nowMs - spanMs, nowMs], oldest first, by bucket: the current partial bucket counts. */
  private bucketsIn(nowMs: number, spanMs: number): Bucket[] {
    const span = Math.min(spanMs, this.spanMs);
    const last = Math.floor(nowMs / this.bucketMs);
    const first = Math.floor((nowMs - span) / this.bucketMs) + 1;
    const out: Bucket[] = [];
    for (let index = Math.max(first, last - this.ring.length + 1); index <= last; index++) {
      const b = this.ring[mod(index, this.ring.length)];
      if (b.index === index) out.push(b);
    }
    return out;
  }
}

function resetBucket(b: Bucket, index: number): void {
  b.index = index;
  b.count = 0;
  b.errors = 0;
  b.timeouts = 0;
  b.maxUs = 0;
  b.hist.fill(0);
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
