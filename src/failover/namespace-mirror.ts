/**
 * The mirrored namespace: every directory, file and symlink of the live volume with its
 * attributes, kept current by the mount's own namespace operations and rebuilt from the live tree
 * at mount. While failed over it *is* the namespace: getattr, readdir and friends are answered
 * from it and changes are made to it (and journaled for resync).
 *
 * In memory, keyed by volume path ("/a/b"); each mutation returns the store ops that persist it.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { FailoverStore, FailoverStoreOp } from './failover-store';
import { parentOf } from '../util/tree-paths';

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface MirrorEntry {
  type: EntryType;
  /** Full st_mode (type bits included). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  rdev: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Files: the extent map's file id (the live inode in hex, or a synthetic id for files made while failed over). */
  fileId?: string;
  /** Symlinks: the target. */
  target?: string;
  /**
   * Files changed while failed over: how many bytes of the live file are still this file's (its
   * size at failover, lowered by truncates since). Past it, extents without a copy are holes.
   */
  liveSize?: number;
}

/**
 * A walk of the live tree: the entries it saw, and where it could not look. An entry removed (or
 * replaced by another type) while the walk passed is simply not there; one it could not read, or
 * a directory it could not list, is unknown: it and what is under it may exist or not, and whoever
 * uses the walk keeps what it knew of them before (a failing disk's bad directory must not pass
 * for an empty one, and its files be dropped from the namespace failover serves).
 */
export class LiveScan {
  readonly entries = new Map<string, MirrorEntry>();
  /** Paths that could not be read: they, and all under them, are unknown. */
  private readonly unreadable = new Set<string>();
  /** Directories that could not be listed: what is under them is unknown. */
  private readonly unlisted = new Set<string>();
  /** The first few errors, for a message. */
  readonly errors: string[] = [];
  private errorCount = 0;

  get complete(): boolean {
    return this.unreadable.size === 0 && this.unlisted.size === 0;
  }

  /** How many entries or directories could not be read, with the first errors. */
  describeFailures(): string {
    return `${this.errorCount} path(s) could not be read (${this.errors.join('; ')}${this.errorCount > this.errors.length ? '; ...' : ''})`;
  }

  /** Whether the walk can tell that `p` is (or is not) there. */
  knows(p: string): boolean {
    if (this.complete) return true;
    for (let q = p; ; q = parentOf(q)) {
      if (this.unreadable.has(q) || (q !== p && this.unlisted.has(q))) return false;
      if (q === '/') return true;
    }
  }

  /** An error reading `p` (listing it, when `listing`): skipped if it is gone, else noted unknown. */
  failed(p: string, listing: boolean, err: NodeJS.ErrnoException): undefined {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'EINVAL') return undefined;
    (listing ? this.unlisted : this.unreadable).add(p);
    if (this.errors.length < 3) this.errors.push(`${p}: ${err.code ?? err.message}`);
    this.errorCount++;
    return undefined;
  }
}

/** Names the mount keeps for itself in the live root (the watchdog's canary): never shown. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(['.shadowfs-canary']);

function typeOf(st: fs.Stats): EntryType {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
}

export function entryFromStats(st: fs.Stats, target?: string): MirrorEntry {
  const type = typeOf(st);
  return {
    type, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, nlink: st.nlink, rdev: st.rdev,
    atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs,
    fileId: type === 'file' ? st.ino.toString(16) : undefined,
    target,
  };
}

/** A fs.Stats answered from the mirror (the FUSE adapter reads the usual fields). */
export function statsFromEntry(e: MirrorEntry): fs.Stats {
  const st = Object.create(fs.Stats.prototype) as fs.Stats;
  const ino = e.fileId && /^[0-9a-f]+$/.test(e.fileId) ? parseInt(e.fileId, 16) : 0;
  Object.assign(st, {
    dev: 0, ino, mode: e.mode, nlink: e.type === 'dir' ? Math.max(2, e.nlink) : Math.max(1, e.nlink), uid: e.uid, gid: e.gid, rdev: e.rdev,
    size: e.size, blksize: 4096, blocks: Math.ceil(e.size / 512),
    atimeMs: e.atimeMs, mtimeMs: e.mtimeMs, ctimeMs: e.ctimeMs, birthtimeMs: e.ctimeMs,
    atime: new Date(e.atimeMs), mtime: new Date(e.mtimeMs), ctime: new Date(e.ctimeMs), birthtime: new Date(e.ctimeMs),
  });
  return st;
}

export class NamespaceMirror {
  private readonly entries = new Map<string, MirrorEntry>();
  private readonly childNames = new Map<string, Set<string>>();

  constructor(initial: Map<string, MirrorEntry> = new Map()) {
    for (const [p, e] of initial) this.put(p, e);
  }

  get size(): number {
    return this.entries.size;
  }

  get(p: string): MirrorEntry | undefined {
    return this.entries.get(p);
  }

  children(dir: string): string[] {
    return [...(this.childNames.get(dir) ?? [])];
  }

  all(): IterableIterator<[string, MirrorEntry]> {
    return this.entries.entries();
  }

  /** Paths of the file with this id (hard links give several). */
  pathsOf(fileId: string): string[] {
    const out: string[] = [];
    for (const [p, e] of this.entries) if (e.fileId === fileId) out.push(p);
    return out;
  }

  private put(p: string, e: MirrorEntry): void {
    this.entries.set(p, e);
    if (p !== '/') {
      const parent = parentOf(p);
      let s = this.childNames.get(parent);
      if (!s) this.childNames.set(parent, (s = new Set()));
      s.add(path.posix.basename(p));
    }
  }

  set(p: string, e: MirrorEntry): FailoverStoreOp[] {
    this.put(p, e);
    return [FailoverStore.mirrorPut(p, e)];
  }

  /** Change some attributes of an entry (no-op for an unknown path). */
  update(p: string, change: Partial<MirrorEntry>): FailoverStoreOp[] {
    const e = this.entries.get(p);
    if (!e) return [];
    return this.set(p, { ...e, ...change });
  }

  /** Remove an entry and everything below it. */
  delete(p: string): FailoverStoreOp[] {
    const ops: FailoverStoreOp[] = [];
    for (const child of this.children(p)) ops.push(...this.delete(p === '/' ? `/${child}` : `${p}/${child}`));
    if (this.entries.delete(p)) ops.push(FailoverStore.mirrorDel(p));
    this.childNames.delete(p);
    this.childNames.get(parentOf(p))?.delete(path.posix.basename(p));
    return ops;
  }

  /** Move an entry (and its subtree) to a new path, replacing what was there. */
  rename(from: string, to: string): FailoverStoreOp[] {
    const moved: [string, MirrorEntry][] = [];
    const collect = (p: string): void => {
      const e = this.entries.get(p);
      if (e) moved.push([p, e]);
      for (const c of this.children(p)) collect(p === '/' ? `/${c}` : `${p}/${c}`);
    };
    collect(from);
    const ops = [...this.delete(to), ...this.delete(from)];
    for (const [p, e] of moved) ops.push(...this.set(to + p.slice(from.length), e));
    return ops;
  }

  /**
   * The live tree as it is now, from `root` (a volume path, its own entry included; throws if it
   * cannot be read). `stopped`: asked between directories; once true the walk ends, with what it
   * has (a partial tree). An entry removed or replaced while the walk passes is left out; one it
   * cannot read (EIO from a failing live volume) is noted as unknown, so that nobody takes it, or
   * what is under it, for removed (see LiveScan).
   */
  static async scanLive(livePath: string, root = '/', stopped: () => boolean = () => false): Promise<LiveScan> {
    const scan = new LiveScan();
    const rootPath = path.join(livePath, root);
    const rootStats = await fsp.lstat(rootPath);
    scan.entries.set(root, entryFromStats(rootStats, rootStats.isSymbolicLink() ? await fsp.readlink(rootPath) : undefined));
    const stack = rootStats.isDirectory() ? [root] : [];
    while (stack.length > 0 && !stopped()) {
      const dir = stack.pop() as string;
      const names = await fsp.readdir(path.join(livePath, dir)).catch((err: NodeJS.ErrnoException) => scan.failed(dir, true, err));
      for (const name of names ?? []) {
        if (dir === '/' && RESERVED_NAMES.has(name)) continue;
        const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
        const lp = path.join(livePath, p);
        const st = await fsp.lstat(lp).catch((err: NodeJS.ErrnoException) => scan.failed(p, false, err));
        if (!st) continue;
        let target: string | undefined;
        if (st.isSymbolicLink()) {
          target = await fsp.readlink(lp).catch((err: NodeJS.ErrnoException) => scan.failed(p, false, err));
          if (target === undefined) continue;
        }
        scan.entries.set(p, entryFromStats(st, target));
        if (st.isDirectory()) stack.push(p);
      }
    }
    return scan;
  }
}
