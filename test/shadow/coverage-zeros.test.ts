/**
 * Extents the mount made all zeros (a truncate or fallocate that grew a file, a punched hole) are
 * known without a copy: coverage counts them as covered and copies nothing for them, until a
 * write gives them bytes again.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CoverageReplicator } from '../../src/shadow/coverage';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { silentLogger } from '../../src/util/log';
import { directoryTierFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('zero extents count as covered until written', async (t) => {
  const { dir, map, tiers, tierId } = await directoryTierFixture(t);
  const live = path.join(dir, 'live');
  fs.mkdirSync(live);
  const p = path.join(live, 'grown.bin');
  fs.writeFileSync(p, Buffer.alloc(100, 1));
  fs.truncateSync(p, 4 * E);
  const fileId = fs.statSync(p).ino.toString(16);
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 1, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  // No copies are made in this test: the pinner finds nothing.
  const coverage = new CoverageReplicator(live, 'nvme', tierId, map, shadows, { pinFile: async () => undefined, unpinFile: () => undefined }, E, 3_600_000, silentLogger);
  t.teardown(() => coverage.stop());

  await map.markZeros(fileId, [1, 2, 3]);
  await coverage.scan();
  t.equal(coverage.report(Date.now()).pendingBytes, E, 'only extent 0 (written bytes) waits for a copy');

  await map.beginWrite(fileId, 2, 2, () => false);
  map.endWrite(fileId, 2, 2);
  await coverage.scan();
  t.equal(coverage.report(Date.now()).pendingBytes, 2 * E, 'a write into a zero extent makes it wait too');
});
