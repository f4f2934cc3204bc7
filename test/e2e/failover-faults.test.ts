/**
 * Real faults under a real mount (faultfs as the live volume):
 *
 * - the live volume's latency ramps up, then it returns EIO, while fio runs a verifying workload:
 *   the watchdog fails the volume over before the first EIO, and fio sees no error, no verify
 *   failure and no op slower than 1 s;
 * - kill -9 of the mount while a resync is replaying the journal (made slow by latency on the live
 *   volume): after the remount the mount still shows everything acknowledged, a second resync
 *   completes, and the backing directory then holds exactly what the mount shows.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CLI, MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import { failoverConfigFile } from '../helpers/failover-config';
import { startFaultFs } from '../../fixtures/faultfs/faultfs-client';
import { HealthTimeline } from '../../fixtures/failover-bench/health-timeline';
import { treeDifferences, treeDigest } from '../../fixtures/failover-bench/tree-digest';
import { runVerifyingFio } from '../../fixtures/failover-bench/verifying-fio';
import { controlRequest } from '../../src/control/control-client';
import type { FailoverStatus } from '../../src/failover/failover-controller';
import type { StatusReport } from '../../src/control/protocol';

const KiB = 1024;

const status = (mnt: string): Promise<StatusReport> => controlRequest(mnt, { command: 'status' }, 10_000) as Promise<StatusReport>;
const health = (mnt: string): Promise<FailoverStatus> => controlRequest(mnt, { command: 'health' }, 10_000) as Promise<FailoverStatus>;

async function waitForCoverage(mnt: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await status(mnt)).coverage?.coveredShare !== 1) {
    if (Date.now() > deadline) throw new Error('no full coverage within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A mount over faultfs; torn down (faults cleared, shadowfs, then faultfs) whatever happens. */
async function rig(t: Test, prefix: string, watchdog: Record<string, unknown>) {
  const sb = makeSandbox(prefix);
  const backing = path.join(sb.root, 'backing');
  fs.mkdirSync(backing);
  const ffs = await startFaultFs(backing, sb.live);
  const vol = new MountedVolume(sb, { configFile: failoverConfigFile(sb, watchdog) });
  t.teardown(async () => {
    await ffs.clear().catch(() => undefined);
    await vol.cleanup();
    await ffs.stop().catch(() => undefined);
    removeSandbox(sb);
  });
  return { sb, backing, ffs, vol };
}

t.test('latency ramps, then EIO: failed over before the first EIO; fio sees no error, no bad block, no op over 1 s', async (t) => {
  // A short-scale watchdog: latency limit 400 ms (op deadline 200 ms), trend over 3 s, horizon 8 s.
  const { sb, ffs, vol } = await rig(t, 'failover-ramp-', {
    probeIntervalMs: '200ms', latencyLimitMs: 400, opTimeoutMs: 1000, horizonMs: '8s', trendWindowMs: '3s', evalWindowMs: '4s',
    errorWindowMs: '2s', baselineWarmupMs: 0, suspectConfirmMs: '1s', minHealthyForFailbackMs: '10min',
  });
  await vol.start();
  await fsp.writeFile(path.join(sb.mnt, 'failover.dat'), randomBytes(4 * 1024 * KiB));
  await waitForCoverage(sb.mnt);

  const timeline = new HealthTimeline(sb.mnt, 100);
  timeline.start();
  t.teardown(() => timeline.stop());
  const fio = runVerifyingFio({ dir: sb.mnt, size: '4M', runtimeSeconds: 16, jsonFile: path.join(sb.root, 'fio.json'), graceMs: 30_000 });
  await new Promise((r) => setTimeout(r, 2_000));
  await ffs.set({ ramp: { fromMs: 0, toMs: 400, overSeconds: 8 } });
  const rampAtMs = Date.now();
  await new Promise((r) => setTimeout(r, 8_000));
  await ffs.set({ error: 'EIO' });
  const eioAtMs = Date.now();
  const r = await fio;
  await timeline.poll();

  t.ok(timeline.failedOverAtMs !== undefined, `failed over (${timeline.failoverReason})`);
  const failedOverAt = timeline.failedOverAtMs ?? Infinity;
  t.ok(failedOverAt > rampAtMs && failedOverAt < eioAtMs,
    `failed over during the ramp, ${((failedOverAt - rampAtMs) / 1000).toFixed(1)} s after it began and ${((eioAtMs - failedOverAt) / 1000).toFixed(1)} s before the first EIO`);
  // (It may have been suspect already before the ramp: a p95 over 3 x a baseline of 1 ms is easy.)
  const into = timeline.firstInto('failed-over', rampAtMs);
  t.ok(into && into.wallMs < eioAtMs, `the health monitor went failed-over during the ramp: ${into?.from} -> failed-over: ${into?.reason}`);
  t.notOk(r.hung, 'fio finished');
  t.equal(r.errors, 0, `no I/O error reached fio ${r.stderrTail}`);
  t.equal(r.verifyFailures, 0, 'every block fio wrote read back as written');
  t.ok(r.writeIos > 100 && r.readIos > 100, `fio did real work (${r.readIos} reads, ${r.writeIos} writes)`);
  t.ok(r.worstLatencyMs < 1000, `worst op ${r.worstLatencyMs.toFixed(0)} ms (under 1 s)`);
  const st = await ffs.status();
  t.ok(st.errorsInjected > 0, 'the live volume did return EIO (to the watchdog\'s probes) once failed over');
});

t.test('kill -9 during resync: after the remount a second resync completes and the live directory holds exactly what the mount shows', async (t) => {
  const { sb, backing, ffs, vol } = await rig(t, 'failover-resync-crash-', { enabled: false, minHealthyForFailbackMs: '10min' });
  await vol.start();
  const m = (p: string): string => path.join(sb.mnt, p);
  const old = randomBytes(2 * 1024 * KiB);
  await fsp.writeFile(m('f.bin'), old);
  await fsp.mkdir(m('d'));
  await fsp.writeFile(m('d/small.txt'), 'before the failover');
  await waitForCoverage(sb.mnt);
  t.equal(cli(['failover', sb.mnt]).status, 0, 'failed over');

  // Dirty data while failed over: every extent of f.bin rewritten, a new file, a changed small one.
  const fresh = randomBytes(old.length);
  const fh = await fsp.open(m('f.bin'), 'r+');
  for (let off = 0; off < fresh.length; off += 256 * KiB) await fh.write(fresh, off, 256 * KiB, off);
  await fh.close();
  const made = randomBytes(1024 * KiB);
  await fsp.writeFile(m('d/new.bin'), made);
  await fsp.appendFile(m('d/small.txt'), ', and after');
  const dirty = (await health(sb.mnt)).dirtyExtents;
  t.ok(dirty >= 32, `${dirty} dirty extents journaled`);

  // A slow live volume: each write the resync makes takes 40 ms, so it runs for seconds.
  await ffs.set({ latencyMs: 40, ops: ['write'] });
  const failback: ChildProcess = spawn(process.execPath, [CLI, 'failback', sb.mnt, '--force', '--json'], { stdio: 'ignore' });
  t.teardown(() => void failback.kill('SIGKILL'));
  let seen: FailoverStatus['resync'] = null;
  const deadline = Date.now() + 20_000;
  while (!(seen && seen.extentsDone >= 8)) {
    if (Date.now() > deadline) throw new Error(`no resync progress within 20 s: ${JSON.stringify(seen)}`);
    seen = (await health(sb.mnt)).resync;
    await new Promise((r) => setTimeout(r, 20));
  }
  await vol.crash();
  t.ok(seen.extentsDone < seen.extentsTotal, `killed mid-resync (${seen.extentsDone}/${seen.extentsTotal} extents replayed)`);
  // The CLI waits for an answer that will never come (the daemon is gone).
  failback.kill('SIGKILL');

  await ffs.clear();
  await vol.start();
  const h = await health(sb.mnt);
  t.equal(h.mode, 'failed-over', 'the remount serves from the shadows, not from the half-resynced live volume');
  t.equal(h.resync, null, 'and no resync runs until one is asked for');
  t.ok((await fsp.readFile(m('f.bin'))).equals(fresh), 'the mount still shows every acknowledged write');
  t.ok((await fsp.readFile(m('d/new.bin'))).equals(made));
  t.equal(await fsp.readFile(m('d/small.txt'), 'utf8'), 'before the failover, and after');

  const back = cli(['failback', sb.mnt, '--force', '--json']);
  t.equal(back.status, 0, `second failback: ${back.stderr}`);
  const after = JSON.parse(back.stdout) as FailoverStatus;
  t.equal(after.mode, 'live', 'failed back');
  t.same(after.lastResync?.conflicts ?? [], [], 'no conflict: what the first resync wrote is not mistaken for an outside change');
  const liveView = treeDigest(backing);
  t.same(Object.keys(liveView).filter((p) => p.includes('shadowfs-conflict')), [], 'no conflict copy was set aside');
  t.same(treeDifferences(liveView, treeDigest(sb.mnt)), [], 'the backing directory holds exactly what the mount shows');
  t.ok(fs.readFileSync(path.join(backing, 'f.bin')).equals(fresh), 'and that is what was written while failed over');
});
