/**
 * What a running mount answers on its control socket: one small function per command, each
 * validating its arguments and throwing ShadowfsError (a one-line reason) for bad ones.
 */
import { VolumeConfig, parseTier, parseTierFlag } from '../config/volume-config';
import { checkVolumePaths } from '../config/check-paths';
import { openTier } from '../tiers/open-tier';
import type { ScrubSchedule } from '../shadow/scrub-schedule';
import { TierChanges } from '../shadow/tier-changes';
import { CoverageReplicator } from '../shadow/coverage';
import { ShadowfsError } from '../util/errors';
import { parseBytes } from '../util/units';
import { Volume } from '../volume/volume';
import { ControlServer } from './control-server';
import { ControlRequest, StatusReport } from './protocol';
import { statusReport } from './status';
import { volumePath, whichTier } from './which-tier';
import { Placements } from '../shadow/pins';
import { PredictivePlacement } from '../shadow/predictive-placement';
import { OneOffMoves, drainingRefusal, extentRangeOf, type MoveRequest } from '../shadow/one-off-moves';
import { inFlight } from '../fuse/adapter';
import type { FailoverController } from '../failover/failover-controller';
import { ConfigReloader } from '../config/config-reloader';
import { mountReloadTarget } from '../config/reload-target';
import type { LiveWatcher } from '../volume/live-watcher';

export interface MountContext {
  volume: Volume;
  placements: Placements;
  predictive: PredictivePlacement | undefined;
  coverage: CoverageReplicator | undefined;
  scrubs: ScrubSchedule;
  config: VolumeConfig;
  mountpoint: string;
  startedAtMs: number;
  fastPathStats: () => StatusReport['fastPath'];
  /** Undefined when the mount does not write natively. */
  nativeWriteStats?: () => Omit<NonNullable<StatusReport['nativeWrites']>, 'grantedExtents'>;
  failover?: FailoverController;
  /** Set when the mount was started from a config file (`reload`, and the file is watched). */
  reloader?: ConfigReloader;
  liveWatcher?: LiveWatcher;
}

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ShadowfsError(`${what} is required`);
  return v;
}

/** Registers the commands; returns the status report builder (metrics use it too). */
export function registerControlHandlers(control: ControlServer, ctx: MountContext): () => StatusReport {
  const { volume, coverage, config, mountpoint } = ctx;
  const { scrubs } = ctx;
  const { scrubber } = scrubs;
  const tierChanges = new TierChanges(volume.map, volume.tiers, volume.shadows, () => coverage?.tierName, {
    livePathOf: (fileId) => coverage?.livePathOf(fileId),
    pinFile: (p) => volume.pinFile(p),
    unpinFile: (f) => volume.unpinFile(f),
  });

  const nativeWrites = (): StatusReport['nativeWrites'] => {
    const w = volume.nativeWrites.active ? ctx.nativeWriteStats?.() : undefined;
    return w && { ...w, grantedExtents: volume.nativeWrites.grantedExtents() };
  };
  const scrub = (): StatusReport['scrub'] => {
    const s = scrubber.status();
    return { lastFinishedAtMs: volume.map.lastScrubbedAtMs ?? null, nextDueAtMs: scrubs.nextDueAtMs() ?? null, running: s.running, paced: s.paced, checkedCopies: s.checkedCopies, totalCopies: s.totalCopies };
  };
  const status = (): StatusReport => ({ ...statusReportOf(), nativeWrites: nativeWrites(), failover: ctx.failover?.summary(), scrub: scrub() });
  const statusReportOf = (): StatusReport => statusReport(volume, mountpoint, config.extentSizeBytes, ctx.startedAtMs, ctx.fastPathStats(), coverage, ctx.placements, ctx.predictive, ctx.reloader?.summary() ?? null);
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
    const current = volume.tiers.byName(name);
    if (volume.shadow && current && capacityBytes < current.tier.spec.capacityBytes) throw new ShadowfsError('the volume is failed over and serves from its tiers: fail back before shrinking one');
    return tierChanges.setCapacity(name, capacityBytes);
  });
  control.on('tier-remove', async (req) => {
    if (volume.shadow) throw new ShadowfsError('the volume is failed over and serves from its tiers: fail back before removing one');
    return tierChanges.remove(requireString(req.name, 'name'));
  });
  control.on('tier-progress', async () => tierChanges.progress() ?? null);

  ctx.reloader?.attach(mountReloadTarget({ volume, tierChanges, coverage, scrubs, predictive: ctx.predictive, liveWatcher: ctx.liveWatcher, config, mountpoint, volumeMode: () => ctx.failover?.mode ?? 'live' }));
  control.on('reload', async () => {
    if (!ctx.reloader) throw new ShadowfsError('this mount was started without --config: there is no config file to reload');
    return ctx.reloader.reload('command');
  });

  /** A regular file of the volume, by a path inside the mount: its volume path, live path and id. */
  const fileOf = async (given: unknown): Promise<{ vp: string; lp: string; fileId: string; sizeBytes: number }> => {
    const vp = volumePath(mountpoint, requireString(given, 'path'));
    const st = await volume.getattr(vp).catch(() => {
      throw new ShadowfsError(`${String(given)}: no such file in the volume`);
    });
    if (!st.isFile()) throw new ShadowfsError(`${String(given)} is not a regular file`);
    return { vp, lp: volume.live(vp), fileId: Volume.fileIdOf(st), sizeBytes: st.size };
  };
  control.on('pin', async (req) => {
    const tier = requireString(req.tier, 'tier');
    const vt = volume.tiers.byName(tier);
    if (!vt) throw new ShadowfsError(`no tier named ${tier} (tiers: ${volume.tiers.all().map((t) => t.tier.spec.name).join(', ')})`);
    if (volume.tiers.draining.has(vt.id)) throw new ShadowfsError(drainingRefusal(tier));
    const f = await fileOf(req.path);
    ctx.placements.pin({ fileId: f.fileId, path: f.lp, tier });
    return { pinned: f.vp, tier };
  });
  control.on('unpin', async (req) => {
    const f = await fileOf(req.path);
    if (!ctx.placements.unpin(f.fileId)) throw new ShadowfsError(`${f.vp} is not pinned`);
    return { unpinned: f.vp };
  });
  control.on('hint', async (req) => {
    const f = await fileOf(req.path);
    const E = config.extentSizeBytes;
    const from = req.fromByte === undefined ? 0 : Number(req.fromByte);
    const to = req.toByte === undefined ? Math.max(0, f.sizeBytes - 1) : Number(req.toByte);
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) throw new ShadowfsError('range: expected A-B with 0 <= A <= B (bytes)');
    const atMs = req.atMs === undefined ? Date.now() : Number(req.atMs);
    const durationMs = req.durationMs === undefined ? 10 * 60_000 : Number(req.durationMs);
    if (!Number.isFinite(atMs) || !Number.isFinite(durationMs) || durationMs <= 0) throw new ShadowfsError('hint: bad time or duration');
    ctx.placements.addHint({ fileId: f.fileId, path: f.lp, firstIndex: Math.floor(from / E), lastIndex: Math.floor(to / E), fromMs: atMs, untilMs: atMs + durationMs });
    return { hinted: f.vp, extents: Math.floor(to / E) - Math.floor(from / E) + 1, atMs, untilMs: atMs + durationMs };
  });
  control.on('placements', async () => ({ pins: ctx.placements.allPins(), hints: ctx.placements.pendingHints(Date.now()) }));
  const moves = new OneOffMoves(volume.map, volume.tiers, volume.shadows, volume, ctx.placements, config.extentSizeBytes, () => coverage?.tierName);
  if (ctx.predictive) ctx.predictive.operatorMoves = moves;
  const moveRequest = async (req: ControlRequest): Promise<MoveRequest> => {
    const tier = requireString(req.tier, 'tier');
    const f = await fileOf(req.path);
    const range = extentRangeOf(req.fromByte, req.toByte, f.sizeBytes, config.extentSizeBytes);
    return { id: typeof req.id === 'string' ? req.id : undefined, path: f.vp, livePath: f.lp, fileId: f.fileId, tier, ...range };
  };
  control.on('promote', async (req) => moves.promote(await moveRequest(req)));
  control.on('demote', async (req) => moves.demote(await moveRequest({ ...req, fromByte: undefined, toByte: undefined })));
  control.on('move-progress', async (req) => moves.progress(requireString(req.id, 'id')) ?? null);
  control.on('forecast', async (req) => {
    if (!ctx.predictive) throw new ShadowfsError(`${mountpoint} uses reactive placement, which makes no forecasts (mount with --placement predictive)`);
    const horizon = req.horizon === undefined ? undefined : Number(req.horizon);
    if (horizon !== undefined && !ctx.predictive.engine.forecaster.horizonsSteps.includes(horizon)) {
      throw new ShadowfsError(`horizon: expected one of ${ctx.predictive.engine.forecaster.horizonsSteps.join(', ')} minutes, got ${String(req.horizon)}`);
    }
    const points = req.points === undefined ? 10 : Number(req.points);
    if (!Number.isInteger(points) || points < 0) throw new ShadowfsError('points: expected a whole number >= 0');
    return ctx.predictive.forecast(mountpoint, { horizons: horizon === undefined ? undefined : [horizon], points });
  });
  return status;
}
