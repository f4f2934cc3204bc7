/** Pins and hints on a live mount: they change where extents live, and pins survive a remount. */
import { waitFor } from '../helpers/wait';
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;


const placement = (f: string): WhichTierReport => JSON.parse(cli(['which-tier', '--json', f]).stdout) as WhichTierReport;
const allOn = (f: string, tier: string): boolean => placement(f).extents.every((e) => e.fresh.includes(tier));
const noneOn = (f: string, tier: string): boolean => placement(f).extents.every((e) => !e.fresh.includes(tier));

function makeFile(sb: Sandbox, name: string, extents: number): string {
  fs.writeFileSync(path.join(sb.live, name), Buffer.alloc(extents * EXTENT, name.length));
  return path.join(sb.mnt, name);
}

t.test('pin, hint and unpin', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB', admitAfter: 1,
    tiers: [{ name: 'nvme', capacity: '512KiB' }, { name: 'ssd', capacity: '8MiB' }],
  });
  const pinned = makeFile(sb, 'pinned.db', 4);
  const hinted = makeFile(sb, 'report.db', 6);
  const other = makeFile(sb, 'other.db', 16);
  await vol.start();

  let r = cli(['pin', pinned, '--tier', 'nvme']);
  t.equal(r.status, 0, r.stderr);
  await waitFor(() => allOn(pinned, 'nvme'), 'the pinned file copied to nvme without being read');
  r = cli(['pin', hinted, '--tier', 'ssd']);
  t.equal(r.status, 0, r.stderr);
  await waitFor(() => allOn(hinted, 'ssd'), 'a pin to the slower tier');

  // Reads of another file churn the small nvme tier: the pinned copies stay.
  for (let i = 0; i < 3; i++) fs.readFileSync(other);
  await new Promise((r) => setTimeout(r, 1500));
  t.ok(allOn(pinned, 'nvme'), 'pinned extents were not evicted');

  r = cli(['hint', hinted, '--range', '0-128KiB', '--now', '--duration', '1m']);
  t.equal(r.status, 0, r.stderr);
  await waitFor(() => placement(hinted).extents.slice(0, 3).every((e) => e.fresh.includes('nvme')), 'the hinted range promoted to nvme');
  t.ok(noneOn(hinted, 'nvme') === false && !placement(hinted).extents[5].fresh.includes('nvme'), 'only the hinted range');

  const s = JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  t.same(s.pins.map((p) => p.tier).sort(), ['nvme', 'ssd']);
  t.equal(s.hints, 1);

  r = cli(['hint', hinted, '--at', 'yesterday-ish']);
  t.equal(r.status, 1);
  t.match(r.stderr, /--at "yesterday-ish": expected an ISO time/);
  r = cli(['pin', pinned, '--tier', 'tape']);
  t.equal(r.status, 1);
  t.match(r.stderr, /no tier named tape/);
  r = cli(['pin', path.join(sb.mnt, 'missing.db'), '--tier', 'nvme']);
  t.equal(r.status, 1);
  t.match(r.stderr, /no such file in the volume/);
  r = cli(['pin', '/etc/passwd', '--tier', 'nvme']);
  t.equal(r.status, 1);
  t.match(r.stderr, /not inside a shadowfs mount/);

  t.equal(await vol.stop(), 0);
  await vol.start();
  t.same((JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport).pins.map((p) => p.path).sort(), ['pinned.db', 'report.db'], 'pins survive a remount');
  r = cli(['unpin', pinned]);
  t.equal(r.status, 0, r.stderr);
  r = cli(['unpin', pinned]);
  t.equal(r.status, 1);
  t.match(r.stderr, /is not pinned/);
  t.equal(await vol.stop(), 0);
});

t.test('promote and demote: one-off moves between tiers', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB', admitAfter: 1000, // reactive admission out of the way: only the moves place copies
    tiers: [{ name: 'nvme', capacity: '256KiB' }, { name: 'ssd', capacity: '4MiB' }, { name: 'hdd', capacity: '8MiB', cls: 'hdd' }],
  });
  const f = makeFile(sb, 'data.db', 8);
  const big = makeFile(sb, 'big.db', 8);
  await vol.start();
  const tiersOf = (): string[][] => placement(f).extents.map((e) => e.fresh);

  let r = cli(['promote', f, '--tier', 'nvme', '--range', '64KiB-191KiB']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /promoted .*data\.db: 2 extents .*2 copied to nvme/);
  t.match(r.stderr, /promote .*data\.db: 2\/2 extents/, 'plain progress lines when not on a terminal');
  t.same(tiersOf().map((x) => x.includes('nvme')), [false, true, true, false, false, false, false, false], 'only the range is on nvme, at once');

  r = cli(['promote', f, '--tier', 'ssd', '--json']);
  t.equal(r.status, 0, r.stderr);
  const moved = JSON.parse(r.stdout) as { totalExtents: number; copiedExtents: number; running: boolean };
  t.same([moved.totalExtents, moved.copiedExtents, moved.running], [8, 8, false]);
  t.ok(allOn(f, 'ssd'), 'the whole file on ssd');

  // nvme -> ssd already holds the bytes: the nvme copies are dropped.
  r = cli(['demote', f, '--tier', 'nvme']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /2 dropped/);
  t.ok(noneOn(f, 'nvme') && allOn(f, 'ssd'));
  // ssd -> hdd, the next cheaper tier, does not: the copies move.
  r = cli(['demote', f, '--tier', 'ssd']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /8 moved to hdd/);
  t.same(tiersOf(), Array.from({ length: 8 }, () => ['hdd']), 'every extent now on hdd only');
  // Nothing cheaper than hdd: the copies are dropped (the live volume has the bytes).
  r = cli(['demote', f, '--tier', 'hdd']);
  t.equal(r.status, 0, r.stderr);
  t.same(tiersOf(), Array.from({ length: 8 }, () => []));
  t.ok(fs.readFileSync(f).equals(Buffer.alloc(8 * EXTENT, 'data.db'.length)), 'the file reads right throughout');

  r = cli(['forecast', sb.mnt]);
  t.equal(r.status, 1);
  t.match(r.stderr, /uses reactive placement, which makes no forecasts \(mount with --placement predictive\)/, 'forecast on a reactive mount: one line');
  t.equal(r.stderr.trim().split('\n').length, 1);

  r = cli(['promote', big, '--tier', 'nvme']);
  t.equal(r.status, 1);
  t.match(r.stderr, /524288 bytes do not fit tier nvme/);
  r = cli(['promote', f, '--tier', 'tape']);
  t.equal(r.status, 1);
  t.match(r.stderr, /no tier named tape/);
  r = cli(['pin', f, '--tier', 'ssd']);
  t.equal(r.status, 0, r.stderr);
  r = cli(['demote', f, '--tier', 'ssd']);
  t.equal(r.status, 1);
  t.match(r.stderr, /is pinned to ssd: unpin it first/);
  t.equal(await vol.stop(), 0);
});
