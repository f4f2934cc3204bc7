/**
 * Failover and failback of one volume: keeps the mirrored namespace current while the live volume
 * is authoritative, switches the volume to its shadows (on the watchdog's decision, a live op not
 * answered in time, or an operator), and resyncs and fails back once the live volume is healthy.
 * The mode and the journal are persisted: a mount that was failed over when it died comes back
 * failed over, and an interrupted resync runs again.
 */
import * as path from 'node:path';
import { HealthAction, HealthMonitor, HealthReport, Transition } from '../health/health-monitor';
import { HealthSettings } from '../health/health-settings';
import { Logger } from '../util/log';
import { ShadowfsError } from '../util/errors';
import { Volume, NamespaceListener } from '../volume/volume';
import { settlesWithin } from '../util/settles-within';
import { FailoverJournal, FailoverStore, FailoverStoreOp, isLost, lostKey, VolumeMode } from './failover-store';
import { LiveScan, MirrorEntry, NamespaceMirror, entryFromStats } from './namespace-mirror';
import { isAtOrUnder } from '../util/tree-paths';
import { ShadowNamespace } from './shadow-namespace';
import { ShadowWriter } from './shadow-writer';
import { Resync, ResyncProgress } from './resync';
import { Watchdog } from './watchdog';
import { LiveGuardOptions } from './live-guard';
import { isHealthyDirectoryTier } from '../tiers/tier-set';
import { isFresh } from '../extents/extent-map';
import * as fsp from 'node:fs/promises';
import type { StatusReport } from '../control/protocol';

/** "Never" for setTimeout purposes (its maximum is 2^31-1 ms). */
const NO_DEADLINE_MS = 2 ** 31 - 1;
/** How long a manual failover waits for the scan that confirms coverage. */
const COVERAGE_CONFIRM_MS = 30_000;
/**
 * How long a failover waits before it tries again to unmap native reads of the live volume, doubled
 * after each try up to the cap: each try that meets a stuck read blocks the event loop for 2 s.
 */
const NATIVE_LIVE_READS_RETRY_MS = 1000;
const NATIVE_LIVE_READS_RETRY_MAX_MS = 60_000;
/** Last passes repeated (under the exclusive gate) while extents stay unsettled, before failback gives up. */
const FINAL_PASS_RETRIES = 3;
/** How long close() waits for a walk of the live tree to stop (it stops at its next entry, unless the live volume hangs). */
const MIRROR_WALK_STOP_MS = 2_000;
/** A refusal to fail over for the same cause is logged at most this often: a hung live volume refuses every op. */
const REFUSAL_LOG_MS = 10_000;
export interface FailoverSettings {
  /** Watch the live volume and fail over on its own (manual failover works either way). */
  enabled: boolean;
  probeIntervalMs: number;
  health: Partial<HealthSettings>;
}

export interface FailoverStatus {
  mode: VolumeMode;
  since: number | null;
  reason: string;
  dirtyExtents: number;
  health: HealthReport;
  /** Wall-clock times. */
  transitions: readonly Transition[];
  resync: ResyncProgress | null;
  deadlineMs: number;
  abandonedOps: number;
  lastResync: { finishedAtMs: number; extents: number; bytes: number; seconds: number; conflicts: string[] } | null;
}

export class FailoverController implements NamespaceListener {
  private mirror = new NamespaceMirror();
  private journal!: FailoverJournal;
  readonly monitor: HealthMonitor;
  readonly watchdog: Watchdog;
  private flushTimer: NodeJS.Timeout | undefined;
  private resync: Resync | undefined;
  private resyncing: Promise<void> | undefined;
  private lastResync: FailoverStatus['lastResync'] = null;
  private lateWrites = false;
  /** The part of the last failover that waits on live ops still running (see failover()). */
  private settling: Promise<void> = Promise.resolve();
  /** The last refusal logged, and how many with the same cause went unlogged since (see logRefusal). */
  private lastRefusal: { cause: string; atMs: number; unlogged: number } | null = null;

  private constructor(
    private readonly volume: Volume,
    private readonly store: FailoverStore,
    private readonly coverageTierId: () => number | undefined,
    private readonly settings: FailoverSettings,
    private readonly resyncBytesPerSec: number,
    private readonly log: Logger,
  ) {
    this.monitor = new HealthMonitor(settings.health, (t) => log.warn('health', `live volume ${t.from} -> ${t.to}: ${t.reason}`));
    const s = this.monitor.settings;
    volume.guard.setOptions(this.guardOptions());
    volume.guard.observer = this.monitor;
    volume.guard.onAbandoned = () => {
      if (volume.shadow) this.lateWrites = true;
    };
    this.watchdog = new Watchdog(volume.livePath, this.monitor, settings.probeIntervalMs, { act: (a, r) => this.act(a, r) }, log);
  }

  static async open(volume: Volume, stateDir: string, coverageTierId: () => number | undefined, settings: FailoverSettings, resyncBytesPerSec: number, log: Logger): Promise<FailoverController> {
    const store = await FailoverStore.open(path.join(stateDir, 'failover'));
    const c = new FailoverController(volume, store, coverageTierId, settings, resyncBytesPerSec, log);
    await c.load();
    return c;
  }

  private async load(): Promise<void> {
    const { journal, mirror } = await this.store.load();
    this.journal = journal;
    this.mirror = new NamespaceMirror(mirror);
    this.volume.failoverNow = (reason) => this.failover(`live op not answered: ${reason}`);
    if (journal.mode !== 'live') {
      this.log.warn('failover', `the volume was failed over when the mount stopped (${journal.reason}): serving from the shadows until the live volume is healthy and resynced`);
      // A resync the stop cut short is not running now: failed over until the next one starts.
      if (journal.mode === 'resyncing') {
        journal.mode = 'failed-over';
        this.store.stage([FailoverStore.meta('mode', 'failed-over')]);
      }
      this.monitor.requestFailover(performance.now(), `failed over before the mount started: ${journal.reason}`);
      this.monitor.evaluate(performance.now());
      this.switchToShadows();
    } else {
      this.startMirrorRebuild();
      this.volume.namespaceListener = this;
    }
    this.flushTimer = setInterval(() => void this.store.flush().catch(() => undefined), 1_000);
    this.flushTimer.unref();
  }

  start(): void {
    if (this.settings.enabled || this.journal.mode !== 'live') this.watchdog.start();
  }

  get mode(): VolumeMode {
    return this.journal.mode;
  }

  /**
   * While failed over, the copy is the extent's last fresh one: a read error does not drop it (the
   * next read may succeed, resync may read it). For bytes written while failed over it is their
   * only home, and dropping it would lose them for good. For the others the live volume has them,
   * but the mount reads it only through live descriptors opened before the failover: dropping the
   * copy for a passing error would leave the extent unreadable, in files opened since, until
   * failback.
   */
  isLastHome(fileId: string, index: number): boolean {
    if (this.journal.mode === 'live') return false;
    const rec = this.volume.map.get(fileId, index);
    return !rec?.zeros && (rec?.copies.filter((c) => isFresh(rec, c)).length ?? 0) <= 1;
  }

  /**
   * A damaged copy was dropped. When it was the last home of bytes written while failed over, the
   * extent is journaled as lost (FailoverJournal.lost): true then.
   */
  copyDropped(fileId: string, index: number): boolean {
    if (this.journal.mode === 'live' || !this.journal.dirty.get(fileId)?.has(index)) return false;
    const rec = this.volume.map.get(fileId, index);
    if (rec && (rec.zeros || rec.copies.some((c) => isFresh(rec, c)))) return false;
    this.journal.lost.add(lostKey(fileId, index));
    this.store.commit([FailoverStore.dirtyPut(fileId, index, true)]).catch((err: Error) => {
      this.log.error('failover', `journaling lost extent ${index} of file ${fileId}: ${err.message}`);
    });
    return true;
  }

  /** Mount-relative paths of a file, as the namespace mirror last saw them (for messages). */
  pathsOf(fileId: string): string[] {
    return this.mirror.pathsOf(fileId);
  }

  /**
   * Paths the mount changed while the live tree is being walked: the walk may have passed them
   * before the change, so they are looked at again before the new mirror replaces the old.
   */
  private changedDuringWalk: Set<string> | undefined;

  /** Set by close(): walks stop, and nothing more is staged for the store. */
  private closed = false;
  private rebuilding: Promise<void> | undefined;

  /** The live tree, walked at mount and after a failback (in the background): the mirror starts exact. */
  private startMirrorRebuild(): void {
    this.rebuilding = this.rebuildMirror().finally(() => (this.rebuilding = undefined));
  }

  private async rebuildMirror(): Promise<void> {
    this.changedDuringWalk = new Set();
    try {
      const scan = await NamespaceMirror.scanLive(this.volume.livePath, '/', () => this.closed);
      const mirror = new NamespaceMirror(scan.entries);
      // Failed over meanwhile, or unmounting: keep what was persisted.
      if (this.volume.shadow || this.closed) return;
      // What the walk could not read stays as the persisted mirror had it.
      keepUnknown(mirror, this.mirror, scan);
      if (!scan.complete) this.log.warn('failover', `namespace mirror: ${scan.describeFailures()}; what lies there is kept as it was`);
      // Shallowest first, so a directory is in place before what was made in it; until none is left.
      while (this.changedDuringWalk.size > 0 && !this.volume.shadow && !this.closed) {
        const paths = [...this.changedDuringWalk].sort((a, b) => a.split('/').length - b.split('/').length);
        this.changedDuringWalk.clear();
        for (const p of paths) {
          // Gone since: removed from the mirror. Any other error reading it fails the rebuild.
          const now = await NamespaceMirror.scanLive(this.volume.livePath, p).catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
            throw err;
          });
          const before = new NamespaceMirror(new Map([...mirror.all()].filter(([q]) => isAtOrUnder(q, p))));
          mirror.delete(p);
          for (const [q, e] of now?.entries ?? []) mirror.set(q, e);
          if (now) keepUnknown(mirror, before, now);
        }
      }
      if (this.volume.shadow || this.closed) return;
      // Written as the difference from the persisted mirror (which this.mirror is, as every change
      // to it is staged), not as a clear and a rewrite: the persisted mirror stays whole whenever
      // the rebuild stops (failover, unmount, a crash), and is what a mount failed over serves.
      const ops: FailoverStoreOp[] = [];
      for (const [p, e] of mirror.all()) if (!sameEntry(this.mirror.get(p), e)) ops.push(FailoverStore.mirrorPut(p, e));
      for (const [p] of this.mirror.all()) if (!mirror.get(p)) ops.push(FailoverStore.mirrorDel(p));
      this.mirror = mirror;
      this.store.stage(ops);
      await this.store.flush();
      this.log.debug('failover', `namespace mirror: ${mirror.size} entries`);
    } catch (err) {
      this.log.warn('failover', `mirroring the namespace failed: ${(err as Error).message}`);
    } finally {
      this.changedDuringWalk = undefined;
    }
  }

  /**
   * Called once the volume serves from the live volume again, with the live files resync wrote
   * whole: new inodes (made while failed over, or a conflict) that no coverage copy names yet.
   */
  onFailedBack: ((rewritten: ReadonlyMap<string, { livePath: string; sizeBytes: number }>) => void) | undefined;

  private mirrorRefresh: Promise<void> | undefined;

  /**
   * Brings the mirror up to the live tree without starting over. The mount's own changes keep it
   * current; this adds what was made, changed or removed on the live volume behind the mount's
   * back (another writer of the live directory), which would otherwise be missing (or linger)
   * while failed over. After each coverage scan, and before a manual failover.
   */
  refreshMirror(): Promise<void> {
    // A rebuild running (at mount, after a failback) makes the mirror exact anyway.
    if (this.changedDuringWalk || this.volume.shadow || this.closed) return Promise.resolve();
    this.mirrorRefresh ??= this.refreshMirrorFrom(() => NamespaceMirror.scanLive(this.volume.livePath, '/', () => this.closed))
      .then(() => undefined, (err: Error) => this.log.warn('failover', `refreshing the namespace mirror failed: ${err.message}`))
      .finally(() => (this.mirrorRefresh = undefined));
    return this.mirrorRefresh;
  }

  /**
   * The coverage scan's walk of the live tree, which refreshes the mirror too (one walk for both,
   * not two every scan interval). A walk stopped part way (unmount) refreshes nothing.
   */
  walkLiveForCoverage(stopped: () => boolean): Promise<LiveScan> {
    return this.refreshMirrorFrom(() => NamespaceMirror.scanLive(this.volume.livePath, '/', stopped), stopped);
  }

  private async refreshMirrorFrom(walk: () => Promise<LiveScan>, stopped: () => boolean = () => false): Promise<LiveScan> {
    // A rebuild running (at mount, after a failback) makes the mirror exact anyway.
    if (this.changedDuringWalk || this.volume.shadow) return walk();
    const touched = new Set<string>();
    this.changedDuringWalk = touched;
    try {
      const scan = await walk();
      const live = scan.entries;
      if (this.volume.shadow || stopped() || this.closed) return scan;
      // A path the mount changed while the walk ran (or one under it: a directory renamed) is
      // already what the mount made it.
      const mountChanged = (p: string): boolean => {
        for (let q = p; ; q = path.posix.dirname(q)) {
          if (touched.has(q)) return true;
          if (q === '/') return false;
        }
      };
      const ops: FailoverStoreOp[] = [];
      for (const [p, e] of live) if (!mountChanged(p) && !sameEntry(this.mirror.get(p), e)) ops.push(...this.mirror.set(p, e));
      // Not seen, and the walk could have seen it: removed behind the mount's back.
      for (const [p] of [...this.mirror.all()]) if (!live.has(p) && !mountChanged(p) && scan.knows(p)) ops.push(...this.mirror.delete(p));
      if (ops.length > 0) {
        this.store.stage(ops);
        this.log.debug('failover', `namespace mirror: ${ops.length} changes made behind the mount's back`);
      }
      return scan;
    } finally {
      if (this.changedDuringWalk === touched) this.changedDuringWalk = undefined;
    }
  }

  // ---- NamespaceListener: the mount's own changes while live ----

  changed(p: string): void {
    this.changedDuringWalk?.add(p);
    // Forced: a change that landed on the live volume as it failed over is still mirrored (the
    // listener stays until the live ops running then are over), or the shadows would not show it.
    void this.volume.guard.run('meta', async () => {
      const lp = this.volume.live(p);
      const st = await fsp.lstat(lp).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      const target = st?.isSymbolicLink() ? await fsp.readlink(lp) : undefined;
      if (this.volume.namespaceListener !== this) return;
      // Gone again already (renamed or removed before this look): its own event says where to.
      if (!st) return;
      this.store.stage(this.mirror.set(p, entryFromStats(st, target)));
    }, { force: true }).catch(() => undefined);
  }

  removed(p: string): void {
    this.changedDuringWalk?.add(p);
    this.store.stage(this.mirror.delete(p));
  }

  renamed(from: string, to: string): void {
    this.changedDuringWalk?.add(from);
    this.changedDuringWalk?.add(to);
    // Made a moment ago, the source may not be mirrored yet (its look is still running): then the
    // target is looked at instead, or it would never be mirrored.
    if (!this.mirror.get(from)) {
      this.changed(to);
      return;
    }
    this.store.stage(this.mirror.rename(from, to));
  }

  // ---- switching ----

  private switchToShadows(): void {
    const v = this.volume;
    v.guard.close(this.journal.reason || 'failed over');
    const writer = new ShadowWriter({
      map: v.map, tiers: v.tiers, extentSizeBytes: v.io.extentSizeBytes, guard: v.guard, coverageTierId: this.coverageTierId,
      discard: (f, i, t) => v.shadows.discard(f, i, t), isLost: (f, i) => isLost(this.journal, f, i),
    });
    v.shadow = new ShadowNamespace({
      livePath: v.livePath, map: v.map, tiers: v.tiers, io: v.io, open: v.open, fastPath: v.fastPath, guard: v.guard,
      mirror: this.mirror, store: this.store, journal: this.journal, writer, extentSizeBytes: v.io.extentSizeBytes,
      dropFile: (fileId) => v.dropFileCopies(fileId), discard: (f, i, t) => v.shadows.discard(f, i, t),
    });
    v.shadows.liveSourcePaused = true;
    // Native writes go straight to the live file: every write must come through the shadows now.
    const nativeInFlight = v.nativeWrites.switchOff();
    // Those land on the live file after the failover began, and are acknowledged then: like
    // abandoned live ops, not changes behind the mount's back.
    if (nativeInFlight > 0) this.lateWrites = true;
    void this.stopNativeLiveReads();
  }

  /**
   * Reads mapped to the live file stop being served on the FUSE thread, where they could not be
   * abandoned (those in flight go on: the unmap does not wait for them). Should the FUSE layer's
   * map lock not be had (it throws after 2 s), the failover goes on, and this tries again; until
   * then such reads may wait on the live volume, as they did before the failover.
   */
  private async stopNativeLiveReads(): Promise<void> {
    const v = this.volume;
    for (let attempt = 0; v.shadow; attempt++) {
      if (attempt > 0) {
        await new Promise((r) => setTimeout(r, Math.min(NATIVE_LIVE_READS_RETRY_MAX_MS, NATIVE_LIVE_READS_RETRY_MS * 2 ** (attempt - 1))));
        if (!v.shadow) return;
      }
      try {
        v.fastPath.mapLiveFiles(false);
        return;
      } catch (err) {
        this.log.warn('failover', `native reads of the live volume could not be stopped yet (${(err as Error).message}): trying again`);
      }
    }
  }

  private logRefusal(reason: string, cause: string): void {
    const now = Date.now();
    const last = this.lastRefusal;
    if (last && last.cause === cause && now - last.atMs < REFUSAL_LOG_MS) {
      last.unlogged++;
      return;
    }
    const since = last && last.cause === cause && last.unlogged > 0 ? ` (refused ${last.unlogged} more times for this since the last line)` : '';
    this.log.error('failover', `cannot fail over (${reason}): ${cause}${since}`);
    this.lastRefusal = { cause, atMs: now, unlogged: 0 };
  }

  /** Fail over now; resolves true once the volume serves from its shadows. */
  async failover(reason: string, manual = false): Promise<boolean> {
    if (this.volume.shadow) return true;
    if (!this.volume.tiers.all().some(isHealthyDirectoryTier)) {
      this.logRefusal(reason, 'no healthy directory tier to take writes');
      return false;
    }
    // A volume's first mount knows its namespace only once the first walk of the live tree ends.
    // Failed over before that, every path would answer ENOENT (an application may take that as
    // "create it anew"); not failed over, an op the live volume does not answer fails with EIO.
    if (!this.mirror.get('/')) {
      this.logRefusal(reason, 'the namespace of the volume is not known yet (the first walk of the live tree has not ended)');
      return false;
    }
    const now = Date.now();
    this.journal.mode = 'failed-over';
    this.journal.failedOverAtMs = now;
    this.journal.reason = reason;
    this.lateWrites = this.volume.guard.abandonedOps > 0;
    // Sizes of open files: the mount's view is the latest (writes through it reached the copies too).
    const ops = [FailoverStore.meta('mode', 'failed-over'), FailoverStore.meta('since', String(now)), FailoverStore.meta('reason', reason)];
    // The mirror learns sizes lazily; the extent map's file records hold what the mount last saw.
    for (const [p, e] of this.mirror.all()) {
      const rec = e.type === 'file' && e.fileId ? this.volume.map.fileRecord(e.fileId) : undefined;
      if (rec && (rec.sizeBytes !== e.size || rec.mtimeMs !== e.mtimeMs)) ops.push(...this.mirror.update(p, { size: rec.sizeBytes, mtimeMs: rec.mtimeMs }));
    }
    this.switchToShadows();
    // A write through the live volume may still be in flight, holding its file's write lock: it
    // can grow the file after any size taken now, and the shadows would then serve zeros past the
    // old end, and resync cut the file back to it. Each open file's size is taken when its lock
    // is free. Queued here, before anything else can run, this comes ahead of every write
    // through the shadows, which go by that size.
    const openFiles = [...this.volume.open.allFiles()];
    const liveWritesInFlight = openFiles.some((f) => f.writeLock.locked);
    const sizesTaken = openFiles.map((f) => f.writeLock.run(async () => {
      const p = f.livePath.slice(this.volume.livePath.length) || '/';
      const e = this.mirror.get(p);
      if (e && e.fileId === f.fileId && e.size !== f.sizeBytes) await this.store.commit(this.mirror.update(p, { size: f.sizeBytes }));
    }));
    await this.store.commit(ops);
    // The rest waits on live ops still running, each for at most its deadline: meanwhile the
    // application's ops (the one that timed out first) are served from the shadows. Resync waits
    // for it.
    this.settling = this.settle(sizesTaken, liveWritesInFlight).catch((err: Error) => {
      this.log.warn('failover', `settling the failover: ${err.message}`);
    });
    if (manual || this.monitor.state !== 'failed-over') this.monitor.requestFailover(performance.now(), reason);
    this.log.warn('failover', `failed over to the shadows: ${reason}`);
    return true;
  }

  private async settle(sizesTaken: Promise<void>[], liveWritesInFlight: boolean): Promise<void> {
    await Promise.all(sizesTaken);
    // A namespace change running on the live volume when it failed over (a rename replacing a
    // file, an unlink) lands there afterwards and is acknowledged: the mirror must learn it, or
    // resync would undo it. The listener stays until the ops running then are over.
    await this.volume.guard.opsRunningNow();
    if (this.volume.shadow && this.volume.namespaceListener === this) this.volume.namespaceListener = undefined;
    this.lateWrites ||= this.volume.guard.abandonedOps > 0;
    if (liveWritesInFlight) {
      // Those writes changed live files after the failover began, and were acknowledged: resync
      // must not take those files for changed behind the mount's back (a conflict, replaced by
      // the shadows' version). The failover counts from when they ended.
      this.journal.failedOverAtMs = Date.now();
      await this.store.commit([FailoverStore.meta('since', String(this.journal.failedOverAtMs))]);
    }
    // The copies live writes patched are persisted stale until the map's next flush: a crash then
    // would leave them unreadable while failed over.
    await this.volume.map.flush();
  }

  private act(action: HealthAction, report: HealthReport): void {
    if (action === 'fail-over' && this.coverageTierId() === undefined) {
      this.log.warn('failover', `the live volume is failing (${report.reason}) but without a coverage tier the shadows cannot serve everything: not failing over`);
    } else if (action === 'fail-over') void this.failover(report.reason);
    else if (action === 'resync') void this.failback().catch((err: Error) => this.log.error('resync', err.message));
    // abort-resync: the running resync fails on its own (its live ops error out or time out).
  }

  /** Replay the journal onto the live volume, then serve from it again. */
  failback(): Promise<void> {
    if (!this.volume.shadow) {
      // The monitor judged a failure but the volume never left the live volume (no coverage tier).
      if (this.monitor.state === 'resyncing') this.monitor.resyncDone(performance.now(), 'the live volume is healthy again (it was never failed over)');
      return Promise.resolve();
    }
    this.resyncing ??= this.runResync().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async runResync(): Promise<void> {
    const v = this.volume;
    await this.settling;
    if (this.monitor.state === 'failed-over') this.monitor.requestFailback(performance.now(), 'failback requested');
    this.journal.mode = 'resyncing';
    await this.store.commit([FailoverStore.meta('mode', 'resyncing')]);
    const resync = new Resync({
      livePath: v.livePath, mirror: this.mirror, journal: this.journal, store: this.store, map: v.map, tiers: v.tiers, guard: v.guard,
      extentSizeBytes: v.io.extentSizeBytes, bytesPerSec: this.resyncBytesPerSec, log: this.log, isOpen: (id) => !!v.open.file(id), dropFile: (id) => v.dropFileCopies(id),
    });
    resync.lateWritesPossible = this.lateWrites;
    this.resync = resync;
    const started = Date.now();
    try {
      // A live op abandoned earlier could still land and overwrite what resync writes.
      await v.guard.noAbandonedOps();
      for (let i = 0; i < 5; i++) if ((await resync.pass(false)) === 0 && resync.pendingExtents() < 64) break;
      await v.gate.exclusive(async () => {
        // Nothing the application does reaches the volume now; an extent the last pass still could
        // not settle (its generation moved while it was copied) is tried again, and failback waits
        // rather than leave the live file behind its shadows.
        let left = await resync.pass(true);
        for (let i = 0; left > 0 && i < FINAL_PASS_RETRIES; i++) left = await resync.pass(true);
        if (left > 0) throw new ShadowfsError(`${left} extents kept changing during resync's last pass; staying failed over`);
        await v.rehomeReplacedFiles((vp) => this.mirror.get(vp)?.fileId);
        v.shadow = undefined;
        v.guard.open();
        v.shadows.liveSourcePaused = false;
        this.journal.mode = 'live';
        this.journal.failedOverAtMs = null;
        this.journal.reason = '';
        await this.store.commit([FailoverStore.meta('mode', 'live'), FailoverStore.meta('reason', '')]);
        v.namespaceListener = this;
      });
    } catch (err) {
      this.journal.mode = 'failed-over';
      await this.store.commit([FailoverStore.meta('mode', 'failed-over')]).catch(() => undefined);
      if (this.monitor.state === 'resyncing') this.monitor.requestFailover(performance.now(), `resync failed: ${(err as Error).message}`);
      // The operator (failback) reads this: what happened and where the volume stands, not an
      // internal error.
      throw err instanceof ShadowfsError ? err : new ShadowfsError(`resync failed, staying failed over (it is tried again once the live volume is healthy): ${(err as Error).message}`);
    } finally {
      this.resync = undefined;
    }
    const seconds = (Date.now() - started) / 1000;
    this.lastResync = { finishedAtMs: Date.now(), extents: resync.progress.extentsDone, bytes: resync.progress.bytesDone, seconds, conflicts: resync.progress.conflicts };
    this.monitor.resyncDone(performance.now(), `resync finished: ${resync.progress.extentsDone} extents in ${seconds.toFixed(1)} s`);
    this.onFailedBack?.(resync.rewritten);
    this.log.warn('failover', `failed back to the live volume after resyncing ${resync.progress.extentsDone} extents (${resync.progress.conflicts.length} conflicts)`);
    this.startMirrorRebuild();
  }

  /**
   * Operator failover: refuses when the shadows cannot serve everything (unless forced). Coverage is
   * confirmed by a scan begun now: a file put on the live volume behind the mount's back since the
   * last one would otherwise count as covered, and read EIO once failed over.
   */
  async manualFailover(force: boolean, coverage: { freshShare(waitMs: number): Promise<number | undefined> } | undefined): Promise<void> {
    if (this.volume.shadow) throw new ShadowfsError('the volume is already failed over');
    if (!force) {
      if (!coverage) throw new ShadowfsError('the volume has no coverage tier: data without a shadow copy would be unreadable; use --force to fail over anyway');
      const share = await coverage.freshShare(COVERAGE_CONFIRM_MS);
      if (share === undefined) {
        throw new ShadowfsError(`coverage could not be confirmed: a scan of the live volume did not finish within ${COVERAGE_CONFIRM_MS / 1000} s; use --force to fail over anyway`);
      }
      if (share < 1) throw new ShadowfsError(`coverage is ${(share * 100).toFixed(1)}%: some data exists only on the live volume; wait for full coverage or use --force`);
      // The files coverage just confirmed must also be in the namespace the shadows will serve.
      if (!(await settlesWithin(this.refreshMirror(), COVERAGE_CONFIRM_MS))) {
        throw new ShadowfsError(`the namespace could not be confirmed: a walk of the live volume did not finish within ${COVERAGE_CONFIRM_MS / 1000} s; use --force to fail over anyway`);
      }
      if (this.volume.shadow) throw new ShadowfsError('the volume is already failed over');
    }
    if (!(await this.failover('failover requested by the operator', true))) throw new ShadowfsError('cannot fail over: no healthy directory tier to take writes');
  }

  async manualFailback(force: boolean): Promise<void> {
    if (!this.volume.shadow) throw new ShadowfsError('the volume is not failed over');
    if (!force) {
      const r = this.watchdog.evaluate();
      const probe = r.tracks.find((t) => t.name === 'probe');
      if (!probe || probe.samples === 0 || probe.errors > 0 || probe.timeouts > 0) {
        throw new ShadowfsError('the live volume has not answered its probes cleanly yet; retry later or use --force');
      }
    }
    await this.failback();
  }

  status(): FailoverStatus {
    return {
      mode: this.journal.mode,
      since: this.journal.failedOverAtMs,
      reason: this.journal.reason,
      dirtyExtents: this.dirtyExtents(),
      health: this.watchdog.report(),
      transitions: this.transitions(),
      resync: this.resync ? { ...this.resync.progress } : null,
      deadlineMs: this.volume.guard.deadlineMs,
      abandonedOps: this.volume.guard.abandonedOps,
      lastResync: this.lastResync,
    };
  }

  /**
   * Live ops are abandoned (and the volume fails over) only when the shadows can take over: with a
   * coverage tier. Without one, data that exists only on the live volume would become unreadable,
   * so ops wait for the live volume as on any filesystem (the watchdog still reports its health).
   */
  private guardOptions(): LiveGuardOptions {
    const s = this.monitor.settings;
    if (this.coverageTierId() === undefined) return { deadlineMs: NO_DEADLINE_MS, syncDeadlineMs: NO_DEADLINE_MS, maxConcurrent: 8 };
    return { deadlineMs: Math.min(s.opTimeoutMs, s.latencyLimitMs / 2), syncDeadlineMs: s.opTimeoutMs, maxConcurrent: 8 };
  }

  /** Watchdog settings changed in the config file: thresholds, deadline and probe interval apply now. */
  setWatchdog(settings: FailoverSettings): void {
    this.monitor.updateSettings(settings.health);
    const s = this.monitor.settings;
    this.volume.guard.setOptions(this.guardOptions());
    this.watchdog.setProbeInterval(settings.probeIntervalMs);
    if (settings.enabled || this.journal.mode !== 'live') this.watchdog.start();
    else this.watchdog.stop();
  }

  /** Health transitions with wall-clock times (the monitor runs on a monotonic clock). */
  transitions(): Transition[] {
    const offset = Date.now() - performance.now();
    return this.monitor.transitions().map((t) => ({ ...t, timeMs: t.timeMs + offset }));
  }

  get healthState(): string {
    return this.monitor.state;
  }

  private dirtyExtents(): number {
    let n = 0;
    for (const s of this.journal.dirty.values()) n += s.size;
    return n;
  }

  /** The short form, for `status`. */
  summary(): NonNullable<StatusReport['failover']> {
    return { mode: this.journal.mode, health: this.monitor.state, reason: this.journal.reason || this.watchdog.report().reason, since: this.journal.failedOverAtMs, dirtyExtents: this.dirtyExtents(), abandonedOps: this.volume.guard.abandonedOps };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchdog.stop();
    if (this.flushTimer) clearInterval(this.flushTimer);
    // Their walks stop at the next entry, and what they had staged goes out with the store's last
    // flush. Bounded: one look at a hung live volume never returns, and a walk that ends after the
    // store closed writes nothing (closed).
    if (this.rebuilding) await settlesWithin(this.rebuilding, MIRROR_WALK_STOP_MS);
    if (this.mirrorRefresh) await settlesWithin(this.mirrorRefresh, MIRROR_WALK_STOP_MS);
    await this.store.close();
  }
}

/** Same entry for the mirror: what getattr and resync would answer differently for. */
function sameEntry(a: MirrorEntry | undefined, b: MirrorEntry): boolean {
  return !!a && a.type === b.type && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.size === b.size &&
    a.mtimeMs === b.mtimeMs && a.fileId === b.fileId && a.target === b.target && a.nlink === b.nlink && a.rdev === b.rdev;
}

/** Entries of `was` that `scan` could not read (nor what lies under them) go into `mirror` as they were. */
function keepUnknown(mirror: NamespaceMirror, was: NamespaceMirror, scan: LiveScan): void {
  if (scan.complete) return;
  // Shallowest first: a directory is in place before its entries.
  const unknown = [...was.all()].filter(([p]) => !scan.knows(p) && !mirror.get(p));
  unknown.sort((a, b) => a[0].split('/').length - b[0].split('/').length);
  for (const [p, e] of unknown) mirror.set(p, e);
}
