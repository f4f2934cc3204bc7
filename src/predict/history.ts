import { Level } from 'level';
import type { AbstractLevel } from 'abstract-level';
import type { ExtentRef } from '../tiers/tier';
import { ShadowfsError } from '../util/errors';
import {
  addNeighbourAccess,
  DEFAULT_EXTENT_STATS_OPTIONS,
  shortCountAt,
  ExtentTable,
  fromPersisted,
  recordExtentAccess,
  toPersisted,
  type ExtentStats,
  type ExtentStatsOptions,
  type PersistedExtentStats,
} from './extent-stats';
import { HintBook, type HasHints } from './hints';
import { DEFAULT_RETENTION, VolumeSeries, type IoBucket, type Resolution, type SeriesRetention } from './volume-series';

/**
 * Workload history of one volume: the I/O time series, the per-extent access history and the
 * application hints, in memory with write-behind persistence to LevelDB.
 *
 * Give it a directory (it opens its own LevelDB) or a sublevel of the volume's metadata database
 * with string keys and utf8 values (`db.sublevel('predict')`). Nothing here is needed for
 * correctness of the data (rule 1 and 2 never depend on it), so persistence is a periodic
 * `flush()` of what changed, not a write per I/O; a crash loses at most one flush interval of
 * statistics.
 *
 * Bounded: the series are fixed rings (see VolumeSeries), the extent table drops its coldest tenth
 * when it reaches `maxExtents`, hints are capped (HintBook); deleted buckets and extents are
 * deleted from the database at the next flush.
 */
export type StringLevel = AbstractLevel<string | Buffer | Uint8Array, string, string>;

export interface WorkloadHistoryOptions {
  retention?: SeriesRetention;
  maxExtents?: number;
  extentStats?: Partial<ExtentStatsOptions>;
}

export const DEFAULT_MAX_EXTENTS = 250_000;

const RES_KEY: Record<Resolution, string> = { second: 's', minute: 'm', hour: 'h' };
const BUCKET_DIGITS = 14;
const SCHEMA_VERSION = 1;

function bucketKey(res: Resolution, n: number): string {
  return `s!${RES_KEY[res]}!${String(n).padStart(BUCKET_DIGITS, '0')}`;
}
function extentKey(ref: ExtentRef): string {
  return `e!${encodeURIComponent(ref.fileId)}!${ref.index}`;
}

export interface ExtentAccessResult {
  stats: ExtentStats;
  /** The access started a new session (the period estimate may have changed). */
  newSession: boolean;
}

export class WorkloadHistory implements HasHints {
  readonly series: VolumeSeries;
  readonly extents: ExtentTable;
  hints = new HintBook();
  readonly statsOptions: ExtentStatsOptions;
  private hintsVersionSaved = 0;

  private constructor(
    options: WorkloadHistoryOptions,
    private readonly db: StringLevel | undefined,
    private readonly ownsDb: boolean,
  ) {
    this.series = new VolumeSeries(options.retention ?? DEFAULT_RETENTION);
    this.statsOptions = { ...DEFAULT_EXTENT_STATS_OPTIONS, ...options.extentStats };
    this.extents = new ExtentTable(options.maxExtents ?? DEFAULT_MAX_EXTENTS, this.statsOptions.sessionGapsUs.length);
  }

  /** History kept only in memory (offline replay, tests). */
  static inMemory(options: WorkloadHistoryOptions = {}): WorkloadHistory {
    return new WorkloadHistory(options, undefined, false);
  }

  /** Open (or create) persisted history in a directory or a LevelDB sublevel. */
  static async open(location: string | StringLevel, options: WorkloadHistoryOptions = {}): Promise<WorkloadHistory> {
    let db: StringLevel;
    let owns = false;
    if (typeof location === 'string') {
      const level = new Level<string, string>(location);
      try {
        await level.open();
      } catch (err) {
        const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
        throw new ShadowfsError(`cannot open workload history at ${location}: ${cause}`);
      }
      db = level;
      owns = true;
    } else {
      db = location;
      if (db.status === 'opening') await db.open();
    }
    const h = new WorkloadHistory(options, db, owns);
    await h.load();
    return h;
  }

  recordRequest(timeUs: number, op: 'R' | 'W', sizeBytes: number, latencyUs?: number): void {
    this.series.addRequest(timeUs, op, sizeBytes, latencyUs);
  }

  recordBucket(timeUs: number, bucket: Readonly<IoBucket>): void {
    this.series.add(timeUs, bucket);
  }

  recordExtentAccess(ref: ExtentRef, timeUs: number, isScan: boolean): ExtentAccessResult {
    const before = this.extents.size;
    const stats = this.extents.upsert(ref, timeUs);
    const created = this.extents.size > before || stats.accesses === 0;
    const newSession = recordExtentAccess(stats, timeUs, isScan, this.statsOptions);
    const r = this.statsOptions.neighbourRadius;
    if (r > 0) {
      const file = this.extents.file(ref.fileId);
      const w = isScan ? this.statsOptions.scanWeight : 1;
      for (let d = -r; d <= r; d++) {
        if (d === 0) continue;
        const n = file?.get(ref.index + d);
        if (!n) continue;
        addNeighbourAccess(n, timeUs, w);
        // A new entry starts with its neighbours' current short counts.
        if (created) addNeighbourAccess(stats, timeUs, shortCountAt(n, timeUs));
      }
    }
    return { stats, newSession };
  }

  /** Forget a file's extents (the file was deleted or replaced out of band). */
  forgetFile(fileId: string): void {
    this.extents.deleteFile(fileId);
  }

  /** Persist what changed since the last flush. A no-op for in-memory history. */
  async flush(): Promise<void> {
    const db = this.db;
    if (!db) return;
    const ops: Array<{ type: 'put'; key: string; value: string } | { type: 'del'; key: string }> = [];
    for (const res of ['second', 'minute', 'hour'] as const) {
      for (const { n, bucket } of this.series.ring(res).takeDirty()) {
        ops.push({ type: 'put', key: bucketKey(res, n), value: JSON.stringify(bucketToArray(bucket)) });
      }
    }
    for (const s of this.extents.values()) {
      if (!s.dirty) continue;
      s.dirty = false;
      ops.push({ type: 'put', key: extentKey(s), value: JSON.stringify(toPersisted(s), finiteReplacer) });
    }
    for (const ref of this.extents.takeRemoved()) ops.push({ type: 'del', key: extentKey(ref) });
    if (this.hints.version !== this.hintsVersionSaved) {
      ops.push({ type: 'put', key: 'hints', value: JSON.stringify(this.hints.toJSON(), finiteReplacer) });
      this.hintsVersionSaved = this.hints.version;
    }
    ops.push({ type: 'put', key: 'meta', value: JSON.stringify({ schema: SCHEMA_VERSION }) });
    // Chunked so one flush after a long outage does not build a giant batch in memory.
    for (let i = 0; i < ops.length; i += 10_000) await db.batch(ops.slice(i, i + 10_000));
    // Buckets that fell out of a ring's retention: one range delete per resolution.
    for (const res of ['second', 'minute', 'hour'] as const) {
      const oldest = this.series.ring(res).oldestBucket;
      if (oldest > 0) await db.clear({ gte: bucketKey(res, 0), lt: bucketKey(res, oldest) });
    }
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.db && this.ownsDb) await this.db.close();
  }

  private async load(): Promise<void> {
    const db = this.db;
    if (!db) return;
    const meta = await db.get('meta');
    if (meta !== undefined) {
      const schema = (JSON.parse(meta) as { schema?: number }).schema;
      if (schema !== SCHEMA_VERSION) throw new ShadowfsError(`workload history has schema ${schema}, this shadowfs reads ${SCHEMA_VERSION}`);
    }
    for (const res of ['second', 'minute', 'hour'] as const) {
      const prefix = `s!${RES_KEY[res]}!`;
      const ring = this.series.ring(res);
      for await (const [key, value] of db.iterator({ gte: prefix, lt: `${prefix}~` })) {
        const n = Number(key.slice(prefix.length));
        ring.set(n, arrayToBucket(JSON.parse(value) as number[]));
      }
    }
    for await (const value of db.values({ gte: 'e!', lt: 'e!~' })) {
      const p = JSON.parse(value, infiniteReviver) as PersistedExtentStats;
      if (this.extents.size >= this.extents.maxExtents) break;
      this.extents.insert(fromPersisted(p));
    }
    const hints = await db.get('hints');
    if (hints !== undefined) {
      this.hints = HintBook.fromJSON(JSON.parse(hints, infiniteReviver) as { hints?: unknown; pins?: unknown });
      this.hintsVersionSaved = this.hints.version;
    }
  }
}

function bucketToArray(b: IoBucket): number[] {
  return [b.readOps, b.writeOps, b.readBytes, b.writeBytes, b.latencySumUs, b.latencyCount];
}
function arrayToBucket(a: number[]): IoBucket {
  return { readOps: a[0] ?? 0, writeOps: a[1] ?? 0, readBytes: a[2] ?? 0, writeBytes: a[3] ?? 0, latencySumUs: a[4] ?? 0, latencyCount: a[5] ?? 0 };
}

/** JSON has no infinities: encode them as strings and restore them on load. */
function finiteReplacer(_key: string, value: unknown): unknown {
  if (value === Number.POSITIVE_INFINITY) return '+inf';
  if (value === Number.NEGATIVE_INFINITY) return '-inf';
  return value;
}
function infiniteReviver(_key: string, value: unknown): unknown {
  if (value === '+inf') return Number.POSITIVE_INFINITY;
  if (value === '-inf') return Number.NEGATIVE_INFINITY;
  return value;
}
