/**
 * The watchdog of the live volume: an active probe (a small write, fsync and read of a canary file
 * in the live root, plus statfs) at a fixed interval, the in-band samples the live guard feeds to
 * the same health monitor, and a periodic evaluation whose decisions it hands to its owner.
 *
 * At most one probe is outstanding: a hung volume costs one stuck probe, not one per interval.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { HealthAction, HealthMonitor, HealthReport } from '../health/health-monitor';
import { Logger } from '../util/log';
import { settlesWithin } from '../util/settles-within';

export interface WatchdogActions {
  act(action: HealthAction, report: HealthReport): void;
}

const CANARY = '.shadowfs-canary';

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private last: HealthReport | undefined;

  constructor(
    private readonly livePath: string,
    readonly monitor: HealthMonitor,
    private probeIntervalMs: number,
    private readonly actions: WatchdogActions,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.probeIntervalMs);
    this.timer.unref();
  }

  /** A new probe interval (config reload): restarts the timer if it runs. */
  setProbeInterval(ms: number): void {
    this.probeIntervalMs = ms;
    if (!this.timer) return;
    this.stop();
    this.start();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The latest evaluation (evaluates now if there is none yet). */
  report(): HealthReport {
    return this.last ?? this.evaluate();
  }

  evaluate(): HealthReport {
    const report = this.monitor.evaluate(performance.now());
    this.last = report;
    if (report.action) this.actions.act(report.action, report);
    return report;
  }

  private tick(): void {
    void this.probe();
    this.evaluate();
  }

  private async canaryIo(): Promise<void> {
    const canary = path.join(this.livePath, CANARY);
    const payload = Buffer.from(String(Date.now()));
    const fh = await fsp.open(canary, 'w+');
    try {
      await fh.write(payload, 0, payload.length, 0);
      await fh.sync();
      const back = Buffer.alloc(payload.length);
      await fh.read(back, 0, back.length, 0);
      if (!back.equals(payload)) throw new Error('canary read back different bytes');
    } finally {
      await fh.close();
    }
    await fsp.statfs(this.livePath);
  }

  /**
   * Not through the guard's slots: the probe must run while failed over and never queue behind
   * application ops. Its own timer bounds the wait for an answer; the next probe starts only once
   * this one has really ended.
   */
  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    const limitMs = this.monitor.settings.opTimeoutMs;
    const started = performance.now();
    const io = this.canaryIo();
    void io.catch(() => undefined).finally(() => (this.probing = false));
    const answered = await settlesWithin(io, limitMs);
    const now = performance.now();
    if (!answered) {
      this.monitor.recordProbe(limitMs * 1000, false, now);
      return;
    }
    const failure = await io.then(() => undefined, (err: Error) => err);
    this.monitor.recordProbe((now - started) * 1000, failure === undefined, now);
    if (failure) this.log.debug('watchdog', `probe failed: ${failure.message}`);
  }
}
