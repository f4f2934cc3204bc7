/**
 * `shadowfs demote` of copies the mount must keep says why it kept them (an active hint, a write's
 * only copy) instead of "could not be demoted (see the mount's log)", with nothing in the log.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import type { WhichTierReport } from '../../src/control/protocol';
import type { MoveProgress } from '../../src/shadow/one-off-moves';

const EXTENT = 64 * 1024;

/** The error line: what stderr ends with (after the plain progress lines shown off a terminal). */
const lastLine = (stderr: string): string => stderr.trimEnd().split('\n').at(-1) ?? '';
const placement = (f: string): WhichTierReport => JSON.parse(cli(['which-tier', '--json', f]).stdout) as WhichTierReport;
const freshOn = (f: string, tier: string): number => placement(f).extents.filter((e) => e.fresh.includes(tier)).length;

function makeFile(sb: Sandbox, name: string, extents: number): string {
  fs.writeFileSync(path.join(sb.live, name), Buffer.alloc(extents * EXTENT, 7));
  return path.join(sb.mnt, name);
}

t.test('a hinted file: demote keeps its copies and says it is the hint', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB', admitAfter: 1000, // reactive admission out of the way: only the hint places copies
    tiers: [{ name: 'nvme', capacity: '1MiB' }, { name: 'hdd', capacity: '8MiB', cls: 'hdd' }],
  });
  const f = makeFile(sb, 'report.db', 4);
  await vol.start();
  let r = cli(['hint', f, '--now', '--duration', '10m']);
  t.equal(r.status, 0, r.stderr);
  await waitFor(() => freshOn(f, 'nvme') === 4, 'the hinted file promoted to nvme');

  r = cli(['demote', f, '--tier', 'nvme']);
  t.equal(r.status, 1, 'not done: exit 1');
  t.match(r.stdout, /4 kept \(4 are held by an active hint/, 'the summary counts them');
  t.equal(lastLine(r.stderr), 'shadowfs: 4 of 4 extents stay on nvme: 4 are held by an active hint (until it ends)', `says why, in one line: ${r.stderr}`);
  t.notMatch(r.stderr, /see the mount's log/, 'does not send the operator to a log that says nothing');
  t.equal(freshOn(f, 'nvme'), 4, 'the copies stay on nvme');
  t.equal(freshOn(f, 'hdd'), 0, 'and none were copied to hdd to no end');

  r = cli(['demote', f, '--tier', 'nvme', '--json']);
  t.equal(r.status, 1);
  const p = JSON.parse(r.stdout) as MoveProgress;
  t.same(p.keptExtents, { coverageTier: 0, pinned: 0, hinted: 4, soleCopy: 0 }, 'the JSON counts them by reason');
  t.equal(p.failedExtents, 0, 'kept, not failed');
  t.equal(await vol.stop(), 0);
});

t.test("a write's only copy (the coverage tier is full): demote keeps it and says so", async (t) => {
  const { sb, vol } = sandboxedMount(t, (s) => ({
    extentSize: '64KiB', admitAfter: 1000,
    // The coverage tier holds one extent; as fast and dear as nvme, so nvme has no cheaper tier to
    // move to and demote would drop its copies.
    tiers: [{ name: 'nvme', capacity: '1MiB' }],
    tierFlags: [`cov=${s.tierDir('cov')},cap=64KiB,class=nvme`],
    coverageTier: 'cov',
  }));
  await vol.start();
  const f = path.join(sb.mnt, 'written.db');
  fs.writeFileSync(f, Buffer.alloc(4 * EXTENT, 9));
  await waitFor(() => freshOn(f, 'nvme') >= 3, "the writes' copies on nvme");
  const onNvmeOnly = placement(f).extents.filter((e) => e.fresh.length === 1 && e.fresh[0] === 'nvme').length;
  t.ok(onNvmeOnly >= 3, `extents whose only copy is on nvme: ${onNvmeOnly}`);

  const r = cli(['demote', f, '--tier', 'nvme']);
  t.equal(r.status, 1, r.stdout);
  t.match(lastLine(r.stderr), new RegExp(`^shadowfs: ${onNvmeOnly} of 4 extents stay on nvme: ${onNvmeOnly} hold their extent's only copy besides the live volume`), r.stderr);
  t.equal(freshOn(f, 'nvme'), onNvmeOnly, 'those copies stay');
  t.ok(fs.readFileSync(f).equals(Buffer.alloc(4 * EXTENT, 9)), 'the file reads right');
  t.equal(await vol.stop(), 0);
});
