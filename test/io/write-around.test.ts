/** SequentialWrites: which writes stream (src/io/write-around.ts). */
import t from 'tap';
import { SequentialWrites } from '../../src/io/write-around';

const MiB = 1024 * 1024;

t.test('a handle streams once its sequential run reaches the cutoff, and stops at a jump', async (t) => {
  const s = new SequentialWrites(4 * MiB, 65 * MiB);
  const got = [0, 1, 2, 3, 4].map((i) => s.observe(1, i * MiB, MiB));
  t.same(got, [false, false, false, true, true], 'the fourth MiB reaches 4 MiB');
  t.notOk(s.observe(1, 100 * MiB, MiB), 'a jump past the unseen gap starts a new run');
  t.notOk(s.observe(1, 101 * MiB - 4096, 4096), 'backwards is not a continuation either');
});

t.test('a streaming run survives the gap native writes leave unseen, a new run does not', async (t) => {
  const s = new SequentialWrites(4 * MiB, 65 * MiB);
  for (let i = 0; i < 4; i++) s.observe(1, i * MiB, MiB);
  t.ok(s.observe(1, 64 * MiB, MiB), '60 MiB later: those went natively');
  t.ok(s.observe(1, 129 * MiB, MiB), 'and again');
  const fresh = new SequentialWrites(4 * MiB, 65 * MiB);
  fresh.observe(2, 0, MiB);
  t.notOk(fresh.observe(2, 10 * MiB, MiB), 'a run that has not streamed yet must be contiguous');
});

t.test('handles are separate streams; forget starts over; 0 never streams', async (t) => {
  const s = new SequentialWrites(2 * MiB, 65 * MiB);
  s.observe(1, 0, MiB);
  s.observe(2, 0, MiB);
  t.ok(s.observe(1, MiB, MiB), 'handle 1 reached 2 MiB');
  s.forget(2);
  t.notOk(s.observe(2, MiB, MiB), 'handle 2 was forgotten: 1 MiB so far');
  t.ok(new SequentialWrites(2 * MiB, 0).observe(3, 0, 2 * MiB), 'one write as large as the cutoff streams');
  const off = new SequentialWrites(0, 65 * MiB);
  t.notOk([0, 1, 2, 3, 4, 5].some((i) => off.observe(1, i * MiB, MiB)), 'cutoff 0: never');
});
