/**
 * Scrub reads a copy, then judges it. A write that began before the read and patches the copy in
 * place while it runs keeps the generation scrub saw: scrub must not then record a checksum of
 * the bytes from before the patch (a later check would find the good copy "corrupt" and drop it).
 */
import t from 'tap';
import { crc32 } from 'node:zlib';
import { Scrubber } from '../../src/shadow/scrubber';
import type { ExtentRef } from '../../src/tiers/tier';
import { directoryTierFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('scrub records no checksum for a copy a write patched while it was read', async (t) => {
  const { map, tier, tiers, tierId } = await directoryTierFixture(t);
  const ref = { fileId: 'f1', index: 0 };
  const before = Buffer.alloc(E, 1);
  await tier.put(ref, before);
  t.ok(await map.addCopy('f1', 0, { tierId, generation: 0, crc32: crc32(before), sizeBytes: E }, 0), 'copy recorded');

  // A write begins (the kept copy moves to its generation) before scrub reads the copy.
  const [kept] = await map.beginWrite('f1', 0, 0, () => true);
  let release!: () => void;
  let reached = false;
  const realRead = tier.read.bind(tier);
  tier.read = async (r: ExtentRef, offset: number, length: number, into: Buffer, at: number) => {
    const n = await realRead(r, offset, length, into, at);
    reached = true;
    await new Promise<void>((go) => (release = go));
    return n;
  };
  const dropped: number[] = [];
  const scrubber = new Scrubber(map, tiers, (_f, _i, id) => dropped.push(id), () => undefined);
  const scrubbing = scrubber.run();
  while (!reached) await new Promise((r) => setImmediate(r));
  tier.read = realRead;
  // Scrub has the old bytes; the write patches the copy and ends.
  const after = Buffer.alloc(E, 2);
  await tier.patch(ref, 0, after, false);
  map.patched('f1', 0, kept[0], E);
  map.endWrite('f1', 0, 0);
  release();
  const first = await scrubbing;

  const copy = map.get('f1', 0)?.copies[0];
  t.ok(copy && (copy.crc32 === null || copy.crc32 === crc32(after)), 'no checksum of the old bytes was recorded');
  t.equal(first.badCopies, 0, 'nothing counted bad');
  const second = await scrubber.run();
  t.equal(second.badCopies, 0, 'a second scrub finds the copy good');
  t.same(dropped, [], 'and nothing was dropped');
  t.equal(map.get('f1', 0)?.copies[0]?.crc32, crc32(after), 'it now carries the checksum of its bytes');
});
