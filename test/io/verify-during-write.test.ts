/**
 * The first read of a copy after a mount checks it whole against its checksum. A write patching
 * that copy at the same moment makes bytes and checksum disagree with nothing damaged: the read
 * must not call the copy corrupt and drop it; the next source serves it.
 */
import t from 'tap';
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { IoRedirector } from '../../src/io/redirector';
import type { ExtentRef } from '../../src/tiers/tier';
import { liveFileFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('a copy patched while its first read verifies it is not dropped as corrupt', async (t) => {
  const before = Buffer.alloc(E, 1);
  const { map, tier, tiers, tierId, p, file, live } = await liveFileFixture(t, before);
  const ref = { fileId: file.fileId, index: 0 };
  const io = new IoRedirector(map, tiers, E, { onExtentRead: () => undefined }, () => undefined);

  await tier.put(ref, before);
  t.ok(await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: crc32(before), sizeBytes: E }, 0), 'copy recorded');
  map.forgetVerified(file.fileId); // as after a remount

  // The read's tier access waits; meanwhile a write begins and patches the copy (not yet done).
  let release!: () => void;
  let reached = false;
  const realRead = tier.read.bind(tier);
  tier.read = async (r: ExtentRef, offset: number, length: number, into: Buffer, at: number) => {
    reached = true;
    await new Promise<void>((go) => (release = go));
    return realRead(r, offset, length, into, at);
  };
  const buf = Buffer.alloc(E);
  const reading = io.read(file, live, buf, E, 0);
  while (!reached) await new Promise((r) => setImmediate(r));
  tier.read = realRead;
  const after = Buffer.alloc(E, 2);
  const [kept] = await map.beginWrite(file.fileId, 0, 0, () => true);
  fs.writeFileSync(p, after);
  await tier.patch(ref, 0, after, false);
  release();

  t.equal(await reading, E, 'the read is answered whole');
  t.ok(buf.equals(before) || buf.equals(after), 'with the bytes from before or after the write');
  map.patched(file.fileId, 0, kept[0], E);
  map.endWrite(file.fileId, 0, 0);
  t.equal(io.counters.corruptCopies, 0, 'no copy counted corrupt');
  t.equal(map.get(file.fileId, 0)?.copies.length, 1, 'the copy is still recorded');
  const again = Buffer.alloc(E);
  t.equal(await io.read(file, live, again, E, 0), E, 'a second read is answered whole');
  t.ok(again.equals(after), 'and serves the written bytes');
});
