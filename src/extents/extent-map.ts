/**
 * The extent map: per file and extent, the current generation and which tiers hold which
 * generation of it. A small typed layer over LevelDB; in memory, every record is held in compact
 * rows (ExtentTable), and what `get` returns is a snapshot of one.
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
import { ExtentState, ExtentTable } from './extent-table';

export type { CopyRecord, ExtentRecord } from './record-codec';

/** What the map remembers of a live file, to notice changes made behind the mount's back. */
export interface FileRecord {
  sizeBytes: number;
  mtimeMs: number;
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

function loadedState(rec: ExtentRecord): ExtentState {
  return { ...rec, persistedFresh: true, dirty: false, writing: 0 };
}

function newState(): ExtentState {
  return { generation: 0, copies: [], persistedFresh: false, dirty: false, writing: 0 };
}

/**
 * A file's records as a read-only map. Each access reads the table, so a record got from it is a
 * snapshot (see ExtentTable).
 */
export interface ExtentRecords extends Iterable<[number, ExtentRecord]> {
  readonly size: number;
  get(index: number): ExtentRecord | undefined;
  keys(): Iterable<number>;
  values(): Iterable<ExtentRecord>;
}

class FileRecords implements ExtentRecords {
  constructor(private readonly table: ExtentTable, private readonly fileId: string) {}

  get size(): number {
    return this.table.count(this.fileId);
  }

  get(index: number): ExtentRecord | undefined {
    return this.table.get(this.fileId, index);
  }

  keys(): Iterable<number> {
    return this.table.indexes(this.fileId);
  }

  *values(): Generator<ExtentRecord> {
    for (const [, rec] of this) yield rec;
  }

  *[Symbol.iterator](): Generator<[number, ExtentRecord]> {
    for (const index of this.table.indexes(this.fileId)) {
      const rec = this.table.get(this.fileId, index);
      if (rec) yield [index, rec];
    }
  }
}

export function isFresh(rec: ExtentRecord, copy: CopyRecord): boolean {
  return copy.generation === rec.generation;
}

export class ExtentMap {
  private readonly table = new ExtentTable();
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
        this.table.set(fileId, parseInt(idxHex, 16), loadedState(decodeExtentRecord(value)));
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

  /** The extent's record now: a snapshot, which later changes to the map do not reach. */
  get(fileId: string, index: number): ExtentRecord | undefined {
    return this.table.get(fileId, index);
  }

  /** Extents of a file that have records, in no particular order. */
  extents(fileId: string): ExtentRecords {
    return new FileRecords(this.table, fileId);
  }

  /** The file has records (copies now, or had them, or a write or copy made one). */
  hasRecords(fileId: string): boolean {
    return this.table.count(fileId) > 0;
  }

  fileIds(): IterableIterator<string> {
    return this.table.fileIds();
  }

  /**
   * Called before the bytes of extents [first, last] change on the live volume. Bumps their
   * generations; copies for which `keep` says true stay fresh (the caller patches them in place
   * before acknowledging), all others become stale. Resolves once no persisted record claims a
   * copy of these extents is fresh; rejects when that cannot be written, and then needs no endWrite.
   */
  async beginWrite(fileId: string, first: number, last: number, keep: (copy: CopyRecord, index: number) => boolean): Promise<CopyRecord[][]> {
    const kept: CopyRecord[][] = [];
    if (!this.hasRecords(fileId)) return kept;
    const withdraw: BatchOp[] = [];
    const begun: number[] = [];
    const withdrawn: number[] = [];
    for (let i = first; i <= last; i++) {
      const st = this.table.get(fileId, i);
      if (!st) {
        kept.push([]);
        continue;
      }
      const wasFresh = st.copies.filter((c) => isFresh(st, c));
      st.generation++;
      st.written = true;
      st.zeros = false;
      st.writing++;
      begun.push(i);
      const keepNow = wasFresh.filter((c) => keep(c, i));
      for (const c of keepNow) c.generation = st.generation;
      kept.push(keepNow);
      if (st.persistedFresh) {
        // The withdrawn form: new generation, every copy stale.
        withdraw.push({ type: 'put', key: extentKey(fileId, i), value: encodeExtentRecord({ generation: st.generation, written: true, zeros: false, copies: st.copies.map((c) => ({ ...c, generation: Math.min(c.generation, st.generation - 1) })) }) });
        st.persistedFresh = false;
        withdrawn.push(i);
      }
      this.save(fileId, i, st);
    }
    if (withdraw.length > 0) {
      try {
        await this.write(withdraw);
      } catch (err) {
        // Nothing may change the bytes now, and the disk still says fresh: the next write must
        // withdraw again, and no endWrite will come for this one. (The generations stay bumped,
        // which only keeps copies taken before from being published.)
        for (const i of withdrawn) this.update(fileId, i, (st) => (st.persistedFresh = true));
        for (const i of begun) this.update(fileId, i, (st) => (st.writing = Math.max(0, st.writing - 1)));
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
    return this.table.writing(fileId, index) > 0;
  }

  /** The write begun by `beginWrite` on these extents is complete (copies patched or dropped). */
  endWrite(fileId: string, first: number, last: number): void {
    for (let i = first; i <= last; i++) {
      const st = this.table.get(fileId, i);
      if (!st) continue;
      if (st.writing > 0) st.writing--;
      // A flush that came during the write left the record for later: make sure a later one comes.
      if (st.dirty && st.writing === 0) this.save(fileId, i, st);
      else this.table.set(fileId, i, st);
    }
  }

  /**
   * The extent's current generation, creating an (unpersisted, copy-less) record if it has none,
   * so that writes from now on bump it: a background copy taken now can then tell whether a
   * write touched this very extent while it was being copied. `written`: the caller is a write
   * (after its beginWrite) that found no record: its bytes are this generation's.
   */
  ensureRecord(fileId: string, index: number, written = false): number {
    const known = this.table.get(fileId, index);
    if (known) return known.generation;
    const st = newState();
    st.written = written;
    this.table.set(fileId, index, st);
    return st.generation;
  }

  /**
   * The bytes of an extent may change from now on without a write through the map (native writes
   * granted to it before anything wrote it): if it has a record, its generation is bumped, so that
   * a copy being taken of it now is refused. False, and nothing changed, when it has copies.
   */
  bumpUncopied(fileId: string, index: number): boolean {
    const st = this.table.get(fileId, index);
    if (!st) return true;
    if (st.copies.length > 0) return false;
    st.generation++;
    st.written = true;
    this.save(fileId, index, st);
    return true;
  }

  /** Record a copy whose bytes are now durable on the tier, if the extent is still at `generation`. */
  async addCopy(fileId: string, index: number, copy: CopyRecord, expectedGeneration: number): Promise<boolean> {
    const st = this.table.get(fileId, index) ?? newState();
    if (st.generation !== expectedGeneration) return false;
    const added: CopyRecord = { tierId: copy.tierId, generation: st.generation, crc32: copy.crc32, sizeBytes: copy.sizeBytes, verified: true };
    st.copies = [...st.copies.filter((c) => c.tierId !== copy.tierId), added];
    await this.persistExtent(fileId, index, st);
    return true;
  }

  /** Forget a copy (its bytes were removed, or are about to be). */
  removeCopy(fileId: string, index: number, tierId: number): CopyRecord | undefined {
    const st = this.table.get(fileId, index);
    const c = st?.copies.find((x) => x.tierId === tierId);
    if (!st || !c) return undefined;
    st.copies = st.copies.filter((x) => x !== c);
    this.save(fileId, index, st);
    this.onCopyRemoved?.(fileId, index, tierId);
    return c;
  }

  /**
   * Forget this copy only while the map still holds it: a caller that learnt of it before an
   * await (a read that failed, an invalidation) must not forget a copy made on that tier meanwhile
   * (addCopy records another copy, with another serial).
   */
  removeThisCopy(fileId: string, index: number, copy: CopyRecord): boolean {
    if (!this.currentCopy(fileId, index, copy)) return false;
    return this.removeCopy(fileId, index, copy.tierId) !== undefined;
  }

  /**
   * This very copy as the map holds it now (its checksum, size or generation may have changed), or
   * undefined once the map forgot it: a copy made again on its tier since is another copy.
   */
  currentCopy(fileId: string, index: number, copy: CopyRecord): CopyRecord | undefined {
    return this.heldCopy(this.table.get(fileId, index), copy);
  }

  private heldCopy(st: ExtentState | undefined, copy: CopyRecord): CopyRecord | undefined {
    return copy.serial === undefined ? undefined : st?.copies.find((c) => c.serial === copy.serial && c.tierId === copy.tierId);
  }

  /** The copy's bytes were checked against its checksum (not persisted: a remount checks again). */
  markVerified(fileId: string, index: number, copy: CopyRecord): void {
    const st = this.table.get(fileId, index);
    const held = this.heldCopy(st, copy);
    if (!st || !held || held.verified) return;
    held.verified = true;
    this.table.set(fileId, index, st);
  }

  /** Every copy of the file counts as unchecked again, as after a remount. */
  forgetVerified(fileId: string): void {
    for (const index of [...this.table.indexes(fileId)]) this.update(fileId, index, (st) => st.copies.forEach((c) => (c.verified = false)));
  }

  /** The map names a copy of the extent (fresh or not) on the tier. */
  hasCopyOn(fileId: string, index: number, tierId: number): boolean {
    return this.table.get(fileId, index)?.copies.some((c) => c.tierId === tierId) ?? false;
  }

  /** Told after any copy is forgotten (evicted, stale, failed a read, dropped): coverage re-queues its own. */
  onCopyRemoved: ((fileId: string, index: number, tierId: number) => void) | undefined;

  /** A kept copy was patched in place: its checksum is unknown until recomputed. */
  patched(fileId: string, index: number, copy: CopyRecord, sizeBytes: number): void {
    const st = this.table.get(fileId, index);
    const held = this.heldCopy(st, copy);
    if (!st || !held) return;
    held.crc32 = null;
    held.sizeBytes = sizeBytes;
    held.verified = true;
    this.save(fileId, index, st);
  }

  /**
   * Failed over, the copies are the only home of an extent's data, so a write must not withdraw
   * them (after a crash nothing fresh would be left). Instead, before a copy is patched in place,
   * the checksum its persisted record claims is cleared and persisted: a half-patched copy must
   * not fail its check after a crash and be dropped.
   */
  async prepareShadowWrite(fileId: string, index: number): Promise<void> {
    const st = this.table.get(fileId, index);
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
    const st = this.table.get(fileId, index) ?? newState();
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
    const st = this.table.get(fileId, index);
    const c = st?.copies.find((x) => x.tierId === tierId && x.generation === generation);
    if (st && c) {
      c.crc32 = crc32;
      this.save(fileId, index, st);
    }
  }

  /** Every copy of a file becomes stale (changed behind our back, or deleted). Returns them. */
  async invalidateFile(fileId: string): Promise<{ index: number; copy: CopyRecord }[]> {
    const out: { index: number; copy: CopyRecord }[] = [];
    const batch: BatchOp[] = [];
    for (const index of [...this.table.indexes(fileId)]) {
      const st = this.table.get(fileId, index) as ExtentState;
      for (const c of st.copies) if (isFresh(st, c)) out.push({ index, copy: c });
      st.generation++;
      // The live file's bytes are the truth now, and they were not written through the mount.
      st.written = false;
      st.zeros = false;
      batch.push({ type: 'put', key: extentKey(fileId, index), value: encodeExtentRecord(st) });
      st.persistedFresh = false;
      this.table.set(fileId, index, st);
    }
    await this.write(batch);
    return out;
  }

  /** Drop every record of a file (its last link is gone). */
  async dropFile(fileId: string): Promise<void> {
    const batch: BatchOp[] = [{ type: 'del', key: FILE_PREFIX + fileId }];
    for (const index of this.table.indexes(fileId)) batch.push({ type: 'del', key: extentKey(fileId, index) });
    this.table.dropFile(fileId);
    this.fileRecords.delete(fileId);
    this.dirtyFiles.delete(fileId);
    await this.write(batch);
  }

  /** Extents at or beyond `fromIndex` lose their copies (the file is being cut there). */
  async truncateRecords(fileId: string, fromIndex: number): Promise<{ index: number; copy: CopyRecord }[]> {
    const out: { index: number; copy: CopyRecord }[] = [];
    const withdraw: BatchOp[] = [];
    for (const index of [...this.table.indexes(fileId)]) {
      if (index < fromIndex) continue;
      const st = this.table.get(fileId, index) as ExtentState;
      for (const c of st.copies) out.push({ index, copy: c });
      st.generation++;
      st.zeros = false;
      if (st.persistedFresh) {
        withdraw.push({ type: 'put', key: extentKey(fileId, index), value: encodeExtentRecord(st) });
        st.persistedFresh = false;
      }
      this.save(fileId, index, st);
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
      const st = this.table.get(fileId, i) ?? newState();
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
   * The put of the extent's record as it is now (stored so). Its fresh claim counts from here,
   * before the put is queued, so that a write coming meanwhile withdraws it after.
   */
  private claim(fileId: string, index: number, st: ExtentState): BatchOp {
    st.persistedFresh = st.copies.some((c) => isFresh(st, c));
    st.dirty = false;
    this.table.set(fileId, index, st);
    return { type: 'put', key: extentKey(fileId, index), value: encodeExtentRecord(st) };
  }

  /** Store a changed record, to be persisted by the next flush. */
  private save(fileId: string, index: number, st: ExtentState): void {
    st.dirty = true;
    this.table.set(fileId, index, st);
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

  /** Change a record in place, if it exists (no flush: for changes that are not to be persisted, or are already). */
  private update(fileId: string, index: number, change: (st: ExtentState) => void): void {
    const st = this.table.get(fileId, index);
    if (!st) return;
    change(st);
    this.table.set(fileId, index, st);
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
    const flushed: [string, number][] = [];
    const writing = new Set<string>();
    for (const fileId of this.dirtyFiles) {
      for (const index of this.table.indexes(fileId, true)) {
        const st = this.table.get(fileId, index) as ExtentState;
        if (st.writing > 0) {
          writing.add(fileId);
          continue;
        }
        flushed.push([fileId, index]);
        batch.push(this.claim(fileId, index, st));
      }
    }
    // Records left for the writes still on come in a later flush (endWrite schedules one).
    this.dirtyFiles.clear();
    for (const fileId of writing) this.dirtyFiles.add(fileId);
    try {
      await this.write(batch);
    } catch (err) {
      // Not written: the disk may still call these copies fresh, so the next write must withdraw
      // them first (as beginWrite does for a record persisted fresh), and the records stay due.
      for (const [fileId, index] of flushed) {
        const st = this.table.get(fileId, index);
        if (!st) continue;
        st.persistedFresh = true;
        this.save(fileId, index, st);
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
    for (const fileId of this.table.fileIds()) {
      for (const [, rec] of this.extents(fileId)) {
        for (const c of rec.copies) used.set(c.tierId, (used.get(c.tierId) ?? 0) + c.sizeBytes);
      }
    }
    return used;
  }
}
