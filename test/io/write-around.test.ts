/** SequentialWrites: which writes stream (src/io/write-around.ts). */
import t from 'tap';
import { SequentialWrites } from '../../src/io/write-around';

const MiB = 1024 * 1024;
const KiB = 1024;

t.test('a handle streams once its sequential run reaches the cutoff, and stops at a jump', async (t) => {
  const s = new SequentialWrites(4 * MiB);
  const got = [0, 1, 2, 3, 4].map((i) => s.observe(1, i * MiB, MiB));
  t.same(got, [false, false, false, true, true], 'the fourth MiB reaches 4 MiB');
  t.notOk(s.observe(1, 100 * MiB, MiB), 'a jump ahead with no native write in between starts a new run');
  t.notOk(s.observe(1, 101 * MiB - 4096, 4096, () => 5), 'backwards is not a continuation, native writes or not');
});

t.test('a run continues past what the handle wrote natively meanwhile, not past more', async (t) => {
  const s = new SequentialWrites(4 * MiB);
  t.notOk(s.observe(1, 0, MiB, () => 0), 'one MiB through JS');
  t.ok(s.observe(1, 10 * MiB, MiB, () => 9), 'then nine native writes and the next MiB: 11 MiB in sequence');
  t.ok(s.observe(1, 20 * MiB, MiB, () => 18), 'and on');
  t.notOk(s.observe(1, 40 * MiB, MiB, () => 19), 'a gap of 19 MiB after one native write is a jump');
  // A random writer: its JS writes land far apart whatever it wrote natively between them.
  const r = new SequentialWrites(64 * KiB);
  const positions = [7, 123_456, 55, 9_999, 400_000, 3, 250_000, 80_000].map((p) => p * 4 * KiB);
  t.notOk(positions.some((p, i) => r.observe(2, p, 4 * KiB, () => i * 20)), 'a random writer never streams');
});

t.test('handles are separate streams; forget starts over; 0 never streams', async (t) => {
  const s = new SequentialWrites(2 * MiB);
  s.observe(1, 0, MiB);
  s.observe(2, 0, MiB);
  t.ok(s.observe(1, MiB, MiB), 'handle 1 reached 2 MiB');
  s.forget(2);
  t.notOk(s.observe(2, MiB, MiB), 'handle 2 was forgotten: 1 MiB so far');
  t.ok(new SequentialWrites(2 * MiB).observe(3, 0, 2 * MiB), 'one write as large as the cutoff streams');
  const off = new SequentialWrites(0);
  let asked = 0;
  t.notOk([0, 1, 2, 3, 4, 5].some((i) => off.observe(1, i * MiB, MiB, () => asked++)), 'cutoff 0: never');
  t.equal(asked, 0, 'and the native write count is not asked for');
});
