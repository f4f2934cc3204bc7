import t from 'tap';
import { execFileSync } from 'node:child_process';
import { promises as fsp, readSync } from 'node:fs';
import os from 'node:os';
import { ALIGN, DirectIo } from '../../src/tiers/direct-io';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import type { TierSpec } from '../../src/tiers/tier';
import { HasTeardown, tempDir } from '../helpers/temp-dir';

async function openTier(t: HasTeardown, dir: string): Promise<DirectoryTier> {
  const spec: TierSpec = { name: 'hdd', class: 'hdd', path: dir, capacityBytes: 64 << 20, costPerGiBMonth: 0.03 };
  const tier = new DirectoryTier(spec);
  await tier.open();
  t.teardown(() => tier.close());
  return tier;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + (i >> 12)) & 0xff;
  return b;
}

async function readBack(tier: DirectoryTier, fileId: string, index: number, size: number): Promise<Buffer> {
  const out = Buffer.alloc(size + 1);
  const n = await tier.read({ fileId, index }, 0, size + 1, out, 0);
  return out.subarray(0, n);
}

/** Pages of the file in the page cache (util-linux fincore), or undefined if it cannot tell. */
function residentPages(file: string): number | undefined {
  try {
    const out = execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'PAGES', file], { encoding: 'utf8' });
    return Number(out.trim());
  } catch {
    return undefined;
  }
}

t.test('a lent buffer is aligned for direct I/O, reused after release, and a copy put from it bypasses the page cache', async (t) => {
  const dir = await tempDir(t, 'shadowfs-directio-');
  const tier = await openTier(t, dir);
  const size = 256 * 1024;
  const lease = await tier.copyBuffer(size);
  t.equal(lease.bytes.length, size);
  pattern(size, 1).copy(lease.bytes);
  await tier.put({ fileId: 'ab12', index: 0 }, lease.bytes);
  const probes = (await fsp.readdir(dir)).filter((n) => n.startsWith('.tmp-'));
  t.same(probes, [], 'no probe or temp file is left behind');
  // Before any read brings the copy into the page cache.
  const resident = residentPages(tier.pathOf({ fileId: 'ab12', index: 0 }));
  t.same(await readBack(tier, 'ab12', 0, size), pattern(size, 1), 'the bytes read back are the bytes put');

  const io = new DirectIo(dir, '.tmp-');
  const own = await io.lend(size);
  if (!io.directView(own.bytes)) {
    t.comment(`${os.tmpdir()} takes no direct I/O: the page-cache checks are skipped`);
    return;
  }
  if (resident !== undefined) t.equal(resident, 0, 'the copy was written around the page cache (fincore: 0 pages)');

  // Reuse: the memory comes back, and it is still aligned.
  const memory = lease.bytes.buffer;
  lease.release();
  const again = await tier.copyBuffer(size);
  t.equal(again.bytes.buffer, memory, 'a released buffer is lent again');
  again.release();

  // A buffer that is not ours, of an aligned length, is copied into an aligned one and written directly too.
  const plain = pattern(ALIGN * 3, 2);
  await tier.put({ fileId: 'ab12', index: 1 }, plain);
  const residentPlain = residentPages(tier.pathOf({ fileId: 'ab12', index: 1 }));
  if (residentPlain !== undefined) t.equal(residentPlain, 0, 'an aligned plain buffer is written directly as well');
  t.same(await readBack(tier, 'ab12', 1, plain.length), plain);
  own.release();
});

t.test('lengths that are not a multiple of the block size take the page cache, and read back exactly', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-directio-'));
  for (const size of [1, 4095, 4097, 100_000]) {
    const lease = await tier.copyBuffer(128 * 1024);
    const data = lease.bytes.subarray(0, size);
    pattern(size, size).copy(data);
    await tier.put({ fileId: 'cd', index: size }, data);
    t.same(await readBack(tier, 'cd', size, size), pattern(size, size), `${size} bytes`);
    lease.release();
  }
  t.equal(tier.usedBytes(), 1 + 4095 + 4097 + 100_000);
});

t.test('a copy replaced while reads hold the old one: both versions stay whole', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-directio-'));
  const ref = { fileId: 'ef', index: 0 };
  const size = 64 * 1024;
  await tier.put(ref, pattern(size, 1));
  const old = await tier.acquireFd(ref);
  t.ok(old);
  const lease = await tier.copyBuffer(size);
  pattern(size, 2).copy(lease.bytes);
  await tier.put(ref, lease.bytes);
  lease.release();
  t.same(await readBack(tier, 'ef', 0, size), pattern(size, 2), 'new readers see the new copy');
  const viaOld = Buffer.alloc(size);
  t.equal(readSync(old!.fd, viaOld, 0, size, 0), size);
  t.same(viaOld, pattern(size, 1), 'the pinned fd still reads the bytes it was opened on');
  old!.release();
});

t.test('when the filesystem refuses direct I/O, buffers are plain and puts still land', async (t) => {
  const dir = await tempDir(t, 'shadowfs-directio-');
  const io = new DirectIo(dir, '.tmp-');
  io.disable();
  const lease = await io.lend(ALIGN * 2);
  t.equal(io.directView(lease.bytes), undefined, 'nothing is offered for direct I/O');
  t.equal(await io.withAligned(pattern(ALIGN, 3), async () => 'written'), undefined, 'withAligned declines');
  lease.release();
  const again = await io.lend(ALIGN * 2);
  t.equal(again.bytes.buffer, lease.bytes.buffer, 'plain buffers are still reused');
});
