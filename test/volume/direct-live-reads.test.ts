/**
 * Background copies read the live file with O_DIRECT into a tier's aligned buffer: the bytes are
 * the file's, including bytes just written through the page cache and not yet written back, and
 * a file tail off the 4 KiB grid; anything direct I/O does not suit reads through the page cache.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DirectLiveReads } from '../../src/volume/direct-live-reads';
import { DirectIo } from '../../src/tiers/direct-io';
import { tempDir } from '../helpers/temp-dir';
import { openFileOn } from '../helpers/open-file';

const EXTENT = 64 * 1024;
const O_DIRECT = fs.constants.O_DIRECT;

/** fds of this process open on `p` with O_DIRECT. */
function directFdsOn(p: string): number[] {
  const real = fs.realpathSync(p);
  return fs.readdirSync('/proc/self/fd').map(Number).filter((fd) => {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) !== real) return false;
      const flags = /flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      return !!flags && (parseInt(flags[1], 8) & O_DIRECT) !== 0;
    } catch {
      return false; // closed meanwhile
    }
  });
}

t.test('direct reads return the live bytes, fresh page-cache writes and an unaligned tail included', async (t) => {
  const dir = await tempDir(t);
  const live = path.join(dir, 'live.bin');
  const size = 5 * EXTENT + 1234; // the last extent ends off the 4 KiB grid
  const model = randomBytes(size);
  fs.writeFileSync(live, model);
  const file = openFileOn(live);
  const closed: number[] = [];
  const reads = new DirectLiveReads(true, async (fd) => {
    closed.push(fd);
    fs.closeSync(fd);
  });
  const tier = new DirectIo(dir, '.tmp-');
  const lease = await tier.lend(EXTENT);

  for (let index = 0; index <= 5; index++) {
    const want = Math.min(EXTENT, size - index * EXTENT);
    lease.bytes.fill(0);
    const n = await reads.read(file, lease.bytes, want, index * EXTENT);
    t.equal(n, want, `extent ${index}: ${want} bytes`);
    t.ok(lease.bytes.subarray(0, n).equals(model.subarray(index * EXTENT, index * EXTENT + n)), `extent ${index}: the live bytes`);
  }
  t.equal(reads.counters.directReads, 6, 'every extent was read with direct I/O');
  t.equal(reads.counters.bufferedReads, 0);
  t.equal(directFdsOn(live).length, 1, 'one O_DIRECT fd on the live file, shared by the reads');

  // Written through the page cache, not synced: still dirty when the direct read asks for it.
  const fresh = randomBytes(3000);
  const wfd = fs.openSync(live, 'r+');
  fs.writeSync(wfd, fresh, 0, fresh.length, 2 * EXTENT + 100);
  fs.writeSync(wfd, fresh, 0, 200, size - 200); // the tail too
  fs.closeSync(wfd);
  fresh.copy(model, 2 * EXTENT + 100);
  fresh.copy(model, size - 200, 0, 200);
  for (const index of [2, 5]) {
    const want = Math.min(EXTENT, size - index * EXTENT);
    lease.bytes.fill(0);
    const n = await reads.read(file, lease.bytes, want, index * EXTENT);
    t.ok(lease.bytes.subarray(0, n).equals(model.subarray(index * EXTENT, index * EXTENT + want)), `extent ${index}: the bytes just written`);
  }
  t.equal(reads.counters.directReads, 8);

  // A read asked for less than the file holds past it gets exactly that much.
  lease.bytes.fill(0);
  t.equal(await reads.read(file, lease.bytes, 5000, 0), 5000, 'a length off the grid is cut to what was asked');
  t.ok(lease.bytes.subarray(0, 5000).equals(model.subarray(0, 5000)));

  reads.forget(file);
  await new Promise((r) => setImmediate(r));
  t.equal(closed.length, 1, 'forget closes the direct fd');
  t.same(directFdsOn(live), [], 'no O_DIRECT fd left on the live file');
  lease.release();
  fs.closeSync(file.readFd);
});

t.test('what direct I/O does not suit reads through the page cache', async (t) => {
  const dir = await tempDir(t);
  const live = path.join(dir, 'live.bin');
  const model = randomBytes(3 * EXTENT);
  fs.writeFileSync(live, model);
  const file = openFileOn(live);
  t.teardown(() => fs.closeSync(file.readFd));
  const reads = new DirectLiveReads(true, async (fd) => fs.closeSync(fd));
  const lease = await new DirectIo(dir, '.tmp-').lend(EXTENT);
  t.teardown(() => lease.release());

  const plain = Buffer.alloc(EXTENT); // not a buffer a tier lent: its address is not known to be aligned
  t.equal(await reads.read(file, plain, EXTENT, EXTENT), EXTENT);
  t.ok(plain.equals(model.subarray(EXTENT, 2 * EXTENT)), 'an unknown buffer: right bytes');
  t.equal(await reads.read(file, lease.bytes, EXTENT - 4096, 4096 + 512), EXTENT - 4096);
  t.ok(lease.bytes.subarray(0, EXTENT - 4096).equals(model.subarray(4608, 4608 + EXTENT - 4096)), 'an offset off the grid: right bytes');
  t.equal(reads.counters.directReads, 0);
  t.equal(reads.counters.bufferedReads, 2);
  t.same(directFdsOn(live), [], 'no O_DIRECT fd was opened');

  const off = new DirectLiveReads(false, async (fd) => fs.closeSync(fd));
  t.equal(await off.read(file, lease.bytes, EXTENT, 0), EXTENT);
  t.ok(lease.bytes.equals(model.subarray(0, EXTENT)), 'switched off: right bytes');
  t.equal(off.counters.bufferedReads, 1, 'switched off: through the page cache');
  t.same(directFdsOn(live), []);
});
