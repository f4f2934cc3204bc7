/**
 * What the dashboard remembers of a running mount over time: once a second it reads the status
 * report's cumulative counters and keeps the per-second read rate by source (each tier, the live
 * volume, the native fast path), and every change of a tier's health. Both are bounded rings, so
 * memory does not grow with uptime; nothing runs while the dashboard is off.
 */
import { StatusReport } from '../control/protocol';

/** Seconds of per-second rates kept (what the IOPS chart spans). */
export const IOPS_WINDOW_SECONDS = 300;
const MAX_TIER_HEALTH_CHANGES = 200;
/** Source name of reads the fast path served natively (the status report counts them apart). */
export const FAST_PATH_SOURCE = 'fast path';

export interface IopsPoint {
  atMs: number;
  /** Reads per second by source over the second that ended at atMs. */
  readsPerSecond: Record<string, number>;
}

export interface TierHealthChange {
  atMs: number;
  tier: string;
  from: string;
  to: string;
}

export class StatusHistory {
  private readonly points: IopsPoint[] = [];
  private readonly healthChanges: TierHealthChange[] = [];
  private last: { atMs: number; reads: Map<string, number>; health: Map<string, string> } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly status: () => StatusReport) {}

  start(everyMs = 1_000): void {
    this.sample(Date.now());
    this.timer = setInterval(() => this.sample(Date.now()), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample; exposed so a caller can sample at a moment of its choosing. */
  sample(nowMs: number): void {
    const report = this.status();
    const reads = new Map<string, number>(report.served.map((s) => [s.source, s.reads]));
    reads.set(FAST_PATH_SOURCE, report.fastPath.hits);
    const health = new Map(report.tiers.map((t) => [t.name, t.health]));
    const prev = this.last;
    if (prev) {
      const seconds = Math.max(0.001, (nowMs - prev.atMs) / 1000);
      const readsPerSecond: Record<string, number> = {};
      for (const [source, n] of reads) readsPerSecond[source] = Math.max(0, n - (prev.reads.get(source) ?? 0)) / seconds;
      this.push(this.points, { atMs: nowMs, readsPerSecond }, IOPS_WINDOW_SECONDS);
      for (const [tier, to] of health) {
        const from = prev.health.get(tier);
        if (from !== undefined && from !== to) this.push(this.healthChanges, { atMs: nowMs, tier, from, to }, MAX_TIER_HEALTH_CHANGES);
      }
    }
    this.last = { atMs: nowMs, reads, health };
  }

  /** Oldest first. */
  iops(): readonly IopsPoint[] {
    return this.points;
  }

  /** Oldest first. */
  tierHealthChanges(): readonly TierHealthChange[] {
    return this.healthChanges;
  }

  private push<T>(ring: T[], item: T, max: number): void {
    ring.push(item);
    if (ring.length > max) ring.splice(0, ring.length - max);
  }
}
