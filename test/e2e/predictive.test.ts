/**
 * The prediction engine and planner driving the shadow manager on a real mount
 * (`--placement predictive`): sequential reads are staged ahead of the reader, repeated reads are
 * promoted, and the bytes are always right.
 */
import { waitFor } from '../helpers/wait';
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';
import type { ForecastReport } from '../../src/predict/forecast-report';

const EXTENT = 64 * 1024;


t.test('predictive placement on a live mount', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB',
    tiers: [{ name: 'nvme', capacity: '4MiB' }, { name: 'ssd', capacity: '16MiB' }],
    extraArgs: ['--placement', 'predictive'],
  });
  const data = Buffer.alloc(32 * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 11) & 0xff;
  fs.writeFileSync(path.join(sb.live, 'scan.bin'), data);
  fs.writeFileSync(path.join(sb.live, 'hot.bin'), data.subarray(0, 4 * EXTENT));
  await vol.start();
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  t.equal(status().placement.policy, 'predictive');

  // A sequential reader, a few extents at a time.
  const fd = fs.openSync(path.join(sb.mnt, 'scan.bin'), 'r');
  const buf = Buffer.alloc(EXTENT);
  for (let i = 0; i < 12; i++) {
    fs.readSync(fd, buf, 0, EXTENT, i * EXTENT);
    t.ok(buf.equals(data.subarray(i * EXTENT, (i + 1) * EXTENT)), `extent ${i} reads right`);
    await new Promise((r) => setTimeout(r, 30));
  }
  fs.closeSync(fd);
  await waitFor(() => status().placement.readahead > 0, 'extents staged ahead of the sequential reader');
  const scan = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'scan.bin')]).stdout) as WhichTierReport;
  const ahead = scan.extents.filter((e) => e.index >= 12 && e.fresh.length > 0).length;
  t.ok(ahead > 0, `${ahead} extents beyond the reader's position already have copies`);

  // A small file read again and again is planned onto a fast tier.
  for (let k = 0; k < 6; k++) {
    t.ok(fs.readFileSync(path.join(sb.mnt, 'hot.bin')).equals(data.subarray(0, 4 * EXTENT)));
    await new Promise((r) => setTimeout(r, 300));
  }
  await waitFor(() => {
    const w = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'hot.bin')]).stdout) as WhichTierReport;
    return w.extents.every((e) => e.fresh.length > 0);
  }, 'the hot file has copies');
  t.ok(status().placement.rounds > 0, 'the planner ran');

  // The forecast over the control socket: every horizon, with the fields the CLI prints.
  const fc = cli(['forecast', sb.mnt, '--json']);
  t.equal(fc.status, 0, fc.stderr);
  const report = JSON.parse(fc.stdout) as ForecastReport;
  t.equal(report.source, sb.mnt);
  t.same(report.horizons.map((h) => h.horizon), ['1m', '10m', '1h']);
  for (const h of report.horizons) t.ok(Array.isArray(h.points) && 'iops' in h.mase && 'latencyUs' in h.mase, `horizon ${h.horizon} has points and MASE`);
  const one = cli(['forecast', sb.mnt, '--horizon', '10m']);
  t.equal(one.status, 0, one.stderr);
  // Without a complete minute in the report, one may complete before this second look.
  t.match(one.stdout, report.asOfMs === null ? /no complete minute of I\/O history yet|horizon 10m:/ : /horizon 10m:/);
  t.notMatch(one.stdout, /horizon 1m:/);
  t.ok(fs.readFileSync(path.join(sb.mnt, 'scan.bin')).equals(data), 'the whole file reads right');
  t.equal(await vol.stop(), 0);
  await vol.start();
  t.equal(status().placement.policy, 'predictive', 'history reopened after a remount');
  t.ok(fs.readFileSync(path.join(sb.mnt, 'hot.bin')).equals(data.subarray(0, 4 * EXTENT)));
  t.equal(await vol.stop(), 0);
});

t.test('a hotter file displaces a hot one from nvme, whose copies move down to ssd', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB',
    tiers: [{ name: 'nvme', capacity: '256KiB' }, { name: 'ssd', capacity: '8MiB' }],
    extraArgs: ['--placement', 'predictive'],
  });
  const a = Buffer.alloc(4 * EXTENT, 'a');
  const b = Buffer.alloc(4 * EXTENT, 'b');
  fs.writeFileSync(path.join(sb.live, 'a.bin'), a);
  fs.writeFileSync(path.join(sb.live, 'b.bin'), b);
  await vol.start();
  const where = (name: string): string[][] => (JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, name)]).stdout) as WhichTierReport).extents.map((e) => e.fresh);
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;

  for (let k = 0; k < 5; k++) {
    fs.readFileSync(path.join(sb.mnt, 'a.bin'));
    await new Promise((r) => setTimeout(r, 200));
  }
  // On a timeout, say what the mount did. (It timed out in two full-suite runs, most likely as
  // test/e2e/native-heat did once: copies that exactly fill nvme were counted twice during their
  // directory fsync and one was evicted; see test/shadow/room-accounting.)
  await waitFor(() => where('a.bin').every((f) => f.includes('nvme')), 'the hot file planned onto nvme').catch((err: Error) => {
    const s = status();
    throw new Error(`${err.message}: a.bin on ${JSON.stringify(where('a.bin'))}; placement ${JSON.stringify(s.placement)}; shadow ${JSON.stringify(s.shadow)}; fastPath ${JSON.stringify(s.fastPath)}`);
  });
  t.ok(where('a.bin').every((f) => !f.includes('ssd')), 'and only there');
  for (let k = 0; k < 25; k++) {
    t.ok(fs.readFileSync(path.join(sb.mnt, 'b.bin')).equals(b));
    await new Promise((r) => setTimeout(r, 100));
  }
  // Readahead of b may evict one of a's copies the ordinary way (least recently read) before the
  // planner gets to it; the rest are moved down by the plan.
  await waitFor(() => where('b.bin').every((f) => f.includes('nvme')) && where('a.bin').every((f) => !f.includes('nvme')) && where('a.bin').filter((f) => f.includes('ssd')).length >= 3,
    'the hotter file on nvme, the displaced one moved to ssd');
  t.ok((status().placement.demoted ?? 0) >= 3, `moves down counted (${status().placement.demoted})`);
  t.ok(fs.readFileSync(path.join(sb.mnt, 'a.bin')).equals(a), 'the moved copies read right');
  t.equal(await vol.stop(), 0);
});
