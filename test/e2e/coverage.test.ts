/**
 * Coverage: the coverage tier reaches a fresh copy of every extent and keeps it under writes —
 * on a directory tier (patched in place by write-through) and on the object tier (re-copied in
 * the background against a real S3-protocol server on loopback).
 */
import { waitFor } from '../helpers/wait';
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, makeSandbox, MountedVolume, removeSandbox, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { startS3Server, useS3Credentials } from '../helpers/s3-server';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';
import { extentPath } from '../../src/tiers/layout';
import { startFaultFs } from '../../fixtures/faultfs/faultfs-client';

const EXTENT = 64 * 1024;


const status = (sb: Sandbox): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;

function seed(sb: Sandbox): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  fs.mkdirSync(path.join(sb.live, 'dir'));
  for (const [name, size] of [['a.bin', 10 * EXTENT + 123], ['dir/b.bin', 3 * EXTENT], ['c.bin', 100]] as const) {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (i * 7 + name.length) & 0xff;
    fs.writeFileSync(path.join(sb.live, name), b);
    files.set(name, b);
  }
  return files;
}

function writeWorkload(sb: Sandbox, files: Map<string, Buffer>, rounds: number): void {
  let x = 12345;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  for (let r = 0; r < rounds; r++) {
    const name = r % 2 ? 'a.bin' : 'dir/b.bin';
    const model = files.get(name) as Buffer;
    const off = rnd(model.length + EXTENT);
    const data = Buffer.alloc(1 + rnd(2 * EXTENT), r & 0xff);
    const fd = fs.openSync(path.join(sb.mnt, name), 'r+');
    fs.writeSync(fd, data, 0, data.length, off);
    fs.closeSync(fd);
    const next = Buffer.alloc(Math.max(model.length, off + data.length));
    model.copy(next);
    data.copy(next, off);
    files.set(name, next);
  }
  fs.writeFileSync(path.join(sb.mnt, 'new.bin'), Buffer.alloc(5 * EXTENT, 9));
  files.set('new.bin', Buffer.alloc(5 * EXTENT, 9));
}

/**
 * Where a read through the mount went wrong, for the failure message: offset, extent, its fresh and
 * stale tiers, and for each directory tier of the sandbox whether its copy of that extent holds the
 * live bytes and whether it holds what the read returned.
 */
function firstDifference(sb: Sandbox, vol: MountedVolume, name: string, got: Buffer, model: Buffer): string {
  let where: string;
  try {
    where = describeDifference(sb, name, got, model);
  } catch (err) {
    where = `(could not describe it: ${(err as Error).message})`;
  }
  // Whether the volume failed over (and back) meanwhile, and what the daemon said last.
  let failover = '?';
  try {
    failover = JSON.stringify(status(sb).failover);
  } catch {
    // the status is an extra; the difference above is the point
  }
  return `${where}; failover ${failover}; daemon output: ${vol.output.slice(-1500)}`;
}

function describeDifference(sb: Sandbox, name: string, got: Buffer, model: Buffer): string {
  let at = 0;
  while (at < Math.min(got.length, model.length) && got[at] === model[at]) at++;
  const index = Math.floor(at / EXTENT);
  const livePath = path.join(sb.live, name);
  const live = fs.readFileSync(livePath);
  const w = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, name)]).stdout) as WhichTierReport;
  const e = w.extents.find((x) => x.index === index);
  const slice = (b: Buffer): Buffer => b.subarray(index * EXTENT, (index + 1) * EXTENT);
  const fileId = fs.statSync(livePath).ino.toString(16);
  const tiers = fs.existsSync(path.join(sb.root, 'tiers')) ? fs.readdirSync(path.join(sb.root, 'tiers')) : [];
  const copies = tiers.map((tier) => {
    const p = extentPath(sb.tierDir(tier), { fileId, index });
    if (!fs.existsSync(p)) return `${tier}: no copy file`;
    const copy = fs.readFileSync(p);
    return `${tier}: copy ${copy.length} B, ${copy.equals(slice(live)) ? 'holds the live bytes' : 'differs from live'}, ${copy.equals(slice(got)) ? 'is what the read returned' : 'is not what the read returned'}`;
  });
  return `size ${got.length} vs ${model.length} (live ${live.length}); first difference at ${at} (extent ${index}: fresh=[${e?.fresh}] stale=[${e?.stale}]); live ${live.equals(model) ? 'matches the model' : 'differs too'}; ${copies.join('; ')}`;
}

function everyExtentOn(sb: Sandbox, files: Map<string, Buffer>, tier: string): boolean {
  for (const name of files.keys()) {
    const w = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, name)]).stdout) as WhichTierReport;
    if (!w.extents.every((e) => e.fresh.includes(tier))) return false;
  }
  return true;
}

t.test('a directory coverage tier reaches 100% and stays there under writes', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB',
    tiers: [{ name: 'nvme', capacity: '256KiB' }, { name: 'hdd', capacity: '64MiB' }],
    coverageTier: 'hdd',
  });
  const files = seed(sb);
  await vol.start();
  await waitFor(() => status(sb).coverage?.coveredShare === 1, 'coverage 100%');
  t.ok(everyExtentOn(sb, files, 'hdd'), 'every extent has a fresh copy on hdd');
  writeWorkload(sb, files, 200);
  await waitFor(() => status(sb).coverage?.coveredShare === 1 && everyExtentOn(sb, files, 'hdd'), 'coverage back at 100% after writes');
  const s = status(sb);
  t.equal(s.coverage?.tier, 'hdd');
  t.ok((s.coverage?.lagMs ?? Infinity) < 30_000, `lag ${s.coverage?.lagMs} ms is bounded`);
  t.ok(s.cost.placementPerMonth > 0, 'cost of the placement is reported');
  for (const [name, model] of files) {
    const got = fs.readFileSync(path.join(sb.mnt, name));
    t.ok(got.equals(model), `${name} reads right${got.equals(model) ? '' : `: ${firstDifference(sb, vol, name, got, model)}`}`);
    t.ok(fs.readFileSync(path.join(sb.live, name)).equals(model), `${name} is right on the live volume`);
  }
  if (process.env.SHADOWFS_DEBUG_PAUSE) await new Promise((r) => setTimeout(r, 60_000));
  t.equal(await vol.stop(), 0);
});

t.test('an object-store coverage tier (real S3 server on loopback) keeps up with writes', async (t) => {
  useS3Credentials();
  const s3 = await startS3Server({ bucket: 'coverage' });
  const sb = makeSandbox();
  const vol = new MountedVolume(sb, {
    extentSize: '64KiB',
    tiers: [{ name: 'nvme', capacity: '256KiB' }],
    tierFlags: [`s3=${s3.endpoint},bucket=coverage,cache=${sb.tierDir('s3cache')},cache-cap=1MiB,cap=1GiB`],
    coverageTier: 's3',
  });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
    await s3.close();
  });
  const files = seed(sb);
  await vol.start();
  await waitFor(() => status(sb).coverage?.coveredShare === 1, 'coverage 100%');
  writeWorkload(sb, files, 100);
  await waitFor(() => status(sb).coverage?.coveredShare === 1 && everyExtentOn(sb, files, 's3'), 'coverage back at 100% on s3').catch((err: Error) => {
    const s = status(sb);
    const missing = [...files.keys()].map((name) => {
      const w = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, name)]).stdout) as WhichTierReport;
      return `${name}: ${w.extents.filter((e) => !e.fresh.includes('s3')).map((e) => `#${e.index} fresh=[${e.fresh}] stale=[${e.stale}]`).join(' ')}`;
    });
    throw new Error(`${err.message}: coverage ${JSON.stringify(s.coverage)}, mode ${s.failover?.mode}, tiers ${JSON.stringify(s.tiers.map((x) => [x.name, x.health]))}; not on s3: ${missing.join('; ')}\n${vol.output.slice(-2000)}`);
  });
  const objects = fs.readdirSync(s3.directory, { recursive: true }).length;
  t.ok(objects > 0, `the S3 server holds the copies (${objects} entries)`);
  for (const [name, model] of files) {
    const got = fs.readFileSync(path.join(sb.mnt, name));
    t.ok(got.equals(model), `${name} reads right${got.equals(model) ? '' : `: ${firstDifference(sb, vol, name, got, model)}`}`);
  }
  t.equal(await vol.stop(), 0);
});

t.test('object tier outage mid-workload: no application error, tier unhealthy, then recovery', async (t) => {
  useS3Credentials();
  const s3 = await startS3Server({ bucket: 'outage' });
  const sb = makeSandbox();
  const vol = new MountedVolume(sb, {
    extentSize: '64KiB',
    tiers: [],
    tierFlags: [`s3=${s3.endpoint},bucket=outage,cache=${sb.tierDir('s3cache')},cache-cap=256KiB,cap=1GiB`],
    coverageTier: 's3',
  });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
    await s3.close();
  });
  const files = seed(sb);
  await vol.start();
  await waitFor(() => status(sb).coverage?.coveredShare === 1, 'coverage 100%');
  await s3.stop();
  // The application keeps working: writes and reads through the mount, no error.
  writeWorkload(sb, files, 60);
  for (const [name, model] of files) t.ok(fs.readFileSync(path.join(sb.mnt, name)).equals(model), `${name} reads right during the outage`);
  await waitFor(() => status(sb).tiers.find((x) => x.name === 's3')?.health === 'failed', 'the object tier marked failed');
  t.ok((status(sb).coverage?.coveredShare ?? 1) < 1, 'coverage shows the lag while the store is down');
  await s3.start();
  await waitFor(() => status(sb).tiers.find((x) => x.name === 's3')?.health === 'healthy', 'the object tier healthy again', 30_000);
  await waitFor(() => status(sb).coverage?.coveredShare === 1 && everyExtentOn(sb, files, 's3'), 'coverage caught up', 30_000);
  for (const [name, model] of files) t.ok(fs.readFileSync(path.join(sb.mnt, name)).equals(model), `${name} reads right after recovery`);
  t.equal(await vol.stop(), 0);
});

t.test('extents waiting for their coverage copy stay pending while their file cannot be opened (EIO): coverage does not read 100% meanwhile', async (t) => {
  const sb = makeSandbox('coverage-eio-');
  const backing = path.join(sb.root, 'backing');
  fs.mkdirSync(backing);
  const data = Buffer.alloc(16 * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 11 + 3) & 0xff;
  fs.writeFileSync(path.join(backing, 'a.bin'), data);
  const ffs = await startFaultFs(backing, sb.live);
  const vol = new MountedVolume(sb, { extentSize: '64KiB', tiers: [{ name: 'hdd', capacity: '64MiB', cls: 'hdd' }], coverageTier: 'hdd' });
  t.teardown(async () => {
    await ffs.clear().catch(() => undefined);
    await vol.cleanup();
    await ffs.stop().catch(() => undefined);
    removeSandbox(sb);
  });
  // The scan sees the file (a readdir and an lstat), but no copy can open it.
  await ffs.set({ error: 'EIO', ops: ['open'], paths: ['/a.bin'] });
  await vol.start();
  await waitFor(() => status(sb).coverage?.lastScanMs != null, 'the first scan');
  // Coverage tries to copy it every 100 ms.
  await new Promise((r) => setTimeout(r, 2_000));
  const meanwhile = status(sb).coverage;
  t.ok((meanwhile?.coveredShare ?? 1) < 1, `coverage does not read 100% while the file cannot be read (${JSON.stringify(meanwhile)})`);
  await ffs.clear();
  await waitFor(() => status(sb).coverage?.coveredShare === 1, 'coverage at 100% once the file can be read', 30_000);
  const placement = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'a.bin')]).stdout) as WhichTierReport;
  t.ok(placement.extents.length === 16 && placement.extents.every((x) => x.fresh.includes('hdd')), 'then every extent has its coverage copy');
});
