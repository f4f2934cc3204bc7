/**
 * Hot reload of a mount's config file: re-read and validate it (the parser the mount used, with
 * its messages), compare it with what runs, and either apply every change or refuse the whole
 * reload with the reason, keeping the old settings. Every outcome is logged and kept for `status`.
 * Reloads run one at a time (a removed tier drains before the next reload starts).
 */
import type { ReloadReport } from '../control/protocol';
import { TierSpec } from '../tiers/tier';
import { ShadowfsError } from '../util/errors';
import { Logger } from '../util/log';
import { Mutex } from '../util/mutex';
import { ConfigChange, describeChange, diffConfigs, tiersAfterEdit } from './config-diff';
import { ConfigFileWatcher } from './config-watcher';
import { PredictorConfig } from './predictor-config';
import { VolumeConfig } from './volume-config';
import { WatchdogConfig } from './watchdog-config';

/** What a running mount lets a reload change. */
export interface ReloadTarget {
  /** The tiers as they run now (the `tier` command changes them too). */
  tiers(): TierSpec[];
  /** Reasons the mount cannot take these changes (checked before any is applied). */
  preflight(changes: ConfigChange[]): Promise<string[]>;
  addTier(spec: TierSpec): Promise<void>;
  setTierCapacity(name: string, capacityBytes: number): Promise<void>;
  setTierCost(name: string, costPerGiBMonth: number): void;
  removeTier(name: string): Promise<void>;
  setCopyLimits(limits: { maxBytesPerSec?: number; concurrentCopies?: number }): void;
  /** Absent while the running admission policy cannot take a new threshold. */
  setAdmitAfterReads?(reads: number): void;
  setCoverageScanIntervalMs(ms: number): void;
  /** null: no background scrub. */
  setScrubIntervalMs(ms: number | null): void;
  setScrubRate(bytesPerSec: number): void;
  setWatchLive(on: boolean): Promise<void>;
  setPredictor(p: PredictorConfig): void;
}

export class ConfigReloader {
  private target: ReloadTarget | undefined;
  private last: ReloadReport | null = null;
  private readonly mutex = new Mutex();
  private readonly watchdogListeners: ((w: WatchdogConfig) => void)[] = [];
  private watcher: ConfigFileWatcher | undefined;

  /**
   * `load` re-reads the file the way the mount first did (flags given to `mount` still override
   * it); `current` is what the mount started with.
   */
  constructor(
    readonly file: string,
    private readonly load: () => VolumeConfig,
    private current: VolumeConfig,
    private readonly log: Logger,
  ) {}

  attach(target: ReloadTarget): void {
    this.target = target;
  }

  /** Called with the new watchdog settings when a reload changes them (the health monitor's hook). */
  onWatchdogChange(listener: (w: WatchdogConfig) => void): void {
    this.watchdogListeners.push(listener);
  }

  /** The settings in force (tiers as last read from the file; see ReloadTarget.tiers for what runs). */
  settings(): VolumeConfig {
    return this.current;
  }

  summary(): { file: string; lastReload: ReloadReport | null } {
    return { file: this.file, lastReload: this.last };
  }

  /** Reload whenever the file changes. */
  async watch(): Promise<void> {
    this.watcher = new ConfigFileWatcher(this.file, () => void this.reload('file-changed'), this.log);
    await this.watcher.start();
  }

  async stop(): Promise<void> {
    await this.watcher?.stop();
    this.watcher = undefined;
    // A reload in progress finishes before the mount is torn down.
    await this.mutex.run(async () => undefined);
  }

  reload(trigger: ReloadReport['trigger']): Promise<ReloadReport> {
    return this.mutex.run(async () => {
      const report = await this.attempt(trigger);
      this.last = report;
      if (!report.accepted) {
        const applied = report.changes.length > 0 ? ` (applied before that: ${report.changes.join('; ')})` : ', keeping the old settings';
        this.log.warn('config', `reload of ${this.file} refused${applied}: ${report.reason}`);
      } else {
        this.log.info('config', `reloaded ${this.file} (${trigger}): ${report.changes.length > 0 ? report.changes.join('; ') : 'no changes'}`);
      }
      return report;
    });
  }

  private async attempt(trigger: ReloadReport['trigger']): Promise<ReloadReport> {
    const target = this.target;
    if (!target) throw new Error('config reloader: no mount attached');
    const refused = (reason: string, changes: string[] = []): ReloadReport => ({ file: this.file, trigger, atMs: Date.now(), accepted: false, changes, reason });
    let next: VolumeConfig;
    try {
      next = this.load();
    } catch (err) {
      if (err instanceof ShadowfsError) return refused(err.message);
      throw err;
    }
    const running = target.tiers();
    const diff = diffConfigs({ ...this.current, tiers: running }, { ...next, tiers: tiersAfterEdit(this.current.tiers, next.tiers, running) });
    const refusals = [...diff.refusals];
    if (!target.setAdmitAfterReads && diff.changes.some((c) => c.kind === 'admit-after-reads')) {
      refusals.push('admitAfterReads: the running admission policy cannot change it; unmount and mount again');
    }
    if (refusals.length === 0) refusals.push(...(await target.preflight(diff.changes)));
    if (refusals.length > 0) return refused(refusals.join('; '));
    const applied: string[] = [];
    for (const change of diff.changes) {
      try {
        await this.apply(target, change);
      } catch (err) {
        if (!(err instanceof ShadowfsError)) throw err;
        // Tier steps come first and are compared with the running tiers, so the next reload
        // picks up where this one stopped; the settings after it were not touched.
        return refused(`${describeChange(change)}: ${err.message}`, applied);
      }
      const unheard = change.kind === 'watchdog' && this.watchdogListeners.length === 0;
      applied.push(describeChange(change) + (unheard ? ' (validated; no health monitor takes it yet)' : ''));
    }
    this.current = next;
    return { file: this.file, trigger, atMs: Date.now(), accepted: true, changes: applied };
  }

  private async apply(target: ReloadTarget, c: ConfigChange): Promise<void> {
    switch (c.kind) {
      case 'tier-add': return target.addTier(c.spec);
      case 'tier-capacity': return target.setTierCapacity(c.name, c.toBytes);
      case 'tier-cost': return target.setTierCost(c.name, c.to);
      case 'tier-remove': return target.removeTier(c.name);
      case 'copy-rate': return target.setCopyLimits({ maxBytesPerSec: c.toBytesPerSec });
      case 'concurrent-copies': return target.setCopyLimits({ concurrentCopies: c.to });
      case 'admit-after-reads': return target.setAdmitAfterReads?.(c.to);
      case 'coverage-scan-interval': return target.setCoverageScanIntervalMs(c.toMs);
      case 'scrub-interval': return target.setScrubIntervalMs(c.toMs);
      case 'scrub-rate': return target.setScrubRate(c.toBytesPerSec);
      case 'watch-live': return target.setWatchLive(c.to);
      case 'watchdog':
        for (const l of this.watchdogListeners) l(c.to);
        return;
      case 'predictor': return target.setPredictor(c.to);
    }
  }
}
