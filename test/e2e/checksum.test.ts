/**
 * A shadow copy damaged on its tier (bytes flipped behind shadowfs's back) is detected by its
 * checksum, never served, and made again from a good source.
 */
import { waitFor } from '../helpers/wait';
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;


function copyFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

t.test('a corrupted copy is detected, served around and repaired', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1 });
  const data = Buffer.alloc(8 * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  fs.writeFileSync(path.join(sb.live, 'f.bin'), data);
  await vol.start();
  const f = path.join(sb.mnt, 'f.bin');
  fs.readFileSync(f);
  await waitFor(() => copyFiles(sb.tierDir('nvme')).length === 8, 'eight copies');
  t.equal(await vol.stop(), 0);

  // Flip bytes in the middle of every copy, as a failing disk might.
  for (const copy of copyFiles(sb.tierDir('nvme'))) {
    const fd = fs.openSync(copy, 'r+');
    fs.writeSync(fd, Buffer.from('CORRUPT!'), 0, 8, 1000);
    fs.closeSync(fd);
  }
  await vol.start();
  t.ok(fs.readFileSync(f).equals(data), 'the reader sees the right bytes');
  t.ok(fs.readFileSync(f).equals(data), 'and again');
  const report = JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  t.equal(report.shadow.corruptCopies, 8, 'every damaged copy was caught by its checksum');
  // The reads after the damage was found admit fresh copies again.
  await waitFor(() => {
    const w = JSON.parse(cli(['which-tier', '--json', f]).stdout) as WhichTierReport;
    return w.extents.every((e) => e.fresh.includes('nvme'));
  }, 'copies made again');
  for (const copy of copyFiles(sb.tierDir('nvme'))) {
    t.notOk(fs.readFileSync(copy).includes('CORRUPT!'), `${path.basename(copy)} is a good copy now`);
  }
  t.ok(fs.readFileSync(f).equals(data));
  t.equal(await vol.stop(), 0);
});

t.test('scrub finds damaged copies, drops them, and coverage makes them again', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', tiers: [{ name: 'hdd', capacity: '16MiB' }], coverageTier: 'hdd' });
  const data = Buffer.alloc(6 * EXTENT + 99);
  for (let i = 0; i < data.length; i++) data[i] = (i * 29) & 0xff;
  fs.writeFileSync(path.join(sb.live, 'g.bin'), data);
  await vol.start();
  await waitFor(() => (JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport).coverage?.coveredShare === 1, 'coverage');
  const copies = copyFiles(sb.tierDir('hdd'));
  t.equal(copies.length, 7);
  for (const copy of copies.slice(0, 2)) {
    const fd = fs.openSync(copy, 'r+');
    fs.writeSync(fd, Buffer.from('ROT'), 0, 3, 7);
    fs.closeSync(fd);
  }
  const r = cli(['scrub', '--json', sb.mnt]);
  t.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { checkedCopies: number; badCopies: number };
  t.equal(summary.checkedCopies, 7);
  t.equal(summary.badCopies, 2, 'both damaged copies found');
  const plain = cli(['scrub', sb.mnt]);
  t.match(plain.stdout, /scrub: \d+ copies .* 0 bad/, 'a second scrub finds everything clean');
  await waitFor(() => copyFiles(sb.tierDir('hdd')).length === 7 && copyFiles(sb.tierDir('hdd')).every((c) => !fs.readFileSync(c).includes('ROT')), 'copies made again');
  t.ok(fs.readFileSync(path.join(sb.mnt, 'g.bin')).equals(data));
  t.equal(await vol.stop(), 0);
});

t.test('a copy cut short behind shadowfs\'s back, mapped for native reads, never ends a read early', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1 });
  const data = Buffer.alloc(4 * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 5) & 0xff;
  fs.writeFileSync(path.join(sb.live, 'f.bin'), data);
  await vol.start();
  const f = path.join(sb.mnt, 'f.bin');
  fs.readFileSync(f);
  await waitFor(() => copyFiles(sb.tierDir('nvme')).length === 4, 'four copies');
  const fd = fs.openSync(f, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  t.teardown(() => fs.closeSync(fd));
  const buf = Buffer.alloc(EXTENT);
  const copyHits = (): number => (JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport).fastPath.copyHits ?? 0;
  // Read until the copies are mapped: a first read checks a copy, the next ones are native.
  await waitFor(() => {
    for (let i = 0; i < 4; i++) fs.readSync(fd, buf, 0, EXTENT, i * EXTENT);
    return copyHits() >= 4;
  }, 'reads served natively from the copies');

  // A copy loses its second half (a damaged disk, an operator's mistake).
  for (const copy of copyFiles(sb.tierDir('nvme'))) fs.truncateSync(copy, EXTENT / 2);
  for (let i = 0; i < 4; i++) {
    buf.fill(0);
    const n = fs.readSync(fd, buf, 0, EXTENT, i * EXTENT);
    t.equal(n, EXTENT, `extent ${i}: the read is whole`);
    t.ok(buf.equals(data.subarray(i * EXTENT, (i + 1) * EXTENT)), `extent ${i}: its bytes are right`);
  }
  t.ok(fs.readFileSync(f).equals(data), 'the file reads back');
});
