/**
 * Coverage counts pending bytes from each file's size. A scan learns sizes from the live tree, the
 * mount's writes keep them current; a write made while a scan runs (to a file made after its
 * directory was read, or grown after its lstat) must keep its size when the scan ends, or its
 * uncovered extents count for nothing and coverage reads 100% while they wait.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CoverageReplicator } from '../../src/shadow/coverage';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { silentLogger } from '../../src/util/log';
import { Mutex } from '../../src/util/mutex';
import type { OpenFile } from '../../src/volume/open-files';
import { directoryTierFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('a file written during a scan keeps its pending bytes after the scan', async (t) => {
  const { dir, map, tiers, tierId } = await directoryTierFixture(t);
  const live = path.join(dir, 'live');
  fs.mkdirSync(live);
  fs.writeFileSync(path.join(live, 'old.bin'), Buffer.alloc(2 * E, 1));
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 1, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  // No copies are made in this test: the pinner finds nothing.
  const coverage = new CoverageReplicator(live, 'nvme', tierId, map, shadows, { pinFile: async () => undefined, unpinFile: () => undefined }, E, 3_600_000, silentLogger);

  await coverage.scan();
  t.equal(coverage.report(Date.now()).pendingBytes, 2 * E, 'the first scan finds old.bin uncovered');

  // A scan begins; a file the walk will not see (made after its directory was read) is written.
  const scanning = coverage.scan();
  const made: OpenFile = {
    fileId: 'feed', livePath: path.join(live, 'sub', 'new.bin'), sizeBytes: 3 * E, writeLock: new Mutex(), readFd: -1,
    handles: 1, modified: true, nativeWritable: false, unlinked: false, fhs: new Set(),
  };
  coverage.noteWrite(made, 0, 2);
  await scanning;

  const report = coverage.report(Date.now());
  t.equal(report.pendingBytes, 5 * E, 'its three extents still count as pending, beside old.bin\'s two');
  t.equal(report.totalBytes, 5 * E, 'and its size in the total');

  // The next scan, with no write during it, goes by the live tree again.
  await coverage.scan();
  t.equal(coverage.report(Date.now()).totalBytes, 2 * E, 'a later scan forgets the file it cannot find');
  await coverage.stop();
});
