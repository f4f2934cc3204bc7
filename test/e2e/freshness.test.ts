/**
 * Rule 1: a stale copy is never served. Copies are made, then the bytes change — through the
 * mount, behind its back, and across a remount — and every read must show the new bytes.
 */
import { waitFor } from '../helpers/wait';
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;

function pattern(len: number, salt: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + salt * 17 + (i >> 9)) & 0xff;
  return b;
}

function countCopies(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).length;
}


t.test('writes after a copy was made are always visible, here and after remount', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1 });
  await vol.start();
  const f = path.join(sb.mnt, 'data.bin');
  let model = pattern(16 * EXTENT, 1);
  fs.writeFileSync(f, model);
  t.ok(fs.readFileSync(f).equals(model));
  await waitFor(() => countCopies(sb.tierDir('nvme')) >= 16, 'copies on the nvme tier');
  t.ok(fs.readFileSync(f).equals(model), 'served (now from the tier) unchanged');

  // Overwrite across extent boundaries through the mount.
  const fd = fs.openSync(f, 'r+');
  const patch = pattern(EXTENT + 5000, 9);
  fs.writeSync(fd, patch, 0, patch.length, 3 * EXTENT - 2500);
  fs.closeSync(fd);
  patch.copy(model, 3 * EXTENT - 2500);
  t.ok(fs.readFileSync(f).equals(model), 'the write is visible at once');

  // Grow and shrink: copies of the edge extents must follow.
  fs.truncateSync(f, 5 * EXTENT + 100);
  model = model.subarray(0, 5 * EXTENT + 100);
  t.ok(fs.readFileSync(f).equals(model), 'after shrinking');
  fs.truncateSync(f, 7 * EXTENT);
  const grown = Buffer.alloc(7 * EXTENT);
  model.copy(grown);
  model = grown;
  t.ok(fs.readFileSync(f).equals(model), 'after growing: zeros, no old bytes from a copy');

  const status = cli(['status', '--json', sb.mnt]);
  t.equal(status.status, 0, status.stderr);
  const report = JSON.parse(status.stdout) as StatusReport;
  // Native reads of the live file (extents without a copy) are not reads of the tier.
  const nativeFromCopies = report.fastPath.copyHits ?? 0;
  const fromNvme = (report.served.find((s) => s.source === 'nvme')?.reads ?? 0) + nativeFromCopies;
  t.ok(fromNvme > 0, `reads were served from the nvme tier (${fromNvme}, ${nativeFromCopies} on the fast path)`);
  t.equal(await vol.stop(), 0);
  await vol.start();
  t.ok(fs.readFileSync(f).equals(model), 'after remount');
  await vol.stop();
});

t.test('changes made behind the mount\'s back invalidate the copies', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1, extraArgs: ['--watch-live'] });
  const live = path.join(sb.live, 'oob.bin');
  fs.writeFileSync(live, pattern(8 * EXTENT, 2));
  await vol.start();
  const f = path.join(sb.mnt, 'oob.bin');
  fs.readFileSync(f);
  await waitFor(() => countCopies(sb.tierDir('nvme')) >= 8, 'copies');
  t.ok(fs.readFileSync(f).equals(pattern(8 * EXTENT, 2)));

  // While mounted: another writer changes the live file directly (same size).
  const changed = pattern(8 * EXTENT, 3);
  fs.writeFileSync(live, changed);
  await new Promise((r) => setTimeout(r, 300));
  t.ok(fs.readFileSync(f).equals(changed), 'the out-of-band write is what the mount shows');
  await waitFor(() => countCopies(sb.tierDir('nvme')) >= 8, 'copies again');

  // While unmounted: the change is caught by size/mtime on the next open.
  await vol.stop();
  const again = pattern(8 * EXTENT + 10, 4);
  fs.writeFileSync(live, again);
  await vol.start();
  t.ok(fs.readFileSync(f).equals(again), 'a change made while unmounted is seen after remount');
  await vol.stop();
});

t.test('with --watch-live, copies of a file the mount keeps open are dropped when it changes behind its back', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1, extraArgs: ['--watch-live'] });
  const live = path.join(sb.live, 'held.bin');
  fs.writeFileSync(live, pattern(4 * EXTENT, 5));
  await vol.start();
  const fd = fs.openSync(path.join(sb.mnt, 'held.bin'), 'r');
  const readAll = (): Buffer => {
    const b = Buffer.alloc(4 * EXTENT);
    fs.readSync(fd, b, 0, b.length, 0);
    return b;
  };
  readAll();
  await waitFor(() => countCopies(sb.tierDir('nvme')) >= 4, 'copies');
  t.ok(readAll().equals(pattern(4 * EXTENT, 5)));
  fs.writeFileSync(live, pattern(4 * EXTENT, 6));
  // No open happens here: only the watcher can notice. (The kernel may still serve the open
  // handle from its page cache; what matters is that no stale copy is left to serve from.)
  const placement = (): WhichTierReport => JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'held.bin')]).stdout) as WhichTierReport;
  await waitFor(() => placement().extents.every((e) => e.fresh.length === 0), 'the copies dropped');
  t.pass('the watcher dropped the copies of a file held open');
  fs.closeSync(fd);
  t.ok(fs.readFileSync(path.join(sb.mnt, 'held.bin')).equals(pattern(4 * EXTENT, 6)), 'a new open reads the new bytes');
  t.equal(await vol.stop(), 0);
});

t.test('with --watch-live, a file written natively is watched again once closed', async (t) => {
  // Native writes never reach JS one by one (the volume ignores watcher events for a file it is
  // writing): after the close the watcher must see changes made behind the mount's back again.
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1, extraArgs: ['--watch-live'] });
  const live = path.join(sb.live, 'written.bin');
  fs.writeFileSync(live, pattern(4 * EXTENT, 7));
  await vol.start();
  const model = pattern(4 * EXTENT, 7);
  const wfd = fs.openSync(path.join(sb.mnt, 'written.bin'), 'r+');
  for (let i = 0; i < 20; i++) {
    const b = pattern(4096, 8 + i);
    fs.writeSync(wfd, b, 0, b.length, (i % 4) * EXTENT + 4096);
    b.copy(model, (i % 4) * EXTENT + 4096);
  }
  fs.closeSync(wfd);
  const status = JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as { nativeWrites?: { hits: number } };
  t.ok((status.nativeWrites?.hits ?? 0) > 0, `some writes went natively (${status.nativeWrites?.hits})`);

  const fd = fs.openSync(path.join(sb.mnt, 'written.bin'), 'r');
  const readAll = (): Buffer => {
    const b = Buffer.alloc(4 * EXTENT);
    fs.readSync(fd, b, 0, b.length, 0);
    return b;
  };
  t.ok(readAll().equals(model), 'the writes are there');
  await waitFor(() => countCopies(sb.tierDir('nvme')) >= 4, 'copies');
  fs.writeFileSync(live, pattern(4 * EXTENT, 9));
  const placement = (): WhichTierReport => JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'written.bin')]).stdout) as WhichTierReport;
  await waitFor(() => placement().extents.every((e) => e.fresh.length === 0), 'the copies dropped by the watcher');
  t.pass('the watcher saw the change after the native writes ended');
  fs.closeSync(fd);
  t.equal(await vol.stop(), 0);
});
