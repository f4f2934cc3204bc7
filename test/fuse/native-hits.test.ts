/**
 * Native hit counters of the patched fuse-native (FuseMount.drainExtentHits), on a real mount
 * served by this process: reads and writes answered natively are counted per extent (a request
 * once per extent it touches), drained and reset; a released handle's counts wait for the next
 * drain until its fh is declared again.
 *
 * This process serves the mount: it only touches it through fs.promises (libuv's thread pool).
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Errno, FuseHandlers, FuseMount } from '../../src/fuse/binding';

const run = promisify(execFile);
const EXTENT = 64 * 1024;
const SIZE = 4 * EXTENT;
const O_DIRECT = fs.constants.O_DIRECT;

/** Quadruples as `fh:index` → [reads, writes], for comparing regardless of order. */
function hitsOf(quads: Float64Array): Record<string, [number, number]> {
  if (quads.length % 4 !== 0) throw new Error(`not quadruples: ${quads.length} numbers`);
  const out: Record<string, [number, number]> = {};
  for (let q = 0; q < quads.length; q += 4) out[`${quads[q]}:${quads[q + 1]}`] = [quads[q + 2], quads[q + 3]];
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves when p does, or after ms, without keeping the process alive until then. */
function atMost(p: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([p, new Promise((r) => setTimeout(r, ms).unref())]);
}

async function setup(t: Test) {
  const dir = await fsp.mkdtemp('/tmp/shadowfs-native-hits-');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(mnt);
  const backingPath = path.join(dir, 'backing');
  await fsp.writeFile(backingPath, Buffer.alloc(SIZE, 'n'));
  const backingFd = fs.openSync(backingPath, 'r+');
  const data = Buffer.alloc(SIZE, 'j');
  // `/data` gets a new fh per open; `/same` always fh 7, as a reused handle number.
  let nextFh = 10;
  const opened: number[] = [];
  const released: { fh: number; drained: Float64Array | undefined }[] = [];
  let drainAtRelease = false;
  let fm: FuseMount | undefined;
  const handlers: FuseHandlers = {
    getattr: (p, cb) => {
      if (p === '/') return cb(0, { mode: 0o40755, uid: 0, gid: 0, size: 4096, atime: 0, mtime: 0, ctime: 0, nlink: 2 });
      if (p !== '/data' && p !== '/same') return cb(Errno.ENOENT);
      cb(0, { mode: 0o100644, uid: 0, gid: 0, size: SIZE, atime: 0, mtime: 0, ctime: 0, nlink: 1 });
    },
    open: (p, flags, cb) => {
      const fh = p === '/same' ? 7 : nextFh++;
      opened.push(fh);
      cb(0, fh);
    },
    read: (p, fh, buf, len, pos, cb) => cb(data.copy(buf, 0, pos, Math.min(SIZE, pos + len))),
    write: (p, fh, buf, len, pos, cb) => cb(buf.copy(data, pos, 0, len)),
    // As the volume does: a handle's counts are drained before it is forgotten.
    release: (p, fh, cb) => {
      released.push({ fh, drained: drainAtRelease ? fm?.drainExtentHits(fh) : undefined });
      cb(0);
    },
  };
  fm = new FuseMount(mnt, handlers);
  const mount = fm;
  t.teardown(async () => {
    await atMost(mount.unmount().catch(() => undefined), 10_000);
    await run('fusermount', ['-uz', mnt]).catch(() => undefined);
    fs.closeSync(backingFd);
    await fsp.rm(dir, { recursive: true, force: true });
  });
  await mount.mount();
  /** Opens a file of the mount with O_DIRECT and maps all its extents to the backing file. */
  const openMapped = async (name: string, flags = fs.constants.O_RDONLY): Promise<{ h: fsp.FileHandle; fh: number }> => {
    const h = await fsp.open(path.join(mnt, name), flags | O_DIRECT);
    const fh = opened[opened.length - 1];
    mount.setFileMap(fh, EXTENT);
    for (let k = 0; k < 4; k++) mount.mapExtent(fh, k, backingFd, 0);
    return { h, fh };
  };
  const read = async (h: fsp.FileHandle, pos: number, len = 4096): Promise<string> => {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await h.read(buf, 0, len, pos);
    return buf.subarray(0, bytesRead).toString('latin1', 0, 1);
  };
  return { fm: mount, backingFd, openMapped, read, released, setDrainAtRelease: (on: boolean) => (drainAtRelease = on) };
}

t.test('native reads and writes are counted per extent, drained and reset', async (t) => {
  const { fm, backingFd, openMapped, read } = await setup(t);
  t.same(hitsOf(fm.drainExtentHits()), {}, 'nothing yet');
  const { h, fh } = await openMapped('data', fs.constants.O_RDWR);

  for (let k = 0; k < 3; k++) t.equal(await read(h, 4096 * k), 'n', 'served natively');
  t.equal(await read(h, 2 * EXTENT - 2048), 'n', 'a read across extents 1 and 2');
  t.equal(await read(h, 3 * EXTENT + 8192), 'n');
  t.same(hitsOf(fm.drainExtentHits()), { [`${fh}:0`]: [3, 0], [`${fh}:1`]: [1, 0], [`${fh}:2`]: [1, 0], [`${fh}:3`]: [1, 0] },
    'each request once per extent it touched');
  t.same(hitsOf(fm.drainExtentHits()), {}, 'a drain resets the counts');

  // Reads that go to JS are not counted.
  fm.unmapExtent(fh, 3);
  t.equal(await read(h, 3 * EXTENT), 'j', 'an unmapped extent is read by JS');
  t.equal(await read(h, 0), 'n');
  t.same(hitsOf(fm.drainExtentHits()), { [`${fh}:0`]: [1, 0] }, 'only the native read counts');

  // One handle's counts only.
  await read(h, 0);
  await read(h, EXTENT);
  t.same(hitsOf(fm.drainExtentHits(fh + 100)), {}, 'another fh: nothing');
  t.same(hitsOf(fm.drainExtentHits(fh)), { [`${fh}:0`]: [1, 0], [`${fh}:1`]: [1, 0] }, 'drained by fh');
  t.same(hitsOf(fm.drainExtentHits()), {});

  // Native writes: counted as writes, per extent touched.
  fm.setFileWrites(fh, backingFd, SIZE);
  fm.setExtentsWritable(fh, 0, 3, true);
  fm.setNativeWrites(true);
  const hitsBefore = fm.nativeWriteStats().hits;
  await h.write(Buffer.alloc(4096, 'w'), 0, 4096, EXTENT);
  await h.write(Buffer.alloc(8192, 'w'), 0, 8192, 2 * EXTENT - 4096);
  t.equal(fm.nativeWriteStats().hits, hitsBefore + 2, 'both writes were native');
  await read(h, EXTENT);
  t.same(hitsOf(fm.drainExtentHits()), { [`${fh}:1`]: [1, 2], [`${fh}:2`]: [0, 1] }, 'writes counted beside reads');
  fm.setNativeWrites(false);
  await h.close();
});

t.test('a released handle\'s counts are kept for the next drain, until its fh is declared again', async (t) => {
  const { fm, openMapped, read, released, setDrainAtRelease } = await setup(t);

  // Drained in the release handler: the counts are already kept aside, under the same fh.
  setDrainAtRelease(true);
  const a = await openMapped('data');
  await read(a.h, 0);
  await read(a.h, EXTENT);
  await read(a.h, EXTENT + 4096);
  await a.h.close();
  for (let i = 0; i < 50 && !released.some((r) => r.fh === a.fh); i++) await sleep(20);
  const atRelease = released.find((r) => r.fh === a.fh);
  t.ok(atRelease?.drained, 'the release handler ran');
  t.same(hitsOf(atRelease?.drained ?? new Float64Array(0)), { [`${a.fh}:0`]: [1, 0], [`${a.fh}:1`]: [2, 0] }, 'drained at release, by fh');
  t.same(hitsOf(fm.drainExtentHits()), {}, 'and only once');

  // Not drained at release: the next drain of every handle still has them.
  setDrainAtRelease(false);
  const b = await openMapped('same');
  await read(b.h, 3 * EXTENT);
  await b.h.close();
  for (let i = 0; i < 50 && released.filter((r) => r.fh === 7).length < 1; i++) await sleep(20);
  t.same(hitsOf(fm.drainExtentHits()), { '7:3': [1, 0] }, 'a released handle\'s counts come with the next drain');

  // fh 7 again: counts of the earlier fh 7 left undrained are dropped when it is declared anew,
  // so they cannot be taken for the new handle's.
  const c = await openMapped('same');
  await read(c.h, 2 * EXTENT);
  await c.h.close();
  for (let i = 0; i < 50 && released.filter((r) => r.fh === 7).length < 2; i++) await sleep(20);
  const d = await openMapped('same'); // setFileMap(7) again
  t.same(hitsOf(fm.drainExtentHits()), {}, 'the earlier handle\'s counts went with the new declaration');
  await read(d.h, 0);
  t.same(hitsOf(fm.drainExtentHits()), { '7:0': [1, 0] }, 'the new handle counts from zero');
  await d.h.close();

  await fm.unmount();
  t.equal(fm.drainExtentHits().length, 0, 'empty once unmounted');
});
