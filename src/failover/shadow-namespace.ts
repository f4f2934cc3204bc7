/**
 * The volume while failed over: the namespace is the mirror, file data is the shadow copies, and
 * every change is journaled (dirty extents, touched entries) and persisted before it is
 * acknowledged, for resync to replay onto the live volume later.
 *
 * The live volume is not touched, except as a last resort for the bytes of an extent that has no
 * shadow copy (through the guard, so a hung volume costs the deadline, not a hang).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { ExtentMap, isFresh } from '../extents/extent-map';
import { IoRedirector, LiveReader } from '../io/redirector';
import { FastPath } from '../io/fast-path';
import { isHealthyDirectoryTier, TierSet } from '../tiers/tier-set';
import { FsError } from '../util/errors';
import { Mutex } from '../util/mutex';
import { pread } from '../util/fd-io';
import { Handle, OpenFile, OpenFiles } from '../volume/open-files';
import { FailoverJournal, FailoverStore, FailoverStoreOp, isLost, lostKey } from './failover-store';
import { LiveGuard } from './live-guard';
import { MirrorEntry, NamespaceMirror, statsFromEntry } from './namespace-mirror';
import { ExtentNotWritten, ShadowWriter } from './shadow-writer';
import { isAtOrUnder, movedPath, parentOf } from '../util/tree-paths';

export interface ShadowCaller {
  uid: number;
  gid: number;
}

export interface ShadowNamespaceDeps {
  livePath: string;
  map: ExtentMap;
  tiers: TierSet;
  io: IoRedirector;
  open: OpenFiles;
  fastPath: FastPath;
  guard: LiveGuard;
  mirror: NamespaceMirror;
  store: FailoverStore;
  journal: FailoverJournal;
  writer: ShadowWriter;
  extentSizeBytes: number;
  /** Copies of a file whose last link went away. */
  dropFile: (fileId: string) => Promise<void>;
  discard: (fileId: string, index: number, tierId: number) => void;
}

const { O_TRUNC, O_RDWR, O_WRONLY } = fs.constants;
const ACCMODE = 3;
/** Handles made while failed over have no live fd; their numbers stay clear of real fds. */
let nextShadowFh = 1 << 30;

export class ShadowNamespace {
  constructor(private readonly d: ShadowNamespaceDeps) {}

  /** A touched entry: files by id, everything else by path. */
  static touchedKey(p: string, e: MirrorEntry): string {
    return e.type === 'file' && e.fileId ? e.fileId : `p:${p}`;
  }

  private entry(p: string): MirrorEntry {
    const e = this.d.mirror.get(p);
    if (!e) throw new FsError('ENOENT');
    return e;
  }

  private dirEntry(p: string): MirrorEntry {
    const e = this.entry(p);
    if (e.type !== 'dir') throw new FsError('ENOTDIR');
    return e;
  }

  /** Parent must be an existing directory; the name must be free. */
  private checkNew(p: string): void {
    this.dirEntry(parentOf(p));
    if (this.d.mirror.get(p)) throw new FsError('EEXIST');
  }

  private touch(p: string, e: MirrorEntry, ops: FailoverStoreOp[]): void {
    const key = ShadowNamespace.touchedKey(p, e);
    if (!this.d.journal.touched.has(key)) {
      this.d.journal.touched.add(key);
      ops.push(FailoverStore.touchedPut(key));
    }
  }

  /** The extent changed while failed over: resync must replay it. True if it had already. */
  private markDirty(fileId: string, index: number, ops: FailoverStoreOp[]): boolean {
    let s = this.d.journal.dirty.get(fileId);
    if (!s) this.d.journal.dirty.set(fileId, (s = new Set()));
    if (s.has(index)) return true;
    s.add(index);
    // A lost mark left from before the extent was last settled is not this change's.
    this.d.journal.lost.delete(lostKey(fileId, index));
    ops.push(FailoverStore.dirtyPut(fileId, index));
    return false;
  }

  /** markDirty undone, and committed, for `indexes`: the change they were marked for never reached them. */
  private async unmarkDirty(fileId: string, indexes: Iterable<number>): Promise<void> {
    const ops: FailoverStoreOp[] = [];
    const s = this.d.journal.dirty.get(fileId);
    for (const index of indexes) if (s?.delete(index)) ops.push(FailoverStore.dirtyDel(fileId, index));
    if (s?.size === 0) this.d.journal.dirty.delete(fileId);
    if (ops.length > 0) await this.commit(ops);
  }

  /** The extent's bytes are whole again (rewritten, or cut off by a truncate): no longer lost. */
  private unlose(fileId: string, index: number, ops: FailoverStoreOp[]): void {
    if (!isLost(this.d.journal, fileId, index)) return;
    this.d.journal.lost.delete(lostKey(fileId, index));
    ops.push(FailoverStore.dirtyPut(fileId, index));
  }

  private namespaceChanged(ops: FailoverStoreOp[]): void {
    if (!this.d.journal.namespaceChanged) {
      this.d.journal.namespaceChanged = true;
      ops.push(FailoverStore.meta('ns', '1'));
    }
  }

  /** `p` (and what is under it) left the namespace: resync may remove it from the live volume. */
  private removedPath(p: string, ops: FailoverStoreOp[]): void {
    this.namespaceChanged(ops);
    if (this.d.journal.removed.has(p)) return;
    this.d.journal.removed.add(p);
    ops.push(FailoverStore.removedPut(p));
  }

  private commit(ops: FailoverStoreOp[]): Promise<void> {
    return this.d.store.commit(ops);
  }

  /** Fill in what the live file held at failover, before the first change (resync and holes need it). */
  private withLiveSize(e: MirrorEntry): MirrorEntry {
    return e.liveSize === undefined ? { ...e, liveSize: e.size } : e;
  }

  private live(p: string): string {
    return this.d.livePath + p;
  }

  private vpOf(file: OpenFile): string {
    return file.livePath.slice(this.d.livePath.length) || '/';
  }

  // ---- reads of the namespace ----

  async getattr(p: string): Promise<fs.Stats> {
    const e = this.entry(p);
    const open = e.fileId ? this.d.open.file(e.fileId) : undefined;
    return statsFromEntry(open ? { ...e, size: open.sizeBytes } : e);
  }

  async fgetattr(h: Handle): Promise<fs.Stats> {
    const e = this.d.mirror.get(this.vpOf(h.file));
    const base: MirrorEntry = e && e.fileId === h.file.fileId ? e : {
      type: 'file', mode: fs.constants.S_IFREG | 0o644, uid: 0, gid: 0, size: 0, nlink: 0, rdev: 0, atimeMs: Date.now(), mtimeMs: Date.now(), ctimeMs: Date.now(), fileId: h.file.fileId,
    };
    return statsFromEntry({ ...base, size: h.file.sizeBytes });
  }

  async access(p: string): Promise<void> {
    this.entry(p);
  }

  async readdir(p: string): Promise<string[]> {
    this.dirEntry(p);
    return this.d.mirror.children(p);
  }

  async readlink(p: string): Promise<string> {
    const e = this.entry(p);
    if (e.type !== 'symlink') throw new FsError('EINVAL');
    return e.target ?? '';
  }

  /**
   * The space of the fastest healthy directory tier: one of the two that take writes while failed
   * over (the live volume's is unknown now).
   */
  async statfs(): Promise<fs.StatsFs> {
    const vt = this.d.tiers.all().find(isHealthyDirectoryTier) ?? this.d.tiers.all()[0];
    if (!vt) throw new FsError('EIO', 'no tier to report space of');
    return fsp.statfs(vt.tier.spec.path);
  }

  // ---- namespace changes ----

  private newEntry(type: MirrorEntry['type'], mode: number, caller: ShadowCaller | undefined, extra: Partial<MirrorEntry> = {}): MirrorEntry {
    const now = Date.now();
    return {
      type, mode, uid: caller?.uid ?? 0, gid: caller?.gid ?? 0, size: 0, nlink: 1, rdev: 0,
      atimeMs: now, mtimeMs: now, ctimeMs: now, ...extra,
    };
  }

  async mkdir(p: string, mode: number, caller?: ShadowCaller): Promise<void> {
    this.checkNew(p);
    const e = this.newEntry('dir', fs.constants.S_IFDIR | (mode & 0o7777), caller, { nlink: 2, size: 4096 });
    const ops = this.d.mirror.set(p, e);
    this.touch(p, e, ops);
    this.namespaceChanged(ops);
    await this.commit(ops);
  }

  async rmdir(p: string): Promise<void> {
    if (p === '/') throw new FsError('EBUSY');
    this.dirEntry(p);
    if (this.d.mirror.children(p).length > 0) throw new FsError('ENOTEMPTY');
    const ops = this.d.mirror.delete(p);
    this.removedPath(p, ops);
    await this.commit(ops);
  }

  async symlink(target: string, p: string, caller?: ShadowCaller): Promise<void> {
    this.checkNew(p);
    const e = this.newEntry('symlink', fs.constants.S_IFLNK | 0o777, caller, { size: Buffer.byteLength(target), target });
    const ops = this.d.mirror.set(p, e);
    this.touch(p, e, ops);
    this.namespaceChanged(ops);
    await this.commit(ops);
  }

  async unlink(p: string): Promise<void> {
    const e = this.entry(p);
    if (e.type === 'dir') throw new FsError('EISDIR');
    const ops = this.d.mirror.delete(p);
    this.removedPath(p, ops);
    await this.commit(ops);
    await this.forgetIfGone(e);
  }

  /** The last name of a file went away: its copies go (now, or at its last close). */
  private async forgetIfGone(e: MirrorEntry): Promise<void> {
    if (e.type !== 'file' || !e.fileId || this.d.mirror.pathsOf(e.fileId).length > 0) return;
    const open = this.d.open.file(e.fileId);
    if (open) open.unlinked = true;
    else await this.d.dropFile(e.fileId);
  }

  async rename(from: string, to: string): Promise<void> {
    const moved = this.entry(from);
    this.dirEntry(parentOf(to));
    const replaced = this.d.mirror.get(to);
    if (replaced) {
      if (replaced.type === 'dir' && moved.type !== 'dir') throw new FsError('EISDIR');
      if (replaced.type !== 'dir' && moved.type === 'dir') throw new FsError('ENOTDIR');
      if (replaced.type === 'dir' && this.d.mirror.children(to).length > 0) throw new FsError('ENOTEMPTY');
    }
    if (moved.type === 'dir' && isAtOrUnder(to, from)) throw new FsError('EINVAL');
    const ops = this.d.mirror.rename(from, to);
    this.removedPath(from, ops);
    if (replaced) this.removedPath(to, ops);
    // Everything moved counts as touched: resync finds it by its new path. Its old paths are gone
    // one by one too: a file that stays on the live volume under the old name (removed while
    // failed over, the directory made again) must not come back at failback.
    for (const [p, e] of this.d.mirror.all()) {
      const old = movedPath(p, to, from);
      if (old === undefined) continue;
      this.touch(p, e, ops);
      if (p !== to) this.removedPath(old, ops);
    }
    await this.commit(ops);
    this.d.open.moved(this.live(from), this.live(to));
    if (replaced && replaced.fileId !== moved.fileId) await this.forgetIfGone(replaced);
  }

  private async setAttrs(p: string, change: Partial<MirrorEntry>): Promise<void> {
    const e = this.entry(p);
    const next = { ...e, ...change, ctimeMs: Date.now() };
    const ops = this.d.mirror.set(p, next);
    this.touch(p, next, ops);
    await this.commit(ops);
  }

  chmod(p: string, mode: number): Promise<void> {
    const e = this.entry(p);
    return this.setAttrs(p, { mode: (e.mode & fs.constants.S_IFMT) | (mode & 0o7777) });
  }

  chown(p: string, uid: number, gid: number): Promise<void> {
    const e = this.entry(p);
    return this.setAttrs(p, { uid: uid === 0xffffffff ? e.uid : uid, gid: gid === 0xffffffff ? e.gid : gid });
  }

  utimens(p: string, atime: number | null, mtime: number | null): Promise<void> {
    const e = this.entry(p);
    return this.setAttrs(p, { atimeMs: atime === null ? e.atimeMs : atime * 1000, mtimeMs: mtime === null ? e.mtimeMs : mtime * 1000 });
  }

  // ---- files ----

  private fileOf(p: string, e: MirrorEntry): OpenFile {
    const fileId = e.fileId as string;
    const existing = this.d.open.file(fileId);
    if (existing) return existing;
    const file: OpenFile = {
      fileId, livePath: this.live(p), sizeBytes: e.size, writeLock: new Mutex(), readFd: -1,
      handles: 0, modified: false, nativeWritable: false, unlinked: false, fhs: new Set(),
    };
    this.d.open.addFile(file);
    return file;
  }

  async openFile(p: string, flags: number): Promise<number> {
    const e = this.entry(p);
    if (e.type === 'dir') throw new FsError('EISDIR');
    if (e.type !== 'file' || !e.fileId) throw new FsError('ENXIO', 'only regular files can be opened while failed over');
    const file = this.fileOf(p, e);
    const access = flags & ACCMODE;
    const h: Handle = { fh: nextShadowFh++, fd: -1, file, writable: access === O_WRONLY || access === O_RDWR };
    this.d.open.addHandle(h);
    this.d.fastPath.onHandleOpened(h.fh, file);
    if (flags & O_TRUNC && h.writable) await this.ftruncate(h, 0);
    return h.fh;
  }

  async create(p: string, mode: number, caller?: ShadowCaller): Promise<number> {
    const existing = this.d.mirror.get(p);
    if (existing) return this.openFile(p, O_RDWR);
    this.checkNew(p);
    const fileId = `s${(this.d.journal.nextSyntheticId++).toString(36)}`;
    const e = this.newEntry('file', fs.constants.S_IFREG | (mode & 0o7777), caller, { fileId, liveSize: 0 });
    const ops = [...this.d.mirror.set(p, e), FailoverStore.meta('seq', String(this.d.journal.nextSyntheticId))];
    this.touch(p, e, ops);
    this.namespaceChanged(ops);
    await this.commit(ops);
    return this.openFile(p, O_RDWR);
  }

  /** Reads: fresh copies; bytes past what the live file held are a hole; else the live file, if it answers. */
  liveReader(file: OpenFile): LiveReader {
    const liveSize = (): number => {
      const e = this.d.mirror.get(this.vpOf(file));
      return e && e.fileId === file.fileId ? (e.liveSize ?? e.size) : file.sizeBytes;
    };
    return {
      authoritative: false,
      pread: async (buf, at, length, position) => {
        const held = liveSize();
        // The redirector asks for one extent at a time, after its copies.
        const E = this.d.extentSizeBytes;
        const index = Math.floor(position / E);
        if (position >= held) {
          // Past what the live file held, an extent with no copy at all is a hole. One whose copies
          // failed, or were dropped as damaged, held bytes written while failed over: not zeros.
          const rec = this.d.map.get(file.fileId, index);
          if (isLost(this.d.journal, file.fileId, index) || (rec && !rec.zeros && rec.copies.some((c) => isFresh(rec, c)))) {
            throw new FsError('EIO', `${file.livePath}: extent ${index} was written while failed over and no copy of it can be read`);
          }
          buf.fill(0, at, at + length);
          return length;
        }
        // Zeros the mount made (a grown file, a punched hole) are known without the live volume.
        if (this.d.map.get(file.fileId, index)?.zeros) {
          const n = Math.min(length, E - (position % E));
          buf.fill(0, at, at + n);
          return n;
        }
        // Written while failed over: the live file's bytes are older than the extent's, however
        // well the live volume answers. Its copies could not be read.
        if (this.d.journal.dirty.get(file.fileId)?.has(index)) {
          throw new FsError('EIO', `${file.livePath}: extent ${index} was written while failed over and no copy of it can be read`);
        }
        if (file.readFd < 0) throw new FsError('EIO', `${file.livePath}: no shadow copy of this range and the live volume is failed over`);
        const fd = file.readFd;
        const n = Math.min(length, held - position);
        return this.d.guard.readInto(buf, at, n, (own) => pread(fd, own, 0, n, position), { force: true });
      },
    };
  }

  async write(h: Handle, buf: Buffer, length: number, position: number): Promise<number> {
    if (!h.writable) throw new FsError('EBADF');
    if (length === 0) return 0;
    const file = h.file;
    const E = this.d.extentSizeBytes;
    let first = 0;
    let last = -1;
    await file.writeLock.run(async () => {
      const oldSize = file.sizeBytes;
      const newSize = Math.max(oldSize, position + length);
      first = Math.floor(position / E);
      last = Math.floor((position + length - 1) / E);
      const oldLast = oldSize > 0 ? Math.floor((oldSize - 1) / E) : 0;
      // Growing the file changes the old last extent too (it now ends in zeros, not at EOF).
      if (newSize > oldSize && oldLast < first && oldSize % E !== 0) first = oldLast;
      this.d.fastPath.unmap(file.fileId, first, last);
      const p = this.vpOf(file);
      const e = this.withLiveSize(this.entry(p));
      // Journaled before the copies change: a crash in between must leave resync an extent to
      // replay, not a fresh copy the journal does not name (live and shadow would then differ).
      const dirty: FailoverStoreOp[] = [];
      const changedBefore = new Set<number>();
      for (let i = first; i <= last; i++) if (this.markDirty(file.fileId, i, dirty)) changedBefore.add(i);
      if (dirty.length > 0) await this.commit(dirty);
      const ops: FailoverStoreOp[] = [];
      for (let i = first; i <= last; i++) {
        const extStart = i * E;
        const from = Math.max(position, extStart);
        const to = Math.max(from, Math.min(position + length, extStart + E));
        try {
          await this.d.writer.writeExtent(file, i, buf.subarray(from - position, to - position), from - extStart, Math.min(E, newSize - extStart), e.liveSize as number, changedBefore.has(i));
        } catch (err) {
          // The extents this write did not change, and no earlier one while failed over, are as
          // they were: marked dirty, they would read as written while failed over with no copy
          // left (EIO), though the live file still holds their bytes.
          const untouched: number[] = [];
          for (let j = err instanceof ExtentNotWritten ? i : i + 1; j <= last; j++) if (!changedBefore.has(j)) untouched.push(j);
          await this.unmarkDirty(file.fileId, untouched);
          throw err;
        }
        // A lost extent takes only a write of all its bytes (ShadowWriter refuses the rest).
        this.unlose(file.fileId, i, ops);
      }
      file.sizeBytes = newSize;
      const now = Date.now();
      ops.push(...this.d.mirror.set(p, { ...e, size: newSize, mtimeMs: now, ctimeMs: now }));
      this.touch(p, e, ops);
      await this.commit(ops);
    });
    this.d.fastPath.remap(file, first, last);
    return length;
  }

  async ftruncate(h: Handle, sizeBytes: number): Promise<void> {
    const file = h.file;
    const E = this.d.extentSizeBytes;
    await file.writeLock.run(async () => {
      this.d.fastPath.unmapAll(file.fileId);
      const p = this.vpOf(file);
      let e = this.withLiveSize(this.entry(p));
      const oldSize = file.sizeBytes;
      const ops: FailoverStoreOp[] = [];
      // What the live file held past the cut is gone for good: reads there are zeros from now on.
      if (sizeBytes < oldSize) e = { ...e, liveSize: Math.min(e.liveSize as number, sizeBytes) };
      let edge = -1;
      if (sizeBytes < oldSize && sizeBytes % E !== 0) edge = Math.floor(sizeBytes / E);
      if (sizeBytes > oldSize && oldSize % E !== 0) edge = Math.floor(oldSize / E);
      // The edge first: it can fail (no tier takes its copy), and then the file must be as it was,
      // its extents past the cut still on their copies (the only home of those written while
      // failed over).
      if (edge >= 0) {
        // Journaled first, as for a write.
        const dirty: FailoverStoreOp[] = [];
        const changedBefore = this.markDirty(file.fileId, edge, dirty);
        if (dirty.length > 0) await this.commit(dirty);
        try {
          await this.d.writer.writeExtent(file, edge, Buffer.alloc(0), 0, Math.min(E, sizeBytes - edge * E), e.liveSize as number, changedBefore);
        } catch (err) {
          if (err instanceof ExtentNotWritten && !changedBefore) await this.unmarkDirty(file.fileId, [edge]);
          throw err;
        }
      }
      if (sizeBytes < oldSize) {
        for (const { index, copy } of await this.d.map.truncateRecords(file.fileId, Math.ceil(sizeBytes / E))) {
          if (this.d.map.removeCopy(file.fileId, index, copy.tierId)) this.d.discard(file.fileId, index, copy.tierId);
        }
        for (const index of this.d.journal.dirty.get(file.fileId) ?? []) {
          if (index >= Math.ceil(sizeBytes / E)) this.unlose(file.fileId, index, ops);
        }
      }
      file.sizeBytes = sizeBytes;
      const now = Date.now();
      ops.push(...this.d.mirror.set(p, { ...e, size: sizeBytes, mtimeMs: now, ctimeMs: now }));
      this.touch(p, e, ops);
      await this.commit(ops);
    });
    this.d.fastPath.remap(file, 0, Math.max(0, Math.ceil(file.sizeBytes / E) - 1));
  }

  /**
   * While failed over the copies are the file's only home: a tier that fails to make one of them
   * durable fails the fsync (as the live file's fsync would). A tier whose copies of the file all
   * went stale (a write moved on without it) does not.
   */
  async fsync(h: Handle): Promise<void> {
    const fileId = h.file.fileId;
    const failed: string[] = [];
    await Promise.all(this.d.tiers.all().map((t) => t.tier.syncFile(fileId).catch((err: Error) => {
      const holdsFresh = [...this.d.map.extents(fileId).values()].some((rec) => rec.copies.some((c) => c.tierId === t.id && isFresh(rec, c)));
      if (holdsFresh) failed.push(`${t.tier.spec.name}: ${err.message}`);
    })));
    if (failed.length > 0) throw new FsError('EIO', `${h.file.livePath}: fsync of its shadow copies failed (${failed.join('; ')})`);
    await this.d.map.sync();
    await this.d.store.sync();
  }
}
