/** Builds the status report of a running volume (what `shadowfs status` shows). */
import { Volume } from '../volume/volume';
import { StatusReport } from './protocol';

export function statusReport(volume: Volume, mountpoint: string, extentSizeBytes: number, startedAtMs: number, fastPath: StatusReport['fastPath']): StatusReport {
  const io = volume.io.counters;
  const sh = volume.shadows.counters;
  return {
    mountpoint,
    livePath: volume.livePath,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - startedAtMs) / 1000),
    extentSizeBytes,
    tiers: volume.tiers.all().map(({ tier }) => ({
      name: tier.spec.name,
      class: tier.spec.class,
      health: tier.health(),
      usedBytes: tier.usedBytes(),
      capacityBytes: tier.spec.capacityBytes,
      costPerGiBMonth: tier.spec.costPerGiBMonth,
    })),
    served: [...io.bytesBySource.entries()].map(([source, bytes]) => ({ source, bytes, reads: io.readsBySource.get(source) ?? 0 })),
    fastPath: { ...fastPath, mappedExtents: volume.fastPath.mappedExtents() },
    shadow: {
      copies: sh.copies,
      copyBytes: sh.copyBytes,
      evictions: sh.evictions,
      discardedCopies: sh.discardedCopies,
      failedCopies: sh.failedCopies,
      copyErrors: io.copyErrors,
      corruptCopies: io.corruptCopies,
    },
  };
}
