/**
 * The read fast path: extents with a complete, fresh copy on a directory tier are mapped into a
 * table the FUSE layer consults on its own thread, so such reads never make the round trip to
 * JavaScript. This module decides what is mapped and keeps the table honest:
 *
 * - an extent is unmapped (synchronously, for every handle of the file) before any change to its
 *   bytes or its copies begins, so a read that starts after a write was acknowledged can never use
 *   a stale copy (rule 1);
 * - it is mapped again only once the change is complete, after re-checking that the copy is still
 *   fresh, still complete and that no write is in progress.
 *
 * Extents that have no fresh copy anywhere can be mapped to the live file itself (`mapLiveFiles`):
 * the live file is always current, so such a mapping can never be stale; it only saves the round
 * trip. It is replaced by a copy's mapping once one is published, and dropped with the rest.
 *
 * The table itself is behind the ReadMap port; the FUSE adapter supplies it (or nothing, and then
 * every read goes through the redirector).
 */
import { ExtentMap, isFresh } from '../extents/extent-map';
import { DirectoryTier, FdLease } from '../tiers/directory-tier';
import { TierSet } from '../tiers/tier-set';
import { OpenFile, OpenFiles } from '../volume/open-files';

/** What the FUSE layer offers: a per-handle map of extent → (fd, offset delta). */
export interface ReadMap {
  setFileMap(fh: number, extentSizeBytes: number): void;
  mapExtent(fh: number, index: number, fd: number, deltaBytes: number): void;
  /** No read starts with the old mapping from now on; -1, or a ticket for reads begun before that are still in flight. */
  unmapExtent(fh: number, index: number): number;
  requestsEnded(fh: number, ticket: number): boolean;
}

/** How often the fds of unmapped copies with native reads still in flight are looked at again. */
const IN_FLIGHT_POLL_MS = 20;

/** A copy's fd that native reads begun before its unmap may still use: released once they end. */
interface Retiring {
  lease: FdLease;
  inFlight: { fh: number; ticket: number }[];
}

interface Mapped {
  tierId: number | 'live';
  generation: number;
  /** The copy's fd; none for the live file (the file's own readFd, open while the file is). */
  lease: FdLease | undefined;
  fd: number;
}

export class FastPath {
  /** fileId → extent index → the copy mapped for every handle of that file. */
  private readonly mapped = new Map<string, Map<number, Mapped>>();
  private readMap: ReadMap | undefined;
  private liveFiles = false;
  /** "fileId:index" of extents waiting for their file's write lock to be free before tryMap. */
  private readonly deferred = new Set<string>();
  private retiring: Retiring[] = [];
  private retiringTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    private readonly files: OpenFiles,
    private readonly extentSizeBytes: number,
  ) {}

  /** Set once the FUSE mount exists; until then (and without it) nothing is mapped. */
  attach(readMap: ReadMap): void {
    this.readMap = readMap;
  }

  /**
   * Map extents without any fresh copy to the live file too. A read of the live file on the FUSE
   * thread cannot be abandoned if the live volume hangs: only where no failover must bound reads.
   */
  mapLiveFiles(on: boolean): void {
    this.liveFiles = on;
    if (on) return;
    for (const [fileId, m] of [...this.mapped]) {
      for (const [index, e] of [...m]) if (e.tierId === 'live') this.unmap(fileId, index, index);
    }
  }

  /** A new handle: declare its map and map every extent already mapped for the file. */
  onHandleOpened(fh: number, file: OpenFile): void {
    const rm = this.readMap;
    if (!rm) return;
    rm.setFileMap(fh, this.extentSizeBytes);
    const m = this.mapped.get(file.fileId);
    if (m) for (const [index, e] of m) this.mapOne(fh, index, e);
    for (const index of this.map.extents(file.fileId).keys()) if (!m?.has(index)) void this.tryMap(file, index);
  }

  /** Before the bytes or copies of extents [first, last] change. Synchronous on purpose. */
  unmap(fileId: string, first: number, last: number): void {
    const m = this.mapped.get(fileId);
    if (!m || !this.readMap) return;
    for (const [index, e] of m) {
      if (index < first || index > last) continue;
      // Reads begun before may still be in flight (one stuck on a failing device, say). The change
      // need not wait for them, since they began before it, but they may use the copy's fd.
      const inFlight: Retiring['inFlight'] = [];
      for (const fh of this.files.handlesOf(fileId)) {
        const ticket = this.readMap.unmapExtent(fh, index);
        if (ticket >= 0) inFlight.push({ fh, ticket });
      }
      m.delete(index);
      if (e.lease && inFlight.length > 0) this.retire({ lease: e.lease, inFlight });
      else e.lease?.release();
    }
    if (m.size === 0) this.mapped.delete(fileId);
  }

  /** Keeps the lease until the reads left in flight have ended. */
  private retire(r: Retiring): void {
    this.retiring.push(r);
    if (this.retiringTimer) return;
    this.retiringTimer = setInterval(() => this.releaseRetired(), IN_FLIGHT_POLL_MS);
    this.retiringTimer.unref();
  }

  private releaseRetired(): void {
    const rm = this.readMap;
    this.retiring = this.retiring.filter((r) => {
      r.inFlight = r.inFlight.filter((x) => !rm || !rm.requestsEnded(x.fh, x.ticket));
      if (r.inFlight.length > 0) return true;
      r.lease.release();
      return false;
    });
    if (this.retiring.length === 0) {
      clearInterval(this.retiringTimer);
      this.retiringTimer = undefined;
    }
  }

  unmapAll(fileId: string): void {
    this.unmap(fileId, 0, Number.MAX_SAFE_INTEGER);
  }

  /** After a change (or a new copy) completed: map the extents that now have a usable copy. */
  remap(file: OpenFile, first: number, last: number): void {
    if (!this.readMap) return;
    for (let i = first; i <= last; i++) void this.tryMap(file, i);
  }

  /** `locked`: the caller holds the file's write lock (so no write is in progress). */
  private async tryMap(file: OpenFile, index: number, locked = false): Promise<void> {
    const rm = this.readMap;
    // Only files an application holds open have handles to map into (background pins do not).
    if (!rm || file.fhs.size === 0) return;
    const current = this.mapped.get(file.fileId)?.get(index);
    // Already on a copy: nothing to do (reads through JS call this for every extent they read).
    if (current && current.tierId !== 'live') return;
    // A write may be in progress (or a copy of another extent holds the lock to read): try again
    // once the lock is free. Not later on demand: an extent mapped to the live file is read
    // natively, so no read through JS would ever ask again, and its copy would go unused.
    if (!locked && file.writeLock.locked) return this.deferUntilUnlocked(file, index);
    const pick = this.usableCopy(file, index);
    if (!pick) {
      if (!current && this.liveMappable(file, index)) this.record(file, index, { tierId: 'live', generation: 0, lease: undefined, fd: file.readFd });
      return;
    }
    // A copy its tier cannot open is not mapped: reads go through JS, which handles the failure
    // (tryMap runs unawaited: a rejection here would end the process).
    const lease = await pick.tier.acquireFd({ fileId: file.fileId, index }).catch(() => undefined);
    if (!lease) return;
    if (!locked && file.writeLock.locked) {
      lease.release();
      return this.deferUntilUnlocked(file, index);
    }
    // Everything may have changed while the fd was opened: check again, then map at once (a live
    // mapping is replaced in place: reads switch from the live file to the copy).
    const again = this.usableCopy(file, index);
    const now = this.mapped.get(file.fileId)?.get(index);
    if ((now && now.tierId !== 'live') || !again || again.tierId !== pick.tierId || again.generation !== pick.generation || file.fhs.size === 0) {
      lease.release();
      return;
    }
    this.record(file, index, { tierId: pick.tierId, generation: pick.generation, lease, fd: lease.fd });
  }

  /**
   * Maps the extent from inside the lock once it is our turn: waiting for the lock to be free and
   * then checking it would spin, since other extents waiting the same way hold it in turn.
   */
  private deferUntilUnlocked(file: OpenFile, index: number): void {
    const key = `${file.fileId}:${index}`;
    if (this.deferred.has(key)) return;
    this.deferred.add(key);
    void file.writeLock.run(() => this.tryMap(file, index, true)).finally(() => this.deferred.delete(key));
  }

  private record(file: OpenFile, index: number, e: Mapped): void {
    let m = this.mapped.get(file.fileId);
    if (!m) {
      m = new Map();
      this.mapped.set(file.fileId, m);
    }
    m.set(index, e);
    for (const fh of this.files.handlesOf(file.fileId)) this.mapOne(fh, index, e);
  }

  /** An extent no copy holds fresh, inside the file (tryMap has checked that no write is in progress). */
  private liveMappable(file: OpenFile, index: number): boolean {
    if (!this.liveFiles || file.readFd < 0 || index * this.extentSizeBytes >= file.sizeBytes) return false;
    const rec = this.map.get(file.fileId, index);
    return !rec || !rec.copies.some((c) => isFresh(rec, c));
  }

  /**
   * The FUSE layer drops a handle's map as soon as the kernel releases it, a moment before our
   * release handler forgets the handle: mapping into it then fails (EINVAL) and is not needed.
   */
  private mapOne(fh: number, index: number, e: Mapped): void {
    try {
      // A copy holds its extent from offset 0; the live file holds it where the file does.
      this.readMap?.mapExtent(fh, index, e.fd, e.tierId === 'live' ? 0 : -index * this.extentSizeBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }

  /**
   * The fastest fresh copy of the extent, if it is on a healthy directory tier and complete (a
   * short copy would end a read early). tryMap has checked that no write to the file is in progress.
   */
  private usableCopy(file: OpenFile, index: number): { tier: DirectoryTier; tierId: number; generation: number } | undefined {
    const rec = this.map.get(file.fileId, index);
    if (!rec) return undefined;
    const wantBytes = Math.min(this.extentSizeBytes, file.sizeBytes - index * this.extentSizeBytes);
    if (wantBytes <= 0) return undefined;
    const fresh = rec.copies
      .filter((c) => isFresh(rec, c) && this.tiers.isUsable(c.tierId))
      .sort((a, b) => this.tiers.rank(a.tierId) - this.tiers.rank(b.tierId));
    const best = fresh[0];
    // An unverified copy must pass through the redirector once, which checks it.
    if (best && !best.verified && best.crc32 !== null) return undefined;
    // Only the fastest tier is mapped: reads of slower copies go through the redirector, so the
    // placement policy sees them at once and promotes them (native reads reach it only in
    // batches, up to a second late: src/io/native-heat.ts).
    const fastest = this.tiers.all().find((t) => this.tiers.isUsable(t.id));
    if (best && fastest && best.tierId !== fastest.id) return undefined;
    const vt = best ? this.tiers.get(best.tierId) : undefined;
    if (!best || !vt || !(vt.tier instanceof DirectoryTier) || best.sizeBytes !== wantBytes) return undefined;
    return { tier: vt.tier, tierId: best.tierId, generation: rec.generation };
  }

  /** The file's last handle is gone (its maps were dropped with the handles): release the fds. */
  onFileClosed(fileId: string): void {
    const m = this.mapped.get(fileId);
    if (!m) return;
    for (const e of m.values()) e.lease?.release();
    this.mapped.delete(fileId);
  }

  /** The extent is mapped: reads of it may be answered natively, unseen by any policy. */
  isMapped(fileId: string, index: number): boolean {
    return this.mapped.get(fileId)?.has(index) ?? false;
  }

  /** The tier whose copy of the extent is mapped, 'live' for the live file, undefined: unmapped. */
  mappedTo(fileId: string, index: number): number | 'live' | undefined {
    return this.mapped.get(fileId)?.get(index)?.tierId;
  }

  /** Extents mapped to a tier copy. */
  mappedExtents(): number {
    let n = 0;
    for (const m of this.mapped.values()) for (const e of m.values()) if (e.tierId !== 'live') n++;
    return n;
  }

  /** Extents mapped to the live file. */
  liveMappedExtents(): number {
    let n = 0;
    for (const m of this.mapped.values()) for (const e of m.values()) if (e.tierId === 'live') n++;
    return n;
  }

  get mapsLiveFiles(): boolean {
    return this.liveFiles && this.readMap !== undefined;
  }
}
