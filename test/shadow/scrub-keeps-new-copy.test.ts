/**
 * Scrub reads a copy, then judges it. A copy made again on the same tier while the read was out
 * (same generation, new bytes) is not the one read: it is not dropped for the old one's fault.
 */
import t from 'tap';
import { Scrubber } from '../../src/shadow/scrubber';
import { directoryTierFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('scrub does not drop a copy made again while it read the old one', async (t) => {
  const { map, tier, tiers, tierId } = await directoryTierFixture(t);
  const ref = { fileId: 'f1', index: 0 };
  const bytes = Buffer.alloc(E, 7);
  await tier.put(ref, bytes);
  t.ok(await map.addCopy('f1', 0, { tierId, generation: 0, crc32: null, sizeBytes: E }, 0), 'first copy recorded');

  // The scrub's read of the first copy is held, then comes back short (a bad copy).
  let answerShort!: () => void;
  const realRead = tier.read.bind(tier);
  tier.read = () => new Promise<number>((resolve) => (answerShort = () => resolve(E / 2)));
  const dropped: number[] = [];
  const scrubber = new Scrubber(map, tiers, (_f, _i, id) => dropped.push(id), () => undefined);
  const scrubbing = scrubber.run();
  await new Promise((r) => setImmediate(r));
  t.ok(answerShort, 'the scrub reached the tier');
  tier.read = realRead;
  await tier.put(ref, bytes);
  t.ok(await map.addCopy('f1', 0, { tierId, generation: 0, crc32: null, sizeBytes: E }, 0), 'second copy recorded');
  answerShort();

  const result = await scrubbing;
  t.same(dropped, [], 'no copy was dropped');
  t.equal(result.badCopies, 0, 'none counted bad');
  t.equal(map.get('f1', 0)?.copies.length, 1, 'the second copy is still recorded');

  // The same short answer with no copy made meanwhile is a bad copy.
  tier.read = () => Promise.resolve(E / 2);
  const again = await scrubber.run();
  tier.read = realRead;
  t.same(dropped, [tierId], 'a short copy is dropped');
  t.equal(again.badCopies, 1, 'and counted bad');
});
