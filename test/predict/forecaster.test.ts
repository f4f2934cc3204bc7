import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SeriesForecaster, VolumeForecaster, modelKey } from '../../src/predict/forecaster';
import { ModelStore } from '../../src/predict/model-store';
import { shrink } from '../../src/predict/ml';

/** Deterministic normal noise (Box-Muller on an LCG). */
function noise(seed: number): () => number {
  let x = seed;
  const u = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x + 1) / 2147483649;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function seasonal(steps: number, period: number, seed: number, scale = 1): number[] {
  const n = noise(seed);
  return Array.from({ length: steps }, (_, i) => scale * (100 + 50 * Math.sin((2 * Math.PI * i) / period) + 0.05 * i + 8 * n()));
}

t.test('beats the seasonal-naive forecast on a synthetic seasonal series (MASE < 1)', async (t) => {
  const period = 48;
  const f = new SeriesForecaster({ horizonsSteps: [1, 6], seasonalPeriodsSteps: [period], refitEverySamples: 24, scaleWindowSteps: period });
  for (const v of seasonal(30 * period, period, 42)) f.push(v);
  const m1 = f.mase(1);
  const m6 = f.mase(6);
  t.ok(m1 < 1, `MASE at 1 step = ${m1.toFixed(3)}`);
  t.ok(m6 < 1, `MASE at 6 steps = ${m6.toFixed(3)}`);
  t.ok((f.score.get(1)?.points ?? 0) > 1000, 'scored on the whole series');
  const next = f.forecast(1) ?? Number.NaN;
  const truth = 100 + 50 * Math.sin((2 * Math.PI * (30 * period)) / period) + 0.05 * 30 * period;
  t.ok(Math.abs(next - truth) < 25, `next-step forecast ${next.toFixed(1)} near ${truth.toFixed(1)}`);
});

t.test('a young series falls back to (seasonal) naive, never to nothing', async (t) => {
  const f = new SeriesForecaster({ horizonsSteps: [1], seasonalPeriodsSteps: [10] });
  t.equal(f.forecast(1), undefined);
  f.push(5);
  f.push(7);
  t.equal(f.forecast(1), 7, 'naive: the last value');
  for (let i = 0; i < 10; i++) f.push(i);
  t.equal(f.benchmark(f.steps - 1, 1), f.valueAt(f.steps - 10), 'seasonal naive once a season exists');
});

t.test('global model pooled over volumes, personalised by shrinkage', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shadowfs-models-'));
  const store = new ModelStore(dir);
  const opts = { horizonsSteps: [1], seasonalPeriodsSteps: [24], refitEverySamples: 24, scaleWindowSteps: 24 };
  // Two volumes, a hundredfold apart in size, same shape: pooling works in scale-free space.
  const a = new VolumeForecaster(opts);
  const b = new VolumeForecaster(opts);
  const sa = seasonal(24 * 20, 24, 1, 1);
  const sb = seasonal(24 * 20, 24, 2, 100);
  for (let i = 0; i < sa.length; i++) {
    a.push({ iops: sa[i], bytesPerS: sa[i] * 4096, latencyUs: 500 });
    b.push({ iops: sb[i], bytesPerS: sb[i] * 4096, latencyUs: 900 });
  }
  await store.publish('vol-a', a);
  await store.publish('vol-b', b);
  const global = await store.refitGlobal();
  t.equal(global.volumes, 2);
  const key = modelKey(1, 1);
  const g = global.models.iops?.[key];
  t.ok(g, 'a global model for (daily level, 1 step)');
  const loaded = await store.loadGlobal();
  t.same(loaded?.models.iops?.[key], g, 'persisted in the model directory');

  // A new volume with little history leans on the global model; shrinkage weight n / (n + prior).
  const local = a.metrics.iops.localModels()[key];
  t.ok(local);
  if (!g || !local) return;
  const mixed = shrink({ ...local, samples: 100 }, g, 100);
  mixed?.weights.forEach((w, i) => t.ok(Math.abs(w - (local.weights[i] + g.weights[i]) / 2) < 1e-9, `weight ${i} halfway`));
  t.same(shrink(undefined, g, 100), g, 'no local model: the global one');
  await store.sync('vol-c', new VolumeForecaster(opts));
  t.equal((await store.refitGlobal()).volumes, 3);
});
