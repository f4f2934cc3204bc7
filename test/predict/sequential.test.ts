import t from 'tap';
import { SequentialDetector } from '../../src/predict/sequential';

t.test('a stream read out of order (pairs swapped) is sequential, then a scan past the cutoff', async (t) => {
  const d = new SequentialDetector({ cutoffExtents: 8 });
  const order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10];
  const obs = order.map((i, k) => d.observe('f', i, k * 1000));
  t.notOk(obs[1].sequential, 'two extents are not a stream yet');
  t.ok(obs[3].sequential, 'four extents in pairs: sequential');
  t.notOk(obs[5].scan, 'below the cutoff: not a scan');
  t.ok(obs[9].scan, 'past 8 extents: a scan');
  const staged = obs.flatMap((o) => o.readahead);
  t.ok(staged.length > 0 && staged.every((i) => i > 1), 'readahead stages extents ahead of the reader');
  t.equal(new Set(staged).size, staged.length, 'each extent suggested once');
});

t.test('random reads in a small hot region are not a stream', async (t) => {
  const d = new SequentialDetector();
  let x = 5;
  let flagged = 0;
  for (let k = 0; k < 5000; k++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    // Zipf-ish: mostly the first 50 extents of 200.
    const i = x % 4 === 0 ? x % 200 : x % 50;
    if (d.observe('f', i, k * 1000).sequential) flagged++;
  }
  t.ok(flagged < 50, `${flagged} of 5000 random accesses judged sequential`);
});

t.test('a set read in random order is not a stream; two interleaved scans are two streams', async (t) => {
  const d = new SequentialDetector();
  const perm = [17, 3, 29, 11, 0, 22, 8, 35, 14, 26, 5, 31, 19, 2, 38, 9, 24, 13, 33, 6];
  const flagged = perm.filter((i, k) => d.observe('g', i, k * 1000).sequential).length;
  t.ok(flagged <= 2, `${flagged} of ${perm.length} judged sequential`);
  const e = new SequentialDetector();
  let last = { a: false, b: false };
  for (let k = 0; k < 20; k++) {
    last = { a: e.observe('h', 1000 + k, k * 2000).sequential, b: e.observe('h', 5000 + k, k * 2000 + 1000).sequential };
  }
  t.same(last, { a: true, b: true });
  t.equal(e.streamCount, 2);
});
