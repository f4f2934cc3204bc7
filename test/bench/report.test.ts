import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildReport, median } from '../../src/bench/report';
import { tempDir } from '../helpers/temp-dir';

const RUN = {
  date: '2026-11-28 18:00 UTC', host: 'vm', kernel: 'k', cpus: 2, memoryGiB: 24, disk: '/dev/vda (ext4)', fio: 'fio-3.33',
  mergerfs: '2.33.5', node: 'v20', commit: 'abc', sizePerJob: '256M', runtimeSeconds: 7, rampSeconds: 1, tierCapacity: '2GiB',
  extentSize: '1MiB', admitAfter: '2', mergerfsOptions: 'allow_other', mergerfsDirect: false,
  jobs: ['rand-read'], numjobs: [1], targets: ['raw', 'mergerfs', 'shadowfs'],
};

/** The part of fio's JSON the report reads: one read job with these IOPS (4 KiB blocks). */
function fio(iops: number): string {
  const dir = { io_bytes: iops * 4096, total_ios: iops, bw_bytes: iops * 4096, iops, runtime: 1000, clat_ns: { mean: 1e9 / iops, percentile: { '99.000000': 2e9 / iops } } };
  const idle = { io_bytes: 0, total_ios: 0, bw_bytes: 0, iops: 0, runtime: 0 };
  return JSON.stringify({ 'fio version': 'fio-3.33', jobs: [{ jobname: 'rand-read', error: 0, read: dir, write: idle }] });
}

/** The table's main row for rand-read, split into cells. */
function mainRow(markdown: string): string[] {
  const line = markdown.split('\n').find((l) => l.startsWith('| rand-read | 1 |') && l.includes('×'));
  if (!line) throw new Error(`no main row in:\n${markdown}`);
  return line.split('|').slice(1, -1).map((c) => c.trim());
}

t.test('median: the lower middle value, an actual measurement', async (t) => {
  t.equal(median([]), undefined);
  t.equal(median([3]), 3);
  t.equal(median([5, 1, 3]), 3);
  t.equal(median([4, 1, 3, 2]), 2);
});

t.test('rounds: the ratio is the median of the per-round ratios, IOPS those of the median run', async (t) => {
  const dir = await tempDir(t);
  await fsp.writeFile(path.join(dir, 'run.json'), JSON.stringify({ ...RUN, rounds: 3 }));
  // The machine slows down between rounds: every target in round 2 runs at half speed, so the
  // medians of the targets' IOPS (raw 1000, mergerfs 800, shadowfs 880) come from different
  // rounds, while each round's shadowfs/mergerfs ratio is 1.1, 1.2, 0.9.
  const rounds = [
    { raw: 1000, mergerfs: 1000, shadowfs: 1100 },
    { raw: 500, mergerfs: 400, shadowfs: 480 },
    { raw: 1100, mergerfs: 800, shadowfs: 720 },
  ];
  for (const [k, r] of rounds.entries()) {
    for (const [target, iops] of Object.entries(r)) await fsp.writeFile(path.join(dir, `rand-read.nj1.${target}.r${k + 1}.fio.json`), fio(iops));
  }
  const { markdown, failures } = buildReport(dir);
  t.same(failures, []);
  const cells = mainRow(markdown);
  t.equal(cells[2], '1000', 'raw: its median run');
  t.equal(cells[4], '800', 'mergerfs: its median run');
  t.equal(cells[6], '720', 'shadowfs: its median run');
  t.equal(cells[8], '1.10× (0.90–1.20)', 'shadowfs / mergerfs: median of the paired ratios, with their range');
  t.equal(cells[9], '0.96× (0.65–1.10)', 'shadowfs / raw likewise');
  t.match(markdown, /3 rounds per row/);
});

t.test('rounds: a failed run is listed with its round and left out of the ratio', async (t) => {
  const dir = await tempDir(t);
  await fsp.writeFile(path.join(dir, 'run.json'), JSON.stringify({ ...RUN, rounds: 2 }));
  for (const k of [1, 2]) {
    await fsp.writeFile(path.join(dir, `rand-read.nj1.raw.r${k}.fio.json`), fio(1000));
    await fsp.writeFile(path.join(dir, `rand-read.nj1.mergerfs.r${k}.fio.json`), fio(1000));
  }
  await fsp.writeFile(path.join(dir, 'rand-read.nj1.shadowfs.r1.error'), 'mount failed: no tier\n');
  await fsp.writeFile(path.join(dir, 'rand-read.nj1.shadowfs.r2.fio.json'), fio(1500));
  const { markdown, failures } = buildReport(dir);
  t.same(failures, ['rand-read numjobs=1 shadowfs round 1: mount failed: no tier']);
  t.equal(mainRow(markdown)[8], '1.50×', 'one round left: its ratio, no range');
});

t.test('results from before rounds (no .r<K> in the names) read as one round', async (t) => {
  const dir = await tempDir(t);
  await fsp.writeFile(path.join(dir, 'run.json'), JSON.stringify(RUN));
  await fsp.writeFile(path.join(dir, 'rand-read.nj1.raw.fio.json'), fio(2000));
  await fsp.writeFile(path.join(dir, 'rand-read.nj1.mergerfs.fio.json'), fio(1000));
  await fsp.writeFile(path.join(dir, 'rand-read.nj1.shadowfs.fio.json'), fio(1250));
  const { markdown } = buildReport(dir);
  const cells = mainRow(markdown);
  t.equal(cells[8], '1.25×');
  t.equal(cells[9], '0.63×');
  t.notMatch(markdown, /rounds per row/);
});
