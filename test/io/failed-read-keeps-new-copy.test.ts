/**
 * A read of a copy that fails drops that copy. If the copy was made again on the same tier while
 * the read was out (same generation, new bytes under the same name), the new one is not the one
 * that failed: it stays recorded and its bytes stay on the tier.
 */
import t from 'tap';
import { IoRedirector } from '../../src/io/redirector';
import { FsError } from '../../src/util/errors';
import { liveFileFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('a failed read drops the copy it read, not one made again meanwhile', async (t) => {
  const bytes = Buffer.alloc(E, 5);
  const { map, tier, tiers, tierId, file, live } = await liveFileFixture(t, bytes);
  const ref = { fileId: file.fileId, index: 0 };
  const discarded: number[] = [];
  const io = new IoRedirector(map, tiers, E, { onExtentRead: () => undefined }, (_f, _i, tier) => discarded.push(tier));

  await tier.put(ref, bytes);
  t.ok(await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: null, sizeBytes: E }, 0), 'first copy recorded');

  // The tier's read of the first copy is held, then fails; meanwhile the copy is made again.
  let failRead!: () => void;
  const realRead = tier.read.bind(tier);
  tier.read = () => new Promise<number>((_resolve, reject) => (failRead = () => reject(new FsError('EIO', 'injected'))));
  const buf = Buffer.alloc(E);
  const reading = io.read(file, live, buf, E, 0);
  await new Promise((r) => setImmediate(r));
  t.ok(failRead, 'the read reached the tier');
  tier.read = realRead;
  await tier.put(ref, bytes);
  t.ok(await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: null, sizeBytes: E }, 0), 'second copy recorded');
  const second = map.get(file.fileId, 0)?.copies[0];
  failRead();

  t.equal(await reading, E, 'the read is answered whole');
  t.ok(buf.equals(bytes), 'from the live file');
  t.same(map.get(file.fileId, 0)?.copies, [second], 'the second copy is still recorded');
  t.same(discarded, [], 'and its bytes were not discarded');
});
