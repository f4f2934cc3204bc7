/**
 * Write-around (src/io/write-around.ts) on a real mount: a writer streaming through a file whose
 * extents have cache copies drops those copies instead of patching them, and then writes natively;
 * coverage copies are patched all the same. Bytes must be right everywhere, also after a remount.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, MountOptions, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { readWholeDirect } from '../helpers/direct-read';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
/** 8 MiB: twice the default cutoff (4 MiB). */
const EXTENTS = 128;
const { O_RDWR, O_DIRECT } = fs.constants;

function pattern(len: number, salt: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 131 + salt * 29 + (i >> 10)) & 0xff;
  return b;
}

function status(sb: Sandbox): StatusReport {
  const r = cli(['status', '--json', sb.mnt]);
  if (r.status !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

/** Per extent of the file, the tiers holding a fresh copy. */
function freshTiers(sb: Sandbox, name: string): string[][] {
  const r = cli(['which-tier', '--json', path.join(sb.mnt, name)]);
  if (r.status !== 0) throw new Error(`which-tier failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as WhichTierReport).extents.map((e) => e.fresh);
}

/** Extents of data.bin with a fresh nvme copy. */
function keptOnNvme(sb: Sandbox): number {
  return freshTiers(sb, 'data.bin').filter((tiers) => tiers.includes('nvme')).length;
}

function readDirect(file: string, size: number): Buffer {
  return readWholeDirect(file, size, EXTENT);
}

/** Overwrites the whole file front to back, one extent per write, as a streaming writer does. */
function overwrite(file: string, model: Buffer, salt: number): void {
  const fd = fs.openSync(file, O_RDWR | O_DIRECT);
  try {
    for (let off = 0; off < model.length; off += EXTENT) {
      const data = pattern(EXTENT, salt + off / EXTENT);
      fs.writeSync(fd, data, 0, EXTENT, off);
      data.copy(model, off);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A mount with data.bin, every extent of it copied to nvme (read once, admitted after one read). */
async function mountWithCopies(t: Test, opts: MountOptions, extraWait?: (sb: Sandbox) => boolean) {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1, ...opts });
  const model = pattern(EXTENTS * EXTENT, 1);
  fs.mkdirSync(sb.live, { recursive: true });
  fs.writeFileSync(path.join(sb.live, 'data.bin'), model);
  await vol.start();
  const f = path.join(sb.mnt, 'data.bin');
  if (extraWait) await waitFor(() => extraWait(sb), 'coverage 100%');
  t.ok(readDirect(f, model.length).equals(model), 'first read');
  await waitFor(() => freshTiers(sb, 'data.bin').every((tiers) => tiers.includes('nvme')), 'every extent copied to nvme');
  return { sb, vol, f, model };
}

t.test('a streaming overwrite drops cache copies past the cutoff and goes native; bytes stay right', async (t) => {
  const { sb, vol, f, model } = await mountWithCopies(t, {});
  const before = status(sb);
  overwrite(f, model, 10);
  const after = status(sb);
  const native = (after.nativeWrites?.hits ?? 0) - (before.nativeWrites?.hits ?? 0);
  t.ok(native > 0, `writes past the cutoff went natively (${native} of ${EXTENTS})`);
  t.equal((after.shadow.writtenAround ?? 0) - (before.shadow.writtenAround ?? 0), EXTENTS - keptOnNvme(sb), 'status counts every copy written around');
  const onNvme = freshTiers(sb, 'data.bin').map((tiers) => tiers.includes('nvme'));
  t.ok(onNvme[0], 'an extent written before the run reached the cutoff was patched: its copy is fresh');
  t.notOk(onNvme[EXTENTS - 1], 'the last extent lost its copy');
  const kept = onNvme.filter(Boolean).length;
  t.ok(kept > 0 && kept <= EXTENTS / 2, `copies kept: those written before 4 MiB had streamed (${kept})`);
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'the live file has every write');
  t.ok(readDirect(f, model.length).equals(model), 'the mount too (patched copies and the live file)');
  t.equal(await vol.stop(), 0, 'clean unmount');
  await vol.start();
  t.ok(readDirect(f, model.length).equals(model), 'and after a remount');
});

t.test('--write-around-after off: every copy is patched, nothing goes natively', async (t) => {
  const { sb, f, model } = await mountWithCopies(t, { extraArgs: ['--write-around-after', 'off'] });
  const before = status(sb);
  overwrite(f, model, 20);
  const after = status(sb);
  t.equal((after.nativeWrites?.hits ?? 0) - (before.nativeWrites?.hits ?? 0), 0, 'no native write: every extent has a copy');
  t.ok(freshTiers(sb, 'data.bin').every((tiers) => tiers.includes('nvme')), 'every copy was patched and is fresh');
  t.equal(after.shadow.discardedCopies, before.shadow.discardedCopies, 'none was dropped');
  t.equal(after.shadow.writtenAround ?? 0, 0, 'none written around');
  t.ok(readDirect(f, model.length).equals(model), 'the mount has every write');
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'so does the live file');
});

t.test('coverage copies are patched by a streaming writer; only cache copies are dropped', async (t) => {
  const { sb, f, model } = await mountWithCopies(t, {
    tiers: [{ name: 'nvme', capacity: '64MiB' }, { name: 'hdd', capacity: '64MiB' }],
    coverageTier: 'hdd',
  }, (s) => status(s).coverage?.coveredShare === 1);
  const before = status(sb);
  overwrite(f, model, 30);
  // A coverage copy dropped by the writes would be copied again within moments: give it time.
  await new Promise((r) => setTimeout(r, 1_000));
  const after = status(sb);
  t.equal(after.shadow.copies, before.shadow.copies, 'no copy had to be made again');
  const tiers = freshTiers(sb, 'data.bin');
  t.ok(tiers.every((x) => x.includes('hdd')), 'every extent is still fresh on the coverage tier');
  t.notOk(tiers[EXTENTS - 1].includes('nvme'), 'the cache copy of the last extent was dropped');
  t.equal(after.coverage?.coveredShare, 1, 'coverage stayed at 100%');
  t.ok(readDirect(f, model.length).equals(model), 'the mount has every write');
  t.ok(fs.readFileSync(path.join(sb.live, 'data.bin')).equals(model), 'so does the live file');
});
