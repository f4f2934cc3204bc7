/**
 * The extent map: per file and extent, the current generation and which tiers hold which
 * generation of it. A small typed layer over LevelDB.
 *
 * Only extents that have (or had) a shadow copy have a record; an extent without a record has
 * no copies, so the live volume is the only place to read it and its generation does not matter.
 *
 * Crash consistency (ARCHITECTURE rules 1 and 2):
 * - a copy is recorded only after its bytes are durable on the tier (`addCopy` is called last);
 * - before the live bytes of an extent change, any *persisted* claim that a copy is fresh is
 *   withdrawn (`beginWrite` awaits that batch), so after a crash at any point no stale copy can
 *   look fresh. The state after the write (copies patched in place) is persisted lazily: losing
 *   it only loses copies, never correctness.
 */
import { randomUUID } from 'node:crypto';
import { Level } from 'level';
import * as fs from 'node:fs/promises';
import { CopyRecord, ExtentRecord, decodeExtentRecord, encodeExtentRecord } from './record-codec';

export type { CopyRecord, ExtentRecord } from './record-codec';

/** What the map remembers of a live file, to notice changes made behind the mount's back. */
export interface FileRecord {
  sizeBytes: number;
  mtimeMs: number;
}

interface ExtentState extends ExtentRecord {
  /** True when the persisted record may claim a fresh copy: a write must withdraw it first. */
  persistedFresh: boolean;
  dirty: boolean;
  /** Writes in progress: until they end, copies kept fresh in memory may not be persisted as fresh. */
  writing: number;
}

const EXTENT_PREFIX = 'e!';
const FILE_PREFIX = 'f!';
const TIER_PREFIX = 't!';
/** Written by sync() only, to force LevelDB's log to disk; ignored by load(). */
const SYNC_KEY = 's!synced';
/** A file written through the mount since its last sync point (see markWritten). */
const WRITTEN_FILE_PREFIX = 'w!';
/** The boot id of the machine the volume was last opened on. */
const BOOT_KEY = 'b!boot';
const VOLUME_KEY = 'v!id';
/** When the last scrub of every copy finished (ms since the epoch, decimal). */
const SCRUBBED_KEY = 'c!scrubbed';
const NOTHING = Buffer.alloc(0);
const MAX_TIER_ID = 0x7f;

type BatchOp = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

function extentKey(fileId: string, index: number): string {
  return `${EXTENT_PREFIX}${fileId}!${index.toString(16).padStart(8, '0')}`;
}

/**
 * A stored record as held in memory. Built field by field: an object spread ({ ...rec, dirty })
 * gives every object a hidden class of its own in V8 (measured: 432 B against 200 B per record
 * with one copy, which is most of the map's memory at a million extents).
 */
function loadedState(rec: ExtentRecord): ExtentState {
  const st: ExtentState = { generation: rec.generation, copies: rec.copies, persistedFresh: true, dirty: false, writing: 0 };
  if (rec.written) st.written = true;
  if (rec.zeros) st.zeros = true;
  return st;
}

export function isFresh(rec: ExtentRecord, copy: CopyRecord): boolean {
  return copy.generation === rec.generation;
}

export class ExtentMap {
  private readonly files = new Map<string, Map<number, ExtentState>>();
  private readonly fileRecords = new Map<string, FileRecord>();
  private readonly tierIds = new Map<string, number>();
  private readonly tierNames = new Map<number, string>();
  private readonly dirtyFiles = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** Every LevelDB write goes through this chain: batches must land in the order they were issued. */
  private writes: Promise<void> = Promise.resolve();
  /**
   * Files written since their last sync point: how many writes (in memory), and whether a durable
   * mark says so (a file with neither records nor copies needs none: it has nothing to disagree).
   */
  private readonly writtenFiles = new Map<string, { count: number; durable: boolean }>();
  /** Marks not yet durable, by file: a second write to the file waits for the first one's. */
  private readonly markSyncs = new Map<string, Promise<void>>();
  /** The next synced batch of marks, while it waits for the writes before it: new marks join it. */
  private markBatch: { ids: string[]; done: Promise<void> } | undefined;
  /** The boot id stored by the last setBootId (a previous mount's), if any. */
  storedBootId: string | undefined;
  private storedVolumeId: string | undefined;
  /** When the last whole scrub finished, by any mount of this volume; undefined before the first. */
  lastScrubbedAtMs: number | undefined;

  private constructor(private readonly db: Level<string, Buffer>, readonly flushDelayMs: number) {}

  static async open(dir: string, flushDelayMs = 500): Promise<ExtentMap> {
    await fs.mkdir(dir, { recursive: true });
    const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    const map = new ExtentMap(db, flushDelayMs);
    await map.load();
    return map;
  }

  private async load(): Promise<void> {
    for await (const [key, value] of this.db.iterator()) {
      if (key.startsWith(TIER_PREFIX)) {
        const id = value[0];
        this.tierIds.set(key.slice(TIER_PREFIX.length), id);
        this.tierNames.set(id, key.slice(TIER_PREFIX.length));
      } else if (key.startsWith(FILE_PREFIX)) {
        this.fileRecords.set(key.slice(FILE_PREFIX.length), JSON.parse(value.toString('utf8')) as FileRecord);
      } else if (key.startsWith(WRITTEN_FILE_PREFIX)) {
        this.writtenFiles.set(key.slice(WRITTEN_FILE_PREFIX.length), { count: 0, durable: true });
      } else if (key === BOOT_KEY) {
        this.storedBootId = value.toString('utf8');
      } else if (key === VOLUME_KEY) {
        this.storedVolumeId = value.toString('utf8');
      } else if (key === SCRUBBED_KEY) {
        this.lastScrubbedAtMs = Number(value.toString('utf8'));
      } else if (key.startsWith(EXTENT_PREFIX)) {
        const [fileId, idxHex] = key.slice(EXTENT_PREFIX.length).split('!');
        this.extentsOf(fileId, true).set(parseInt(idxHex, 16), loadedState(decodeExtentRecord(value)));
      }
    }
  }

  /** A stable small id for a tier name (persisted: copies refer to tiers by id). */
  async tierId(name: string): Promise<number> {
    const known = this.tierIds.get(name);
    if (known !== undefined) return known;
    let id = 0;
    while (this.tierNames.has(id)) id++;
    if (id > MAX_TIER_ID) throw new Error('too many tiers have been defined for this volume');
    await this.write([{ type: 'put', key: TIER_PREFIX + name, value: Buffer.from([id]) }]);
    this.tierIds.set(name, id);
    this.tierNames.set(id, name);
    return id;
  }

  tierName(id: number): string | undefined {
    return this.tierNames.get(id);
  }

  private extentsOf(fileId: string, create: true): Map<number, ExtentState>;
  private extentsOf(fileId: string, create: false): Map<number, ExtentState> | undefined;
  private extentsOf(fileId: string, create: boolean): Map<number, ExtentState> | undefined {
    let m = this.files.get(fileId);
    if (!m && create) {
      m = new Map();
      this.files.set(fileId, m);
    }
    return m;
  }

  get(fileId: string, index: number): ExtentRecord | undefined {
    return this.files.get(fileId)?.get(index);
  }

  /** Extents of a file that have records, in no particular order. */
  extents(fileId: string): ReadonlyMap<number, ExtentRecord> {
    return this.files.get(fileId) ?? new Map();
  }

  /** The file has records (copies now, or had them, or a write or copy made one). */
  hasRecords(fileId: string): boolean {
    return (this.files.get(fileId)?.size ?? 0) > 0;
  }

  fileIds(): IterableIterator<string> {
    return this.files.keys();
  }

  /**
   * Called before the bytes of extents [first, last] change on the live volume. Bumps their
   * generations; copies for which `keep` says true stay fresh (the caller patches them in place
   * before acknowledging), all others become stale. Resolves once no persisted record claims a
   * copy of these extents is fresh; rejects when that cannot be written, and then needs no endWrite.
   */
  async beginWrite(fileId: string, first: number, last: number, keep: (copy: CopyRecord, index: number) => boolean): Promise<CopyRecord[][]> {
    const extents = this.files.get(fileId);
    const kept: CopyRecord[][] = [];
    if (!extents) return kept;
    const withdraw: BatchOp[] = [];
    const begun: ExtentState[] = [];
    const withdrawn: ExtentState[] = [];
    for (let i = first; i <= last; i++) {
      const st = extents.get(i);
      if (!st) {
        kept.push([]);
        continue;
      }
      const wasFresh = st.copies.filter((c) => isFresh(st, c));
      st.generation++;
      st.written = true;
      st.zeros = false;
      st.writing++;
      begun.push(st);
      const keepNow = wasFresh.filter((c) => keep(c, i));
      for (const c of keepNow) c.generation = st.generation;
      kept.push(keepNow);
      if (st.persistedFresh) {
        // The withdrawn form: new generation, every copy stale.
        withdraw.push({ type: 'put', key: extentKey(fileId, i), value: encodeExtentRecord({ generation: st.generation, written: true, zeros: false, copies: st.copies.map((c) => ({ ...c, generation: Math.min(c.generation, st.generation - 1) })) }) });
        st.persistedFresh = false;
        withdrawn.push(st);
      }
      this.markDirty(fileId, st);
    }
    if (withdraw.length > 0) {
      try {
        await this.write(withdraw);
      } catch (err) {
        // Nothing may change the bytes now, and the disk still says fresh: the next write must
        // withdraw again, and no endWrite will come for this one. (The generations stay bumped,
        // which only keeps copies taken before from being published.)
        for (const st of withdrawn) st.persistedFresh = true;
        for (const st of begun) if (st.writing > 0) st.writing--;
        throw err;
      }
    }
    return kept;
  }

  /**
   * A write is between beginWrite and endWrite on the extent: its kept copies are being patched, so
   * their bytes and checksums may disagree without any damage.
   */
  isWriting(fileId: string, index: number): boolean {
    return (this.files.get(fileId)?.get(index)?.writing ?? 0) > 0;
  }

  /** The write begun by `beginWrite` on these extents is complete (copies patched or dropped). */
  endWrite(fileId: string, first: number, last: number): void {
    const extents = this.files.get(fileId);
    for (let i = first; i <= last; i++) {
      const st = extents?.get(i);
      if (st && st.writing > 0) st.writing--;
      // A flush that came during the write left the record for later: make sure a later one comes.
      if (st && st.dirty && st.writing === 0) this.markDirty(fileId, st);
    }
  }

  /**
   * The extent's current generation, creating an (unpersisted, copy-less) record if it has none,
   * so that writes from now on bump it: a background copy taken now can then tell whether a
   * write touched this very extent while it was being copied. `written`: the caller is a write
   * (after its beginWrite) that found no record: its bytes are this generation's.
   */
  ensureRecord(fileId: string, index: number, written = false): number {
    const known = this.files.get(fileId)?.get(index);
    if (known) return known.generation;
    const st = this.stateOf(fileId, index);
    st.written = written;
    return st.generation;
  }

  /** The extent's state, created (generation 0, no copies, unpersisted) if it has none. */
  private stateOf(fileId: string, index: number): ExtentState {
    const extents = this.extentsOf(fileId, true);
    let st = extents.get(index);
    if (!st) {
      st = { generation: 0, copies: [], persistedFresh: false, dirty: false, writing: 0 };
      extents.set(index, st);
    }
    return st;
  }

  /**
   * The bytes of an extent may change from now on without a write through the map (native writes
   * granted to it before anything wrote it): if it has a record, its generation is bumped, so that
   * a copy being taken of it now is refused. False, and nothing changed, when it has copies.
   */
  bumpUncopied(fileId: string, index: number): boolean {
    const st = this.files.get(fileId)?.get(index);
    if (!st) return true;
    if (st.copies.length > 0) return false;
    st.generation++;
    st.written = true;
    this.markDirty(fileId, st);
    return true;
  }

  /** Record a copy whose bytes are now durable on the tier, if the extent is still at `generation`. */
  async addCopy(fileId: string, index: number, copy: CopyRecord, expectedGeneration: number): Promise<boolean> {
    if (!this.files.get(fileId)?.has(index) && expectedGeneration !== 0) return false;
    const st = this.stateOf(fileId, index);
    if (st.generation !== expectedGeneration) return false;
    // concat, not push: an array grown by push keeps room for 16 more (~130 B per record).
    const added: CopyRecord = { tierId: copy.tierId, generation: st.generation, crc32: copy.crc32, sizeBytes: copy.sizeBytes, verified: true };
    st.copies = st.copies.filter((c) => c.tierId !== copy.tierId).concat([added]);
    await this.persistExtent(fileId, index, st);
    return true;
  }

  /** Forget a copy (its bytes were removed, or are about to be). */
  removeCopy(fileId: string, index: number, tierId: number): CopyRecord | undefined {
    const st = this.files.get(fileId)?.get(index);
    if (!st) return undefined;
    const c = st.copies.find((x) => x.tierId === tierId);
    if (!c) return undefined;
    st.copies = st.copies.filter((x) => x !== c);
    this.markDirty(fileId, st);
    this.onCopyRemoved?.(fileId, index, tierId);
    return c;
  }

  /**
   * Forget this copy only while the map still holds it: a caller that learnt of it before an
   * await (a read that failed, an invalidation) must not forget a copy made on that tier meanwhile
   * (addCopy records a new object).
   */
  removeThisCopy(fileId: string, index: number, copy: CopyRecord): boolean {
    const st = this.files.get(fileId)?.get(index);
    if (!st || !st.copies.includes(copy)) return false;
    return this.removeCopy(fileId, index, copy.tierId) !== undefined;
  }

  /** The map names a copy of the extent (fresh or not) on the tier. */
  hasCopyOn(fileId: string, index: number, tierId: number): boolean {
    return this.files.get(fileId)?.get(index)?.copies.some((c) => c.tierId === tierId) ?? false;
  }

  /** Told after any copy is forgotten (evicted, stale, failed a read, dropped): coverage re-queues its own. */
  onCopyRemoved: ((fileId: string, index: number, tierId: number) => void) | undefined;

  /** A kept copy was patched in place: its checksum is unknown until recomputed. */
  patched(fileId: string, index: number, copy: CopyRecord, sizeBytes: number): void {
    const st = this.files.get(fileId)?.get(index);
    if (!st) return;
    copy.crc32 = null;
    copy.sizeBytes = sizeBytes;
    copy.verified = true;
    this.markDirty(fileId, st);
  }

  /**
   * Failed over, the copies are the only home of an extent's data, so a write must not withdraw
   * them (after a crash nothing fresh would be left). Instead, before a copy is patched in place,
   * the checksum its persisted record claims is cleared and persisted: a half-patched copy must
   * not fail its check after a crash and be dropped.
   */
  async prepareShadowWrite(fileId: string, index: number): Promise<void> {
    const st = this.files.get(fileId)?.get(index);
    if (!st || !st.copies.some((c) => isFresh(st, c) && c.crc32 !== null)) return;
    for (const c of st.copies) if (isFresh(st, c)) c.crc32 = null;
    await this.persistExtent(fileId, index, st);
  }

  /**
   * A write made while failed over is on the copies of `tierIds` (patched, or written whole):
   * they become the extent's new generation, every other copy goes stale (returned, to discard).
   * Persisted before it resolves: the write may be acknowledged then.
   */
  async commitShadowWrite(fileId: string, index: number, tierIds: number[], sizeBytes: number): Promise<CopyRecord[]> {
    const st = this.stateOf(fileId, index);
    st.generation++;
    st.written = true;
    st.zeros = false;
    const stale = st.copies.filter((c) => !tierIds.includes(c.tierId));
    st.copies = tierIds.map((tierId) => ({ tierId, generation: st.generation, crc32: null, sizeBytes, verified: true }));
    await this.persistExtent(fileId, index, st);
    return stale;
  }

  /** Set the checksum of a fresh copy (computed after a patch made it unknown). */
  setChecksum(fileId: string, index: number, tierId: number, generation: number, crc32: number): void {
    const st = this.files.get(fileId)?.get(index);
    const c = st?.copies.find((x) => x.tierId === tierId && x.generation === generation);
    if (st && c) {
      c.crc32 = crc32;
      this.markDirty(fileId, st);
    }
  }

  /** Every copy of a file becomes stale (changed behind our back, or deleted). Returns them. */
  async invalidateFile(fileId: string): Promise<{ index: number; copy: CopyRecord }[]> {
    const extents = this.files.get(fileId);
    if (!extents) return [];
    const out: { index: number; copy: CopyRecord }[] = [];
    const batch: BatchOp[] = [];
    for (const [index, st] of extents) {
      for (const c of st.copies) if (isFresh(st, c)) out.push({ index, copy: c });
      st.generation++;
      // The live file's bytes are the truth now, and they were not written through the mount.
      st.written = false;
      st.zeros = false;
      batch.push({ type: 'put', key: extentKey(fileId, index), value: encodeExtentRecord(st) });
      st.persistedFresh = false;
    }
    await this.write(batch);
    return out;
  }

  /** Drop every record of a file (its last link is gone). */
  async dropFile(fileId: string): Promise<void> {
    const extents = this.files.get(fileId);
    this.files.delete(fileId);
    this.fileRecords.delete(fileId);
    this.dirtyFiles.delete(fileId);
    const batch: BatchOp[] = [{ type: 'del', key: FILE_PREFIX + fileId }];
    for (const index of extents?.keys() ?? []) batch.push({ type: 'del', key: extentKey(fileId, index) });
    await this.write(batch);
  }

  /** Extents at or beyond `fromIndex` lose their copies (the file is being cut there). */
  async truncateRecords(fileId: string, fromIndex: number): Promise<{ index: number; copy: CopyRecord }[]> {
    const extents = this.files.get(fileId);
    const out: { index: number; copy: CopyRecord }[] = [];
    if (!extents) return out;
    const withdraw: BatchOp[] = [];
    for (const [index, st] of extents) {
      if (index < fromIndex) continue;
      for (const c of st.copies) out.push({ index, copy: c });
      st.generation++;
      st.zeros = false;
      if (st.persistedFresh) {
        withdraw.push({ type: 'put', key: extentKey(fileId, index), value: encodeExtentRecord(st) });
        st.persistedFresh = false;
      }
      this.markDirty(fileId, st);
    }
    await this.write(withdraw);
    return out;
  }

  /**
   * These extents now hold only zeros, made so through the mount (after the live change,
   * which bumped their generations if they had records): recorded as such, with no bytes anywhere.
   * Persisted before it resolves. A write, or anything else that moves the generation, clears it.
   */
  async markZeros(fileId: string, indexes: readonly number[]): Promise<void> {
    const batch: BatchOp[] = [];
    for (const i of indexes) {
      const st = this.stateOf(fileId, i);
      st.zeros = true;
      st.written = true;
      batch.push(this.claim(fileId, i, st));
    }
    await this.write(batch);
  }

  fileRecord(fileId: string): FileRecord | undefined {
    return this.fileRecords.get(fileId);
  }

  async setFileRecord(fileId: string, rec: FileRecord): Promise<void> {
    this.fileRecords.set(fileId, rec);
    await this.write([{ type: 'put', key: FILE_PREFIX + fileId, value: Buffer.from(JSON.stringify(rec)) }]);
  }

  private async persistExtent(fileId: string, index: number, st: ExtentState): Promise<void> {
    await this.write([this.claim(fileId, index, st)]);
  }

  /**
   * The put of the extent's record as it is now. Its fresh claim counts from here, before the put
   * is queued, so that a write coming meanwhile withdraws it after.
   */
  private claim(fileId: string, index: number, st: ExtentState): BatchOp {
    st.persistedFresh = st.copies.some((c) => isFresh(st, c));
    st.dirty = false;
    return { type: 'put', key: extentKey(fileId, index), value: encodeExtentRecord(st) };
  }

  private markDirty(fileId: string, st: ExtentState): void {
    st.dirty = true;
    this.dirtyFiles.add(fileId);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        // A failed batch leaves its records due (flush re-arms this timer): the next one retries.
        this.flush().catch(() => undefined);
      }, this.flushDelayMs);
      this.flushTimer.unref();
    }
  }

  private write(ops: BatchOp[], sync = false): Promise<void> {
    if (ops.length === 0) return this.writes;
    const next = this.writes.then(() => this.db.batch(ops, { sync }));
    // Keep the chain alive after a failure; the caller still sees the error.
    this.writes = next.catch(() => undefined);
    return next;
  }

  /** Persist every record changed since the last flush (in one batch). */
  async flush(): Promise<void> {
    const batch: BatchOp[] = [];
    const flushed: [string, ExtentState][] = [];
    for (const fileId of this.dirtyFiles) {
      for (const [index, st] of this.files.get(fileId) ?? []) {
        if (!st.dirty) continue;
        if (st.writing > 0) {
          this.dirtyFiles.add(fileId);
          continue;
        }
        flushed.push([fileId, st]);
        batch.push(this.claim(fileId, index, st));
      }
    }
    this.dirtyFiles.clear();
    for (const [fileId, extents] of this.files) {
      for (const st of extents.values()) if (st.dirty && st.writing > 0) this.dirtyFiles.add(fileId);
    }
    try {
      await this.write(batch);
    } catch (err) {
      // Not written: the disk may still call these copies fresh, so the next write must withdraw
      // them first (as beginWrite does for a record persisted fresh), and the records stay due.
      for (const [fileId, st] of flushed) {
        st.persistedFresh = true;
        this.markDirty(fileId, st);
      }
      throw err;
    }
  }

  /**
   * Persist every changed record, then make all that LevelDB holds durable. Its batches are not
   * synced (a kill -9 keeps them; an fsync each would cost every write), so a power loss could take
   * the last ones, among them the withdrawal of a fresh claim that preceded a write's live bytes:
   * after a reboot an older record would then serve a stale copy of bytes the application had
   * fsynced. A file's fsync through the mount calls this. LevelDB appends to one log in order, so
   * one synced write makes every write before it durable too.
   */
  async sync(): Promise<void> {
    await this.flush();
    await this.write([{ type: 'put', key: SYNC_KEY, value: Buffer.alloc(0) }], true);
  }

  /**
   * Called before a write through the mount changes a file's bytes or copies. Between sync points
   * the live file, its copies and these records each reach the disk on their own, so a power loss
   * can leave a copy (or a record calling it fresh) that disagrees with the live file. The first
   * write to a file after a sync point therefore makes a durable mark first (one synced batch,
   * shared by the marks that arrive while it waits); later writes only count. After a power loss
   * the marked files' copies are dropped (src/volume/power-loss.ts). Undefined when there is
   * nothing to wait for. `durable` false: only counted (the file has no records; a copy taken of
   * it later syncs the live file first, see isWritten).
   */
  markWritten(fileId: string, durable = true): Promise<void> | undefined {
    const w = this.writtenFiles.get(fileId);
    if (w) w.count++;
    else this.writtenFiles.set(fileId, { count: 1, durable: false });
    if (!durable || w?.durable) return this.markSyncs.get(fileId);
    (this.writtenFiles.get(fileId) as { durable: boolean }).durable = true;
    let batch = this.markBatch;
    if (!batch) {
      const ids: string[] = [];
      // Runs once the writes before it landed; marks made until then join it.
      const done = this.writes.then(() => {
        if (this.markBatch?.ids === ids) this.markBatch = undefined;
        return this.db.batch(ids.map((id) => ({ type: 'put' as const, key: WRITTEN_FILE_PREFIX + id, value: NOTHING })), { sync: true });
      });
      this.writes = done.catch(() => undefined);
      batch = { ids, done };
      this.markBatch = batch;
    }
    batch.ids.push(fileId);
    const madeDurable = batch.done.then(
      () => {
        this.markSyncs.delete(fileId);
      },
      (err: unknown) => {
        // Not durable: the next write must try again.
        this.markSyncs.delete(fileId);
        const failed = this.writtenFiles.get(fileId);
        if (failed) failed.durable = false;
        throw err;
      },
    );
    this.markSyncs.set(fileId, madeDurable);
    return madeDurable;
  }

  /** The files written since their last sync point and their write counts now, for a sync point to clear afterwards. */
  writtenSnapshot(): Map<string, number> {
    return new Map([...this.writtenFiles].map(([id, w]) => [id, w.count]));
  }

  /** How many writes marked the file since its last sync point (undefined: none). */
  writtenCount(fileId: string): number | undefined {
    return this.writtenFiles.get(fileId)?.count;
  }

  /** Files with a durable mark (after a power loss: the files whose copies cannot be trusted). */
  markedFiles(): string[] {
    return [...this.writtenFiles].filter(([, w]) => w.durable).map(([id]) => id);
  }

  /** The file was written through the mount since its last sync point: its live bytes may not be durable yet. */
  isWritten(fileId: string): boolean {
    return this.writtenFiles.has(fileId);
  }

  /**
   * Everything written before `snapshot` was taken is durable now (a sync point): the marks of
   * files not written since go. Not synced: a removal lost to a crash only drops copies needlessly.
   */
  async clearWritten(snapshot: ReadonlyMap<string, number>): Promise<void> {
    const ops: BatchOp[] = [];
    for (const [id, count] of snapshot) {
      const w = this.writtenFiles.get(id);
      if (!w || w.count !== count || this.markSyncs.has(id)) continue;
      this.writtenFiles.delete(id);
      if (w.durable) ops.push({ type: 'del', key: WRITTEN_FILE_PREFIX + id });
    }
    await this.write(ops);
  }

  /** Remember the machine's boot id (synced): the next open can tell whether the machine restarted. */
  async setBootId(bootId: string): Promise<void> {
    await this.write([{ type: 'put', key: BOOT_KEY, value: Buffer.from(bootId, 'utf8') }], true);
  }

  /**
   * This volume's identity, made (and synced) at its first mount: tiers are claimed with it, so that
   * another volume's mount cannot take this one's copies for its own crash leftovers.
   */
  async volumeId(): Promise<string> {
    if (this.storedVolumeId === undefined) {
      const id = randomUUID();
      await this.write([{ type: 'put', key: VOLUME_KEY, value: Buffer.from(id, 'utf8') }], true);
      this.storedVolumeId = id;
    }
    return this.storedVolumeId;
  }

  /** Remember when a whole scrub finished: the next one is due an interval after it, across remounts. */
  async setLastScrubbed(atMs: number): Promise<void> {
    await this.write([{ type: 'put', key: SCRUBBED_KEY, value: Buffer.from(String(atMs), 'utf8') }]);
    this.lastScrubbedAtMs = atMs;
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flush();
    await this.db.close();
  }

  /** Bytes held on each tier id, over all copies (fresh or not: stale bytes still take space). */
  usedBytesByTier(): Map<number, number> {
    const used = new Map<number, number>();
    for (const extents of this.files.values()) {
      for (const st of extents.values()) {
        for (const c of st.copies) used.set(c.tierId, (used.get(c.tierId) ?? 0) + c.sizeBytes);
      }
    }
    return used;
  }
}
