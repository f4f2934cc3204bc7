/**
 * Reads the FUSE layer answers natively (mapped extents on the fastest tier) reach the prediction
 * engine through the drained per-extent counters (src/io/native-heat.ts): files read only natively
 * keep their place on nvme against a competitor read through JS. Without the drain their extents
 * would look cold (the engine would only know the few reads that put them there) and the planner
 * would move one down for the competitor, as in predictive.test.ts (checked: with
 * SHADOWFS_NO_NATIVE_HEAT=1 this test fails).
 *
 * Both ways counts travel are used: a.bin is read through a handle held open (drained every
 * second and before each planning round); c.bin through short-lived handles (their counts kept by
 * the FUSE layer at release and drained before the volume forgets the fh, which the next open
 * reuses), while an idle handle keeps its extents mapped.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
const READ = 4096;
/** Native reads per file and tick (half on each of its two extents). */
const READS = 40;

t.test('native reads keep files on nvme against a competitor read through JS', async (t) => {
  const sb = makeSandbox('native-heat-');
  const vol = new MountedVolume(sb, {
    extentSize: '64KiB',
    tiers: [{ name: 'nvme', capacity: '256KiB' }, { name: 'ssd', capacity: '8MiB' }],
    extraArgs: ['--placement', 'predictive'],
  });
  const held: fsp.FileHandle[] = [];
  t.teardown(async () => {
    await vol.cleanup();
    await Promise.all(held.map((h) => h.close().catch(() => undefined)));
    removeSandbox(sb);
  });
  const content = (seed: number): Buffer => {
    const d = Buffer.alloc(2 * EXTENT);
    for (let i = 0; i < d.length; i++) d[i] = (i * seed + 3) & 0xff;
    return d;
  };
  const data = { a: content(7), c: content(13) };
  const b = Buffer.alloc(EXTENT, 'b');
  fs.writeFileSync(path.join(sb.live, 'a.bin'), data.a);
  fs.writeFileSync(path.join(sb.live, 'c.bin'), data.c);
  fs.writeFileSync(path.join(sb.live, 'b.bin'), b);
  await vol.start();
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  const where = (name: string): string[][] => (JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, name)]).stdout) as WhichTierReport).extents.map((e) => e.fresh);
  const file = (name: 'a' | 'c'): string => path.join(sb.mnt, `${name}.bin`);

  // a and c onto nvme (which they fill), through JS.
  for (let k = 0; k < 4; k++) {
    t.ok(fs.readFileSync(file('a')).equals(data.a) && fs.readFileSync(file('c')).equals(data.c));
    await new Promise((r) => setTimeout(r, 150));
  }
  await waitFor(() => [...where('a.bin'), ...where('c.bin')].every((f) => f[0] === 'nvme'), 'a and c planned onto nvme');

  // Held open with O_DIRECT (no page cache: every read reaches FUSE), their extents get mapped
  // once the redirector has read each copy.
  const buf = Buffer.alloc(READ);
  const readAt = async (h: fsp.FileHandle, name: 'a' | 'c', pos: number): Promise<void> => {
    const { bytesRead } = await h.read(buf, 0, READ, pos);
    if (bytesRead !== READ || !buf.equals(data[name].subarray(pos, pos + READ))) throw new Error(`${name}.bin at ${pos}: wrong bytes`);
  };
  const openDirect = (name: 'a' | 'c'): Promise<fsp.FileHandle> => fsp.open(file(name), fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  const reader = await openDirect('a');
  const keeper = await openDirect('c');
  held.push(reader, keeper);
  for (let e = 0; e < 2; e++) {
    await readAt(reader, 'a', e * EXTENT);
    await readAt(keeper, 'c', e * EXTENT);
  }
  await waitFor(() => (status().fastPath.mappedExtents ?? 0) >= 4, 'a and c mapped for the native read path', 10_000);

  const before = status();
  const roundsBefore = before.placement.rounds;
  // At least 30 ticks (~6 s) and 3 planning rounds: a and c read natively, b (one extent, so
  // nothing is read ahead) through JS, as often as the competitor in predictive.test.ts that
  // displaces a hot file.
  let ticks = 0;
  let badB = 0;
  while (ticks < 30 || status().placement.rounds < roundsBefore + 3) {
    for (let k = 0; k < READS; k++) await readAt(reader, 'a', (k % 2) * EXTENT + (k % 16) * READ);
    const brief = await openDirect('c');
    try {
      for (let k = 0; k < READS; k++) await readAt(brief, 'c', (k % 2) * EXTENT + (k % 16) * READ);
    } finally {
      await brief.close();
    }
    if (!fs.readFileSync(path.join(sb.mnt, 'b.bin')).equals(b)) badB++;
    ticks++;
    await new Promise((r) => setTimeout(r, 150));
    if (ticks > 200) throw new Error('the planner did not run');
  }
  t.equal(badB, 0, `b read right ${ticks} times`);
  const after = status();
  // Exactly: an extent moved off nvme would be unmapped, and its reads would go to JS.
  t.equal(after.fastPath.hits - before.fastPath.hits, ticks * 2 * READS, `every read of a and c was answered natively (${ticks} ticks)`);
  t.equal(after.fastPath.unreported, 0, 'every native access reached the placement policy');
  const placed = { a: where('a.bin'), c: where('c.bin'), b: where('b.bin') };
  t.same([...placed.a, ...placed.c].map((f) => f[0]), ['nvme', 'nvme', 'nvme', 'nvme'], `a and c stay on nvme, every extent (${JSON.stringify(placed)})`);
  t.notOk(placed.b[0].includes('nvme'), 'b, colder than both, is not on nvme');
  t.equal(after.placement.demoted ?? 0, before.placement.demoted ?? 0, 'nothing was moved down');

  await Promise.all(held.splice(0).map((h) => h.close()));
  t.equal(await vol.stop(), 0);
});
