/**
 * A background copy of bytes written through the mount since the file's last sync point makes them
 * durable on the live volume first: a durable copy named fresh must not outlive a power loss that
 * takes those bytes from the live file. Files not written since stay as they were (no sync).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { silentLogger } from '../../src/util/log';
import { liveFileFixture } from '../helpers/tier-fixture';
import type { OpenFile } from '../../src/volume/open-files';

const E = 64 * 1024;

t.test('a copy of a file written since its last sync point syncs the live file before it is published', async (t) => {
  const fx = await liveFileFixture(t, randomBytes(3 * E));
  const shadows = new ShadowManager(fx.map, fx.tiers, E, { maxQueuedCopies: 8, concurrentCopies: 1, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  t.teardown(() => shadows.close());
  const synced: string[] = [];
  shadows.syncLive = async (file: OpenFile) => {
    synced.push(file.fileId);
  };
  const copy = (index: number): Promise<boolean> => new Promise((resolve) => t.ok(shadows.requestCopy(fx.file, index, fx.tierId, resolve)));

  t.ok(await copy(0), 'published');
  t.same(synced, [], 'a file not written since its last sync point: no sync');

  fx.map.markWritten(fx.file.fileId, false);
  t.ok(await copy(1), 'published');
  t.same(synced, [fx.file.fileId], 'written since: the live file was synced first');

  shadows.syncLive = async () => {
    throw new Error('EIO: simulated');
  };
  t.notOk(await copy(2), 'a live file that cannot be synced gives no copy');
  t.notOk(fx.map.hasCopyOn(fx.file.fileId, 2, fx.tierId), 'none is named');
});
