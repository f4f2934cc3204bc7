/**
 * Assembles the dashboard's JSON snapshot from a running mount: the status report, the sampled
 * IOPS history, the prediction engine's forecasts (predictive placement only), the heat grid and
 * the volume's health. One snapshot is what the page polls every second.
 */
import { StatusReport, TierStatus } from '../control/protocol';
import type { ForecastReport } from '../predict/forecast-report';
import { ExtentSource, HeatGrid, heatGridSteps } from './heat-grid';
import { FAST_PATH_SOURCE, IopsPoint, StatusHistory, TierHealthChange } from './status-history';

/** What the dashboard needs of the volume's health monitor (the watchdog); optional. */
export interface HealthSource {
  readonly state: string;
  /** Oldest first. */
  transitions(): readonly { timeMs: number; from: string; to: string; reason: string }[];
}

/** What the dashboard needs of the prediction engine; absent under reactive placement. */
export interface ForecastSource {
  /** What `shadowfs forecast` shows: per horizon the next forecast, recent scored ones, MASE. */
  report(): ForecastReport;
  /** Predicted accesses of one extent over the planning horizon. */
  heat(fileId: string, index: number, nowMs: number): number;
}

export interface DashboardSources {
  status: () => StatusReport;
  extents: ExtentSource;
  /** The volume's tiers fastest first, with the extent map's ids. */
  tiers: () => readonly { id: number; name: string }[];
  /** What to call files on the page; asked once per heat grid (it may prepare a lookup). */
  fileLabels: () => (fileId: string) => string;
  forecast?: ForecastSource;
  health?: HealthSource;
}

export interface DashboardSnapshot {
  atMs: number;
  mountpoint: string;
  livePath: string;
  pid: number;
  uptimeSeconds: number;
  extentSizeBytes: number;
  placement: StatusReport['placement'];
  tiers: (TierStatus & { costPerMonth: number })[];
  cost: StatusReport['cost'];
  coverage: StatusReport['coverage'];
  /** Failover mode and the watchdog's verdict (null: this mount has no failover controller). */
  failover: NonNullable<StatusReport['failover']> | null;
  shadow: StatusReport['shadow'];
  fastPath: StatusReport['fastPath'];
  /** Reads the redirector served, all sources (the fast path's are in fastPath.hits). */
  servedReads: number;
  pins: number;
  hints: number;
  iops: {
    /** Sources in a fixed order (tiers fastest first, then the fast path, then live). */
    sources: string[];
    /** Per second, oldest first: reads per second of each source in `sources` order. */
    points: { atMs: number; reads: number[] }[];
  };
  /** The engine's forecasts (null values where not known yet; JSON has no NaN). */
  forecast: { available: boolean; note: string; report: ForecastReport | null };
  /** `error`: why the newest rebuild failed (the grid is then the one before). */
  heat: HeatGrid & { atMs: number; heatSource: 'predicted' | 'none'; error?: string };
  health: {
    watchdog: boolean;
    state: string | null;
    transitions: { atMs: number; from: string; to: string; reason: string }[];
    tierChanges: TierHealthChange[];
  };
}

const GIB = 1024 ** 3;
/** The heat grid walks the whole extent map: rebuilt at most this often, however often polled. */
const HEAT_GRID_MIN_AGE_MS = 2_000;
/** ... and at most this share of the event loop's time goes to it on a large volume. */
const HEAT_GRID_BUSY_SHARE = 0.02;
/** One slice of the walk, then the loop serves what waits (FUSE requests) before the next. */
const HEAT_SLICE_MS = 4;
const HEAT_EXTENTS_PER_CHECK = 2_000;
const MAX_TRANSITIONS_SHOWN = 100;

export class DashboardData {
  readonly history: StatusHistory;
  private heatCache: DashboardSnapshot['heat'] | undefined;
  private heatBuilding = false;
  private heatMaxAgeMs = HEAT_GRID_MIN_AGE_MS;

  constructor(private readonly sources: DashboardSources) {
    this.history = new StatusHistory(sources.status);
  }

  snapshot(nowMs = Date.now()): DashboardSnapshot {
    const s = this.sources.status();
    return {
      atMs: nowMs,
      mountpoint: s.mountpoint,
      livePath: s.livePath,
      pid: s.pid,
      uptimeSeconds: s.uptimeSeconds,
      extentSizeBytes: s.extentSizeBytes,
      placement: s.placement,
      tiers: s.tiers.map((t) => ({ ...t, costPerMonth: (t.usedBytes / GIB) * t.costPerGiBMonth })),
      cost: s.cost,
      coverage: s.coverage,
      failover: s.failover ?? null,
      shadow: s.shadow,
      fastPath: s.fastPath,
      servedReads: s.served.reduce((n, x) => n + x.reads, 0),
      pins: s.pins.length,
      hints: s.hints,
      iops: this.iops(s, this.history.iops()),
      forecast: this.forecast(),
      heat: this.heat(nowMs),
      health: this.health(),
    };
  }

  private iops(s: StatusReport, points: readonly IopsPoint[]): DashboardSnapshot['iops'] {
    const known = new Set<string>();
    for (const p of points) for (const k of Object.keys(p.readsPerSecond)) known.add(k);
    const order = [...s.tiers.map((t) => t.name), FAST_PATH_SOURCE, 'live'];
    const sources = [...order.filter((x) => known.has(x)), ...[...known].filter((x) => !order.includes(x)).sort()];
    return {
      sources,
      points: points.map((p) => ({ atMs: p.atMs, reads: sources.map((src) => round2(p.readsPerSecond[src] ?? 0)) })),
    };
  }

  private forecast(): DashboardSnapshot['forecast'] {
    const f = this.sources.forecast;
    if (!f) return { available: false, note: 'reactive placement: no forecast (mount with --placement predictive for one)', report: null };
    return {
      available: true,
      note: 'Forecasts are one-minute means of the IOPS (reads and writes) the prediction engine saw, from the regression or seasonal naive, whichever has erred less lately.',
      report: f.report(),
    };
  }

  /** The newest complete heat grid; starts a rebuild when it is old (done in slices, see heat-grid). */
  private heat(nowMs: number): DashboardSnapshot['heat'] {
    const cached = this.heatCache;
    if (!this.heatBuilding && (!cached || nowMs - cached.atMs >= this.heatMaxAgeMs)) this.buildHeat(nowMs);
    const f = this.sources.forecast;
    return this.heatCache ?? { tiers: [], totalExtents: 0, fileCount: 0, extentsPerCell: 1, tier: [], heat: null, files: [], atMs: nowMs, heatSource: f ? 'predicted' : 'none' };
  }

  private buildHeat(nowMs: number): void {
    const f = this.sources.forecast;
    const steps = heatGridSteps({
      extents: this.sources.extents,
      tiers: this.sources.tiers(),
      label: this.sources.fileLabels(),
      heat: f ? (fileId, index) => f.heat(fileId, index, nowMs) : undefined,
    }, HEAT_EXTENTS_PER_CHECK);
    this.heatBuilding = true;
    let busyMs = 0;
    // A small map is done within the first slice, so the snapshot that asked already has it.
    const slice = (): void => {
      const start = performance.now();
      try {
        let r = steps.next();
        while (!r.done && performance.now() - start < HEAT_SLICE_MS) r = steps.next();
        busyMs += performance.now() - start;
        if (!r.done) {
          setImmediate(slice);
          return;
        }
        const grid = r.value;
        if (grid.heat) grid.heat = grid.heat.map(round2);
        this.heatCache = { ...grid, atMs: nowMs, heatSource: f ? 'predicted' : 'none' };
        this.heatMaxAgeMs = Math.max(HEAT_GRID_MIN_AGE_MS, busyMs / HEAT_GRID_BUSY_SHARE);
      } catch (err) {
        // Shown on the page rather than lost; the next poll past the age limit tries again.
        const previous = this.heatCache ?? { tiers: [], totalExtents: 0, fileCount: 0, extentsPerCell: 1, tier: [], heat: null, files: [], heatSource: f ? 'predicted' : 'none' };
        this.heatCache = { ...previous, atMs: nowMs, error: (err as Error).message };
      }
      this.heatBuilding = false;
    };
    slice();
  }

  private health(): DashboardSnapshot['health'] {
    const h = this.sources.health;
    const tierChanges = [...this.history.tierHealthChanges()];
    if (!h) return { watchdog: false, state: null, transitions: [], tierChanges };
    const transitions = h.transitions().slice(-MAX_TRANSITIONS_SHOWN).map((t) => ({ atMs: t.timeMs, from: t.from, to: t.to, reason: t.reason }));
    return { watchdog: true, state: h.state, transitions, tierChanges };
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
