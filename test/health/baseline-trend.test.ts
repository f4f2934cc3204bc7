import t from 'tap';
import { LatencyBaseline } from '../../src/health/baseline';
import { fitTrend, predictCrossing, TrendPoint } from '../../src/health/trend';
import { gaussian, rng } from './simulate';

// ---- baseline --------------------------------------------------------------------------------

t.test('baseline: warm-up averages, then it is established', async (t) => {
  const b = new LatencyBaseline({ warmupMs: 5_000 });
  t.equal(b.established, false);
  t.equal(b.p95Us, undefined);
  b.update(900, 2000, 0, true);
  b.update(1100, 4000, 1000, true);
  t.equal(b.p95Us, 3000, 'plain mean while warming up');
  t.equal(b.p50Us, 1000);
  for (let s = 2; s <= 5; s++) b.update(1000, 3000, s * 1000, true);
  t.equal(b.established, true, 'after 5 s of eligible updates');
});

t.test('baseline: ineligible periods are ignored entirely', async (t) => {
  const b = new LatencyBaseline({ warmupMs: 0 });
  b.update(1000, 2000, 0, true);
  for (let s = 1; s < 600; s++) b.update(50_000, 900_000, s * 1000, false); // a ten-minute incident
  t.equal(b.p95Us, 2000);
  b.update(1000, 4000, 601_000, true);
  t.ok((b.p95Us as number) < 2010, 'the incident does not weigh the next update either');
});

t.test('baseline: rises slowly, falls quickly, and stays under its ceiling', async (t) => {
  const b = new LatencyBaseline({ warmupMs: 0, halfLifeMs: 60_000, riseSlowdown: 8, ceilingUs: 50_000 });
  b.update(1000, 2000, 0, true);
  // A creeping degradation that never exceeds 2.5 x baseline at any step, for ten minutes.
  let nowMs = 0;
  for (let s = 1; s <= 600; s++) {
    nowMs = s * 1000;
    b.update(1000, 2000 + 3000 * (s / 600), nowMs, true);
  }
  t.ok((b.p95Us as number) < 3500, `crept only to ${b.p95Us?.toFixed(0)} µs while latency reached 5000 µs`);
  const before = b.p95Us as number;
  for (let s = 1; s <= 60; s++) b.update(500, 1000, nowMs + s * 1000, true);
  t.ok((b.p95Us as number) <= (before + 1000) / 2 + 1, 'one half-life of faster latency brings it most of the way down');
  for (let s = 1; s <= 100; s++) b.update(1e6, 1e6, nowMs + 60_000 + s * 10_000, true);
  t.equal(b.p95Us, 50_000, 'capped');
});

// ---- trend -----------------------------------------------------------------------------------

function line(fromMs: number, toMs: number, stepMs: number, f: (ms: number) => number): TrendPoint[] {
  const out: TrendPoint[] = [];
  for (let ms = fromMs; ms <= toMs; ms += stepMs) out.push({ timeMs: ms, valueUs: f(ms) });
  return out;
}

t.test('trend: a clean ramp gives its slope and the time to the limit', async (t) => {
  // 10 ms + 50 ms per second; limit 1 s: reached at (1000 - 10 - 50 * 10) / 50 s after t = 10 s.
  const tr = fitTrend(line(0, 10_000, 1000, (ms) => 10_000 + 50 * ms), 1_000_000, 10_000);
  t.ok(tr);
  t.ok(Math.abs((tr?.slopeUsPerSec as number) - 50_000) < 1, 'slope 50 ms/s');
  t.ok(Math.abs((tr?.nowUs as number) - 510_000) < 1, 'fitted value now');
  t.equal(tr?.rising, true);
  t.ok(Math.abs((tr?.msToLimit as number) - 9_800) < 1, `${tr?.msToLimit} ms to the limit`);
});

t.test('trend: noise around a flat level does not rise', async (t) => {
  const random = rng(3);
  let risingFits = 0;
  for (let trial = 0; trial < 500; trial++) {
    const pts = line(0, 15_000, 1000, () => 2000 * Math.exp(0.4 * gaussian(random)));
    const tr = predictCrossing(pts, 1_000_000, 15_000);
    if (tr?.rising) risingFits++;
    if (tr?.msToLimit !== undefined && tr.msToLimit < 600_000) t.fail(`trial ${trial}: predicted a crossing in ${tr.msToLimit} ms`);
  }
  t.ok(risingFits < 15, `${risingFits} of 500 flat noisy series looked significantly rising`);
});

t.test('trend: a ramp after a flat stretch is caught by the recent fit', async (t) => {
  // 10 s flat at 1 ms, then +100 ms/s for 5 s.
  const pts = line(0, 15_000, 1000, (ms) => (ms <= 10_000 ? 1000 : 1000 + 100 * (ms - 10_000)));
  const full = fitTrend(pts, 1_000_000, 15_000);
  const best = predictCrossing(pts, 1_000_000, 15_000);
  t.ok(best?.msToLimit !== undefined);
  t.ok((best?.msToLimit as number) < (full?.msToLimit ?? Infinity), 'earlier than one line through everything predicts');
  t.ok((best?.msToLimit as number) < 10_000, `true crossing in 5 s; predicted ${best?.msToLimit?.toFixed(0)} ms`);
});

t.test('trend: edge cases', async (t) => {
  t.equal(fitTrend(line(0, 2000, 1000, () => 1), 10, 2000), undefined, 'too few points');
  t.equal(fitTrend([1, 2, 3, 4].map(() => ({ timeMs: 5, valueUs: 1 })), 10, 5), undefined, 'no spread in time');
  const falling = fitTrend(line(0, 10_000, 1000, (ms) => 500_000 - 10 * ms), 1_000_000, 10_000);
  t.equal(falling?.rising, false);
  t.equal(falling?.msToLimit, undefined, 'falling: not heading for the limit');
  const over = fitTrend(line(0, 10_000, 1000, (ms) => 900_000 + 50 * ms), 1_000_000, 10_000);
  t.equal(over?.msToLimit, 0, 'already past the limit');
  t.equal(predictCrossing([], 1, 0), undefined);
});
