import t from 'tap';
import { LiveGuard } from '../../src/failover/live-guard';

t.test('an abandoned write lands with the bytes it was given, whatever the caller\'s buffer holds by then', async (t) => {
  const guard = new LiveGuard({ deadlineMs: 20, syncDeadlineMs: 20, maxConcurrent: 4 });
  for (const size of [4096, 256 * 1024]) {
    const caller = Buffer.alloc(size, 0xaa);
    let landed: Buffer | undefined;
    let land!: () => void;
    const late = new Promise<void>((r) => (land = r));
    const op = guard.writeFrom(caller, 0, size, async (own) => {
      await late;
      landed = Buffer.from(own);
    });
    await t.rejects(op, { code: 'ETIMEDOUT', why: /not answered within/ }, `a ${size}-byte write past its deadline is abandoned`);
    caller.fill(0x55); // the caller's buffer is reused for another request
    land();
    await guard.noAbandonedOps();
    t.ok(landed?.equals(Buffer.alloc(size, 0xaa)), `the ${size}-byte write landed with its own bytes`);
  }
});

t.test('a write in time writes the caller\'s bytes from the given offset', async (t) => {
  const guard = new LiveGuard({ deadlineMs: 1000, syncDeadlineMs: 1000, maxConcurrent: 4 });
  const caller = Buffer.from('xxhello');
  let got = '';
  await guard.writeFrom(caller, 2, 5, async (own) => {
    got = own.toString();
  });
  t.equal(got, 'hello');
});
