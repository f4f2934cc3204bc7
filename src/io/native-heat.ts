/**
 * Native heat: reads and writes the FUSE layer answers on its own thread (the fast paths) never
 * reach the redirector, so no placement policy hears of them, and the extents served fastest would
 * look cold. The FUSE layer counts them per extent instead; this module drains those counts about
 * once a second (and on demand: before a planning round, before a handle is forgotten, at close)
 * and tells the policy, as if the requests had gone through JS: each read as the redirector
 * reports it (`onExtentRead`, once per request and extent), each write as the volume does.
 *
 * Bounds: at most MAX_ACCESSES_PER_SECOND accesses are reported a second (a token bucket over
 * every drain); above that a drain's counts are scaled down alike (what is hottest stays hottest).
 */
import type { ReadObserver } from './redirector';
import type { Handle, OpenFile } from '../volume/open-files';

/** What the FUSE layer offers (FuseMount has it). */
export interface NativeHitCounter {
  /**
   * (fh, extent index, reads, writes) quadruples counted since the last drain, each count reset:
   * of every handle, or only of fh. Counts of a handle released since are included until its fh
   * is declared again; a quadruple with fh 0 carries counts the FUSE layer had to drop.
   */
  drainExtentHits(fh?: number): ArrayLike<number>;
}

export interface NativeHeatSinks {
  /** The handle behind an fh the FUSE layer reports (the volume's open files). */
  handle(fh: number): Handle | undefined;
  /** Where reads go through JS are reported: the redirector's observer (the placement policy). */
  reads: ReadObserver;
  /** The tier a native read of the extent was served from ('live' if it holds no fresh copy now). */
  servedBy(fileId: string, index: number): number | 'live';
  /** An extent written natively, once per write (the prediction engine, as Volume.onWrite feeds it). */
  written(file: OpenFile, index: number): void;
  /** Native requests were served up to this time: foreground activity (background copies yield to it). */
  foreground(nowMs: number): void;
}

export interface NativeHeatCounters {
  drains: number;
  /** Accesses reported to the policy. */
  reads: number;
  /** Of those, reads of extents no copy held: answered from the live file (FastPath.mapLiveFiles). */
  liveReads: number;
  writes: number;
  /** Counts whose handle was unknown by the time they were drained (not reported). */
  unknownHandle: number;
  /** Counts the FUSE layer dropped (too many released handles waiting), or the bound cut off. */
  lost: number;
}

const DEFAULT_INTERVAL_MS = 1_000;
/** Repeated refresh() calls drain at most this often (the shadow manager asks every copy). */
const REFRESH_MS = 10;
/**
 * An access costs the predictive policy ~2 µs of the JS thread (the engine alone 1.35 µs,
 * measured): at most ~4% of a core, whatever the native IOPS. Far above what makes an extent hot.
 */
const MAX_ACCESSES_PER_SECOND = 20_000;

export class NativeHeat {
  readonly counters: NativeHeatCounters = { drains: 0, reads: 0, liveReads: 0, writes: 0, unknownHandle: 0, lost: 0 };
  private port: NativeHitCounter | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastDrainMs = Date.now();
  /** Accesses that may still be reported (refilled at MAX_ACCESSES_PER_SECOND, up to a second's worth). */
  private tokens = MAX_ACCESSES_PER_SECOND;
  private tokensAtMs = Date.now();

  constructor(private readonly sinks: NativeHeatSinks) {}

  /** Set once the FUSE mount exists (with its fast path); until then there is nothing to drain. */
  attach(port: NativeHitCounter, intervalMs = DEFAULT_INTERVAL_MS): void {
    this.port = port;
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.drain(), intervalMs);
    this.timer.unref();
  }

  /** Drains now if the last drain is older than a few milliseconds (cheap to call often). */
  refresh(): void {
    if (this.port && Date.now() - this.lastDrainMs >= REFRESH_MS) this.drain();
  }

  /** Reports everything counted so far, of every handle (or only of fh) to the policy. */
  drain(fh?: number): void {
    const port = this.port;
    if (!port) return;
    const hits = port.drainExtentHits(fh);
    const nowMs = Date.now();
    if (fh === undefined) this.lastDrainMs = nowMs;
    this.counters.drains++;
    if (hits.length === 0) return;
    this.tokens = Math.min(MAX_ACCESSES_PER_SECOND, this.tokens + (MAX_ACCESSES_PER_SECOND * (nowMs - this.tokensAtMs)) / 1000);
    this.tokensAtMs = nowMs;
    let total = 0;
    for (let q = 0; q < hits.length; q += 4) total += hits[q + 2] + hits[q + 3];
    const scale = total > this.tokens ? this.tokens / total : 1;
    this.sinks.foreground(nowMs);
    for (let q = 0; q < hits.length; q += 4) {
      const handle = hits[q];
      const reads = hits[q + 2];
      const writes = hits[q + 3];
      if (handle === 0) {
        this.counters.lost += reads + writes;
        continue;
      }
      // A handle's counts are drained just before the volume forgets it (see openVolume), so an
      // unknown fh is rare (a handle forgotten before this module was attached). Its file cannot
      // be told any more, and the fh may name another file by now: dropped, never misattributed.
      const h = this.sinks.handle(handle);
      if (!h) {
        this.counters.unknownHandle += reads + writes;
        continue;
      }
      const index = hits[q + 1];
      const r = scaled(reads, scale);
      const w = scaled(writes, scale);
      this.counters.lost += reads - r + (writes - w);
      if (r > 0) {
        const servedBy = this.sinks.servedBy(h.file.fileId, index);
        for (let i = 0; i < r; i++) this.sinks.reads.onExtentRead(h.file, index, servedBy);
        this.counters.reads += r;
        if (servedBy === 'live') this.counters.liveReads += r;
      }
      for (let i = 0; i < w; i++) this.sinks.written(h.file, index);
      this.counters.writes += w;
      this.tokens = Math.max(0, this.tokens - r - w);
    }
  }

  /** A final drain (before the FUSE map goes with the mount); no more timer. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.drain();
    this.port = undefined;
  }
}

/** A nonzero count stays nonzero: an extent read at all is not cold. */
function scaled(count: number, scale: number): number {
  if (count === 0 || scale === 1) return count;
  return Math.max(1, Math.round(count * scale));
}
