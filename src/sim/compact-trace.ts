import type { ExtentRef } from '../tiers/tier';
import { emptyBucket, type IoBucket } from '../predict/volume-series';
import type { TraceReader, TraceSummary } from './trace-reader';

/**
 * A trace reduced to what the replay needs, in typed arrays: the sequence of demand accesses in
 * extent units. Consecutive accesses to the same extent count once (a 1 MiB extent read in 4 KiB
 * requests is one access, not 256), which is the unit every miss ratio here is measured in.
 *
 * One streaming pass builds it; policies then replay from memory, several times (one per policy)
 * and, for Belady's MIN, with knowledge of the future. Memory is ~13 bytes per access plus one
 * entry per distinct extent and per busy second, never the text of the trace.
 */
export interface CompactTrace {
  /** Demand accesses after collapsing. */
  length: number;
  extentIds: Uint32Array;
  timesUs: Float64Array;
  writes: Uint8Array;
  /** Extent id -> extent. */
  refs: ExtentRef[];
  /** Extent count per file (highest index seen + 1): the volume size the replay assumes. */
  fileExtents: Map<string, number>;
  /** Request counters per second of trace time (for the volume series and the forecaster). */
  seconds: Map<number, IoBucket>;
  requests: number;
  /** Extent accesses before collapsing consecutive repeats. */
  rawExtentAccesses: number;
  firstUs: number;
  lastUs: number;
  summary: TraceSummary;
}

export interface LoadOptions {
  extentSizeBytes: number;
  onProgress?: (summary: TraceSummary) => void;
}

class Grow {
  ids = new Uint32Array(1 << 16);
  times = new Float64Array(1 << 16);
  writes = new Uint8Array(1 << 16);
  n = 0;
  push(id: number, t: number, w: boolean): void {
    if (this.n === this.ids.length) {
      const cap = this.ids.length * 2;
      const ids = new Uint32Array(cap);
      ids.set(this.ids);
      const times = new Float64Array(cap);
      times.set(this.times);
      const writes = new Uint8Array(cap);
      writes.set(this.writes);
      this.ids = ids;
      this.times = times;
      this.writes = writes;
    }
    this.ids[this.n] = id;
    this.times[this.n] = t;
    this.writes[this.n] = w ? 1 : 0;
    this.n++;
  }
}

export async function loadTrace(reader: TraceReader, options: LoadOptions): Promise<CompactTrace> {
  const E = options.extentSizeBytes;
  const g = new Grow();
  const refs: ExtentRef[] = [];
  const ids = new Map<string, Map<number, number>>();
  const fileExtents = new Map<string, number>();
  const seconds = new Map<number, IoBucket>();
  let requests = 0;
  let raw = 0;
  let prevId = -1;
  let clockUs = Number.NEGATIVE_INFINITY;
  let firstUs = Number.NaN;
  let sinceProgress = 0;
  for await (const r of reader.records()) {
    if (r.sizeBytes === 0) continue;
    // Slightly out-of-order timestamps (common in block traces) are replayed in file order at
    // the latest time seen, so virtual time never runs backwards.
    clockUs = Math.max(clockUs, r.timeUs);
    if (Number.isNaN(firstUs)) firstUs = clockUs;
    requests++;
    const sec = Math.floor(clockUs / 1e6);
    let b = seconds.get(sec);
    if (!b) {
      b = emptyBucket();
      seconds.set(sec, b);
    }
    if (r.op === 'R') {
      b.readOps++;
      b.readBytes += r.sizeBytes;
    } else {
      b.writeOps++;
      b.writeBytes += r.sizeBytes;
    }
    if (r.latencyUs !== undefined) {
      b.latencySumUs += r.latencyUs;
      b.latencyCount++;
    }
    let file = ids.get(r.fileId);
    if (!file) {
      file = new Map();
      ids.set(r.fileId, file);
    }
    const first = Math.floor(r.offsetBytes / E);
    const last = Math.floor((r.offsetBytes + r.sizeBytes - 1) / E);
    if (last + 1 > (fileExtents.get(r.fileId) ?? 0)) fileExtents.set(r.fileId, last + 1);
    for (let i = first; i <= last; i++) {
      raw++;
      let id = file.get(i);
      if (id === undefined) {
        id = refs.length;
        refs.push({ fileId: r.fileId, index: i });
        file.set(i, id);
      }
      if (id === prevId) continue;
      prevId = id;
      g.push(id, clockUs, r.op === 'W');
    }
    if (options.onProgress && ++sinceProgress >= 50_000) {
      sinceProgress = 0;
      options.onProgress(reader.summary);
    }
  }
  options.onProgress?.(reader.summary);
  return {
    length: g.n,
    extentIds: g.ids.subarray(0, g.n),
    timesUs: g.times.subarray(0, g.n),
    writes: g.writes.subarray(0, g.n),
    refs,
    fileExtents,
    seconds,
    requests,
    rawExtentAccesses: raw,
    firstUs: Number.isNaN(firstUs) ? 0 : firstUs,
    lastUs: Number.isFinite(clockUs) ? clockUs : 0,
    summary: reader.summary,
  };
}
