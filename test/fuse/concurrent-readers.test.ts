/**
 * docs/benchmarks.md problem 1, on a real shadowfs mount: 4 readers holding files open while the
 * read fast path maps more extents than the directory tier caches fds (256). Each mapped extent
 * pins one fd; the tier used to close every fd it opened beyond that at once, before the read that
 * opened it could use it, and reopen it, forever: the read never came back (fio hung, unmount
 * could not finish). Every read here must answer, with the right bytes.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import type { StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
const FILES = 4;
/** 4 x 80 = 320 extents: more than the tier's fd cache (DEFAULT_MAX_OPEN_FDS = 256). */
const EXTENTS_PER_FILE = 80;
const READ = 4096;
const READ_DEADLINE_MS = 10_000;

function status(mnt: string): StatusReport {
  const r = cli(['status', mnt, '--json']);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as StatusReport;
}

function content(file: number): Buffer {
  const b = Buffer.alloc(EXTENTS_PER_FILE * EXTENT);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(((file + 1) * 0x9e3779b1 + i * 2654435761) >>> 0, i);
  return b;
}

/** Rejects instead of waiting forever: a hung FUSE read must fail the test, not stall the suite. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

t.test('4 readers, 320 mapped extents on one tier: every read answers', async (t) => {
  const sb = makeSandbox('readers-');
  const opts = { extentSize: '64KiB', admitAfter: 1, tiers: [{ name: 'nvme', capacity: '64MiB' }] };
  let vol = new MountedVolume(sb, opts);
  let handles: fsp.FileHandle[] = [];
  t.teardown(async () => {
    // The daemon goes first: a read it never answers holds one of this process's 4 libuv threads,
    // and closing the handles needs them too. Killing it aborts those reads.
    await vol.cleanup();
    await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
    removeSandbox(sb);
  });
  const want = Array.from({ length: FILES }, (_, f) => content(f));
  want.forEach((b, f) => fs.writeFileSync(path.join(sb.live, `f${f}`), b));
  const total = FILES * EXTENTS_PER_FILE * EXTENT;

  // First mount: one read of everything puts every extent on the tier.
  await vol.start();
  for (let f = 0; f < FILES; f++) t.ok(fs.readFileSync(path.join(sb.mnt, `f${f}`)).equals(want[f]), `f${f} through the mount`);
  await waitFor(() => status(sb.mnt).tiers[0].usedBytes === total, 'every extent copied to nvme', 20_000, 200);
  t.equal(await vol.stop(), 0, 'first mount stops cleanly');

  // Second mount: the copies are trusted only once the redirector has checked them, so each
  // reader's first read of an extent goes to JS and reads the copy, then the extent is mapped.
  vol = new MountedVolume(sb, opts);
  await vol.start();
  handles = await Promise.all(want.map((_, f) => fsp.open(path.join(sb.mnt, `f${f}`), fs.constants.O_RDONLY | fs.constants.O_DIRECT)));
  const reader = async (f: number, pass: string): Promise<number> => {
    const buf = Buffer.alloc(READ);
    let bad = 0;
    for (let e = 0; e < EXTENTS_PER_FILE; e++) {
      // Mid-extent, each reader at its own offset within the extent.
      const pos = e * EXTENT + ((e * 7 + f * 3) % (EXTENT / READ)) * READ;
      const { bytesRead } = await within(handles[f].read(buf, 0, READ, pos), READ_DEADLINE_MS, `${pass}: f${f} extent ${e}`);
      if (bytesRead !== READ || !buf.equals(want[f].subarray(pos, pos + READ))) bad++;
    }
    return bad;
  };
  const started = Date.now();
  t.same(await Promise.all(want.map((_, f) => reader(f, 'first pass'))), [0, 0, 0, 0], 'first pass (through the redirector): every read answered with the right bytes');
  await waitFor(() => (status(sb.mnt).fastPath.mappedExtents ?? 0) === FILES * EXTENTS_PER_FILE, 'every extent mapped', 10_000, 100);
  const hitsBefore = status(sb.mnt).fastPath.hits;
  t.same(await Promise.all(want.map((_, f) => reader(f, 'second pass'))), [0, 0, 0, 0], 'second pass (native): every read answered with the right bytes');
  const s = status(sb.mnt);
  t.equal(s.fastPath.mappedExtents, FILES * EXTENTS_PER_FILE, `all ${FILES * EXTENTS_PER_FILE} extents mapped at once, more fds pinned than the tier caches`);
  t.ok(s.fastPath.hits - hitsBefore >= FILES * EXTENTS_PER_FILE, `the second pass was served natively (${s.fastPath.hits - hitsBefore} hits)`);
  t.comment(`reads took ${Date.now() - started} ms`);

  await Promise.all(handles.map((h) => h.close()));
  handles = [];
  t.equal(await vol.stop(15_000), 0, 'the mount stops cleanly (no handler left waiting)');
});
