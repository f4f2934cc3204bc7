/**
 * The volume: the namespace of the live directory (directories, attributes, links, xattrs) and
 * the open handles, with file data routed through the I/O redirector. FUSE-agnostic: paths are
 * volume-relative ("/a/b"), results are values, failures are errors with an errno `code`.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as xattr from '@napi-rs/xattr';
import { ExtentMap } from '../extents/extent-map';
import { IoRedirector } from '../io/redirector';
import { TierSet } from '../tiers/tier-set';
import { ShadowManager } from '../shadow/shadow-manager';
import { FsError, errorCode } from '../util/errors';
import { closeFd, fstat, fsyncFd, openFd } from '../util/fd-io';
import { Logger } from '../util/log';
import { Mutex } from '../util/mutex';
import { Handle, OpenFile, OpenFiles } from './open-files';
import { DirectLiveReads } from './direct-live-reads';
import { FastPath } from '../io/fast-path';
import { NativeWrites } from '../io/native-writes';
import { SequentialWrites } from '../io/write-around';
import { LiveReader } from '../io/redirector';
import { LiveGuard, LiveUnavailable } from '../failover/live-guard';
import { ShadowNamespace } from '../failover/shadow-namespace';
import { RESERVED_NAMES } from '../failover/namespace-mirror';
import { ModeGate } from '../failover/mode-gate';
import { pread } from '../util/fd-io';
import { settlesWithin } from '../util/settles-within';
import type { SystemCalls } from './system-calls';

/** Who asked: new files and directories are given to the caller, as a kernel filesystem would. */
export interface Caller {
  uid: number;
  gid: number;
}

/** A new time in seconds since the epoch (fractions allowed), or null to leave it as it is. */
export type TimeUpdate = number | null;

const { O_DIRECT, O_APPEND, O_TRUNC, O_CREAT, O_EXCL, O_ACCMODE, O_RDONLY, O_RDWR, O_WRONLY } = fs.constants as Record<string, number> & { O_ACCMODE?: number };
const ACCMODE = O_ACCMODE ?? 3;
/**
 * Never passed to the live file: O_DIRECT makes unaligned FUSE writes fail (EINVAL); the kernel
 * already turned O_APPEND into offsets and O_TRUNC into a truncate we route ourselves.
 */
const STRIPPED_FLAGS = (O_DIRECT ?? 0) | O_APPEND | O_TRUNC | O_CREAT | O_EXCL;
/** fallocate(2) flags (linux/falloc.h) that the mount applies; the others shift bytes (collapse, insert). */
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
const FALLOC_FL_UNSHARE_RANGE = 0x40;
const FALLOCATE_SUPPORTED = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_UNSHARE_RANGE;
/**
 * How long an unmount waits for the live volume to answer the fstat behind each open file's record.
 * Past it the unmount goes on without the record, which costs that file's copies at the next mount
 * (the open finds the live file changed and drops them) and never serves one stale.
 */
const CLOSE_RECORD_MS = 5_000;
/** How long a last close waits for another close's store of the file's record before it forgets the file. */
const LATER_RECORD_WAIT_MS = 1_000;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

/** What the mount's own namespace changes tell the mirror (kept for failover). */
export interface NamespaceListener {
  changed(p: string): void;
  removed(p: string): void;
  renamed(from: string, to: string): void;
}

export class Volume {
  readonly open = new OpenFiles();
  readonly fastPath: FastPath;
  readonly nativeWrites: NativeWrites;
  /** Which writes stream (write around cache copies). */
  private readonly sequentialWrites: SequentialWrites;
  /** How background copies read the live file (direct I/O into the tier's buffer when it suits). */
  readonly directLiveReads: DirectLiveReads;
  /** Every live-volume op runs under it: a deadline, bounded concurrency, health samples. */
  readonly guard = new LiveGuard({ deadlineMs: 5_000, syncDeadlineMs: 5_000, maxConcurrent: 8 });
  /** Set while failed over (and while resyncing): namespace and data come from the shadows. */
  shadow: ShadowNamespace | undefined;
  /** Ops hold it shared; failback holds it alone for the switch back to the live volume. */
  readonly gate = new ModeGate();
  /** Set by the assembly: fail over now (a live op was not answered); resolves true once failed over. */
  failoverNow: ((reason: string) => Promise<boolean>) | undefined;
  namespaceListener: NamespaceListener | undefined;

  constructor(
    readonly livePath: string,
    readonly map: ExtentMap,
    readonly tiers: TierSet,
    readonly io: IoRedirector,
    readonly shadows: ShadowManager,
    private readonly log: Logger,
    private readonly system: SystemCalls,
    writeAroundAfterBytes = 0,
  ) {
    this.fastPath = new FastPath(map, tiers, this.open, io.extentSizeBytes);
    this.nativeWrites = new NativeWrites(map, this.open, io.extentSizeBytes);
    this.nativeWrites.mappedToCopy = (fileId, index) => typeof this.fastPath.mappedTo(fileId, index) === 'number';
    this.sequentialWrites = new SequentialWrites(writeAroundAfterBytes);
    io.mustPatch = (fileId, index, tierId) => shadows.mustKeep(fileId, index, tierId);
    io.copyGrew = (tierId) => shadows.settleCapacity(tierId);
    io.storeNewCopy = (file, index, tierId, data, generation, liveWritten) => shadows.storeWrittenCopy(file, index, tierId, data, generation, liveWritten);
    shadows.onFileReleased = (file) => this.closeInBackground(file);
    shadows.lastForegroundMs = () => this.lastForegroundMs;
    this.directLiveReads = new DirectLiveReads(!process.env.SHADOWFS_NO_DIRECT_LIVE_READS, (fd) => this.guard.run('meta', () => closeFd(fd), { force: true }), (why) => log.warn('volume', why));
    shadows.readLive = (file, buf, length, position) => this.guard.run('read', () => this.directLiveReads.read(file, buf, length, position), { background: true });
    shadows.syncLive = (file) => this.guard.run('sync', () => fsyncFd(file.readFd, true), { background: true });
    shadows.beforeRemove = (fileId, index) => this.fastPath.unmap(fileId, index, index);
    shadows.beforeCopyRead = (fileId, index) => this.nativeWrites.revoke(fileId, index, index);
    shadows.onPublished = (file, index) => this.fastPath.remap(file, index, index);
    io.liveOp = (kind, fn) => this.guard.run(kind, fn);
    io.liveWrite = (buf, length, write) => this.guard.writeFrom(buf, 0, length, write);
    io.liveUnanswered = (err) => err instanceof LiveUnavailable;
    io.onVerified = (fileId, index) => {
      const file = this.open.file(fileId);
      if (file) this.fastPath.remap(file, index, index);
    };
  }

  /** Volume path → live path. FUSE paths are absolute and normalised; refuse anything else. */
  live(p: string): string {
    if (!p.startsWith('/') || p.split('/').includes('..')) throw new FsError('EINVAL', `bad path ${p}`);
    return path.join(this.livePath, p);
  }

  static fileIdOf(st: fs.Stats): string {
    return st.ino.toString(16);
  }

  /** A live-volume op under the guard. */
  private g<T>(kind: 'read' | 'write' | 'meta' | 'sync', fn: () => Promise<T>): Promise<T> {
    return this.guard.run(kind, fn);
  }

  /**
   * Runs an op on the live volume, or on the shadows while failed over. A live op that is not
   * answered in time fails the volume over, and the op is completed from the shadows.
   */
  private async viaMode<T>(live: () => Promise<T>, shadow: (s: ShadowNamespace) => Promise<T>): Promise<T> {
    const release = this.gate.tryEnter() ?? (await this.gate.enter());
    try {
      if (this.shadow) return await shadow(this.shadow);
      try {
        return await live();
      } catch (err) {
        if (!(err instanceof LiveUnavailable) || !this.failoverNow) throw err;
        if (!(await this.failoverNow(err.why)) || !this.shadow) throw new FsError('EIO', err.message);
        return await shadow(this.shadow);
      }
    } finally {
      release();
    }
  }

  /** The live fd of a handle; handles made while failed over open theirs on first use after failback. */
  private async liveFd(h: Handle): Promise<number> {
    if (h.fd < 0) h.fd = await this.g('meta', () => openFd(h.file.livePath, h.writable ? O_RDWR : O_RDONLY));
    if (h.file.readFd < 0) h.file.readFd = await this.g('meta', () => openFd(h.file.livePath, O_RDONLY));
    return h.fd;
  }

  private liveReader(h: Handle): LiveReader {
    return { authoritative: true, pread: (buf, at, length, position) => this.guard.readInto(buf, at, length, async (own) => pread(await this.liveFd(h), own, 0, length, position)) };
  }

  getattr(p: string): Promise<fs.Stats> {
    return this.viaMode(() => this.g('meta', () => fsp.lstat(this.live(p))), (s) => s.getattr(p));
  }

  async fgetattr(fh: number): Promise<fs.Stats> {
    return this.viaMode(async () => {
      const h = this.handle(fh);
      const fd = await this.liveFd(h);
      return this.g('meta', () => fstat(fd));
    }, (s) => s.fgetattr(this.handle(fh)));
  }

  access(p: string, mode: number): Promise<void> {
    return this.viaMode(() => this.g('meta', () => fsp.access(this.live(p), mode)), (s) => s.access(p));
  }

  readdir(p: string): Promise<string[]> {
    return this.viaMode(async () => {
      const names = await this.g('meta', () => fsp.readdir(this.live(p)));
      return p === '/' ? names.filter((n) => !RESERVED_NAMES.has(n)) : names;
    }, (s) => s.readdir(p));
  }

  readlink(p: string): Promise<string> {
    return this.viaMode(() => this.g('meta', () => fsp.readlink(this.live(p))), (s) => s.readlink(p));
  }

  async statfs(p: string): Promise<fs.StatsFs> {
    return this.viaMode(() => this.g('meta', () => fsp.statfs(this.live(p))), (s) => s.statfs());
  }

  private async giveTo(livePath: string, caller: Caller | undefined): Promise<void> {
    if (caller && (caller.uid !== process.getuid?.() || caller.gid !== process.getgid?.())) {
      await fsp.lchown(livePath, caller.uid, caller.gid);
    }
  }

  async mkdir(p: string, mode: number, caller?: Caller): Promise<void> {
    return this.viaMode(async () => {
      const lp = this.live(p);
      await this.g('meta', () => fsp.mkdir(lp, { mode }));
      await this.g('meta', () => this.giveTo(lp, caller));
      this.namespaceListener?.changed(p);
    }, (s) => s.mkdir(p, mode, caller));
  }

  rmdir(p: string): Promise<void> {
    return this.viaMode(async () => {
      await this.g('meta', () => fsp.rmdir(this.live(p)));
      this.namespaceListener?.removed(p);
    }, (s) => s.rmdir(p));
  }

  async symlink(target: string, p: string, caller?: Caller): Promise<void> {
    return this.viaMode(async () => {
      const lp = this.live(p);
      await this.g('meta', () => fsp.symlink(target, lp));
      await this.g('meta', () => this.giveTo(lp, caller));
      this.namespaceListener?.changed(p);
    }, (s) => s.symlink(target, p, caller));
  }

  async mknod(p: string, mode: number, dev: number, caller?: Caller): Promise<void> {
    // Through the mode gate like every namespace change: failback's final pass must not miss it.
    return this.viaMode(async () => {
      await this.g('meta', () => this.mknodLive(p, mode, dev, caller));
      this.namespaceListener?.changed(p);
    }, async (s) => {
      if ((mode & fs.constants.S_IFMT) !== fs.constants.S_IFREG && (mode & fs.constants.S_IFMT) !== 0) throw new FsError('EROFS', 'special files cannot be made while failed over');
      await this.release(await s.create(p, mode, caller));
    });
  }

  private async mknodLive(p: string, mode: number, dev: number, caller?: Caller): Promise<void> {
    const lp = this.live(p);
    const type = mode & fs.constants.S_IFMT;
    if (type === fs.constants.S_IFREG || type === 0) {
      const fd = await openFd(lp, O_CREAT | O_EXCL | O_WRONLY, mode & 0o7777);
      await closeFd(fd);
    } else if (type === fs.constants.S_IFIFO || type === fs.constants.S_IFCHR || type === fs.constants.S_IFBLK) {
      await this.system.mknod(lp, mode, dev);
      // The kernel applied the caller's umask to `mode` already; mknod(2) takes the daemon's off too.
      await fsp.chmod(lp, mode & 0o7777);
    } else if (type === fs.constants.S_IFSOCK) {
      throw new FsError('EPERM', 'sockets cannot be created on this volume');
    }
    await this.giveTo(lp, caller);
  }

  chmod(p: string, mode: number): Promise<void> {
    return this.viaMode(async () => {
      await this.g('meta', () => fsp.chmod(this.live(p), mode));
      this.namespaceListener?.changed(p);
    }, (s) => s.chmod(p, mode));
  }

  chown(p: string, uid: number, gid: number): Promise<void> {
    return this.viaMode(async () => {
      // (uid_t)-1 means "leave unchanged"; lchown understands -1 but FUSE hands us 0xffffffff.
      await this.g('meta', () => fsp.lchown(this.live(p), uid === 0xffffffff ? -1 : uid, gid === 0xffffffff ? -1 : gid));
      this.namespaceListener?.changed(p);
    }, (s) => s.chown(p, uid, gid));
  }

  async utimens(p: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    return this.viaMode(async () => {
      const lp = this.live(p);
      await this.g('meta', async () => {
        const st = atime === null || mtime === null ? await fsp.lstat(lp) : undefined;
        await fsp.lutimes(lp, atime ?? (st as fs.Stats).atimeMs / 1000, mtime ?? (st as fs.Stats).mtimeMs / 1000);
      });
      await this.g('meta', () => this.refreshRecordByPath(lp));
      this.namespaceListener?.changed(p);
    }, (s) => s.utimens(p, atime, mtime));
  }

  async link(existing: string, p: string): Promise<void> {
    if (this.shadow) throw new FsError('EROFS', 'hard links cannot be made while failed over');
    await this.g('meta', () => fsp.link(this.live(existing), this.live(p)));
    this.namespaceListener?.changed(p);
    this.namespaceListener?.changed(existing);
  }

  /** A file whose last link goes away takes its copies with it (now, or at its last close). */
  private async forgetIfLastLink(st: fs.Stats | undefined): Promise<void> {
    if (!st || !st.isFile() || st.nlink > 1) return;
    const fileId = Volume.fileIdOf(st);
    const open = this.open.file(fileId);
    if (open) {
      open.unlinked = true;
      return;
    }
    await this.dropFile(fileId);
  }

  /** Forget a file's records and remove its copies (its last link is gone). */
  dropFileCopies(fileId: string): Promise<void> {
    return this.dropFile(fileId);
  }

  private dropFile(fileId: string): Promise<void> {
    // map.dropFile drops the records before its first await: the removal is counted on the tiers
    // in the same step (see removeFileCopies).
    return this.shadows.removeFileCopies(fileId, this.map.dropFile(fileId));
  }

  private async lstatOrUndefined(lp: string): Promise<fs.Stats | undefined> {
    try {
      return await fsp.lstat(lp);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async unlink(p: string): Promise<void> {
    return this.viaMode(async () => {
      const lp = this.live(p);
      const st = await this.g('meta', () => fsp.lstat(lp));
      await this.g('meta', () => fsp.unlink(lp));
      this.namespaceListener?.removed(p);
      await this.forgetIfLastLink(st);
    }, (s) => s.unlink(p));
  }

  async rename(from: string, to: string): Promise<void> {
    return this.viaMode(async () => {
      const lto = this.live(to);
      const replaced = await this.g('meta', () => this.lstatOrUndefined(lto));
      const moved = await this.g('meta', () => fsp.lstat(this.live(from)));
      await this.g('meta', () => fsp.rename(this.live(from), lto));
      this.open.moved(this.live(from), lto);
      this.onRenamed(this.live(from), lto);
      this.namespaceListener?.renamed(from, to);
      // rename(a, b) where both are links to one inode does nothing: keep the copies then.
      if (replaced && replaced.ino !== moved.ino) await this.forgetIfLastLink(replaced);
    }, (s) => s.rename(from, to));
  }

  // --- files ---

  private handle(fh: number): Handle {
    const h = this.open.handle(fh);
    if (!h) throw new FsError('EBADF');
    return h;
  }

  async openFile(p: string, flags: number): Promise<number> {
    const fh = await this.viaMode(async () => {
      const lp = this.live(p);
      const fd = await this.g('meta', () => openFd(lp, flags & ~STRIPPED_FLAGS));
      try {
        return (await this.g('meta', () => this.register(lp, fd, flags))).fh;
      } catch (err) {
        await this.g('meta', () => closeFd(fd)).catch(() => undefined);
        throw err;
      }
    }, (s) => s.openFile(p, flags));
    const h = this.open.handle(fh);
    if (!this.shadow && h && flags & O_TRUNC && h.writable) await this.ftruncate(fh, 0);
    return fh;
  }

  async create(p: string, mode: number, caller?: Caller): Promise<number> {
    return this.viaMode(async () => {
      const lp = this.live(p);
      const fd = await this.g('meta', () => openFd(lp, O_CREAT | O_RDWR, mode));
      try {
        await this.g('meta', () => this.giveTo(lp, caller));
        const h = await this.g('meta', () => this.register(lp, fd, O_RDWR));
        this.namespaceListener?.changed(p);
        return h.fh;
      } catch (err) {
        await this.g('meta', () => closeFd(fd)).catch(() => undefined);
        throw err;
      }
    }, (s) => s.create(p, mode, caller));
  }

  private async register(lp: string, fd: number, flags: number): Promise<Handle> {
    const st = await fstat(fd);
    const access = flags & ACCMODE;
    const h = await this.fileState(lp, st, fd, (file) => {
      const handle: Handle = { fh: fd, fd, file, writable: access === O_WRONLY || access === O_RDWR };
      this.open.addHandle(handle);
      return handle;
    });
    this.fastPath.onHandleOpened(h.fh, h.file);
    this.nativeWrites.onHandleOpened(h);
    return h;
  }

  /**
   * The one OpenFile of a live file, created on first use, and `claim`ed (a handle or a pin added)
   * in the same synchronous step that found or made it. Claimed any later, after an await, the
   * last release could close it in between: the caller would then hold an OpenFile no longer
   * registered, whose readFd is closed (its number free for another file) and whose size no write
   * updates, beside a second OpenFile for the same inode with a write lock of its own. A copy
   * taken through it could be short or of another file's bytes, and still be published fresh.
   * `st` is an fstat of `statFd`, an fd of the file; `readFd`, if given, becomes the file's
   * background read fd (or is closed when it is open already).
   */
  private async fileState<T>(lp: string, st: fs.Stats, statFd: number, claim: (file: OpenFile) => T, readFd?: number): Promise<T> {
    const fileId = Volume.fileIdOf(st);
    const existing = this.open.file(fileId);
    if (existing) {
      existing.livePath = lp;
      const claimed = claim(existing);
      if (readFd !== undefined) await closeFd(readFd).catch(() => undefined);
      return claimed;
    }
    await this.checkOutOfBand(fileId, st, statFd);
    const fd = readFd ?? (await openFd(lp, O_RDONLY));
    const raced = this.open.file(fileId);
    if (raced) {
      raced.livePath = lp;
      const claimed = claim(raced);
      await closeFd(fd).catch(() => undefined);
      return claimed;
    }
    const file: OpenFile = {
      fileId, livePath: lp, sizeBytes: st.size, writeLock: new Mutex(), readFd: fd,
      handles: 0, modified: false, nativeWritable: false, unlinked: false, fhs: new Set(),
    };
    this.open.addFile(file);
    return claim(file);
  }

  /** Copies of a file changed behind the mount's back (size or mtime moved) are stale. */
  private async checkOutOfBand(fileId: string, opened: fs.Stats, statFd: number): Promise<void> {
    const same = (st: fs.Stats): boolean => {
      const rec = this.map.fileRecord(fileId);
      return !!rec && rec.sizeBytes === st.size && rec.mtimeMs === st.mtimeMs;
    };
    if (same(opened)) return;
    // The stat taken at open may predate the mount's own last write: a handle that wrote, closed
    // while this open waited, stored the record of the file as it left it (see closeFile). The
    // file as it is now is what the record must match.
    const st = await fstat(statFd);
    // Another open registered the file meanwhile, after a check of its own: its writes since are the mount's.
    if (same(st) || this.open.file(fileId)) return;
    const hasCopies = this.map.extents(fileId).size > 0;
    if (hasCopies) {
      this.log.info('volume', `file ${fileId} changed outside the mount: its shadow copies are dropped`);
      await this.invalidate(fileId);
    }
    await this.map.setFileRecord(fileId, { sizeBytes: st.size, mtimeMs: st.mtimeMs });
  }

  /** Every copy of the file becomes stale; their bytes are removed in the background. */
  async invalidate(fileId: string): Promise<void> {
    this.fastPath.unmapAll(fileId);
    for (const { index, copy } of await this.map.invalidateFile(fileId)) {
      // A coverage copy of the new generation may have been published while the batch was written.
      if (this.map.removeThisCopy(fileId, index, copy)) this.shadows.discard(fileId, index, copy.tierId);
    }
  }

  /** Called by the watcher for a path changed in the live directory. */
  async liveChanged(lp: string): Promise<void> {
    // Failed over (or resyncing), the copies are the mount's only home: a change on the live volume
    // is then a conflict for resync to keep aside, or resync's own write, never a reason to drop them.
    if (this.shadow) return;
    const st = await this.lstatOrUndefined(lp);
    if (!st || !st.isFile() || this.shadow) return;
    const fileId = Volume.fileIdOf(st);
    const open = this.open.file(fileId);
    // Our own writes change the file too; while we have it open, the mount's writes are the truth.
    if (open && (Volume.recordOutdated(open) || open.writeLock.locked)) return;
    const rec = this.map.fileRecord(fileId);
    if (rec && rec.sizeBytes === st.size && rec.mtimeMs === st.mtimeMs) return;
    if (this.map.extents(fileId).size > 0) {
      this.log.info('volume', `${lp} changed outside the mount: its shadow copies are dropped`);
      await this.invalidate(fileId);
      // Unless the mount wrote meanwhile: then its own size (a write may have grown it) is the truth.
      if (open && this.open.file(fileId) === open && !(Volume.recordOutdated(open) || open.writeLock.locked)) open.sizeBytes = st.size;
    }
    await this.map.setFileRecord(fileId, { sizeBytes: st.size, mtimeMs: st.mtimeMs });
  }

  private async refreshRecordByPath(lp: string): Promise<void> {
    const st = await this.lstatOrUndefined(lp);
    if (st?.isFile()) {
      const fileId = Volume.fileIdOf(st);
      if (this.map.fileRecord(fileId) || this.map.extents(fileId).size > 0) {
        await this.map.setFileRecord(fileId, { sizeBytes: st.size, mtimeMs: st.mtimeMs });
      }
    }
  }

  /** When the application last had a read or write served (background copies yield to it). */
  lastForegroundMs = 0;
  /** Files whose copies this mount dropped because the machine had restarted with them marked (src/volume/power-loss.ts). */
  filesDroppedAfterRestart = 0;

  /** Set when a policy learns from whole requests (the prediction engine's volume series). */
  onRequest: ((op: 'R' | 'W', sizeBytes: number, latencyUs: number) => void) | undefined;

  private reported<T extends number>(op: 'R' | 'W', started: number, p: Promise<T>): Promise<T> {
    const report = this.onRequest;
    if (!report) return p;
    return p.then((n) => {
      report(op, n, (performance.now() - started) * 1000);
      return n;
    });
  }

  read(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    this.lastForegroundMs = Date.now();
    return this.reported('R', performance.now(), this.readRouted(fh, buf, length, position));
  }

  private readRouted(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    return this.viaMode(async () => {
      const h = this.handle(fh);
      const n = await this.io.read(h.file, this.liveReader(h), buf, length, position);
      // What was read from the live file can be read natively from it next time.
      if (this.fastPath.mapsLiveFiles && length > 0) {
        const E = this.io.extentSizeBytes;
        this.fastPath.remap(h.file, Math.floor(position / E), Math.floor((position + length - 1) / E));
      }
      return n;
    }, (s) => {
      const h = this.handle(fh);
      return this.io.read(h.file, s.liveReader(h.file), buf, length, position);
    });
  }

  write(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    this.lastForegroundMs = Date.now();
    return this.reported('W', performance.now(), this.writeRouted(fh, buf, length, position));
  }

  private writeRouted(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    return this.viaMode(() => this.writeLive(fh, buf, length, position), async (s) => {
      const h = this.handle(fh);
      const n = await s.write(h, buf, length, position);
      this.onWrite(h.file, Math.floor(position / this.io.extentSizeBytes), Math.floor((position + Math.max(length, 1) - 1) / this.io.extentSizeBytes));
      return n;
    });
  }

  private async writeLive(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh);
    await this.liveFd(h);
    if (!h.writable) throw new FsError('EBADF');
    const file = h.file;
    const E = this.io.extentSizeBytes;
    const streaming = this.sequentialWrites.observe(fh, position, length, () => this.nativeWrites.nativeWritesOf(fh));
    let range = { first: 0, last: -1 };
    let remapTo = -1;
    const n = await file.writeLock.run(async () => {
      // Growing the file also changes the old last extent (it now ends in zeros, not at EOF).
      const oldLast = Math.max(0, Math.ceil(file.sizeBytes / E) - 1);
      range = { first: Math.min(Math.floor(position / E), oldLast), last: Math.floor((position + Math.max(length, 1) - 1) / E) };
      // A streaming writer's next extents lose their cache copies too, so the grant below can
      // take them. Before the write: if a mapped copy cannot be let go, nothing has been written.
      const ahead = streaming ? this.nativeWrites.aheadOf(file, range.last) : undefined;
      remapTo = ahead?.last ?? range.last;
      this.fastPath.unmap(file.fileId, range.first, range.last);
      let around = ahead !== undefined;
      try {
        if (ahead) this.fastPath.unmap(file.fileId, ahead.first, ahead.last);
      } catch {
        // A copy ahead is held by a native read stuck on its tier: this write does not need it
        // gone, only write-around does. Skip that; the remap below maps back what was let go.
        around = false;
      }
      if (ahead && around) await this.io.writeAround(file, ahead.first, ahead.last);
      const sizeBefore = file.sizeBytes;
      const written = await this.io.write(file, h.fd, buf, length, position, streaming);
      this.nativeWrites.afterWrite(file, range.first, range.last, file.sizeBytes > sizeBefore);
      return written;
    });
    this.fastPath.remap(file, range.first, remapTo);
    this.onWrite(file, range.first, range.last);
    return n;
  }

  /** Set by the assembly: told after every write (coverage re-copies what lost its copy). */
  onWrite: (file: OpenFile, first: number, last: number) => void = () => undefined;
  /** Set by the assembly: a rename through the live mount moved `from` to `to` (live paths). */
  onRenamed: (from: string, to: string) => void = () => undefined;

  /** Opens a live file for background work (no FUSE handle); undefined if it is gone. */
  async pinFile(livePath: string): Promise<OpenFile | undefined> {
    // Background work reads the live file: not while failed over.
    if (this.shadow) return undefined;
    let fd: number;
    try {
      fd = await openFd(livePath, O_RDONLY);
    } catch {
      return undefined;
    }
    try {
      const st = await fstat(fd);
      if (!st.isFile()) {
        await closeFd(fd);
        return undefined;
      }
      return await this.fileState(livePath, st, fd, (file) => {
        file.handles++;
        return file;
      }, fd);
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  unpinFile(file: OpenFile): void {
    file.handles--;
    if (file.handles === 0) this.closeInBackground(file);
  }

  /** Closes let go of by background work (copies, coverage, pins), not by a release: close() waits for them. */
  private readonly backgroundCloses = new Set<Promise<void>>();

  private closeInBackground(file: OpenFile): void {
    const closing = this.closeFile(file).catch((err: Error) => this.log.warn('volume', `${file.livePath}: closing after background work failed: ${err.message}`));
    this.backgroundCloses.add(closing);
    void closing.finally(() => this.backgroundCloses.delete(closing));
  }

  async ftruncate(fh: number, sizeBytes: number): Promise<void> {
    return this.viaMode(() => this.ftruncateLive(fh, sizeBytes), (s) => s.ftruncate(this.handle(fh), sizeBytes));
  }

  private async ftruncateLive(fh: number, sizeBytes: number): Promise<void> {
    const h = this.handle(fh);
    await this.liveFd(h);
    const file = h.file;
    await file.writeLock.run(async () => {
      this.fastPath.unmapAll(file.fileId);
      this.nativeWrites.beforeTruncate(file, sizeBytes);
      try {
        await this.io.truncate(file, h.fd, sizeBytes);
      } finally {
        this.nativeWrites.afterTruncate(file);
      }
    });
    const edge = Math.max(0, Math.ceil(file.sizeBytes / this.io.extentSizeBytes) - 1);
    this.fastPath.remap(file, edge, edge);
  }

  /**
   * fallocate(2) on an open file, applied to the live file. Allocating changes no byte; punching a
   * hole, zeroing a range or growing the file does, so those extents' copies go stale first.
   * Collapsing or inserting a range (shifting every byte after it) is not supported (EOPNOTSUPP),
   * nor is any of it while failed over.
   */
  async fallocate(fh: number, mode: number, offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.viaMode(() => this.fallocateLive(fh, mode, offsetBytes, lengthBytes), async () => {
      throw new FsError('EOPNOTSUPP', 'fallocate while failed over');
    });
  }

  private async fallocateLive(fh: number, mode: number, offsetBytes: number, lengthBytes: number): Promise<void> {
    const h = this.handle(fh);
    await this.liveFd(h);
    if (!h.writable) throw new FsError('EBADF');
    if ((mode & ~FALLOCATE_SUPPORTED) !== 0) throw new FsError('EOPNOTSUPP', `fallocate mode 0x${mode.toString(16)}`);
    if (offsetBytes < 0 || lengthBytes <= 0) throw new FsError('EINVAL');
    const file = h.file;
    const E = this.io.extentSizeBytes;
    const end = offsetBytes + lengthBytes;
    let range: { first: number; last: number } | undefined;
    await file.writeLock.run(async () => {
      const newSize = mode & FALLOC_FL_KEEP_SIZE ? file.sizeBytes : Math.max(file.sizeBytes, end);
      const zeroes = (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) !== 0 && offsetBytes < file.sizeBytes;
      const apply = (): Promise<void> => this.system.fallocateFd(h.fd, mode, offsetBytes, lengthBytes);
      const grows = newSize > file.sizeBytes;
      if (!zeroes && !grows) {
        // Blocks allocated, not one byte changed: no copy is affected (the mtime may change).
        await this.g('write', apply);
        file.modified = true;
        return;
      }
      // Zeroed bytes change their extents; growing changes only the old last one (it now ends in
      // zeros, not at the end of the file): the extents past it have no copies.
      const oldLast = Math.max(0, Math.ceil(file.sizeBytes / E) - 1);
      const zeroed = zeroes ? { first: Math.floor(offsetBytes / E), last: Math.floor((Math.min(end, file.sizeBytes) - 1) / E) } : undefined;
      range = grows
        ? { first: Math.min(zeroed?.first ?? oldLast, oldLast), last: oldLast }
        : (zeroed as { first: number; last: number });
      this.fastPath.unmap(file.fileId, range.first, range.last);
      await this.io.changeUnpatched(file, range.first, range.last, newSize, apply, zeroes ? { from: offsetBytes, to: end } : undefined);
      this.nativeWrites.afterTruncate(file);
    });
    if (range) {
      this.fastPath.remap(file, range.first, range.last);
      this.onWrite(file, range.first, range.last);
    }
  }

  async truncate(p: string, sizeBytes: number): Promise<void> {
    const fh = await this.openFile(p, O_WRONLY);
    try {
      await this.ftruncate(fh, sizeBytes);
    } finally {
      await this.release(fh);
    }
  }

  async fsync(fh: number, dataOnly: boolean): Promise<void> {
    return this.viaMode(async () => {
      const h = this.handle(fh);
      const fd = await this.liveFd(h);
      const fileId = h.file.fileId;
      const written = this.map.writtenCount(fileId);
      await this.g('sync', () => fsyncFd(fd, dataOnly));
      // The live file is durable now, which is what the fsync promises. A tier that fails to sync
      // the file's copies does not fail it: those copies stay marked written (below), so a power
      // loss drops them at the next mount, and the live file has the bytes.
      const unsynced = (await Promise.all(this.tiers.all().map((t) => t.tier.syncFile(fileId).then(() => '', (err: Error) => `${t.tier.spec.name} (${err.message})`)))).filter((x) => x !== '');
      if (unsynced.length > 0) this.log.warn('volume', `fsync of ${h.file.livePath}: copies on ${unsynced.join(', ')} could not be synced; they are dropped if the machine loses power first`);
      await this.g('meta', () => this.storeRecord(h.file));
      await this.map.sync();
      // A sync point for this file (src/volume/power-loss.ts), unless it was written meanwhile or
      // some copies are not durable.
      if (written !== undefined && unsynced.length === 0) await this.map.clearWritten(new Map([[fileId, written]]));
    }, (s) => s.fsync(this.handle(fh)));
  }

  async flush(fh: number): Promise<void> {
    this.handle(fh);
  }

  /** Written through the mount since its record was stored, or writable natively (behind JS's back). */
  private static recordOutdated(file: OpenFile): boolean {
    return file.modified || file.nativeWritable;
  }

  private async storeRecord(file: OpenFile): Promise<void> {
    if (!Volume.recordOutdated(file)) return;
    // Cleared before the fstat: a write during it sets the flag again, so its change is stored later.
    file.modified = false;
    const store = (file.recordStores = (file.recordStores ?? 0) + 1);
    const storing = (async () => {
      let st: fs.Stats;
      try {
        st = await fstat(file.readFd);
      } catch (err) {
        file.modified = true;
        throw err;
      }
      if (store !== file.recordStores) return;
      await this.map.setFileRecord(file.fileId, { sizeBytes: st.size, mtimeMs: st.mtimeMs });
      this.namespaceListener?.changed(file.livePath.slice(this.livePath.length) || '/');
    })();
    file.lastRecordStore = storing;
    try {
      await storing;
    } finally {
      if (file.lastRecordStore === storing) file.lastRecordStore = undefined;
    }
  }

  async release(fh: number): Promise<void> {
    const h = this.handle(fh);
    const last = this.open.removeHandle(fh);
    this.sequentialWrites.forget(fh);
    // A close on a hung live volume would hang too: while failed over it happens in the background.
    if (h.fd >= 0) {
      const closing = this.guard.run('meta', () => closeFd(h.fd), { force: true });
      if (this.shadow) closing.catch(() => undefined);
      else await closing;
    }
    if (last) await this.closeFile(last);
  }

  private async closeFile(file: OpenFile): Promise<void> {
    if (file.handles > 0 || this.open.file(file.fileId) !== file) return;
    try {
      // Stored while the file is still registered: an open meanwhile finds this OpenFile. Were it
      // gone, the open would compare the live file with the old record and drop every copy as
      // changed outside the mount.
      if (!file.unlinked && !this.shadow && file.readFd >= 0) await this.g('meta', () => this.storeRecord(file));
    } finally {
      // A later store (another close's, an fsync's) may still be in flight, this one superseded:
      // until it lands the record is older than the file, and an open that found no OpenFile would
      // drop every copy as changed outside the mount. Bounded: on a hung live volume its fstat may
      // never return, and the release must still be answered.
      if (file.lastRecordStore) await settlesWithin(file.lastRecordStore, LATER_RECORD_WAIT_MS);
      // Reclaimed meanwhile, its next close stores it. The check and the removal are one step, so
      // two closes racing here forget it (and close its fd) once.
      if (file.handles === 0 && this.open.file(file.fileId) === file) await this.forgetFile(file);
    }
  }

  private async forgetFile(file: OpenFile): Promise<void> {
    this.open.removeFile(file.fileId);
    this.dropServingState(file);
    try {
      if (file.unlinked) await this.dropFile(file.fileId);
    } finally {
      if (file.readFd >= 0) {
        const fd = file.readFd;
        this.guard.run('meta', () => closeFd(fd), { force: true }).catch(() => undefined);
      }
    }
  }

  /** What serves the file's reads and writes besides JS (mapped extents, native writes, direct reads) lets go of it. */
  private dropServingState(file: OpenFile): void {
    this.fastPath.onFileClosed(file.fileId);
    this.nativeWrites.onFileClosed(file.fileId);
    this.directLiveReads.forget(file);
  }

  /**
   * At failback, before the live volume serves again. Resync gives a file made while failed over
   * (or rewritten after a conflict) a new live inode, but a handle may still hold it open under
   * its old id. Left so, that handle would write the new inode through one OpenFile while another
   * open of the path gets a second one: two write locks, and copies under the old id that writes
   * through the second never update. Or, opened before the failover, it would write the conflict
   * copy set aside. So each such file takes its new id (`currentId`: the id its path has now),
   * its handles reopen the path when next used, and the old id's copies go.
   */
  async rehomeReplacedFiles(currentId: (volumePath: string) => string | undefined): Promise<void> {
    for (const file of [...this.open.allFiles()]) {
      const id = currentId(file.livePath.slice(this.livePath.length) || '/');
      if (!id || id === file.fileId || this.open.file(id)) continue;
      // Opened first: if the live volume fails it now, nothing has changed yet (failback fails).
      const readFd = await this.guard.run('meta', () => openFd(file.livePath, O_RDONLY), { force: true });
      const sizeBytes = await fstat(readFd).then((st) => st.size, async (err: unknown) => {
        await closeFd(readFd).catch(() => undefined);
        throw err;
      });
      const oldId = file.fileId;
      this.fastPath.unmapAll(oldId);
      this.dropServingState(file);
      for (const fh of file.fhs) {
        const h = this.open.handle(fh);
        if (!h || h.fd < 0) continue;
        const fd = h.fd;
        h.fd = -1;
        await closeFd(fd).catch(() => undefined);
      }
      const oldReadFd = file.readFd;
      this.open.removeFile(oldId);
      file.fileId = id;
      file.readFd = readFd;
      file.sizeBytes = sizeBytes;
      file.modified = false;
      file.unlinked = false;
      this.open.addFile(file);
      if (oldReadFd >= 0) await closeFd(oldReadFd).catch(() => undefined);
      await this.dropFile(oldId);
    }
  }

  // --- extended attributes (kept on the live file) ---

  async setxattr(p: string, name: string, value: Buffer, flags: number): Promise<void> {
    if (this.shadow) throw new FsError('EROFS', 'extended attributes cannot be changed while failed over');
    return this.g('meta', () => this.setxattrLive(p, name, value, flags));
  }

  private async setxattrLive(p: string, name: string, value: Buffer, flags: number): Promise<void> {
    const lp = this.live(p);
    if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
      const exists = (await this.getxattrLive(p, name).then(() => true, (err) => {
        if (errorCode(err) === 'ENODATA') return false;
        throw err;
      }));
      if (flags & XATTR_CREATE && exists) throw new FsError('EEXIST');
      if (flags & XATTR_REPLACE && !exists) throw new FsError('ENODATA');
    }
    await this.xattrCall(() => xattr.setAttribute(lp, name, value));
  }

  async getxattr(p: string, name: string): Promise<Buffer> {
    // Not mirrored: while failed over a file has no extended attributes.
    if (this.shadow) {
      await this.shadow.access(p);
      throw new FsError('ENODATA');
    }
    return this.g('meta', () => this.getxattrLive(p, name));
  }

  private async getxattrLive(p: string, name: string): Promise<Buffer> {
    const lp = this.live(p);
    await fsp.lstat(lp);
    const v = await this.xattrCall(() => xattr.getAttribute(lp, name));
    if (v === null) throw new FsError('ENODATA');
    return v;
  }

  async listxattr(p: string): Promise<string[]> {
    if (this.shadow) {
      await this.shadow.access(p);
      return [];
    }
    return this.g('meta', () => this.listxattrLive(p));
  }

  private async listxattrLive(p: string): Promise<string[]> {
    const lp = this.live(p);
    await fsp.lstat(lp);
    return this.xattrCall(() => xattr.listAttributes(lp));
  }

  async removexattr(p: string, name: string): Promise<void> {
    if (this.shadow) throw new FsError('EROFS', 'extended attributes cannot be changed while failed over');
    return this.g('meta', () => this.removexattrLive(p, name));
  }

  private async removexattrLive(p: string, name: string): Promise<void> {
    const lp = this.live(p);
    await this.getxattrLive(p, name);
    await this.xattrCall(() => xattr.removeAttribute(lp, name));
  }

  /** The xattr binding reports errors as text; turn them back into errno codes. */
  private async xattrCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (errorCode(err) && /^E[A-Z]+$/.test(errorCode(err) as string)) throw err;
      const msg = String((err as Error).message ?? err);
      if (/No data|ENODATA|not found/i.test(msg)) throw new FsError('ENODATA');
      if (/No such file|ENOENT/i.test(msg)) throw new FsError('ENOENT');
      if (/not supported|ENOTSUP|EOPNOTSUPP/i.test(msg)) throw new FsError('ENOTSUP');
      if (/Permission denied|EACCES/i.test(msg)) throw new FsError('EACCES');
      if (/Operation not permitted|EPERM/i.test(msg)) throw new FsError('EPERM');
      if (/too large|E2BIG|ERANGE/i.test(msg)) throw new FsError('E2BIG');
      if (/No space|ENOSPC/i.test(msg)) throw new FsError('ENOSPC');
      throw new FsError('EIO', msg);
    }
  }

  /** Flush metadata and wait for background copies; used at unmount. */
  async close(): Promise<void> {
    await this.shadows.close();
    // The copies that ended just now let go of their files: those store their records first.
    while (this.backgroundCloses.size > 0) await Promise.all([...this.backgroundCloses]);
    // A volume in live mode (the watchdog off, or no coverage tier to fail over to) may be closed
    // while its live volume hangs: each record waits CLOSE_RECORD_MS at most, and once one was not
    // answered the rest are not asked.
    const outdated = [...this.open.allFiles()].filter(Volume.recordOutdated);
    for (const [i, file] of outdated.entries()) {
      const stored = await this.guard.run('meta', () => this.storeRecord(file), { force: true, background: true, deadlineMs: CLOSE_RECORD_MS }).then(() => true, (err: unknown) => !(err instanceof LiveUnavailable));
      if (!stored) {
        this.log.warn('volume', `the live volume did not answer within ${CLOSE_RECORD_MS / 1000} s: ${outdated.length - i} open file(s) closed without their record; their copies are dropped at the next mount`);
        break;
      }
    }
    await this.map.close();
    await this.tiers.closeAll();
  }
}
