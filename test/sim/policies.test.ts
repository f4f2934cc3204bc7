import t from 'tap';
import { ArcPolicy } from '../../src/sim/policies/arc';
import { BeladyPolicy } from '../../src/sim/policies/belady';
import { LruPolicy } from '../../src/sim/policies/lru';
import type { ReplayPolicy } from '../../src/sim/policies/policy';

function run(p: ReplayPolicy, seq: number[]): string {
  return seq.map((id, i) => (p.access(i, id, i * 1000, false) ? 'h' : 'm')).join('');
}

t.test('LRU on a tiny trace, by hand', async (t) => {
  // capacity 2: 1m 2m 1h 3m(evicts 2) 2m(evicts 1) 1m(evicts 3) 2h
  const p = new LruPolicy(2);
  t.equal(run(p, [1, 2, 1, 3, 2, 1, 2]), 'mmhmmmh');
  t.equal(p.copies, 5);
  t.same(p.residents().sort(), [1, 2]);
});

t.test('ARC on a tiny trace, by hand (Megiddo & Modha cases I-IV)', async (t) => {
  const p = new ArcPolicy(2);
  // 1: IV, T1=[1]. 2: IV, T1=[1,2]. 1: I, T1=[2] T2=[1].
  // 3: IV-B (|L1|=1<2, total=2>=c): REPLACE with p=0 moves T1's LRU (2) to B1; T1=[3].
  // 1: I. 2: II (ghost hit in B1): p=1; REPLACE: |T1|=1 is not > p, so T2's LRU (1) goes to B2; T2=[2].
  t.equal(run(p, [1, 2, 1, 3, 1, 2]), 'mmhmhm');
  t.same(p.lists(), { t1: [3], t2: [2], b1: [], b2: [1], p: 1 });
  // 1: III (ghost hit in B2): p=0; REPLACE: |T1|=1 > 0, so T1's LRU (3) goes to B1; T2=[2,1].
  t.equal(run(p, [1]), 'm');
  t.same(p.lists(), { t1: [], t2: [2, 1], b1: [3], b2: [], p: 0 });
  t.equal(p.copies, 5);
});

t.test('ARC resists a one-pass scan that flushes LRU', async (t) => {
  const hot = [1, 2, 3, 4];
  const seq: number[] = [];
  for (let r = 0; r < 5; r++) seq.push(...hot);
  for (let i = 100; i < 140; i++) seq.push(i);
  seq.push(...hot);
  const arc = run(new ArcPolicy(6), seq);
  const lru = run(new LruPolicy(6), seq);
  t.equal(arc.slice(-4), 'hhhh', 'ARC keeps the frequently used set (T2) through the scan');
  t.equal(lru.slice(-4), 'mmmm', 'LRU lost it');
});

t.test("Belady's MIN on a tiny trace, by hand, and never worse than LRU or ARC", async (t) => {
  // capacity 2: 1m 2m 3m(evict 2: next use 4 > 3) 1h 2m(evict 3: never again) 4m(evict 2: never) 1h
  const seq = [1, 2, 3, 1, 2, 4, 1];
  const b = new BeladyPolicy(2, Uint32Array.from(seq), 5);
  t.equal(run(b, seq), 'mmmhmmh');
  t.equal(run(new LruPolicy(2), seq), 'mmmmmmm');
  let x = 7;
  const rnd = Array.from({ length: 5000 }, () => {
    x = (x * 48271) % 2147483647;
    return x % 200 < 150 ? x % 30 : x % 200;
  });
  for (const cap of [5, 20, 50]) {
    const misses = (p: ReplayPolicy): number => run(p, rnd).split('m').length - 1;
    const min = misses(new BeladyPolicy(cap, Uint32Array.from(rnd), 200));
    t.ok(min <= misses(new LruPolicy(cap)), `MIN <= LRU at capacity ${cap}`);
    t.ok(min <= misses(new ArcPolicy(cap)), `MIN <= ARC at capacity ${cap}`);
  }
});
