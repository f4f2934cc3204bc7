/**
 * fallocate(2) through the mount (the patched binding passes it to the volume): allocation grows
 * or keeps the size as asked, a punched hole or zeroed range reads as zeros at once even where the
 * extents had copies on a tier (they go stale, never served), and modes that shift bytes are
 * refused with EOPNOTSUPP, the file left as it was. util-linux's fallocate(1) makes the calls.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { failoverConfigFile } from '../helpers/failover-config';
import { waitFor } from '../helpers/wait';
import { readWholeDirect } from '../helpers/direct-read';
import type { WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;

function fallocate(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync('fallocate', args, { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function pattern(len: number, salt: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + salt * 11 + (i >> 12)) & 0xff;
  return b;
}

function onNvme(sb: Sandbox, name: string): boolean[] {
  const r = cli(['which-tier', '--json', path.join(sb.mnt, name)]);
  return (JSON.parse(r.stdout) as WhichTierReport).extents.map((e) => e.fresh.includes('nvme'));
}

/** A mount whose file `name` (`extents` extents of pattern `salt`) was read once and is copied whole to nvme. */
async function mountedWithCopies(t: Test, name: string, extents: number, salt: number) {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1 });
  const model = pattern(extents * EXTENT, salt);
  fs.mkdirSync(sb.live, { recursive: true });
  fs.writeFileSync(path.join(sb.live, name), model);
  await vol.start();
  const f = path.join(sb.mnt, name);
  t.ok(readWholeDirect(f, model.length, EXTENT).equals(model), 'first read');
  await waitFor(() => onNvme(sb, name).every(Boolean), 'every extent copied to nvme');
  return { sb, vol, f, model, size: model.length };
}

t.test('allocation: the size grows unless kept; the live file is allocated', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB' });
  await vol.start();
  const f = path.join(sb.mnt, 'alloc.bin');
  t.equal(fallocate(['-l', '1MiB', f]).status, 0, 'fallocate -l 1MiB on a new file');
  t.equal(fs.statSync(f).size, 1024 * 1024, 'size through the mount');
  const live = fs.statSync(path.join(sb.live, 'alloc.bin'));
  t.equal(live.size, 1024 * 1024, 'size of the live file');
  t.ok(live.blocks * 512 >= 1024 * 1024, `the live file's blocks are allocated (${live.blocks} blocks)`);
  t.ok(readWholeDirect(f, 1024 * 1024, EXTENT).equals(Buffer.alloc(1024 * 1024)), 'it reads as zeros');
  t.equal(fallocate(['-n', '-o', '1MiB', '-l', '1MiB', f]).status, 0, 'fallocate --keep-size past the end');
  t.equal(fs.statSync(f).size, 1024 * 1024, 'the size is kept');
  t.ok(fs.statSync(path.join(sb.live, 'alloc.bin')).blocks * 512 >= 2 * 1024 * 1024, 'the blocks past the end are allocated');
});

t.test('a punched hole and a zeroed range read as zeros at once, also where copies were; bytes right after a remount', async (t) => {
  const { sb, vol, f, model, size } = await mountedWithCopies(t, 'data.bin', 8, 3);
  t.ok(readWholeDirect(f, size, EXTENT).equals(model), 'read again, from the copies');

  // A hole across the end of extent 1 and the start of extent 2.
  const punch = fallocate(['-p', '-o', String(EXTENT + 4096), '-l', String(EXTENT), f]);
  t.equal(punch.status, 0, `punch hole ${punch.stderr}`);
  model.fill(0, EXTENT + 4096, 2 * EXTENT + 4096);
  // Before any read: a read admits the extents again (after one read here).
  const fresh = onNvme(sb, 'data.bin');
  t.notOk(fresh[1] || fresh[2], 'the copies of the two extents it touched are no longer fresh');
  t.ok(fresh[0] && fresh[3], 'the others are');
  t.ok(readWholeDirect(f, size, EXTENT).equals(model), 'the hole reads as zeros through the mount');
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'and in the live file');

  await waitFor(() => onNvme(sb, 'data.bin').every(Boolean), 'copies made again');
  // Allocating changes no byte: every copy stays fresh, also once the file is opened again.
  t.equal(fallocate(['-n', '-o', String(size), '-l', String(4 * EXTENT), f]).status, 0, 'allocate past the end, size kept');
  t.ok(readWholeDirect(f, size, EXTENT).equals(model), 'reopened and read');
  t.ok(onNvme(sb, 'data.bin').every(Boolean), 'every copy is still fresh');

  // Growing by allocation changes only what lies past the old end: the copies before it stay.
  t.equal(fallocate(['-o', '0', '-l', String(size + EXTENT / 2), f]).status, 0, 'allocate from 0 past the end: the file grows');
  const longer = Buffer.alloc(size + EXTENT / 2);
  model.copy(longer);
  t.same(onNvme(sb, 'data.bin').slice(0, 7), [true, true, true, true, true, true, true], 'the copies of extents 0-6 stay fresh');
  t.ok(readWholeDirect(f, longer.length, EXTENT).equals(longer), 'it reads right, zeros past the old end');

  // Zero a range that runs past the end: the file grows (no --keep-size).
  const zero = fallocate(['-z', '-o', String(7 * EXTENT), '-l', String(2 * EXTENT), f]);
  t.equal(zero.status, 0, `zero range ${zero.stderr}`);
  const grown = Buffer.alloc(9 * EXTENT);
  model.copy(grown);
  grown.fill(0, 7 * EXTENT);
  t.equal(fs.statSync(f).size, grown.length, 'the size grew to the end of the range');
  t.ok(readWholeDirect(f, grown.length, EXTENT).equals(grown), 'the zeroed range and the growth read right');

  // Collapsing would shift every byte after the range: refused, nothing changed.
  const collapse = fallocate(['-c', '-o', '0', '-l', String(EXTENT), f]);
  t.not(collapse.status, 0, 'collapse range is refused');
  t.match(collapse.stderr, /not supported/i, `with EOPNOTSUPP (${collapse.stderr.trim()})`);
  t.ok(readWholeDirect(f, grown.length, EXTENT).equals(grown), 'the file is as it was');

  await waitFor(() => onNvme(sb, 'data.bin').every(Boolean), 'copies made again');
  t.ok(readWholeDirect(f, grown.length, EXTENT).equals(grown), 'the new copies hold the zeros');
  t.equal(await vol.stop(), 0, 'clean unmount');
  await vol.start();
  t.ok(readWholeDirect(f, grown.length, EXTENT).equals(grown), 'after a remount');
});

t.test('a hole punched through the mount is the mount\'s own change: the other copies survive the watcher and a remount', async (t) => {
  const { sb, vol, f, model, size } = await mountedWithCopies(t, 'keep.bin', 4, 5);
  // The punch moves the live file's mtime. Had the mount not recorded that as its own change, the
  // live watcher, or the size/mtime check at the next open, would take it for a change behind the
  // mount's back and drop every copy of the file.
  const punch = fallocate(['-p', '-o', String(EXTENT), '-l', String(EXTENT), f]);
  t.equal(punch.status, 0, `punch hole ${punch.stderr}`);
  model.fill(0, EXTENT, 2 * EXTENT);
  t.same(onNvme(sb, 'keep.bin'), [true, false, true, true], 'only the punched extent\'s copy went stale');
  // Allocating past the end, size kept, changes no byte, but it moves the mtime too.
  const mtime = fs.statSync(path.join(sb.live, 'keep.bin')).mtimeMs;
  t.equal(fallocate(['-n', '-o', String(size), '-l', String(EXTENT), f]).status, 0, 'allocate past the end, size kept');
  t.not(fs.statSync(path.join(sb.live, 'keep.bin')).mtimeMs, mtime, 'the live file\'s mtime moved');
  t.same(onNvme(sb, 'keep.bin'), [true, false, true, true], 'no copy went stale');
  t.equal(await vol.stop(), 0, 'clean unmount');
  await vol.start();
  fs.closeSync(fs.openSync(f, 'r')); // the open compares the live file with the mount's record
  t.same(onNvme(sb, 'keep.bin'), [true, false, true, true], 'after a remount and an open, the other copies are still fresh');
  t.ok(readWholeDirect(f, size, EXTENT).equals(model), 'and the file reads right');
});

t.test('while failed over, fallocate is refused (EOPNOTSUPP) and the file is left as it was', async (t) => {
  const { sb, vol } = sandboxedMount(t, (sb) => ({ configFile: failoverConfigFile(sb, { enabled: false }) }), 'failover-');
  await vol.start();
  const f = path.join(sb.mnt, 'f.bin');
  const model = pattern(4 * EXTENT, 7);
  fs.writeFileSync(f, model);
  await waitFor(() => JSON.parse(cli(['status', '--json', sb.mnt]).stdout).coverage?.coveredShare === 1, 'full coverage');
  const over = cli(['failover', sb.mnt]);
  t.equal(over.status, 0, `failover: ${over.stderr}`);
  const punch = fallocate(['-p', '-o', String(EXTENT), '-l', String(EXTENT), f]);
  t.not(punch.status, 0, 'punching a hole is refused');
  t.match(punch.stderr, /not supported|unsupported/i, `with EOPNOTSUPP (${punch.stderr.trim()})`);
  t.not(fallocate(['-l', String(8 * EXTENT), f]).status, 0, 'so is growing by allocation');
  t.equal(fs.statSync(f).size, model.length, 'the size is unchanged');
  t.ok(fs.readFileSync(f).equals(model), 'and so are the bytes');
  const back = cli(['failback', sb.mnt, '--force']);
  t.equal(back.status, 0, `failback: ${back.stderr}`);
  t.equal(fallocate(['-p', '-o', String(EXTENT), '-l', String(EXTENT), f]).status, 0, 'after failback it works again');
  model.fill(0, EXTENT, 2 * EXTENT);
  t.ok(fs.readFileSync(f).equals(model), 'the hole reads as zeros');
});
