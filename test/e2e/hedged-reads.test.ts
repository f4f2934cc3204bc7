/**
 * Hedged reads on a real mount: the fastest tier is a faultfs mount that turns slow; reads of
 * extents that also have a copy on the coverage tier are answered from there, well before the slow
 * tier would have, and the counters say so.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { startFaultFs } from '../../fixtures/faultfs/faultfs-client';
import type { StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
const EXTENTS = 32;

function status(mnt: string): StatusReport {
  const r = cli(['status', mnt, '--json']);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as StatusReport;
}

t.test('a tier that turns slow is hedged around', async (t) => {
  const sb = makeSandbox('hedge-');
  const nvmeBacking = path.join(sb.root, 'nvme-backing');
  fs.mkdirSync(nvmeBacking);
  fs.mkdirSync(sb.tierDir('nvme'), { recursive: true });
  const ffs = await startFaultFs(nvmeBacking, sb.tierDir('nvme'));
  // Every read must reach the redirector (the native fast path would read the slow tier itself).
  const saved = process.env.SHADOWFS_NO_FASTPATH;
  process.env.SHADOWFS_NO_FASTPATH = '1';
  const vol = new MountedVolume(sb, { extentSize: '64KiB', admitAfter: 1, coverageTier: 'hdd', tiers: [{ name: 'nvme', capacity: '64MiB' }, { name: 'hdd', capacity: '64MiB' }] });
  t.teardown(async () => {
    if (saved === undefined) delete process.env.SHADOWFS_NO_FASTPATH;
    else process.env.SHADOWFS_NO_FASTPATH = saved;
    await ffs.clear().catch(() => undefined);
    await vol.cleanup();
    await ffs.stop().catch(() => undefined);
    removeSandbox(sb);
  });
  const data = Buffer.alloc(EXTENTS * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  fs.writeFileSync(path.join(sb.live, 'f.bin'), data);
  await vol.start();
  const file = path.join(sb.mnt, 'f.bin');
  await waitFor(() => status(sb.mnt).coverage?.coveredShare === 1, 'full coverage', 30_000, 200);
  // Reads admit every extent to nvme, then more reads give the tier a latency history.
  const onNvme = (): number => {
    const r = cli(['which-tier', file, '--json']);
    const w = JSON.parse(r.stdout) as { extents: { fresh: string[] }[] };
    return w.extents.filter((e) => e.fresh.includes('nvme')).length;
  };
  await waitFor(() => {
    fs.readFileSync(file);
    return onNvme() === EXTENTS;
  }, 'every extent on nvme and hdd', 30_000, 200);
  for (let i = 0; i < 3; i++) t.ok(fs.readFileSync(file).equals(data));
  const before = status(sb.mnt).shadow;

  await ffs.set({ latencyMs: 300, ops: ['read'] });
  // The kernel caches faultfs's pages too: without this the slow tier is never asked.
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  const started = Date.now();
  const got = fs.readFileSync(file);
  const ms = Date.now() - started;
  await ffs.clear();
  t.ok(got.equals(data), 'the bytes are right');
  const after = status(sb.mnt).shadow;
  const issued = (after.hedgesIssued ?? 0) - (before.hedgesIssued ?? 0);
  const won = (after.hedgesWon ?? 0) - (before.hedgesWon ?? 0);
  t.ok(issued >= EXTENTS / 2, `reads slower than nvme's p95 were hedged (${issued})`);
  t.ok(won >= EXTENTS / 2, `and the hdd copy answered first (${won})`);
  t.ok(ms < (EXTENTS * 300) / 2, `the read took ${ms} ms, far less than waiting for the slow tier (${EXTENTS} x 300 ms)`);
});
