/**
 * The volume: the namespace of the live directory (directories, attributes, links, xattrs) and
 * the open handles, with file data routed through the I/O redirector. FUSE-agnostic: paths are
 * volume-relative ("/a/b"), results are values, failures are errors with an errno `code`.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
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
import { FastPath } from '../io/fast-path';

const run = promisify(execFile);

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
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

export class Volume {
  readonly open = new OpenFiles();
  readonly fastPath: FastPath;

  constructor(
    readonly livePath: string,
    readonly map: ExtentMap,
    readonly tiers: TierSet,
    readonly io: IoRedirector,
    readonly shadows: ShadowManager,
    private readonly log: Logger,
  ) {
    this.fastPath = new FastPath(map, tiers, this.open, io.extentSizeBytes);
    shadows.onFileReleased = (file) => void this.closeFile(file);
    shadows.lastForegroundMs = () => this.lastForegroundMs;
    shadows.beforeRemove = (fileId, index) => this.fastPath.unmap(fileId, index, index);
    shadows.onPublished = (file, index) => this.fastPath.remap(file, index, index);
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

  getattr(p: string): Promise<fs.Stats> {
    return fsp.lstat(this.live(p));
  }

  async fgetattr(fh: number): Promise<fs.Stats> {
    return fstat(this.handle(fh).fd);
  }

  access(p: string, mode: number): Promise<void> {
    return fsp.access(this.live(p), mode);
  }

  readdir(p: string): Promise<string[]> {
    return fsp.readdir(this.live(p));
  }

  readlink(p: string): Promise<string> {
    return fsp.readlink(this.live(p));
  }

  async statfs(p: string): Promise<fs.StatsFs> {
    return fsp.statfs(this.live(p));
  }

  private async giveTo(livePath: string, caller: Caller | undefined): Promise<void> {
    if (caller && (caller.uid !== process.getuid?.() || caller.gid !== process.getgid?.())) {
      await fsp.lchown(livePath, caller.uid, caller.gid);
    }
  }

  async mkdir(p: string, mode: number, caller?: Caller): Promise<void> {
    const lp = this.live(p);
    await fsp.mkdir(lp, { mode });
    await this.giveTo(lp, caller);
  }

  rmdir(p: string): Promise<void> {
    return fsp.rmdir(this.live(p));
  }

  async symlink(target: string, p: string, caller?: Caller): Promise<void> {
    const lp = this.live(p);
    await fsp.symlink(target, lp);
    await this.giveTo(lp, caller);
  }

  async mknod(p: string, mode: number, dev: number, caller?: Caller): Promise<void> {
    const lp = this.live(p);
    const type = mode & fs.constants.S_IFMT;
    const perm = (mode & 0o7777).toString(8);
    if (type === fs.constants.S_IFREG || type === 0) {
      const fd = await openFd(lp, O_CREAT | O_EXCL | O_WRONLY, mode & 0o7777);
      await closeFd(fd);
    } else if (type === fs.constants.S_IFIFO) {
      await this.runNodeTool(lp, ['mkfifo', '-m', perm, lp]);
    } else if (type === fs.constants.S_IFCHR || type === fs.constants.S_IFBLK) {
      const major = (dev >> 8) & 0xfff;
      const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
      await this.runNodeTool(lp, ['mknod', '-m', perm, lp, type === fs.constants.S_IFCHR ? 'c' : 'b', String(major), String(minor)]);
    } else if (type === fs.constants.S_IFSOCK) {
      throw new FsError('EPERM', 'sockets cannot be created on this volume');
    }
    await this.giveTo(lp, caller);
  }

  /** Node has no mkfifo/mknod: coreutils do it. Errors map back to errno. */
  private async runNodeTool(lp: string, argv: string[]): Promise<void> {
    try {
      await fsp.lstat(lp);
      throw new FsError('EEXIST');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
    try {
      await run(argv[0], argv.slice(1));
    } catch (err) {
      const msg = String((err as { stderr?: string }).stderr ?? '');
      throw new FsError(/Permission denied/.test(msg) ? 'EACCES' : /Operation not permitted/.test(msg) ? 'EPERM' : 'EIO', msg.trim());
    }
  }

  chmod(p: string, mode: number): Promise<void> {
    return fsp.chmod(this.live(p), mode);
  }

  chown(p: string, uid: number, gid: number): Promise<void> {
    // (uid_t)-1 means "leave unchanged"; lchown understands -1 but FUSE hands us 0xffffffff.
    return fsp.lchown(this.live(p), uid === 0xffffffff ? -1 : uid, gid === 0xffffffff ? -1 : gid);
  }

  async utimens(p: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    const lp = this.live(p);
    const st = atime === null || mtime === null ? await fsp.lstat(lp) : undefined;
    await fsp.lutimes(lp, atime ?? (st as fs.Stats).atimeMs / 1000, mtime ?? (st as fs.Stats).mtimeMs / 1000);
    await this.refreshRecordByPath(lp);
  }

  async link(existing: string, p: string): Promise<void> {
    await fsp.link(this.live(existing), this.live(p));
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

  private async dropFile(fileId: string): Promise<void> {
    await this.map.dropFile(fileId);
    await Promise.all(this.tiers.all().map((t) => t.tier.removeFile(fileId).catch((err: Error) => {
      this.log.warn('volume', `removing copies of ${fileId} from ${t.tier.spec.name}: ${err.message}`);
    })));
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
    const lp = this.live(p);
    const st = await fsp.lstat(lp);
    await fsp.unlink(lp);
    await this.forgetIfLastLink(st);
  }

  async rename(from: string, to: string): Promise<void> {
    const lto = this.live(to);
    const replaced = await this.lstatOrUndefined(lto);
    const moved = await fsp.lstat(this.live(from));
    await fsp.rename(this.live(from), lto);
    // rename(a, b) where both are links to one inode does nothing: keep the copies then.
    if (replaced && replaced.ino !== moved.ino) await this.forgetIfLastLink(replaced);
  }

  // --- files ---

  private handle(fh: number): Handle {
    const h = this.open.handle(fh);
    if (!h) throw new FsError('EBADF');
    return h;
  }

  async openFile(p: string, flags: number): Promise<number> {
    const lp = this.live(p);
    const fd = await openFd(lp, flags & ~STRIPPED_FLAGS);
    try {
      const h = await this.register(lp, fd, flags);
      if (flags & O_TRUNC && h.writable) await this.ftruncate(h.fh, 0);
      return h.fh;
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  async create(p: string, mode: number, caller?: Caller): Promise<number> {
    const lp = this.live(p);
    const fd = await openFd(lp, O_CREAT | O_RDWR, mode);
    try {
      await this.giveTo(lp, caller);
      return (await this.register(lp, fd, O_RDWR)).fh;
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  private async register(lp: string, fd: number, flags: number): Promise<Handle> {
    const st = await fstat(fd);
    const file = await this.fileState(lp, st);
    const access = flags & ACCMODE;
    const h: Handle = { fh: fd, fd, file, writable: access === O_WRONLY || access === O_RDWR };
    this.open.addHandle(h);
    this.fastPath.onHandleOpened(h.fh, file);
    return h;
  }

  /**
   * The one OpenFile of a live file, created on first use. `readFd`, if given, becomes its
   * background read fd (or is closed when the file is already open). Two OpenFiles for one inode
   * would mean two write locks and two write epochs: a copy could then be published stale.
   */
  private async fileState(lp: string, st: fs.Stats, readFd?: number): Promise<OpenFile> {
    const fileId = Volume.fileIdOf(st);
    const existing = this.open.file(fileId);
    if (existing) {
      if (readFd !== undefined) await closeFd(readFd);
      existing.livePath = lp;
      return existing;
    }
    await this.checkOutOfBand(fileId, st);
    const fd = readFd ?? (await openFd(lp, O_RDONLY));
    const raced = this.open.file(fileId);
    if (raced) {
      await closeFd(fd);
      raced.livePath = lp;
      return raced;
    }
    const file: OpenFile = {
      fileId, livePath: lp, sizeBytes: st.size, writeLock: new Mutex(), readFd: fd,
      handles: 0, modified: false, unlinked: false, fhs: new Set(),
    };
    this.open.addFile(file);
    return file;
  }

  /** Copies of a file changed behind the mount's back (size or mtime moved) are stale. */
  private async checkOutOfBand(fileId: string, st: fs.Stats): Promise<void> {
    const rec = this.map.fileRecord(fileId);
    const hasCopies = this.map.extents(fileId).size > 0;
    if (rec && rec.sizeBytes === st.size && rec.mtimeMs === st.mtimeMs) return;
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
      if (this.map.removeCopy(fileId, index, copy.tierId)) this.shadows.discard(fileId, index, copy.tierId);
    }
  }

  /** Called by the watcher for a path changed in the live directory. */
  async liveChanged(lp: string): Promise<void> {
    const st = await this.lstatOrUndefined(lp);
    if (!st || !st.isFile()) return;
    const fileId = Volume.fileIdOf(st);
    const open = this.open.file(fileId);
    // Our own writes change the file too; while we have it open, the mount's writes are the truth.
    if (open && (open.modified || open.writeLock.locked)) return;
    const rec = this.map.fileRecord(fileId);
    if (rec && rec.sizeBytes === st.size && rec.mtimeMs === st.mtimeMs) return;
    if (this.map.extents(fileId).size > 0) {
      this.log.info('volume', `${lp} changed outside the mount: its shadow copies are dropped`);
      await this.invalidate(fileId);
      if (open) open.sizeBytes = st.size;
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

  read(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    this.lastForegroundMs = Date.now();
    const h = this.handle(fh);
    return this.io.read(h.file, h.fd, buf, length, position);
  }

  async write(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    this.lastForegroundMs = Date.now();
    const h = this.handle(fh);
    if (!h.writable) throw new FsError('EBADF');
    const file = h.file;
    const E = this.io.extentSizeBytes;
    let range = { first: 0, last: -1 };
    const n = await file.writeLock.run(() => {
      // Growing the file also changes the old last extent (it now ends in zeros, not at EOF).
      const oldLast = Math.max(0, Math.ceil(file.sizeBytes / E) - 1);
      range = { first: Math.min(Math.floor(position / E), oldLast), last: Math.floor((position + Math.max(length, 1) - 1) / E) };
      this.fastPath.unmap(file.fileId, range.first, range.last);
      return this.io.write(file, h.fd, buf, length, position);
    });
    this.fastPath.remap(file, range.first, range.last);
    this.onWrite(file, range.first, range.last);
    return n;
  }

  /** Set by the assembly: told after every write (coverage re-copies what lost its copy). */
  onWrite: (file: OpenFile, first: number, last: number) => void = () => undefined;

  /** Opens a live file for background work (no FUSE handle); undefined if it is gone. */
  async pinFile(livePath: string): Promise<OpenFile | undefined> {
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
      const file = await this.fileState(livePath, st, fd);
      file.handles++;
      return file;
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  unpinFile(file: OpenFile): void {
    file.handles--;
    if (file.handles === 0) void this.closeFile(file);
  }

  async ftruncate(fh: number, sizeBytes: number): Promise<void> {
    const h = this.handle(fh);
    const file = h.file;
    await file.writeLock.run(() => {
      this.fastPath.unmapAll(file.fileId);
      return this.io.truncate(file, h.fd, sizeBytes);
    });
    const edge = Math.max(0, Math.ceil(file.sizeBytes / this.io.extentSizeBytes) - 1);
    this.fastPath.remap(file, edge, edge);
  }

  async truncate(p: string, sizeBytes: number): Promise<void> {
    const lp = this.live(p);
    const fd = await openFd(lp, O_WRONLY);
    try {
      const h = await this.register(lp, fd, O_WRONLY);
      try {
        await this.ftruncate(h.fh, sizeBytes);
      } finally {
        await this.release(h.fh);
      }
    } catch (err) {
      if (!this.open.handle(fd)) await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  async fsync(fh: number, dataOnly: boolean): Promise<void> {
    const h = this.handle(fh);
    await fsyncFd(h.fd, dataOnly);
    await Promise.all(this.tiers.all().map((t) => t.tier.syncFile(h.file.fileId)));
    await this.storeRecord(h.file);
    await this.map.flush();
  }

  async flush(fh: number): Promise<void> {
    this.handle(fh);
  }

  private async storeRecord(file: OpenFile): Promise<void> {
    if (!file.modified) return;
    const st = await fstat(file.readFd);
    file.modified = false;
    await this.map.setFileRecord(file.fileId, { sizeBytes: st.size, mtimeMs: st.mtimeMs });
  }

  async release(fh: number): Promise<void> {
    const h = this.handle(fh);
    const last = this.open.removeHandle(fh);
    await closeFd(h.fd);
    if (last) await this.closeFile(last);
  }

  private async closeFile(file: OpenFile): Promise<void> {
    if (file.handles > 0 || this.open.file(file.fileId) !== file) return;
    this.open.removeFile(file.fileId);
    this.fastPath.onFileClosed(file.fileId);
    try {
      if (file.unlinked) await this.dropFile(file.fileId);
      else await this.storeRecord(file);
    } finally {
      await closeFd(file.readFd);
    }
  }

  // --- extended attributes (kept on the live file) ---

  async setxattr(p: string, name: string, value: Buffer, flags: number): Promise<void> {
    const lp = this.live(p);
    if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
      const exists = (await this.getxattr(p, name).then(() => true, (err) => {
        if (errorCode(err) === 'ENODATA') return false;
        throw err;
      }));
      if (flags & XATTR_CREATE && exists) throw new FsError('EEXIST');
      if (flags & XATTR_REPLACE && !exists) throw new FsError('ENODATA');
    }
    await this.xattrCall(() => xattr.setAttribute(lp, name, value));
  }

  async getxattr(p: string, name: string): Promise<Buffer> {
    const lp = this.live(p);
    await fsp.lstat(lp);
    const v = await this.xattrCall(() => xattr.getAttribute(lp, name));
    if (v === null) throw new FsError('ENODATA');
    return v;
  }

  async listxattr(p: string): Promise<string[]> {
    const lp = this.live(p);
    await fsp.lstat(lp);
    return this.xattrCall(() => xattr.listAttributes(lp));
  }

  async removexattr(p: string, name: string): Promise<void> {
    const lp = this.live(p);
    await this.getxattr(p, name);
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
    for (const file of [...this.open.allFiles()]) {
      await this.storeRecord(file).catch(() => undefined);
    }
    await this.map.close();
    await this.tiers.closeAll();
  }
}
