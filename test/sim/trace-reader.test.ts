import t from 'tap';
import type { ArgumentsCamelCase } from 'yargs';
import { gzipSync } from 'node:zlib';
import { TraceReader, TraceError, type TraceRecord } from '../../src/sim/trace-reader';
import { replayFile } from '../../src/sim/replay';
import { replayCommand, detectFormat, type ReplayArgs } from '../../src/cli/commands/replay';
import { ShadowfsError } from '../../src/util/errors';
import { MiB, tempDir, writeTemp } from './helpers';

const dir = tempDir('trace');

async function readAll(file: string, format: 'csv' | 'msr' | 'fio-iolog', step?: number): Promise<{ records: TraceRecord[]; reader: TraceReader }> {
  const reader = new TraceReader(file, format, { iologStepUs: step });
  const records: TraceRecord[] = [];
  for await (const r of reader.records()) records.push(r);
  return { records, reader };
}

t.test('csv: header, records, R/W', async (t) => {
  const f = writeTemp(dir, 'a.csv', 'timestamp_us,offset_bytes,size_bytes,op\n10,0,4096,R\n20,1048576,8192,w\n\n# comment\n30,5,1,R\n');
  const { records, reader } = await readAll(f, 'csv');
  t.same(
    records.map((r) => [r.timeUs, r.offsetBytes, r.sizeBytes, r.op, r.line]),
    [
      [10, 0, 4096, 'R', 2],
      [20, 1048576, 8192, 'W', 3],
      [30, 5, 1, 'R', 6],
    ],
  );
  t.equal(reader.summary.records, 3);
  t.notOk(reader.summary.truncated);
  t.equal(await detectFormat(f), 'csv');
});

t.test('msr: Windows filetime to Unix microseconds, one file per host/disk, latency', async (t) => {
  const f = writeTemp(dir, 'a.msr', '128166372003061629,hm,1,Read,3085950976,4096,8863\n128166372016382155,hm,1,Write,3085951000,512,120\n');
  const { records } = await readAll(f, 'msr');
  // (128166372003061629 - 116444736000000000) / 10 = 1172163600306162 us = 2007-02-22 16:60 UTC
  t.equal(records[0].timeUs, 1172163600306162);
  t.equal(records[0].fileId, 'hm/1');
  t.equal(records[0].op, 'R');
  t.equal(records[0].latencyUs, 886.3);
  t.equal(records[1].op, 'W');
  t.equal(records[1].sizeBytes, 512);
  t.equal(await detectFormat(f), 'msr');
});

t.test('fio iolog v2: line order gives time, wait advances it, file actions skipped', async (t) => {
  const f = writeTemp(dir, 'a.iolog', 'fio version 2 iolog\n/dev/sdb add\n/dev/sdb open\n/dev/sdb read 0 4096\n/dev/sdb wait 5000\n/dev/sdb write 4096 4096\n/dev/sdb sync 0 0\n/dev/sdb close\n');
  const { records } = await readAll(f, 'fio-iolog', 100);
  t.same(
    records.map((r) => [r.timeUs, r.fileId, r.op, r.offsetBytes, r.line]),
    [
      [0, '/dev/sdb', 'R', 0, 4],
      [5100, '/dev/sdb', 'W', 4096, 6],
    ],
  );
  t.equal(await detectFormat(f), 'fio-iolog');
});

t.test('a malformed line gives a one-line error with file and line number', async (t) => {
  const bad = writeTemp(dir, 'bad.csv', '10,0,4096,R\n20,0,4096,R\n30,zero,4096,R\n40,0,4096,R\n');
  await t.rejects(readAll(bad, 'csv'), new TraceError(bad, 3, 'offset_bytes must be a non-negative integer, got "zero"'));
  await t.rejects(readAll(bad, 'csv'), { message: `${bad}:3: offset_bytes must be a non-negative integer, got "zero"` });
  const op = writeTemp(dir, 'op.csv', '10,0,4096,R\n20,0,4096,X\n');
  await t.rejects(readAll(op, 'csv'), /op\.csv:2: op must be R or W/);
  const msr = writeTemp(dir, 'bad.msr', '128166372003061629,hm,1,Read,3085950976,4096,8863\n128166372003061629,hm,1,Erase,0,4096,1\n');
  await t.rejects(readAll(msr, 'msr'), /bad\.msr:2: Type must be Read or Write/);
  const fio = writeTemp(dir, 'bad.iolog', 'fio version 3 iolog\n');
  await t.rejects(readAll(fio, 'fio-iolog'), /bad\.iolog:1: expected the header "fio version 2 iolog"/);
  const fio2 = writeTemp(dir, 'bad2.iolog', 'fio version 2 iolog\nf read 0 1\nf jump 0 1\n');
  await t.rejects(readAll(fio2, 'fio-iolog'), /bad2\.iolog:3: unknown iolog action "jump"/);
  // The error is a ShadowfsError: the CLI prints its message on one line and exits 1.
  const err = await readAll(bad, 'csv').catch((e: unknown) => e);
  t.ok(err instanceof ShadowfsError);
  t.notOk(String((err as Error).message).includes('\n'));
});

t.test('a truncated file replays what it read and says so', async (t) => {
  const cut = writeTemp(dir, 'cut.csv', '10,0,4096,R\n20,1048576,4096,R\n30,2097');
  const { records, reader } = await readAll(cut, 'csv');
  t.equal(records.length, 2);
  t.match(reader.summary.truncated, /ends mid-record at line 3.*replayed the 2 complete records/);
  const report = await replayFile(cut, 'csv', { extentSizeBytes: MiB, capacity: { fraction: 0.5 }, policies: ['lru'] });
  t.equal(report.accesses, 2);
  t.match(report.summary.truncated, /line 3/);
  // A complete last line without a newline is not truncation.
  const noNl = writeTemp(dir, 'nonl.csv', '10,0,4096,R\n20,0,4096,W');
  const r2 = await readAll(noNl, 'csv');
  t.equal(r2.records.length, 2);
  t.notOk(r2.reader.summary.truncated);
  // A gzip stream cut short.
  const gz = gzipSync(Buffer.from(Array.from({ length: 5000 }, (_, i) => `${i * 10},${(i % 50) * MiB},4096,R`).join('\n') + '\n'));
  const gzCut = writeTemp(dir, 'cut.csv.gz', gz.subarray(0, Math.floor(gz.length * 0.6)));
  const r3 = await readAll(gzCut, 'csv');
  t.ok(r3.records.length > 0 && r3.records.length < 5000, `read ${r3.records.length} records before the cut`);
  t.match(r3.reader.summary.truncated, /ends early/);
});

t.test('replay command: user errors are ShadowfsErrors with clear messages', async (t) => {
  const f = writeTemp(dir, 'ok.csv', Array.from({ length: 200 }, (_, i) => `${i * 1000},${(i % 20) * MiB},4096,R`).join('\n') + '\n');
  const base: ReplayArgs = { trace: f, extent: '1MiB', capacity: '10%', policy: 'all', 'iolog-step-us': 1000, json: false };
  const run = (over: Partial<ReplayArgs>): Promise<void> =>
    Promise.resolve(replayCommand.handler({ ...base, ...over, _: [], $0: 'shadowfs' } as unknown as ArgumentsCamelCase<ReplayArgs>));
  await t.rejects(run({ capacity: '150%' }), new ShadowfsError('--capacity: a percentage must be in (0, 100], got 150%'));
  await t.rejects(run({ capacity: 'lots' }), /--capacity: expected a size/);
  await t.rejects(run({ capacity: '4KiB' }), /smaller than one extent/);
  await t.rejects(run({ extent: '1KiB' }), /--extent: must be at least 4KiB/);
  await t.rejects(run({ trace: `${dir}/missing.csv` }), /cannot read trace .*missing\.csv: ENOENT/);
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    out.push(s);
    return true;
  }) as typeof process.stdout.write;
  try {
    await run({ json: true, policy: 'lru' });
  } finally {
    process.stdout.write = write;
  }
  const report = JSON.parse(out.join('')) as { results: Array<{ policy: string; missRatio: number }> };
  t.equal(report.results[0].policy, 'lru');
  t.equal(report.results[0].missRatio, 1, 'every access misses: 20 extents cycled through a 2-extent tier');
});
