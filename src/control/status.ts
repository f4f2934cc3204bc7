/** Builds the status report of a running volume (what `shadowfs status` shows). */
import { Volume } from '../volume/volume';
import { StatusReport } from './protocol';
import * as path from 'node:path';
import { CoverageReplicator } from '../shadow/coverage';
import { Placements } from '../shadow/pins';
import { PredictivePlacement } from '../shadow/predictive-placement';

const GIB = 1024 ** 3;

export function statusReport(volume: Volume, mountpoint: string, extentSizeBytes: number, startedAtMs: number, fastPath: StatusReport['fastPath'], coverage: CoverageReplicator | undefined, placements: Placements, predictive: PredictivePlacement | undefined, config: StatusReport['config'] = null): StatusReport {
  const io = volume.io.counters;
  const sh = volume.shadows.counters;
  const tiers = volume.tiers.all();
  const placement = tiers.reduce((sum, { tier }) => sum + (tier.usedBytes() / GIB) * tier.spec.costPerGiBMonth, 0);
  const held = tiers.reduce((sum, { tier }) => sum + tier.usedBytes(), 0);
  const fastest = tiers[0]?.tier.spec.costPerGiBMonth ?? 0;
  return {
    coverage: coverage ? coverage.report(Date.now()) : null,
    config,
    pins: placements.allPins().map((p) => ({ path: path.relative(volume.livePath, p.path), tier: p.tier })),
    hints: placements.pendingHints(Date.now()).length,
    placement: predictive ? { policy: 'predictive', ...predictive.counters } : { policy: 'reactive', rounds: 0, planned: 0, requested: 0, readahead: 0 },
    cost: { placementPerMonth: placement, allOnFastestPerMonth: (held / GIB) * fastest },
    mountpoint,
    livePath: volume.livePath,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - startedAtMs) / 1000),
    extentSizeBytes,
    tiers: volume.tiers.all().map(({ id, tier }) => ({
      readP95Us: volume.io.latencies.p95Us(id),
      name: tier.spec.name,
      class: tier.spec.class,
      health: tier.health(),
      usedBytes: tier.usedBytes(),
      capacityBytes: tier.spec.capacityBytes,
      costPerGiBMonth: tier.spec.costPerGiBMonth,
    })),
    served: [...io.bytesBySource.entries()].map(([source, bytes]) => ({ source, bytes, reads: io.readsBySource.get(source) ?? 0 })),
    fastPath: { ...fastPath, mappedExtents: volume.fastPath.mappedExtents(), liveMappedExtents: volume.fastPath.liveMappedExtents() },
    shadow: {
      copies: sh.copies,
      copyBytes: sh.copyBytes,
      evictions: sh.evictions,
      discardedCopies: sh.discardedCopies,
      failedCopies: sh.failedCopies,
      copyErrors: io.copyErrors,
      corruptCopies: io.corruptCopies,
      hedgesIssued: io.hedgesIssued,
      hedgesWon: io.hedgesWon,
      writtenAround: io.writtenAround,
      writtenCopies: sh.writtenCopies,
      liveOnlyWrites: io.liveOnlyWrites,
      liveReads: { direct: volume.directLiveReads.counters.directReads, buffered: volume.directLiveReads.counters.bufferedReads },
      unsyncedFiles: volume.map.markedFiles().length,
      filesDroppedAfterRestart: volume.filesDroppedAfterRestart,
    },
  };
}
