/** The volume config the failover tests mount: 64 KiB extents, nvme + hdd, hdd the coverage tier; `extra` adds or overrides keys. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Sandbox } from './mounted-volume';

export function failoverConfigFile(sb: Sandbox, watchdog: Record<string, unknown>, live = sb.live, extra: Record<string, unknown> = {}): string {
  const file = path.join(sb.root, 'volume.json');
  fs.writeFileSync(file, JSON.stringify({
    live, stateDir: sb.state, extentSize: '64KiB',
    tiers: [
      { name: 'nvme', class: 'nvme', path: sb.tierDir('nvme'), capacity: '64MiB' },
      { name: 'hdd', class: 'hdd', path: sb.tierDir('hdd'), capacity: '256MiB' },
    ],
    coverageTier: 'hdd',
    watchdog,
    ...extra,
  }));
  return file;
}

/**
 * What the randomized runs over failovers (failover-fsx) and tier faults (tier-faults-fsx) mount:
 * 16 KiB extents, admission after one read, a small nvme (evictions) and ssd, hdd the coverage tier.
 */
export function fsxVolumeExtra(sb: Sandbox): Record<string, unknown> {
  return {
    extentSize: '16KiB',
    admitAfterReads: 1,
    writeAroundAfter: '32KiB',
    tiers: [
      { name: 'nvme', class: 'nvme', path: sb.tierDir('nvme'), capacity: '128KiB' },
      { name: 'ssd', class: 'ssd', path: sb.tierDir('ssd'), capacity: '512KiB' },
      { name: 'hdd', class: 'hdd', path: sb.tierDir('hdd'), capacity: '32MiB' },
    ],
    coverageTier: 'hdd',
  };
}
