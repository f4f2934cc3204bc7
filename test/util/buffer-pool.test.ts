import t from 'tap';
import { BufferPool } from '../../src/util/buffer-pool';

const KiB = 1024;

t.test('a large buffer given back is taken again; small and huge ones are not kept', async (t) => {
  const pool = new BufferPool(2);
  const a = pool.take(100 * KiB);
  t.equal(a.length, 100 * KiB, 'exactly the length asked for');
  pool.give(a);
  const b = pool.take(120 * KiB);
  t.equal(b.buffer, a.buffer, 'the same size class reuses the memory');
  t.equal(b.length, 120 * KiB);
  t.not(pool.take(120 * KiB).buffer, a.buffer, 'taken memory is not handed out twice');
  const small = pool.take(4 * KiB);
  pool.give(small);
  t.not(pool.take(4 * KiB).buffer, small.buffer, 'small buffers are left to the garbage collector');
  const huge = pool.take(8 * 1024 * KiB);
  pool.give(huge);
  t.not(pool.take(8 * 1024 * KiB).buffer, huge.buffer, 'and so are huge ones');
});

t.test('at most maxFreePerClass buffers are kept per size class; foreign buffers are ignored', async (t) => {
  const pool = new BufferPool(2);
  const taken = [pool.take(64 * KiB), pool.take(64 * KiB), pool.take(64 * KiB)];
  for (const b of taken) pool.give(b);
  const again = [pool.take(64 * KiB), pool.take(64 * KiB), pool.take(64 * KiB)].map((b) => b.buffer);
  t.equal(again.filter((m) => taken.some((b) => b.buffer === m)).length, 2, 'two came back from the pool, the third is new');
  const foreign = Buffer.alloc(128 * KiB + 1).subarray(1);
  pool.give(foreign);
  t.not(pool.take(128 * KiB).buffer, foreign.buffer, 'a view into someone else\'s memory is not pooled');
});
