/**
 * A fresh copy that holds fewer bytes than a read asks of it (a write that grows the file is still
 * patching it) does not serve that read: the next source does. A short count would end the
 * application's read there, as if the file ended.
 */
import t from 'tap';
import { IoRedirector } from '../../src/io/redirector';
import { liveFileFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('a short fresh copy is passed over; the read comes whole from the live file', async (t) => {
  const bytes = Buffer.alloc(2 * E);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 13 + 7) & 0xff;
  const { map, tier, tiers, tierId, file, live } = await liveFileFixture(t, bytes);
  const served: (number | 'live')[] = [];
  const io = new IoRedirector(map, tiers, E, { onExtentRead: (_f, _i, by) => served.push(by) }, () => undefined);

  // Extent 0's copy holds only its first half, its record the whole extent (fresh, no checksum to check).
  await tier.put({ fileId: file.fileId, index: 0 }, bytes.subarray(0, E / 2));
  t.ok(await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: null, sizeBytes: E }, 0), 'copy recorded');

  const buf = Buffer.alloc(2 * E);
  const n = await io.read(file, live, buf, 2 * E, 0);
  t.equal(n, 2 * E, 'the whole read is answered');
  t.ok(buf.equals(bytes), 'with the live bytes');
  t.same(served, ['live', 'live'], 'both extents from the live file');

  // A read the short copy does hold is still served by it.
  served.length = 0;
  const head = Buffer.alloc(E / 4);
  t.equal(await io.read(file, live, head, E / 4, 0), E / 4);
  t.ok(head.equals(bytes.subarray(0, E / 4)), 'its bytes are right');
  t.same(served, [tierId], 'from the copy');
});
