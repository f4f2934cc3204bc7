import t from 'tap';
import { HISTOGRAM_BINS, binOf, binValueUs, newHistogram, quantileUs } from '../../src/health/latency-histogram';
import { LatencyWindow } from '../../src/health/latency-window';
import { noisy, rng } from './simulate';

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

t.test('histogram bins: monotonic, ~4.5% wide, bounded', async (t) => {
  t.equal(binOf(0), 0);
  t.equal(binOf(-5), 0, 'a negative latency (clock skew) is not slow');
  t.equal(binOf(NaN), 0);
  t.equal(binOf(1e15), HISTOGRAM_BINS - 1, 'huge values land in the last bin');
  let prev = -1;
  for (let us = 1; us < 1e9; us *= 1.01) {
    const b = binOf(us);
    t.ok(b >= prev, 'monotonic');
    prev = b;
    if (us < 2 ** 28) {
      const err = Math.abs(binValueUs(b) - us) / us;
      if (err > 0.045) t.fail(`value ${us} -> bin ${b} (${binValueUs(b)}): ${(err * 100).toFixed(1)}% off`);
    }
  }
});

t.test('window percentiles match exact ones within the bin precision', async (t) => {
  const random = rng(7);
  const w = new LatencyWindow({ spanMs: 10_000, bucketMs: 1_000 });
  const values: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const v = noisy(random, 2000, 0.7, 0.02);
    values.push(v);
    w.record(i * 2, v, i % 100 === 0 ? 'error' : 'ok'); // 5000 samples over 10 s
  }
  values.sort((a, b) => a - b);
  const s = w.summary(9_999);
  t.equal(s.count, 5000);
  t.equal(s.errors, 50);
  t.equal(s.errorRate, 0.01);
  for (const [q, got] of [[0.5, s.p50Us], [0.95, s.p95Us], [0.99, s.p99Us]] as const) {
    const exact = exactQuantile(values, q);
    t.ok(Math.abs((got as number) - exact) / exact < 0.05, `p${q * 100}: ${got} vs exact ${exact}`);
  }
  t.equal(s.robustP95Us, s.p95Us, 'with many samples the robust p95 is the p95');
  t.equal(s.maxUs, values[values.length - 1]);
});

t.test('the window slides: old buckets leave, late samples are dropped', async (t) => {
  const w = new LatencyWindow({ spanMs: 5_000, bucketMs: 1_000 });
  for (let ms = 0; ms < 5_000; ms += 10) w.record(ms, 100_000); // 100 ms for 5 s
  for (let ms = 5_000; ms < 10_000; ms += 10) w.record(ms, 1_000); // then 1 ms
  const s = w.summary(9_999);
  t.equal(s.count, 500, 'only the last 5 s');
  t.ok((s.p99Us as number) < 1100, 'the slow period is gone');
  w.record(1_000, 1e6, 'timeout'); // finished long ago, reported late
  t.equal(w.summary(9_999).timeouts, 0, 'a sample older than the window is dropped');
  t.equal(w.summary(20_000).count, 0, 'an idle window empties');
  t.same(w.summary(20_000), { count: 0, errors: 0, timeouts: 0, errorRate: 0 });
  t.equal(w.summary(9_999, 2_000).count, 200, 'a shorter span counts only its buckets');
});

t.test('memory is fixed by the span, not the traffic', async (t) => {
  const w = new LatencyWindow({ spanMs: 3_000, bucketMs: 1_000 });
  const random = rng(1);
  for (let i = 0; i < 200_000; i++) w.record(i * 0.5, noisy(random, 500));
  t.ok(w.points(100_000, 3_000, 1).length <= 4, 'at most span / bucket + 1 buckets');
  t.equal(w.summary(99_999).count, 6000, 'the last 3 buckets of 2000 samples');
});

t.test('robust p95: a few stray slow ops among few samples do not make a slow p95', async (t) => {
  const w = new LatencyWindow({ spanMs: 10_000 });
  for (let i = 0; i < 18; i++) w.record(i * 100, 1_000);
  w.record(1_900, 500_000);
  w.record(1_950, 500_000);
  const s = w.summary(2_000);
  t.ok((s.p95Us as number) > 400_000, 'plain p95 of 20 samples is the second slowest');
  t.ok((s.robustP95Us as number) < 1_100, 'the robust p95 needs five slow ops');
  const h = newHistogram();
  t.equal(quantileUs(h, 0, 0.95), undefined, 'empty');
});

t.test('trend points: one per bucket when busy, merged runs when sparse', async (t) => {
  const busy = new LatencyWindow({ spanMs: 10_000 });
  for (let ms = 0; ms < 10_000; ms += 10) busy.record(ms, 1000 + ms * 10); // rising
  const pts = busy.points(9_999, 10_000, 20);
  t.equal(pts.length, 10);
  t.ok(pts.every((p, i) => i === 0 || p.p95Us > pts[i - 1].p95Us), 'rising p95 per point');
  t.ok(pts.every((p, i) => i === 0 || p.timeMs > pts[i - 1].timeMs), 'oldest first');

  const sparse = new LatencyWindow({ spanMs: 10_000 });
  for (let ms = 0; ms < 10_000; ms += 200) sparse.record(ms, 1000); // 5 per second
  const merged = sparse.points(9_999, 10_000, 20);
  t.equal(merged.length, 2, '50 samples make two points of 20 (the oldest 10 are too few)');
  t.ok(merged.every((p) => p.count >= 20));
  t.ok(merged[1].timeMs > 7_000, 'the newest point is built from the newest buckets');
});
