/**
 * The shadow manager: the one place that moves bytes between the live volume and the tiers.
 * Policies ask for copies; this runs them in the background, one extent at a time, so a
 * foreground request never waits behind more than one extent copy (ARCHITECTURE rule 3).
 *
 * A copy is published only if no write touched the file while it was taken (write epoch), and
 * only after its bytes are durable on the tier (the tier's put), so a stale copy is never served.
 */
import { ExtentMap, isFresh } from '../extents/extent-map';
import { TierSet, VolumeTier } from '../tiers/tier-set';
import type { ShadowTier } from '../tiers/tier';
import { CopyLru, type CopyRef } from './copy-lru';
import { OpenFile } from '../volume/open-files';
import { fsyncFd, preadFull } from '../util/fd-io';
import { crc32 } from 'node:zlib';
import { Logger } from '../util/log';
import { Pacer } from '../util/pacer';

interface CopyJob {
  file: OpenFile;
  index: number;
  tierId: number;
  /** Migration: read the bytes from this tier's fresh copy (else from the live file). */
  fromTierId?: number;
  done?: (published: boolean) => void;
}

export interface ShadowManagerOptions {
  /** Bounded queue: requests beyond it are dropped (the policy asks again later). */
  maxQueuedCopies: number;
  concurrentCopies: number;
  /** Background copy bandwidth, so foreground I/O keeps the device. */
  maxBytesPerSec: number;
}

export interface ShadowCounters {
  copies: number;
  copyBytes: number;
  discardedCopies: number;
  evictions: number;
  failedCopies: number;
  /** Copies moved to another tier (demotions): copied there, then dropped here. */
  migrations: number;
  /** Whole copies made by writes to extents that had none to patch (see storeWrittenCopy). */
  writtenCopies: number;
}

const key = (tierId: number, fileId: string, index: number): string => `${tierId}:${fileId}:${index}`;

const FOREGROUND_QUIET_MS = 20;
const YIELD_MAX_MS = 250;

export class ShadowManager {
  readonly counters: ShadowCounters = { copies: 0, copyBytes: 0, discardedCopies: 0, evictions: 0, failedCopies: 0, migrations: 0, writtenCopies: 0 };
  private readonly queue: CopyJob[] = [];
  private readonly queued = new Set<string>();
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  /** Per tier, copies in least-recently-read order (~32 B per copy: see CopyLru). */
  private readonly lru = new Map<number, CopyLru>();
  private closed = false;
  /** Keys of the copies running now (queued ones and ones a write makes), how many each: their put may be in flight. */
  private readonly copying = new Map<string, number>();
  /** Keys whose bytes were to go while their copy ran: removed once it ends, unless it published. */
  private readonly removeAfterCopy = new Set<string>();
  /** Per tier, copies to it queued or running (written copies too) and removals from it: what idleFor waits out. */
  private readonly copiesTo = new Map<number, number>();
  private readonly tierIdleWaiters = new Map<number, (() => void)[]>();

  constructor(
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    private readonly extentSizeBytes: number,
    private readonly options: ShadowManagerOptions,
    private readonly log: Logger,
  ) {
    for (const fileId of map.fileIds()) {
      for (const [index, rec] of map.extents(fileId)) {
        for (const c of rec.copies) this.touch(c.tierId, fileId, index);
      }
    }
  }

  /** Note a read of a copy, for eviction order. */
  touch(tierId: number, fileId: string, index: number): void {
    let l = this.lru.get(tierId);
    if (!l) {
      l = new CopyLru();
      this.lru.set(tierId, l);
    }
    l.touch(fileId, index);
  }

  /** Set by the volume: a pinned or hinted copy that eviction must leave alone. */
  isProtected: (tierName: string, fileId: string, index: number) => boolean = () => false;

  /** Tiers whose copies are never evicted to make room (the coverage tier). */
  readonly protectedTiers = new Set<number>();
  /** Keeps background copies under maxBytesPerSec on average (read at each copy: a reload applies). */
  private readonly pacer = new Pacer(() => this.options.maxBytesPerSec);
  /** Bytes of copies being written, by tier: counted as used when making room. */
  private readonly reserved = new Map<number, number>();

  /** A live change of copy bandwidth or parallelism (config reload); takes effect with the next copy. */
  setCopyLimits(limits: Partial<Pick<ShadowManagerOptions, 'concurrentCopies' | 'maxBytesPerSec'>>): void {
    Object.assign(this.options, limits);
    this.pump();
  }

  queuedCopies(): number {
    return this.queue.length + this.running;
  }

  /**
   * False if not queued: the queue is full, the same copy is queued already, or the tier is being
   * drained (a copy there would only have to go again, and new ones could hold the drain forever).
   */
  requestCopy(file: OpenFile, index: number, tierId: number, done?: (published: boolean) => void): boolean {
    const k = key(tierId, file.fileId, index);
    if (this.closed || this.queued.has(k) || this.queue.length >= this.options.maxQueuedCopies || this.tiers.draining.has(tierId)) return false;
    this.queued.add(k);
    this.queue.push({ file, index, tierId, done });
    this.copyToBegins(tierId);
    file.handles++; // keeps the file (and its readFd) open until the job ran
    this.pump();
    return true;
  }

  /**
   * Move an extent's copy from one tier to another (a demotion): the bytes are read from the source
   * copy while it is fresh (else from the live file), published on the target, and only then is
   * the source copy dropped, so the extent never has fewer copies than before. False if not queued.
   */
  requestMigrate(file: OpenFile, index: number, fromTierId: number, toTierId: number, done?: (moved: boolean) => void): boolean {
    const k = key(toTierId, file.fileId, index);
    if (this.closed || this.queued.has(k) || this.queue.length >= this.options.maxQueuedCopies || this.tiers.draining.has(toTierId)) return false;
    this.queued.add(k);
    const after = (published: boolean): void => {
      if (!published) return done?.(false);
      this.evict(file.fileId, index, fromTierId)
        .then((dropped) => {
          if (dropped) this.counters.migrations++;
          done?.(dropped);
        })
        .catch((err: Error) => {
          this.log.warn('shadow', `dropping the source of a move failed: ${err.message}`);
          done?.(false);
        });
    };
    this.queue.push({ file, index, tierId: toTierId, fromTierId, done: after });
    this.copyToBegins(toTierId);
    file.handles++;
    this.pump();
    return true;
  }

  /**
   * A copy only its own staleness may remove: on the coverage tier, pinned or hinted there, or the
   * only home off the live volume of what it holds (isSoleHome).
   */
  mustKeep(fileId: string, index: number, tierId: number): boolean {
    const vt = this.tiers.get(tierId);
    return this.protectedTiers.has(tierId) || (vt !== undefined && this.isProtected(vt.tier.spec.name, fileId, index)) || this.isSoleHome(fileId, index, tierId);
  }

  /**
   * The extent's only fresh copy is on this tier, and dropping it would lose what only it holds
   * besides the live volume: bytes written through the mount that the coverage tier does not hold
   * yet (ARCHITECTURE rule 2: with an object coverage tier, or a full one, a write's copy goes to a
   * directory tier such as nvme), or anything at all while the live volume is not read (failed
   * over). A copy admitted from the live volume and not written since stays evictable: coverage
   * copies it again from the live volume, and pinning those would fill the fast tiers until it did.
   */
  isSoleHome(fileId: string, index: number, tierId: number): boolean {
    const rec = this.map.get(fileId, index);
    if (!rec || (!this.liveSourcePaused && !(rec.written && this.protectedTiers.size > 0))) return false;
    let fresh = 0;
    let here = false;
    for (const c of rec.copies) {
      if (!isFresh(rec, c)) continue;
      fresh++;
      here ||= c.tierId === tierId;
    }
    return here && fresh === 1;
  }

  /**
   * Drop one copy now (the planner's demotion, an operator's demote). Refuses copies eviction must
   * leave alone (the coverage tier, pins, active hints). True if a copy was dropped.
   */
  async evict(fileId: string, index: number, tierId: number): Promise<boolean> {
    const vt = this.tiers.get(tierId);
    if (!vt || this.mustKeep(fileId, index, tierId)) return false;
    if (!this.map.hasCopyOn(fileId, index, tierId)) return false;
    // Unmapped first (the FUSE layer may refuse: then nothing changes).
    this.beforeRemove(fileId, index, tierId);
    this.map.removeCopy(fileId, index, tierId);
    this.lru.get(tierId)?.delete(fileId, index);
    this.counters.evictions++;
    await this.removeBytes(vt.tier, fileId, index, tierId);
    return true;
  }

  /** Extents with a copy on a tier (fresh or not), least recently read first. */
  *copiesOn(tierId: number): Iterable<{ fileId: string; index: number }> {
    yield* this.lru.get(tierId) ?? [];
  }

  /** Remove the bytes of a copy the map no longer references. */
  discard(fileId: string, index: number, tierId: number): void {
    this.lru.get(tierId)?.delete(fileId, index);
    try {
      this.beforeRemove(fileId, index, tierId);
    } catch (err) {
      // A native read of the copy is stuck on the tier: its bytes stay, unnamed, until the next
      // mount's reconciliation removes them. (Thrown from here, it would strand the read that called.)
      this.log.warn('shadow', `a copy of ${fileId}#${index} is still being read natively; its bytes stay for now: ${(err as Error).message}`);
      return;
    }
    const vt = this.tiers.get(tierId);
    if (!vt) return;
    this.counters.discardedCopies++;
    this.removeBytes(vt.tier, fileId, index, tierId).catch((err: Error) => this.log.warn('shadow', `removing a stale copy failed: ${err.message}`));
  }

  /**
   * Removes a file's copies from every tier once `recordsGone` (the deletion of its records, just
   * dropped from memory) is written. Called as the records go, with no await in between: the tiers
   * are taken and each counts the removal as work on it (idleFor) from that moment, so a tier that
   * `tier remove` drains meanwhile, finding no record of these copies, waits for their removal
   * instead of being removed from the volume (and skipped here) with them still in its directory.
   * Rejects, removing nothing, if the records' deletion could not be written.
   */
  async removeFileCopies(fileId: string, recordsGone: Promise<void>): Promise<void> {
    const tiers = this.tiers.all();
    for (const vt of tiers) this.copyToBegins(vt.id);
    try {
      await recordsGone;
    } catch (err) {
      for (const vt of tiers) this.copyToEnded(vt.id);
      throw err;
    }
    await Promise.all(tiers.map((vt) => vt.tier.removeFile(fileId)
      .catch((err: Error) => this.log.warn('shadow', `removing copies of ${fileId} from ${vt.tier.spec.name}: ${err.message}`))
      .finally(() => this.copyToEnded(vt.id))));
  }

  /**
   * Remove the bytes of a copy the map no longer names. A tier runs one key's operations in order,
   * so while a copy of the same extent to the same tier runs, a removal would queue behind its put
   * and delete the new bytes, which would then be published with nothing behind them (coverage
   * counting a copy failover cannot read). So it waits for that copy to end, and is dropped if
   * the copy was published (its put replaced the old bytes).
   */
  private removeBytes(tier: ShadowTier, fileId: string, index: number, tierId: number): Promise<void> {
    const k = key(tierId, fileId, index);
    if (this.copying.has(k)) {
      this.removeAfterCopy.add(k);
      return Promise.resolve();
    }
    return this.removeFrom(tier, tierId, fileId, index);
  }

  /**
   * A removal of a copy's bytes, counted with the copies to its tier until it ends: a tier runs a
   * bounded number of ops at once, so removals can wait there, and a drained tier (idleFor) must
   * be left empty, not with removals still to come.
   */
  private removeFrom(tier: ShadowTier, tierId: number, fileId: string, index: number): Promise<void> {
    this.copyToBegins(tierId);
    return tier.remove({ fileId, index }).finally(() => this.copyToEnded(tierId));
  }

  private copyStarted(k: string): void {
    this.copying.set(k, (this.copying.get(k) ?? 0) + 1);
  }

  /** A copy ended: once no other copy of that key runs, do the removal that waited, if its bytes are not named now. */
  private copyEnded(k: string, fileId: string, index: number, tierId: number): void {
    const left = (this.copying.get(k) ?? 1) - 1;
    if (left > 0) {
      this.copying.set(k, left);
      return;
    }
    this.copying.delete(k);
    if (!this.removeAfterCopy.delete(k)) return;
    const vt = this.tiers.get(tierId);
    if (!vt || this.map.hasCopyOn(fileId, index, tierId)) return;
    this.removeFrom(vt.tier, tierId, fileId, index).catch((err: Error) => this.log.warn('shadow', `removing an unpublished copy failed: ${err.message}`));
  }

  /** Resolves when no copy is queued or running. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * Resolves when no copy to this tier is queued or running; copies to other tiers may go on (a
   * coverage backlog must not hold up a drain). While the tier drains no new copy to it is taken
   * (requestCopy, requestMigrate, storeWrittenCopy refuse it), so this cannot wait forever.
   */
  idleFor(tierId: number): Promise<void> {
    if (!this.copiesTo.has(tierId)) return Promise.resolve();
    return new Promise((r) => {
      const waiters = this.tierIdleWaiters.get(tierId);
      if (waiters) waiters.push(r);
      else this.tierIdleWaiters.set(tierId, [r]);
    });
  }

  /**
   * A tier removed from the volume (drained: no copies left, none under way): its eviction order
   * goes, with the arrays it grew to (~32 B for every copy it once held at the same time).
   */
  forgetTier(tierId: number): void {
    this.lru.delete(tierId);
  }

  private copyToBegins(tierId: number): void {
    this.copiesTo.set(tierId, (this.copiesTo.get(tierId) ?? 0) + 1);
  }

  private copyToEnded(tierId: number): void {
    const left = (this.copiesTo.get(tierId) ?? 1) - 1;
    if (left > 0) {
      this.copiesTo.set(tierId, left);
      return;
    }
    this.copiesTo.delete(tierId);
    const waiters = this.tierIdleWaiters.get(tierId) ?? [];
    this.tierIdleWaiters.delete(tierId);
    for (const w of waiters) w();
  }

  async close(): Promise<void> {
    this.closed = true;
    // Copies waiting out the rate limit stop waiting: at a low copy rate the wait is minutes.
    for (const wake of [...this.sleepers]) wake();
    for (const job of this.queue.splice(0)) this.finish(job);
    await this.idle();
  }

  /** Set by the volume: called before a copy's bytes are removed (e.g. to unmap a fast path). */
  beforeRemove: (fileId: string, index: number, tierId: number) => void = () => undefined;

  /** Set by the placement policy: a copy was evicted to make room for another (not asked for). */
  onEvictedForRoom: (fileId: string, index: number, tierId: number) => void = () => undefined;
  /**
   * Under the file's write lock, before a copy reads an extent: from here on its bytes must change
   * only through writes that bump its generation (the volume revokes native writes to it). Throws
   * to refuse the copy.
   */
  beforeCopyRead: (fileId: string, index: number) => void = () => undefined;

  /** Set by the volume: a copy was published (e.g. to map it into the read fast path). */
  onPublished: (file: OpenFile, index: number, tierId: number) => void = () => undefined;

  /** Set by the volume: closes a file's readFd when its last user is done. */
  onFileReleased: (file: OpenFile) => void = () => undefined;

  private finish(job: CopyJob): void {
    this.queued.delete(key(job.tierId, job.file.fileId, job.index));
    this.copyToEnded(job.tierId);
    job.file.handles--;
    if (job.file.handles === 0) this.onFileReleased(job.file);
  }

  private pump(): void {
    // While the application is busy, one copy at a time: its requests then wait behind at most one
    // extent copy on the disk, not concurrentCopies of them. More start once it is quiet.
    const limit = Date.now() - this.lastForegroundMs() < FOREGROUND_QUIET_MS ? 1 : this.options.concurrentCopies;
    while (this.running < limit && this.queue.length > 0) {
      const job = this.queue.shift() as CopyJob;
      const k = key(job.tierId, job.file.fileId, job.index);
      this.running++;
      this.copyStarted(k);
      this.copy(job)
        .catch((err: Error) => {
          this.counters.failedCopies++;
          this.log.warn('shadow', `copy of ${job.file.fileId}#${job.index} failed: ${err.message}`);
          return false;
        })
        .then((published) => job.done?.(published))
        .finally(() => {
          this.running--;
          this.copyEnded(k, job.file.fileId, job.index, job.tierId);
          this.finish(job);
          this.pump();
          if (this.queue.length === 0 && this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  /**
   * Set by the volume: when the application last had a request served (ms). Background copies
   * yield while the foreground is busy, so replication takes the idle capacity, not the
   * application's: a copy waits until the foreground was quiet for FOREGROUND_QUIET_MS, but at
   * most YIELD_MAX_MS, so coverage still progresses under a steady load.
   */
  lastForegroundMs: () => number = () => 0;

  private async yieldToForeground(): Promise<void> {
    const deadline = Date.now() + YIELD_MAX_MS;
    while (Date.now() - this.lastForegroundMs() < FOREGROUND_QUIET_MS && Date.now() < deadline && !this.closed) {
      await this.sleep(FOREGROUND_QUIET_MS);
    }
  }

  /** Background waits, cut short by close(). */
  private readonly sleepers = new Set<() => void>();

  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  /** Waits its turn under the copy rate; close() cuts the wait short. */
  private async throttle(bytes: number): Promise<void> {
    const ms = this.pacer.book(bytes);
    if (ms > 0) await this.sleep(ms);
  }

  /**
   * How copies read the live file. The volume routes it through its live guard: a deadline, so
   * that a hung live volume cannot hold a file's write lock (and every write to it) forever.
   */
  readLive: (file: OpenFile, buf: Buffer, length: number, position: number) => Promise<number> = (file, buf, length, position) =>
    preadFull(file.readFd, buf, 0, length, position);

  /** How copies make the live file's bytes durable (the volume adds its live op deadline). */
  syncLive: (file: OpenFile) => Promise<void> = (file) => fsyncFd(file.readFd, true);

  /** Set while failed over: copies are made from the live file, which must not be touched then. */
  liveSourcePaused = false;

  /** Resolves true when the copy was published. */
  private async copy(job: CopyJob): Promise<boolean> {
    const { file, index, tierId } = job;
    if (this.liveSourcePaused || file.readFd < 0) return false;
    const vt = this.tiers.get(tierId);
    if (!vt || vt.tier.health() !== 'healthy' || this.tiers.draining.has(tierId)) return false;
    const rec = this.map.get(file.fileId, index);
    if (rec?.copies.some((c) => c.tierId === tierId && c.generation === rec.generation)) return true;
    await this.throttle(Math.min(this.extentSizeBytes, Math.max(0, file.sizeBytes - index * this.extentSizeBytes)));
    await this.yieldToForeground();
    if (this.closed) return false;
    const E = this.extentSizeBytes;
    // The tier's own buffer when it lends one: reused, and written without another copy.
    const lease = await vt.tier.copyBuffer?.(E);
    const buf = lease?.bytes ?? Buffer.allocUnsafe(E);
    // Read under the write lock: the bytes and the generation we stamp them with must match.
    const taken = await file.writeLock.run(async () => {
      // Checked again under the lock: the volume may have failed over while we waited for it.
      if (this.liveSourcePaused || file.readFd < 0) return undefined;
      const generation = this.map.ensureRecord(file.fileId, index);
      const want = Math.min(E, file.sizeBytes - index * E);
      if (want <= 0) return undefined;
      this.beforeCopyRead(file.fileId, index);
      // A fresh copy elsewhere spares the live volume (the move's source, else any other tier).
      const sources = job.fromTierId !== undefined ? [job.fromTierId] : (this.map.get(file.fileId, index)?.copies ?? []).map((c) => c.tierId).filter((id) => id !== tierId);
      let fromTier: number | undefined;
      for (const source of sources) {
        fromTier = await this.readFreshCopy(file.fileId, index, source, buf, want);
        if (fromTier !== undefined) break;
      }
      const n = fromTier ?? (await this.readLive(file, buf, want, index * E));
      return { generation, n, fromLive: fromTier === undefined };
    });
    if (!taken || taken.n === 0) return false;
    // Bytes written through the mount since the file's last sync point may not be on the live
    // volume's disk yet. A copy of them, durable and named fresh, would outlive a power loss that
    // took them from the live file: they are made durable there first.
    if (taken.fromLive && (this.map.isWritten(file.fileId) || file.nativeWritable)) {
      try {
        await this.syncLive(file);
      } catch {
        return false;
      }
    }
    const data = buf.subarray(0, taken.n);
    if (!(await this.makeRoom(tierId, data.length))) return false;
    // Failed over, or written, since the read (making room can wait on evictions): a write through
    // the shadows may have put the extent's new bytes on this tier and marked them fresh. Ours,
    // landing after them under the same name, would replace them. Checked with no await before
    // the put: once issued, a later put of the same key lands after it.
    if (this.liveSourcePaused || this.map.get(file.fileId, index)?.generation !== taken.generation) {
      this.reserved.set(tierId, (this.reserved.get(tierId) ?? 0) - data.length);
      return false;
    }
    await this.putReserved(vt, file.fileId, index, data, true);
    if (!this.tiers.get(tierId)) return this.removedMeanwhile(vt, file.fileId, index);
    // A write to this extent since it was read bumped its generation: then the copy is refused.
    if (!(await this.publish(file.fileId, index, tierId, data, taken.generation))) return false;
    this.touch(tierId, file.fileId, index);
    this.onPublished(file, index, tierId);
    this.counters.copies++;
    this.counters.copyBytes += data.length;
    // Only here: on a failure a read abandoned by its deadline could still land in the buffer.
    lease?.release();
    return true;
  }

  /**
   * A whole copy a write built, with the file's write lock held, of an extent that had no copy to
   * patch: stored, and published at `generation` once `liveWritten` resolves true (the write is on
   * the live volume; false: the bytes go), before the write is acknowledged, so that the
   * write is on the live volume and on a shadow (ARCHITECTURE rule 2). The write waits for it, so
   * it is neither queued nor rate-limited. Resolves false when the tier has no room or the copy
   * was not published; rejects when the tier failed (its bytes are then removed).
   *
   * Put without an fsync, like the write's own bytes on the live file (both become durable with
   * the file's fsync through the mount: the volume syncs its copies then). That is safe to publish
   * at once because the record carries the bytes' checksum: after a crash, a copy whose bytes did
   * not all reach the disk fails its check on its first read (or is missing at reconciliation) and
   * is dropped, never served. (With an fsync per copy, 1 MiB sequential writes ran at a fifth.)
   */
  async storeWrittenCopy(file: OpenFile, index: number, tierId: number, data: Buffer, generation: number, liveWritten: Promise<boolean>): Promise<boolean> {
    const vt = this.tiers.get(tierId);
    if (!vt || vt.tier.health() !== 'healthy' || data.length === 0 || this.tiers.draining.has(tierId)) return false;
    const k = key(tierId, file.fileId, index);
    // Counted as a running copy: a queued copy of the same extent that is refused meanwhile must
    // not remove these bytes (its removal waits until no copy of the key runs). A drain waits for it.
    this.copyStarted(k);
    this.copyToBegins(tierId);
    try {
      if (!(await this.makeRoom(tierId, data.length))) return false;
      await this.putReserved(vt, file.fileId, index, data, false);
      if (!this.tiers.get(tierId)) return this.removedMeanwhile(vt, file.fileId, index);
      // Put beside the live write (when its bytes did not need the live file), published after it.
      if (!(await liveWritten)) {
        this.discard(file.fileId, index, tierId);
        return false;
      }
      if (!(await this.publish(file.fileId, index, tierId, data, generation))) return false;
      this.touch(tierId, file.fileId, index);
      this.counters.writtenCopies++;
      return true;
    } finally {
      this.copyEnded(k, file.fileId, index, tierId);
      this.copyToEnded(tierId);
    }
  }

  /**
   * The tier was drained and removed while bytes were put on it: nothing may name them, and its
   * directory (disowned by the volume) must not keep them. Not expected (the drain waits for
   * copies to the tier: idleFor); this is the last guard. Resolves false (not published).
   */
  private async removedMeanwhile(vt: VolumeTier, fileId: string, index: number): Promise<false> {
    this.log.warn('shadow', `a copy of ${fileId}#${index} was put on tier ${vt.tier.spec.name} after it was removed; its bytes go`);
    await vt.tier.remove({ fileId, index }).catch((err: Error) => this.log.warn('shadow', `removing it failed: ${err.message}`));
    return false;
  }

  /** Puts bytes whose room makeRoom reserved, then releases the reservation. */
  private async putReserved(vt: VolumeTier, fileId: string, index: number, data: Buffer, sync: boolean): Promise<void> {
    try {
      await vt.tier.put({ fileId, index }, data, sync);
    } catch (err) {
      // The bytes may have landed anyway (renamed into place, then the directory fsync failed):
      // counted on the tier and named by nothing, they would hold room no eviction can free.
      this.discard(fileId, index, vt.id);
      throw err;
    } finally {
      this.reserved.set(vt.id, (this.reserved.get(vt.id) ?? 0) - data.length);
    }
  }

  /** Names the bytes just put as the extent's copy at `generation`; if the extent moved on, they go. */
  private async publish(fileId: string, index: number, tierId: number, data: Buffer, generation: number): Promise<boolean> {
    if (await this.map.addCopy(fileId, index, { tierId, generation, crc32: crc32(data), sizeBytes: data.length }, generation)) return true;
    this.discard(fileId, index, tierId);
    return false;
  }

  /** A migration's source: the bytes of a fresh, intact copy on a tier, or undefined (then: live). */
  private async readFreshCopy(fileId: string, index: number, tierId: number, buf: Buffer, want: number): Promise<number | undefined> {
    const rec = this.map.get(fileId, index);
    const copy = rec?.copies.find((c) => c.tierId === tierId && c.generation === rec.generation);
    const vt = this.tiers.get(tierId);
    if (!copy || !vt || copy.sizeBytes !== want || vt.tier.health() !== 'healthy') return undefined;
    try {
      const n = await vt.tier.read({ fileId, index }, 0, want, buf, 0);
      if (n !== want || (copy.crc32 !== null && crc32(buf.subarray(0, n)) !== copy.crc32)) return undefined;
      return n;
    } catch {
      return undefined;
    }
  }

  /** After a capacity cut: evict until the tier fits again. False if it cannot (a protected tier). */
  shrinkToCapacity(tierId: number): Promise<boolean> {
    return this.makeRoom(tierId, 0);
  }

  private readonly settling = new Set<number>();

  /**
   * A write grew copies on the tier in place (appends within an extent take no room first: the
   * write must not wait for evictions). Once the writes of this turn are done, evict until it fits
   * again; one eviction pass per tier at a time.
   */
  settleCapacity(tierId: number): void {
    if (this.closed || this.settling.has(tierId)) return;
    this.settling.add(tierId);
    setImmediate(() => {
      void this.shrinkToCapacity(tierId)
        .catch((err: Error) => this.log.warn('shadow', `evicting after copies grew failed: ${err.message}`))
        .finally(() => this.settling.delete(tierId));
    });
  }

  /** Evict least recently read copies until `bytes` fit; false if they cannot. */
  private async makeRoom(tierId: number, bytes: number): Promise<boolean> {
    const vt = this.tiers.get(tierId);
    const l = this.lru.get(tierId);
    if (!vt) return false;
    const cap = vt.tier.spec.capacityBytes;
    if (bytes > cap) return false;
    const used = (): number => vt.tier.usedBytes() + (this.reserved.get(tierId) ?? 0);
    // Room found is held (reserved) at once, with no await in between, until the copy's bytes land
    // (copy() releases it): concurrent copies cannot all claim the same room.
    const claim = (): true => {
      this.reserved.set(tierId, (this.reserved.get(tierId) ?? 0) + bytes);
      return true;
    };
    // The coverage tier must keep everything: when it is full, coverage falls short (and says so).
    if (this.protectedTiers.has(tierId)) return used() + bytes <= cap && claim();
    const skipped: CopyRef[] = [];
    try {
      while (used() + bytes > cap) {
        const oldest = l?.oldest();
        if (!l || !oldest) return false;
        const { fileId, index } = oldest;
        l.delete(fileId, index);
        if (this.isProtected(vt.tier.spec.name, fileId, index) || this.isSoleHome(fileId, index, tierId)) {
          skipped.push(oldest);
          continue;
        }
        if (!this.map.hasCopyOn(fileId, index, tierId)) continue;
        try {
          // Unmapped first (the FUSE layer may refuse: then nothing changes).
          this.beforeRemove(fileId, index, tierId);
        } catch {
          skipped.push(oldest);
          continue;
        }
        this.map.removeCopy(fileId, index, tierId);
        this.counters.evictions++;
        await this.removeBytes(vt.tier, fileId, index, tierId);
        this.onEvictedForRoom(fileId, index, tierId);
      }
      return claim();
    } finally {
      // Protected copies go back, at the recent end: the next search for room starts elsewhere.
      // (One read meanwhile, and so back already, keeps its place.)
      for (const c of skipped) l?.add(c.fileId, c.index);
    }
  }
}
