/**
 * What a running mount answers on its control socket: one small function per command, each
 * validating its arguments and throwing ShadowfsError (a one-line reason) for bad ones.
 */
import { VolumeConfig, parseTier, parseTierFlag } from '../config/volume-config';
import { checkVolumePaths } from '../config/check-paths';
import { openTier } from '../tiers/open-tier';
import { Scrubber } from '../shadow/scrubber';
import { TierChanges } from '../shadow/tier-changes';
import { CoverageReplicator } from '../shadow/coverage';
import { ShadowfsError } from '../util/errors';
import { parseBytes } from '../util/units';
import { Volume } from '../volume/volume';
import { ControlServer } from './control-server';
import { StatusReport } from './protocol';
import { statusReport } from './status';
import { whichTier } from './which-tier';
import { inFlight } from '../fuse/adapter';

export interface MountContext {
  volume: Volume;
  coverage: CoverageReplicator | undefined;
  config: VolumeConfig;
  mountpoint: string;
  startedAtMs: number;
  fastPathStats: () => StatusReport['fastPath'];
}

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ShadowfsError(`${what} is required`);
  return v;
}

/** Registers the commands; returns the status report builder (metrics use it too). */
export function registerControlHandlers(control: ControlServer, ctx: MountContext): () => StatusReport {
  const { volume, coverage, config, mountpoint } = ctx;
  const scrubber = new Scrubber(volume.map, volume.tiers, (fileId, index, tierId) => {
    if (volume.map.removeCopy(fileId, index, tierId)) volume.shadows.discard(fileId, index, tierId);
  }, (bad) => {
    if (bad > 0) void coverage?.scan();
  });
  const tierChanges = new TierChanges(volume.map, volume.tiers, volume.shadows, () => coverage?.tierName);

  const status = (): StatusReport => statusReport(volume, mountpoint, config.extentSizeBytes, ctx.startedAtMs, ctx.fastPathStats(), coverage);
  control.on('status', async () => status());
  control.on('which-tier', async (req) => whichTier(volume, mountpoint, req.path, config.extentSizeBytes));
  control.on('in-flight', async () => Object.fromEntries(inFlight));
  control.on('scrub', async () => scrubber.run());
  control.on('scrub-progress', async () => scrubber.status());

  control.on('tier-add', async (req) => {
    const flag = requireString(req.spec, 'spec (NAME=PATH,cap=SIZE[,class=...])');
    const spec = parseTier(parseTierFlag(flag), volume.tiers.all().length);
    // Checked with the tiers it joins, so overlaps with the live volume and other tiers are caught.
    await checkVolumePaths({ ...config, tiers: [...volume.tiers.all().map((t) => t.tier.spec), spec] }, mountpoint);
    await tierChanges.add(openTier(spec));
    return { added: spec.name };
  });
  control.on('tier-set', async (req) => {
    const name = requireString(req.name, 'name');
    const capacityBytes = parseBytes(requireString(req.capacity, 'capacity') , `tier ${name}: capacity`);
    return tierChanges.setCapacity(name, capacityBytes);
  });
  control.on('tier-remove', async (req) => tierChanges.remove(requireString(req.name, 'name')));
  control.on('tier-progress', async () => tierChanges.progress() ?? null);
  return status;
}
