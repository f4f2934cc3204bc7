import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ShadowfsError } from '../util/errors';
import { fitLinear } from './ml';
import { VOLUME_METRICS, type ModelSet, type TrainingSet, type VolumeForecaster, type VolumeMetric } from './forecaster';

/**
 * The shared model directory: how the global forecasting model is pooled over every volume on the
 * machine. Each volume publishes its newest training rows (bounded) to `samples/<volume>.json`; a
 * refit reads every volume's rows, fits one model per (metric, level, horizon) on the pool and
 * writes `global.json`. Volumes then shrink their own coefficients towards it.
 *
 * Rows are already scale-free (each volume's features and targets are divided by its own recent
 * mean), which is what makes pooling volumes of different sizes meaningful. Writes are atomic
 * (temp file + rename); concurrent mounts only ever write their own sample file, and two racing
 * refits write equally valid global models, so no locking is needed.
 */
export const MAX_PUBLISHED_ROWS = 500;

type SamplesFile = { volumeId: string; writtenAtMs: number; metrics: Partial<Record<VolumeMetric, Record<string, TrainingSet>>> };
type GlobalFile = { fittedAtMs: number; volumes: number; models: Partial<Record<VolumeMetric, ModelSet>> };

export class ModelStore {
  constructor(readonly dir: string) {}

  private samplesDir(): string {
    return path.join(this.dir, 'samples');
  }

  async publish(volumeId: string, forecaster: VolumeForecaster): Promise<void> {
    const file: SamplesFile = { volumeId, writtenAtMs: Date.now(), metrics: forecaster.exportSamples(MAX_PUBLISHED_ROWS) };
    await this.writeAtomic(path.join(this.samplesDir(), `${encodeURIComponent(volumeId)}.json`), JSON.stringify(file));
  }

  /** Fit the global models on every published volume's rows and save them. */
  async refitGlobal(): Promise<GlobalFile> {
    let names: string[];
    try {
      names = (await fs.readdir(this.samplesDir())).filter((n) => n.endsWith('.json'));
    } catch {
      names = [];
    }
    const pooled = new Map<string, TrainingSet>();
    let volumes = 0;
    for (const name of names) {
      let data: SamplesFile;
      try {
        data = JSON.parse(await fs.readFile(path.join(this.samplesDir(), name), 'utf8')) as SamplesFile;
      } catch {
        continue; // a half-written or foreign file must not stop the refit
      }
      volumes++;
      for (const metric of VOLUME_METRICS) {
        for (const [key, set] of Object.entries(data.metrics[metric] ?? {})) {
          const k = `${metric}|${key}`;
          const acc = pooled.get(k) ?? { rows: [], targets: [] };
          acc.rows.push(...set.rows);
          acc.targets.push(...set.targets);
          pooled.set(k, acc);
        }
      }
    }
    const models: Partial<Record<VolumeMetric, ModelSet>> = {};
    for (const [k, set] of pooled) {
      const [metric, key] = k.split('|') as [VolumeMetric, string];
      const fit = fitLinear(set.rows, set.targets, { ridge: 1e-3 });
      if (!fit) continue;
      (models[metric] ??= {})[key] = fit;
    }
    const global: GlobalFile = { fittedAtMs: Date.now(), volumes, models };
    await this.writeAtomic(path.join(this.dir, 'global.json'), JSON.stringify(global));
    return global;
  }

  async loadGlobal(): Promise<GlobalFile | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir, 'global.json'), 'utf8')) as GlobalFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ShadowfsError(`model directory ${this.dir}: cannot read global.json: ${(err as Error).message}`);
    }
  }

  /** Publish this volume's rows, refit the pool and install the result in the forecaster. */
  async sync(volumeId: string, forecaster: VolumeForecaster): Promise<void> {
    await this.publish(volumeId, forecaster);
    const global = await this.refitGlobal();
    forecaster.setGlobal(global.models);
  }

  private async writeAtomic(file: string, data: string): Promise<void> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  }
}
