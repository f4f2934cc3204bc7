/**
 * Bytes written while failed over live only on their shadow copies. When the last of those copies
 * fails, they must not pass for a hole: reads fail with EIO (never zeros), the log names the file,
 * and resync reports the loss. A copy whose tier only fails to read it is kept, so the bytes are
 * back once the tier answers; one with wrong bytes is dropped, and its extent is journaled lost
 * (across remounts) until a write replaces all of it.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, MountedVolume, makeSandbox, removeSandbox, Sandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { failoverConfigFile } from '../helpers/failover-config';
import { startFaultFs, type FaultFs } from '../../fixtures/faultfs/faultfs-client';
import type { StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;

function status(mnt: string): StatusReport {
  const r = cli(['status', '--json', mnt]);
  if (r.status !== 0) throw new Error(`status: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

function copyFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath, e.name));
}

function readAt(f: string, offset: number): Buffer {
  const fd = fs.openSync(f, 'r');
  try {
    const b = Buffer.alloc(EXTENT);
    return b.subarray(0, fs.readSync(fd, b, 0, EXTENT, offset));
  } finally {
    fs.closeSync(fd);
  }
}

function logSays(vol: MountedVolume, re: RegExp): Promise<boolean> {
  return waitFor(() => re.test(vol.output), 'the log line', 5_000).then(() => true, () => false);
}

/** The failover volume (nvme, hdd coverage) with its nvme tier directory over faultfs; torn down whatever happens. */
async function withFaultyNvme(t: Test, prefix: string): Promise<{ sb: Sandbox; ffs: FaultFs; vol: MountedVolume }> {
  const sb = makeSandbox(prefix);
  const nvmeBacking = path.join(sb.root, 'nvme-backing');
  fs.mkdirSync(nvmeBacking);
  fs.mkdirSync(sb.tierDir('nvme'), { recursive: true });
  const ffs = await startFaultFs(nvmeBacking, sb.tierDir('nvme'));
  const vol = new MountedVolume(sb, { configFile: failoverConfigFile(sb, { enabled: false }) });
  t.teardown(async () => {
    await ffs.clear().catch(() => undefined);
    await vol.cleanup();
    await ffs.stop().catch(() => undefined);
    removeSandbox(sb);
  });
  return { sb, ffs, vol };
}

/** Failed over by hand, with `data` written to a new file after the failover: its copies are its only home. */
async function writtenWhileFailedOver(t: Test, vol: MountedVolume, sb: Sandbox, name: string, data: Buffer): Promise<string[]> {
  await vol.start();
  fs.writeFileSync(path.join(sb.mnt, 'kept.bin'), Buffer.alloc(EXTENT, 7));
  await waitFor(() => status(sb.mnt).coverage?.coveredShare === 1, 'full coverage', 30_000, 200);
  const r = cli(['failover', sb.mnt]);
  t.equal(r.status, 0, r.stderr);
  const before = new Set([...copyFiles(sb.tierDir('nvme')), ...copyFiles(sb.tierDir('hdd'))]);
  fs.writeFileSync(path.join(sb.mnt, name), data);
  return [...copyFiles(sb.tierDir('nvme')), ...copyFiles(sb.tierDir('hdd'))].filter((c) => !before.has(c));
}

t.test('a scrub while failed over that drops the last copy of an extent: EIO, not zeros; named; journaled lost until rewritten; resync reports it', async (t) => {
  const sb = makeSandbox();
  const vol = new MountedVolume(sb, { configFile: failoverConfigFile(sb, { enabled: false }) });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });
  const made = await writtenWhileFailedOver(t, vol, sb, 'made-while-failed-over.bin', Buffer.alloc(2 * EXTENT, 9));
  // Every copy the write made, on either tier, loses its bytes.
  t.ok(made.length >= 2, `the write made copies of both extents (${made.length})`);
  for (const c of made) fs.truncateSync(c, 0);

  const scrub = cli(['scrub', '--json', sb.mnt]);
  t.equal(scrub.status, 0, scrub.stderr);
  t.equal((JSON.parse(scrub.stdout) as { badCopies: number }).badCopies, made.length, 'the scrub found every damaged copy');
  for (const index of [0, 1]) {
    const named = new RegExp(`/made-while-failed-over\\.bin: the copy of extent ${index} on \\w+ held 0 of its 65536 bytes; dropped\\. It was the last copy of bytes written there while failed over: they are lost\\. Reads of that extent fail \\(EIO\\)`);
    t.ok(await logSays(vol, named), `extent ${index}: the log names the file and says it has no copy left`);
  }
  const f = path.join(sb.mnt, 'made-while-failed-over.bin');
  t.throws(() => readAt(f, 0), { code: 'EIO' }, 'reads fail rather than return zeros');
  t.throws(() => readAt(f, EXTENT), { code: 'EIO' }, 'in both extents');
  t.ok(fs.readFileSync(path.join(sb.mnt, 'kept.bin')).equals(Buffer.alloc(EXTENT, 7)), 'files with good copies still read');
  t.throws(() => fs.writeFileSync(f, 'x', { flag: 'r+' }), { code: 'EIO' }, 'a write of part of a lost extent fails too: the rest of its bytes are gone');
  const fresh = Buffer.alloc(EXTENT, 5);
  const fd = fs.openSync(f, 'r+');
  fs.writeSync(fd, fresh, 0, EXTENT, EXTENT);
  fs.closeSync(fd);
  t.ok(readAt(f, EXTENT).equals(fresh), 'a write of a whole lost extent makes it whole again');

  t.equal(await vol.stop(), 0);
  await vol.start();
  t.equal(status(sb.mnt).failover?.mode, 'failed-over', 'still failed over after the remount');
  t.throws(() => readAt(f, 0), { code: 'EIO' }, 'the loss is remembered across the remount');
  t.ok(readAt(f, EXTENT).equals(fresh));
  const back = cli(['failback', sb.mnt, '--force']);
  t.equal(back.status, 0, back.stderr);
  await waitFor(() => status(sb.mnt).failover?.mode === 'live', 'failback', 30_000, 200);
  t.ok(await logSays(vol, /made-while-failed-over\.bin: extent 0 has no fresh shadow copy left; its changes made while failed over are lost/),
    'resync reports the loss instead of writing a hole');
  t.ok(fs.readFileSync(path.join(sb.live, 'made-while-failed-over.bin')).subarray(EXTENT).equals(fresh), 'the rewritten extent reached the live volume');
  t.equal(await vol.stop(), 0);
});

t.test('a tier that fails to read the last copy of bytes written while failed over: reads fail (EIO, not zeros) and the copy is kept for when it answers', async (t) => {
  const { sb, ffs, vol } = await withFaultyNvme(t, 'lost-extents-');
  const data = Buffer.alloc(EXTENT, 3);
  const made = await writtenWhileFailedOver(t, vol, sb, 'only-on-nvme.bin', data);
  // The hdd copy loses its bytes and the scrub drops it: the nvme copy is the last.
  const onHdd = made.filter((c) => c.startsWith(sb.tierDir('hdd')));
  t.equal(onHdd.length, 1, 'one copy on hdd');
  fs.truncateSync(onHdd[0], 0);
  const scrub = cli(['scrub', '--json', sb.mnt]);
  t.equal((JSON.parse(scrub.stdout) as { badCopies: number }).badCopies, 1, scrub.stderr);
  const f = path.join(sb.mnt, 'only-on-nvme.bin');

  await ffs.set({ ops: ['read'], error: 'EIO' });
  // The copy's pages cached above faultfs would answer without it.
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  t.throws(() => readAt(f, 0), { code: 'EIO' }, 'the read fails rather than return zeros');
  const again = cli(['scrub', '--json', sb.mnt]);
  t.equal(again.status, 0, again.stderr);
  t.throws(() => readAt(f, 0), { code: 'EIO' }, 'a scrub while the tier fails does not drop the copy either');
  await ffs.clear();
  const back = await waitFor(() => {
    try {
      return readAt(f, 0).equals(data);
    } catch {
      return false;
    }
  }, 'the bytes, once the tier answers', 30_000, 250).then(() => true, () => false);
  t.ok(back, 'the bytes are back once the tier answers');
  t.notMatch(vol.output, /only-on-nvme\.bin.*they are lost/, 'nothing was reported lost');
  t.equal(await vol.stop(), 0);
});

t.test('an fsync while failed over fails when a tier cannot make its copies durable', async (t) => {
  const { sb, ffs, vol } = await withFaultyNvme(t, 'lost-extents-fsync-');
  const made = await writtenWhileFailedOver(t, vol, sb, 'synced.bin', Buffer.alloc(EXTENT, 1));
  t.ok(made.some((c) => c.startsWith(sb.tierDir('nvme'))), 'the write put a copy on nvme');
  await ffs.set({ ops: ['fsync'], error: 'EIO' });
  const fd = fs.openSync(path.join(sb.mnt, 'synced.bin'), 'r+');
  try {
    fs.writeSync(fd, Buffer.alloc(100, 2), 0, 100, 10);
    t.throws(() => fs.fsyncSync(fd), { code: 'EIO' }, 'the fsync reports the failure');
    await ffs.clear();
    t.doesNotThrow(() => fs.fsyncSync(fd), 'and succeeds once the tier syncs again');
  } finally {
    fs.closeSync(fd);
  }
  t.equal(await vol.stop(), 0);
});

t.test('a file open since before the failover: an extent written while failed over whose copies cannot be read fails (EIO), never the live file\'s older bytes', async (t) => {
  const { sb, ffs, vol } = await withFaultyNvme(t, 'lost-extents-stale-');
  await vol.start();
  const f = path.join(sb.mnt, 'old.bin');
  fs.writeFileSync(f, Buffer.alloc(EXTENT, 1));
  await waitFor(() => status(sb.mnt).coverage?.coveredShare === 1, 'full coverage', 30_000, 200);
  // Opened while live: this handle can still read the live file (a forced read) while failed over.
  const fd = fs.openSync(f, 'r');
  try {
    t.equal(cli(['failover', sb.mnt]).status, 0);
    const newer = Buffer.alloc(EXTENT, 2);
    fs.writeFileSync(f, newer, { flag: 'r+' });
    // Its coverage copy loses its bytes (the scrub drops it); the nvme copy is left, and fails reads.
    const onHdd = copyFiles(sb.tierDir('hdd'));
    t.equal(onHdd.length, 1, 'one copy on hdd');
    fs.truncateSync(onHdd[0], 0);
    t.equal((JSON.parse(cli(['scrub', '--json', sb.mnt]).stdout) as { badCopies: number }).badCopies, 1);
    await ffs.set({ ops: ['read'], error: 'EIO' });
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    const b = Buffer.alloc(EXTENT);
    t.throws(() => fs.readSync(fd, b, 0, EXTENT, 0), { code: 'EIO' }, 'EIO, not the live file\'s bytes');
    await ffs.clear();
    const back = await waitFor(() => {
      try {
        return fs.readSync(fd, b, 0, EXTENT, 0) === EXTENT && b.equals(newer);
      } catch {
        return false;
      }
    }, 'the new bytes, once the tier answers', 30_000, 250).then(() => true, () => false);
    t.ok(back, 'the new bytes once the tier answers');
  } finally {
    fs.closeSync(fd);
  }
  t.equal(await vol.stop(), 0);
});
