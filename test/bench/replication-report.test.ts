import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildReport, readsDuring } from '../../src/bench/replication-report';
import type { ReplicationSample } from '../../src/bench/replication-watch';
import { tempDir } from '../helpers/temp-dir';

function sample(over: Partial<ReplicationSample>): ReplicationSample {
  return {
    tMs: 0, coveredShare: 0, totalBytes: 100, pendingBytes: 100, lagMs: 0, scanned: true, copies: 0, copyBytes: 0,
    failedCopies: 0, discardedCopies: 0, tierUsedBytes: {}, fastPathHits: 0, fastPathMisses: 0,
    fastPathLiveHits: 0, fastPathCopyHits: 0, servedReads: {}, servedBytes: {}, ...over,
  };
}

t.test('readsDuring: native reads of the live file are not tier reads', async (t) => {
  const before = sample({ fastPathHits: 10, fastPathLiveHits: 10, servedReads: { live: 5 } });
  // 100 native reads, 75 from the live file and 25 from copies; 20 redirected, 15 of them from the live volume.
  const after = sample({ fastPathHits: 110, fastPathLiveHits: 85, fastPathCopyHits: 25, servedReads: { live: 20, hdd: 5 } });
  t.same(readsDuring(before, after), { total: 120, fromTier: 5 + 25 });
  // Only live-file native reads: none from a tier.
  t.same(readsDuring(sample({}), sample({ fastPathHits: 50, fastPathLiveHits: 50 })), { total: 50, fromTier: 0 });
  // Samples from before the split was recorded: every native read came from a copy.
  const old = { ...sample({ fastPathHits: 7 }), fastPathLiveHits: undefined, fastPathCopyHits: undefined };
  t.same(readsDuring(sample({}), old), { total: 7, fromTier: 7 });
  t.equal(readsDuring(undefined, after), undefined);
});

const RUN = {
  date: '2026-11-28 12:00 UTC', host: 'vm', kernel: 'k', cpus: 2, memoryGiB: 24, disk: '/dev/vda (ext4)', fio: 'fio-3.33',
  cp: 'GNU cp 9.1', node: 'v20', commit: 'abc', dataBytes: 3 * 2 ** 30, files: '4 x 512M + fg/fg.dat 1G', copyRate: '10GiB',
  extentSize: '1MiB', fioRuntime: 8, fioRamp: 1, fgFile: 'fg/fg.dat', fgSizeBytes: 2 ** 30,
};

async function writeJson(dir: string, name: string, value: unknown): Promise<void> {
  await fsp.writeFile(path.join(dir, name), JSON.stringify(value));
}

async function throughputRun(dir: string, phases: string[] | undefined): Promise<void> {
  await writeJson(dir, 'run.json', { ...RUN, phases });
  await writeJson(dir, 'cp.json', { bytes: RUN.dataBytes, cpMs: 9000, syncMs: 2000 });
  await writeJson(dir, 'repl.json', { mountStartMs: 1000, mountedMs: 2000 });
  await writeJson(dir, 'repl.watch.json', { covered: true, coveredAtMs: 11_000, stoppedBy: 'covered', samples: 90, last: sample({ copyBytes: RUN.dataBytes }) });
}

t.test('a throughput-only run reports the other phases as not run, not as failures', async (t) => {
  const dir = await tempDir(t);
  await throughputRun(dir, ['throughput']);
  const report = buildReport(dir);
  t.match(report, /\| shadowfs: `mount` started → `status` says coverage 100% \| 10\.00 \|/);
  t.match(report, /\*\*0\.90×\*\* \(meets ≥ 0\.8\)/);
  t.match(report, /Foreground impact: not run in this run/);
  t.notMatch(report, /FAIL/);
  t.notMatch(report, /fio 4 KiB randread/);
});

t.test('a run from before phases were recorded counts every phase, so missing ones still FAIL', async (t) => {
  const dir = await tempDir(t);
  await throughputRun(dir, undefined);
  const report = buildReport(dir);
  t.match(report, /\| \(a\) without replication .* \| FAIL/);
  t.match(report, /\| for scale: .* \| FAIL/);
});

t.test('a foreground-only run reports throughput as not run', async (t) => {
  const dir = await tempDir(t);
  await writeJson(dir, 'run.json', { ...RUN, phases: ['foreground'] });
  const report = buildReport(dir);
  t.match(report, /Throughput: not run in this run/);
  t.notMatch(report, /`cp -r` \| FAIL/);
  t.match(report, /\| \(a\) without replication .*native live-file reads off.* \| FAIL/);
  t.notMatch(report, /for scale/);
});

t.test('throughput rounds: the headline is the ratio of total times, the detail the median round\'s', async (t) => {
  const dir = await tempDir(t);
  await writeJson(dir, 'run.json', { ...RUN, phases: ['throughput'], rounds: 4 });
  // shadowfs 10 s, 15 s (a slow minute), 9 s, 11 s; cp 9 s, then 9, 9 and 18 s (second in its round):
  // ratios 0.90, 0.60, 1.00, 1.64 (lower median 0.90); totals 45 s / 45 s = 1.00.
  for (const [k, replS, cpS] of [[1, 10, 9], [2, 15, 9], [3, 9, 9], [4, 11, 18]]) {
    await writeJson(dir, `cp.r${k}.json`, { bytes: RUN.dataBytes, cpMs: cpS * 1000, syncMs: 2000 });
    await writeJson(dir, `repl.r${k}.json`, { mountStartMs: 1000, mountedMs: 2000 });
    await writeJson(dir, `repl.r${k}.watch.json`, { covered: true, coveredAtMs: 1000 + replS * 1000, stoppedBy: 'covered', samples: 90, last: sample({ copyBytes: RUN.dataBytes }) });
  }
  const report = buildReport(dir);
  t.match(report, /Round 1 of 4, the median one/);
  t.match(report, /\| shadowfs: `mount` started → `status` says coverage 100% \| 10\.00 \|/, 'the detail is the median round\'s');
  t.match(report, /\| 2 \| shadowfs, then cp \| 9\.00 \| 11\.00 \| 15\.00 \| 0\.60× \| 0\.73× \|/);
  t.match(report, /\| \*\*all 4 rounds\*\* \(as many rounds of each order\) \| \| 45\.00 \| 53\.00 \| 45\.00 \| \*\*1\.00×\*\* \(meets ≥ 0\.8\); rounds 0\.60–1\.64, median 0\.90× \| 1\.18× \|/);
});

t.test('throughput rounds: a round that never reached 100% is shown as failed and left out of the median', async (t) => {
  const dir = await tempDir(t);
  await writeJson(dir, 'run.json', { ...RUN, phases: ['throughput'], rounds: 2 });
  for (const k of [1, 2]) {
    await writeJson(dir, `cp.r${k}.json`, { bytes: RUN.dataBytes, cpMs: 9000, syncMs: 2000 });
    await writeJson(dir, `repl.r${k}.json`, { mountStartMs: 1000, mountedMs: 2000 });
  }
  await writeJson(dir, 'repl.r1.watch.json', { covered: false, coveredAtMs: null, stoppedBy: 'timeout', samples: 90, last: sample({ coveredShare: 0.5 }) });
  await writeJson(dir, 'repl.r2.watch.json', { covered: true, coveredAtMs: 13_000, stoppedBy: 'covered', samples: 90, last: sample({ copyBytes: RUN.dataBytes }) });
  const report = buildReport(dir);
  t.match(report, /\| 1 \| cp, then shadowfs \| 9\.00 \| 11\.00 \| FAIL \| – \| – \|/);
  t.match(report, /\| \*\*all 1 round\*\* \(0 rounds with cp first, 1 with shadowfs first: unbalanced\) \| \| 9\.00 \| 11\.00 \| 12\.00 \| \*\*0\.75×\*\* \(below 0\.8\)/);
});
