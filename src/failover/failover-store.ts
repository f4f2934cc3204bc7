/**
 * What a failover must not forget, in its own LevelDB beside the extent map: the mode, the mirrored
 * namespace, and the journal of what changed while failed over (dirty extents, touched files).
 *
 * While the live volume is authoritative the mirror is persisted lazily (it is rebuilt from the
 * live tree at mount anyway). While failed over the shadows are the truth: every change is
 * written before the operation is acknowledged (LevelDB's log write reaches the kernel, so a
 * kill -9 loses nothing acknowledged).
 */
import { Level } from 'level';
import type { MirrorEntry } from './namespace-mirror';

export type VolumeMode = 'live' | 'failed-over' | 'resyncing';

type Op = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

const MIRROR = 'm!';
const DIRTY = 'd!';
const TOUCHED = 't!';
const RESYNCED = 'r!';
const REMOVED = 'x!';
const META = 's!';
/** The value of a dirty extent's key when its bytes are lost (FailoverJournal.lost). */
const LOST_VALUE = 'lost';

export function lostKey(fileId: string, index: number): string {
  return `${fileId}!${index}`;
}

/** Whether the journal holds an extent's bytes as lost (only a dirty extent's can be). */
export function isLost(journal: FailoverJournal, fileId: string, index: number): boolean {
  return journal.lost.size > 0 && journal.lost.has(lostKey(fileId, index)) && !!journal.dirty.get(fileId)?.has(index);
}

export interface FailoverJournal {
  mode: VolumeMode;
  failedOverAtMs: number | null;
  reason: string;
  /** fileId → dirty extent indices. */
  dirty: Map<string, Set<number>>;
  /**
   * Dirty extents (`lostKey`) whose last copy was dropped as damaged: the bytes written while
   * failed over are gone, and the live volume never had them. Reads fail (EIO) rather than pass
   * them off as a hole of zeros; resync reports them. Counts only while the extent is dirty.
   */
  lost: Set<string>;
  /** Files whose attributes or data changed while failed over. */
  touched: Set<string>;
  /** Anything was unlinked, renamed or removed while failed over: resync compares whole trees. */
  namespaceChanged: boolean;
  /**
   * Paths the mount removed while failed over (unlinked, rmdir'ed, renamed away or replaced by a
   * rename). Resync removes from the live volume only what lies at or under one of them: an entry
   * the mirror merely missed is left alone, never deleted.
   */
  removed: Set<string>;
  /**
   * Live files (by inode id) the current resync has begun to write: their changes on the live volume
   * since the failover are resync's own, not someone else's (no conflict). Kept across a crash.
   */
  resynced: Set<string>;
  nextSyntheticId: number;
}

export class FailoverStore {
  private staged: Op[] = [];
  private chain: Promise<void> = Promise.resolve();

  private constructor(private readonly db: Level<string, string>) {}

  static async open(dir: string): Promise<FailoverStore> {
    const db = new Level<string, string>(dir, { valueEncoding: 'utf8' });
    await db.open();
    return new FailoverStore(db);
  }

  async load(): Promise<{ journal: FailoverJournal; mirror: Map<string, MirrorEntry> }> {
    const journal: FailoverJournal = { mode: 'live', failedOverAtMs: null, reason: '', dirty: new Map(), lost: new Set(), touched: new Set(), resynced: new Set(), namespaceChanged: false, removed: new Set(), nextSyntheticId: 1 };
    const mirror = new Map<string, MirrorEntry>();
    for await (const [key, value] of this.db.iterator()) {
      if (key.startsWith(MIRROR)) mirror.set(key.slice(MIRROR.length), JSON.parse(value) as MirrorEntry);
      else if (key.startsWith(DIRTY)) {
        const [fileId, index] = key.slice(DIRTY.length).split('!');
        let s = journal.dirty.get(fileId);
        if (!s) journal.dirty.set(fileId, (s = new Set()));
        s.add(parseInt(index, 16));
        if (value === LOST_VALUE) journal.lost.add(lostKey(fileId, parseInt(index, 16)));
      } else if (key.startsWith(TOUCHED)) journal.touched.add(key.slice(TOUCHED.length));
      else if (key.startsWith(RESYNCED)) journal.resynced.add(key.slice(RESYNCED.length));
      else if (key.startsWith(REMOVED)) journal.removed.add(key.slice(REMOVED.length));
      else if (key === `${META}mode`) journal.mode = value as VolumeMode;
      else if (key === `${META}since`) journal.failedOverAtMs = Number(value);
      else if (key === `${META}reason`) journal.reason = value;
      else if (key === `${META}ns`) journal.namespaceChanged = value === '1';
      else if (key === `${META}seq`) journal.nextSyntheticId = Number(value);
    }
    return { journal, mirror };
  }

  // ---- op builders ----
  static mirrorPut(p: string, e: MirrorEntry): Op {
    return { type: 'put', key: MIRROR + p, value: JSON.stringify(e) };
  }

  static mirrorDel(p: string): Op {
    return { type: 'del', key: MIRROR + p };
  }

  /** lost: the extent's bytes are gone (see FailoverJournal.lost); a put without it clears that. */
  static dirtyPut(fileId: string, index: number, lost = false): Op {
    return { type: 'put', key: `${DIRTY}${fileId}!${index.toString(16).padStart(8, '0')}`, value: lost ? LOST_VALUE : '' };
  }

  static dirtyDel(fileId: string, index: number): Op {
    return { type: 'del', key: `${DIRTY}${fileId}!${index.toString(16).padStart(8, '0')}` };
  }

  static touchedPut(fileId: string): Op {
    return { type: 'put', key: TOUCHED + fileId, value: '' };
  }

  static touchedDel(fileId: string): Op {
    return { type: 'del', key: TOUCHED + fileId };
  }

  static resyncedPut(fileId: string): Op {
    return { type: 'put', key: RESYNCED + fileId, value: '' };
  }

  static resyncedDel(fileId: string): Op {
    return { type: 'del', key: RESYNCED + fileId };
  }

  static removedPut(p: string): Op {
    return { type: 'put', key: REMOVED + p, value: '' };
  }

  static removedDel(p: string): Op {
    return { type: 'del', key: REMOVED + p };
  }

  static meta(name: 'mode' | 'since' | 'reason' | 'ns' | 'seq' | 'synced', value: string): Op {
    return { type: 'put', key: META + name, value };
  }

  /** Written with the next commit or flush (lazy: the live volume is still the truth). */
  stage(ops: Op[]): void {
    for (const op of ops) this.staged.push(op);
    if (this.staged.length > 4096) void this.flush();
  }

  /** Written now, after everything staged before it; resolves once LevelDB has it (on disk, with `sync`). */
  commit(ops: Op[], sync = false): Promise<void> {
    const batch = this.staged.concat(ops);
    this.staged = [];
    this.chain = this.chain.then(() => (batch.length ? this.db.batch(batch, { sync }) : undefined));
    return this.chain;
  }

  flush(): Promise<void> {
    return this.commit([]);
  }

  /**
   * Everything committed or staged so far, on disk: an fsync through the mount while failed over
   * (the journal says what resync must replay; see ExtentMap.sync for why commits are not synced).
   */
  sync(): Promise<void> {
    return this.commit([FailoverStore.meta('synced', '')], true);
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.db.close();
  }
}

export type { Op as FailoverStoreOp };
