import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fsp, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import type { TierSpec } from '../../src/tiers/tier';
import { ShadowfsError } from '../../src/util/errors';
import { HasTeardown, tempDir } from '../helpers/temp-dir';

function spec(dir: string, name = 'ssd', capacityBytes = 1 << 20): TierSpec {
  return { name, class: 'ssd', path: dir, capacityBytes, costPerGiBMonth: 0.1 };
}

async function openTier(t: HasTeardown, dir: string, opts: { maxOpenFds?: number } = {}): Promise<DirectoryTier> {
  const tier = new DirectoryTier(spec(dir), opts);
  await tier.open();
  t.teardown(() => tier.close());
  return tier;
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function readAll(tier: DirectoryTier, fileId: string, index: number, size: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  const n = await tier.read({ fileId, index }, 0, size, out, 0);
  return out.subarray(0, n);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}


t.test('put, full and partial read, layout on disk', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const tier = await openTier(t, dir);
  const data = bytes(4096);
  await tier.put({ fileId: 'a1b2', index: 3 }, data);

  t.same(await readAll(tier, 'a1b2', 3, 8192), data, 'short read at the end of the copy');
  const into = Buffer.alloc(110, 0xee);
  const n = await tier.read({ fileId: 'a1b2', index: 3 }, 1000, 100, into, 10);
  t.equal(n, 100);
  t.same(into.subarray(10), data.subarray(1000, 1100), 'partial read lands at intoOffset');
  t.equal(into[9], 0xee, 'bytes before intoOffset untouched');
  t.same(await fsp.readFile(path.join(dir, 'a1', 'a1b2', '3')), data, 'one file per copy at <aa>/<fileId>/<index>');
  t.equal(tier.usedBytes(), 4096);
  t.equal(tier.freeBytes(), (1 << 20) - 4096);

  await tier.put({ fileId: 'a1b2', index: 3 }, bytes(100, 7));
  t.same(await readAll(tier, 'a1b2', 3, 4096), bytes(100, 7), 'put replaces the copy (cached fd not reused)');
  t.equal(tier.usedBytes(), 100, 'replacing adjusts used bytes');
  const names = await fsp.readdir(path.join(dir, 'a1', 'a1b2'));
  t.same(names, ['3'], 'no temp file left behind');
});

t.test('missing copy rejects with ENOENT and does not hurt health', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-dirtier-'));
  for (let i = 0; i < 5; i++) {
    await t.rejects(tier.read({ fileId: 'ff', index: i }, 0, 10, Buffer.alloc(10), 0), { code: 'ENOENT' });
  }
  await t.rejects(tier.patch({ fileId: 'ff', index: 0 }, 0, Buffer.from('x'), true), { code: 'ENOENT' });
  t.equal(tier.health(), 'healthy');
  t.equal(await tier.fdFor({ fileId: 'ff', index: 0 }), undefined);
  t.equal(await tier.acquireFd({ fileId: 'ff', index: 0 }), undefined);
  await tier.remove({ fileId: 'ff', index: 0 }); // removing a missing copy is fine
});

t.test('fileIds that could escape the tier are refused', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-dirtier-'));
  for (const fileId of ['../x', 'a/b', '..', '', '.tmp-1', 'a b']) {
    await t.rejects(tier.put({ fileId, index: 0 }, Buffer.from('x')), { code: 'EINVAL' }, JSON.stringify(fileId));
  }
  await t.rejects(tier.put({ fileId: 'ab', index: -1 }, Buffer.from('x')), { code: 'EINVAL' });
  await t.rejects(tier.put({ fileId: 'ab', index: 1.5 }, Buffer.from('x')), { code: 'EINVAL' });
  await t.rejects(tier.removeFile('../..'), { code: 'EINVAL' });
  await t.rejects(tier.read({ fileId: 'ab', index: 0 }, -1, 1, Buffer.alloc(1), 0), { code: 'EINVAL' }, 'negative offset');
  await t.rejects(tier.read({ fileId: 'ab', index: 0 }, 0, 10, Buffer.alloc(5), 0), { code: 'EINVAL' }, 'buffer too small');
});

t.test('patch in place, extend, sync tracking, truncate', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const tier = await openTier(t, dir);
  const ref = { fileId: '10', index: 0 };
  await tier.put(ref, Buffer.from('hello world'));
  await tier.patch(ref, 6, Buffer.from('WORLD'), false);
  t.equal((await readAll(tier, '10', 0, 64)).toString(), 'hello WORLD');
  await tier.patch(ref, 11, Buffer.from('!!'), true);
  t.equal((await readAll(tier, '10', 0, 64)).toString(), 'hello WORLD!!');
  t.equal(tier.usedBytes(), 13, 'extending patch grows used bytes');
  await tier.syncFile('10');
  await tier.syncFile('nothing-pending');

  await tier.truncate(ref, 5);
  t.equal((await readAll(tier, '10', 0, 64)).toString(), 'hello');
  t.equal(tier.usedBytes(), 5);
  t.equal((await fsp.stat(path.join(dir, '10', '10', '0'))).size, 5);
  await t.rejects(tier.truncate({ fileId: '10', index: 9 }, 0), { code: 'ENOENT' });
});

t.test('a second fsync of a file does not return before the first one\'s copies are durable', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const tier = await openTier(t, dir);
  // A put without sync: its name is durable only once its directory is synced (slowed down here).
  await tier.put({ fileId: '20', index: 0 }, Buffer.from('bytes'), false);
  const dirSyncs = (tier as unknown as { dirSyncs: { sync: (d: string) => Promise<void> } }).dirSyncs;
  const sync = dirSyncs.sync.bind(dirSyncs);
  let dirSynced = false;
  dirSyncs.sync = async (d) => {
    await new Promise((r) => setTimeout(r, 200));
    await sync(d);
    dirSynced = true;
  };
  const first = tier.syncFile('20');
  await new Promise((r) => setTimeout(r, 20));
  await tier.syncFile('20');
  t.ok(dirSynced, 'the second returned after the first made the copy\'s name durable');
  await first;
});

t.test('remove, removeFile, used bytes', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const tier = await openTier(t, dir);
  await tier.put({ fileId: 'abc', index: 0 }, bytes(1000));
  await tier.put({ fileId: 'abc', index: 1 }, bytes(500));
  await tier.put({ fileId: 'abd', index: 0 }, bytes(300));
  t.equal(tier.usedBytes(), 1800);
  await tier.remove({ fileId: 'abc', index: 0 });
  t.equal(tier.usedBytes(), 800);
  await t.rejects(readAll(tier, 'abc', 0, 10), { code: 'ENOENT' });
  await tier.removeFile('abc');
  t.equal(tier.usedBytes(), 300);
  await t.rejects(fsp.stat(path.join(dir, 'ab', 'abc')), { code: 'ENOENT' }, 'file directory gone');
  t.same(await readAll(tier, 'abd', 0, 300), bytes(300), 'other file untouched');
  await tier.removeFile('abc'); // again: no error
});

t.test('list and open() rebuild the inventory; orphan temp files are deleted', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const first = new DirectoryTier(spec(dir));
  await first.open();
  await first.put({ fileId: '7f', index: 0 }, bytes(10));
  await first.put({ fileId: '7f', index: 2 }, bytes(20));
  await first.put({ fileId: '80aa', index: 5 }, bytes(30));
  await first.close();

  // A crash mid-put leaves a temp file beside the copies; a stray file at the root too.
  const orphan = path.join(dir, '7f', '7f', '.tmp-deadbeef');
  await fsp.writeFile(orphan, 'partial');
  await fsp.writeFile(path.join(dir, '80', '80aa', '.tmp-0123'), 'partial');

  const tier = await openTier(t, dir);
  t.equal(tier.usedBytes(), 60, 'open() counts existing copies, not temp files');
  await t.rejects(fsp.stat(orphan), { code: 'ENOENT' }, 'open() removed the orphan');

  const sorted = (refs: { fileId: string; index: number }[]) => refs.sort((a, b) => a.fileId.localeCompare(b.fileId) || a.index - b.index);
  t.same(sorted(await collect(tier.list())), [
    { fileId: '7f', index: 0, sizeBytes: 10 },
    { fileId: '7f', index: 2, sizeBytes: 20 },
    { fileId: '80aa', index: 5, sizeBytes: 30 },
  ], 'list() gives the copies open() found');
  // Once open, list() is the inventory (no second walk at mount): it follows puts and removes.
  await tier.put({ fileId: '7f', index: 3 }, bytes(40));
  await tier.remove({ fileId: '80aa', index: 5 });
  t.same(sorted(await collect(tier.list())), [
    { fileId: '7f', index: 0, sizeBytes: 10 },
    { fileId: '7f', index: 2, sizeBytes: 20 },
    { fileId: '7f', index: 3, sizeBytes: 40 },
  ], 'and the puts and removes since');
  // Closed, it walks the directory again, as open() does, orphans included.
  await tier.close();
  await fsp.writeFile(orphan, 'partial again');
  t.same(sorted(await collect(tier.list())), [
    { fileId: '7f', index: 0, sizeBytes: 10 },
    { fileId: '7f', index: 2, sizeBytes: 20 },
    { fileId: '7f', index: 3, sizeBytes: 40 },
  ], 'a closed tier lists what its directory holds');
  await t.rejects(fsp.stat(orphan), { code: 'ENOENT' }, 'and that walk removes orphans');
});

t.test('fd cache is bounded; pinned fds survive eviction, put and remove', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-dirtier-'), { maxOpenFds: 4 });
  for (let i = 0; i < 10; i++) await tier.put({ fileId: 'cc', index: i }, bytes(64, i));

  const lease = await tier.acquireFd({ fileId: 'cc', index: 0 });
  t.ok(lease, 'lease for an existing copy');
  if (!lease) return;
  for (let i = 1; i < 10; i++) await readAll(tier, 'cc', i, 64);
  t.ok(tier.openFdCount() <= 5, `fd cache bounded (got ${tier.openFdCount()})`);

  const buf = Buffer.alloc(64);
  t.equal(readSync(lease.fd, buf, 0, 64, 0), 64, 'pinned fd still open after many evictions');
  t.same(buf, bytes(64, 0));

  await tier.put({ fileId: 'cc', index: 0 }, bytes(64, 99));
  t.equal(readSync(lease.fd, buf, 0, 64, 0), 64, 'pinned fd still open after put');
  t.same(buf, bytes(64, 0), 'pinned fd keeps the bytes it was acquired on');
  t.same(await readAll(tier, 'cc', 0, 64), bytes(64, 99), 'new reads see the new copy');

  await tier.remove({ fileId: 'cc', index: 0 });
  t.equal(readSync(lease.fd, buf, 0, 64, 0), 64, 'pinned fd still open after remove');
  lease.release();
  lease.release(); // idempotent
  // The fd is closed once released (asynchronously); reading it must now fail.
  await new Promise((r) => setTimeout(r, 50));
  t.throws(() => readSync(lease.fd, buf, 0, 64, 0), 'released stale fd is closed');

  const fd = await tier.fdFor({ fileId: 'cc', index: 5 });
  t.type(fd, 'number');
  t.equal(readSync(fd as number, buf, 0, 64, 0), 64, 'fdFor gives a readable fd');
  t.same(buf, bytes(64, 5));
});

/** Settles like p, or rejects after ms: a livelocked open/close loop keeps the event loop turning. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not answered within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

// docs/benchmarks.md, problem 1: the read fast path pins one fd per mapped extent; once as many
// were pinned as the cache holds, every newly opened fd was the only unpinned entry, evicted
// before its opener could pin it, reopened, evicted again... forever.
t.test('a read still gets an fd when every cached fd is pinned', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-dirtier-'), { maxOpenFds: 2 });
  for (let i = 0; i < 4; i++) await tier.put({ fileId: 'ee', index: i }, bytes(64, i));
  const leases = [await tier.acquireFd({ fileId: 'ee', index: 0 }), await tier.acquireFd({ fileId: 'ee', index: 1 })];
  t.ok(leases.every((l) => l !== undefined), 'two pinned fds fill the cache');

  t.same(await within(readAll(tier, 'ee', 2, 64), 2000, 'read of an unpinned copy'), bytes(64, 2));
  const third = await within(tier.acquireFd({ fileId: 'ee', index: 3 }), 2000, 'a third lease');
  t.ok(third, 'a third lease beyond the cache size');
  const buf = Buffer.alloc(64);
  t.equal(readSync(third?.fd ?? -1, buf, 0, 64, 0), 64);
  t.same(buf, bytes(64, 3));
  const reads = [0, 1, 2, 3].map((i) => within(readAll(tier, 'ee', i, 64), 2000, `read of copy ${i}`));
  t.same(await Promise.all(reads), [0, 1, 2, 3].map((i) => bytes(64, i)), 'concurrent reads of pinned and unpinned copies');
  for (const l of [...leases, third]) l?.release();
});

t.test('an fd opened while its copy is replaced or the tier closes is still handed out once', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-dirtier-'));
  const ref = { fileId: 'ef', index: 0 };
  await tier.put(ref, bytes(64, 1));
  // The put invalidates the open in flight: its fd must go to this read (a one-off), not be
  // closed before the read can use it.
  const reading = readAll(tier, 'ef', 0, 64);
  const replacing = tier.put(ref, bytes(64, 2));
  const got = await within(reading, 2000, 'read racing a put');
  t.ok(got.equals(bytes(64, 1)) || got.equals(bytes(64, 2)), 'the old or the new copy, whole');
  await replacing;

  const acquiring = tier.acquireFd({ fileId: 'ef', index: 0 });
  const closing = tier.close();
  const lease = await within(acquiring, 2000, 'acquireFd racing close()');
  await closing;
  t.ok(lease, 'a lease on the copy opened before close()');
  lease?.release();
});

t.test('an open in flight while its copy is replaced is never cached, however many other copies are replaced meanwhile', async (t) => {
  // The tier forgets old epochs once it has seen 4 x maxOpenFds keys replaced; the epoch of a key
  // with an open in flight must not be among them, or that open would cache the replaced inode
  // and every later read would serve the old bytes.
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const tier = await openTier(t, dir, { maxOpenFds: 1 });
  const ref = { fileId: 'ab', index: 0 };
  await tier.put(ref, bytes(64, 1));
  // Other copies replaced: the tier has forgotten this key's epoch by now (so the open below starts
  // from "never replaced" and only the epoch bump of the put racing it can tell it apart).
  for (let i = 1; i <= 8; i++) await tier.put({ fileId: `c${i}`, index: 0 }, bytes(64, 10 + i));
  // Hold the open of this copy until the test lets it go (the copy's own path only).
  const realOpen = fsp.open;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let held = 0;
  fsp.open = (async (p: Parameters<typeof realOpen>[0], ...rest: unknown[]) => {
    const handle = await (realOpen as (...a: unknown[]) => ReturnType<typeof realOpen>)(p, ...rest);
    if (String(p) === path.join(dir, 'ab', 'ab', '0')) {
      held++;
      await gate;
    }
    return handle;
  }) as typeof realOpen;
  t.teardown(() => {
    fsp.open = realOpen;
  });
  const reading = readAll(tier, 'ab', 0, 64);
  while (held === 0) await new Promise((r) => setTimeout(r, 5));
  await tier.put(ref, bytes(64, 2));
  for (let i = 1; i <= 8; i++) await tier.put({ fileId: `d${i}`, index: 0 }, bytes(64, 20 + i));
  release();
  const first = await within(reading, 2000, 'the read that raced the put');
  t.ok(first.equals(bytes(64, 1)) || first.equals(bytes(64, 2)), 'the racing read got the old or the new copy, whole');
  fsp.open = realOpen;
  t.ok((await readAll(tier, 'ab', 0, 64)).equals(bytes(64, 2)), 'the next read gets the new copy');
});

t.test('concurrent puts and reads of the same copy stay consistent', async (t) => {
  const tier = await openTier(t, await tempDir(t, 'shadowfs-dirtier-'));
  const ref = { fileId: 'dd', index: 0 };
  const versions = [1, 2, 3, 4, 5, 6].map((s) => bytes(256, s));
  await tier.put(ref, versions[0]);
  const reads: Promise<Buffer>[] = [];
  const puts = versions.map((v) => {
    reads.push(readAll(tier, 'dd', 0, 256));
    return tier.put(ref, v);
  });
  await Promise.all(puts);
  for (const r of await Promise.all(reads)) {
    t.ok(versions.some((v) => v.equals(r)), 'every read sees one whole version');
  }
  t.same(await readAll(tier, 'dd', 0, 256), versions[5], 'last put wins');
  t.equal(tier.usedBytes(), 256);
});

t.test('unusable paths give a one-line ShadowfsError naming tier and path', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const file = path.join(dir, 'plain-file');
  await fsp.writeFile(file, 'x');
  for (const p of [file, path.join(file, 'sub')]) {
    const tier = new DirectoryTier(spec(p, 'nvme0'));
    const err = await tier.open().then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof ShadowfsError, `ShadowfsError for ${p}`);
    t.match((err as Error).message, /^tier nvme0: directory .*plain-file.* is not usable: /);
    t.notMatch((err as Error).message, /\n/, 'one line');
  }
  await t.rejects(new DirectoryTier(spec('', 'x')).open(), ShadowfsError);
  const created = await openTier(t, path.join(dir, 'new', 'deeper'));
  t.ok((await fsp.stat(created.root)).isDirectory(), 'missing directory is created');
  t.same(await fsp.readdir(created.root), [], 'write probe cleaned up');
});

t.test('a copy put after the tier directory was deleted does not make it again: the tier fails', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const root = path.join(dir, 'tier');
  const tier = await openTier(t, root);
  await tier.put({ fileId: 'ee', index: 0 }, bytes(10));
  await fsp.rm(root, { recursive: true });
  // Before the prober has looked: the first copy of another file.
  await t.rejects(tier.put({ fileId: 'ff', index: 0 }, bytes(10)), { code: 'ENOENT' }, 'the put fails');
  t.notOk(existsSync(root), 'the tier directory was not made again');
  t.equal(await tier.checkMount(), 'failed', 'so the next check fails the tier');
});

t.test('tier directory deleted → failed (sticky until reopen)', async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const root = path.join(dir, 'tier');
  const tier = await openTier(t, root);
  await tier.put({ fileId: 'ee', index: 0 }, bytes(10));
  t.equal(await tier.checkMount(), 'healthy');
  t.type(await tier.fdFor({ fileId: 'ee', index: 0 }), 'number', 'an fd is cached for the copy');
  await fsp.rm(root, { recursive: true });
  t.equal(await tier.checkMount(), 'failed');
  t.equal(tier.health(), 'failed');
  t.match(tier.failureReason(), /ENOENT/);
  await fsp.mkdir(root);
  t.equal(await tier.checkMount(), 'failed', 'a recreated empty directory does not silently heal');
  await tier.open();
  t.equal(tier.health(), 'healthy', 'reopen rescans and clears');
  t.equal(tier.usedBytes(), 0);
  await t.rejects(
    tier.read({ fileId: 'ee', index: 0 }, 0, 10, Buffer.alloc(10), 0),
    { code: 'ENOENT' },
    'no read through an fd opened on the deleted tree',
  );
});

function tryMountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function umount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // already unmounted
  }
}

/** Mount tests need root and a kernel that lets us mount tmpfs; probe once. */
const MOUNT_SKIP: string | false = (() => {
  const probe = mkdtempSync(path.join(os.tmpdir(), 'shadowfs-mountprobe-'));
  try {
    if (!tryMountTmpfs(probe, '64k')) return 'cannot mount tmpfs here (needs root)';
    umount(probe);
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

t.test('separate mount at open, unmounted later → failed', { skip: MOUNT_SKIP }, async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(mnt);
  t.ok(tryMountTmpfs(mnt, '1m'), 'mounted a tmpfs');
  t.teardown(() => umount(mnt));
  const tier = await openTier(t, mnt);
  t.equal(await tier.checkMount(), 'healthy');
  umount(mnt);
  t.equal(await tier.probe(), 'failed', 'same device as the parent now: unmounted');
  t.match(tier.failureReason(), /no longer a separate mount/);
});

t.test('ENOSPC errors: suspect, then failed after 3 in a row; a success resets', { skip: MOUNT_SKIP }, async (t) => {
  const dir = await tempDir(t, 'shadowfs-dirtier-');
  const mnt = path.join(dir, 'small');
  await fsp.mkdir(mnt);
  t.ok(tryMountTmpfs(mnt, '64k'), 'mounted a tmpfs');
  t.teardown(() => umount(mnt));
  const tier = await openTier(t, mnt);
  const big = bytes(128 * 1024);
  await t.rejects(tier.put({ fileId: 'f0', index: 0 }, big), { code: 'ENOSPC' });
  t.equal(tier.health(), 'suspect');
  await t.rejects(tier.put({ fileId: 'f0', index: 1 }, big), { code: 'ENOSPC' });
  await t.rejects(tier.put({ fileId: 'f0', index: 2 }, big), { code: 'ENOSPC' });
  t.equal(tier.health(), 'failed');
  t.equal(tier.usedBytes(), 0, 'failed puts count nothing');
  t.same(
    (await fsp.readdir(path.join(mnt, 'f0', 'f0'))).filter((n) => n.startsWith('.tmp-')),
    [],
    'failed puts leave no temp files',
  );
  t.equal(await tier.probe(), 'healthy', 'a probe write succeeds (space for 512 bytes) and resets the streak');
  t.same((await fsp.readdir(mnt)).filter((n) => n.startsWith('.tmp-')), [], 'probe file removed');
  await t.rejects(tier.put({ fileId: 'f0', index: 4 }, big), { code: 'ENOSPC' });
  t.equal(tier.health(), 'suspect');
  await tier.put({ fileId: 'f0', index: 3 }, bytes(1024));
  t.equal(tier.health(), 'healthy', 'a success resets the streak');
});
