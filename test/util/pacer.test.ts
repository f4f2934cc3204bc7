import t from 'tap';
import { Pacer } from '../../src/util/pacer';

t.test('bookings queue up at the rate; an idle pause is not saved up as credit', async (t) => {
  let now = 1000;
  let rate = 1000; // bytes per second
  const p = new Pacer(() => rate, () => now);
  t.equal(p.book(500), 0, 'the first goes at once');
  t.equal(p.book(500), 500, 'the next waits for the first one\'s share of the second');
  t.equal(p.book(1000), 1000);
  now += 10_000;
  t.equal(p.book(1000), 0, 'after a long pause: at once');
  t.equal(p.book(1000), 1000, 'but the one after waits again');
  rate = 4000;
  t.equal(p.book(1000), 2000, 'queued behind the last booking; its own share at the new rate');
  t.equal(p.book(1000), 2250, 'a quarter second after it');
});
