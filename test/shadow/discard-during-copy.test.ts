/**
 * A stale copy's bytes removed while a new copy of the same extent to the same tier is being
 * written: the removal must not take the new copy's bytes with it. (The volume's out-of-band
 * invalidation forgets stale copies only after its batch is written, by which time a coverage copy
 * of the new generation may be in flight; a tier runs a key's operations in order, so a removal
 * queued behind that put would delete what the put just wrote, and the copy would then be
 * published with no bytes behind it: coverage would count a copy that failover cannot read.)
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isFresh } from '../../src/extents/extent-map';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { silentLogger } from '../../src/util/log';
import { openFileOn } from '../helpers/open-file';
import { directoryTierFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

/** A map, one directory tier, a shadow manager and a file of one extent (bytes 1) on it. */
async function setup(t: Test) {
  const { dir, map, tier, tiers, tierId } = await directoryTierFixture(t);
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 4, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  const p = path.join(dir, 'f');
  fs.writeFileSync(p, Buffer.alloc(E, 1));
  const file = openFileOn(p);
  t.teardown(() => fs.closeSync(file.readFd));
  return { map, tier, shadows, file, p, tierId };
}

t.test('a stale copy discarded while its re-copy is being put: the new copy keeps its bytes', async (t) => {
  const { map, tier, shadows, file, p, tierId } = await setup(t);
  const ref = { fileId: file.fileId, index: 0 };
  const copy = (): Promise<boolean> => new Promise((resolve) => t.ok(shadows.requestCopy(file, 0, tierId, resolve), 'copy queued'));

  t.ok(await copy(), 'first copy published');
  // The file changes: the copy goes stale, its record is still there (not yet forgotten).
  fs.writeFileSync(p, Buffer.alloc(E, 2));
  await map.beginWrite(file.fileId, 0, 0, () => false);
  map.endWrite(file.fileId, 0, 0);

  // The stale copy is forgotten and its bytes discarded just after the re-copy's put has begun.
  const put = tier.put.bind(tier);
  let discarded = false;
  tier.put = (r, data) => {
    const putting = put(r, data);
    if (!discarded && map.removeCopy(file.fileId, 0, tierId)) {
      discarded = true;
      shadows.discard(file.fileId, 0, tierId);
    }
    return putting;
  };
  t.ok(await copy(), 're-copy published');
  t.ok(discarded, 'the stale copy was discarded while the put ran');
  await shadows.idle();
  await new Promise((r) => setTimeout(r, 50)); // a removal queued behind the put has run by now

  const rec = map.get(file.fileId, 0);
  t.ok(rec && rec.copies.some((c) => c.tierId === tierId && isFresh(rec, c)), 'the map names a fresh copy on the tier');
  t.ok(tier.has(ref), 'and the tier still holds its bytes');
  const got = Buffer.alloc(E);
  const n = await tier.read(ref, 0, E, got, 0).catch(() => -1);
  t.equal(n, E, 'they read back whole');
  t.ok(got.equals(Buffer.alloc(E, 2)), 'and are the new bytes');
});

t.test('a copy refused at publication (the extent was written meanwhile) still has its bytes removed', async (t) => {
  const { map, tier, shadows, file, tierId } = await setup(t);
  const put = tier.put.bind(tier);
  tier.put = async (r, data) => {
    await put(r, data);
    // A write lands between the put and the publication: the copy is refused.
    await map.beginWrite(file.fileId, 0, 0, () => false);
    map.endWrite(file.fileId, 0, 0);
  };
  const published = await new Promise<boolean>((resolve) => t.ok(shadows.requestCopy(file, 0, tierId, resolve), 'copy queued'));
  t.notOk(published, 'the copy is refused');
  await shadows.idle();
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(tier.has({ fileId: file.fileId, index: 0 }), 'and its bytes are removed from the tier');
});
