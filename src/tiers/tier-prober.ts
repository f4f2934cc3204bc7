/**
 * Brings tiers back: a tier marked suspect or failed gets no traffic, so nothing but an active
 * probe can show that it works again (the object store is back, the disk was remounted). Healthy
 * directory tiers are also checked for having lost their mount.
 */
import { Logger } from '../util/log';
import { TierSet } from './tier-set';
import { TierHealthState } from './tier';

export class TierProber {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly last = new Map<number, TierHealthState>();

  constructor(private readonly tiers: TierSet, private readonly intervalMs: number, private readonly log: Logger) {}

  start(): void {
    this.timer = setInterval(() => void this.probeAll(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async probeAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const { id, tier } of this.tiers.all()) {
        const before = this.last.get(id) ?? tier.health();
        const after = before === 'healthy' && tier.health() === 'healthy' && !('checkMount' in tier)
          ? 'healthy'
          : await tier.probe().catch(() => 'failed' as const);
        if (after !== before) this.log.warn('tiers', `tier ${tier.spec.name}: ${before} → ${after}`);
        this.last.set(id, after);
      }
    } finally {
      this.running = false;
    }
  }
}
