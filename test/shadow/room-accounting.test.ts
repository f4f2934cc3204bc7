/**
 * Room on a directory tier while copies land: a copy's bytes are held as reserved by the shadow
 * manager until the tier's put() returns, so the tier must not count them as used before then.
 * They were counted twice while put() waited for its directory fsync, which takes seconds behind
 * heavy writeback: concurrent copies then found the tier full and evicted copies for room that was
 * there (a planned file lost an extent of nvme; two e2e tests timed out on it in full-suite runs).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import { TierSet } from '../../src/tiers/tier-set';
import { silentLogger } from '../../src/util/log';
import { openFileOn } from '../helpers/open-file';

const E = 64 * 1024;
const FILES = 4;

t.test('copies that exactly fill a tier all land, with no eviction, while directory fsyncs are slow', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-room-'));
  const map = await ExtentMap.open(path.join(dir, 'extents'));
  const tier = new DirectoryTier({ name: 'nvme', class: 'nvme', path: path.join(dir, 'nvme'), capacityBytes: FILES * E, costPerGiBMonth: 0.1 });
  await tier.open();
  // Directory fsyncs wait until the test lets them go (as behind gigabytes of writeback).
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let waiting = 0;
  (tier as unknown as { dirSyncs: { sync(dir: string): Promise<void> } }).dirSyncs = {
    sync: async () => {
      waiting++;
      await gate;
    },
  };
  const tiers = await TierSet.create([tier], map);
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: FILES, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  shadows.lastForegroundMs = () => 0;
  const files = Array.from({ length: FILES }, (_, i) => {
    const p = path.join(dir, `f${i}`);
    fs.writeFileSync(p, Buffer.alloc(E, i + 1));
    return openFileOn(p);
  });
  t.teardown(async () => {
    release();
    for (const f of files) fs.closeSync(f.readFd);
    await tier.close();
    await map.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const tierId = tiers.all()[0].id;

  // One copy first, published; then the other three run together into the remaining room.
  const first = new Promise<boolean>((resolve) => shadows.requestCopy(files[0], 0, tierId, resolve));
  while (waiting < 1) await new Promise((r) => setTimeout(r, 5));
  release();
  t.ok(await first, 'the first copy published');
  let releaseRest!: () => void;
  const rest = new Promise<void>((r) => (releaseRest = r));
  (tier as unknown as { dirSyncs: { sync(dir: string): Promise<void> } }).dirSyncs = {
    sync: async () => {
      waiting++;
      await rest;
    },
  };
  waiting = 0;
  const others = files.slice(1).map((f) => new Promise<boolean>((resolve) => shadows.requestCopy(f, 0, tierId, resolve)));
  // Every one of them has written and renamed its copy and waits for the directory fsync.
  const deadline = Date.now() + 10_000;
  while (waiting < FILES - 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.equal(waiting, FILES - 1, 'three copies wait for their directory fsync at once');
  t.ok(tier.usedBytes() <= E, `bytes not counted as used until put() returns (used ${tier.usedBytes()})`);
  releaseRest();
  t.same(await Promise.all(others), [true, true, true], 'all three published');
  t.equal(shadows.counters.evictions, 0, 'nothing evicted: the room was there');
  t.equal(tier.usedBytes(), FILES * E, 'the tier is exactly full');
  for (const f of files) t.ok(map.get(f.fileId, 0)?.copies.some((c) => c.tierId === tierId), `${path.basename(f.livePath)} has its copy`);
});
