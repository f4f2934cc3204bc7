/**
 * A tier belongs to one volume. At mount a volume removes the copies on its tiers that its map does
 * not name (crash leftovers): a second volume mounted over the same tier directory, or the same
 * bucket and prefix, would take every copy of the first for such leftovers. The owner mark that
 * the first mount leaves makes the second one refuse, in one line, with nothing touched.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, cli, makeSandbox, mountArgs, removeSandbox, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { startS3Server, useS3Credentials } from '../helpers/s3-server';
import { waitFor } from '../helpers/wait';
import type { HasTeardown } from '../helpers/temp-dir';

const KiB = 1024;

function copiesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** A second volume's mount in the foreground: it must fail before mounting, so this returns. */
function mountSecond(t: HasTeardown, args: (sb: Sandbox) => string[]): { sb: Sandbox; status: number | null; stderr: string } {
  const sb = makeSandbox('tier-owner-second-');
  t.teardown(() => {
    spawnSync('fusermount', ['-uz', sb.mnt], { stdio: 'ignore' });
    removeSandbox(sb);
  });
  const r = spawnSync(CLI, args(sb), { encoding: 'utf8', timeout: 30_000 });
  return { sb, status: r.status, stderr: r.stderr };
}

t.test("a second volume refuses a directory tier that holds the first one's copies, and removes none of them", async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1 }, 'tier-owner-first-');
  await vol.start();
  const data = Buffer.alloc(8 * 64 * KiB, 7);
  fs.writeFileSync(path.join(sb.mnt, 'f.bin'), data);
  t.ok(fs.readFileSync(path.join(sb.mnt, 'f.bin')).equals(data));
  await waitFor(() => copiesUnder(sb.tierDir('nvme')).length >= 8, 'copies on nvme');
  const before = copiesUnder(sb.tierDir('nvme'));
  // A copy the first volume is writing right now (under a temporary name): a mount removes such
  // files from its own tiers as crash leftovers, but this one is not the second volume's.
  const inFlight = path.join(path.dirname(before[0]), '.tmp-copy-being-written');
  fs.writeFileSync(inFlight, 'half a copy');

  const second = mountSecond(t, (sb2) => [...mountArgs(sb2, { tiers: [], tierFlags: [`nvme=${sb.tierDir('nvme')},cap=64MiB`] })]);
  t.equal(second.status, 1, 'refused');
  t.match(second.stderr, /tier nvme: directory .* holds another shadowfs volume's copies .*give each volume tiers of its own/, second.stderr);
  t.equal(second.stderr.trim().split('\n').length, 1, 'in one line');
  t.same(copiesUnder(sb.tierDir('nvme')), before, "the first volume's copies are all still there");
  t.ok(fs.existsSync(inFlight), 'and so is the copy it was writing');
  fs.rmSync(inFlight);
  t.ok(fs.readFileSync(path.join(sb.mnt, 'f.bin')).equals(data), 'and it reads its file');

  // The first volume itself mounts again over its own tier.
  t.equal(await vol.stop(), 0);
  await vol.start();
  t.same(copiesUnder(sb.tierDir('nvme')), before, 'its own remount keeps them');
});

t.test("a second volume refuses an object tier's bucket and prefix that hold the first one's copies; another prefix is its own", async (t) => {
  useS3Credentials();
  const s3 = await startS3Server({ bucket: 'owned' });
  t.teardown(() => s3.close());
  const objectTier = (sb: Sandbox, prefix: string): string => `s3=${s3.endpoint},bucket=owned,prefix=${prefix},cache=${sb.tierDir('s3cache')},cache-cap=1MiB,cap=1GiB`;
  const { sb, vol } = sandboxedMount(t, (sb) => ({ extentSize: '64KiB', tierFlags: [objectTier(sb, 'vol1/')], coverageTier: 's3' }), 'tier-owner-first-');
  await vol.start();
  fs.writeFileSync(path.join(sb.mnt, 'f.bin'), Buffer.alloc(3 * 64 * KiB, 9));
  await waitFor(() => (JSON.parse(cli(['status', sb.mnt, '--json']).stdout) as { coverage: { coveredShare: number } }).coverage.coveredShare === 1, 'coverage');

  const second = mountSecond(t, (sb2) => mountArgs(sb2, { extentSize: '64KiB', tierFlags: [objectTier(sb2, 'vol1/')], coverageTier: 's3' }));
  t.equal(second.status, 1, 'refused');
  t.match(second.stderr, /tier s3: owned\/vol1\/ holds another shadowfs volume's copies/, second.stderr);
  const scrub = JSON.parse(cli(['scrub', sb.mnt, '--json']).stdout) as { badCopies: number; checkedCopies: number };
  t.equal(scrub.badCopies, 0, "the first volume's objects are intact");
  t.ok(scrub.checkedCopies >= 3, `and all there (${scrub.checkedCopies} checked)`);
  const ok = mountSecond(t, (sb2) => [...mountArgs(sb2, { extentSize: '64KiB', tierFlags: [objectTier(sb2, 'vol2/')], coverageTier: 's3' }), '--daemon']);
  t.equal(ok.status, 0, `another prefix mounts: ${ok.stderr}`);
  t.equal(spawnSync(CLI, ['unmount', ok.sb.mnt], { encoding: 'utf8' }).status, 0);
});

t.test('a tier drained and removed from its volume is free for another one', async (t) => {
  const { sb, vol } = sandboxedMount(t, { tiers: [{ name: 'nvme', capacity: '4MiB' }, { name: 'ssd', capacity: '8MiB' }] }, 'tier-owner-first-');
  await vol.start();
  const removed = cli(['tier', 'remove', sb.mnt, '--name', 'ssd']);
  t.equal(removed.status, 0, removed.stderr);
  t.notOk(fs.existsSync(path.join(sb.tierDir('ssd'), '.shadowfs-volume')), 'its owner mark is gone');
  const second = mountSecond(t, (sb2) => [...mountArgs(sb2, { tiers: [], tierFlags: [`ssd=${sb.tierDir('ssd')},cap=8MiB`] }), '--daemon']);
  t.equal(second.status, 0, `another volume mounts it: ${second.stderr}`);
  t.equal(spawnSync(CLI, ['unmount', second.sb.mnt], { encoding: 'utf8' }).status, 0);
  const busy = mountSecond(t, (sb3) => mountArgs(sb3, { tiers: [], tierFlags: [`nvme=${sb.tierDir('nvme')},cap=4MiB`] }));
  t.equal(busy.status, 1, 'the tier it still has is still refused');
});

t.test('an object tier removed while its endpoint is down: removed, with a warning that its owner mark stays in the bucket', async (t) => {
  useS3Credentials();
  const s3 = await startS3Server({ bucket: 'gone' });
  t.teardown(() => s3.close());
  const objectTier = (sb: Sandbox): string => `s3=${s3.endpoint},bucket=gone,prefix=vol1/,cache=${sb.tierDir('s3cache')},cache-cap=1MiB,cap=1GiB`;
  const { sb, vol } = sandboxedMount(t, (sb) => ({ extentSize: '64KiB', tierFlags: [objectTier(sb)] }), 'tier-owner-down-');
  await vol.start();
  await s3.stop();
  const removed = cli(['tier', 'remove', sb.mnt, '--name', 's3']);
  t.equal(removed.status, 0, removed.stderr);
  t.match(removed.stdout, /^tier s3 drained .* and removed$/m);
  t.match(removed.stderr, /^shadowfs: warning: tier s3: the owner mark gone\/vol1\/\.shadowfs-volume at http:\/\/127\.0\.0\.1:\d+ could not be deleted \(.*\): until someone deletes it, no other volume can use that bucket and prefix$/m, removed.stderr);
  await s3.start();
  const second = mountSecond(t, (sb2) => mountArgs(sb2, { extentSize: '64KiB', tiers: [], tierFlags: [objectTier(sb2)] }));
  t.equal(second.status, 1, 'as it said, the prefix is still refused to another volume');
  t.equal(await vol.stop(), 0);
});
