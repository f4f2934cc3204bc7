import t from 'tap';
import { ExtentState, ExtentTable } from '../../src/extents/extent-table';
import { CopyRecord } from '../../src/extents/record-codec';

const state = (generation: number, copies: CopyRecord[], more: Partial<ExtentState> = {}): ExtentState => ({ generation, copies, persistedFresh: false, dirty: false, writing: 0, ...more });
/** What a copy records, without the serial the table gives it (and unverified when not said). */
const plain = (c: CopyRecord): CopyRecord => ({ tierId: c.tierId, generation: c.generation, crc32: c.crc32, sizeBytes: c.sizeBytes, verified: c.verified === true });

t.test('a state comes back as it was stored, flags and copies alike', async (t) => {
  const table = new ExtentTable();
  const copies: CopyRecord[] = [
    { tierId: 3, generation: 7, crc32: 0xfedcba98, sizeBytes: 1 << 20, verified: true },
    { tierId: 0x7f, generation: 5, crc32: null, sizeBytes: 17, verified: false },
  ];
  table.set('f', 0, state(7, copies, { persistedFresh: true, dirty: true, writing: 2, written: true, zeros: true }));
  const got = table.get('f', 0);
  t.ok(got);
  t.same({ ...got, copies: got?.copies.map(plain) }, { generation: 7, copies: copies.map(plain), persistedFresh: true, dirty: true, writing: 2, written: true, zeros: true });
  t.equal(table.writing('f', 0), 2);
  table.set('f', 0, state(8, []));
  const cleared = table.get('f', 0);
  t.same(cleared, { generation: 8, copies: [], persistedFresh: false, dirty: false, writing: 0 }, 'flags and copies are cleared, not kept from before');
  t.equal(table.writing('f', 0), 0);
});

t.test('generations past 32 bits, lags past 32 bits and more copies than a row holds', async (t) => {
  const table = new ExtentTable();
  const big = 2 ** 40 + 12345;
  table.set('f', 1, state(big, [{ tierId: 1, generation: big - 1, crc32: 1, sizeBytes: 4096 }]));
  t.equal(table.get('f', 1)?.generation, big);
  t.equal(table.get('f', 1)?.copies[0].generation, big - 1);
  table.set('f', 2, state(big, [{ tierId: 1, generation: 3, crc32: 1, sizeBytes: 4096 }]));
  t.equal(table.get('f', 2)?.copies[0].generation, 3, 'a lag beyond 32 bits is kept exactly');
  const four: CopyRecord[] = [0, 1, 2, 3].map((tierId) => ({ tierId, generation: 9 - tierId, crc32: tierId * 1000, sizeBytes: 100 + tierId }));
  table.set('f', 3, state(9, four));
  t.same(table.get('f', 3)?.copies.map(plain), four.map(plain), 'four copies come back, in order');
  table.set('f', 3, state(10, [four[0]]));
  t.same(table.get('f', 3)?.copies.map(plain), [plain(four[0])], 'back to one copy: the row holds it again');
});

t.test('sparse and growing files', async (t) => {
  const table = new ExtentTable();
  const indexes = [0, 1, 255, 256, 1000, 70000, 2 ** 32 + 5];
  for (const i of indexes) table.set('f', i, state(i, [{ tierId: 0, generation: i, crc32: i % 2 ** 32, sizeBytes: 1 }]));
  t.equal(table.count('f'), indexes.length);
  t.same([...table.indexes('f')].sort((a, b) => a - b), indexes);
  for (const i of indexes) t.equal(table.get('f', i)?.copies[0].crc32, i % 2 ** 32, `extent ${i}`);
  for (const i of [2, 254, 257, 999, 69999]) t.equal(table.get('f', i), undefined, `no extent ${i}`);
  t.notOk(table.has('f', 2));
  t.ok(table.has('f', 1000));
  t.equal(table.get('other', 0), undefined);
  table.dropFile('f');
  t.equal(table.count('f'), 0);
  t.same([...table.indexes('f')], []);
});

t.test('only dirty rows are listed as dirty', async (t) => {
  const table = new ExtentTable();
  for (let i = 0; i < 10; i++) table.set('f', i, state(1, [], { dirty: i % 3 === 0 }));
  t.same([...table.indexes('f', true)].sort((a, b) => a - b), [0, 3, 6, 9]);
});

t.test('each stored copy has a serial of its own, kept while it is the same copy', async (t) => {
  const table = new ExtentTable();
  table.set('f', 0, state(1, [{ tierId: 0, generation: 1, crc32: 1, sizeBytes: 1 }]));
  const first = table.get('f', 0)?.copies[0].serial;
  t.type(first, 'number');
  // Changed and stored again (as the map does when it patches a copy): the same copy.
  const st = table.get('f', 0) as ExtentState;
  st.copies[0].crc32 = null;
  table.set('f', 0, st);
  t.equal(table.get('f', 0)?.copies[0].serial, first);
  // Made again on the same tier: another copy.
  table.set('f', 0, state(1, [{ tierId: 0, generation: 1, crc32: 1, sizeBytes: 1 }]));
  t.not(table.get('f', 0)?.copies[0].serial, first);
});

t.test('a state taken out is a snapshot: changing it changes nothing stored', async (t) => {
  const table = new ExtentTable();
  table.set('f', 0, state(1, [{ tierId: 0, generation: 1, crc32: 1, sizeBytes: 1 }]));
  const st = table.get('f', 0) as ExtentState;
  st.generation = 5;
  st.copies[0].crc32 = 99;
  t.equal(table.get('f', 0)?.generation, 1);
  t.equal(table.get('f', 0)?.copies[0].crc32, 1);
});

t.test('second copies stay right while their page grows and their neighbours change', async (t) => {
  const table = new ExtentTable();
  const two = (i: number): CopyRecord[] => [
    { tierId: 1, generation: i, crc32: i, sizeBytes: 4096 },
    { tierId: 2, generation: i, crc32: i + 1, sizeBytes: 4095 },
  ];
  table.set('f', 0, state(0, two(0)));
  table.set('f', 1, state(1, [two(1)[0]]));
  table.set('f', 200, state(200, two(200)));
  table.set('f', 300, state(300, two(300)));
  for (const i of [0, 200, 300]) t.same(table.get('f', i)?.copies.map(plain), two(i).map(plain), `extent ${i}: both copies`);
  t.same(table.get('f', 1)?.copies.map(plain), [plain(two(1)[0])], 'extent 1: one copy');
  table.set('f', 0, state(0, [two(0)[1]]));
  t.same(table.get('f', 0)?.copies.map(plain), [plain(two(0)[1])], 'down to one copy');
  table.set('f', 1, state(1, two(1)));
  t.same(table.get('f', 1)?.copies.map(plain), two(1).map(plain), 'up to two');
  t.same(table.get('f', 200)?.copies.map(plain), two(200).map(plain), 'the others are untouched');
});
