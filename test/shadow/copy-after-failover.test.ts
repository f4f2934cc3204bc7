/**
 * A background copy reads the live file under its write lock, then (after making room on the
 * tier, which can wait on evictions) puts the bytes on the tier. If the volume fails over in
 * between, a write through the shadows may put the extent's new bytes on that same tier and mark
 * them fresh; the copy's put of the old bytes, landing after them, would replace them under that
 * fresh record. The copy must give up instead.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isFresh } from '../../src/extents/extent-map';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { silentLogger } from '../../src/util/log';
import type { ExtentRef } from '../../src/tiers/tier';
import { openFileOn } from '../helpers/open-file';
import { directoryTierFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('a copy whose put would land after a failover write to the same tier is dropped', async (t) => {
  const { dir, map, tier, tiers, tierId } = await directoryTierFixture(t);
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 4, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  const open = (name: string, fill: number, extents = 1) => {
    fs.writeFileSync(path.join(dir, name), Buffer.alloc(extents * E, fill));
    const file = openFileOn(path.join(dir, name));
    t.teardown(() => fs.closeSync(file.readFd));
    return file;
  };
  const other = open('g', 1, 2);
  const file = open('f', 2);
  const copy = (f: typeof file, index = 0): Promise<boolean> => new Promise((resolve) => t.ok(shadows.requestCopy(f, index, tierId, resolve), 'copy queued'));

  t.ok(await copy(other, 0), 'copies of another file fill the tier');
  t.ok(await copy(other, 1));
  tier.spec.capacityBytes = 2 * E + E / 2;

  // Making room for the next copy evicts those; the first removal is held.
  let releaseRemove!: () => void;
  let removing = false;
  const remove = tier.remove.bind(tier);
  tier.remove = async (ref: ExtentRef) => {
    if (!removing) {
      removing = true;
      await new Promise<void>((r) => (releaseRemove = r));
    }
    return remove(ref);
  };
  const copying = copy(file);
  const deadline = Date.now() + 5000;
  while (!removing && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.ok(removing, 'the copy has read the live file and is making room');

  // Meanwhile the volume fails over and a write puts the extent's new bytes on the tier.
  shadows.liveSourcePaused = true;
  const ref = { fileId: file.fileId, index: 0 };
  const written = Buffer.alloc(E, 3);
  await tier.put(ref, written);
  await map.commitShadowWrite(file.fileId, 0, [tierId], E);
  releaseRemove();

  t.notOk(await copying, 'the copy is not published');
  await shadows.idle();
  await new Promise((r) => setTimeout(r, 50)); // anything queued on the key has run by now
  const rec = map.get(file.fileId, 0);
  t.ok(rec && rec.copies.some((c) => c.tierId === tierId && isFresh(rec, c)), 'the write\'s copy is fresh on the tier');
  const got = Buffer.alloc(E);
  t.equal(await tier.read(ref, 0, E, got, 0), E, 'its bytes read back whole');
  t.ok(got.equals(written), 'and are the write\'s');
});
