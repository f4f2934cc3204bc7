import type { ExtentRef, TierClass } from '../tiers/tier';

/**
 * The placement planner: a pure function from predicted heat, tiers and pins to the set of tiers
 * that should hold a fresh copy of each extent. The shadow manager executes the difference under
 * FUSE; the offline replay executes it in virtual time. Same code, plain data in and out
 * (ARCHITECTURE rule 4).
 *
 * How it decides:
 * 1. Value of a copy of extent e on tier t = predictedAccesses(e) x (liveLatencyUs - latencyUs(t)):
 *    the microseconds of waiting it is expected to save over the horizon. Ranked per byte, so a
 *    greedy fill is the classic fractional-knapsack answer for one tier and a good one for several.
 * 2. Pins first: a pinned extent goes to its tier (if healthy and it fits) before anything else.
 * 3. Performance tiers (healthy, faster than the live volume), fastest first, are filled with the
 *    highest-value extents not yet placed on a faster tier. An extent already on the tier counts
 *    (1 + hysteresis) times its value, so a newcomer must be clearly better to displace it: that is
 *    what keeps extents from flapping between rounds when their predictions are close.
 * 4. New copies are limited by `maxNewCopies` (the shadow manager's copy budget for the round);
 *    the best ones get the budget, and already-resident extents keep the space otherwise.
 * 5. Demotion, with a hysteresis band: a new copy on tier t needs minPromoteAccesses x costRatio(t)
 *    expected accesses (costRatio = t's price over the cheapest performance tier's, so a dearer tier
 *    asks more of its extents); a resident stays while it keeps keepFraction of that bar (on the
 *    slowest performance tier, while there is room). A resident that falls below it, or is displaced
 *    by hotter extents, is not just dropped: it competes for the next slower (cheaper) performance
 *    tier at that tier's keep bar, and the plan says so
 *    (`demotedFrom`), so the shadow manager moves the copy down instead of re-reading the live
 *    volume. An extent descends one band at a time as it cools, and must heat up past the full
 *    entry bar to climb back: no flapping between tiers.
 * 6. Everything else "where it costs least": extents need no copy except on the coverage tier, which
 *    gets every extent. If the coverage tier is unhealthy, the cheapest healthy tier stands in.
 * Unhealthy tiers are planned empty: nothing is targeted there and their copies are not trusted.
 */
export interface PlannerTier {
  name: string;
  class: TierClass;
  capacityBytes: number;
  latencyUs: number;
  costPerGiBMonth: number;
  healthy: boolean;
}

export interface PlannerExtent {
  ref: ExtentRef;
  sizeBytes: number;
  /** Expected accesses over the planning horizon (from the heat predictor). */
  predictedAccesses: number;
  /** Tiers holding a fresh copy now. */
  currentTiers: string[];
  pinnedTier?: string;
}

export interface PlannerInput {
  tiers: PlannerTier[];
  extents: PlannerExtent[];
  /** This tier must hold every extent (failover without loss). */
  coverageTier?: string;
  /** Latency of a read served by the live volume; default: the slowest tier's latency. */
  liveLatencyUs?: number;
  /** Resident advantage when competing for a tier (0.25 = must be 25% better to displace). */
  hysteresis?: number;
  /** Do not start a copy for an extent expected to be read less than this over the horizon. */
  minPromoteAccesses?: number;
  /** At most this many new copies on performance tiers this round (coverage copies excluded). */
  maxNewCopies?: number;
  /** A resident keeps its tier while its expected accesses stay above this share of the entry bar. */
  keepFraction?: number;
}

export interface ExtentPlacement {
  ref: ExtentRef;
  /** Tiers that should hold a fresh copy, fastest first. */
  tiers: string[];
  /** Value per byte on its performance tier (0 when it has none). */
  score: number;
  /** The faster tier this extent moves down from (its copy there is to be moved, not re-read). */
  demotedFrom?: string;
}

export interface TierPlan {
  name: string;
  usedBytes: number;
  extents: number;
  newCopies: number;
  evictions: number;
  /** Extents moving down to this tier from a faster one. */
  demotionsIn: number;
  /**
   * Lowest score (value per byte, without the hysteresis bonus) kept on this tier when it is full;
   * 0 when it has room. Until the next round, an extent scoring above it may be admitted
   * event-driven (demand fill, readahead) by displacing the lowest-scored resident.
   */
  thresholdScore: number;
}

export interface PlannerOutput {
  /** Same order as the input extents. */
  placements: ExtentPlacement[];
  tiers: Record<string, TierPlan>;
  copies: number;
  evictions: number;
  /** Copies moved from a faster performance tier to a slower one (counted in copies too). */
  demotions: number;
  warnings: string[];
}

export const DEFAULT_HYSTERESIS = 0.25;
export const DEFAULT_MIN_PROMOTE_ACCESSES = 0.05;
export const DEFAULT_KEEP_FRACTION = 0.25;

export function planPlacement(input: PlannerInput): PlannerOutput {
  const warnings: string[] = [];
  const tiers = input.tiers;
  const byName = new Map<string, PlannerTier>();
  for (const t of tiers) {
    if (byName.has(t.name)) throw new Error(`planner: duplicate tier name ${t.name}`);
    if (!(t.capacityBytes >= 0) || !(t.latencyUs >= 0)) throw new Error(`planner: tier ${t.name} has a bad capacity or latency`);
    byName.set(t.name, t);
  }
  const hysteresis = input.hysteresis ?? DEFAULT_HYSTERESIS;
  const minPromote = input.minPromoteAccesses ?? DEFAULT_MIN_PROMOTE_ACCESSES;
  const keepFraction = input.keepFraction ?? DEFAULT_KEEP_FRACTION;
  const liveLatencyUs = input.liveLatencyUs ?? Math.max(0, ...tiers.map((t) => t.latencyUs));
  let budget = input.maxNewCopies ?? Number.POSITIVE_INFINITY;

  const coverage = pickCoverage(input.coverageTier, tiers, byName, warnings);
  const perf = tiers
    .filter((t) => t.healthy && t.name !== coverage?.name && t.latencyUs < liveLatencyUs && t.capacityBytes > 0)
    .sort((a, b) => a.latencyUs - b.latencyUs || a.costPerGiBMonth - b.costPerGiBMonth || (a.name < b.name ? -1 : 1));

  const extents = input.extents;
  const n = extents.length;
  const assigned = new Int32Array(n).fill(-1);
  const scoreOut = new Float64Array(n);
  const remaining = perf.map((t) => t.capacityBytes);
  const plans: TierPlan[] = perf.map((t) => ({ name: t.name, usedBytes: 0, extents: 0, newCopies: 0, evictions: 0, demotionsIn: 0, thresholdScore: 0 }));
  const perfIndex = new Map(perf.map((t, i) => [t.name, i]));
  const isPinned = new Uint8Array(n);
  // Entry bar per tier, scaled by price relative to the cheapest performance tier.
  const cheapest = Math.min(...perf.map((t) => t.costPerGiBMonth).filter((c) => c > 0), Number.POSITIVE_INFINITY);
  const entryBar = perf.map((t) => minPromote * (Number.isFinite(cheapest) && t.costPerGiBMonth > cheapest ? t.costPerGiBMonth / cheapest : 1));
  // The fastest performance tier each extent has a fresh copy on (-1: none).
  const heldOn = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    for (const name of extents[i].currentTiers) {
      const ti = perfIndex.get(name);
      if (ti !== undefined && (heldOn[i] < 0 || ti < heldOn[i])) heldOn[i] = ti;
    }
  }

  const valuePerByte = (e: PlannerExtent, t: PlannerTier): number =>
    e.sizeBytes > 0 ? (Math.max(0, e.predictedAccesses) * (liveLatencyUs - t.latencyUs)) / e.sizeBytes : 0;

  // 2. Pins, most valuable first so an over-full pin set keeps the hottest of its extents.
  const pinned: number[] = [];
  const unknownPinTiers = new Set<string>();
  for (let i = 0; i < n; i++) {
    const p = extents[i].pinnedTier;
    if (p === undefined) continue;
    const t = byName.get(p);
    if (!t) unknownPinTiers.add(p);
    else if (!t.healthy) warnings.push(`pin of ${refText(extents[i].ref)} to ${p} not honoured: tier is unhealthy`);
    else if (t.name === coverage?.name) isPinned[i] = 1; // coverage already holds every extent
    else if (perfIndex.has(t.name)) pinned.push(i);
  }
  for (const name of unknownPinTiers) warnings.push(`pin to unknown tier ${name} ignored`);
  pinned.sort((a, b) => extents[b].predictedAccesses - extents[a].predictedAccesses);
  let pinsDropped = 0;
  for (const i of pinned) {
    const e = extents[i];
    const ti = perfIndex.get(e.pinnedTier ?? '') ?? -1;
    if (e.sizeBytes > remaining[ti]) {
      pinsDropped++;
      continue;
    }
    assign(i, ti, true);
    isPinned[i] = 1;
  }
  if (pinsDropped > 0) warnings.push(`${pinsDropped} pinned extent(s) do not fit their tier and compete on heat instead`);

  // 3. Fill performance tiers fastest first.
  const order = new Int32Array(n);
  const rank = new Float64Array(n);
  const resident = new Uint8Array(n);
  for (let ti = 0; ti < perf.length; ti++) {
    const t = perf[ti];
    let m = 0;
    for (let i = 0; i < n; i++) {
      if (assigned[i] >= 0) continue;
      const e = extents[i];
      resident[i] = e.currentTiers.length > 0 && e.currentTiers.includes(t.name) ? 1 : 0;
      // Residents, and extents coming down from a faster tier, need only the keep bar. The slowest
      // performance tier has none: below it there is no cheaper place to move to, and a copy kept
      // while there is room can only save a read (the replay's single fast tier is this case).
      const settled = resident[i] || (heldOn[i] >= 0 && heldOn[i] < ti);
      const keepBar = ti < perf.length - 1 ? entryBar[ti] * keepFraction : 0;
      if (e.predictedAccesses < (settled ? keepBar : entryBar[ti])) continue;
      const v = valuePerByte(e, t);
      // Residents win ties (the tiny bonus), so equal heat never causes a swap.
      rank[i] = resident[i] ? v * (1 + hysteresis) * (1 + 1e-9) + 1e-300 : v;
      order[m++] = i;
    }
    const sorted = order.subarray(0, m).sort((a, b) => rank[b] - rank[a]);
    let minKept = Number.POSITIVE_INFINITY;
    let skippedForSpace = false;
    for (const i of sorted) {
      const e = extents[i];
      if (e.sizeBytes > remaining[ti]) {
        skippedForSpace = true;
        continue;
      }
      if (!resident[i] && budget < 1) continue;
      assign(i, ti, false);
      if (!resident[i]) budget--;
      minKept = Math.min(minKept, valuePerByte(e, t));
    }
    plans[ti].thresholdScore = skippedForSpace && Number.isFinite(minKept) ? minKept : 0;
  }

  // 4. Output, and the copies / evictions it implies.
  const placements: ExtentPlacement[] = new Array(n);
  let copies = 0;
  let evictions = 0;
  let demotions = 0;
  let coverageBytes = 0;
  for (let i = 0; i < n; i++) {
    const e = extents[i];
    const target: string[] = [];
    if (assigned[i] >= 0) target.push(perf[assigned[i]].name);
    if (coverage) {
      target.push(coverage.name);
      coverageBytes += e.sizeBytes;
    }
    placements[i] = { ref: e.ref, tiers: target, score: scoreOut[i] };
    if (assigned[i] >= 0 && heldOn[i] >= 0 && heldOn[i] < assigned[i] && !e.currentTiers.includes(perf[assigned[i]].name)) {
      placements[i].demotedFrom = perf[heldOn[i]].name;
      plans[assigned[i]].demotionsIn++;
      demotions++;
    }
    for (const name of target) if (!e.currentTiers.includes(name)) copies++;
    for (const name of e.currentTiers) {
      if (target.includes(name) || !byName.get(name)?.healthy) continue;
      evictions++;
      const ti = perfIndex.get(name);
      if (ti !== undefined) plans[ti].evictions++;
    }
  }
  if (coverage && coverageBytes > coverage.capacityBytes) {
    warnings.push(`coverage tier ${coverage.name} is too small: ${coverageBytes} bytes needed, ${coverage.capacityBytes} available`);
  }
  const tierPlans: Record<string, TierPlan> = {};
  for (const p of plans) tierPlans[p.name] = p;
  if (coverage) {
    tierPlans[coverage.name] = {
      name: coverage.name,
      usedBytes: coverageBytes,
      extents: n,
      newCopies: extents.filter((e) => !e.currentTiers.includes(coverage.name)).length,
      evictions: 0,
      demotionsIn: 0,
      thresholdScore: 0,
    };
  }
  return { placements, tiers: tierPlans, copies, evictions, demotions, warnings };

  function assign(i: number, ti: number, pin: boolean): void {
    const e = extents[i];
    assigned[i] = ti;
    remaining[ti] -= e.sizeBytes;
    scoreOut[i] = valuePerByte(e, perf[ti]);
    plans[ti].usedBytes += e.sizeBytes;
    plans[ti].extents++;
    if (!e.currentTiers.includes(perf[ti].name)) {
      plans[ti].newCopies++;
      if (pin) budget--; // pins are honoured even past the budget, but they use it up first
    }
  }
}

function pickCoverage(
  name: string | undefined,
  tiers: readonly PlannerTier[],
  byName: ReadonlyMap<string, PlannerTier>,
  warnings: string[],
): PlannerTier | undefined {
  if (name === undefined) return undefined;
  const wanted = byName.get(name);
  if (wanted?.healthy) return wanted;
  const fallback = tiers
    .filter((t) => t.healthy)
    .sort((a, b) => a.costPerGiBMonth - b.costPerGiBMonth || a.latencyUs - b.latencyUs)[0];
  const why = wanted ? 'is unhealthy' : 'does not exist';
  warnings.push(
    fallback ? `coverage tier ${name} ${why}; using ${fallback.name} (cheapest healthy tier)` : `coverage tier ${name} ${why} and no healthy tier can stand in`,
  );
  return fallback;
}

function refText(ref: ExtentRef): string {
  return `${ref.fileId}#${ref.index}`;
}
