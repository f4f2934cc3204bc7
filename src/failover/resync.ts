/**
 * Resync: replay what changed while failed over onto the live volume, so that afterwards the live
 * directory holds exactly what the mount shows. Idempotent and driven by the persisted journal, so
 * a resync cut short by a crash simply runs again.
 *
 * Direction is decided per entry: the mirror (the shadows) wins for everything journaled as
 * changed; entries the mount did not change are left alone. A live file changed behind our back
 * during the failover (modified after the failover began, by someone else) is a conflict: it is
 * kept beside ours as NAME.shadowfs-conflict-TIME and reported, never merged.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ExtentMap, isFresh } from '../extents/extent-map';
import { TierSet } from '../tiers/tier-set';
import { closeFd, fsyncFd, ftruncateFd, openFd, pwriteFull } from '../util/fd-io';
import { Logger } from '../util/log';
import { FailoverJournal, FailoverStore, FailoverStoreOp, isLost } from './failover-store';
import { LiveGuard } from './live-guard';
import { MirrorEntry, NamespaceMirror, RESERVED_NAMES } from './namespace-mirror';
import { ShadowNamespace } from './shadow-namespace';
import { isAtOrUnder } from '../util/tree-paths';
import { Pacer } from '../util/pacer';
import { errorCode } from '../util/errors';

export interface ResyncProgress {
  extentsDone: number;
  extentsTotal: number;
  bytesDone: number;
  conflicts: string[];
  startedAtMs: number;
}

export interface ResyncDeps {
  livePath: string;
  mirror: NamespaceMirror;
  journal: FailoverJournal;
  store: FailoverStore;
  map: ExtentMap;
  tiers: TierSet;
  guard: LiveGuard;
  extentSizeBytes: number;
  log: Logger;
  /** Resync bandwidth (the volume's copy rate): applications keep their share of the devices. */
  bytesPerSec: number;
  /** A file still open under an id that resync replaced (its records must stay). */
  isOpen: (fileId: string) => boolean;
  dropFile: (fileId: string) => Promise<void>;
}

interface LiveEntry {
  ino: string;
  type: MirrorEntry['type'];
  mtimeMs: number;
  ctimeMs: number;
}

/** The live tree as the pass found it, kept current as the pass moves things. */
interface LiveTree {
  byPath: Map<string, LiveEntry>;
  byIno: Map<string, string>;
}

const CONFLICT_MARK = '.shadowfs-conflict-';
/** A live file moved aside (in the live root) until the entry that wants it comes: see clearPath. */
const PARKED_MARK = '.shadowfs-resync-parked-';
/** Resync ops run long: a slow but working volume is fine now, a dead one still fails them. */
const RESYNC_OP_DEADLINE_MS = 30_000;

export class Resync {
  readonly progress: ResyncProgress = { extentsDone: 0, extentsTotal: 0, bytesDone: 0, conflicts: [], startedAtMs: Date.now() };
  /** Live files resync wrote whole (new inodes): no copy names them yet, coverage is told at failback. */
  readonly rewritten = new Map<string, { livePath: string; sizeBytes: number }>();

  constructor(private readonly d: ResyncDeps) {}

  /** Paces resync writes to bytesPerSec. */
  private readonly pacer = new Pacer(() => this.d.bytesPerSec);

  private op<T>(kind: 'read' | 'write' | 'meta' | 'sync', fn: () => Promise<T>): Promise<T> {
    return this.d.guard.run(kind, fn, { force: true, deadlineMs: RESYNC_OP_DEADLINE_MS });
  }

  private live(p: string): string {
    return p === '/' ? this.d.livePath : path.join(this.d.livePath, p);
  }

  /** Extents still to replay (for progress). */
  pendingExtents(): number {
    let n = 0;
    for (const s of this.d.journal.dirty.values()) n += s.size;
    return n;
  }

  private async walkLive(): Promise<LiveTree> {
    const byPath = new Map<string, LiveEntry>();
    const byIno = new Map<string, string>();
    const stack = ['/'];
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      const names = await this.op('meta', () => fsp.readdir(this.live(dir)));
      for (const name of names) {
        if (dir === '/' && RESERVED_NAMES.has(name)) continue;
        const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
        // Gone since it was listed: not there. Any other error fails the pass: an entry taken for
        // absent would be written whole over what is there, conflict unseen.
        const st = await this.op('meta', () => fsp.lstat(this.live(p))).catch((err: unknown) => {
          if (errorCode(err) === 'ENOENT') return undefined;
          throw err;
        });
        if (!st) continue;
        const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
        const ino = st.ino.toString(16);
        byPath.set(p, { ino, type, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
        // A conflict kept aside is not where its file moved: a retried pass must not move it back.
        if (type === 'file' && !name.includes(CONFLICT_MARK)) byIno.set(ino, p);
        if (type === 'dir') stack.push(p);
      }
    }
    return { byPath, byIno };
  }

  /**
   * Changed behind our back: modified on the live volume after the failover began, by someone other
   * than resync itself (an earlier pass, or a resync cut short by a crash, wrote files it claimed).
   */
  private changedBehindOurBack(e: LiveEntry | undefined): boolean {
    return !!e && this.changedSinceFailover(e, e.mtimeMs);
  }

  /**
   * Put at its path behind our back: a live file that is not the one the mount knows there (a new
   * inode), made or moved there after the failover began (a rename, as an editor's save does,
   * changes only its ctime).
   */
  private replacedBehindOurBack(e: LiveEntry): boolean {
    return e.type === 'file' && this.changedOrMovedSinceFailover(e);
  }

  /** Changed, or put at its path by a rename (its ctime), after the failover began. */
  private changedOrMovedSinceFailover(e: LiveEntry): boolean {
    return this.changedSinceFailover(e, Math.max(e.mtimeMs, e.ctimeMs));
  }

  /** Changed at changedAtMs, after the failover began, by someone other than resync or the mount's own late writes. */
  private changedSinceFailover(e: LiveEntry, changedAtMs: number): boolean {
    const since = this.d.journal.failedOverAtMs;
    return since !== null && changedAtMs > since + 1_000 && !this.d.journal.resynced.has(e.ino) && this.d.guard.abandonedOps === 0 && !this.lateWritesPossible;
  }

  /** From here on, changes of this live file are resync's own (persisted before the first write). */
  private async claim(fileId: string): Promise<void> {
    if (this.d.journal.resynced.has(fileId)) return;
    this.d.journal.resynced.add(fileId);
    await this.d.store.commit([FailoverStore.resyncedPut(fileId)]);
  }

  /** Set when live ops were abandoned during this failover: their late landing is not a conflict. */
  lateWritesPossible = false;

  private async keepConflict(p: string): Promise<void> {
    const aside = `${p}${CONFLICT_MARK}${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await this.op('meta', () => fsp.rename(this.live(p), this.live(aside)));
    this.progress.conflicts.push(`${p}: changed on the live volume during the failover; that version is kept as ${aside}`);
    this.d.log.warn('resync', `conflict: ${p} changed on the live volume during the failover; kept as ${aside}, the mount's version wins`);
  }

  /**
   * One pass over the journal. Returns how much was left unreplayed because it changed while the
   * pass ran (the next pass picks it up). `final` also applies removals and clears the journal.
   */
  async pass(final: boolean): Promise<number> {
    const { mirror, journal } = this.d;
    this.progress.extentsTotal = this.progress.extentsDone + this.pendingExtents();
    const live = await this.walkLive();
    const entries = [...mirror.all()].sort((a, b) => a[0].split('/').length - b[0].split('/').length || a[0].localeCompare(b[0]));
    let left = 0;
    const done: FailoverStoreOp[] = [];
    for (const [p] of entries) {
      // The entry as it is now: the replays before it awaited, and a write meanwhile replaced it
      // (a grown size read from the pass's start would clear its new extents unwritten). Gone or
      // moved meanwhile, it is journaled again and a later pass finds it where it is.
      const e = mirror.get(p);
      if (!e) continue;
      const key = ShadowNamespace.touchedKey(p, e);
      const cur = live.byPath.get(p);
      // Cleared before the replay: a change made while it runs marks the entry touched again.
      const touched = journal.touched.delete(key);
      if (touched) done.push(FailoverStore.touchedDel(key));
      if (e.type === 'dir') {
        if (cur && cur.type !== 'dir') await this.clearPath(p, cur, live);
        if (!cur || cur.type !== 'dir') await this.op('meta', () => fsp.mkdir(this.live(p), { mode: e.mode & 0o7777 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        }));
        if (touched) await this.applyAttrs(p, e);
      } else if (e.type === 'symlink') {
        if (!touched && cur?.type === 'symlink') continue;
        if (cur) await this.clearPath(p, cur, live);
        await this.op('meta', () => fsp.symlink(e.target ?? '', this.live(p)));
        await this.op('meta', () => fsp.lchown(this.live(p), e.uid, e.gid));
      } else if (e.type === 'file' && e.fileId) {
        const dirty = journal.dirty.get(e.fileId);
        const moved = !cur || cur.ino !== e.fileId;
        if (!touched && !dirty?.size && !moved) continue;
        try {
          left += await this.resyncFile(p, e, cur, live);
        } catch (err) {
          if (touched) journal.touched.add(key);
          throw err;
        }
      }
    }
    if (final) {
      if (journal.namespaceChanged) await this.removeWhatIsGone(live.byPath);
      // What is left belongs to entries removed while failed over: nothing to replay.
      for (const [fileId, indices] of journal.dirty) {
        if (mirror.pathsOf(fileId).length > 0) continue;
        for (const index of indices) done.push(FailoverStore.dirtyDel(fileId, index));
        journal.dirty.delete(fileId);
      }
      for (const key of journal.touched) done.push(FailoverStore.touchedDel(key));
      journal.touched.clear();
      for (const id of journal.resynced) done.push(FailoverStore.resyncedDel(id));
      journal.resynced.clear();
    }
    if (done.length) await this.d.store.commit(done);
    return left;
  }

  /**
   * Make room at `p`. What is there goes, unless it is a live file that another entry wants at its
   * own path (renames while failed over moved it: two files swapped, or a new file put at the name
   * of one renamed away). That one is parked in the live root and renamed into place when its
   * entry's turn comes; removed, or written over, its bytes would be lost. A file someone else put
   * there during the failover is a conflict: kept aside, as a changed one is.
   */
  private async clearPath(p: string, cur: LiveEntry, live: LiveTree): Promise<void> {
    const wanted = (e: LiveEntry, at: string): boolean => e.type === 'file' && this.d.mirror.pathsOf(e.ino).some((q) => q !== at);
    const park = async (at: string, e: LiveEntry): Promise<void> => {
      const parked = `/${PARKED_MARK}${e.ino}`;
      await this.op('meta', () => fsp.rename(this.live(at), this.live(parked)));
      live.byPath.delete(at);
      live.byPath.set(parked, e);
      live.byIno.set(e.ino, parked);
    };
    if (wanted(cur, p)) return park(p, cur);
    if (this.replacedBehindOurBack(cur)) {
      await this.keepConflict(p);
      live.byPath.delete(p);
      if (live.byIno.get(cur.ino) === p) live.byIno.delete(cur.ino);
      return;
    }
    if (cur.type === 'dir') {
      for (const [q, e] of [...live.byPath]) if (q !== p && isAtOrUnder(q, p) && wanted(e, q)) await park(q, e);
    }
    await this.removeLive(p, cur);
    for (const q of [...live.byPath.keys()]) {
      if (!isAtOrUnder(q, p)) continue;
      const e = live.byPath.get(q) as LiveEntry;
      live.byPath.delete(q);
      if (live.byIno.get(e.ino) === q) live.byIno.delete(e.ino);
    }
  }

  private async removeLive(p: string, cur: LiveEntry): Promise<void> {
    if (cur.type === 'dir') await this.op('meta', () => fsp.rm(this.live(p), { recursive: true, force: true }));
    else await this.op('meta', () => fsp.unlink(this.live(p)).catch(() => undefined));
  }

  private async applyAttrs(p: string, e: MirrorEntry): Promise<void> {
    const lp = this.live(p);
    await this.op('meta', async () => {
      await fsp.chmod(lp, e.mode & 0o7777);
      await fsp.lchown(lp, e.uid, e.gid);
      await fsp.lutimes(lp, e.atimeMs / 1000, e.mtimeMs / 1000);
    });
  }

  /**
   * Entries on the live volume that the mount removed (or moved away) while failed over. A regular
   * file goes only if the journal names its very path as removed: one the mirror merely missed (it
   * learns the live tree by a walk and by the mount's own changes) is never deleted, even under a
   * directory that was. Directories (rmdir: only if empty) and other entries under a removed path
   * go too, so a directory renamed away leaves nothing behind.
   */
  private async removeWhatIsGone(byPath: Map<string, LiveEntry>): Promise<void> {
    const removed = this.d.journal.removed;
    const underRemoved = (p: string): boolean => {
      for (let q = p; q !== '/' && q !== '.'; q = path.posix.dirname(q)) if (removed.has(q)) return true;
      return false;
    };
    const gone = [...byPath.entries()]
      .filter(([p, e]) => !this.d.mirror.get(p) && !p.includes(CONFLICT_MARK) && (removed.has(p) || (e.type !== 'file' && underRemoved(p))))
      .map(([p]) => p);
    // Deepest first, so directories are empty when their turn comes.
    gone.sort((a, b) => b.split('/').length - a.split('/').length);
    for (const p of gone) {
      const e = byPath.get(p) as LiveEntry;
      if (e.type !== 'dir' && this.changedOrMovedSinceFailover(e)) {
        this.progress.conflicts.push(`${p}: removed through the mount during the failover but changed on the live volume meanwhile; kept`);
        continue;
      }
      // Gone already is fine, and a directory someone else put files in stays (with them). Any
      // other error fails the pass: the volume stays failed over rather than show, after
      // failback, what the application removed.
      await this.op('meta', () => (e.type === 'dir' ? fsp.rmdir(this.live(p)) : fsp.unlink(this.live(p))).catch((err: unknown) => {
        const code = errorCode(err);
        if (code === 'ENOENT') return;
        if (code === 'ENOTEMPTY' && e.type === 'dir') {
          this.progress.conflicts.push(`${p}: removed through the mount during the failover but given new entries on the live volume meanwhile; kept`);
          return;
        }
        throw err;
      }));
    }
    this.d.journal.namespaceChanged = false;
    const cleared = [...removed].map((p) => FailoverStore.removedDel(p));
    removed.clear();
    await this.d.store.commit([FailoverStore.meta('ns', '0'), ...cleared]);
  }

  /** Bring one live file in line with the mirror; returns the extents left for the next pass. */
  private async resyncFile(p: string, e: MirrorEntry, cur: LiveEntry | undefined, live: LiveTree): Promise<number> {
    const fileId = e.fileId as string;
    const lp = this.live(p);
    let whole = false;
    if (cur && cur.ino === fileId) {
      if (this.changedBehindOurBack(cur)) {
        await this.keepConflict(p);
        whole = true;
      }
    } else {
      const elsewhere = live.byIno.get(fileId);
      if (elsewhere && this.d.mirror.get(elsewhere)?.fileId !== fileId) {
        if (cur) await this.clearPath(p, cur, live);
        await this.op('meta', () => fsp.rename(this.live(elsewhere), lp));
        const moved = live.byPath.get(elsewhere);
        live.byPath.delete(elsewhere);
        if (moved) live.byPath.set(p, moved);
        // Found here from now on; another link's entry does not take it away again.
        live.byIno.delete(fileId);
      } else {
        if (cur) await this.clearPath(p, cur, live);
        whole = true;
      }
    }
    if (whole) return this.writeWholeFile(p, e);
    await this.claim(fileId);
    return this.writeDirtyExtents(p, e);
  }

  /**
   * Read a fresh copy of an extent (any tier), or the zeros it is known to hold; undefined if neither. The generation is the one
   * the bytes were read at: taken after the read, a write that landed meanwhile would pass for
   * the bytes' own, and its change would be cleared from the journal without reaching the live file.
   */
  private async copyBytes(fileId: string, index: number, length: number): Promise<{ data: Buffer; generation: number } | undefined> {
    const rec = this.d.map.get(fileId, index);
    if (!rec) return undefined;
    const generation = rec.generation;
    const copies = rec.copies.filter((c) => isFresh(rec, c) && this.d.tiers.isUsable(c.tierId))
      .sort((a, b) => this.d.tiers.rank(a.tierId) - this.d.tiers.rank(b.tierId));
    for (const c of copies) {
      const vt = this.d.tiers.get(c.tierId);
      if (!vt) continue;
      const data = Buffer.alloc(length);
      try {
        // A short read is a read that failed part way (a bad sector), not zeros: the next copy.
        const want = Math.min(length, c.sizeBytes);
        if ((await vt.tier.read({ fileId, index }, 0, want, data, 0)) === want) return { data, generation };
      } catch {
        // next copy
      }
    }
    // Zeros the mount made (a grown file, a punched hole) are known without a copy.
    return rec.zeros ? { data: Buffer.alloc(length), generation } : undefined;
  }

  /** copyBytes found nothing, yet the extent held bytes: copies that cannot be read, or journaled lost. */
  private lostWhileFailedOver(fileId: string, index: number): boolean {
    return (this.d.map.get(fileId, index)?.copies.length ?? 0) > 0 || isLost(this.d.journal, fileId, index);
  }

  /**
   * copyBytes found nothing, but a fresh copy exists (its tier failing, or marked unhealthy): the
   * bytes are not lost, only out of reach now. The pass stops, and the volume stays failed over
   * until a later resync can read them.
   */
  private stopIfOutOfReach(p: string, fileId: string, index: number): void {
    const rec = this.d.map.get(fileId, index);
    if (!isLost(this.d.journal, fileId, index) && rec?.copies.some((c) => isFresh(rec, c))) {
      throw new Error(`${p}: extent ${index} is only on tiers that cannot be read now`);
    }
  }

  private async writeDirtyExtents(p: string, e: MirrorEntry): Promise<number> {
    const fileId = e.fileId as string;
    const E = this.d.extentSizeBytes;
    // Writes go on while a pass runs: sizes come from the entry as it is at each step.
    const current = (): MirrorEntry => {
      const now = this.d.mirror.get(p);
      return now?.fileId === fileId ? now : e;
    };
    const dirty = [...(this.d.journal.dirty.get(fileId) ?? [])].sort((a, b) => a - b);
    const fd = await this.op('meta', () => openFd(this.live(p), fs.constants.O_WRONLY));
    let left = 0;
    const cleared: FailoverStoreOp[] = [];
    try {
      // Cut to what is still the live file's (a truncate while failed over), then lay the dirty
      // extents over it; extending to the final size zero-fills the holes.
      const start = current();
      if (start.liveSize !== undefined) await this.op('write', () => ftruncateFd(fd, Math.min(start.liveSize as number, start.size)));
      for (const index of dirty) {
        const length = Math.max(0, Math.min(E, current().size - index * E));
        if (length > 0) {
          const got = await this.copyBytes(fileId, index, length);
          // Past the cut and no copy at all: a truncate while failed over took the extent's bytes
          // (and its copies), and a later growth left a hole, which the cut and the final size make
          // zeros. Copies that exist but cannot be read are a loss, and said so, as are bytes
          // whose last copy was dropped as damaged (journaled lost).
          const hole = start.liveSize !== undefined && index * E >= start.liveSize && !this.lostWhileFailedOver(fileId, index);
          if (!got) {
            this.stopIfOutOfReach(p, fileId, index);
            if (!hole) this.d.log.error('resync', `${p}: extent ${index} has no fresh shadow copy left; its changes made while failed over are lost`);
          } else {
            await this.pacer.take(length);
            await this.op('write', () => pwriteFull(fd, got.data, 0, length, index * E));
            this.progress.bytesDone += length;
            if (this.d.map.get(fileId, index)?.generation !== got.generation) {
              left++;
              continue;
            }
          }
        }
        this.d.journal.dirty.get(fileId)?.delete(index);
        cleared.push(FailoverStore.dirtyDel(fileId, index));
        this.progress.extentsDone++;
      }
      const size = current().size;
      await this.op('write', () => ftruncateFd(fd, size));
      await this.op('sync', () => fsyncFd(fd, false));
    } finally {
      await this.op('meta', () => closeFd(fd)).catch(() => undefined);
    }
    if (this.d.journal.dirty.get(fileId)?.size === 0) this.d.journal.dirty.delete(fileId);
    await this.applyAttrs(p, current());
    await this.recordLiveState(p, fileId);
    await this.d.store.commit(cleared);
    return left;
  }

  /** A new live file with the whole content from the shadows (made while failed over, or a conflict). */
  private async writeWholeFile(p: string, e: MirrorEntry): Promise<number> {
    const fileId = e.fileId as string;
    const E = this.d.extentSizeBytes;
    const tmp = `${this.live(p)}.shadowfs-resync`;
    const fd = await this.op('meta', () => openFd(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, e.mode & 0o7777));
    let left = 0;
    try {
      for (let index = 0; index * E < e.size; index++) {
        const length = Math.min(E, e.size - index * E);
        const got = await this.copyBytes(fileId, index, length);
        if (!got) {
          this.stopIfOutOfReach(p, fileId, index);
          // No copy at all past what the live file held is a hole; copies that cannot be read, or
          // bytes journaled lost, are changes made while failed over that are gone.
          if (this.lostWhileFailedOver(fileId, index)) this.d.log.error('resync', `${p}: extent ${index} has no fresh shadow copy left; its changes made while failed over are lost`);
          else if (index * E < (e.liveSize ?? 0)) this.d.log.error('resync', `${p}: extent ${index} has no shadow copy; written as zeros`);
          continue;
        }
        await this.pacer.take(length);
        await this.op('write', () => pwriteFull(fd, got.data, 0, length, index * E));
        this.progress.bytesDone += length;
        if (this.d.map.get(fileId, index)?.generation !== got.generation) left++;
      }
      await this.op('write', () => ftruncateFd(fd, e.size));
      await this.op('sync', () => fsyncFd(fd, false));
    } finally {
      await this.op('meta', () => closeFd(fd)).catch(() => undefined);
    }
    // A change to the entry while the copy ran (a write that grew the file past what was copied,
    // new attributes) is not in it: the next pass writes the file again.
    const changed = (): boolean => this.d.mirror.get(p) !== e;
    if (left > 0 || changed()) {
      await this.op('meta', () => fsp.unlink(tmp)).catch(() => undefined);
      return Math.max(left, 1);
    }
    await this.op('meta', () => fsp.rename(tmp, this.live(p)));
    await this.applyAttrs(p, e);
    const st = await this.op('meta', () => fsp.lstat(this.live(p)));
    // Changed after all: the live inode is not the entry's, so the next pass writes it whole again.
    if (changed()) return 1;
    const cleared: FailoverStoreOp[] = [];
    for (const index of this.d.journal.dirty.get(fileId) ?? []) {
      cleared.push(FailoverStore.dirtyDel(fileId, index));
      this.progress.extentsDone++;
    }
    this.d.journal.dirty.delete(fileId);
    // The live file is a new inode now: the mirror follows it; the old id's copies go unless open.
    const newId = st.ino.toString(16);
    this.d.journal.resynced.add(newId);
    cleared.push(FailoverStore.resyncedPut(newId));
    cleared.push(...this.d.mirror.set(p, { ...e, fileId: newId, liveSize: undefined }));
    await this.d.map.setFileRecord(newId, { sizeBytes: st.size, mtimeMs: st.mtimeMs });
    this.rewritten.set(newId, { livePath: this.live(p), sizeBytes: st.size });
    await this.d.store.commit(cleared);
    if (!this.d.isOpen(fileId) && newId !== fileId) await this.d.dropFile(fileId);
    return 0;
  }

  /** What the mount knows of the live file now, so that opening it does not look like an outside change. */
  private async recordLiveState(p: string, fileId: string): Promise<void> {
    const st = await this.op('meta', () => fsp.lstat(this.live(p)));
    if (st.ino.toString(16) === fileId) await this.d.map.setFileRecord(fileId, { sizeBytes: st.size, mtimeMs: st.mtimeMs });
    const e = this.d.mirror.get(p);
    if (e && e.fileId === fileId) await this.d.store.commit(this.d.mirror.set(p, { ...e, liveSize: undefined, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs }));
  }
}
