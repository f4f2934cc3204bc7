/**
 * Reordering-tolerant sequential stream detection, per file, in extent units.
 *
 * A stream is a frontier (the highest extent seen) plus a bitmask of which of the
 * `reorderWindowExtents` extents below the frontier were seen. An access joins a stream when it
 * lands a little past the frontier (advances it) or inside the window below it (fills a hole that
 * arrived out of order, e.g. parallel readers or a queue reordering requests). So 0,2,1,4,3,5 is
 * one stream, as is 0,1,2,3 read by four threads that finish in any order.
 *
 * Random access in a small hot region also lands near existing streams now and then, so a stream
 * only counts as sequential when it has made real progress: enough distinct extents, dense
 * coverage of the span it claims, few repeats (a hot set re-reads the same extents; a scan does
 * not) and small forward steps (a set read in random order jumps around).
 *
 * Past `cutoffExtents` a sequential stream is a scan: its accesses barely count as heat (so one
 * large scan does not flush the fast tiers) and it is served by a bounded readahead instead.
 */

export interface SequentialOptions {
  maxStreams: number;
  /** How far below the frontier a late access may land and still belong to the stream (<= 30). */
  reorderWindowExtents: number;
  /** How far past the frontier an access may jump and still extend the stream. */
  maxGapExtents: number;
  minRunExtents: number;
  cutoffExtents: number;
  idleTimeoutUs: number;
  minDensity: number;
  /** Repeats allowed per distinct extent before the stream is judged random. */
  maxRepeatRatio: number;
  /**
   * Mean forward jump of the frontier allowed: a scan read by two threads advances by one or two
   * (pairs swapped); a set read in random order jumps around the window and is not a stream.
   */
  maxMeanAdvance: number;
  maxReadaheadExtents: number;
  /** Readahead aims to stay this far ahead of the reader (in time, at its observed rate). */
  readaheadLeadUs: number;
}

export const DEFAULT_SEQUENTIAL_OPTIONS: Readonly<SequentialOptions> = {
  maxStreams: 64,
  reorderWindowExtents: 16,
  maxGapExtents: 4,
  minRunExtents: 3,
  cutoffExtents: 8,
  idleTimeoutUs: 30e6,
  minDensity: 0.7,
  maxRepeatRatio: 0.5,
  maxMeanAdvance: 2.2,
  maxReadaheadExtents: 32,
  readaheadLeadUs: 2e6,
};

export type FileAccessMode = 'normal' | 'sequential' | 'random';

export interface StreamObservation {
  sequential: boolean;
  /** Past the sequential cutoff. */
  scan: boolean;
  /** Distinct extents the stream has covered so far. */
  runExtents: number;
  /** Extent indices (same file) newly worth staging ahead of this stream; each suggested once. */
  readahead: number[];
}

interface Stream {
  fileId: string;
  frontier: number;
  minIndex: number;
  /** Bit k set: extent frontier - k was seen. */
  mask: number;
  progress: number;
  repeats: number;
  advances: number;
  advanceSum: number;
  startUs: number;
  lastUs: number;
  /** Next index not yet suggested for readahead. */
  readaheadNext: number;
}

const NOT_SEQUENTIAL: StreamObservation = Object.freeze({ sequential: false, scan: false, runExtents: 1, readahead: [] }) as StreamObservation;

export class SequentialDetector {
  private readonly o: SequentialOptions;
  private readonly byFile = new Map<string, Stream[]>();
  private count = 0;

  constructor(options: Partial<SequentialOptions> = {}) {
    this.o = { ...DEFAULT_SEQUENTIAL_OPTIONS, ...options };
    if (this.o.reorderWindowExtents > 30) throw new Error('reorderWindowExtents must be <= 30 (bitmask)');
  }

  get options(): Readonly<SequentialOptions> {
    return this.o;
  }

  get streamCount(): number {
    return this.count;
  }

  observe(fileId: string, index: number, timeUs: number, mode: FileAccessMode = 'normal'): StreamObservation {
    if (mode === 'random') return NOT_SEQUENTIAL;
    const o = this.o;
    let streams = this.byFile.get(fileId);
    let hit: Stream | undefined;
    if (streams) {
      for (let i = 0; i < streams.length; i++) {
        const s = streams[i];
        if (timeUs - s.lastUs > o.idleTimeoutUs) {
          streams.splice(i--, 1);
          this.count--;
          continue;
        }
        if (!hit && this.join(s, index)) hit = s;
      }
    }
    if (!hit) {
      hit = this.create(fileId, index, timeUs);
      streams = this.byFile.get(fileId);
      if (!streams) {
        streams = [];
        this.byFile.set(fileId, streams);
      }
      streams.push(hit);
      this.count++;
    }
    hit.lastUs = timeUs;
    return this.judge(hit, mode);
  }

  private join(s: Stream, index: number): boolean {
    const d = index - s.frontier;
    if (d >= 1 && d <= this.o.maxGapExtents + 1) {
      s.mask = d > 30 ? 1 : ((s.mask << d) | 1) & 0x7fffffff;
      s.frontier = index;
      s.progress++;
      s.advances++;
      s.advanceSum += d;
      return true;
    }
    if (d <= 0 && -d <= this.o.reorderWindowExtents) {
      const bit = 1 << -d;
      if (s.mask & bit) s.repeats++;
      else {
        s.mask |= bit;
        s.progress++;
        if (index < s.minIndex) s.minIndex = index;
      }
      return true;
    }
    return false;
  }

  private create(fileId: string, index: number, timeUs: number): Stream {
    if (this.count >= this.o.maxStreams) this.evictOldest();
    return { fileId, frontier: index, minIndex: index, mask: 1, progress: 1, repeats: 0, advances: 0, advanceSum: 0, startUs: timeUs, lastUs: timeUs, readaheadNext: index + 1 };
  }

  private evictOldest(): void {
    let oldest: Stream | undefined;
    for (const list of this.byFile.values()) for (const s of list) if (!oldest || s.lastUs < oldest.lastUs) oldest = s;
    if (!oldest) return;
    const list = this.byFile.get(oldest.fileId);
    if (!list) return;
    list.splice(list.indexOf(oldest), 1);
    if (list.length === 0) this.byFile.delete(oldest.fileId);
    this.count--;
  }

  private judge(s: Stream, mode: FileAccessMode): StreamObservation {
    const o = this.o;
    const span = s.frontier - s.minIndex + 1;
    const hinted = mode === 'sequential';
    const sequential = hinted
      ? s.progress >= 2
      : s.progress >= o.minRunExtents &&
        s.progress >= o.minDensity * span &&
        s.repeats <= o.maxRepeatRatio * s.progress &&
        s.advanceSum <= o.maxMeanAdvance * s.advances;
    if (!sequential) return { sequential: false, scan: false, runExtents: s.progress, readahead: [] };
    const scan = s.progress >= o.cutoffExtents;
    // Depth: enough to stay readaheadLeadUs ahead at the stream's observed rate, ramping with the
    // run length (like the kernel's readahead window) so a short run does not stage much.
    const elapsedUs = Math.max(1000, s.lastUs - s.startUs);
    const rate = s.progress / elapsedUs;
    let depth = Math.ceil(rate * o.readaheadLeadUs);
    depth = Math.max(2, Math.min(depth, 2 * s.progress, o.maxReadaheadExtents));
    if (hinted) depth = o.maxReadaheadExtents;
    const readahead: number[] = [];
    const from = Math.max(s.readaheadNext, s.frontier + 1);
    const to = s.frontier + depth;
    for (let i = from; i <= to; i++) readahead.push(i);
    if (to + 1 > s.readaheadNext) s.readaheadNext = to + 1;
    return { sequential: true, scan, runExtents: s.progress, readahead };
  }
}
