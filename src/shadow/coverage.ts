/**
 * Coverage: one tier (normally hdd or object) holds a fresh copy of every extent of the volume, so
 * the live volume can fail without losing anything. This policy finds what is not covered — by a
 * scan of the live tree (at mount and periodically) and by watching writes — and asks the shadow
 * manager to copy it, oldest first, so the lag stays bounded.
 */
import { settlesWithin } from '../util/settles-within';
import { errorCode } from '../util/errors';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { ExtentMap, isFresh } from '../extents/extent-map';
import { Logger } from '../util/log';
import { OpenFile } from '../volume/open-files';
import { ShadowManager } from './shadow-manager';
import { LiveScan, NamespaceMirror } from '../failover/namespace-mirror';
import { movedPath } from '../util/tree-paths';

/** What coverage needs from the volume: open a live file for background copies. */
export interface FilePinner {
  pinFile(livePath: string): Promise<OpenFile | undefined>;
  unpinFile(file: OpenFile): void;
}

interface DirtyFile {
  livePath: string;
  extents: Set<number>;
  sinceMs: number;
}

export interface CoverageReport {
  tier: string;
  /** Share of the volume's bytes with a fresh copy on the coverage tier (0..1). */
  coveredShare: number;
  totalBytes: number;
  pendingBytes: number;
  /** Age of the oldest change not yet covered. */
  lagMs: number;
  lastScanMs: number | null;
}

const PUMP_INTERVAL_MS = 100;
/** Copies handed to the shadow manager at a time: enough to keep it busy between pumps. */
const MAX_IN_FLIGHT = 256;
/** How long an unmount waits for a running scan to stop. */
const STOP_WAIT_MS = 5_000;

/** Nothing is at `p` any more (or not a file); false when it cannot be told. */
async function isGone(p: string): Promise<boolean> {
  try {
    return !(await fsp.lstat(p)).isFile();
  } catch (err) {
    return errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR';
  }
}

export class CoverageReplicator {
  private readonly dirty = new Map<string, DirtyFile>();
  /** Size of every live file, by file id (from scans, kept current by writes). */
  private readonly sizes = new Map<string, number>();
  /** Live path of every file seen (scans, writes), to re-queue an extent whose coverage copy went away. */
  private readonly paths = new Map<string, string>();
  /** Files written through the mount since the running scan began: their size is the mount's, not the scan's. */
  private readonly writtenDuringScan = new Set<string>();
  private lastScanMs: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private scanning: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly livePath: string,
    readonly tierName: string,
    private readonly tierId: number,
    private readonly map: ExtentMap,
    private readonly shadows: ShadowManager,
    private readonly files: FilePinner,
    private readonly extentSizeBytes: number,
    private scanIntervalMs: number,
    private readonly log: Logger,
  ) {}

  /**
   * A copy on the coverage tier went away for any reason (a failed read, a stale copy dropped, a
   * scrub): the extent is pending again at once, not only at the next scan.
   */
  copyRemoved(fileId: string, index: number, tierId: number): void {
    if (tierId !== this.tierId || this.stopped || this.covered(fileId, index)) return;
    const livePath = this.paths.get(fileId);
    if (livePath) this.markDirty(fileId, livePath, index, Date.now());
  }

  start(): void {
    this.timer = setInterval(() => void this.pump(), PUMP_INTERVAL_MS);
    this.timer.unref();
    this.scanTimer = setInterval(() => void this.scan(), this.scanIntervalMs);
    this.scanTimer.unref();
    void this.scan();
  }

  /** A live change of the scan interval (config reload): the next scan is one new interval away. */
  setScanIntervalMs(ms: number): void {
    this.scanIntervalMs = ms;
    if (!this.scanTimer || this.stopped) return;
    clearInterval(this.scanTimer);
    this.scanTimer = setInterval(() => void this.scan(), ms);
    this.scanTimer.unref();
  }

  /**
   * A scan stops at its next directory. One stuck in a syscall on a hung live volume is not waited
   * for past STOP_WAIT_MS (it ends whenever the volume answers, and then touches nothing): the
   * unmount must not hang with it.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.scanTimer) clearInterval(this.scanTimer);
    if (this.scanning && !(await settlesWithin(this.scanning, STOP_WAIT_MS))) {
      this.log.warn('coverage', 'a scan of the live volume is stuck (the live volume does not answer): the unmount goes on without it');
    }
  }

  /** Where a file seen by a scan or written through the mount lives on the live volume. */
  livePathOf(fileId: string): string | undefined {
    return this.paths.get(fileId);
  }

  /** A fresh copy on the coverage tier, or zeros the mount made (known without any copy). */
  private covered(fileId: string, index: number): boolean {
    const rec = this.map.get(fileId, index);
    return !!rec && (rec.zeros === true || rec.copies.some((c) => c.tierId === this.tierId && isFresh(rec, c)));
  }

  private markDirty(fileId: string, livePath: string, index: number, nowMs: number): void {
    let d = this.dirty.get(fileId);
    if (!d) {
      d = { livePath, extents: new Set(), sinceMs: nowMs };
      this.dirty.set(fileId, d);
    }
    d.livePath = livePath;
    d.extents.add(index);
  }

  /** After a write to extents [first, last] of an open file: whatever lost coverage is queued. */
  noteWrite(file: OpenFile, first: number, last: number): void {
    this.noteExtents(file.fileId, file.livePath, file.sizeBytes, first, last);
  }

  /**
   * A rename through the mount moved `from` (a file, or a directory and what is under it) to `to`:
   * pending extents are found by their file's path, which follows. (Only the pending files: the
   * paths of covered ones are checked against the file id when used, and corrected by scans.)
   */
  moved(from: string, to: string): void {
    for (const [fileId, d] of this.dirty) {
      const now = movedPath(d.livePath, from, to);
      if (now === undefined) continue;
      d.livePath = now;
      this.paths.set(fileId, now);
      // A running walk may miss it at both paths: its size is kept at the walk's end all the same.
      if (this.scanning) this.writtenDuringScan.add(fileId);
    }
  }

  /** A live file the mount wrote whole, not through writes (resync, at failback): every extent is pending now. */
  noteNewFile(fileId: string, livePath: string, sizeBytes: number): void {
    this.noteExtents(fileId, livePath, sizeBytes, 0, Math.ceil(sizeBytes / this.extentSizeBytes) - 1);
  }

  private noteExtents(fileId: string, livePath: string, sizeBytes: number, first: number, last: number): void {
    const now = Date.now();
    for (let i = first; i <= last; i++) if (!this.covered(fileId, i)) this.markDirty(fileId, livePath, i, now);
    this.sizes.set(fileId, sizeBytes);
    this.paths.set(fileId, livePath);
    if (this.scanning) this.writtenDuringScan.add(fileId);
  }

  /**
   * How a scan walks the live tree (volume paths → entries). The volume hands it the failover
   * controller's walk, which refreshes the namespace mirror from the same walk.
   */
  walkLive: (stopped: () => boolean) => Promise<LiveScan> = (stopped) => NamespaceMirror.scanLive(this.livePath, '/', stopped);

  /** Walk the live tree; every extent without a fresh coverage copy becomes pending. */
  scan(): Promise<void> {
    if (this.scanning) return this.scanning;
    // Failed over (or resyncing): the live volume is what does not answer, and a walk of it would
    // only hold a thread; the first scan after failback looks again.
    if (this.shadows.liveSourcePaused) return Promise.resolve();
    this.scanning = this.walk().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async walk(): Promise<void> {
    const started = Date.now();
    const sizes = new Map<string, number>();
    this.writtenDuringScan.clear();
    let scan: LiveScan;
    try {
      // The watchdog's canary (a reserved name) is left out: the mount's own business.
      scan = await this.walkLive(() => this.stopped);
    } catch (err) {
      this.log.warn('coverage', `scan of the live volume failed: ${(err as Error).message}`);
      return;
    }
    if (this.stopped) return;
    if (!scan.complete) this.log.warn('coverage', `scan of the live volume: ${scan.describeFailures()}; the files there count as the last scan found them`);
    for (const [vp, e] of scan.entries) {
      if (e.type !== 'file' || e.fileId === undefined) continue;
      const p = path.join(this.livePath, vp);
      const fileId = e.fileId;
      sizes.set(fileId, e.size);
      const count = Math.ceil(e.size / this.extentSizeBytes);
      this.paths.set(fileId, p);
      for (let i = 0; i < count; i++) if (!this.covered(fileId, i)) this.markDirty(fileId, p, i, started);
    }
    // A file written meanwhile may have grown after its lstat, or been made after its directory was
    // read: the scan's size (or none) would hide its new extents from the pending bytes, and
    // coverage would read 100% while they wait.
    for (const id of this.writtenDuringScan) {
      const size = this.sizes.get(id);
      if (size !== undefined) sizes.set(id, size);
    }
    // Files where the walk could not look are as the last scan found them, not gone.
    for (const [id, p] of this.paths) {
      const size = this.sizes.get(id);
      if (!sizes.has(id) && size !== undefined && !scan.knows(p.slice(this.livePath.length) || '/')) sizes.set(id, size);
    }
    for (const id of this.paths.keys()) if (!sizes.has(id)) this.paths.delete(id);
    this.sizes.clear();
    for (const [id, size] of sizes) this.sizes.set(id, size);
    this.lastScanMs = Date.now();
    this.log.debug('coverage', `scan: ${this.totalBytes()} bytes, ${this.pendingBytes()} pending`);
  }

  private totalBytes(): number {
    let n = 0;
    for (const size of this.sizes.values()) n += size;
    return n;
  }

  /** Bytes of the extents still waiting for a coverage copy (the last extent of a file counts its real length). */
  private pendingBytes(): number {
    let n = 0;
    for (const [fileId, d] of this.dirty) {
      const size = this.sizes.get(fileId) ?? 0;
      for (const i of d.extents) n += Math.max(0, Math.min(this.extentSizeBytes, size - i * this.extentSizeBytes));
    }
    return n;
  }

  /** Hand pending extents to the shadow manager, oldest change first, a bounded number at a time. */
  private async pump(): Promise<void> {
    // Failed over: copies read the live file, which is not to be touched; the extents wait.
    if (this.pumping || this.stopped || this.shadows.liveSourcePaused) return;
    this.pumping = true;
    try {
      const oldestFirst = [...this.dirty.entries()].sort((a, b) => a[1].sinceMs - b[1].sinceMs);
      for (const [fileId, d] of oldestFirst) {
        if (this.shadows.queuedCopies() >= MAX_IN_FLIGHT || this.stopped || this.shadows.liveSourcePaused) break;
        const at = d.livePath;
        const file = await this.files.pinFile(at);
        if (!file || file.fileId !== fileId) {
          if (file) this.files.unpinFile(file);
          // Gone, or replaced behind the mount's back: a later scan finds what is there now. Not
          // when it was renamed through the mount meanwhile (moved() has its new path: the next
          // pass goes there), nor when it could not be opened (EIO, failed over): dropped then,
          // its extents would read as covered until that scan.
          if (d.livePath === at && (file !== undefined || (await isGone(at)))) this.dirty.delete(fileId);
          continue;
        }
        try {
          for (const index of [...d.extents]) {
            if (index * this.extentSizeBytes >= file.sizeBytes || this.covered(fileId, index)) {
              d.extents.delete(index);
              continue;
            }
            if (this.shadows.queuedCopies() >= MAX_IN_FLIGHT) break;
            if (this.shadows.requestCopy(file, index, this.tierId, () => {
              // Covered *now*, not "the copy was published": a write that landed after the copy
              // (and found the extent still marked) has made it stale again; it stays pending then.
              if (this.covered(fileId, index)) d.extents.delete(index);
              if (d.extents.size === 0 && this.dirty.get(fileId) === d) this.dirty.delete(fileId);
            })) continue;
          }
        } finally {
          this.files.unpinFile(file);
        }
        if (d.extents.size === 0 && this.dirty.get(fileId) === d) this.dirty.delete(fileId);
      }
    } catch (err) {
      this.log.warn('coverage', `replication pass failed: ${(err as Error).message}`);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * The covered share as of a scan that begins now, so that files added or grown on the live volume
   * behind the mount's back since the last scan count. Undefined when that scan does not end
   * within `waitMs` (a slow or hung live volume, a very large tree).
   */
  async freshShare(waitMs: number): Promise<number | undefined> {
    const scanned = (async (): Promise<void> => {
      // One that is running began before this call: it may have passed a new file's directory.
      await this.scanning;
      await this.scan();
    })();
    return (await settlesWithin(scanned, waitMs)) ? this.report(Date.now()).coveredShare : undefined;
  }

  report(nowMs: number): CoverageReport {
    let oldest = nowMs;
    for (const d of this.dirty.values()) if (d.extents.size > 0) oldest = Math.min(oldest, d.sinceMs);
    const pending = this.pendingBytes();
    const total = this.totalBytes();
    return {
      tier: this.tierName,
      // Not 100% before the first scan has looked at everything.
      coveredShare: this.lastScanMs === null ? 0 : total === 0 ? 1 : Math.max(0, 1 - pending / total),
      totalBytes: total,
      pendingBytes: pending,
      lagMs: nowMs - oldest,
      lastScanMs: this.lastScanMs,
    };
  }
}
