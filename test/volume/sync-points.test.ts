/**
 * Periodic sync points: a sync runs once a marked file was left alone for an interval (a file
 * written all the time calls for none), and clears every mark it covers; a clean unmount syncs
 * whatever is left.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { boundedSync, SyncPoints } from '../../src/volume/power-loss';
import { silentLogger } from '../../src/util/log';

t.test('sync points clear settled files, not files still being written', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-syncpoints-'));
  const map = await ExtentMap.open(dir);
  t.teardown(async () => {
    await map.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let syncs = 0;
  // Ticks are driven by the test (no timer started).
  const points = new SyncPoints(map, () => true, silentLogger, async () => {
    syncs++;
  }, 60_000);

  map.markWritten('counted', false);
  await points.tick();
  await points.tick();
  t.equal(syncs, 0, 'a file only counted (no records, nothing to disagree) calls for no sync');

  await map.markWritten('busy');
  for (let i = 0; i < 3; i++) {
    await points.tick();
    map.markWritten('busy');
  }
  t.equal(syncs, 0, 'a file written between every two ticks calls for no sync');

  await map.markWritten('quiet');
  map.markWritten('busy');
  await points.tick();
  t.equal(syncs, 0, 'a file just written has not settled yet');
  map.markWritten('busy');
  await points.tick();
  t.equal(syncs, 1, 'left alone for an interval, it calls for a sync');
  t.same(map.markedFiles(), [], 'which clears every mark it covered (the busy file was not written during it)');

  // Files only counted call for a sync once there are too many of them (their memory stays bounded).
  for (let i = 0; i <= 10_000; i++) map.markWritten(`many-${i}`, false);
  await points.tick();
  await points.tick();
  t.equal(syncs, 2, 'ten thousand files only counted call for a sync');
  t.equal(map.writtenSnapshot().size, 0, 'which clears them');

  await map.markWritten('busy');
  await points.close();
  t.equal(syncs, 3);
  t.same(map.markedFiles(), [], 'a clean unmount clears the rest');
});

t.test('a sync(2) that does not return fails its sync point, and the next one until it returns', async (t) => {
  let calls = 0;
  let release: () => void = () => undefined;
  const sync = boundedSync(() => {
    calls++;
    return new Promise<void>((r) => (release = r));
  }, 50);
  await t.rejects(sync(), /not returned within/, 'a sync(2) that hangs counts as failed at its deadline');
  await t.rejects(sync(), /has not returned yet/, 'the next sync point fails at once while it still hangs');
  t.equal(calls, 1, 'no second sync(2) is stacked behind the stuck one');
  release();
  await new Promise((r) => setImmediate(r));
  const next = sync();
  release();
  await t.resolves(next, 'once it returned, sync points sync again');
  t.equal(calls, 2);
  await t.rejects(boundedSync(async () => Promise.reject(new Error('EIO')), 50)(), /EIO/, "a sync(2) that fails fails its sync point with its error");
});
