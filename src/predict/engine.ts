import type { ExtentRef } from '../tiers/tier';
import type { ExtentStats } from './extent-stats';
import { VolumeForecaster, type ForecasterOptions } from './forecaster';
import { HeatPredictor, type HeatOptions } from './heat';
import type { WorkloadHistory } from './history';
import { BurstIndex, type BurstOptions } from './bursts';
import { MinHeap } from './heap';
import { SequentialDetector, type SequentialOptions } from './sequential';
import { RESOLUTION_US } from './volume-series';

/**
 * The prediction engine of one volume: glue between the workload history, the sequential detector,
 * the volume forecaster and the heat predictor. It owns no placement state; callers (the shadow
 * manager under FUSE, the predictive policy in replay) ask it for heat and candidates and run the
 * planner themselves.
 *
 * How a live mount feeds it:
 *   - per request, after the redirector served it: `recordIo(...)` (volume series + per-extent
 *     history + stream detection). The returned readahead and correlated refs are worth staging
 *     now (each worth about one access soon), if they beat the coldest resident.
 *   - about once a second: `tick(now)` (closes minutes into the forecaster, matures heat training
 *     samples, refreshes the volume factor).
 *   - per planning round (every few seconds, and as soon as `nextDueUs()` passes):
 *     `planningCandidates(now, residents)` then `predict(ref, now)` for each, into the planner.
 *   - every flush interval: `history.flush()`; hourly: `ModelStore.sync(volumeId, forecaster)`.
 */
export interface EngineOptions {
  extentSizeBytes: number;
  heat?: Partial<HeatOptions>;
  sequential?: Partial<SequentialOptions>;
  bursts?: Partial<BurstOptions>;
  forecaster?: Partial<ForecasterOptions>;
  /** Horizon (in forecaster steps) whose forecast scales heat (default 10 minutes). */
  spikeHorizonSteps?: number;
  /** Extent count of a file, when known: readahead and neighbours stop at the end. */
  fileExtents?: (fileId: string) => number | undefined;
  /** Bound on extents remembered as touched between planning rounds. */
  maxTouched?: number;
  /** Random source for training samples (seeded in replay so runs are reproducible). */
  random?: () => number;
  /** One heat training sample is taken per this many extent accesses (sampling follows load). */
  sampleEveryAccesses?: number;
}

export interface AccessOutcome {
  sequential: boolean;
  /** Past the sequential cutoff: a scan access, worth little as heat. */
  scan: boolean;
  readahead: ExtentRef[];
  /** Extents that were read in the same burst as this one last time (see BurstIndex). */
  correlated: ExtentRef[];
}

export interface IoRecord {
  fileId: string;
  offsetBytes: number;
  sizeBytes: number;
  op: 'R' | 'W';
  timeUs: number;
  latencyUs?: number;
}

const STEP_US = RESOLUTION_US.minute;
const MAX_CATCH_UP_STEPS_PER_TICK = 360;
const MAX_ANNOUNCED = 200_000;

export class PredictionEngine {
  readonly heat: HeatPredictor;
  readonly sequential: SequentialDetector;
  /** Write streams, kept apart from reads so a writer never bends a reader's stream state. */
  private readonly writeStreams: SequentialDetector;
  readonly forecaster: VolumeForecaster;
  readonly bursts: BurstIndex;
  private sinceSweep = 0;
  readonly extentSizeBytes: number;
  private readonly due = new MinHeap<ExtentStats>();
  /** Periodic extents that came due, until their run's window ends: did the run come? */
  private readonly announced = new Map<ExtentStats, { samples: number; windowEndUs: number }>();
  private touched = new Set<ExtentStats>();
  private readonly maxTouched: number;
  private readonly spikeHorizon: number;
  private readonly fileExtents: (fileId: string) => number | undefined;
  private readonly random: () => number;
  private readonly sampleEvery: number;
  private accessCount = 0;
  /** Last minute fed to the forecaster (-1: none yet). */
  private lastStep = -1;
  private lastLatencyUs = 0;

  constructor(
    readonly history: WorkloadHistory,
    options: EngineOptions,
  ) {
    if (!(options.extentSizeBytes > 0)) throw new Error('PredictionEngine: extentSizeBytes must be positive');
    this.extentSizeBytes = options.extentSizeBytes;
    this.heat = new HeatPredictor(history, options.heat);
    this.sequential = new SequentialDetector(options.sequential);
    this.writeStreams = new SequentialDetector(options.sequential);
    this.bursts = new BurstIndex(options.bursts);
    this.forecaster = new VolumeForecaster(options.forecaster);
    this.spikeHorizon = options.spikeHorizonSteps ?? 10;
    this.fileExtents = options.fileExtents ?? (() => undefined);
    this.maxTouched = options.maxTouched ?? 65_536;
    this.random = options.random ?? Math.random;
    this.sampleEvery = Math.max(1, options.sampleEveryAccesses ?? 8);
    // Reopened history: put every extent with a known period back on the due queue.
    for (const s of history.extents.values()) this.schedule(s, s.lastAccessUs);
  }

  /** One application request (live mount). */
  recordIo(io: IoRecord): AccessOutcome {
    this.history.recordRequest(io.timeUs, io.op, io.sizeBytes, io.latencyUs);
    const first = Math.floor(io.offsetBytes / this.extentSizeBytes);
    const last = Math.floor((io.offsetBytes + Math.max(1, io.sizeBytes) - 1) / this.extentSizeBytes);
    const out: AccessOutcome = { sequential: false, scan: false, readahead: [], correlated: [] };
    for (let i = first; i <= last; i++) {
      const r = this.recordExtentAccess({ fileId: io.fileId, index: i }, io.timeUs);
      out.sequential ||= r.sequential;
      out.scan ||= r.scan;
      out.readahead.push(...r.readahead);
      out.correlated.push(...r.correlated);
    }
    return out;
  }

  /** One extent access (the replay calls this directly; consecutive repeats already collapsed). */
  recordExtentAccess(ref: ExtentRef, timeUs: number): AccessOutcome {
    const mode = this.history.hints.empty ? 'normal' : this.history.hints.fileMode(ref.fileId, timeUs);
    const obs = this.sequential.observe(ref.fileId, ref.index, timeUs, mode);
    const { stats, newSession } = this.history.recordExtentAccess(ref, timeUs, obs.scan);
    let correlated: ExtentRef[] = [];
    if (newSession) {
      this.runCame(stats, timeUs);
      this.schedule(stats, timeUs);
      const short = stats.periods[0];
      // Scans are readahead's job; the burst index is for sets read in no particular order.
      if (!obs.scan && short && short.sessionAccesses === 1 && short.sessionStartUs === stats.lastAccessUs) {
        correlated = this.bursts.onSessionStart(stats, stats.lastAccessUs).map((s) => ({ fileId: s.fileId, index: s.index }));
      }
    }
    if (++this.sinceSweep >= 100_000) {
      this.sinceSweep = 0;
      this.bursts.sweep();
    }
    if (this.touched.size < this.maxTouched) this.touched.add(stats);
    if (++this.accessCount % this.sampleEvery === 0) this.heat.sample(timeUs, 1, this.random);
    let readahead: ExtentRef[] = [];
    if (obs.readahead.length > 0) {
      const count = this.fileExtents(ref.fileId);
      readahead = obs.readahead.filter((i) => count === undefined || i < count).map((index) => ({ fileId: ref.fileId, index }));
    }
    return { sequential: obs.sequential, scan: obs.scan, readahead, correlated };
  }

  /**
   * One extent written (live mount). Writes are accesses too: they feed the extent's counts and
   * periods (a file rewritten every night at 02:00 is due then) and make it a planning candidate.
   * A long sequential write run counts as a scan (a restore or a log append does not make its
   * extents hot), and nothing is read ahead for a writer.
   */
  recordExtentWrite(ref: ExtentRef, timeUs: number): void {
    const mode = this.history.hints.empty ? 'normal' : this.history.hints.fileMode(ref.fileId, timeUs);
    const obs = this.writeStreams.observe(ref.fileId, ref.index, timeUs, mode);
    const { stats, newSession } = this.history.recordExtentAccess(ref, timeUs, obs.scan);
    if (newSession) {
      this.runCame(stats, timeUs);
      this.schedule(stats, timeUs);
    }
    if (this.touched.size < this.maxTouched) this.touched.add(stats);
    if (++this.accessCount % this.sampleEvery === 0) this.heat.sample(timeUs, 1, this.random);
  }

  /** Advance the engine's clock: feed completed minutes to the forecaster, mature heat samples. */
  tick(nowUs: number): void {
    const step = Math.floor(nowUs / STEP_US) - 1; // the last completed minute
    if (this.lastStep < 0) {
      // Start at the oldest minute with data (a reopened history), not at the ring's retention
      // limit: weeks of idle minutes before the first I/O would teach the forecaster nothing.
      const oldest = this.history.series.minutes.oldestStoredBucket;
      this.lastStep = oldest >= 0 ? Math.min(oldest, step + 1) - 1 : step;
    }
    if (step > this.lastStep) {
      const ring = this.history.series.minutes;
      // A long idle gap is fed as idle minutes (the seasonal lags need the right positions), but
      // never more than the forecaster can hold. More than a few minutes at once (a remount, a
      // trace) are fed with the refits deferred to the end: one fit per model, not one per 30 rows.
      const from = Math.max(this.lastStep + 1, step - 20_000);
      // At most six hours per tick: a remount after weeks catches up over a minute or two of rounds, in slices of a
      // few hundred milliseconds, instead of holding the event loop (and the mount's I/O) for seconds.
      const to = Math.min(step, from + MAX_CATCH_UP_STEPS_PER_TICK - 1);
      const catchUp = to - from > 30;
      if (catchUp) this.forecaster.deferRefits(true);
      for (let m = from; m <= to; m++) {
        const lat = ring.metric(m, 'latencyUs', 60);
        if (Number.isFinite(lat)) this.lastLatencyUs = lat;
        this.forecaster.push({ iops: ring.metric(m, 'iops', 60), bytesPerS: ring.metric(m, 'bytesPerS', 60), latencyUs: this.lastLatencyUs });
      }
      if (catchUp) this.forecaster.deferRefits(false);
      this.lastStep = to;
      this.heat.volumeFactor = this.spikeFactor();
    }
    this.heat.mature(nowUs);
  }

  /**
   * Expected load over the next spike horizon relative to the same span just past, clamped to
   * [0.5, 4]: > 1 means a busier period is coming and heat (so pre-staging) should scale up.
   */
  spikeFactor(): number {
    const iops = this.forecaster.metrics.iops;
    const f = iops.forecast(this.spikeHorizon);
    const t = iops.steps - 1;
    if (f === undefined || t < this.spikeHorizon) return 1;
    let recent = 0;
    for (let i = t - this.spikeHorizon + 1; i <= t; i++) recent += iops.valueAt(i);
    recent /= this.spikeHorizon;
    if (recent <= 0) return 1;
    return Math.max(0.5, Math.min(4, f / recent));
  }

  /** Minute number (Unix minutes) of the forecaster's newest step; -1 before the first tick. */
  get lastFedMinute(): number {
    return this.lastStep;
  }

  predict(ref: ExtentRef, nowUs: number): number {
    return this.heat.predict(ref, nowUs);
  }

  /** Time at which the next periodic extent becomes worth staging (Infinity if none). */
  nextDueUs(): number {
    return this.due.peekKey();
  }

  /**
   * An extent whose placement changed without the planner (a copy evicted to make room): the next
   * round looks at it again, as if it had been touched, or it would stay off its tier until read.
   */
  reconsider(ref: ExtentRef): void {
    const stats = this.history.extents.get(ref.fileId, ref.index);
    if (stats && this.touched.size < this.maxTouched) this.touched.add(stats);
  }

  /**
   * Extents worth (re)considering this round: everything touched since the last round and its
   * neighbours, periodic extents coming due, hinted extents, plus the caller's residents.
   * Clears the touched set. Refs are deduplicated.
   */
  planningCandidates(nowUs: number, residents: Iterable<ExtentRef> = []): ExtentRef[] {
    const seen = new Map<string, Set<number>>();
    const out: ExtentRef[] = [];
    const add = (fileId: string, index: number): void => {
      let s = seen.get(fileId);
      if (!s) {
        s = new Set();
        seen.set(fileId, s);
      }
      if (s.has(index)) return;
      s.add(index);
      out.push({ fileId, index });
    };
    for (const r of residents) add(r.fileId, r.index);
    const radius = this.history.statsOptions.neighbourRadius;
    for (const s of this.touched) {
      add(s.fileId, s.index);
      const count = this.fileExtents(s.fileId);
      for (let d = -radius; d <= radius; d++) {
        const i = s.index + d;
        if (d !== 0 && i >= 0 && (count === undefined || i < count)) add(s.fileId, i);
      }
    }
    this.touched = new Set();
    for (const s of this.popDue(nowUs)) add(s.fileId, s.index);
    if (!this.history.hints.empty) {
      for (const r of this.history.hints.candidates(nowUs, this.heat.o.leadUs, this.fileExtents)) add(r.fileId, r.index);
    }
    return out;
  }

  /**
   * Periodic extents whose next run is now within lead + horizon (each returned once per run).
   * A live mount calls this when `nextDueUs()` passes and stages what is worth it; the extents
   * are also part of the next planning round's candidates if not taken here.
   */
  takeDue(nowUs: number): ExtentRef[] {
    return this.popDue(nowUs).map((s) => ({ fileId: s.fileId, index: s.index }));
  }

  private popDue(nowUs: number): ExtentStats[] {
    const out: ExtentStats[] = [];
    while (this.due.size > 0 && this.due.peekKey() <= nowUs) {
      const key = this.due.peekKey();
      const s = this.due.pop() as ExtentStats;
      if (s.slot < 0 || key !== s.dueKeyUs) continue; // evicted, or rescheduled since
      s.dueKeyUs = Number.NaN;
      // Still live past an announced run's window: no session started, so the run did not come.
      const announced = this.announced.get(s);
      if (announced && nowUs > announced.windowEndUs) {
        this.announced.delete(s);
        this.heat.recordRunOutcome(announced.samples, false);
      }
      const dueUs = this.heat.dueUs(s, nowUs);
      if (dueUs === undefined) continue;
      if (dueUs <= nowUs) {
        out.push(s);
        // Look again once this run's window has passed: if the run never came (a skipped night),
        // the extent must still come due for the following one.
        const run = this.heat.nextRun(s, nowUs);
        if (run) {
          this.push(run.windowEndUs + 1, s);
          if (this.announced.size >= MAX_ANNOUNCED) this.announced.clear();
          this.announced.set(s, { samples: run.samples, windowEndUs: run.windowEndUs });
        }
      } else this.push(dueUs, s);
    }
    // Stale entries (rescheduled extents) accumulate; rebuild when the heap outgrows the table.
    if (this.due.size > 2 * this.history.extents.size + 1024) this.rebuildDue(nowUs);
    return out;
  }

  /** A new session of an extent whose run was announced: the run came (if within its window). */
  private runCame(s: ExtentStats, timeUs: number): void {
    const announced = this.announced.get(s);
    if (!announced) return;
    this.announced.delete(s);
    this.heat.recordRunOutcome(announced.samples, timeUs <= announced.windowEndUs);
  }

  private schedule(s: ExtentStats, nowUs: number): void {
    const dueUs = this.heat.dueUs(s, nowUs);
    if (dueUs !== undefined) this.push(dueUs, s);
  }

  private push(dueUs: number, s: ExtentStats): void {
    s.dueKeyUs = dueUs;
    this.due.push(dueUs, s);
  }

  private rebuildDue(nowUs: number): void {
    this.due.clear();
    for (const s of this.history.extents.values()) this.schedule(s, nowUs);
  }
}
