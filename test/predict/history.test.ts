import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Level } from 'level';
import { WorkloadHistory } from '../../src/predict/history';
import { applyHint, applyPin } from '../../src/predict/hints';

const dir = (): string => mkdtempSync(path.join(tmpdir(), 'shadowfs-history-'));

t.test('series roll 1 s buckets up into minutes and hours; rings are bounded', async (t) => {
  const h = WorkloadHistory.inMemory({ retention: { seconds: 10, minutes: 5, hours: 2 } });
  for (let s = 0; s < 120; s++) h.recordRequest(s * 1e6, s % 2 === 0 ? 'R' : 'W', 4096, 100);
  t.equal(h.series.minutes.metric(0, 'iops', 60), 1, '60 requests in minute 0');
  t.equal(h.series.minutes.metric(1, 'bytesPerS', 60), 4096);
  t.equal(h.series.hours.get(0)?.readOps, 60);
  t.equal(h.series.hours.get(0)?.writeOps, 60);
  t.equal(h.series.seconds.get(50), undefined, 'second 50 fell out of a 10-slot ring');
  t.equal(h.series.seconds.get(119)?.writeOps, 1);
  t.equal(h.series.minutes.metric(1, 'latencyUs', 60), 100);
  t.ok(Number.isNaN(h.series.minutes.metric(3, 'latencyUs', 60)), 'no latency for an idle minute');
});

t.test('extent history: decaying counts, sessions and the period of a nightly read', async (t) => {
  const h = WorkloadHistory.inMemory();
  const ref = { fileId: 'db', index: 7 };
  const day = 86_400e6;
  for (let d = 0; d < 4; d++) {
    h.recordExtentAccess(ref, d * day + 2 * 3600e6, false);
    h.recordExtentAccess(ref, d * day + 2 * 3600e6 + 5e6, false);
  }
  const s = h.extents.get('db', 7);
  t.ok(s);
  if (!s) return;
  t.equal(s.accesses, 8);
  t.equal(s.periods[0].periodSamples, 3);
  t.ok(Math.abs(s.periods[0].periodUs - day) < 1e6, 'period = one day');
  t.ok(s.periods[0].periodJitterUs < 1e6, 'no jitter');
  t.equal(s.periods[0].sessionSizeEwma, 2, 'two reads per run');
  t.ok(s.c0 > 1.9 && s.c2 > 2, 'decayed counts');
});

t.test('bounded: the extent table drops its coldest tenth when full', async (t) => {
  const h = WorkloadHistory.inMemory({ maxExtents: 100 });
  for (let i = 0; i < 10; i++) for (let k = 0; k < 5; k++) h.recordExtentAccess({ fileId: 'f', index: i }, k * 1e6, false);
  for (let i = 10; i < 300; i++) h.recordExtentAccess({ fileId: 'f', index: i }, 10e6 + i * 1e3, false);
  t.ok(h.extents.size <= 100, `size ${h.extents.size}`);
  for (let i = 0; i < 10; i++) t.ok(h.extents.get('f', i), `hot extent ${i} kept`);
});

t.test('persists to LevelDB (a directory or a sublevel) and survives close/reopen', async (t) => {
  const location = dir();
  const h = await WorkloadHistory.open(location, { maxExtents: 1000 });
  for (let i = 0; i < 50; i++) {
    h.recordRequest(i * 1e6, 'R', 8192, 250);
    h.recordExtentAccess({ fileId: 'a/b', index: i % 10 }, i * 1e6, false);
  }
  applyHint(h, { kind: 'willneed', fileId: 'a/b', fromIndex: 0, toIndex: 3 }, 0);
  applyPin(h, { fileId: 'a/b', fromIndex: 9, toIndex: 9, tier: 'nvme' }, 0);
  await h.close();

  const again = await WorkloadHistory.open(location, { maxExtents: 1000 });
  t.equal(again.extents.size, 10);
  const s = again.extents.get('a/b', 3);
  t.equal(s?.accesses, 5);
  t.equal(s?.lastAccessUs, 43e6);
  t.equal(again.series.minutes.get(0)?.readOps, 50);
  t.equal(again.series.seconds.get(7)?.latencySumUs, 250);
  t.equal(again.hints.listHints().length, 1);
  t.equal(again.hints.effect('a/b', 9, 1).pinnedTier, 'nvme');
  t.equal(again.hints.listPins()[0].untilUs, Number.POSITIVE_INFINITY, 'an open-ended pin stays open-ended');
  await again.close();

  // A sublevel of someone else's database works the same way.
  const db = new Level<string, string>(dir());
  await db.open();
  const sub = db.sublevel<string, string>('predict', { valueEncoding: 'utf8' });
  const h2 = await WorkloadHistory.open(sub);
  h2.recordExtentAccess({ fileId: 'x', index: 1 }, 5e6, false);
  await h2.close();
  const h3 = await WorkloadHistory.open(db.sublevel<string, string>('predict', { valueEncoding: 'utf8' }));
  t.equal(h3.extents.get('x', 1)?.accesses, 1);
  await db.close();
});

t.test('evicted extents and expired buckets are deleted from the database', async (t) => {
  const location = dir();
  const h = await WorkloadHistory.open(location, { maxExtents: 20, retention: { seconds: 5, minutes: 5, hours: 5 } });
  for (let i = 0; i < 100; i++) h.recordExtentAccess({ fileId: 'f', index: i }, i * 1e6, false);
  for (let s = 0; s < 30; s++) h.recordRequest(s * 1e6, 'R', 1, undefined);
  await h.close();
  const db = new Level<string, string>(location);
  await db.open();
  let extents = 0;
  let seconds = 0;
  for await (const key of db.keys()) {
    if (key.startsWith('e!')) extents++;
    if (key.startsWith('s!s!')) seconds++;
  }
  await db.close();
  t.ok(extents <= 20, `${extents} extent keys`);
  t.ok(seconds <= 5, `${seconds} second buckets`);
});
