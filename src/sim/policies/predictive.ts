import type { ExtentRef } from '../../tiers/tier';
import { PredictionEngine, type EngineOptions } from '../../predict/engine';
import { MinHeap } from '../../predict/heap';
import { WorkloadHistory } from '../../predict/history';
import { DEFAULT_HYSTERESIS, DEFAULT_MIN_PROMOTE_ACCESSES, planPlacement, type PlannerExtent, type PlannerTier } from '../../predict/planner';
import type { CompactTrace } from '../compact-trace';
import { assertCapacity, type ReplayPolicy } from './policy';

/**
 * The predictive policy in virtual time: the prediction engine and the placement planner exactly as
 * a live mount uses them, with the shadow manager's part (copying, evicting) simulated here.
 *
 * Three paths move extents into the fast tier, all paid from one copy budget (a token bucket that
 * earns `copyBudgetPerAccess` tokens per demand access, so promotion traffic is bounded by
 * construction):
 *  1. Planning rounds (every `planEveryAccesses` accesses or `planIntervalUs`, and whenever a
 *     periodic extent comes due): the planner places the candidates by predicted heat; the
 *     difference is executed (evictions free, promotions through the copy queue).
 *  2. Readahead and burst replay: a sequential stream's next extents, or the rest of the burst an
 *     extent was read in last time, staged at once, worth one access each, so they only displace
 *     residents predicted to be worth less (a scan never flushes the hot set).
 *  3. Demand admission on a miss: the extent was just read from the live volume anyway, so it is
 *     kept if its heat beats the lowest-scored resident by the hysteresis margin. Scan misses
 *     (past the sequential cutoff) are never admitted.
 * Prefetch copies take time: they go through a serial copy queue at `copyBandwidthBytesPerS`, and an
 * access to an extent still in flight is a miss. Demand fills are instantaneous (the data is in
 * hand), which is the same assumption the LRU/ARC/MIN baselines get.
 */
export interface PredictiveOptions {
  capacityExtents: number;
  extentSizeBytes: number;
  planIntervalUs: number;
  planEveryAccesses: number;
  /** A staged readahead extent counts as one expected access for this long if not read. */
  readaheadFloorUs: number;
  /** The same for an extent staged by burst replay (a job run lasts longer than a readahead). */
  burstFloorUs: number;
  /** Periodic extents coming due are collected in batches this far apart (the lead absorbs it). */
  dueBatchUs: number;
  copyBandwidthBytesPerS: number;
  /** Bound on prefetch copies queued or in flight. */
  maxCopyBacklog: number;
  copyBudgetPerAccess: number;
  /** Token bucket size: how many copies can be saved up for a burst of pre-staging. */
  maxTokens: number;
  hysteresis: number;
  fastLatencyUs: number;
  liveLatencyUs: number;
  engine: Partial<Omit<EngineOptions, 'extentSizeBytes' | 'fileExtents'>>;
  seed: number;
}

export function defaultPredictiveOptions(capacityExtents: number, extentSizeBytes: number): PredictiveOptions {
  return {
    capacityExtents,
    extentSizeBytes,
    planIntervalUs: 10e6,
    planEveryAccesses: Math.max(64, Math.floor(capacityExtents / 2)),
    dueBatchUs: 5e6,
    readaheadFloorUs: 30e6,
    burstFloorUs: 120e6,
    copyBandwidthBytesPerS: 200 * 1024 * 1024,
    maxCopyBacklog: 256,
    copyBudgetPerAccess: 1.4,
    maxTokens: Math.max(64, capacityExtents),
    hysteresis: DEFAULT_HYSTERESIS,
    fastLatencyUs: 100,
    liveLatencyUs: 5000,
    engine: {},
    seed: 1,
  };
}

const ABSENT = 0;
const RESIDENT = 1;
const IN_FLIGHT = 2;
const FAST = 'fast';

export class PredictivePolicy implements ReplayPolicy {
  readonly name = 'predictive';
  readonly o: PredictiveOptions;
  readonly engine: PredictionEngine;
  readonly history: WorkloadHistory;
  copies = 0;
  private readonly counters = { demandFills: 0, readaheadCopies: 0, burstCopies: 0, dueCopies: 0, plannedCopies: 0, unusedPrefetches: 0, plans: 0, planEvictions: 0 };

  // Extent ids: the trace's dense ids, extended for extents only prefetch ever names.
  private readonly refs: ExtentRef[];
  private readonly ids = new Map<string, Map<number, number>>();
  private state: Uint8Array;
  private score: Float64Array;
  private scoredAtUs: Float64Array;
  private unusedPrefetch: Uint8Array;
  /** A readahead extent counts as one expected access until this time (then: its own heat). */
  private prefetchFloorUntilUs: Float64Array;
  /** Dense list of resident/in-flight ids with positions, for O(1) removal and enumeration. */
  private held: number[] = [];
  private heldPos: Int32Array;
  private readonly victims = new MinHeap<number>();
  private readonly copyQueue: Array<{ id: number; readyUs: number }> = [];
  private copyQueueHead = 0;
  private copyFreeAtUs = 0;
  private tokens = 0;
  private lastPlanUs = Number.NEGATIVE_INFINITY;
  private lastDueUs = Number.NEGATIVE_INFINITY;
  private accessesSincePlan = 0;
  private nowUs = Number.NEGATIVE_INFINITY;
  // Volume series feed from the trace's per-second buckets.
  private readonly secondKeys: number[];
  private secondNext = 0;

  constructor(
    private readonly trace: CompactTrace,
    options: Partial<PredictiveOptions> & { capacityExtents: number; extentSizeBytes: number },
  ) {
    this.o = { ...defaultPredictiveOptions(options.capacityExtents, options.extentSizeBytes), ...options };
    assertCapacity(this.o.capacityExtents, 'predictive');
    this.refs = trace.refs.slice();
    for (let id = 0; id < this.refs.length; id++) this.idMap(this.refs[id].fileId).set(this.refs[id].index, id);
    const n = this.refs.length + 1024;
    this.state = new Uint8Array(n);
    this.score = new Float64Array(n);
    this.scoredAtUs = new Float64Array(n);
    this.unusedPrefetch = new Uint8Array(n);
    this.prefetchFloorUntilUs = new Float64Array(n);
    this.heldPos = new Int32Array(n).fill(-1);
    this.history = WorkloadHistory.inMemory({ maxExtents: Math.max(10_000, 4 * trace.refs.length) });
    let seed = this.o.seed >>> 0 || 1;
    const random = (): number => {
      // xorshift32: deterministic training samples, so a replay is reproducible.
      seed ^= seed << 13;
      seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      seed >>>= 0;
      return seed / 4294967296;
    };
    this.engine = new PredictionEngine(this.history, {
      ...this.o.engine,
      extentSizeBytes: this.o.extentSizeBytes,
      fileExtents: (fileId) => trace.fileExtents.get(fileId),
      random,
    });
    this.secondKeys = [...trace.seconds.keys()].sort((a, b) => a - b);
  }

  access(_i: number, id: number, timeUs: number): boolean {
    this.advance(timeUs);
    this.tokens = Math.min(this.o.maxTokens, this.tokens + this.o.copyBudgetPerAccess);
    const ref = this.refs[id];
    const st = this.state[id];
    const hit = st === RESIDENT;
    const outcome = this.engine.recordExtentAccess(ref, timeUs);
    if (this.unusedPrefetch[id]) {
      this.unusedPrefetch[id] = 0;
      this.prefetchFloorUntilUs[id] = 0;
    }
    if (hit) {
      this.setScore(id, this.engine.predict(ref, timeUs), timeUs);
    } else if (st === ABSENT && !outcome.scan) {
      this.admitOnDemand(id, ref, timeUs);
    }
    for (const r of outcome.readahead) this.prefetch(r, timeUs, this.o.readaheadFloorUs, 'readaheadCopies');
    for (const r of outcome.correlated) this.prefetch(r, timeUs, this.o.burstFloorUs, 'burstCopies');
    // Plan every so many accesses, or after planIntervalUs if at least an eighth of that many
    // arrived (a quiet volume gains nothing from replanning per access; due extents have their
    // own trigger in advance()).
    const n = ++this.accessesSincePlan;
    if (n >= this.o.planEveryAccesses || (timeUs - this.lastPlanUs >= this.o.planIntervalUs && n * 8 >= this.o.planEveryAccesses)) this.plan(timeUs);
    return hit;
  }

  residents(): number[] {
    return this.held.filter((id) => this.state[id] === RESIDENT && id < this.trace.refs.length);
  }

  details(): Record<string, number> {
    let unused = this.counters.unusedPrefetches;
    for (const id of this.held) if (this.unusedPrefetch[id]) unused++;
    return { ...this.counters, unusedPrefetches: unused };
  }

  /** Run everything that happens in virtual time before `timeUs`: copies landing, due staging. */
  private advance(timeUs: number): void {
    const t = Math.max(timeUs, this.nowUs);
    // Periodic extents coming due between accesses are staged at their due time (so a nightly
    // job is in place before its first read even if nothing else happens overnight), through the
    // same admission rule as readahead: only if worth more than the lowest resident.
    for (let guard = 0; guard < 100_000; guard++) {
      const due = Math.max(this.engine.nextDueUs(), this.lastDueUs + this.o.dueBatchUs);
      if (!(due <= t)) break;
      const at = Math.max(due, this.nowUs);
      this.lastDueUs = at;
      this.feedUntil(at);
      this.landCopies(at);
      for (const ref of this.engine.takeDue(at)) this.stageDue(ref, at);
    }
    this.feedUntil(t);
    this.landCopies(t);
    this.nowUs = t;
  }

  private feedUntil(timeUs: number): void {
    const sec = Math.floor(timeUs / 1e6);
    while (this.secondNext < this.secondKeys.length && this.secondKeys[this.secondNext] <= sec) {
      const s = this.secondKeys[this.secondNext++];
      const b = this.trace.seconds.get(s);
      if (b) this.history.recordBucket(s * 1e6, b);
    }
    this.engine.tick(timeUs);
  }

  private landCopies(timeUs: number): void {
    const q = this.copyQueue;
    while (this.copyQueueHead < q.length && q[this.copyQueueHead].readyUs <= timeUs) {
      const { id } = q[this.copyQueueHead++];
      if (this.state[id] === IN_FLIGHT) this.state[id] = RESIDENT;
    }
    if (this.copyQueueHead > 4096) {
      q.splice(0, this.copyQueueHead);
      this.copyQueueHead = 0;
    }
  }

  private backlog(): number {
    return this.copyQueue.length - this.copyQueueHead;
  }

  private admitOnDemand(id: number, ref: ExtentRef, timeUs: number): void {
    if (this.tokens < 1) return;
    const v = this.engine.predict(ref, timeUs);
    if (!this.makeRoomFor(v, timeUs)) return;
    this.tokens--;
    this.copies++;
    this.counters.demandFills++;
    this.hold(id, RESIDENT);
    this.setScore(id, v, timeUs);
  }

  /** Stage an extent expected to be read once, soon (readahead, burst replay). */
  private prefetch(ref: ExtentRef, timeUs: number, floorUs: number, counter: 'readaheadCopies' | 'burstCopies'): void {
    const id = this.idOf(ref);
    if (this.state[id] !== ABSENT || this.tokens < 1 || this.backlog() >= this.o.maxCopyBacklog) return;
    if (!this.makeRoomFor(1, timeUs)) return;
    this.startCopy(id, timeUs);
    this.counters[counter]++;
    this.unusedPrefetch[id] = 1;
    this.prefetchFloorUntilUs[id] = timeUs + floorUs;
    this.setScore(id, 1, timeUs);
  }

  private stageDue(ref: ExtentRef, timeUs: number): void {
    const id = this.idOf(ref);
    if (this.state[id] !== ABSENT || this.tokens < 1 || this.backlog() >= this.o.maxCopyBacklog) return;
    const v = this.engine.predict(ref, timeUs);
    if (v < DEFAULT_MIN_PROMOTE_ACCESSES || !this.makeRoomFor(v, timeUs)) return;
    this.startCopy(id, timeUs);
    this.counters.dueCopies++;
    this.unusedPrefetch[id] = 1;
    this.setScore(id, v, timeUs);
  }

  /** Free one slot if the tier is full and the lowest resident is worth less than `value`. */
  private makeRoomFor(value: number, timeUs: number): boolean {
    if (this.held.length < this.o.capacityExtents) return true;
    const victim = this.lowestResident(timeUs);
    if (victim === undefined) return false;
    if (!(value > this.score[victim] * (1 + this.o.hysteresis) + 1e-9)) return false;
    this.victims.pop();
    this.drop(victim);
    return true;
  }

  /**
   * Lowest-scored resident (not in flight). Heap keys are scores from when they were computed:
   * heat mostly decays, but a periodic extent's heat rises as its run approaches, so the top
   * candidate is re-scored now and put back if it is no longer the lowest (bounded retries).
   */
  private lowestResident(timeUs: number): number | undefined {
    for (let rescored = 0; ; ) {
      const key = this.victims.peekKey();
      const id = this.victims.peek();
      if (id === undefined) return undefined;
      if (this.state[id] !== RESIDENT || key !== this.score[id]) {
        this.victims.pop();
        continue;
      }
      if (this.scoredAtUs[id] === timeUs || rescored >= 16) return id;
      rescored++;
      this.victims.pop();
      this.setScore(id, this.currentValue(id, timeUs), timeUs);
    }
  }

  /** Heat now, with a staged-but-unread prefetch counted as one expected access. */
  private currentValue(id: number, timeUs: number): number {
    const v = this.engine.predict(this.refs[id], timeUs);
    return this.unusedPrefetch[id] && timeUs < this.prefetchFloorUntilUs[id] ? Math.max(v, 1) : v;
  }

  private setScore(id: number, v: number, timeUs: number): void {
    this.score[id] = v;
    this.scoredAtUs[id] = timeUs;
    this.victims.push(v, id);
  }

  private startCopy(id: number, timeUs: number): void {
    const start = Math.max(timeUs, this.copyFreeAtUs);
    const readyUs = start + (this.o.extentSizeBytes / this.o.copyBandwidthBytesPerS) * 1e6;
    this.copyFreeAtUs = readyUs;
    this.copyQueue.push({ id, readyUs });
    this.hold(id, IN_FLIGHT);
    this.tokens--;
    this.copies++;
  }

  private hold(id: number, st: number): void {
    if (this.heldPos[id] < 0) {
      this.heldPos[id] = this.held.length;
      this.held.push(id);
    }
    this.state[id] = st;
  }

  private drop(id: number): void {
    if (this.unusedPrefetch[id]) {
      this.counters.unusedPrefetches++;
      this.unusedPrefetch[id] = 0;
    }
    this.state[id] = ABSENT;
    const pos = this.heldPos[id];
    if (pos < 0) return;
    const last = this.held.pop() as number;
    if (last !== id) {
      this.held[pos] = last;
      this.heldPos[last] = pos;
    }
    this.heldPos[id] = -1;
  }

  private plan(timeUs: number): void {
    this.counters.plans++;
    this.lastPlanUs = timeUs;
    this.accessesSincePlan = 0;
    this.engine.tick(timeUs);
    const heldRefs = this.held.map((id) => this.refs[id]);
    const refs = this.engine.planningCandidates(timeUs, heldRefs);
    const extents: PlannerExtent[] = new Array(refs.length);
    const candIds = new Int32Array(refs.length);
    for (let k = 0; k < refs.length; k++) {
      const id = this.idOf(refs[k]);
      candIds[k] = id;
      const st = this.state[id];
      let predicted = this.engine.predict(refs[k], timeUs);
      // A staged readahead extent not read yet is still expected once; an extent in flight is
      // committed (its copy is already being paid for).
      if ((this.unusedPrefetch[id] && timeUs < this.prefetchFloorUntilUs[id]) || st === IN_FLIGHT) predicted = Math.max(predicted, 1);
      extents[k] = { ref: refs[k], sizeBytes: this.o.extentSizeBytes, predictedAccesses: predicted, currentTiers: st === ABSENT ? [] : [FAST] };
    }
    const tier: PlannerTier = {
      name: FAST,
      class: 'nvme',
      capacityBytes: this.o.capacityExtents * this.o.extentSizeBytes,
      latencyUs: this.o.fastLatencyUs,
      costPerGiBMonth: 0.25,
      healthy: true,
    };
    const out = planPlacement({
      tiers: [tier],
      extents,
      liveLatencyUs: this.o.liveLatencyUs,
      hysteresis: this.o.hysteresis,
      maxNewCopies: Math.max(0, Math.min(Math.floor(this.tokens), this.o.maxCopyBacklog - this.backlog())),
    });
    const promote: number[] = [];
    for (let k = 0; k < refs.length; k++) {
      const id = candIds[k];
      const want = out.placements[k].tiers.length > 0;
      const st = this.state[id];
      if (!want && st === RESIDENT) {
        this.drop(id);
        this.counters.planEvictions++;
      } else if (want && st === ABSENT) promote.push(k);
    }
    for (const k of promote) {
      if (this.held.length >= this.o.capacityExtents || this.tokens < 1) break;
      this.startCopy(candIds[k], timeUs);
      this.counters.plannedCopies++;
    }
    // Rebuild the victim heap from this round's scores (it also sheds stale entries).
    this.victims.clear();
    for (let k = 0; k < refs.length; k++) {
      const id = candIds[k];
      if (this.state[id] !== ABSENT) this.setScore(id, extents[k].predictedAccesses, timeUs);
    }
  }

  private idMap(fileId: string): Map<number, number> {
    let m = this.ids.get(fileId);
    if (!m) {
      m = new Map();
      this.ids.set(fileId, m);
    }
    return m;
  }

  private idOf(ref: ExtentRef): number {
    const m = this.idMap(ref.fileId);
    let id = m.get(ref.index);
    if (id === undefined) {
      id = this.refs.length;
      this.refs.push(ref);
      m.set(ref.index, id);
      if (id >= this.state.length) this.grow();
    }
    return id;
  }

  private grow(): void {
    const n = this.state.length * 2;
    const state = new Uint8Array(n);
    state.set(this.state);
    const score = new Float64Array(n);
    score.set(this.score);
    const scoredAt = new Float64Array(n);
    scoredAt.set(this.scoredAtUs);
    this.scoredAtUs = scoredAt;
    const unused = new Uint8Array(n);
    unused.set(this.unusedPrefetch);
    const floor = new Float64Array(n);
    floor.set(this.prefetchFloorUntilUs);
    this.prefetchFloorUntilUs = floor;
    const pos = new Int32Array(n).fill(-1);
    pos.set(this.heldPos);
    this.state = state;
    this.score = score;
    this.unusedPrefetch = unused;
    this.heldPos = pos;
  }
}
