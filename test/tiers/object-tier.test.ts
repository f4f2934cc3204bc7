/**
 * ObjectTier against a real s3rver on loopback (no mocked client).
 */
import t from 'tap';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ObjectTier, type ObjectTierOptions } from '../../src/tiers/object-tier';
import { openTier } from '../../src/tiers/open-tier';
import type { TierSpec } from '../../src/tiers/tier';
import { ShadowfsError } from '../../src/util/errors';
import { S3_TEST_REGION, startS3Server, useS3Credentials, type S3TestServer } from '../helpers/s3-server';
import { HasTeardown, tempDir } from '../helpers/temp-dir';

/** Short timeouts so failure tests finish fast; still generous for loopback. */
const FAST: ObjectTierOptions = { connectTimeoutMs: 300, requestTimeoutMs: 1000, maxAttempts: 2 };

const unhandled: unknown[] = [];
process.on('unhandledRejection', (err) => unhandled.push(err));

useS3Credentials();

async function server(t: HasTeardown): Promise<S3TestServer> {
  const s3 = await startS3Server();
  t.teardown(() => s3.close());
  return s3;
}

function spec(endpoint: string, bucket: string, cacheDir: string, over: Partial<TierSpec['object']> = {}): TierSpec {
  return {
    name: 's3',
    class: 'object',
    path: '',
    capacityBytes: 1 << 30,
    costPerGiBMonth: 0.02,
    object: {
      endpoint,
      bucket,
      prefix: 'vol1/',
      region: S3_TEST_REGION,
      forcePathStyle: true,
      cacheDir,
      cacheCapacityBytes: 1 << 20,
      ...over,
    },
  };
}

async function openObjectTier(t: HasTeardown, s3: S3TestServer, over: Partial<TierSpec['object']> = {}): Promise<ObjectTier> {
  const tier = new ObjectTier(spec(s3.endpoint, s3.bucket, await tempDir(t, 'shadowfs-objtier-'), over), FAST);
  await tier.open();
  t.teardown(() => tier.close());
  return tier;
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

async function readAll(tier: ObjectTier, fileId: string, index: number, size: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  const n = await tier.read({ fileId, index }, 0, size, out, 0);
  return out.subarray(0, n);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Object as stored by s3rver, read back through a second tier with an empty cache. */
async function freshReader(t: HasTeardown, s3: S3TestServer): Promise<ObjectTier> {
  return openObjectTier(t, s3);
}

t.test('put/read round trip, partial reads, object layout, list, used bytes', async (t) => {
  const s3 = await server(t);
  const tier = await openObjectTier(t, s3);
  t.equal(tier.health(), 'healthy');
  const data = bytes(100_000);
  await tier.put({ fileId: 'a1', index: 0 }, data);
  await tier.put({ fileId: 'a1', index: 7 }, bytes(10, 3));
  await tier.put({ fileId: 'b2c3', index: 1 }, bytes(20, 4));
  t.equal(tier.usedBytes(), 100_030);

  t.same(await readAll(tier, 'a1', 0, 200_000), data, 'whole extent, short at the end');
  const into = Buffer.alloc(60);
  t.equal(await tier.read({ fileId: 'a1', index: 0 }, 99_990, 50, into, 10), 10, 'short read at the end');
  t.same(into.subarray(10, 20), data.subarray(99_990));

  const other = await freshReader(t, s3);
  t.equal(other.usedBytes(), 100_030, 'open() inventories the bucket');
  t.notOk(other.isCached({ fileId: 'a1', index: 0 }));
  const before = other.requestCount();
  t.same(await readAll(other, 'a1', 0, 100_000), data, 'uncached read GETs the object');
  t.equal(other.requestCount(), before + 1, 'exactly one request for a miss');
  t.notOk(other.isCached({ fileId: 'a1', index: 0 }), 'the read did not wait for the cache fill');
  await other.whenIdle();
  t.ok(other.isCached({ fileId: 'a1', index: 0 }), 'miss filled the cache in the background');

  const listed = (await collect(tier.list())).sort((a, b) => a.fileId.localeCompare(b.fileId) || a.index - b.index);
  t.same(listed, [
    { fileId: 'a1', index: 0, sizeBytes: 100_000 },
    { fileId: 'a1', index: 7, sizeBytes: 10 },
    { fileId: 'b2c3', index: 1, sizeBytes: 20 },
  ]);
  await t.rejects(readAll(tier, 'a1', 3, 10), { code: 'ENOENT' }, 'missing object → ENOENT');
  t.equal(tier.health(), 'healthy', 'a missing object is not a health problem');
});

t.test('patch and truncate re-upload the whole extent', async (t) => {
  const s3 = await server(t);
  const tier = await openObjectTier(t, s3);
  const ref = { fileId: 'cc', index: 2 };
  await tier.put(ref, Buffer.from('hello world'));
  await tier.patch(ref, 6, Buffer.from('WORLD!!'), false);
  t.equal((await readAll(tier, 'cc', 2, 64)).toString(), 'hello WORLD!!');
  t.equal(tier.usedBytes(), 13);
  await tier.truncate(ref, 5);
  t.equal((await readAll(tier, 'cc', 2, 64)).toString(), 'hello');

  const other = await freshReader(t, s3);
  t.equal((await readAll(other, 'cc', 2, 64)).toString(), 'hello', 'the bucket holds the patched bytes');
  await t.rejects(tier.patch({ fileId: 'cc', index: 9 }, 0, Buffer.from('x'), true), { code: 'ENOENT' });
  await tier.syncFile('cc');
});

t.test('remove and removeFile delete objects and cached copies', async (t) => {
  const s3 = await server(t);
  const tier = await openObjectTier(t, s3);
  for (let i = 0; i < 3; i++) await tier.put({ fileId: 'dd', index: i }, bytes(100, i));
  await tier.put({ fileId: 'de', index: 0 }, bytes(50));
  await tier.remove({ fileId: 'dd', index: 0 });
  await tier.remove({ fileId: 'dd', index: 0 }); // missing: fine
  t.equal(tier.usedBytes(), 250);
  await t.rejects(readAll(tier, 'dd', 0, 100), { code: 'ENOENT' });
  await tier.removeFile('dd');
  t.equal(tier.usedBytes(), 50);
  t.same(await collect(tier.list()), [{ fileId: 'de', index: 0, sizeBytes: 50 }]);
  t.equal(tier.cache.usedBytes(), 50, 'cached copies of the removed file are gone');
});

t.test('the local cache is bounded: least recently used copies are evicted', async (t) => {
  const s3 = await server(t);
  const tier = await openObjectTier(t, s3, { cacheCapacityBytes: 3000 });
  for (let i = 0; i < 3; i++) await tier.put({ fileId: 'ee', index: i }, bytes(1000, i));
  await tier.whenIdle(); // cache fills after put run in the background; order them before the read
  t.equal(tier.cache.usedBytes(), 3000, 'puts filled the cache');
  const requestsBefore = tier.requestCount();
  await readAll(tier, 'ee', 0, 1000); // 0 is now more recent than 1
  t.equal(tier.requestCount(), requestsBefore, 'read of a just-put copy is a cache hit');
  await tier.put({ fileId: 'ee', index: 3 }, bytes(1000, 3));
  await tier.close(); // waits for background fills and evictions
  await tier.open();
  t.ok(tier.cache.usedBytes() <= 3000, `cache within capacity (${tier.cache.usedBytes()})`);
  t.ok(tier.isCached({ fileId: 'ee', index: 0 }), 'recently read copy kept');
  t.notOk(tier.isCached({ fileId: 'ee', index: 1 }), 'least recently used copy evicted');
  t.same(await readAll(tier, 'ee', 1, 1000), bytes(1000, 1), 'evicted copy still readable from the bucket');
});

t.test('outage: cached reads stay local, uncached reads fail fast and mark failed; probe recovers', async (t) => {
  const s3 = await server(t);
  const tier = await openObjectTier(t, s3);
  await tier.put({ fileId: 'ff', index: 0 }, bytes(4096, 1));
  await tier.put({ fileId: 'ff', index: 1 }, bytes(4096, 2));
  // Make index 1 uncached: a second tier with an empty cache will be the one reading it.
  const cold = await freshReader(t, s3);
  t.same(await readAll(cold, 'ff', 0, 4096), bytes(4096, 1), 'warm cold tier for index 0 only');
  await cold.whenIdle(); // let the background cache fill land

  await s3.stop();
  const requestsBefore = tier.requestCount();
  t.same(await readAll(tier, 'ff', 0, 4096), bytes(4096, 1), 'cached read works with the server down');
  t.same(await readAll(cold, 'ff', 0, 4096), bytes(4096, 1), 'filled-on-miss copy also served locally');
  t.equal(tier.requestCount(), requestsBefore, 'cached read sent no request');
  t.equal(tier.health(), 'healthy', 'nothing noticed yet');

  const started = Date.now();
  await t.rejects(readAll(cold, 'ff', 1, 4096), { code: 'EIO' }, 'uncached read rejects');
  const elapsedMs = Date.now() - started;
  t.ok(elapsedMs < 4000, `failed fast (${elapsedMs} ms)`);
  t.equal(cold.health(), 'failed', 'unreachable endpoint → failed');
  t.match(cold.failureReason(), /unreachable/);

  const fastStart = Date.now();
  await t.rejects(cold.put({ fileId: 'ff', index: 2 }, bytes(10)), { code: 'EIO' }, 'writes fail fast while failed');
  t.ok(Date.now() - fastStart < 100, 'no network attempt while failed');
  t.equal(await cold.probe(), 'failed', 'probe with the server still down');

  await s3.start();
  t.equal(await cold.probe(), 'healthy', 'probe after restart recovers');
  t.same(await readAll(cold, 'ff', 1, 4096), bytes(4096, 2), 'uncached read works again');
  await cold.put({ fileId: 'ff', index: 2 }, bytes(10));
  t.same(unhandled, [], 'no unhandled rejections');
});

t.test('an endpoint that accepts but never answers: no hang', async (t) => {
  // A black hole: accepts TCP connections and never says a word.
  const sockets = new Set<net.Socket>();
  const hole = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => hole.close(() => r()));
  });
  const { port } = hole.address() as net.AddressInfo;
  const tier = new ObjectTier(spec(`http://127.0.0.1:${port}`, 'b', await tempDir(t, 'shadowfs-objtier-')), {
    connectTimeoutMs: 200,
    requestTimeoutMs: 400,
    maxAttempts: 1,
  });
  t.teardown(() => tier.close());
  const started = Date.now();
  const err = await tier.open().then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof ShadowfsError, 'open fails with a ShadowfsError');
  t.match((err as Error).message, /^tier s3: endpoint http:\/\/127\.0\.0\.1:\d+ unreachable/);
  t.ok(Date.now() - started < 3000, `within the deadline (${Date.now() - started} ms)`);
  t.equal(tier.health(), 'failed');
});

t.test('open(): missing bucket, bad endpoint URL, unreachable endpoint', async (t) => {
  const s3 = await server(t);
  const cacheDir = await tempDir(t, 'shadowfs-objtier-');

  const missing = new ObjectTier(spec(s3.endpoint, 'no-such-bucket', cacheDir), FAST);
  t.teardown(() => missing.close());
  await t.rejects(missing.open(), new ShadowfsError(`tier s3: bucket no-such-bucket not found at ${s3.endpoint}`));

  for (const endpoint of ['not a url', 'ftp://127.0.0.1:21', '']) {
    const bad = new ObjectTier(spec(endpoint, s3.bucket, cacheDir), FAST);
    const err = await bad.open().then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof ShadowfsError, `ShadowfsError for ${JSON.stringify(endpoint)}`);
    t.match((err as Error).message, /^tier s3: bad endpoint URL/);
  }

  // A port nobody listens on: grab a free one and release it.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  const down = new ObjectTier(spec(`http://127.0.0.1:${port}`, s3.bucket, cacheDir), FAST);
  t.teardown(() => down.close());
  await t.rejects(down.open(), /^tier s3: endpoint http:\/\/127\.0\.0\.1:\d+ unreachable/);

  t.throws(() => openTier({ ...spec(s3.endpoint, s3.bucket, cacheDir), object: undefined }), ShadowfsError);
  t.type(openTier(spec(s3.endpoint, s3.bucket, cacheDir)), ObjectTier, 'factory builds an ObjectTier');
});

t.test('a stale cached copy (crash between delete and cache removal) is dropped at open', async (t) => {
  const s3 = await server(t);
  const cacheDir = await tempDir(t, 'shadowfs-objtier-');
  const first = new ObjectTier(spec(s3.endpoint, s3.bucket, cacheDir), FAST);
  await first.open();
  await first.put({ fileId: 'ab', index: 0 }, bytes(100));
  await first.close();
  // Simulate the crash: a cached copy with no object behind it.
  await fsp.mkdir(path.join(cacheDir, 'ab', 'abcd'), { recursive: true });
  await fsp.writeFile(path.join(cacheDir, 'ab', 'abcd', '0'), 'stale');

  const tier = await (async () => {
    const x = new ObjectTier(spec(s3.endpoint, s3.bucket, cacheDir), FAST);
    await x.open();
    t.teardown(() => x.close());
    return x;
  })();
  t.notOk(tier.isCached({ fileId: 'abcd', index: 0 }), 'cached copy without an object removed');
  t.ok(tier.isCached({ fileId: 'ab', index: 0 }), 'good cached copy kept');
  await t.rejects(readAll(tier, 'abcd', 0, 10), { code: 'ENOENT' });
});
