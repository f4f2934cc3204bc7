/**
 * ml-regression (~30 ms to load) is loaded by the first fit, not by importing the modules that
 * use it: every CLI command's start-up imports them. One loader serves both fits (src/predict/ml.ts).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

t.test('importing the fitters does not load ml-regression; the first fit does', async (t) => {
  const dist = path.resolve(__dirname, '../../src');
  // A fresh process: this one may already have loaded it through another test's imports.
  const script = `
    const loaded = () => Object.keys(require.cache).some((k) => k.includes('/ml-regression/'));
    const { fitTrend } = require(${JSON.stringify(path.join(dist, 'health/trend.js'))});
    const { fitLinear } = require(${JSON.stringify(path.join(dist, 'predict/ml.js'))});
    const out = { afterImport: loaded() };
    const trend = fitTrend([0, 1, 2, 3, 4].map((i) => ({ timeMs: i * 1000, valueUs: 100 + 50 * i })), 1000, 4000);
    out.afterTrend = loaded();
    out.slope = trend.slopeUsPerSec;
    out.weights = fitLinear([[1], [2], [3], [4]], [3, 5, 7, 9]).weights;
    process.stdout.write(JSON.stringify(out));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { afterImport: boolean; afterTrend: boolean; slope: number; weights: number[] };
  t.equal(out.afterImport, false, 'not loaded by the imports');
  t.equal(out.afterTrend, true, 'loaded by the first fit');
  t.ok(Math.abs(out.slope - 50) < 1e-9, `the line's slope (${out.slope} µs/s)`);
  // (fitLinear's ridge pulls the weight off the exact 2 a little: only that it fitted is checked.)
  t.ok(out.weights[0] > 1.5 && out.weights[0] < 2.5, `the linear fit works through the same loader (weight ${out.weights[0]})`);
});
