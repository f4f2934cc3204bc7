/**
 * The FUSE adapter: the only code that speaks FUSE. Each op is a short translation from
 * fuse-native's callback convention to a Volume call, and from errors to errno. No policy here.
 */
import type { Stats } from 'node:fs';
import { Volume, Caller, TimeUpdate } from '../volume/volume';
import { Logger } from '../util/log';
import { Errno, errnoOf } from './binding';
import type { FuseHandlers, FuseContext, TimeSpec } from './binding';
import { errorCode } from '../util/errors';


const timeOf = (t: TimeSpec | null): TimeUpdate => (t === null ? null : t.sec + t.nsec / 1e9);

/** Requests being handled right now, by op: a request stuck in the volume shows up here. */
export const inFlight = new Map<string, number>();

export function buildHandlers(volume: Volume, log: Logger, context: () => FuseContext | undefined): FuseHandlers {
  const fail = (op: string, cb: (code: number) => void, err: unknown): void => {
    const errno = errnoOf(err);
    // An error without an errno of its own is a bug: it reaches the application as EIO, and the log.
    if (errno === Errno.EIO && errorCode(err) !== 'EIO') log.error('fuse', `${op}: ${(err as Error)?.stack ?? String(err)}`);
    cb(errno);
  };
  // Runs a volume call and answers FUSE exactly once, whatever happens.
  const call = <T>(op: string, cb: (code: number) => void, fn: () => Promise<T>, reply: (v: T) => void = () => cb(0)): void => {
    let p: Promise<T>;
    inFlight.set(op, (inFlight.get(op) ?? 0) + 1);
    const done = (): void => void inFlight.set(op, (inFlight.get(op) ?? 1) - 1);
    try {
      p = fn();
    } catch (err) {
      done();
      fail(op, cb, err);
      return;
    }
    p.then((v) => {
      done();
      reply(v);
    }, (err) => {
      done();
      fail(op, cb, err);
    });
  };
  const caller = (): Caller | undefined => {
    const c = context();
    return c ? { uid: c.uid, gid: c.gid } : undefined;
  };

  return {
    init: (cb) => cb(0),
    access: (p, mode, cb) => call('access', cb, () => volume.access(p, mode)),
    statfs: (p, cb) => call('statfs', cb, () => volume.statfs(p), (s) => cb(0, {
      bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
      files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255,
    })),
    getattr: (p, cb) => call('getattr', cb, () => volume.getattr(p), (st: Stats) => cb(0, st)),
    fgetattr: (p, fh, cb) => call('fgetattr', cb, () => (fh ? volume.fgetattr(fh) : volume.getattr(p)), (st: Stats) => cb(0, st)),
    flush: (p, fh, cb) => call('flush', cb, () => volume.flush(fh)),
    fsync: (p, dataOnly, fh, cb) => call('fsync', cb, () => volume.fsync(fh, !!dataOnly)),
    fsyncdir: (p, dataOnly, fh, cb) => cb(0),
    readdir: (p, cb) => call('readdir', cb, () => volume.readdir(p), (names) => cb(0, names)),
    truncate: (p, size, cb) => call('truncate', cb, () => volume.truncate(p, size)),
    ftruncate: (p, fh, size, cb) => call('ftruncate', cb, () => volume.ftruncate(fh, size)),
    fallocate: (p, mode, offset, length, fh, cb) => call('fallocate', cb, () => volume.fallocate(fh, mode, offset, length)),
    utimens: (p, atime, mtime, cb) => call('utimens', cb, () => volume.utimens(p, timeOf(atime), timeOf(mtime))),
    readlink: (p, cb) => call('readlink', cb, () => volume.readlink(p), (target) => cb(0, target)),
    chown: (p, uid, gid, cb) => call('chown', cb, () => volume.chown(p, uid, gid)),
    chmod: (p, mode, cb) => call('chmod', cb, () => volume.chmod(p, mode)),
    mknod: (p, mode, dev, cb) => call('mknod', cb, () => volume.mknod(p, mode, dev, caller())),
    // The value buffer belongs to FUSE only until we answer: copy it before the first await.
    setxattr: (p, name, value, position, flags, cb) => call('setxattr', cb, () => volume.setxattr(p, name, Buffer.from(value), flags)),
    getxattr: (p, name, position, cb) => call('getxattr', cb, () => volume.getxattr(p, name), (v) => cb(0, v)),
    listxattr: (p, cb) => call('listxattr', cb, () => volume.listxattr(p), (names) => cb(0, names)),
    removexattr: (p, name, cb) => call('removexattr', cb, () => volume.removexattr(p, name)),
    open: (p, flags, cb) => call('open', cb, () => volume.openFile(p, flags), (fh) => cb(0, fh)),
    read: (p, fh, buf, len, pos, cb) => call('read', cb, () => volume.read(fh, buf, len, pos), (n) => cb(n)),
    write: (p, fh, buf, len, pos, cb) => call('write', cb, () => volume.write(fh, buf, len, pos), (n) => cb(n)),
    release: (p, fh, cb) => call('release', cb, () => volume.release(fh)),
    create: (p, mode, cb) => call('create', cb, () => volume.create(p, mode, caller()), (fh) => cb(0, fh)),
    unlink: (p, cb) => call('unlink', cb, () => volume.unlink(p)),
    rename: (from, to, cb) => call('rename', cb, () => volume.rename(from, to)),
    link: (existing, p, cb) => call('link', cb, () => volume.link(existing, p)),
    symlink: (target, p, cb) => call('symlink', cb, () => volume.symlink(target, p, caller())),
    mkdir: (p, mode, cb) => call('mkdir', cb, () => volume.mkdir(p, mode, caller())),
    rmdir: (p, cb) => call('rmdir', cb, () => volume.rmdir(p)),
  };
}
