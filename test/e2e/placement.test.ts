/** Pins and hints on a live mount: they change where extents live, and pins survive a remount. */
import { waitFor } from '../helpers/wait';
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountedVolume, cli, makeSandbox, removeSandbox, Sandbox } from '../helpers/mounted-volume';
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
  const sb = makeSandbox();
  const vol = new MountedVolume(sb, {
    extentSize: '64KiB', admitAfter: 1,
    tiers: [{ name: 'nvme', capacity: '512KiB' }, { name: 'ssd', capacity: '8MiB' }],
  });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
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
