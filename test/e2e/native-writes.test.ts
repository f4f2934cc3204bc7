/**
 * The native write path (src/io/native-writes.ts): writes to extents that have no copy are written
 * by the FUSE layer straight to the live file. These tests check that the bytes are right
 * everywhere (mount, live file, copies taken later, after a remount) while that happens, and that
 * it does happen (the status counts native writes).
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, MountedVolume, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { readWholeDirect } from '../helpers/direct-read';
import type { StatusReport } from '../../src/control/protocol';
import { seededRandom } from '../../src/util/seeded-random';

const EXTENT = 64 * 1024;
const { O_RDWR, O_RDONLY, O_DIRECT } = fs.constants;

function pattern(len: number, salt: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 131 + salt * 29 + (i >> 10)) & 0xff;
  return b;
}

function randomInts(seed: number): (n: number) => number {
  const rand = seededRandom(seed);
  return (n) => Math.floor(rand() * n);
}

function status(sb: Sandbox): StatusReport {
  const r = cli(['status', '--json', sb.mnt]);
  if (r.status !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

function nativeHits(sb: Sandbox): number {
  return status(sb).nativeWrites?.hits ?? 0;
}

function copiesOn(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).length;
}

function readDirect(file: string, size: number): Buffer {
  return readWholeDirect(file, size, EXTENT);
}

/** A started mount (64 KiB extents) with data.bin of `extents` extents written through it. */
async function mountWithFile(t: Test, admitAfter: number, extents: number, salt: number): Promise<{ sb: Sandbox; vol: MountedVolume; f: string; model: Buffer }> {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter });
  await vol.start();
  const f = path.join(sb.mnt, 'data.bin');
  const model = pattern(extents * EXTENT, salt);
  fs.writeFileSync(f, model);
  return { sb, vol, f, model };
}

t.test('writes inside the file go natively; growing, shrinking and regrowing keep size and bytes right', async (t) => {
  const setup = await mountWithFile(t, 1_000_000, 8, 1);
  const { sb, f } = setup;
  let model = setup.model;
  const before = nativeHits(sb);
  const fd = fs.openSync(f, O_RDWR | O_DIRECT);
  // A seeded walk over every extent: the first write to an extent goes through JS, the rest natively.
  const next = randomInts(7);
  for (let i = 0; i < 400; i++) {
    const off = next(model.length - 4096);
    const data = pattern(4096, i + 2);
    fs.writeSync(fd, data, 0, data.length, off);
    data.copy(model, off);
  }
  const hits = nativeHits(sb) - before;
  t.ok(hits >= 300, `most writes were written natively (${hits} of 400)`);
  t.ok(readDirect(f, model.length).equals(model), 'the mount shows every write');
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'so does the live file');

  // Appending grows the file: that goes through the mount's write path, which knows the size.
  const tail = pattern(10_000, 99);
  fs.writeSync(fd, tail, 0, tail.length, model.length);
  model = Buffer.concat([model, tail]);
  t.equal(fs.fstatSync(fd).size, model.length, 'size after an append');

  // Shrink, then write where the old end was: the file grows again, with zeros in between.
  fs.ftruncateSync(fd, 3 * EXTENT + 100);
  const far = pattern(4096, 5);
  fs.writeSync(fd, far, 0, far.length, 6 * EXTENT);
  const regrown = Buffer.alloc(6 * EXTENT + far.length);
  model.copy(regrown, 0, 0, 3 * EXTENT + 100);
  far.copy(regrown, 6 * EXTENT);
  model = regrown;
  t.equal(fs.fstatSync(fd).size, model.length, 'size after shrinking and writing past the new end');
  // And writes inside the file go native again afterwards, with the right bytes.
  for (let i = 0; i < 50; i++) {
    const off = next(3 * EXTENT);
    const data = pattern(4096, 500 + i);
    fs.writeSync(fd, data, 0, data.length, off);
    data.copy(model, off);
  }
  fs.closeSync(fd);
  t.ok(readDirect(f, model.length).equals(model), 'the mount matches the model at the end');
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'the live file matches the model');
  t.equal(fs.statSync(f).size, model.length, 'stat through the mount');
});

t.test('extents written natively are copied with their latest bytes; once copied, writes keep the copy fresh', async (t) => {
  const { sb, f, model } = await mountWithFile(t, 1, 4, 3);
  const fd = fs.openSync(f, O_RDWR | O_DIRECT);
  const write = (off: number, salt: number): void => {
    const data = pattern(4096, salt);
    fs.writeSync(fd, data, 0, data.length, off);
    data.copy(model, off);
  };
  const before = nativeHits(sb);
  for (let i = 0; i < 40; i++) write(2 * EXTENT + (i % 16) * 4096, 10 + i);
  t.ok(nativeHits(sb) - before >= 30, 'writes to extent 2 went natively');

  // One read admits every extent (admit after 1 read): the copies must carry the native writes.
  t.ok(readDirect(f, model.length).equals(model), 'read through the mount');
  await waitFor(() => copiesOn(sb.tierDir('nvme')) >= 4, 'every extent copied to nvme');
  t.ok(readDirect(f, model.length).equals(model), 'read again, now from the copies');
  const s1 = status(sb);
  const fromTier = s1.served.filter((s) => s.source !== 'live').reduce((a, s) => a + s.reads, 0) + s1.fastPath.hits;
  t.ok(fromTier > 0, `reads came from the copies (${fromTier})`);

  // With a copy, writes go through the mount's write path (which patches the copy), not natively.
  const hitsBefore = nativeHits(sb);
  for (let i = 0; i < 20; i++) write(2 * EXTENT + ((i * 5) % 16) * 4096, 200 + i);
  t.equal(nativeHits(sb), hitsBefore, 'no native write to an extent that has a copy');
  t.ok(readDirect(f, model.length).equals(model), 'the copy was kept fresh');
  fs.closeSync(fd);
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'the live file matches');
});

t.test('native writes racing copies and truncates: no stale byte anywhere, now or after a remount', async (t) => {
  // Every read admits its extent (a copy is taken, revoking native writes to it) and truncates drop
  // copies again, so extents keep going from "no copy" (native writes) to "being copied" and back.
  const setup = await mountWithFile(t, 1, 8, 4);
  const { sb, vol, f } = setup;
  let model = setup.model;
  const wfd = fs.openSync(f, O_RDWR | O_DIRECT);
  const rfd = fs.openSync(f, O_RDONLY | O_DIRECT);
  const before = status(sb);
  const next = randomInts(11);
  const buf = Buffer.alloc(EXTENT);
  const until = Date.now() + 3_000;
  let writes = 0;
  for (let round = 0; Date.now() < until; round++) {
    // Writes go to two neighbouring extents per round, so copies of the others can land meanwhile.
    const window = next(7) * EXTENT;
    for (let i = 0; i < 20; i++) {
      const off = window + next(2 * EXTENT - 4096);
      const data = pattern(1 + next(4096), writes++);
      fs.writeSync(wfd, data, 0, data.length, off);
      const grown = Buffer.alloc(Math.max(model.length, off + data.length));
      model.copy(grown);
      data.copy(grown, off);
      model = grown;
    }
    // A read of a random extent admits it; give the copy a moment.
    fs.readSync(rfd, buf, 0, EXTENT, next(8) * EXTENT);
    await new Promise((r) => setTimeout(r, 25));
    if (round % 5 === 4) {
      const size = EXTENT + next(6 * EXTENT);
      fs.ftruncateSync(wfd, size);
      const cut = Buffer.alloc(size);
      model.copy(cut, 0, 0, Math.min(size, model.length));
      model = cut;
    }
  }
  fs.closeSync(rfd);
  fs.closeSync(wfd);
  const after = status(sb);
  const native = (after.nativeWrites?.hits ?? 0) - (before.nativeWrites?.hits ?? 0);
  const copies = after.shadow.copies - before.shadow.copies;
  t.ok(native > 0, `some of the ${writes} writes went natively (${native})`);
  t.ok(copies > 5, `copies were made meanwhile (${copies})`);
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'the live file matches the model');
  t.ok(readDirect(f, model.length).equals(model), 'the mount matches the model');
  // Read every extent again once copies have landed: the copies themselves must be fresh.
  await new Promise((r) => setTimeout(r, 300));
  t.ok(readDirect(f, model.length).equals(model), 'the mount matches the model, served by the copies');
  t.equal(await vol.stop(), 0, 'clean unmount');
  await vol.start();
  t.ok(readDirect(f, model.length).equals(model), 'after a remount');
  await new Promise((r) => setTimeout(r, 300));
  t.ok(readDirect(f, model.length).equals(model), 'after a remount, copies landed');
});

t.test('a file written natively keeps its other extents\' copies across close and reopen', async (t) => {
  const { sb, f, model } = await mountWithFile(t, 1, 4, 6);
  // Copy extent 0 only.
  const rfd = fs.openSync(f, O_RDONLY | O_DIRECT);
  fs.readSync(rfd, Buffer.alloc(4096), 0, 4096, 0);
  fs.closeSync(rfd);
  await waitFor(() => copiesOn(sb.tierDir('nvme')) >= 1, 'extent 0 copied');
  const fd = fs.openSync(f, O_RDWR | O_DIRECT);
  const hits = nativeHits(sb);
  for (let i = 0; i < 20; i++) {
    const data = pattern(4096, 40 + i);
    fs.writeSync(fd, data, 0, data.length, 3 * EXTENT + (i % 16) * 4096);
    data.copy(model, 3 * EXTENT + (i % 16) * 4096);
  }
  // Let the file's mtime move past anything stored at the first JS write.
  await new Promise((r) => setTimeout(r, 20));
  fs.writeSync(fd, pattern(4096, 77), 0, 4096, 3 * EXTENT);
  pattern(4096, 77).copy(model, 3 * EXTENT);
  t.ok(nativeHits(sb) > hits, 'extent 3 was written natively');
  fs.closeSync(fd);
  const discarded = status(sb).shadow.discardedCopies;
  // Reopening compares the live file with the size and mtime stored at close: our own native
  // writes must not look like a change made behind the mount's back.
  t.ok(readDirect(f, model.length).equals(model), 'reopened: right bytes');
  const s = status(sb);
  t.equal(s.shadow.discardedCopies, discarded, 'no copy dropped as changed outside the mount');
  t.equal(copiesOn(sb.tierDir('nvme')) >= 1, true, 'extent 0 still has its copy');
});
