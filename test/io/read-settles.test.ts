/**
 * A read that FUSE hands to the volume fills FUSE's buffer, and that buffer is FUSE's again (freed,
 * or given to the next request) as soon as the read is answered. So nothing may write into it
 * after the answer: a read that spans extents fails only once every piece has ended, and a live
 * read abandoned at its deadline lands, late, in a buffer of its own. Before this, the late bytes
 * went into freed memory and the daemon died of heap corruption ("double free or corruption").
 */
import t from 'tap';
import { IoRedirector, LiveReader } from '../../src/io/redirector';
import { LiveGuard } from '../../src/failover/live-guard';
import { FsError } from '../../src/util/errors';
import { liveFileFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('a read whose first extent fails at once answers only after its second extent has been read', async (t) => {
  const { map, tiers, file } = await liveFileFixture(t, Buffer.alloc(2 * E, 1));
  const io = new IoRedirector(map, tiers, E, { onExtentRead: () => undefined }, () => undefined);
  let secondLanded = false;
  // Extent 0 fails at once; extent 1 answers 200 ms later, writing its bytes then.
  const live: LiveReader = {
    authoritative: true,
    pread: async (buf, at, length, position) => {
      if (position < E) throw new FsError('EIO', 'extent 0 cannot be read');
      await sleep(200);
      buf.fill(0x55, at, at + length);
      secondLanded = true;
      return length;
    },
  };
  const buf = Buffer.alloc(2 * E, 0);
  await t.rejects(io.read(file, live, buf, 2 * E, 0), { code: 'EIO' }, 'the read fails');
  t.ok(secondLanded, 'after the other extent\'s read ended');
  // What FUSE would do next with its buffer: use it for something else.
  buf.fill(0xaa);
  await sleep(300);
  t.ok(buf.every((b) => b === 0xaa), 'nothing writes into the buffer after the answer');
});

t.test('a guarded read abandoned at its deadline never writes into the caller\'s buffer', async (t) => {
  const guard = new LiveGuard({ deadlineMs: 100, syncDeadlineMs: 100, maxConcurrent: 4 });
  const buf = Buffer.alloc(4096, 0);
  let landed = false;
  const reading = guard.readInto(buf, 0, 4096, async (own) => {
    await sleep(300);
    own.fill(0x55);
    landed = true;
    return 4096;
  });
  await t.rejects(reading, { code: 'ETIMEDOUT' }, 'abandoned at the deadline');
  buf.fill(0xaa);
  await guard.noAbandonedOps();
  t.ok(landed, 'the read landed later');
  t.ok(buf.every((b) => b === 0xaa), 'not in the caller\'s buffer');

  // In time, it is an ordinary read.
  const got = await guard.readInto(buf, 1000, 100, async (own) => {
    own.fill(0x11, 0, 100);
    return 100;
  });
  t.equal(got, 100);
  t.ok(buf.subarray(1000, 1100).every((b) => b === 0x11) && buf[999] === 0xaa && buf[1100] === 0xaa, 'its bytes land where asked, and only there');
});
