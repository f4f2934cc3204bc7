/**
 * Predictive placement under FUSE: the policy that replaces reactive admission when the volume is
 * mounted with `placement: predictive`. Every read the redirector serves (and every write, when the
 * volume reports them) feeds the prediction engine (src/predict); every round, the engine's
 * candidates and the performance tiers' residents are predicted and handed to the same pure planner
 * the offline replay uses, and the shadow manager executes the difference: copies the plan adds,
 * moves down for extents it demotes (copied from the faster tier, then dropped there), drops for
 * extents it no longer wants on a performance tier. Sequential readahead is staged at once.
 *
 * The forecaster's pooled model is kept in step with the shared model directory (ModelSync), when
 * one is given. Reads and writes the FUSE layer serves natively arrive like the others, drained
 * from its counters (src/io/native-heat.ts; `beforeRound` drains them). Limits: an extent whose
 * file was not read or written since the mount cannot be copied or moved (no path), only dropped
 * where the coverage tier holds it.
 */
import { isFresh, ExtentMap } from '../extents/extent-map';
import { ReadObserver } from '../io/redirector';
import { PredictionEngine } from '../predict/engine';
import { forecastReport, type ForecastReport } from '../predict/forecast-report';
import { WorkloadHistory } from '../predict/history';
import { ModelStore } from '../predict/model-store';
import { ModelSync } from '../predict/model-sync';
import { planPlacement, PlannerTier } from '../predict/planner';
import { TierSet } from '../tiers/tier-set';
import { ExtentRef, TierClass } from '../tiers/tier';
import { Logger } from '../util/log';
import { OpenFile } from '../volume/open-files';
import { FilePinner } from './coverage';
import { Placements } from './pins';
import { ShadowManager } from './shadow-manager';

/** Typical read latency by class, until tiers measure their own. */
const CLASS_LATENCY_US: Record<TierClass, number> = { nvme: 100, ssd: 250, hdd: 8_000, object: 40_000 };
/** The live volume: in production a network or HDD volume; a tier is worth it only if faster. */
const LIVE_LATENCY_US = 8_000;
const MAX_REMEMBERED_PATHS = 100_000;
const MAX_NEW_COPIES_PER_ROUND = 256;
/** A single write covering more extents than this feeds only its first ones (a bound per call). */
const MAX_EXTENTS_PER_WRITE = 4096;
/** A staged readahead extent counts as one expected access this long (as in the replay), so the next round does not undo it. */
const READAHEAD_FLOOR_MS = 30_000;
const MAX_STAGED = 65_536;

export interface PredictiveCounters {
  rounds: number;
  planned: number;
  requested: number;
  readahead: number;
  /** Copies moved down to a slower tier by the plan. */
  demoted: number;
  /** Copies the plan dropped from a performance tier. */
  dropped: number;
}

export interface PredictiveOptions {
  /**
   * The machine's shared model directory (the pooled forecasting model) and this volume's name in
   * it (unique per volume, e.g. its state directory's name); none: no pooling.
   */
  models?: { dir: string; volumeId: string };
  modelSyncMs?: number;
}

/** What an operator did by hand (promote, demote): the planner leaves it alone for a while. */
export interface OperatorMoves {
  /** The operator put this extent on this tier: the plan does not drop or move it. */
  keeps(fileId: string, index: number, tierName: string, nowMs: number): boolean;
  /** The operator moved this extent off this tier: the plan does not bring it back. */
  avoids(fileId: string, index: number, tierName: string, nowMs: number): boolean;
}

export class PredictivePlacement implements ReadObserver {
  readonly counters: PredictiveCounters = { rounds: 0, planned: 0, requested: 0, readahead: 0, demoted: 0, dropped: 0 };
  private readonly paths = new Map<string, string>();
  /** Readahead extents staged and not read yet: `fileId:index` -> until when they count as one access. */
  private readonly staged = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private planning = false;
  /** Set once the volume reports whole requests (onRequest); until then reads count per extent. */
  private requestsReported = false;
  readonly engine: PredictionEngine;
  readonly modelSync: ModelSync | undefined;
  operatorMoves: OperatorMoves | undefined;
  /** Set by the assembly: reports what was served natively since, so each round plans with it. */
  beforeRound: () => void = () => undefined;

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
    options: PredictiveOptions = {},
  ) {
    this.engine = new PredictionEngine(history, { extentSizeBytes });
    shadows.onEvictedForRoom = (fileId, index) => this.engine.reconsider({ fileId, index });
    if (options.models) {
      this.modelSync = new ModelSync(new ModelStore(options.models.dir), options.models.volumeId, this.engine.forecaster, log, options.modelSyncMs);
    }
  }

  start(roundMs = 2_000): void {
    this.setRoundIntervalMs(roundMs);
    this.flushTimer = setInterval(() => void this.history.flush().catch(() => undefined), 30_000);
    this.flushTimer.unref();
    void this.modelSync?.start();
  }

  /** How often the planner runs (config reload may change it on a running mount). */
  setRoundIntervalMs(roundMs: number): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => void this.round(Date.now() * 1000), roundMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    // The minutes completed since the last round, then what this volume learned, for the pool.
    this.engine.tick(Date.now() * 1000);
    await this.modelSync?.stop();
    await this.history.close();
  }

  private fastest(): { id: number; name: string } | undefined {
    const t = this.tiers.fastestTakingCopies();
    return t ? { id: t.id, name: t.tier.spec.name } : undefined;
  }

  private rememberPath(fileId: string, livePath: string): void {
    this.paths.delete(fileId);
    this.paths.set(fileId, livePath);
    if (this.paths.size > MAX_REMEMBERED_PATHS) this.paths.delete(this.paths.keys().next().value as string);
  }

  /**
   * One application request served (to be called by the volume for reads and writes): the volume
   * series behind the forecaster (IOPS, bytes/s, latency). Without it, reads are counted per
   * extent from onExtentRead, with no bytes or latency.
   */
  onRequest(op: 'R' | 'W', sizeBytes: number, latencyUs?: number): void {
    this.requestsReported = true;
    this.history.recordRequest(Date.now() * 1000, op, sizeBytes, latencyUs);
  }

  onExtentRead(file: OpenFile, index: number, servedBy: number | 'live'): void {
    if (servedBy !== 'live') this.shadows.touch(servedBy, file.fileId, index);
    this.rememberPath(file.fileId, file.livePath);
    const nowUs = Date.now() * 1000;
    if (!this.requestsReported) this.history.recordRequest(nowUs, 'R', 0);
    if (this.staged.size > 0) this.staged.delete(`${file.fileId}:${index}`);
    const out = this.engine.recordExtentAccess({ fileId: file.fileId, index }, nowUs);
    const fastest = this.fastest();
    if (!fastest) return;
    for (const r of out.readahead) {
      if (r.fileId !== file.fileId || r.index * this.extentSizeBytes >= file.sizeBytes) continue;
      if (!this.hasFresh(r.fileId, r.index, fastest.id) && this.shadows.requestCopy(file, r.index, fastest.id)) {
        this.counters.readahead++;
        if (this.staged.size >= MAX_STAGED) this.staged.clear();
        this.staged.set(`${r.fileId}:${r.index}`, nowUs / 1000 + READAHEAD_FLOOR_MS);
      }
    }
  }

  /**
   * Extents [first, last] of a file were written (to be called by the volume after each write, as
   * Volume.onWrite is). Writes feed the extents' heat and history like reads; `livePath` lets the
   * planner copy a file that was written but not read yet.
   */
  onExtentWritten(fileId: string, first: number, last: number, livePath?: string): void {
    if (livePath) this.rememberPath(fileId, livePath);
    const nowUs = Date.now() * 1000;
    if (!this.requestsReported) this.history.recordRequest(nowUs, 'W', 0);
    const end = Math.min(last, first + MAX_EXTENTS_PER_WRITE - 1);
    for (let i = first; i <= end; i++) this.engine.recordExtentWrite({ fileId, index: i }, nowUs);
  }

  /** The volume forecast against what happened (`shadowfs forecast`). */
  forecast(source: string, options: { horizons?: number[]; points?: number } = {}): ForecastReport {
    this.engine.tick(Date.now() * 1000);
    return forecastReport(source, this.engine.forecaster, this.engine.lastFedMinute, options);
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

  /** Tiers the planner fills by heat: healthy, faster than the live volume, not the coverage tier. */
  private performanceTiers(): { id: number; name: string }[] {
    return this.tiers
      .all()
      .filter((vt) => this.tiers.takesCopies(vt) && vt.tier.spec.name !== this.coverageTier && CLASS_LATENCY_US[vt.tier.spec.class] < LIVE_LATENCY_US)
      .map(({ id, tier }) => ({ id, name: tier.spec.name }));
  }

  /** One planning round: predict candidates and residents, plan, execute the difference. */
  async round(nowUs: number): Promise<void> {
    if (this.planning) return;
    this.planning = true;
    try {
      this.beforeRound();
      this.engine.tick(nowUs);
      const perf = this.performanceTiers();
      const residents: ExtentRef[] = [];
      for (const t of perf) for (const r of this.shadows.copiesOn(t.id)) residents.push({ fileId: r.fileId, index: r.index });
      const candidates = this.engine.planningCandidates(nowUs, residents);
      if (candidates.length === 0) return;
      const names = new Map(this.tiers.all().map((t) => [t.id, t.tier.spec.name]));
      const extents = candidates.map((ref) => {
        const rec = this.map.get(ref.fileId, ref.index);
        const currentTiers = rec ? rec.copies.filter((c) => isFresh(rec, c)).map((c) => names.get(c.tierId) ?? '').filter(Boolean) : [];
        let predictedAccesses = this.engine.predict(ref, nowUs);
        const stagedUntil = this.staged.get(`${ref.fileId}:${ref.index}`);
        if (stagedUntil !== undefined) {
          if (stagedUntil > nowUs / 1000) predictedAccesses = Math.max(predictedAccesses, 1);
          else this.staged.delete(`${ref.fileId}:${ref.index}`);
        }
        return { ref, sizeBytes: this.extentSizeBytes, predictedAccesses, currentTiers, pinnedTier: this.placements.pinOf(ref.fileId)?.tier };
      });
      const plan = planPlacement({ tiers: this.plannerTiers(), extents, coverageTier: this.coverageTier, liveLatencyUs: LIVE_LATENCY_US, maxNewCopies: MAX_NEW_COPIES_PER_ROUND });
      this.counters.rounds++;
      const perfNames = new Set(perf.map((t) => t.name));
      const nowMs = nowUs / 1000;
      const moves = this.operatorMoves;
      const wanted = new Map<string, { index: number; tier: string; from?: string }[]>();
      const drops: { fileId: string; index: number; tier: string }[] = [];
      plan.placements.forEach((p, i) => {
        const { fileId, index } = p.ref;
        const current = extents[i].currentTiers;
        const leaving = current.filter((t) => perfNames.has(t) && !p.tiers.includes(t) && !moves?.keeps(fileId, index, t, nowMs));
        for (const tier of p.tiers) {
          if (tier === this.coverageTier || current.includes(tier) || moves?.avoids(fileId, index, tier, nowMs)) continue;
          const from = p.demotedFrom && leaving.includes(p.demotedFrom) ? p.demotedFrom : undefined;
          const list = wanted.get(fileId) ?? [];
          list.push({ index, tier, from });
          wanted.set(fileId, list);
          this.counters.planned++;
        }
        for (const tier of leaving) if (tier !== p.demotedFrom || !p.tiers.some((t) => !current.includes(t))) drops.push({ fileId, index, tier });
      });
      for (const d of drops) await this.drop(d.fileId, d.index, d.tier);
      for (const [fileId, list] of wanted) await this.execute(fileId, list);
    } catch (err) {
      this.log.warn('predict', `planning round failed: ${(err as Error).message}`);
    } finally {
      this.planning = false;
    }
  }

  private async drop(fileId: string, index: number, tierName: string): Promise<void> {
    const vt = this.tiers.byName(tierName);
    if (vt && (await this.shadows.evict(fileId, index, vt.id))) this.counters.dropped++;
  }

  /** Copies and moves for one file; a move whose file cannot be opened drops the copy if coverage holds it. */
  private async execute(fileId: string, list: { index: number; tier: string; from?: string }[]): Promise<void> {
    const livePath = this.paths.get(fileId);
    const file = livePath ? await this.files.pinFile(livePath) : undefined;
    try {
      for (const { index, tier, from } of list) {
        const to = this.tiers.byName(tier);
        const src = from ? this.tiers.byName(from) : undefined;
        if (!to) continue;
        if (!file || file.fileId !== fileId || index * this.extentSizeBytes >= file.sizeBytes) {
          if (src && this.coverageHolds(fileId, index)) await this.drop(fileId, index, src.tier.spec.name);
          continue;
        }
        if (src) {
          if (this.shadows.requestMigrate(file, index, src.id, to.id)) this.counters.demoted++;
        } else if (this.shadows.requestCopy(file, index, to.id)) this.counters.requested++;
      }
    } finally {
      if (file) this.files.unpinFile(file);
    }
  }

  private coverageHolds(fileId: string, index: number): boolean {
    const cov = this.coverageTier ? this.tiers.byName(this.coverageTier) : undefined;
    return !!cov && this.hasFresh(fileId, index, cov.id);
  }
}
