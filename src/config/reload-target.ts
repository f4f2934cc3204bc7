/**
 * How a reloaded config reaches the parts of a running mount: tiers through TierChanges (as the
 * `tier` command does), copy limits through the shadow manager, intervals through their timers.
 */
import { checkVolumePaths } from './check-paths';
import { ConfigChange } from './config-diff';
import { ReloadTarget } from './config-reloader';
import { VolumeConfig } from './volume-config';
import { CoverageReplicator } from '../shadow/coverage';
import { PredictivePlacement } from '../shadow/predictive-placement';
import { ScrubSchedule } from '../shadow/scrub-schedule';
import { TierChanges } from '../shadow/tier-changes';
import { openTier } from '../tiers/open-tier';
import { ShadowfsError } from '../util/errors';
import { formatBytes } from '../util/units';
import type { LiveWatcher } from '../volume/live-watcher';
import type { Volume } from '../volume/volume';

export interface RunningMount {
  volume: Volume;
  tierChanges: TierChanges;
  coverage: CoverageReplicator | undefined;
  scrubs: ScrubSchedule;
  predictive: PredictivePlacement | undefined;
  liveWatcher: LiveWatcher | undefined;
  /** The settings the mount started with (live path, state directory: fixed for its life). */
  config: VolumeConfig;
  mountpoint: string;
  /** 'live', or failed over / resyncing: then the shadows hold the only reachable bytes. */
  volumeMode: () => string;
}

export function mountReloadTarget(m: RunningMount): ReloadTarget {
  const { volume, tierChanges } = m;
  const tierNamed = (name: string) => {
    const vt = volume.tiers.byName(name);
    if (!vt) throw new ShadowfsError(`no tier named ${name}`);
    return vt;
  };
  return {
    tiers: () => volume.tiers.all().map((t) => ({ ...t.tier.spec })),

    async preflight(changes: ConfigChange[]): Promise<string[]> {
      const refusals: string[] = [];
      const running = volume.tiers.all().map((t) => t.tier.spec);
      const added = changes.flatMap((c) => (c.kind === 'tier-add' ? [c.spec] : []));
      const removed = changes.filter((c) => c.kind === 'tier-remove').length;
      if (running.length + added.length - removed === 0) refusals.push('tiers: a running mount keeps at least one tier');
      if (added.length > 0) {
        // Checked with the tiers they join (as `tier add` does): overlaps and unusable directories.
        try {
          await checkVolumePaths({ ...m.config, tiers: [...running, ...added] }, m.mountpoint);
        } catch (err) {
          if (!(err instanceof ShadowfsError)) throw err;
          refusals.push(`tiers: ${err.message}`);
        }
      }
      for (const c of changes) {
        if (c.kind !== 'tier-capacity') continue;
        const vt = volume.tiers.byName(c.name);
        if (vt && volume.shadows.protectedTiers.has(vt.id) && c.toBytes < vt.tier.usedBytes()) {
          refusals.push(`tiers.${c.name}.capacity: the tier holds the volume's coverage (${formatBytes(vt.tier.usedBytes())}); it cannot shrink below that`);
        }
      }
      const mode = m.volumeMode();
      const drops = changes.filter((c) => c.kind === 'tier-remove' || (c.kind === 'tier-capacity' && c.toBytes < c.fromBytes));
      if (mode !== 'live' && drops.length > 0) {
        refusals.push(`tiers: the volume is ${mode}, its shadows are what it serves from; no tier shrinks or goes away until it has failed back`);
      }
      if (changes.some((c) => c.kind === 'watch-live') && !m.liveWatcher) refusals.push('watchLive: this mount has no live watcher');
      return refusals;
    },

    addTier: (spec) => tierChanges.add(openTier(spec)),
    async setTierCapacity(name, capacityBytes) {
      await tierChanges.setCapacity(name, capacityBytes);
    },
    setTierCost(name, costPerGiBMonth) {
      tierNamed(name).tier.spec.costPerGiBMonth = costPerGiBMonth;
    },
    async removeTier(name) {
      await tierChanges.remove(name);
    },
    setCopyLimits: (limits) => volume.shadows.setCopyLimits(limits),
    // setAdmitAfterReads: absent until the mount hands out its reactive admission policy.
    setCoverageScanIntervalMs: (ms) => m.coverage?.setScanIntervalMs(ms),
    setScrubIntervalMs: (ms) => m.scrubs.setIntervalMs(ms),
    setScrubRate: (bytesPerSec) => m.scrubs.setRate(bytesPerSec),
    async setWatchLive(on) {
      if (on) await m.liveWatcher?.start();
      else await m.liveWatcher?.stop();
    },
    setPredictor: (p) => m.predictive?.setRoundIntervalMs(p.planIntervalMs),
  };
}
