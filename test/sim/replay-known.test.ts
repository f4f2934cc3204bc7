import t from 'tap';
import { runPolicy, makePolicy } from '../../src/sim/replay';
import { LruPolicy } from '../../src/sim/policies/lru';
import { PredictivePolicy } from '../../src/sim/policies/predictive';
import { compact, MiB, shuffled } from './helpers';

const opts = { extentSizeBytes: MiB, capacity: { fraction: 1 }, policies: [] };

t.test('a strictly periodic trace is predicted perfectly once one period has been seen', async (t) => {
  // Two jobs of 40 extents each, every 10 minutes, five minutes apart, each read in a different
  // random order every run. The fast tier holds one job (and a little more): LRU always has the
  // wrong one.
  const periodUs = 600e6;
  const accesses: Array<[number, number]> = [];
  for (let run = 0; run < 8; run++) {
    for (const [job, offsetUs] of [[0, 0], [1, periodUs / 2]] as const) {
      const start = run * periodUs + offsetUs;
      shuffled(Array.from({ length: 40 }, (_, i) => job * 40 + i), run * 7 + job + 1).forEach((e, i) => accesses.push([e, start + i * 100_000]));
    }
  }
  const trace = compact(accesses);
  const predictive = new PredictivePolicy(trace, { capacityExtents: 48, extentSizeBytes: MiB });
  const { hits } = runPolicy(predictive, trace);
  const lru = runPolicy(new LruPolicy(48), trace);
  let lateMisses = 0;
  let lateAccesses = 0;
  for (let i = 0; i < trace.length; i++) {
    // Runs 0 and 1 of each job: the first shows the set, the second the period.
    if (trace.timesUs[i] < 2 * periodUs) continue;
    lateAccesses++;
    if (!hits[i]) lateMisses++;
  }
  t.equal(lateMisses, 0, `no miss from the third run on (of ${lateAccesses} accesses)`);
  t.ok(lru.misses > trace.length * 0.9, `LRU misses nearly everything (${lru.misses}/${trace.length})`);
  t.ok(predictive.copies / trace.length <= 1.5, 'promotion traffic within 1.5 copies per access');
});

t.test('a scan does not flush the hot set, and readahead serves the scan itself', async (t) => {
  // 60 hot extents read at random, 10 per second; a 3000-extent sequential scan at 100 extents/s
  // runs through the middle (its requests two-by-two out of order). Fast tier: 80 extents.
  const accesses: Array<[number, number]> = [];
  let x = 12345;
  const rand = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  for (let i = 0; i < 6000; i++) accesses.push([rand(60), i * 100_000]);
  const scanStart = 200e6;
  for (let i = 0; i < 3000; i++) {
    const e = i % 2 === 0 ? i + 1 : i - 1; // pairs arrive swapped
    accesses.push([1000 + e, scanStart + i * 10_000 + 5]);
  }
  accesses.sort((a, b) => a[1] - b[1]);
  const trace = compact(accesses);
  const p = new PredictivePolicy(trace, { capacityExtents: 80, extentSizeBytes: MiB });
  const { hits } = runPolicy(p, trace);
  let hotAfter = 0;
  let hotAfterHits = 0;
  let scan = 0;
  let scanHits = 0;
  for (let i = 0; i < trace.length; i++) {
    const index = trace.refs[trace.extentIds[i]].index;
    const tUs = trace.timesUs[i];
    if (index >= 1000) {
      scan++;
      if (hits[i]) scanHits++;
    } else if (tUs > scanStart) {
      hotAfter++;
      if (hits[i]) hotAfterHits++;
    }
  }
  t.ok(hotAfterHits / hotAfter > 0.97, `hot set keeps hitting during and after the scan (${hotAfterHits}/${hotAfter})`);
  t.ok(scanHits / scan > 0.9, `readahead serves the scan (${scanHits}/${scan} hits)`);
  const scanResident = p.residents().filter((id) => trace.refs[id].index >= 1000).length;
  t.ok(scanResident <= 32, `at most a readahead window (32) of scan extents stays resident (${scanResident})`);
  const lru = makePolicy('lru', trace, 80, opts);
  const l = runPolicy(lru, trace);
  t.ok(l.misses > trace.length - scanHits - hotAfterHits, 'LRU, by contrast, loses the hot set to the scan');
});

t.test('on a structureless uniform random trace predictive is no worse than LRU', async (t) => {
  const accesses: Array<[number, number]> = [];
  let x = 99;
  for (let i = 0; i < 20000; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    accesses.push([x % 1000, i * 250_000]);
  }
  const trace = compact(accesses);
  const lru = runPolicy(new LruPolicy(100), trace);
  const pred = runPolicy(new PredictivePolicy(trace, { capacityExtents: 100, extentSizeBytes: MiB }), trace);
  t.ok(pred.misses <= lru.misses * 1.01, `predictive ${pred.misses} vs LRU ${lru.misses} misses`);
});
