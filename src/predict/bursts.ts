import type { ExtentStats } from './extent-stats';

/**
 * Co-access (burst) replay: extents that started a session together last time will likely start
 * one together again. A job reads its set in a burst; when two extents of last run's burst are read
 * again, the rest of that burst is staged at once, so the second run of a job (or the second day
 * of a working period) already hits, before any period has been measured.
 *
 * Index: every extent sits in the bucket (bucketUs wide) of its latest short-scale session start;
 * a new session moves it. When two extents leave the same bucket within `confirmUs`, the extents
 * still in that bucket and its two neighbours are returned (once per bucket and recurrence).
 * Background noise also fills buckets, so a bucket must hold several times the typical number of
 * session starts per bucket to count as a burst. Bounded: one entry per tracked extent, and at
 * most `maxReplayExtents` returned per trigger.
 */
export interface BurstOptions {
  /**
   * Off by default: on the benchmark workloads the periodic prediction already stages recurring
   * sets, and replaying whole buckets cost more copies than it saved (see docs/prediction.md).
   */
  enabled: boolean;
  bucketUs: number;
  confirmUs: number;
  /** Burst threshold: at least this many members... */
  minGroup: number;
  /** ...and this many times the typical bucket population. */
  noiseFactor: number;
  maxReplayExtents: number;
}

export const DEFAULT_BURST_OPTIONS: Readonly<BurstOptions> = {
  enabled: false,
  bucketUs: 10e6,
  confirmUs: 60e6,
  minGroup: 8,
  noiseFactor: 4,
  maxReplayExtents: 1024,
};

export class BurstIndex {
  readonly o: BurstOptions;
  private readonly buckets = new Map<number, Set<ExtentStats>>();
  private readonly bucketOf = new WeakMap<ExtentStats, number>();
  /** Leavers per old bucket: how many, since when. */
  private readonly leaving = new Map<number, { count: number; firstUs: number }>();
  /** Buckets already replayed (bucket -> time), so one recurrence triggers once. */
  private readonly replayed = new Map<number, number>();
  /** EWMA of session starts per bucket (the background level). */
  private typical = 0;
  private currentBucket = Number.NaN;
  private currentCount = 0;

  constructor(options: Partial<BurstOptions> = {}) {
    this.o = { ...DEFAULT_BURST_OPTIONS, ...options };
  }

  /** An extent started a short-scale session at `timeUs`. Returns extents worth staging now. */
  onSessionStart(s: ExtentStats, timeUs: number): ExtentStats[] {
    if (!this.o.enabled) return [];
    const b = Math.floor(timeUs / this.o.bucketUs);
    this.countStart(b);
    const old = this.bucketOf.get(s);
    if (old !== undefined) this.remove(s, old);
    let set = this.buckets.get(b);
    if (!set) {
      set = new Set();
      this.buckets.set(b, set);
    }
    set.add(s);
    this.bucketOf.set(s, b);
    if (old === undefined || old >= b - 1) return [];
    return this.maybeReplay(old, timeUs);
  }

  /** Forget an extent (evicted from the history). */
  forget(s: ExtentStats): void {
    const b = this.bucketOf.get(s);
    if (b !== undefined) this.remove(s, b);
  }

  /** Drop members evicted from the history (slot < 0); call now and then. */
  sweep(): void {
    for (const [b, set] of this.buckets) {
      for (const s of set) if (s.slot < 0) set.delete(s);
      if (set.size === 0) this.buckets.delete(b);
    }
  }

  get size(): number {
    let n = 0;
    for (const set of this.buckets.values()) n += set.size;
    return n;
  }

  private remove(s: ExtentStats, b: number): void {
    const set = this.buckets.get(b);
    if (!set) return;
    set.delete(s);
    if (set.size === 0) this.buckets.delete(b);
    this.bucketOf.delete(s);
  }

  private countStart(b: number): void {
    if (b === this.currentBucket) {
      this.currentCount++;
      return;
    }
    if (!Number.isNaN(this.currentBucket)) {
      // Idle buckets in between count as zeros.
      const idle = Math.min(1000, b - this.currentBucket - 1);
      this.typical += 0.05 * (this.currentCount - this.typical);
      for (let i = 0; i < idle; i++) this.typical *= 0.95;
    }
    this.currentBucket = b;
    this.currentCount = 1;
  }

  private maybeReplay(old: number, timeUs: number): ExtentStats[] {
    const l = this.leaving.get(old);
    if (!l || timeUs - l.firstUs > this.o.confirmUs) {
      this.leaving.set(old, { count: 1, firstUs: timeUs });
      this.trim();
      return [];
    }
    l.count++;
    if (l.count < 2 || this.replayed.has(old)) return [];
    const threshold = Math.max(this.o.minGroup, this.o.noiseFactor * this.typical);
    const groups = [old - 1, old, old + 1].map((k) => this.buckets.get(k));
    // The two leavers were members too.
    const population = groups.reduce((n, g) => n + (g?.size ?? 0), 0) + l.count;
    if (population < threshold) return [];
    for (const k of [old - 1, old, old + 1]) this.replayed.set(k, timeUs);
    // Only members untouched since that burst: an extent read continuously since (a hot one that
    // happened to start a session then) is not part of a recurring set, just noise in the bucket.
    const quietSinceUs = (old + 2) * this.o.bucketUs;
    const out: ExtentStats[] = [];
    for (const g of groups) {
      if (!g) continue;
      for (const s of g) {
        if (out.length >= this.o.maxReplayExtents) return out;
        if (s.slot >= 0 && s.lastAccessUs < quietSinceUs) out.push(s);
      }
    }
    return out;
  }

  /** Keep the bookkeeping maps bounded (they only need recent entries). */
  private trim(): void {
    if (this.leaving.size > 4096) {
      const keys = [...this.leaving.keys()].sort((a, b) => a - b);
      for (const k of keys.slice(0, keys.length - 2048)) this.leaving.delete(k);
    }
    if (this.replayed.size > 4096) {
      const keys = [...this.replayed.keys()].sort((a, b) => a - b);
      for (const k of keys.slice(0, keys.length - 2048)) this.replayed.delete(k);
    }
  }
}
