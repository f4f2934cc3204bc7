/**
 * Write-through where there is nothing to patch: on a volume with a coverage tier, a write to an
 * extent without a fresh copy makes a whole new one before it is acknowledged (ARCHITECTURE rule
 * 2), from the write's bytes, the live file's bytes around them, and zeros past the old end. And a
 * background copy of the same extent running meanwhile, whose publication is refused, must not
 * remove the write's copy (both are puts of the same key on the tier).
 */
import t from 'tap';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { IoRedirector } from '../../src/io/redirector';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { isFresh } from '../../src/extents/extent-map';
import { silentLogger } from '../../src/util/log';
import type { ExtentRef } from '../../src/tiers/tier';
import { liveFileFixture, LiveFileFixture } from '../helpers/tier-fixture';
import type { HasTeardown } from '../helpers/temp-dir';

const E = 64 * 1024;

async function rig(t: HasTeardown, bytes: Buffer): Promise<LiveFileFixture & { io: IoRedirector; shadows: ShadowManager; writeFd: number }> {
  const fx = await liveFileFixture(t, bytes);
  const shadows = new ShadowManager(fx.map, fx.tiers, E, { maxQueuedCopies: 64, concurrentCopies: 4, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  const io = new IoRedirector(fx.map, fx.tiers, E, { onExtentRead: () => undefined }, (fileId, index, tierId) => shadows.discard(fileId, index, tierId));
  io.newCopyHomes = () => [fx.tierId];
  io.storeNewCopy = (file, index, tierId, data, generation, liveWritten) => shadows.storeWrittenCopy(file, index, tierId, data, generation, liveWritten);
  const writeFd = fs.openSync(fx.p, 'r+');
  t.teardown(() => fs.closeSync(writeFd));
  return { ...fx, io, shadows, writeFd };
}

/** The extent's copy on the tier, if the map names it fresh there; its bytes. */
async function freshCopy(fx: LiveFileFixture, index: number): Promise<Buffer | undefined> {
  const rec = fx.map.get(fx.file.fileId, index);
  const copy = rec?.copies.find((c) => c.tierId === fx.tierId && isFresh(rec, c));
  if (!copy) return undefined;
  const got = Buffer.alloc(copy.sizeBytes);
  const n = await fx.tier.read({ fileId: fx.file.fileId, index }, 0, copy.sizeBytes, got, 0);
  return got.subarray(0, n);
}

t.test('a write to extents without a copy makes whole copies of them before it returns', async (t) => {
  const live = randomBytes(3 * E);
  const fx = await rig(t, live);
  const { io, file, writeFd } = fx;
  const write = (data: Buffer, at: number): Promise<number> => file.writeLock.run(() => io.write(file, writeFd, data, data.length, at));

  // Into the middle of extent 1: the copy is the live extent with the write in it.
  const mid = randomBytes(5000);
  t.equal(await write(mid, E + 777), mid.length);
  mid.copy(live, E + 777);
  t.same(await freshCopy(fx, 1), live.subarray(E, 2 * E), 'extent 1: the live bytes around the write, and the write');
  t.equal(await freshCopy(fx, 0), undefined, 'an extent not written gets no copy');

  // Past the end (3 extents): the file grows, extent 3 is a hole and then the head of the write.
  const at = 4 * E - 100;
  const past = randomBytes(E + 400);
  t.equal(await write(past, at), past.length);
  const now = Buffer.alloc(at + past.length);
  live.copy(now);
  past.copy(now, at);
  t.ok(fs.readFileSync(fx.p).equals(now), 'the live file holds the write');
  t.equal(await freshCopy(fx, 2), undefined, 'the old last extent, only grown past, gets no copy');
  t.same(await freshCopy(fx, 3), now.subarray(3 * E, 4 * E), 'extent 3: zeros, then the head of the write');
  t.same(await freshCopy(fx, 4), now.subarray(4 * E, 5 * E), 'extent 4: whole inside the write');
  t.same(await freshCopy(fx, 5), now.subarray(5 * E), 'extent 5: the tail, as long as the file now is');
  t.equal(fx.shadows.counters.writtenCopies, 4, 'four copies made by writes');
  t.equal(io.counters.liveOnlyWrites, 0, 'none left on the live volume alone');

  // With a copy to patch, a write patches it and makes none.
  const again = randomBytes(100);
  await write(again, E + 10);
  again.copy(now, E + 10);
  t.same(await freshCopy(fx, 1), now.subarray(E, 2 * E), 'a later write patches the copy');
  t.equal(fx.shadows.counters.writtenCopies, 4, 'and makes no new one');
});

t.test('a tier that cannot take the copy: the write succeeds, counted as on the live volume only', async (t) => {
  const live = randomBytes(E);
  const fx = await rig(t, live);
  fx.tier.spec.capacityBytes = E / 2;
  const data = randomBytes(E);
  t.equal(await fx.file.writeLock.run(() => fx.io.write(fx.file, fx.writeFd, data, E, 0)), E);
  t.ok(fs.readFileSync(fx.p).equals(data), 'on the live file');
  t.equal(await freshCopy(fx, 0), undefined, 'no copy');
  t.equal(fx.io.counters.liveOnlyWrites, 1, 'counted');
});

t.test('a background copy of the extent, refused because the write came, leaves the write\'s copy alone', async (t) => {
  const live = Buffer.alloc(E, 1);
  const fx = await rig(t, live);
  const { io, file, writeFd, tier, shadows, tierId } = fx;
  // The background copy read the old bytes before the write; its put lands them, then is held
  // before it returns, so the write's put and publication come while it is still running.
  let releasePut!: () => void;
  let putHeld = false;
  const put = tier.put.bind(tier);
  tier.put = async (ref: ExtentRef, data: Buffer) => {
    if (putHeld) return put(ref, data);
    putHeld = true;
    await put(ref, data);
    await new Promise<void>((r) => (releasePut = r));
  };
  const copying = new Promise<boolean>((resolve) => t.ok(shadows.requestCopy(file, 0, tierId, resolve), 'copy queued'));
  const deadline = Date.now() + 5000;
  while (!putHeld && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.ok(putHeld, 'the background copy read the old bytes and is putting them');

  const data = Buffer.alloc(4096, 2);
  t.equal(await file.writeLock.run(() => io.write(file, writeFd, data, data.length, 0)), data.length, 'the write is acknowledged');
  t.equal(shadows.counters.writtenCopies, 1, 'with its own copy');
  releasePut();
  t.notOk(await copying, 'the background copy is not published');
  await shadows.idle();
  await new Promise((r) => setTimeout(r, 50)); // a removal queued on the key has run by now
  data.copy(live, 0);
  t.same(await freshCopy(fx, 0), live, 'the write\'s copy is fresh on the tier, with the written bytes');
});

t.test('a write\'s copy that the coverage tier does not hold yet is never evicted; admitted copies are', async (t) => {
  const live = randomBytes(4 * E);
  const fx = await rig(t, live);
  const { io, file, writeFd, shadows, tierId, map } = fx;
  // Coverage lives elsewhere (an object tier, say) and has copied nothing: the write's copy goes here.
  const coverage = await map.tierId('coverage');
  shadows.protectedTiers.add(coverage);
  fx.tier.spec.capacityBytes = 2 * E;
  const write = (index: number): Promise<number> => {
    const data = randomBytes(E);
    data.copy(live, index * E);
    return file.writeLock.run(() => io.write(file, writeFd, data, E, index * E));
  };
  await write(0);
  await write(1);
  t.equal(shadows.counters.writtenCopies, 2, 'two written copies fill the tier');
  await write(2);
  t.equal(io.counters.liveOnlyWrites, 1, 'the third finds no room: counted as on the live volume only');
  t.same(await freshCopy(fx, 0), live.subarray(0, E), 'the first write\'s copy was not evicted for it');
  t.same(await freshCopy(fx, 1), live.subarray(E, 2 * E), 'nor the second\'s');
  t.notOk(await shadows.evict(file.fileId, 0, tierId), 'nor may a planner or an operator drop it');

  // Once coverage holds extent 0, its copy here is one of two and may go.
  const rec = map.get(file.fileId, 0);
  t.ok(rec && (await map.addCopy(file.fileId, 0, { tierId: coverage, generation: rec.generation, crc32: 0, sizeBytes: E }, rec.generation)));
  t.ok(await shadows.evict(file.fileId, 0, tierId), 'covered: evictable');

  // A copy admitted from the live volume holds nothing only it has: room is made from it.
  t.ok(await new Promise<boolean>((resolve) => shadows.requestCopy(file, 3, tierId, resolve)), 'extent 3 admitted');
  // Failed over, though, any sole copy is the only home of its bytes.
  shadows.liveSourcePaused = true;
  t.notOk(await shadows.evict(file.fileId, 3, tierId), 'failed over: not even a sole copy of unwritten bytes goes');
  shadows.liveSourcePaused = false;
  await write(2);
  t.equal(shadows.counters.writtenCopies, 3, 'the next write to extent 2 gets its copy');
  t.equal(await freshCopy(fx, 3), undefined, 'by evicting the admitted copy');
  t.same(await freshCopy(fx, 2), live.subarray(2 * E, 3 * E));
});
