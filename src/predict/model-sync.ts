import type { Logger } from '../util/log';
import type { VolumeForecaster } from './forecaster';
import { ModelStore } from './model-store';

/**
 * Keeps one volume's forecaster in step with the machine's shared model directory: on start it
 * installs the pooled (global) model already there, so a new volume forecasts with what the other
 * volumes learned from its first minute; then every `everyMs` (hourly) and once more when the
 * volume closes, it publishes its newest training rows, refits the pool and installs the result.
 * The volume's own coefficients are shrunk towards the pooled ones (see ml.ts `shrink`), so each
 * volume's history changes the others' personalised models and theirs change its.
 *
 * Failures (a read-only or full model directory) are logged and the volume keeps forecasting with
 * what it has: the pooled model is an improvement, never a dependency.
 */
export const DEFAULT_MODEL_SYNC_MS = 3600_000;

export class ModelSync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  syncs = 0;
  lastError: string | undefined;

  constructor(
    readonly store: ModelStore,
    readonly volumeId: string,
    private readonly forecaster: VolumeForecaster,
    private readonly log: Logger,
    private readonly everyMs = DEFAULT_MODEL_SYNC_MS,
  ) {}

  /** Install the pooled model if one exists, then sync on a timer that never keeps the process up. */
  async start(): Promise<void> {
    try {
      const global = await this.store.loadGlobal();
      if (global) this.forecaster.setGlobal(global.models);
    } catch (err) {
      this.fail(err);
    }
    this.timer = setInterval(() => void this.sync(), this.everyMs);
    this.timer.unref();
  }

  /** Publish, refit the pool, install it. Joins a sync already running. Never throws. */
  sync(): Promise<void> {
    this.running ??= this.store
      .sync(this.volumeId, this.forecaster)
      .then(() => {
        this.syncs++;
        this.lastError = undefined;
      })
      .catch((err: unknown) => this.fail(err))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stop the timer and publish a last time (what this volume learned since the last sync). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await this.sync();
  }

  private fail(err: unknown): void {
    this.lastError = err instanceof Error ? err.message : String(err);
    this.log.warn('predict', `shared model directory ${this.store.dir}: ${this.lastError}`);
  }
}
