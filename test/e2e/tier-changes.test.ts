/**
 * Tiers change while mounted: add one, shrink one, drain and remove one under load — nothing
 * lost, no application error; refusals are one clear line.
 */
import { waitFor } from '../helpers/wait';
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import type { StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;


/** Reads and rewrites blocks of a file until told to stop; exits 1 on any error or wrong byte. */
const LOAD = `
const fs = require('fs');
const [file, stopFile] = process.argv.slice(1);
const B = 4096;
let i = 0;
try {
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  while (!fs.existsSync(stopFile)) {
    const k = (i * 7919) % Math.floor(size / B);
    const want = Buffer.alloc(B, (k * 31 + 7) & 0xff);
    fs.writeSync(fd, want, 0, B, k * B);
    const got = Buffer.alloc(B);
    fs.readSync(fd, got, 0, B, ((i * 104729) % Math.floor(size / B)) * B);
    const back = Buffer.alloc(B);
    fs.readSync(fd, back, 0, B, k * B);
    if (!back.equals(want)) { console.error('wrong bytes at block', k); process.exit(1); }
    i++;
  }
  fs.closeSync(fd);
} catch (e) { console.error(e.message); process.exit(1); }
process.exit(0);
`;

t.test('add, resize, drain and remove tiers while mounted', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB',
    admitAfter: 1,
    tiers: [{ name: 'nvme', capacity: '1MiB' }, { name: 'hdd', capacity: '64MiB' }],
    coverageTier: 'hdd',
  });
  const size = 32 * EXTENT;
  const data = Buffer.alloc(size);
  for (let k = 0; k < size / 4096; k++) data.fill((k * 31 + 7) & 0xff, k * 4096, (k + 1) * 4096);
  fs.writeFileSync(path.join(sb.live, 'load.bin'), data);
  await vol.start();
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  await waitFor(() => status().coverage?.coveredShare === 1, 'coverage');

  const stopFile = path.join(sb.root, 'stop');
  const load = spawn(process.execPath, ['-e', LOAD, path.join(sb.mnt, 'load.bin'), stopFile], { stdio: ['ignore', 'inherit', 'inherit'] });
  const loadExit = new Promise<number | null>((r) => load.once('exit', r));
  await new Promise((r) => setTimeout(r, 1000));
  await waitFor(() => (status().tiers.find((x) => x.name === 'nvme')?.usedBytes ?? 0) > 0, 'nvme in use');

  let r = cli(['tier', 'add', sb.mnt, `ssd=${sb.tierDir('ssd')},cap=8MiB`]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /tier ssd added/);
  t.ok(status().tiers.some((x) => x.name === 'ssd' && x.health === 'healthy'), 'ssd joined');

  r = cli(['tier', 'set', sb.mnt, '--name', 'nvme', '--capacity', '256KiB']);
  t.equal(r.status, 0, r.stderr);
  t.ok((status().tiers.find((x) => x.name === 'nvme')?.usedBytes ?? Infinity) <= 256 * 1024, 'nvme shrank to its new capacity');

  r = cli(['tier', 'remove', sb.mnt, '--name', 'nvme']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /tier nvme drained \(\d+ copies dropped\) and removed/);
  t.notOk(status().tiers.some((x) => x.name === 'nvme'), 'nvme is gone');

  r = cli(['tier', 'remove', sb.mnt, '--name', 'hdd']);
  t.equal(r.status, 1);
  t.match(r.stderr, /^shadowfs: tier hdd is the coverage tier; it cannot be removed\n$/);
  r = cli(['tier', 'add', sb.mnt, `bad=${path.join(sb.live, 'inside')},cap=1GiB,class=ssd`]);
  t.equal(r.status, 1);
  t.match(r.stderr, /overlaps the live volume/);
  r = cli(['tier', 'set', sb.mnt, '--name', 'ssd', '--capacity', '12 parsecs']);
  t.equal(r.status, 1);
  t.match(r.stderr, /expected a size like/);

  fs.writeFileSync(stopFile, '');
  t.equal(await loadExit, 0, 'the load ran without an error or a wrong byte');
  t.ok(fs.readFileSync(path.join(sb.mnt, 'load.bin')).equals(fs.readFileSync(path.join(sb.live, 'load.bin'))), 'mount and live agree');
  t.equal(await vol.stop(), 0);
});

t.test('a removed tier is left empty when the command returns, however many copies it held', async (t) => {
  // A tier runs at most 8 ops at once: the drain's removals queue there, and the command must
  // not return before the last one has run (a randomized run found copies left behind).
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '16KiB',
    admitAfter: 1,
    tiers: [{ name: 'nvme', capacity: '64MiB' }, { name: 'hdd', capacity: '64MiB' }],
    coverageTier: 'hdd',
  });
  const data = Buffer.alloc(600 * 16 * 1024, 5);
  fs.writeFileSync(path.join(sb.live, 'f.bin'), data);
  await vol.start();
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  fs.readFileSync(path.join(sb.mnt, 'f.bin'));
  await waitFor(() => (status().tiers.find((x) => x.name === 'nvme')?.usedBytes ?? 0) === data.length, 'every extent copied to nvme', 30_000);
  const r = cli(['tier', 'remove', sb.mnt, '--name', 'nvme']);
  t.equal(r.status, 0, r.stderr);
  const left = fs.readdirSync(sb.tierDir('nvme'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).length;
  t.equal(left, 0, `no copy is left in its directory (${left} are)`);
});
