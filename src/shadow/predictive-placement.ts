/**
 * Predictive placement under FUSE: the policy that replaces reactive admission when the volume is
 * mounted with `placement: predictive`. Every read the redirector serves feeds the prediction
 * engine (src/predict); every round, the engine's candidates are predicted and handed to the same
 * pure planner the offline replay uses, and the shadow manager is asked for the copies the plan
 * wants and the tiers lack. Sequential readahead from the engine is staged at once.
 *
 * Limits, for now: reads served by the native fast path are not seen (those extents are already
 * on the fastest tier), writes do not feed heat, and the plan only adds copies — room is still made
 * by least-recently-read eviction in the shadow manager.
 */
import { isFresh, ExtentMap } from '../extents/extent-map';
import { ReadObserver } from '../io/redirector';
import { PredictionEngine } from '../predict/engine';
import { WorkloadHistory } from '../predict/history';
import { planPlacement, PlannerTier } from '../predict/planner';
import { TierSet } from '../tiers/tier-set';
import { TierClass } from '../tiers/tier';
import { Logger } from '../util/log';
import { OpenFile } from '../volume/open-files';
import { FilePinner } from './coverage';
import { Placements } from './pins';
import { ShadowManager } from './shadow-manager';

/** Typical read latency by class, until tiers measure their own. */
const CLASS_LATENCY_US: Record<TierClass, number> = { nvme: 100, ssd: 250, hdd: 8_000, object: 40_000 };
const MAX_REMEMBERED_PATHS = 100_000;
const MAX_NEW_COPIES_PER_ROUND = 256;

export interface PredictiveCounters {
  rounds: number;
  planned: number;
  requested: number;
  readahead: number;
}

export class PredictivePlacement implements ReadObserver {
  readonly counters: PredictiveCounters = { rounds: 0, planned: 0, requested: 0, readahead: 0 };
  private readonly paths = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private planning = false;
  readonly engine: PredictionEngine;

  constructor(
    private readonly history: WorkloadHistory,
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    private readonly shadows: ShadowManager,
    private readonly files: FilePinner,
    private readonly placements: Placements,
    private readonly extentSizeBytes: number,
    private readonly coverageTier: string | undefined,
    private readonly log: Logger,
  ) {
    this.engine = new PredictionEngine(history, { extentSizeBytes });
  }

  start(roundMs = 2_000): void {
    this.timer = setInterval(() => void this.round(Date.now() * 1000), roundMs);
    this.timer.unref();
    this.flushTimer = setInterval(() => void this.history.flush().catch(() => undefined), 30_000);
    this.flushTimer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.history.close();
  }

  private fastest(): { id: number; name: string } | undefined {
    const t = this.tiers.all().find((x) => x.tier.health() === 'healthy');
    return t ? { id: t.id, name: t.tier.spec.name } : undefined;
  }

  onExtentRead(file: OpenFile, index: number, servedBy: number | 'live'): void {
    if (servedBy !== 'live') this.shadows.touch(servedBy, file.fileId, index);
    this.paths.delete(file.fileId);
    this.paths.set(file.fileId, file.livePath);
    if (this.paths.size > MAX_REMEMBERED_PATHS) this.paths.delete(this.paths.keys().next().value as string);
    const out = this.engine.recordExtentAccess({ fileId: file.fileId, index }, Date.now() * 1000);
    const fastest = this.fastest();
    if (!fastest) return;
    for (const r of out.readahead) {
      if (r.fileId !== file.fileId || r.index * this.extentSizeBytes >= file.sizeBytes) continue;
      if (!this.hasFresh(r.fileId, r.index, fastest.id) && this.shadows.requestCopy(file, r.index, fastest.id)) this.counters.readahead++;
    }
  }

  private hasFresh(fileId: string, index: number, tierId: number): boolean {
    const rec = this.map.get(fileId, index);
    return !!rec && rec.copies.some((c) => c.tierId === tierId && isFresh(rec, c));
  }

  private plannerTiers(): PlannerTier[] {
    return this.tiers.all().map(({ tier }) => ({
      name: tier.spec.name,
      class: tier.spec.class,
      capacityBytes: tier.spec.capacityBytes,
      latencyUs: CLASS_LATENCY_US[tier.spec.class],
      costPerGiBMonth: tier.spec.costPerGiBMonth,
      healthy: tier.health() === 'healthy',
    }));
  }

  /** One planning round: predict the candidates, plan, and ask for the copies the plan adds. */
  async round(nowUs: number): Promise<void> {
    if (this.planning) return;
    this.planning = true;
    try {
      this.engine.tick(nowUs);
      const candidates = this.engine.planningCandidates(nowUs);
      if (candidates.length === 0) return;
      const names = new Map(this.tiers.all().map((t) => [t.id, t.tier.spec.name]));
      const extents = candidates.map((ref) => {
        const rec = this.map.get(ref.fileId, ref.index);
        const currentTiers = rec ? rec.copies.filter((c) => isFresh(rec, c)).map((c) => names.get(c.tierId) ?? '').filter(Boolean) : [];
        return { ref, sizeBytes: this.extentSizeBytes, predictedAccesses: this.engine.predict(ref, nowUs), currentTiers, pinnedTier: this.placements.pinOf(ref.fileId)?.tier };
      });
      const plan = planPlacement({ tiers: this.plannerTiers(), extents, coverageTier: this.coverageTier, maxNewCopies: MAX_NEW_COPIES_PER_ROUND });
      this.counters.rounds++;
      const wanted = new Map<string, { index: number; tier: string }[]>();
      plan.placements.forEach((p, i) => {
        for (const tier of p.tiers) {
          if (tier === this.coverageTier || extents[i].currentTiers.includes(tier)) continue;
          const list = wanted.get(p.ref.fileId) ?? [];
          list.push({ index: p.ref.index, tier });
          wanted.set(p.ref.fileId, list);
          this.counters.planned++;
        }
      });
      for (const [fileId, list] of wanted) {
        const livePath = this.paths.get(fileId);
        if (!livePath) continue;
        const file = await this.files.pinFile(livePath);
        if (!file) continue;
        try {
          if (file.fileId !== fileId) continue;
          for (const { index, tier } of list) {
            const vt = this.tiers.byName(tier);
            if (vt && index * this.extentSizeBytes < file.sizeBytes && this.shadows.requestCopy(file, index, vt.id)) this.counters.requested++;
          }
        } finally {
          this.files.unpinFile(file);
        }
      }
    } catch (err) {
      this.log.warn('predict', `planning round failed: ${(err as Error).message}`);
    } finally {
      this.planning = false;
    }
  }
}
