import t from 'tap';
import { Slots } from '../../src/util/slots';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('at most `limit` calls run at once; the others start in the order they came, as slots free', async (t) => {
  const slots = new Slots(2);
  const started: number[] = [];
  const finish: (() => void)[] = [];
  const calls = [0, 1, 2, 3].map((i) => slots.run(async () => {
    started.push(i);
    await new Promise<void>((r) => (finish[i] = r));
    return i;
  }));
  await tick();
  t.same(started, [0, 1], 'two run');
  t.equal(slots.queued, 2, 'two wait');
  finish[1]();
  await tick();
  t.same(started, [0, 1, 2], 'the first waiter takes the freed slot');
  // A newcomer does not overtake those waiting.
  const late = slots.run(async () => {
    started.push(4);
    return 4;
  });
  finish[0]();
  await tick();
  t.same(started, [0, 1, 2, 3], 'then the next');
  finish[2]();
  finish[3]();
  t.same(await Promise.all([...calls, late]), [0, 1, 2, 3, 4]);
  t.equal(slots.inUse, 0, 'all slots free at the end');
});

t.test('a call that fails frees its slot', async (t) => {
  const slots = new Slots(1);
  await t.rejects(slots.run(async () => {
    throw new Error('boom');
  }), { message: 'boom' });
  t.equal(await slots.run(async () => 'next'), 'next');
  t.equal(slots.inUse, 0);
  t.throws(() => new Slots(0), RangeError, 'a limit below 1 is refused');
});
