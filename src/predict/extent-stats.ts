import type { ExtentRef } from '../tiers/tier';

/**
 * Compact per-extent access history: a handful of numbers per extent, updated in O(1) per access.
 *
 * - Frequency at several time scales as exponentially decayed counts (half-lives 1 min, 1 h, 1 day).
 *   A decayed count with time constant tau of a Poisson stream with rate r settles at r * tau, so
 *   count / tau is a rate estimate that forgets at the chosen speed, and needs no window buffer.
 * - Sessions at two time scales: accesses closer than a gap form one session (2 min: the burst of
 *   one job run; 2 h: a working period, e.g. office hours). The start-to-start gap between
 *   sessions feeds a period estimate (EWMA) with its jitter, so "read every night at 02:00" becomes
 *   periodUs = 86 400 s, jitter ~ 0, and the next session can be predicted and pre-staged. Two
 *   scales because one gap cannot serve both a job every 10 minutes and a hot set used all day.
 * - Scan membership: accesses that the sequential detector put past the sequential cutoff are
 *   counted separately and add only a fraction to the frequency counts, so one large scan does not
 *   make its extents look hot.
 */
export interface ExtentStats {
  readonly fileId: string;
  readonly index: number;
  /** Decayed counts at HALF_LIVES_US[0..2], valid as of `updatedUs`. */
  c0: number;
  c1: number;
  c2: number;
  /**
   * Sum of the neighbours' short-window counts (extents index-r..index+r of the same file), kept
   * as a decayed counter of its own: each access adds to its neighbours' sums, so reading the
   * neighbour feature costs no lookups.
   */
  nb0: number;
  updatedUs: number;
  firstAccessUs: number;
  lastAccessUs: number;
  /** All accesses, and those classified as part of a long sequential scan. */
  accesses: number;
  scanAccesses: number;
  /** Session / period trackers, one per `sessionGapsUs` entry (shortest gap first). */
  periods: PeriodTracker[];
  /** Slot in the table's dense array (for O(1) uniform sampling and removal). */
  slot: number;
  /** Key of this extent's live entry in the engine's due queue (NaN: none); older entries are stale. */
  dueKeyUs: number;
  /** Set when changed since the last persistence flush. */
  dirty: boolean;
}

/** Sessions and the period between them, at one session-gap scale. */
export interface PeriodTracker {
  sessionStartUs: number;
  sessionAccesses: number;
  /** EWMA of accesses per completed session, and of session duration. */
  sessionSizeEwma: number;
  sessionSpanUsEwma: number;
  /** Start-to-start period estimate between sessions; 0 = unknown. */
  periodUs: number;
  periodJitterUs: number;
  periodSamples: number;
}

export const HALF_LIVES_US: readonly [number, number, number] = [60e6, 3600e6, 86_400e6];
/** Mean lifetime tau = half-life / ln 2: the constant that turns a decayed count into a rate. */
export const TAUS_US: readonly [number, number, number] = [
  HALF_LIVES_US[0] / Math.LN2,
  HALF_LIVES_US[1] / Math.LN2,
  HALF_LIVES_US[2] / Math.LN2,
];

export interface ExtentStatsOptions {
  /** Session gaps of the period trackers, shortest first. */
  sessionGapsUs: readonly number[];
  /** Extents on each side that count as neighbours (spatial locality feature). */
  neighbourRadius: number;
  /** Weight of a scan access in the frequency counts (the rest of the scan is ignored). */
  scanWeight: number;
  /** EWMA factor for the period and session estimates. */
  periodAlpha: number;
}

export const DEFAULT_EXTENT_STATS_OPTIONS: Readonly<ExtentStatsOptions> = {
  sessionGapsUs: [2 * 60e6, 2 * 3600e6],
  neighbourRadius: 2,
  scanWeight: 0.05,
  periodAlpha: 0.3,
};

export function newExtentStats(ref: ExtentRef, timeUs: number, trackers = DEFAULT_EXTENT_STATS_OPTIONS.sessionGapsUs.length): ExtentStats {
  return {
    fileId: ref.fileId,
    index: ref.index,
    c0: 0,
    c1: 0,
    c2: 0,
    nb0: 0,
    updatedUs: timeUs,
    firstAccessUs: timeUs,
    lastAccessUs: Number.NEGATIVE_INFINITY,
    accesses: 0,
    scanAccesses: 0,
    periods: Array.from({ length: trackers }, newTracker),
    slot: -1,
    dueKeyUs: Number.NaN,
    dirty: true,
  };
}

function newTracker(): PeriodTracker {
  return {
    sessionStartUs: Number.NEGATIVE_INFINITY,
    sessionAccesses: 0,
    sessionSizeEwma: 0,
    sessionSpanUsEwma: 0,
    periodUs: 0,
    periodJitterUs: 0,
    periodSamples: 0,
  };
}

/** ln 2 / half-life: exp(-dt * k) is the decay over dt (cheaper than pow(0.5, dt / h)). */
const DECAY_PER_US: readonly [number, number, number] = [Math.LN2 / HALF_LIVES_US[0], Math.LN2 / HALF_LIVES_US[1], Math.LN2 / HALF_LIVES_US[2]];

function decayTo(s: ExtentStats, toUs: number): void {
  const dt = toUs - s.updatedUs;
  if (dt <= 0) return;
  s.c0 *= Math.exp(-dt * DECAY_PER_US[0]);
  s.c1 *= Math.exp(-dt * DECAY_PER_US[1]);
  s.c2 *= Math.exp(-dt * DECAY_PER_US[2]);
  s.nb0 *= Math.exp(-dt * DECAY_PER_US[0]);
  s.updatedUs = toUs;
}

/** Decayed counts as of `nowUs`, without mutating the stats. */
export function countsAt(s: Readonly<ExtentStats>, nowUs: number): [number, number, number] {
  const dt = Math.max(0, nowUs - s.updatedUs);
  if (dt === 0) return [s.c0, s.c1, s.c2];
  return [s.c0 * Math.exp(-dt * DECAY_PER_US[0]), s.c1 * Math.exp(-dt * DECAY_PER_US[1]), s.c2 * Math.exp(-dt * DECAY_PER_US[2])];
}

/** The short-window (1 min half-life) decayed count only. */
export function shortCountAt(s: Readonly<ExtentStats>, nowUs: number): number {
  const dt = nowUs - s.updatedUs;
  return dt <= 0 ? s.c0 : s.c0 * Math.exp(-dt * DECAY_PER_US[0]);
}

/** The neighbours' short-window count sum as of `nowUs`. */
export function neighbourCountAt(s: Readonly<ExtentStats>, nowUs: number): number {
  const dt = nowUs - s.updatedUs;
  return dt <= 0 ? s.nb0 : s.nb0 * Math.exp(-dt * DECAY_PER_US[0]);
}

/** Add a neighbour's access (weight w) to this extent's neighbour sum. */
export function addNeighbourAccess(s: ExtentStats, timeUs: number, w: number): void {
  decayTo(s, Math.max(timeUs, s.updatedUs));
  s.nb0 += w;
}

/**
 * Fold one access into the stats. Returns true when the access started a new session (the caller
 * may then reschedule the extent's next expected session).
 */
export function recordExtentAccess(s: ExtentStats, timeUs: number, isScan: boolean, o: Readonly<ExtentStatsOptions>): boolean {
  // Traces and clocks may step back slightly; never let time run backwards inside the stats.
  const t = Math.max(timeUs, s.updatedUs);
  decayTo(s, t);
  const w = isScan ? o.scanWeight : 1;
  s.c0 += w;
  s.c1 += w;
  s.c2 += w;
  s.accesses++;
  if (isScan) s.scanAccesses++;
  s.dirty = true;

  let newSession = false;
  const gapUs = t - s.lastAccessUs;
  for (let k = 0; k < s.periods.length; k++) {
    const p = s.periods[k];
    if (gapUs > (o.sessionGapsUs[k] ?? Number.POSITIVE_INFINITY)) {
      newSession = true;
      if (Number.isFinite(p.sessionStartUs)) {
        closeSession(p, s.lastAccessUs, o);
        observeGap(p, t - p.sessionStartUs, o);
      }
      p.sessionStartUs = t;
      p.sessionAccesses = 0;
    }
    p.sessionAccesses++;
  }
  s.lastAccessUs = t;
  return newSession;
}

function closeSession(p: PeriodTracker, lastAccessUs: number, o: Readonly<ExtentStatsOptions>): void {
  const span = Math.max(0, lastAccessUs - p.sessionStartUs);
  if (p.sessionSizeEwma === 0) {
    p.sessionSizeEwma = p.sessionAccesses;
    p.sessionSpanUsEwma = span;
  } else {
    p.sessionSizeEwma += o.periodAlpha * (p.sessionAccesses - p.sessionSizeEwma);
    p.sessionSpanUsEwma += o.periodAlpha * (span - p.sessionSpanUsEwma);
  }
}

function observeGap(p: PeriodTracker, gapUs: number, o: Readonly<ExtentStatsOptions>): void {
  if (p.periodSamples === 0) {
    p.periodUs = gapUs;
    p.periodJitterUs = 0;
    p.periodSamples = 1;
    return;
  }
  // A gap close to a multiple of the period is a skipped run (the job did not run one night):
  // learn from gap / k instead of wrecking the estimate.
  let g = gapUs;
  const k = Math.round(gapUs / p.periodUs);
  if (k >= 2 && k <= 4 && Math.abs(gapUs - k * p.periodUs) <= Math.max(p.periodJitterUs * 2, 0.05 * p.periodUs) * k) {
    g = gapUs / k;
  }
  const dev = Math.abs(g - p.periodUs);
  if (p.periodSamples === 1) p.periodJitterUs = dev;
  else p.periodJitterUs += o.periodAlpha * (dev - p.periodJitterUs);
  p.periodUs += o.periodAlpha * (g - p.periodUs);
  p.periodSamples = Math.min(p.periodSamples + 1, 1_000_000);
}

/** Plain-data form for persistence (no slot/dirty bookkeeping). */
export type PersistedExtentStats = Omit<ExtentStats, 'slot' | 'dirty' | 'dueKeyUs'>;

export function toPersisted(s: Readonly<ExtentStats>): PersistedExtentStats {
  const { slot: _slot, dirty: _dirty, dueKeyUs: _due, ...rest } = s;
  return rest;
}

export function fromPersisted(p: PersistedExtentStats): ExtentStats {
  return { ...p, slot: -1, dueKeyUs: Number.NaN, dirty: false };
}

/**
 * Bounded table of ExtentStats, keyed per file then by index (no string keys on the hot path,
 * and neighbours are one Map lookup away). When full, the coldest tenth is dropped at once, so
 * eviction costs O(n) amortised over n/10 inserts.
 */
export class ExtentTable {
  private readonly byFile = new Map<string, Map<number, ExtentStats>>();
  /** Dense array of every entry, for uniform random sampling. */
  private readonly all: ExtentStats[] = [];
  /** Refs dropped since the last `takeRemoved` (persistence deletes them). */
  private removed: ExtentRef[] = [];

  constructor(
    readonly maxExtents: number,
    private readonly trackers = DEFAULT_EXTENT_STATS_OPTIONS.sessionGapsUs.length,
  ) {
    if (!(maxExtents > 0)) throw new Error(`ExtentTable maxExtents must be positive, got ${maxExtents}`);
  }

  get size(): number {
    return this.all.length;
  }

  get(fileId: string, index: number): ExtentStats | undefined {
    return this.byFile.get(fileId)?.get(index);
  }

  /** One file's entries by index (read-only use: neighbour lookups without a map per call). */
  file(fileId: string): ReadonlyMap<number, ExtentStats> | undefined {
    return this.byFile.get(fileId);
  }

  /** Get or create; creating may evict cold entries (never the one returned). */
  upsert(ref: ExtentRef, timeUs: number): ExtentStats {
    let file = this.byFile.get(ref.fileId);
    const found = file?.get(ref.index);
    if (found) return found;
    if (this.all.length >= this.maxExtents) this.evictColdest(timeUs);
    if (!file) {
      file = new Map();
      this.byFile.set(ref.fileId, file);
    }
    const s = newExtentStats(ref, timeUs, this.trackers);
    this.insert(s);
    return s;
  }

  /** Insert a loaded entry (replaces any entry for the same ref). */
  insert(s: ExtentStats): void {
    let file = this.byFile.get(s.fileId);
    if (!file) {
      file = new Map();
      this.byFile.set(s.fileId, file);
    }
    const old = file.get(s.index);
    if (old) this.removeEntry(old, false);
    file.set(s.index, s);
    s.slot = this.all.length;
    this.all.push(s);
  }

  delete(ref: ExtentRef): boolean {
    const s = this.get(ref.fileId, ref.index);
    if (!s) return false;
    this.removeEntry(s, true);
    return true;
  }

  deleteFile(fileId: string): number {
    const file = this.byFile.get(fileId);
    if (!file) return 0;
    const entries = [...file.values()];
    for (const s of entries) this.removeEntry(s, true);
    return entries.length;
  }

  /** Uniform random entry (rand in [0,1)). */
  sample(rand: number): ExtentStats | undefined {
    if (this.all.length === 0) return undefined;
    return this.all[Math.min(this.all.length - 1, Math.floor(rand * this.all.length))];
  }

  values(): IterableIterator<ExtentStats> {
    return this.all.values();
  }

  takeRemoved(): ExtentRef[] {
    const out = this.removed;
    this.removed = [];
    return out;
  }

  private removeEntry(s: ExtentStats, record: boolean): void {
    const file = this.byFile.get(s.fileId);
    if (file?.get(s.index) === s) {
      file.delete(s.index);
      if (file.size === 0) this.byFile.delete(s.fileId);
    }
    const last = this.all.pop();
    if (last && last !== s) {
      this.all[s.slot] = last;
      last.slot = s.slot;
    }
    s.slot = -1;
    if (record) this.removed.push({ fileId: s.fileId, index: s.index });
  }

  private evictColdest(nowUs: number): void {
    const n = this.all.length;
    const drop = Math.max(1, Math.floor(n / 10));
    // Coldness = day-scale decayed count: keeps periodic daily extents, drops one-off touches.
    const scores = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const c = countsAt(this.all[i], nowUs);
      scores[i] = c[1] + c[2];
    }
    const threshold = kthSmallest(Float64Array.from(scores), drop - 1);
    const victims: ExtentStats[] = [];
    for (let i = 0; i < n && victims.length < drop; i++) if (scores[i] <= threshold) victims.push(this.all[i]);
    for (const v of victims) this.removeEntry(v, true);
  }
}

/** k-th smallest (0-based) by quickselect; reorders `a`. */
export function kthSmallest(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}
