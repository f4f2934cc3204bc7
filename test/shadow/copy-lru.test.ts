/**
 * A tier's LRU of copies (CopyLru): least recently read first, a read moves a copy to the newest
 * end, deletions during an iteration are skipped, file numbers of files that left are reused, and
 * every extent index (up to 2**53 - 1) is kept exactly. Checked against a Map doing the same
 * (delete then set), which is what the shadow manager used before.
 */
import t from 'tap';
import { CopyLru, type CopyRef } from '../../src/shadow/copy-lru';
import { seededRandom } from '../../src/util/seeded-random';

const all = (l: CopyLru): CopyRef[] => [...l];
const refs = (...pairs: [string, number][]): CopyRef[] => pairs.map(([fileId, index]) => ({ fileId, index }));

t.test('least recently touched first; a touch moves a copy to the newest end', async (t) => {
  const l = new CopyLru();
  t.same(all(l), [], 'empty');
  t.equal(l.oldest(), undefined);
  l.touch('a', 0);
  l.touch('b', 0);
  l.touch('a', 1);
  l.touch('c', 7);
  t.same(all(l), refs(['a', 0], ['b', 0], ['a', 1], ['c', 7]), 'in the order touched');
  t.same(l.oldest(), { fileId: 'a', index: 0 });
  t.equal(l.size, 4);
  l.touch('a', 0);
  t.same(all(l), refs(['b', 0], ['a', 1], ['c', 7], ['a', 0]), 'touched again: newest');
  l.touch('b', 0);
  l.touch('a', 0);
  t.same(all(l), refs(['a', 1], ['c', 7], ['b', 0], ['a', 0]), 'the newest touched again stays newest');
  t.equal(l.size, 4, 'a touch of a present copy adds nothing');
  t.same(l.oldest(), { fileId: 'a', index: 1 });
});

t.test('add: a present copy keeps its place, an absent one comes in as the newest', async (t) => {
  const l = new CopyLru();
  for (const [f, i] of [['a', 0], ['b', 1], ['c', 2]] as const) l.touch(f, i);
  l.add('a', 0);
  t.same(all(l), refs(['a', 0], ['b', 1], ['c', 2]), 'present: unmoved (as Map.set)');
  t.ok(l.delete('b', 1));
  l.add('b', 1);
  t.same(all(l), refs(['a', 0], ['c', 2], ['b', 1]), 'absent: at the newest end');
});

t.test('delete: gone from the order; deleting what is not there says so', async (t) => {
  const l = new CopyLru();
  for (let i = 0; i < 5; i++) l.touch('f', i);
  t.ok(l.delete('f', 0), 'the oldest');
  t.ok(l.delete('f', 4), 'the newest');
  t.ok(l.delete('f', 2), 'one in the middle');
  t.notOk(l.delete('f', 2), 'twice');
  t.notOk(l.delete('g', 1), 'an unknown file');
  t.notOk(l.delete('f', 9), 'an unknown index');
  t.same(all(l), refs(['f', 1], ['f', 3]));
  t.equal(l.size, 2);
  t.notOk(l.has('f', 0));
  t.ok(l.has('f', 3));
  l.touch('f', 0);
  t.same(all(l), refs(['f', 1], ['f', 3], ['f', 0]), 'back after a delete: the newest');
});

t.test('deleting during an iteration: what is deleted before it is reached is not visited', async (t) => {
  const l = new CopyLru();
  for (let i = 0; i < 6; i++) l.touch('f', i);
  const seen: number[] = [];
  for (const { fileId, index } of l) {
    seen.push(index);
    // makeRoom's way: the one in hand goes at once.
    l.delete(fileId, index);
    if (index === 1) l.delete('f', 2); // the next one
    if (index === 3) l.delete('f', 5); // a later one
  }
  t.same(seen, [0, 1, 3, 4]);
  t.equal(l.size, 0);
  t.same(all(l), []);

  for (let i = 0; i < 4; i++) l.touch('f', i);
  const again: number[] = [];
  for (const { index } of l) {
    again.push(index);
    if (index === 0) {
      l.delete('f', 1);
      l.touch('f', 1); // deleted and back: at the end, so visited there
      l.touch('g', 9); // added meanwhile: visited, as a Map's iterator would
    }
    if (index === 9) l.touch('g', 10); // added while at the end: visited too
  }
  t.same(again, [0, 2, 3, 1, 9, 10], 'moved and added entries are reached at their new place');
});

t.test('makeRoom\'s loop: take the oldest, skip some, put the skipped back at the end', async (t) => {
  const l = new CopyLru();
  for (let i = 0; i < 10; i++) l.touch(`f${i % 3}`, i);
  const protectedIndexes = new Set([0, 4, 5]);
  const skipped: CopyRef[] = [];
  const evicted: number[] = [];
  while (evicted.length < 4) {
    const oldest = l.oldest();
    if (!oldest) break;
    l.delete(oldest.fileId, oldest.index);
    if (protectedIndexes.has(oldest.index)) skipped.push(oldest);
    else evicted.push(oldest.index);
  }
  l.touch('f1', 4); // read while the evictions ran: back already, at the newest end
  for (const c of skipped) l.add(c.fileId, c.index);
  t.same(evicted, [1, 2, 3, 6]);
  t.same(all(l).map((c) => c.index), [7, 8, 9, 4, 0, 5], 'the skipped follow the rest; the one read meanwhile keeps its place');
});

t.test('many deleted during an iteration, and an iteration left early', async (t) => {
  const l = new CopyLru();
  for (let i = 0; i < 1000; i++) l.touch('f', i);
  const seen: number[] = [];
  for (const c of l) {
    seen.push(c.index);
    l.delete(c.fileId, c.index);
    l.delete(c.fileId, c.index + 1); // every other one goes before it is reached
  }
  t.same(seen, Array.from({ length: 500 }, (_, i) => 2 * i), 'every other one, in order');
  t.equal(l.size, 0);
  for (let i = 0; i < 1000; i++) l.touch('f', i);
  for (const c of l) if (c.index === 10) break;
  // Emptied to a quarter, the LRU compacts its slots (not while an iteration is live).
  for (let i = 0; i < 990; i++) l.delete('f', i);
  t.same(all(l).map((c) => c.index), [990, 991, 992, 993, 994, 995, 996, 997, 998, 999]);
  l.touch('f', 991);
  l.touch('f', 5);
  t.same(all(l).map((c) => c.index), [990, 992, 993, 994, 995, 996, 997, 998, 999, 991, 5]);
});

t.test('the number of a file whose copies all went is reused; the name never outlives its copies', async (t) => {
  const l = new CopyLru();
  l.touch('keep', 0);
  // A long-lived mount: a hundred thousand files come and go, never more than three at once.
  let missing = 0;
  for (let n = 0; n < 100_000; n++) {
    const f = `file${n}`;
    l.touch(f, 0);
    l.touch(f, 1);
    if (n > 0) {
      const g = `file${n - 1}`;
      if (!l.delete(g, 0) || !l.delete(g, 1)) missing++;
    }
  }
  t.equal(missing, 0, 'each file\'s copies found until they went');
  t.ok(l.fileNumberSpan <= 3, `file numbers in use stay few (${l.fileNumberSpan})`);
  t.same(all(l), refs(['keep', 0], ['file99999', 0], ['file99999', 1]), 'each copy named by its own file');
  t.notOk(l.has('file99998', 0), 'a file that left is not found under its old number');
  t.ok(l.has('keep', 0));

  // The freed number goes to a new file: no trace of the old one's indexes.
  const m = new CopyLru();
  m.touch('old', 3);
  m.delete('old', 3);
  m.touch('new', 4);
  t.equal(m.fileNumberSpan, 1, 'one number, reused');
  t.notOk(m.has('new', 3));
  t.notOk(m.has('old', 4));
  t.same(all(m), refs(['new', 4]));
});

t.test('large indexes are kept exactly, beyond 2**32 and up to 2**53 - 1', async (t) => {
  const l = new CopyLru();
  const big = [0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 33 + 1, 3 * 2 ** 32, 2 ** 52 + 1, Number.MAX_SAFE_INTEGER, 1];
  for (const i of big) l.touch('f', i);
  l.touch('g', 2 ** 32); // another file, same index
  t.same(all(l).map((c) => c.index), [...big, 2 ** 32], 'in order, exact');
  t.equal(l.size, big.length + 1, '2**32 + 1 and 1 (same low 32 bits) are distinct');
  l.touch('f', 1);
  l.touch('f', 2 ** 32 + 1);
  t.same(all(l).slice(-2), refs(['f', 1], ['f', 2 ** 32 + 1]), 'each found again by its full value');
  t.ok(l.delete('f', 2 ** 32));
  t.ok(l.has('g', 2 ** 32));
  t.notOk(l.has('f', 2 ** 32));
  t.ok(l.has('f', 0) && l.has('f', Number.MAX_SAFE_INTEGER));
  t.notOk(l.has('f', Number.MAX_SAFE_INTEGER - 1));
});

t.test('a long random run matches a Map kept in recency order (grows, shrinks, reuses slots)', async (t) => {
  const rnd = seededRandom(20240611);
  const l = new CopyLru();
  const ref = new Map<string, CopyRef>();
  const k = (fileId: string, index: number): string => `${fileId}/${index}`;
  let mismatches = 0;
  for (let round = 0; round < 40; round++) {
    // Phases that fill up and then mostly empty, so the slot arrays grow and compact.
    const filling = round % 4 !== 3;
    for (let op = 0; op < 3000; op++) {
      const fileId = `f${Math.floor(rnd() * 50)}`;
      const index = rnd() < 0.1 ? 2 ** 32 + Math.floor(rnd() * 4) : Math.floor(rnd() * 200);
      const r = rnd();
      if (r < (filling ? 0.5 : 0.1)) {
        l.touch(fileId, index);
        ref.delete(k(fileId, index));
        ref.set(k(fileId, index), { fileId, index });
      } else if (r < (filling ? 0.6 : 0.15)) {
        l.add(fileId, index);
        if (!ref.has(k(fileId, index))) ref.set(k(fileId, index), { fileId, index });
      } else if (r < (filling ? 0.9 : 0.95)) {
        if (l.delete(fileId, index) !== ref.delete(k(fileId, index))) mismatches++;
      } else {
        // Evict the oldest few, as makeRoom does.
        for (let n = 0; n < 5; n++) {
          const o = l.oldest();
          const e = ref.values().next();
          if (e.done !== (o === undefined) || (o && !e.done && k(o.fileId, o.index) !== k(e.value.fileId, e.value.index))) mismatches++;
          if (!o) break;
          l.delete(o.fileId, o.index);
          ref.delete(k(o.fileId, o.index));
        }
      }
    }
    if (!filling) {
      // Down to a few: the slot arrays compact.
      while (ref.size > 10) {
        const o = l.oldest() as CopyRef;
        l.delete(o.fileId, o.index);
        ref.delete(k(o.fileId, o.index));
      }
    }
    if (l.size !== ref.size) mismatches++;
    if (JSON.stringify(all(l)) !== JSON.stringify([...ref.values()])) mismatches++;
  }
  t.equal(mismatches, 0, 'same answers and same order throughout');
  t.ok(l.fileNumberSpan <= 50, 'no more file numbers than files');
});
