/**
 * Assembles a volume from its configuration: extent map, tiers, shadow manager, placement policy,
 * redirector, namespace and the live-directory watcher. The FUSE adapter mounts the result.
 */
import * as path from 'node:path';
import { VolumeConfig } from '../config/volume-config';
import { ExtentMap } from '../extents/extent-map';
import { IoRedirector, ReadObserver } from '../io/redirector';
import { NativeHeat } from '../io/native-heat';
import { ReactiveAdmission } from '../shadow/reactive-admission';
import { ShadowManager } from '../shadow/shadow-manager';
import { CoverageReplicator } from '../shadow/coverage';
import { Placements, PlacementEnforcer } from '../shadow/pins';
import { PredictivePlacement } from '../shadow/predictive-placement';
import { WorkloadHistory } from '../predict/history';
import { openTier } from '../tiers/open-tier';
import { ShadowTier } from '../tiers/tier';
import { TierSet } from '../tiers/tier-set';
import { TierProber } from '../tiers/tier-prober';
import { Logger } from '../util/log';
import { LiveWatcher } from './live-watcher';
import { Volume } from './volume';
import { FailoverController } from '../failover/failover-controller';
import { afterRestart, boundedSync, readBootId, SyncPoints } from './power-loss';
import type { SystemCalls } from './system-calls';
import { Scrubber } from '../shadow/scrubber';
import { ScrubSchedule } from '../shadow/scrub-schedule';
import { DamagedCopies } from '../shadow/damaged-copies';

export interface OpenedVolume {
  volume: Volume;
  watcher: LiveWatcher;
  coverage: CoverageReplicator | undefined;
  placements: Placements;
  predictive: PredictivePlacement | undefined;
  failover: FailoverController;
  /** Tells the policy what the FUSE layer served natively; the mount attaches it to the FuseMount. */
  nativeHeat: NativeHeat;
  /** Checks every copy against its checksum in the background (and its scrubber on demand). */
  scrubs: ScrubSchedule;
  close(): Promise<void>;
}

export async function openVolume(config: VolumeConfig, log: Logger, system: SystemCalls): Promise<OpenedVolume> {
  const map = await ExtentMap.open(path.join(config.stateDir, 'extents'));
  const opened: ShadowTier[] = [];
  try {
    const owner = await map.volumeId();
    for (const spec of config.tiers) {
      const tier = openTier(spec);
      await tier.open(owner);
      opened.push(tier);
    }
  } catch (err) {
    await Promise.all(opened.map((t) => t.close().catch(() => undefined)));
    await map.close();
    throw err;
  }
  const tiers = await TierSet.create(opened, map);
  const shadows = new ShadowManager(map, tiers, config.extentSizeBytes, {
    maxQueuedCopies: 1024,
    concurrentCopies: config.concurrentCopies,
    maxBytesPerSec: config.copyBytesPerSec,
  }, log);
  // The redirector reports reads to the policy, which needs the redirector's shadow manager: a
  // forwarding observer breaks the cycle.
  let policy: ReadObserver | undefined;
  const observer: ReadObserver = { onExtentRead: (f, i, s) => policy?.onExtentRead(f, i, s) };
  const io = new IoRedirector(map, tiers, config.extentSizeBytes, observer, (fileId, index, tierId) => shadows.discard(fileId, index, tierId));
  const volume = new Volume(config.livePath, map, tiers, io, shadows, log, system, config.writeAroundAfterBytes);
  await reconcile(map, tiers, log);
  const failover = await FailoverController.open(volume, config.stateDir, () => (config.coverageTier ? tiers.byName(config.coverageTier)?.id : undefined), config.watchdog, config.copyBytesPerSec, log);
  volume.filesDroppedAfterRestart = await afterRestart(map, (fileId) => volume.invalidate(fileId), failover.mode === 'live', readBootId(), log);
  const syncPoints = new SyncPoints(map, () => failover.mode === 'live', log, boundedSync(system.syncAll));
  syncPoints.start();
  const placements = new Placements(path.join(config.stateDir, 'pins.json'));
  let predictive: PredictivePlacement | undefined;
  if (config.placement === 'predictive') {
    const history = await WorkloadHistory.open(path.join(config.stateDir, 'history'));
    // One model directory per machine (beside the volumes' state directories): the pooled model.
    predictive = new PredictivePlacement(history, map, tiers, shadows, volume, placements, config.extentSizeBytes, config.coverageTier, log, {
      models: { dir: path.join(path.dirname(config.stateDir), 'models'), volumeId: path.basename(config.stateDir) },
    });
    const p = predictive;
    volume.onRequest = (op, bytes, latencyUs) => p.onRequest(op, bytes, latencyUs);
    predictive.start();
    policy = predictive;
  } else {
    policy = new ReactiveAdmission(tiers, shadows, config.admitAfterReads);
  }
  // Writes feed the prediction engine's heat like reads (coverage adds itself below).
  if (predictive) {
    const p = predictive;
    volume.onWrite = (file, first, last) => p.onExtentWritten(file.fileId, first, last, file.livePath);
  }
  // Requests the FUSE layer serves natively reach the policy as if they had come through JS: reads
  // as the redirector reports them, writes as onWrite feeds the engine. A handle's counts are
  // drained before it is forgotten (its fh is reused at once: it is the live fd), and native
  // requests count as foreground I/O that background copies yield to.
  const nativeHeat = new NativeHeat({
    handle: (fh) => volume.open.handle(fh),
    reads: observer,
    // What the extent is mapped to now answered its native reads (a copy, or the live file).
    servedBy: (fileId, index) => volume.fastPath.mappedTo(fileId, index) ?? io.freshCopies(fileId, index)[0]?.tierId ?? 'live',
    written: (file, index) => predictive?.onExtentWritten(file.fileId, index, index, file.livePath),
    foreground: (nowMs) => {
      volume.lastForegroundMs = Math.max(volume.lastForegroundMs, nowMs);
    },
  });
  volume.open.beforeRemoveHandle = (h) => nativeHeat.drain(h.fh);
  const foregroundMs = shadows.lastForegroundMs;
  shadows.lastForegroundMs = () => {
    nativeHeat.refresh();
    return foregroundMs();
  };
  if (predictive) predictive.beforeRound = () => nativeHeat.drain();
  let coverage: CoverageReplicator | undefined;
  const coverageTier = config.coverageTier ? tiers.byName(config.coverageTier) : undefined;
  if (coverageTier) {
    shadows.protectedTiers.add(coverageTier.id);
    // A volume that keeps a full shadow keeps every acknowledged write on one too, not only after
    // the coverage lag (on the coverage tier itself when it is a healthy directory tier).
    io.newCopyHomes = () => tiers.homesForWrites(coverageTier.id).map((vt) => vt.id);
    coverage = new CoverageReplicator(config.livePath, coverageTier.tier.spec.name, coverageTier.id, map, shadows, volume, config.extentSizeBytes, config.coverageScanIntervalMs, log);
    const c = coverage;
    map.onCopyRemoved = (fileId, index, tierId) => c.copyRemoved(fileId, index, tierId);
    volume.onWrite = (file, first, last) => {
      c.noteWrite(file, first, last);
      predictive?.onExtentWritten(file.fileId, first, last, file.livePath);
    };
    // Files coverage finds made behind the mount's back must be in the namespace failover serves:
    // its scans walk the live tree through the failover controller, which refreshes the mirror.
    c.walkLive = (stopped) => failover.walkLiveForCoverage(stopped);
    volume.onRenamed = (from, to) => c.moved(from, to);
    failover.onFailedBack = (rewritten) => {
      for (const [fileId, f] of rewritten) c.noteNewFile(fileId, f.livePath, f.sizeBytes);
      // No scan ran while failed over (after a remount then, coverage has measured nothing at
      // all): look now rather than at the next interval, so a failover soon after finds it known.
      void c.scan();
    };
    c.start();
  }
  shadows.isProtected = (tierName, fileId, index) => placements.isProtected(tierName, fileId, index, Date.now());
  const enforcer = new PlacementEnforcer(placements, {
    pinFile: (p) => volume.pinFile(p),
    unpinFile: (f) => volume.unpinFile(f),
    hasFreshCopy: (fileId, index, tierName) => {
      const vt = tiers.byName(tierName);
      const rec = map.get(fileId, index);
      return !!vt && !!rec && rec.copies.some((c) => c.tierId === vt.id && c.generation === rec.generation);
    },
    fastestTier: () => tiers.fastestTakingCopies()?.tier.spec.name,
    requestCopy: (file, index, tierName) => {
      const vt = tiers.byName(tierName);
      return !!vt && shadows.requestCopy(file, index, vt.id);
    },
    extentSizeBytes: config.extentSizeBytes,
  });
  enforcer.start();
  const prober = new TierProber(tiers, 2_000, log);
  prober.start();
  const damaged = new DamagedCopies({
    pathsOf: (fileId) => failover.pathsOf(fileId),
    tierName: (tierId) => tiers.get(tierId)?.tier.spec.name ?? `tier ${tierId}`,
    log,
  });
  // A copy that cannot be read right now may be readable later: while failed over, an extent's
  // last fresh copy stays (reads of it fail meanwhile; FailoverController.isLastHome). Wrong bytes go.
  io.keepsUnreadable = (fileId, index) => failover.isLastHome(fileId, index);
  io.onDamagedCopy = (fileId, index, tierId, why) => damaged.dropped(fileId, index, tierId, why, failover.copyDropped(fileId, index));
  const scrubber = new Scrubber(map, tiers, (fileId, index, tierId, why, unreadable) => {
    if (unreadable && failover.isLastHome(fileId, index)) return;
    if (!map.removeCopy(fileId, index, tierId)) return;
    damaged.dropped(fileId, index, tierId, why, failover.copyDropped(fileId, index));
    shadows.discard(fileId, index, tierId);
  }, (bad) => {
    if (bad > 0) void coverage?.scan();
  }, config.scrubBytesPerSec);
  const scrubs = new ScrubSchedule(scrubber, map, config.scrubIntervalMs, log);
  scrubs.start();
  // Off by default: chokidar re-reads a directory on every change inside it, our own writes
  // included (measured: 4 KiB writes 6x slower beside 2,000 files). Opening a file checks size and
  // mtime anyway; the watcher adds changes to files the mount keeps open.
  const watcher = new LiveWatcher(config.livePath, (p) => volume.liveChanged(p), log);
  if (config.watchLive) await watcher.start();
  failover.start();
  return {
    volume,
    watcher,
    coverage,
    placements,
    predictive,
    failover,
    nativeHeat,
    scrubs,
    async close() {
      nativeHeat.stop();
      prober.stop();
      await scrubs.stop();
      await failover.close();
      enforcer.stop();
      await predictive?.close();
      await coverage?.stop();
      await watcher.stop();
      // A clean unmount is a sync point: no mark outlives it (unless the live volume cannot sync).
      await syncPoints.close();
      await volume.close();
    },
  };
}

/**
 * After a crash a tier may hold copies the map never recorded (the copy landed, the record did
 * not), and the map may point at copies whose bytes are gone: drop both kinds of mismatch.
 */
async function reconcile(map: ExtentMap, tiers: TierSet, log: Logger): Promise<void> {
  let orphans = 0;
  let missing = 0;
  for (const vt of tiers.all()) {
    for await (const ref of vt.tier.list()) {
      if (!map.hasCopyOn(ref.fileId, ref.index, vt.id)) {
        await vt.tier.remove(ref);
        orphans++;
      }
    }
    // The tier's inventory says what it holds (no set of what was listed: a million copies made
    // one of ~80 MB as strings, ~20 MB as numbers).
    for (const fileId of [...map.fileIds()]) {
      for (const [index, rec] of map.extents(fileId)) {
        if (rec.copies.some((c) => c.tierId === vt.id) && !vt.tier.holds({ fileId, index })) {
          map.removeCopy(fileId, index, vt.id);
          missing++;
        }
      }
    }
  }
  if (orphans + missing > 0) log.info('volume', `reconciled tiers: ${orphans} unrecorded copies removed, ${missing} missing copies forgotten`);
  await map.flush();
}
