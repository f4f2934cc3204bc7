/**
 * The I/O redirector: where a read is routed and how a write reaches the live file and the copies.
 *
 * Reads are split by extent; each piece comes from the fastest healthy tier holding a *fresh*
 * copy (generation equal to the extent's), else from the live file. A copy that fails is dropped
 * and the next source is tried, so a bad tier costs latency, not an error.
 *
 * Writes are write-through: the live file first (it is authoritative), then every fresh copy on a
 * directory tier is patched in place before the write is acknowledged; other copies go stale. A
 * streaming write (src/io/write-around.ts) patches only the copies `mustPatch` names.
 */
import { ExtentMap, CopyRecord, isFresh } from '../extents/extent-map';
import { isHealthyDirectoryTier, TierSet } from '../tiers/tier-set';
import { OpenFile } from '../volume/open-files';
import { ftruncateFd, preadFull, pwriteFull } from '../util/fd-io';
import { errorCode, FsError } from '../util/errors';
import { crc32 } from 'node:zlib';
import { ExtentRef, ShadowTier } from '../tiers/tier';
import { TierLatencies } from './tier-latencies';
import { ChangedExtents, changedExtents } from './changed-extents';

/**
 * Zero marks one change may record (64 GiB at 1 MiB extents): past that, one batch would grow
 * without bound, and the rest is counted as on the live volume only.
 */
const MAX_ZERO_MARKS = 65_536;
const NO_BYTES = Buffer.alloc(0);
/** A change the caller made on the live file already. */
const LIVE_DONE = Promise.resolve(true);

/** Told about every piece of a read, so a policy can learn (admission, heat). */
export interface ReadObserver {
  onExtentRead(file: OpenFile, index: number, servedBy: number | 'live'): void;
}

/**
 * Where a read goes when no shadow copy serves it. `authoritative`: the live file may know of
 * bytes past the mount's idea of the size (a writer outside the mount); false while failed over.
 */
export interface LiveReader {
  authoritative: boolean;
  pread(buf: Buffer, at: number, length: number, position: number): Promise<number>;
}

/** Runs a live-volume op under the volume's guard (deadline, concurrency, health). */
export type LiveOpRunner = <T>(kind: 'read' | 'write' | 'meta' | 'sync', fn: () => Promise<T>) => Promise<T>;

/** Runs a live write of `buf[0..length)` under the volume's guard, handing `write` the bytes to write (a copy the guard owns). */
export type LiveWriteRunner = (buf: Buffer, length: number, write: (from: Buffer) => Promise<void>) => Promise<void>;

export interface ServeCounters {
  /** Bytes served, by tier name or "live". */
  bytesBySource: Map<string, number>;
  readsBySource: Map<string, number>;
  copyErrors: number;
  /** Copies whose bytes failed their checksum (dropped, served from elsewhere). */
  corruptCopies: number;
  /** Reads also sent to a second copy because the first was slower than its tier's p95; and how often the second answered first. */
  hedgesIssued: number;
  hedgesWon: number;
  /** Copies a streaming writer left stale instead of patching them (write-around), ahead of it too. */
  writtenAround: number;
  /**
   * Extents a write left on the live volume alone: none of their copies could be patched and the
   * home for a new one had no room, failed, or is not configured while a coverage tier is.
   */
  liveOnlyWrites: number;
}

export class IoRedirector {
  readonly counters: ServeCounters = { bytesBySource: new Map(), readsBySource: new Map(), copyErrors: 0, corruptCopies: 0, hedgesIssued: 0, hedgesWon: 0, writtenAround: 0, liveOnlyWrites: 0 };
  /** Set when metrics are on: told the latency of every read served by a tier copy. */
  onTierRead: ((tierName: string, seconds: number) => void) | undefined;
  /** Recent read latency per tier (hedging decisions, metrics). */
  readonly latencies = new TierLatencies();
  /** Set by the volume: live truncates and other changes run under its guard. */
  liveOp: LiveOpRunner = (_kind, fn) => fn();
  /** Set by the volume: live writes of the caller's bytes (which it may not own past the write's answer). */
  liveWrite: LiveWriteRunner = (buf, _length, write) => write(buf);
  /** Set by the assembly: a copy whose tier fails to read it is kept (the last home of its bytes). */
  keepsUnreadable: (fileId: string, index: number) => boolean = () => false;
  /** Told when a copy is dropped because it failed its checksum or its tier failed it (named in the log). */
  onDamagedCopy: (fileId: string, index: number, tierId: number, why: string) => void = () => undefined;
  /** Told when a copy passed its checksum (the fast path may map it now). */
  onVerified: (fileId: string, index: number) => void = () => undefined;
  /** Set by the volume: copies a streaming write still patches (coverage, pinned, hinted). */
  mustPatch: (fileId: string, index: number, tierId: number) => boolean = () => false;
  /**
   * Set by the assembly when the volume has a coverage tier: the tiers where a write puts a whole
   * new copy of an extent that has no copy to patch, in the order to try them.
   */
  newCopyHomes: ((fileId: string, index: number) => number[]) | undefined;
  /**
   * Set by the volume: stores a copy a write built and publishes it once `liveWritten` says the
   * live write succeeded (the shadow manager); false if not published.
   */
  storeNewCopy: (file: OpenFile, index: number, tierId: number, data: Buffer, generation: number, liveWritten: Promise<boolean>) => Promise<boolean> = async () => false;

  constructor(
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    readonly extentSizeBytes: number,
    private readonly observer: ReadObserver,
    /** Removes the bytes of copies that are no longer referenced (background). */
    private readonly discard: (fileId: string, index: number, tierId: number) => void,
  ) {
  }

  private count(source: string, bytes: number): void {
    const c = this.counters;
    c.bytesBySource.set(source, (c.bytesBySource.get(source) ?? 0) + bytes);
    c.readsBySource.set(source, (c.readsBySource.get(source) ?? 0) + 1);
  }

  /** Fresh copies of an extent on usable tiers, fastest first. */
  freshCopies(fileId: string, index: number): CopyRecord[] {
    const rec = this.map.get(fileId, index);
    if (!rec) return [];
    return rec.copies
      .filter((c) => isFresh(rec, c) && this.tiers.isUsable(c.tierId))
      .sort((a, b) => this.tiers.rank(a.tierId) - this.tiers.rank(b.tierId));
  }

  async read(file: OpenFile, live: LiveReader, buf: Buffer, length: number, position: number): Promise<number> {
    const end = Math.min(position + length, file.sizeBytes);
    if (end <= position) {
      // The mount's idea of the size may be behind a writer outside it; the live file decides.
      return live.authoritative && (file.sizeBytes === 0 || position >= file.sizeBytes) ? this.readLive(live, buf, 0, length, position) : 0;
    }
    const E = this.extentSizeBytes;
    const pieces: { wanted: number; got: Promise<number> }[] = [];
    for (let off = position; off < end; ) {
      const index = Math.floor(off / E);
      const pieceEnd = Math.min(end, (index + 1) * E);
      pieces.push({ wanted: pieceEnd - off, got: this.readPiece(file, live, index, buf, off - position, pieceEnd - off, off) });
      off = pieceEnd;
    }
    // Every piece ends before the read does, a failed one too: the others are still reading into
    // buf, which is the caller's only until we answer (FUSE frees its buffer then).
    const settled = await Promise.allSettled(pieces.map((p) => p.got));
    let total = 0;
    for (let i = 0; i < settled.length; i++) {
      const s = settled[i];
      if (s.status === 'rejected') throw s.reason;
      total += s.value;
      // A short piece ends the read there: what follows it was not read contiguously.
      if (s.value < pieces[i].wanted) break;
    }
    return total;
  }

  private async readLive(live: LiveReader, buf: Buffer, at: number, length: number, position: number): Promise<number> {
    const n = await live.pread(buf, at, length, position);
    this.count('live', n);
    return n;
  }

  private async readPiece(file: OpenFile, live: LiveReader, index: number, buf: Buffer, at: number, length: number, position: number): Promise<number> {
    const offsetInExtent = position - index * this.extentSizeBytes;
    const copies = this.freshCopies(file.fileId, index);
    for (let i = 0; i < copies.length; ) {
      const primary = copies[i];
      const secondary = copies[i + 1];
      const p95Us = secondary ? this.latencies.p95Us(primary.tierId) : undefined;
      const got = secondary && p95Us !== undefined
        ? await this.hedgedRead(file, index, primary, secondary, p95Us, buf, at, offsetInExtent, length)
        : await this.readCopy(file, index, primary, buf, at, offsetInExtent, length).then((n) => (n === undefined ? undefined : { n, copy: primary }));
      if (got) {
        const vt = this.tiers.get(got.copy.tierId);
        if (vt) this.count(vt.tier.spec.name, got.n);
        this.observer.onExtentRead(file, index, got.copy.tierId);
        return got.n;
      }
      i += secondary && p95Us !== undefined ? 2 : 1;
    }
    const n = await this.readLive(live, buf, at, length, position);
    this.observer.onExtentRead(file, index, 'live');
    return n;
  }

  /** One copy; undefined when it failed (it is dropped then) or holds fewer bytes than asked for. */
  private async readCopy(file: OpenFile, index: number, copy: CopyRecord, into: Buffer, intoAt: number, offsetInExtent: number, length: number): Promise<number | undefined> {
    const vt = this.tiers.get(copy.tierId);
    if (!vt) return undefined;
    const started = performance.now();
    try {
      const ref = { fileId: file.fileId, index };
      const n = copy.verified || copy.crc32 === null
        ? await vt.tier.read(ref, offsetInExtent, length, into, intoAt)
        : await this.readVerifying(vt.tier, ref, copy, offsetInExtent, length, into, intoAt);
      if (n === undefined) return undefined;
      const us = (performance.now() - started) * 1000;
      this.latencies.record(copy.tierId, us);
      this.onTierRead?.(vt.tier.spec.name, us / 1e6);
      // Reads stop at the mount's size of the file, and a fresh copy holds its extent that far. One
      // that ends early is being grown by a write still patching it: the next source serves the
      // read. Passed on, the short count would end the application's read there, as at the end of
      // the file.
      return n < length ? undefined : n;
    } catch (err) {
      this.dropBadCopy(file.fileId, index, copy, err, 'read');
      return undefined;
    }
  }

  /**
   * A hedged read: the primary copy first; if it has not answered within its tier's recent p95,
   * the secondary too; the first answer wins. Each reads into its own buffer, so the loser,
   * answering late, cannot touch the caller's. A primary that fails hands over to the secondary
   * at once (that is a fallback, not a hedge).
   */
  private hedgedRead(file: OpenFile, index: number, primary: CopyRecord, secondary: CopyRecord, p95Us: number, buf: Buffer, at: number, offsetInExtent: number, length: number): Promise<{ n: number; copy: CopyRecord } | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      let secondaryStarted = false;
      let outstanding = 0;
      let timer: NodeJS.Timeout | undefined;
      const attempt = (copy: CopyRecord, isHedge: boolean): void => {
        outstanding++;
        const tmp = Buffer.allocUnsafe(length);
        void this.readCopy(file, index, copy, tmp, 0, offsetInExtent, length).then((n) => {
          outstanding--;
          if (settled) return;
          if (n !== undefined) {
            settled = true;
            clearTimeout(timer);
            if (isHedge) this.counters.hedgesWon++;
            tmp.copy(buf, at, 0, n);
            resolve({ n, copy });
          } else if (!secondaryStarted) {
            secondaryStarted = true;
            clearTimeout(timer);
            attempt(secondary, false);
          } else if (outstanding === 0) {
            settled = true;
            resolve(undefined);
          }
        });
      };
      timer = setTimeout(() => {
        if (settled || secondaryStarted) return;
        secondaryStarted = true;
        this.counters.hedgesIssued++;
        attempt(secondary, true);
      }, Math.max(1, p95Us / 1000));
      attempt(primary, false);
    });
  }

  /**
   * First read of a copy since mount: read it whole and check its CRC before trusting it, so a copy
   * damaged on the tier (bit rot, a stray write) is never served; it is dropped and re-made.
   */
  private async readVerifying(tier: ShadowTier, ref: ExtentRef, copy: CopyRecord, offsetInExtent: number, length: number, buf: Buffer, at: number): Promise<number | undefined> {
    const crc = copy.crc32;
    const generation = this.map.get(ref.fileId, ref.index)?.generation;
    const whole = Buffer.allocUnsafe(copy.sizeBytes);
    const n = await tier.read(ref, 0, copy.sizeBytes, whole, 0);
    // A write patched the copy meanwhile (or is patching it): bytes and checksum may disagree with
    // nothing damaged. No verdict, and not these bytes: the next source serves the read.
    if (this.map.isWriting(ref.fileId, ref.index) || this.map.currentCopy(ref.fileId, ref.index, copy)?.crc32 !== crc || this.map.get(ref.fileId, ref.index)?.generation !== generation) return undefined;
    // Short: the read failed part way (a bad sector), which says nothing about the copy's bytes.
    if (n !== copy.sizeBytes) throw new FsError('EIO', `copy of ${ref.fileId}#${ref.index} on ${tier.spec.name}: read ${n} of ${copy.sizeBytes} bytes`);
    if (crc32(whole) !== copy.crc32) {
      this.counters.corruptCopies++;
      throw new FsError('EBADMSG', `copy of ${ref.fileId}#${ref.index} on ${tier.spec.name} fails its checksum`);
    }
    this.map.markVerified(ref.fileId, ref.index, copy);
    this.onVerified(ref.fileId, ref.index);
    const end = Math.min(n, offsetInExtent + length);
    return offsetInExtent >= end ? 0 : whole.copy(buf, at, offsetInExtent, end);
  }

  private dropBadCopy(fileId: string, index: number, copy: CopyRecord, err: unknown, doing: 'read' | 'patched'): void {
    // A copy evicted while we read it is gone for an ordinary reason; anything else is a fault.
    const code = errorCode(err);
    if (code !== 'ENOENT') this.counters.copyErrors++;
    if (code !== 'ENOENT' && code !== 'EBADMSG' && this.keepsUnreadable(fileId, index)) return;
    if (!this.map.removeThisCopy(fileId, index, copy)) return;
    if (code !== 'ENOENT') this.onDamagedCopy(fileId, index, copy.tierId, code === 'EBADMSG' ? 'failed its checksum' : `could not be ${doing} (${code ?? (err as Error).message})`);
    this.discard(fileId, index, copy.tierId);
  }

  /**
   * Which copies a write may keep fresh by patching them: on directory tiers that are healthy, and
   * checked since the mount (or without a checksum to check). Patching clears the checksum and
   * counts the copy as checked: a copy damaged on the tier and not yet read would be laundered.
   */
  private patchable = (copy: CopyRecord): boolean => {
    return isHealthyDirectoryTier(this.tiers.get(copy.tierId)) && (copy.verified || copy.crc32 === null);
  };

  /**
   * Before a change to the file's bytes: counted, and made durable first where the file has records
   * or gets copies (ExtentMap.markWritten), since a power loss could then leave copies or records
   * that disagree with the live file. Undefined when there is nothing to wait for.
   */
  private markWritten(file: OpenFile): Promise<void> | undefined {
    return this.map.markWritten(file.fileId, this.newCopyHomes !== undefined || this.map.hasRecords(file.fileId));
  }

  /** Caller holds file.writeLock. `around`: a streaming write, which patches only what `mustPatch` names. */
  async write(file: OpenFile, liveFd: number, buf: Buffer, length: number, position: number, around = false): Promise<number> {
    if (length === 0) return 0;
    const marking = this.markWritten(file);
    if (marking) await marking;
    const E = this.extentSizeBytes;
    const oldSize = file.sizeBytes;
    const newSize = Math.max(oldSize, position + length);
    let first = Math.floor(position / E);
    const last = Math.floor((position + length - 1) / E);
    // Growing the file changes the (short) copy of the old last extent too: it now ends in zeros.
    const oldLast = oldSize > 0 ? Math.floor((oldSize - 1) / E) : 0;
    if (newSize > oldSize && oldLast < first && this.map.get(file.fileId, oldLast)) first = oldLast;
    const kept = await this.map.beginWrite(file.fileId, first, last, around ? this.patchedAround(file.fileId) : this.patchable);
    try {
      this.discardStale(file.fileId, first, last);
      const liveWrite = this.liveWrite(buf, length, (from) => pwriteFull(liveFd, from, 0, length, position));
      // New copies go beside the live write where they need nothing from the live file.
      const copying = this.copyUnkept(file, kept, first, last, buf, length, position, oldSize, newSize, liveWrite);
      try {
        await liveWrite;
      } catch (err) {
        this.dropUnpatched(file.fileId, first, kept, err);
        await copying;
        throw err;
      }
      file.sizeBytes = newSize;
      file.modified = true;
      await Promise.all([this.patchKept(file, kept, first, buf, length, position, newSize), copying]);
    } finally {
      this.map.endWrite(file.fileId, first, last);
    }
    return length;
  }

  private patchedAround(fileId: string): (copy: CopyRecord, index: number) => boolean {
    return (copy, index) => {
      if (!this.patchable(copy)) return false;
      if (this.mustPatch(fileId, index, copy.tierId)) return true;
      this.counters.writtenAround++;
      return false;
    };
  }

  /**
   * Caller holds file.writeLock. Ahead of a streaming writer: the copies of extents [first, last]
   * that it would not patch go stale now (persisted before this resolves) and are removed, so the
   * extents may be written natively. Extents holding a copy that must stay are left as they are.
   */
  async writeAround(file: OpenFile, first: number, last: number): Promise<void> {
    const marking = this.markWritten(file);
    if (marking) await marking;
    const dropped: { index: number; fresh: number }[] = [];
    for (let i = first; i <= last; i++) {
      const rec = this.map.get(file.fileId, i);
      const copies = rec?.copies ?? [];
      if (rec && copies.length > 0 && !copies.some((c) => this.mustPatch(file.fileId, i, c.tierId))) {
        dropped.push({ index: i, fresh: copies.filter((c) => isFresh(rec, c) && this.patchable(c)).length });
      }
    }
    const begun = await Promise.allSettled(dropped.map(({ index }) => this.map.beginWrite(file.fileId, index, index, () => false)));
    dropped.forEach(({ index, fresh }, k) => {
      // A withdrawal that could not be written leaves its copies named (their bytes are unchanged)
      // and the extent off the native path (it still has copies); the write goes ahead regardless.
      if (begun[k].status === 'rejected') return;
      this.counters.writtenAround += fresh;
      this.discardStale(file.fileId, index, index);
      this.map.endWrite(file.fileId, index, index);
    });
  }

  private async patchKept(file: OpenFile, kept: CopyRecord[][], first: number, buf: Buffer, length: number, position: number, newSize: number): Promise<void> {
    const E = this.extentSizeBytes;
    const patches: Promise<void>[] = [];
    kept.forEach((copies, i) => {
      const index = first + i;
      const extStart = index * E;
      const copyLen = Math.min(E, newSize - extStart);
      // The old last extent may be in the range only because the file grew past it: no bytes, just a new length.
      const from = Math.max(position, extStart);
      const to = Math.max(from, Math.min(position + length, extStart + E));
      const touched = to > from;
      for (const copy of copies) {
        patches.push(this.patchCopy(file.fileId, index, copy, buf, touched ? from - position : 0, to - from, touched ? from - extStart : 0, copyLen));
      }
    });
    await Promise.all(patches);
  }

  /**
   * Write-through for the extents of a write that kept no copy fresh (none yet, or none that can be
   * patched): each gets a whole new copy on the volume's home for writes before the write is
   * acknowledged, so the write is on the live volume and on a shadow, and a live volume lost now
   * loses nothing acknowledged (ARCHITECTURE rule 2; without this, until coverage copied it). The
   * copy is the write's bytes and, for the rest of the extent, the live file's (read once
   * `liveWrite` is done), or zeros past the old end of the file. A copy is published only once
   * `liveWrite` succeeded, so one whose bytes are all in the write is written beside it. An extent
   * no tier takes is counted and left to coverage; the write still succeeds (a full or failed tier
   * never fails a write). Never rejects.
   */
  private async copyUnkept(file: OpenFile, kept: CopyRecord[][], first: number, last: number, buf: Buffer, length: number, position: number, oldSize: number, newSize: number, liveWrite: Promise<unknown>): Promise<void> {
    if (!this.newCopyHomes) return;
    const liveWritten = liveWrite.then(() => true, () => false);
    const E = this.extentSizeBytes;
    const copies: Promise<void>[] = [];
    for (let index = first; index <= last; index++) {
      if ((kept[index - first]?.length ?? 0) > 0) continue;
      const extStart = index * E;
      const from = Math.max(position, extStart);
      const to = Math.min(position + length, extStart + E);
      // The old last extent, in the range only because the file grew past it: this write has no bytes there.
      if (to <= from) continue;
      const generation = this.map.ensureRecord(file.fileId, index, true);
      copies.push((async () => {
        const copyLen = Math.min(E, newSize - extStart);
        const fromLive = !(from === extStart && to - from === copyLen) && extStart < oldSize;
        if (fromLive && !(await liveWritten)) return;
        const data = (): Promise<Buffer | undefined> => this.wholeExtent(file, index, buf, from - position, from - extStart, to - from, copyLen, fromLive);
        if (!(await this.storeOnAHome(file, index, data, generation, liveWritten)) && (await liveWritten)) this.counters.liveOnlyWrites++;
      })().catch(() => {
        // The live file could not be read for the rest of the extent.
        this.counters.liveOnlyWrites++;
      }));
    }
    await Promise.all(copies);
  }

  /**
   * An extent's bytes after a write of `length` bytes of buf[bufOffset..] at offsetInExtent, the
   * rest from the live file (`fromLive`, after the write) or zeros; undefined if the live file
   * cannot supply the rest.
   */
  private async wholeExtent(file: OpenFile, index: number, buf: Buffer, bufOffset: number, offsetInExtent: number, length: number, copyLen: number, fromLive: boolean): Promise<Buffer | undefined> {
    if (offsetInExtent === 0 && length === copyLen) return buf.subarray(bufOffset, bufOffset + length);
    const E = this.extentSizeBytes;
    const data = Buffer.alloc(copyLen);
    if (fromLive) {
      if (file.readFd < 0) return undefined;
      const n = await this.liveOp('read', () => preadFull(file.readFd, data, 0, copyLen, index * E));
      // Shorter than the mount's size for it: cut behind the mount's back; coverage sorts that out.
      if (n !== copyLen) return undefined;
    }
    buf.copy(data, offsetInExtent, bufOffset, bufOffset + length);
    return data;
  }

  private async patchCopy(fileId: string, index: number, copy: CopyRecord, buf: Buffer, bufOffset: number, length: number, offsetInExtent: number, copyLen: number): Promise<void> {
    const vt = this.tiers.get(copy.tierId);
    if (!vt) return;
    const ref = { fileId, index };
    try {
      if (length > 0) await vt.tier.patch(ref, offsetInExtent, buf.subarray(bufOffset, bufOffset + length), false);
      if (Math.max(copy.sizeBytes, offsetInExtent + length) !== copyLen) await vt.tier.truncate(ref, copyLen);
      const grew = copyLen > copy.sizeBytes;
      this.map.patched(fileId, index, copy, copyLen);
      if (grew) this.copyGrew(copy.tierId);
    } catch (err) {
      this.dropBadCopy(fileId, index, copy, err, 'patched');
    }
  }

  /**
   * Set by the volume: the error says the live volume did not answer in time. The volume then
   * fails over, and the write is done again through the shadows.
   */
  liveUnanswered: (err: unknown) => boolean = () => false;

  /**
   * Set by the volume: a write grew a copy on this tier in place (the file grew within the
   * extent), past the room taken when the copy was made. The tier may be over its capacity now.
   */
  copyGrew: (tierId: number) => void = () => undefined;

  /**
   * The live op of a write failed. The copies it kept carry the new generation but still the old
   * bytes, and the live file may hold some of the new ones (a short write before ENOSPC or EIO):
   * they go. Not when the live volume did not answer in time: the write is then done again through
   * the shadows, which patch those very copies (then perhaps the only home of the data).
   */
  private dropUnpatched(fileId: string, first: number, kept: CopyRecord[][], err: unknown): void {
    if (this.liveUnanswered(err)) return;
    kept.forEach((copies, i) => {
      for (const c of copies) if (this.map.removeThisCopy(fileId, first + i, c)) this.discard(fileId, first + i, c.tierId);
    });
  }

  /** Copies left stale by a write hold bytes nobody will read: remove them in the background. */
  private discardStale(fileId: string, first: number, last: number): void {
    for (let i = first; i <= last; i++) {
      const rec = this.map.get(fileId, i);
      if (!rec) continue;
      for (const c of [...rec.copies]) {
        if (!isFresh(rec, c) && this.map.removeCopy(fileId, i, c.tierId)) this.discard(fileId, i, c.tierId);
      }
    }
  }

  /**
   * Caller holds file.writeLock. A change to the bytes of extents [first, last] that no copy can be
   * patched for (fallocate's punched holes and zeroed ranges): every copy of them goes stale, and
   * the records say so, before `change` runs on the live file; the file's size is `sizeBytes` after.
   */
  async changeUnpatched(file: OpenFile, first: number, last: number, sizeBytes: number, change: () => Promise<void>, zeroed?: { from: number; to: number }): Promise<void> {
    const oldSize = file.sizeBytes;
    const marking = this.markWritten(file);
    if (marking) await marking;
    await this.map.beginWrite(file.fileId, first, last, () => false);
    try {
      this.discardStale(file.fileId, first, last);
      await this.liveOp('write', change);
      file.sizeBytes = sizeBytes;
      file.modified = true;
    } finally {
      this.map.endWrite(file.fileId, first, last);
    }
    await this.shadowUnpatched(file, changedExtents(this.extentSizeBytes, oldSize, sizeBytes, zeroed));
  }

  /**
   * Caller holds file.writeLock. On a volume that keeps every acknowledged change on a shadow
   * (newCopyHomes set; ARCHITECTURE rule 2), after a change no copy could follow: extents that are
   * all zeros now are recorded as such (no bytes move, however large the range), and each extent
   * changed in part that the map knows (written or copied before) and that has no fresh copy left
   * gets a whole one, read back from the live file. Extents the map never knew are the live
   * volume's own data, which coverage copies.
   */
  private async shadowUnpatched(file: OpenFile, changed: ChangedExtents): Promise<void> {
    if (!this.newCopyHomes) return;
    const zeros = changed.zeros.slice(0, MAX_ZERO_MARKS);
    this.counters.liveOnlyWrites += changed.zeros.length - zeros.length;
    if (zeros.length > 0) await this.map.markZeros(file.fileId, zeros);
    const E = this.extentSizeBytes;
    await Promise.all(changed.partial.map(async (index) => {
      const rec = this.map.get(file.fileId, index);
      const copyLen = Math.min(E, file.sizeBytes - index * E);
      if (!rec || copyLen <= 0 || rec.copies.some((c) => isFresh(rec, c))) return;
      const data = (): Promise<Buffer | undefined> => this.wholeExtent(file, index, NO_BYTES, 0, 0, 0, copyLen, true).catch(() => undefined);
      if (!(await this.storeOnAHome(file, index, data, rec.generation, LIVE_DONE))) this.counters.liveOnlyWrites++;
    }));
  }

  /**
   * A whole copy of the extent (its bytes built by `bytes`, only if some tier may take them) onto
   * the first of its homes that takes it: a full or failing tier, the next. False if none did.
   */
  private async storeOnAHome(file: OpenFile, index: number, bytes: () => Promise<Buffer | undefined>, generation: number, liveWritten: Promise<boolean>): Promise<boolean> {
    const tierIds = this.newCopyHomes?.(file.fileId, index) ?? [];
    const data = tierIds.length > 0 ? await bytes() : undefined;
    if (!data) return false;
    for (const tierId of tierIds) {
      if (await this.storeNewCopy(file, index, tierId, data, generation, liveWritten).catch(() => false)) return true;
    }
    return false;
  }

  /** Caller holds file.writeLock. Cuts (or extends) the live file and every copy to `sizeBytes`. */
  async truncate(file: OpenFile, liveFd: number, sizeBytes: number): Promise<void> {
    const marking = this.markWritten(file);
    if (marking) await marking;
    const E = this.extentSizeBytes;
    const oldSize = file.sizeBytes;
    if (sizeBytes < oldSize) {
      for (const { index, copy } of await this.map.truncateRecords(file.fileId, Math.ceil(sizeBytes / E))) {
        if (this.map.removeCopy(file.fileId, index, copy.tierId)) this.discard(file.fileId, index, copy.tierId);
      }
    }
    // The extent holding the new end (shrinking) or the old end (growing) keeps its copies, resized.
    let edge = -1;
    if (sizeBytes < oldSize && sizeBytes % E !== 0) edge = Math.floor(sizeBytes / E);
    if (sizeBytes > oldSize && oldSize > 0) edge = Math.floor((oldSize - 1) / E);
    if (edge < 0 || !this.map.get(file.fileId, edge)) {
      await this.liveOp('write', () => ftruncateFd(liveFd, sizeBytes));
      file.sizeBytes = sizeBytes;
      file.modified = true;
      await this.shadowUnpatched(file, changedExtents(E, oldSize, sizeBytes));
      return;
    }
    const [kept] = await this.map.beginWrite(file.fileId, edge, edge, this.patchable);
    try {
      this.discardStale(file.fileId, edge, edge);
      await this.liveOp('write', () => ftruncateFd(liveFd, sizeBytes)).catch((err: unknown) => {
        this.dropUnpatched(file.fileId, edge, [kept], err);
        throw err;
      });
      file.sizeBytes = sizeBytes;
      file.modified = true;
      const copyLen = Math.min(E, sizeBytes - edge * E);
      await Promise.all(kept.map((c) => this.patchCopy(file.fileId, edge, c, Buffer.alloc(0), 0, 0, 0, copyLen)));
    } finally {
      this.map.endWrite(file.fileId, edge, edge);
    }
    // The edge is a partly changed extent of a shrink too: it needs a copy if it kept none.
    await this.shadowUnpatched(file, sizeBytes < oldSize ? { zeros: [], partial: [edge] } : changedExtents(E, oldSize, sizeBytes));
  }
}
