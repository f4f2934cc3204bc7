/**
 * The shared model directory in use: two volumes syncing with one directory change each other's
 * personalised forecasting models, and a volume that closes publishes what it learned.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { VolumeForecaster, modelKey } from '../../src/predict/forecaster';
import { ModelStore } from '../../src/predict/model-store';
import { ModelSync } from '../../src/predict/model-sync';
import type { LinearCoefficients } from '../../src/predict/ml';
import { silentLogger } from '../../src/util/log';

const OPTS = { horizonsSteps: [1], seasonalPeriodsSteps: [24], refitEverySamples: 24, scaleWindowSteps: 24 };
const KEY = modelKey(1, 1);

/** A volume whose load follows `shape` (one value per step of a 24-step season), fed 20 seasons. */
function volume(shape: (step: number) => number): VolumeForecaster {
  const f = new VolumeForecaster(OPTS);
  for (let i = 0; i < 24 * 20; i++) {
    const v = shape(i);
    f.push({ iops: v, bytesPerS: v * 4096, latencyUs: 300 + v });
  }
  return f;
}

const differs = (a: LinearCoefficients | undefined, b: LinearCoefficients | undefined): boolean =>
  !!a && !!b && a.weights.some((w, i) => Math.abs(w - b.weights[i]) > 1e-6);

t.test("two volumes' pooled histories change each other's personalised model", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shadowfs-models-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Different shapes: a smooth day, and a day that is busy in one block and idle otherwise.
  const a = volume((i) => 100 + 50 * Math.sin((2 * Math.PI * i) / 24) + ((i * 7919) % 13));
  const b = volume((i) => (i % 24 < 6 ? 400 : 20) + ((i * 104729) % 17));
  const syncA = new ModelSync(new ModelStore(dir), 'vol-a', a, silentLogger);
  const syncB = new ModelSync(new ModelStore(dir), 'vol-b', b, silentLogger);

  const ownA = a.metrics.iops.localModels()[KEY];
  t.ok(ownA, 'volume a has fitted its own model');
  t.same(a.metrics.iops.personalisedModel(KEY), ownA, 'before any sync a forecasts with its own model');

  await syncA.sync();
  const aAlone = a.metrics.iops.personalisedModel(KEY);
  await syncB.sync();
  const bPooled = b.metrics.iops.personalisedModel(KEY);
  await syncA.sync();
  const aPooled = a.metrics.iops.personalisedModel(KEY);

  t.same(a.metrics.iops.localModels()[KEY], ownA, "a's own fit is unchanged (no new data)");
  t.ok(differs(aAlone, aPooled), "b's history, pooled, changed a's personalised model");
  t.ok(differs(bPooled, b.metrics.iops.localModels()[KEY]), "b's personalised model is shrunk towards the pool");

  // What b's model would be with b alone in the directory: a's rows made the difference.
  const soloDir = mkdtempSync(path.join(tmpdir(), 'shadowfs-models-'));
  t.teardown(() => rmSync(soloDir, { recursive: true, force: true }));
  const bSolo = volume((i) => (i % 24 < 6 ? 400 : 20) + ((i * 104729) % 17));
  await new ModelSync(new ModelStore(soloDir), 'vol-b', bSolo, silentLogger).sync();
  t.ok(differs(bPooled, bSolo.metrics.iops.personalisedModel(KEY)), "a's history, pooled, changed b's personalised model");

  // A new volume starts with the pooled model: start() installs global.json.
  const c = new VolumeForecaster(OPTS);
  const syncC = new ModelSync(new ModelStore(dir), 'vol-c', c, silentLogger, 60_000);
  await syncC.start();
  t.ok(c.metrics.iops.personalisedModel(KEY), 'a volume with no history of its own forecasts with the pool');
  await syncC.stop();
  t.ok(existsSync(path.join(dir, 'samples', 'vol-c.json')), 'stop() publishes the volume once more');
  t.equal(syncC.syncs, 1);
});

t.test('a model directory that cannot be written is logged, not fatal', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shadowfs-models-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const log = { debug: () => undefined, info: () => undefined, warn: (_c: string, m: string) => lines.push(m), error: () => undefined };
  // A regular file where the directory should be.
  const blocked = path.join(dir, 'file');
  writeFileSync(blocked, 'x');
  const sync = new ModelSync(new ModelStore(path.join(blocked, 'models')), 'v', volume((i) => 10 + (i % 24)), log);
  await sync.sync();
  t.equal(sync.syncs, 0);
  t.match(sync.lastError ?? '', /ENOTDIR/);
  t.match(lines.join('\n'), /shared model directory .*ENOTDIR/);
});
