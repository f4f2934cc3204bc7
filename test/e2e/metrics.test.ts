/** The Prometheus endpoint of a running mount: scrapes parse and carry the mount's numbers. */
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as net from 'node:net';
import { spawnSync } from 'node:child_process';
import { CLI, isMounted, makeSandbox, mountArgs, removeSandbox, sandboxedMount } from '../helpers/mounted-volume';

function get(url: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    }).on('error', reject);
  });
}

/** Parses the text exposition format: every sample line is `name{labels} value`. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

t.test('metrics scrape', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB', admitAfter: 1,
    tiers: [{ name: 'nvme', capacity: '8MiB' }, { name: 'hdd', capacity: '64MiB' }], coverageTier: 'hdd',
    extraArgs: ['--metrics-port', '0'],
  });
  fs.writeFileSync(path.join(sb.live, 'm.bin'), Buffer.alloc(1024 * 1024, 3));
  await vol.start();
  const url = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(vol.output)?.[1];
  t.ok(url, 'the mount says where its metrics are');
  fs.readFileSync(path.join(sb.mnt, 'm.bin'));
  fs.readFileSync(path.join(sb.mnt, 'm.bin'));
  fs.writeFileSync(path.join(sb.mnt, 'written.bin'), 'not synced');
  await new Promise((r) => setTimeout(r, 1500));
  const res = await get(url as string);
  t.equal(res.status, 200);
  t.match(res.type, /text\/plain/);
  const samples = parse(res.body);
  t.equal(samples.get('shadowfs_tier_capacity_bytes{tier="nvme"}'), 8 * 1024 * 1024);
  t.equal(samples.get('shadowfs_tier_healthy{tier="hdd"}'), 1);
  t.ok((samples.get('shadowfs_promotions_total') ?? 0) > 0, 'copies were counted');
  // From the live file or, if coverage copied the file before the reads came, from a tier copy.
  const readBytes = [...samples].filter(([k]) => k.startsWith('shadowfs_read_bytes_total{')).reduce((sum, [, v]) => sum + v, 0);
  t.ok(readBytes >= 1024 * 1024, `reads were counted, by source (${readBytes} bytes)`);
  t.ok(samples.has('shadowfs_coverage_ratio'), 'coverage is exported');
  t.ok(samples.has('shadowfs_replication_lag_seconds'));
  t.equal(samples.get('shadowfs_failed_over'), 0, 'served from the live volume');
  t.equal(samples.get('shadowfs_live_health_state'), 0, 'the live volume is healthy');
  t.equal(samples.get('shadowfs_hedged_reads_total'), 0);
  t.equal(samples.get('shadowfs_written_around_total'), 0, 'write-around is exported');
  t.equal(samples.get('shadowfs_unsynced_files'), 1, 'the file written and not synced is counted');
  t.equal(samples.get('shadowfs_files_dropped_after_restart_total'), 0);
  t.match(res.body, /# TYPE shadowfs_tier_read_seconds histogram/, 'per-tier read latency is a histogram');
  t.equal((await get((url as string).replace('/metrics', '/other'))).status, 404);
  t.equal(await vol.stop(), 0);
});

t.test('a metrics port already in use: one line, and no mount left behind', async (t) => {
  const sb = makeSandbox();
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const port = (busy.address() as net.AddressInfo).port;
  t.teardown(() => {
    busy.close();
    removeSandbox(sb);
  });
  const r = spawnSync(process.execPath, [CLI, ...mountArgs(sb, { extraArgs: ['--metrics-port', String(port)] })], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 1, 'refused');
  t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`);
  t.match(r.stderr, /could not start serving/);
  t.notOk(isMounted(sb.mnt), 'nothing is left mounted');
});
