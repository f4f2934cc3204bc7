/** `shadowfs bench` against a real mount: the JSON report's shape and numbers, and one-line refusals. */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import type { BenchReport } from '../../src/bench/run-preset';

t.test('shadowfs bench --preset rand --json', async (t) => {
  const sb = makeSandbox();
  const vol = new MountedVolume(sb);
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });
  await vol.start();
  const r = cli(['bench', sb.mnt, '--preset', 'rand', '--size', '8MiB', '--runtime', '2', '--json'], 120_000);
  t.equal(r.status, 0, `bench succeeds: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as BenchReport;
  t.equal(report.preset, 'rand');
  t.equal(report.mountpoint, sb.mnt);
  t.equal(report.sizeBytes, 8 * 1024 * 1024);
  t.equal(report.runtimeSeconds, 2);
  t.match(report.fio, /^fio-\d/);
  t.same(report.jobs.map((j) => j.name), ['rand-read', 'rand-write'], 'one entry per job section, in order');

  const [reads, writes] = report.jobs;
  t.ok(reads.read, 'the read job read');
  t.equal(reads.write, null, 'and did not write');
  t.ok(writes.write, 'the write job wrote');
  t.equal(writes.read, null, 'and did not read');
  for (const d of [reads.read, writes.write]) {
    if (!d) continue;
    t.ok(d.ios > 0 && d.iops > 0 && d.bandwidthBytesPerSec > 0, 'positive ios, IOPS, bandwidth');
    t.ok(d.p50LatencyUs !== null && d.p50LatencyUs > 0, 'p50 latency positive');
    t.ok(d.p99LatencyUs !== null && d.p50LatencyUs !== null && d.p99LatencyUs >= d.p50LatencyUs, 'p99 >= p50');
    t.ok(Math.abs(d.bandwidthBytesPerSec - d.iops * 4096) / d.bandwidthBytesPerSec < 0.05, 'bandwidth is IOPS x 4 KiB');
  }

  const sources = new Set(['live', 'nvme']);
  for (const [what, served] of [['read job', reads.servedBy], ['whole preset', report.servedBy]] as const) {
    t.ok(served.length > 0, `${what}: reads were served`);
    t.ok(served.every((s) => sources.has(s.source) && s.reads > 0 && s.share > 0), `${what}: sources are the live volume and the tier`);
    const sum = served.reduce((a, s) => a + s.share, 0);
    t.ok(Math.abs(sum - 1) < 0.001, `${what}: shares add up to 100% (${(100 * sum).toFixed(2)}%)`);
  }
  // Every 4 KiB O_DIRECT read fio made reached the mount once: the counts agree.
  const servedReads = reads.servedBy.reduce((a, s) => a + s.reads, 0);
  t.ok(Math.abs(servedReads - (reads.read?.ios ?? 0)) <= Math.max(5, 0.01 * servedReads), `reads counted by the mount (${servedReads}) match fio's (${reads.read?.ios})`);
  t.ok(reads.servedBy.some((s) => s.source === 'nvme'), 'reactive admission moved read extents to the tier while the job ran');
  t.same(writes.servedBy, [], 'a write-only job served no reads');
  t.notOk(fs.existsSync(path.join(sb.live, '.shadowfs-bench', 'rand')), 'the bench files are removed afterwards');

  const plain = cli(['bench', sb.mnt, '--preset', 'failover', '--size', '1MiB', '--runtime', '1']);
  t.equal(plain.status, 0, `the failover preset verifies what it wrote: ${plain.stderr}`);
  t.match(plain.stdout, /^job +rw +IOPS +MiB\/s +p50 +p99 +reads served by$/m, 'a table on stdout');
  t.match(plain.stdout, /^failover-verify +read +[1-9]\d* /m, 'verify reads are rated over the job runtime (fio gives them none)');
  t.match(plain.stderr, /^\[1\/1\] failover-verify: /m, 'a progress line per job');
});

t.test('shadowfs bench refuses what is not a shadowfs mount, on one line', async (t) => {
  const sb = makeSandbox();
  t.teardown(() => removeSandbox(sb));
  const cases: [string, RegExp][] = [
    [path.join(sb.root, 'no-such-dir'), /^shadowfs: no such mount point: .*no-such-dir\n$/],
    [sb.mnt, /^shadowfs: .* is not a mount point/],
    ['/proc', /^shadowfs: \/proc is not a shadowfs mount \(it is proc\)\n$/],
  ];
  for (const [mnt, message] of cases) {
    const r = cli(['bench', mnt, '--preset', 'rand']);
    t.equal(r.status, 1, `${mnt}: exit 1`);
    t.match(r.stderr, message);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});
