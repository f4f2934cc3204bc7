/**
 * The shadow manager's concurrency under foreground load: while the application is busy, one
 * background copy at a time (a foreground request then waits behind at most one extent copy on
 * the device); once it is quiet, up to concurrentCopies.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import { TierSet } from '../../src/tiers/tier-set';
import { preadFull } from '../../src/util/fd-io';
import { silentLogger } from '../../src/util/log';
import type { OpenFile } from '../../src/volume/open-files';
import { openFileOn } from '../helpers/open-file';

const E = 64 * 1024;
const FILES = 6;

async function setup(t: Test, foregroundBusy: boolean) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-copies-'));
  const map = await ExtentMap.open(path.join(dir, 'extents'));
  const tier = new DirectoryTier({ name: 'nvme', class: 'nvme', path: path.join(dir, 'nvme'), capacityBytes: 64 * 1024 * 1024, costPerGiBMonth: 0.1 });
  await tier.open();
  const tiers = await TierSet.create([tier], map);
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 4, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  // Busy: a request "just now", every time it asks (it waits up to 250 ms per copy, then goes on).
  shadows.lastForegroundMs = () => (foregroundBusy ? Date.now() : 0);
  let inFlight = 0;
  let maxInFlight = 0;
  shadows.readLive = async (file, buf, length, position) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 40));
    inFlight--;
    return preadFull(file.readFd, buf, 0, length, position);
  };
  const files: OpenFile[] = [];
  for (let i = 0; i < FILES; i++) {
    const p = path.join(dir, `f${i}`);
    fs.writeFileSync(p, Buffer.alloc(E, i + 1));
    files.push(openFileOn(p));
  }
  t.teardown(async () => {
    for (const f of files) fs.closeSync(f.readFd);
    await tier.close();
    await map.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const tierId = tiers.all()[0].id;
  const copyAll = (): Promise<boolean[]> =>
    Promise.all(files.map((f) => new Promise<boolean>((resolve) => t.ok(shadows.requestCopy(f, 0, tierId, resolve), `${f.fileId} queued`))));
  return { copyAll, maxInFlight: () => maxInFlight };
}

t.test('quiet application: copies of different files run concurrently', async (t) => {
  const s = await setup(t, false);
  t.same(await s.copyAll(), Array(FILES).fill(true), 'every copy published');
  t.equal(s.maxInFlight(), 4, 'up to concurrentCopies at once');
});

t.test('busy application: one copy at a time', async (t) => {
  const s = await setup(t, true);
  t.same(await s.copyAll(), Array(FILES).fill(true), 'every copy published (they yield, then go on)');
  t.equal(s.maxInFlight(), 1, 'never more than one copy reading at once');
});
