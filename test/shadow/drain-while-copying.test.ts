/**
 * Draining a tier drops every copy on it, then removes it. A copy to that tier already running
 * when the drain starts publishes while it drains: it must be dropped too, so that no record names
 * the removed tier afterwards.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { TierChanges } from '../../src/shadow/tier-changes';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import { TierSet } from '../../src/tiers/tier-set';
import type { ExtentRef } from '../../src/tiers/tier';
import { silentLogger } from '../../src/util/log';
import { openFileOn } from '../helpers/open-file';
import { tempDir } from '../helpers/temp-dir';

const E = 64 * 1024;

t.test('a copy that publishes while its tier drains is dropped with the others', async (t) => {
  const dir = await tempDir(t);
  const map = await ExtentMap.open(path.join(dir, 'extents'));
  const tier = (name: string): DirectoryTier => new DirectoryTier({ name, class: 'ssd', path: path.join(dir, name), capacityBytes: 64 * 1024 * 1024, costPerGiBMonth: 0.1 });
  const keep = tier('keep');
  const going = tier('going');
  await keep.open();
  await going.open();
  const tiers = await TierSet.create([keep, going], map);
  t.teardown(async () => {
    await keep.close();
    await map.close();
  });
  const goingId = (tiers.byName('going') as { id: number }).id;
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 4, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  const changes = new TierChanges(map, tiers, shadows, () => 'keep');

  const files = ['a', 'b'].map((name) => {
    fs.writeFileSync(path.join(dir, name), Buffer.alloc(E, name.charCodeAt(0)));
    const file = openFileOn(path.join(dir, name));
    t.teardown(() => fs.closeSync(file.readFd));
    return file;
  });
  const copy = (i: number): Promise<boolean> => new Promise((resolve) => t.ok(shadows.requestCopy(files[i], 0, goingId, resolve), 'copy queued'));
  t.ok(await copy(0), 'a is on the tier');

  // b's copy is on its way when the drain begins: its put is held.
  let releasePut!: () => void;
  let putting = false;
  const put = going.put.bind(going);
  going.put = async (ref: ExtentRef, data: Buffer) => {
    putting = true;
    await new Promise<void>((r) => (releasePut = r));
    return put(ref, data);
  };
  const copyingB = copy(1);
  while (!putting) await new Promise((r) => setTimeout(r, 5));
  const draining = changes.remove('going');
  await new Promise((r) => setTimeout(r, 20));
  releasePut();
  t.ok(await copyingB, 'b\'s copy was published during the drain');
  const result = await draining;

  t.ok(result.done, 'the drain finished');
  t.equal(tiers.byName('going'), undefined, 'the tier is gone');
  const naming = files.filter((f) => map.get(f.fileId, 0)?.copies.some((c) => c.tierId === goingId));
  t.same(naming.map((f) => f.livePath), [], 'no record names the removed tier');
  t.equal(result.removedCopies, 2, 'both copies were dropped');
});
