/**
 * Coverage follows renames through the mount. Extents waiting for their coverage copy are found by
 * their file's path: renamed, they must stay pending (and be copied), or status reads 100% while
 * the coverage tier lacks them, and a tier holding their only other copy cannot be removed.
 * (Found by a randomized run of tier changes, placements and crashes.)
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';
import { seededRandom } from '../../src/util/seeded-random';

const EXTENT = 16 * 1024;

/** `n` bytes from seed `s`. */
function seededBytes(s: number, n: number): Buffer {
  const r = seededRandom(s);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

t.test('a file renamed while its extents wait for a coverage copy gets them all the same: status does not read 100% before the coverage tier holds every extent', async (t) => {
  // A random run saw `tier remove` refused ("the only copy ... the coverage tier does not hold
  // yet ... Retry when coverage has caught up") while status showed coverage at 100% and the
  // coverage tier had room: after a rename, coverage had dropped the extents it still had to copy.
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '16KiB',
    tiers: [{ name: 'hdd', capacity: '64MiB', cls: 'hdd' }],
    coverageTier: 'hdd',
    // Slow copies: coverage hands the shadow manager at most 256 extents at a time, so the rest of
    // this file's 320 wait (by its path) while the first ones are copied.
    extraArgs: ['--copy-rate', '2MiB'],
  }, 'tiers-fsx-renamed-pending-');
  const data = seededBytes(21, 320 * EXTENT);
  fs.writeFileSync(path.join(sb.live, 'a'), data);
  await vol.start();
  const coverage = (): StatusReport['coverage'] => (JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport).coverage;
  await waitFor(() => (coverage()?.lastScanMs ?? null) !== null && (coverage()?.pendingBytes ?? 0) > 0, 'the first scan');
  fs.renameSync(path.join(sb.mnt, 'a'), path.join(sb.mnt, 'b'));
  await waitFor(() => coverage()?.coveredShare === 1, 'coverage at 100%', 60_000, 100);
  const placement = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'b')]).stdout) as WhichTierReport;
  const uncovered = placement.extents.filter((x) => !x.fresh.includes('hdd')).map((x) => x.index);
  t.equal(uncovered.length, 0, `when status shows 100% coverage, every extent has a fresh copy on the coverage tier (${uncovered.length} of ${placement.extents.length} have none: ${uncovered.slice(0, 5).join(', ')}...)`);
  t.ok(fs.readFileSync(path.join(sb.mnt, 'b')).equals(data), 'the file reads back');
  t.equal(await vol.stop(), 0, 'clean unmount');
});

t.test('written extents whose only copy is on a cache tier, renamed: once the coverage tier has room they are covered, and the cache tier can be removed', async (t) => {
  // What a random run met: `tier remove` refused for "the only copy of N extent(s) written
  // through the mount that the coverage tier does not hold yet", with status at 100% coverage.
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '16KiB',
    // A full coverage tier: the writes' copies land on nvme alone.
    tiers: [{ name: 'nvme', capacity: '1MiB' }, { name: 'hdd', capacity: '32KiB', cls: 'hdd' }],
    coverageTier: 'hdd',
  }, 'tiers-fsx-sole-renamed-');
  await vol.start();
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  const data = seededBytes(22, 8 * EXTENT);
  fs.writeFileSync(path.join(sb.mnt, 'a'), data);
  await new Promise((r) => setTimeout(r, 300));
  t.ok((status().coverage?.coveredShare ?? 1) < 1, `the coverage tier cannot hold it all (coverage ${status().coverage?.coveredShare})`);
  fs.renameSync(path.join(sb.mnt, 'a'), path.join(sb.mnt, 'b'));
  let r = cli(['tier', 'set', sb.mnt, '--name', 'hdd', '--capacity', '64MiB']);
  t.equal(r.status, 0, r.stderr);
  await waitFor(() => status().coverage?.coveredShare === 1, 'coverage at 100%', 30_000);
  const placement = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'b')]).stdout) as WhichTierReport;
  const uncovered = placement.extents.filter((x) => !x.fresh.includes('hdd')).map((x) => x.index);
  t.same(uncovered, [], 'with status at 100%, the coverage tier holds every extent');
  r = cli(['tier', 'remove', sb.mnt, '--name', 'nvme']);
  t.equal(r.status, 0, `nvme drains and goes: ${r.stderr.trim().split('\n').pop()}`);
  t.ok(fs.readFileSync(path.join(sb.mnt, 'b')).equals(data), 'the file reads back');
  t.equal(await vol.stop(), 0, 'clean unmount');
});
