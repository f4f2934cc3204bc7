/**
 * Native reads of the live file (FastPath.mapLiveFiles): an extent no copy holds is mapped to the
 * live file once read, so later reads skip the JS round trip. The live file is always current, so
 * what they return must track every change (through the mount or behind its back); a copy, once
 * published, takes over the mapping; a volume with a coverage tier never reads the live file natively.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountedVolume, MountOptions, cli, makeSandbox, removeSandbox, Sandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import type { StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
const { O_RDONLY, O_DIRECT } = fs.constants;

function pattern(len: number, salt: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 97 + salt * 13 + (i >> 11)) & 0xff;
  return b;
}

function fastPath(sb: Sandbox): StatusReport['fastPath'] {
  const r = cli(['status', '--json', sb.mnt]);
  if (r.status !== 0) throw new Error(`status failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as StatusReport).fastPath;
}

async function mounted(t: Test, opts: MountOptions, model: Buffer): Promise<{ sb: Sandbox; fd: number; read: (off: number, len: number) => Buffer }> {
  const sb = makeSandbox();
  fs.writeFileSync(path.join(sb.live, 'data.bin'), model);
  const vol = new MountedVolume(sb, { extentSize: '64KiB', ...opts });
  let fd = -1;
  t.teardown(async () => {
    if (fd >= 0) fs.closeSync(fd);
    await vol.cleanup();
    removeSandbox(sb);
  });
  await vol.start();
  fd = fs.openSync(path.join(sb.mnt, 'data.bin'), O_RDONLY | O_DIRECT);
  const read = (off: number, len: number): Buffer => {
    const b = Buffer.alloc(len);
    return b.subarray(0, fs.readSync(fd, b, 0, len, off));
  };
  return { sb, fd, read };
}

t.test('extents without a copy are read natively from the live file, and always current', async (t) => {
  let model = pattern(8 * EXTENT, 1);
  const { sb, read } = await mounted(t, { admitAfter: 1_000_000 }, model);
  for (let e = 0; e < 8; e++) t.ok(read(e * EXTENT, EXTENT).equals(model.subarray(e * EXTENT, (e + 1) * EXTENT)), `extent ${e} (through JS, then mapped)`);
  let fp = fastPath(sb);
  t.equal(fp.liveMappedExtents, 8, 'every extent read is mapped to the live file');
  t.equal(fp.mappedExtents, 0, 'no tier copy to map');
  const hitsBefore = fp.hits;
  let bad = 0;
  for (let i = 0; i < 200; i++) {
    const off = ((i * 7919) % (8 * 16)) * 4096;
    if (!read(off, 4096).equals(model.subarray(off, off + 4096))) bad++;
  }
  t.equal(bad, 0, '200 reads, right bytes');
  fp = fastPath(sb);
  t.ok(fp.hits - hitsBefore >= 190, `answered natively (${fp.hits - hitsBefore})`);
  t.ok((fp.liveHits ?? 0) >= 190, `from the live file (${fp.liveHits})`);

  // Through the mount: a write, a grow and a shrink are visible at once.
  const wfd = fs.openSync(path.join(sb.mnt, 'data.bin'), 'r+');
  const patch = pattern(6000, 2);
  fs.writeSync(wfd, patch, 0, patch.length, 3 * EXTENT - 1000);
  patch.copy(model, 3 * EXTENT - 1000);
  t.ok(read(2 * EXTENT, 2 * EXTENT).equals(model.subarray(2 * EXTENT, 4 * EXTENT)), 'a write through the mount');
  fs.ftruncateSync(wfd, 5 * EXTENT + 10);
  model = model.subarray(0, 5 * EXTENT + 10);
  t.ok(read(4 * EXTENT, 4 * EXTENT).equals(model.subarray(4 * EXTENT)), 'after a shrink: short read at the new end');
  fs.closeSync(wfd);
  // Behind the mount's back: the live file is what a live mapping reads.
  const outside = pattern(4096, 3);
  const lfd = fs.openSync(path.join(sb.live, 'data.bin'), 'r+');
  fs.writeSync(lfd, outside, 0, outside.length, EXTENT);
  fs.closeSync(lfd);
  outside.copy(model, EXTENT);
  t.ok(read(EXTENT, 4096).equals(outside), 'a change made in the live directory');
});

t.test('a copy, once published, takes over from the live file', async (t) => {
  const model = pattern(4 * EXTENT, 4);
  const { sb, read } = await mounted(t, { admitAfter: 1 }, model);
  // The first read maps the live file and admits the extent; the copy replaces the mapping.
  t.ok(read(0, 4 * EXTENT).equals(model), 'first read');
  let seen: StatusReport['fastPath'] | undefined;
  await waitFor(() => (seen = fastPath(sb)).mappedExtents === 4, 'the copies mapped in place of the live file', 10_000, 100)
    .catch((err: Error) => { throw new Error(`${err.message}; last fastPath ${JSON.stringify(seen)}; status ${cli(['status', '--json', sb.mnt]).stdout}`); });
  const before = fastPath(sb);
  t.equal(before.liveMappedExtents, 0, 'no live mapping left');
  for (let i = 0; i < 50; i++) t.ok(read((i % 64) * 4096, 4096).equals(model.subarray((i % 64) * 4096, (i % 64) * 4096 + 4096)), `read ${i}`);
  const after = fastPath(sb);
  t.ok(after.hits - before.hits >= 45, 'answered natively');
  t.equal(after.liveHits, before.liveHits, 'from the copies, not the live file');
});

t.test('copies published while the file is locked (other extents being copied) still take over', async (t) => {
  // Many copies of one file at once: each reads its extent under the file's write lock, so most
  // are published while another holds it; mapping them must wait for the lock, not give up.
  const N = 48;
  const model = pattern(N * EXTENT, 6);
  const { sb, read } = await mounted(t, { admitAfter: 1 }, model);
  t.ok(read(0, N * EXTENT).equals(model), 'first read (through JS: maps the live file, admits every extent)');
  let seen: StatusReport['fastPath'] | undefined;
  await waitFor(() => (seen = fastPath(sb)).mappedExtents === N, `all ${N} copies mapped`, 15_000, 100)
    .catch((err: Error) => { throw new Error(`${err.message}; last fastPath ${JSON.stringify(seen)}`); });
  t.equal(seen?.liveMappedExtents, 0, 'no live mapping left');
});

t.test('with a coverage tier (failover), the live file is never read natively', async (t) => {
  const model = pattern(4 * EXTENT, 5);
  const { sb, read } = await mounted(t, { admitAfter: 1_000_000, tiers: [{ name: 'nvme', capacity: '64MiB' }, { name: 'hdd', capacity: '64MiB', cls: 'hdd' }], coverageTier: 'hdd' }, model);
  for (let i = 0; i < 20; i++) t.ok(read(0, EXTENT).equals(model.subarray(0, EXTENT)), `read ${i}`);
  const fp = fastPath(sb);
  t.equal(fp.liveMappedExtents, 0, 'nothing mapped to the live file');
  t.equal(fp.liveHits ?? 0, 0, 'no native read of it');
});
