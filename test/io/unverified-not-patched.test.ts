/**
 * After a mount a copy is checked against its checksum on its first read. A write that comes
 * first must not patch it: patching clears the checksum and counts the copy as checked, so a copy
 * damaged on the tier would be served from then on. It goes stale instead (and is made again).
 */
import t from 'tap';
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { IoRedirector } from '../../src/io/redirector';
import { liveFileFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('a write before the first read of a damaged copy does not launder it', async (t) => {
  const good = Buffer.alloc(E, 1);
  const { map, tier, tiers, tierId, p, file, live } = await liveFileFixture(t, good);
  const writeFd = fs.openSync(p, 'r+');
  t.teardown(() => fs.closeSync(writeFd));
  const io = new IoRedirector(map, tiers, E, { onExtentRead: () => undefined }, () => undefined);

  // The copy's record carries the good bytes' checksum; on the tier, its second half is damaged.
  const damaged = Buffer.concat([good.subarray(0, E / 2), Buffer.alloc(E / 2, 9)]);
  await tier.put({ fileId: file.fileId, index: 0 }, damaged);
  t.ok(await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: crc32(good), sizeBytes: E }, 0), 'copy recorded');
  map.forgetVerified(file.fileId); // as after a remount

  t.equal(await io.write(file, writeFd, Buffer.alloc(4096, 2), 4096, 0), 4096, 'a write to the start of the extent');
  const want = fs.readFileSync(p);
  const got = Buffer.alloc(E);
  t.equal(await io.read(file, live, got, E, 0), E, 'the extent reads whole');
  t.ok(got.equals(want), 'with the file\'s bytes, none of the damaged ones');
});
