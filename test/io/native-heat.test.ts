/** NativeHeat against a scripted counter port: what the policy is told for each drained count. */
import t from 'tap';
import { Mutex } from '../../src/util/mutex';
import { NativeHeat, NativeHitCounter } from '../../src/io/native-heat';
import type { Handle, OpenFile } from '../../src/volume/open-files';

function openFile(fileId: string): OpenFile {
  return { fileId, livePath: `/live/${fileId}`, sizeBytes: 1 << 20, writeLock: new Mutex(), readFd: -1, handles: 1, modified: false, nativeWritable: false, unlinked: false, fhs: new Set() };
}

function setup() {
  const handles = new Map<number, Handle>();
  for (const [fh, id] of [[5, 'a'], [6, 'b']] as const) handles.set(fh, { fh, fd: fh, file: openFile(id), writable: true });
  const reads: string[] = [];
  const writes: string[] = [];
  const foreground: number[] = [];
  let pending: number[][] = [];
  const drains: (number | undefined)[] = [];
  const port: NativeHitCounter = {
    drainExtentHits: (fh) => {
      drains.push(fh);
      const out = pending.filter((q) => fh === undefined || q[0] === fh);
      pending = pending.filter((q) => !(fh === undefined || q[0] === fh));
      return out.flat();
    },
  };
  const heat = new NativeHeat({
    handle: (fh) => handles.get(fh),
    reads: { onExtentRead: (file, index, servedBy) => reads.push(`${file.fileId}:${index}@${servedBy}`) },
    servedBy: (fileId) => (fileId === 'a' ? 1 : 'live'),
    written: (file, index) => writes.push(`${file.fileId}:${index}`),
    foreground: (ms) => foreground.push(ms),
  });
  return { heat, port, handles, reads, writes, foreground, drains, count: (q: number[][]) => (pending = q) };
}

t.test('each counted request is reported once, as the JS paths report them', async (t) => {
  const s = setup();
  s.heat.drain();
  t.same(s.drains, [], 'nothing to drain before attach');
  s.heat.attach(s.port, 60_000);
  s.count([[5, 0, 2, 0], [5, 3, 0, 1], [6, 1, 1, 2]]);
  const before = Date.now();
  s.heat.drain();
  t.same(s.reads, ['a:0@1', 'a:0@1', 'b:1@live'], 'reads, with the tier that served them');
  t.same(s.writes, ['a:3', 'b:1', 'b:1'], 'writes');
  t.ok(s.foreground.length === 1 && s.foreground[0] >= before, 'foreground activity noted');
  t.same(s.heat.counters, { drains: 1, reads: 3, liveReads: 1, writes: 3, unknownHandle: 0, lost: 0 });

  s.heat.drain();
  t.equal(s.foreground.length, 1, 'an empty drain is no foreground activity');
  s.heat.stop();
});

t.test('unknown handles and lost counts are dropped, not misattributed', async (t) => {
  const s = setup();
  s.heat.attach(s.port, 60_000);
  s.count([[9, 0, 4, 1], [0, 0, 7, 2], [5, 1, 1, 0]]);
  s.heat.drain();
  t.same(s.reads, ['a:1@1']);
  t.same(s.writes, []);
  t.equal(s.heat.counters.unknownHandle, 5);
  t.equal(s.heat.counters.lost, 9);
  s.heat.stop();
});

t.test('a handle drained alone; refresh drains at most every few ms; stop drains a last time', async (t) => {
  const s = setup();
  s.heat.attach(s.port, 60_000);
  s.count([[5, 0, 1, 0], [6, 0, 1, 0]]);
  s.heat.drain(6);
  t.same(s.reads, ['b:0@live'], 'only fh 6');
  await new Promise((r) => setTimeout(r, 20));
  s.heat.refresh();
  s.heat.refresh();
  t.same(s.drains, [6, undefined], 'two refreshes in a row drain once');
  t.same(s.reads, ['b:0@live', 'a:0@1']);
  s.count([[5, 2, 1, 0]]);
  s.heat.stop();
  t.same(s.reads, ['b:0@live', 'a:0@1', 'a:2@1'], 'stop drains');
  s.count([[5, 2, 1, 0]]);
  s.heat.drain();
  s.heat.refresh();
  t.equal(s.drains.length, 3, 'nothing after stop');
});

t.test('above the bound, counts are scaled alike and a counted extent stays counted', async (t) => {
  const s = setup();
  s.heat.attach(s.port, 60_000);
  // A second's worth (20,000 accesses) may be reported at once.
  s.count([[5, 0, 60_000, 0], [5, 1, 20_000, 0], [5, 2, 1, 0]]);
  const started = Date.now();
  s.heat.drain();
  const per = (i: number): number => s.reads.filter((r) => r === `a:${i}@1`).length;
  t.ok(s.reads.length <= 20_100, `bounded (${s.reads.length})`);
  t.ok(Math.abs(per(0) / per(1) - 3) < 0.01, `proportions kept (${per(0)} : ${per(1)})`);
  t.equal(per(2), 1, 'a single read is still reported');
  t.equal(s.heat.counters.lost, 80_001 - s.reads.length, 'what was cut off is counted');
  // The bucket was emptied: the next drain reports only what refilled since (20 a millisecond).
  s.count([[5, 0, 50_000, 0], [5, 1, 10_000, 0]]);
  const before = s.reads.length;
  s.heat.drain();
  const refill = 20 * (Date.now() - started) + 2;
  t.ok(s.reads.length - before <= refill, `the bound holds across drains (${s.reads.length - before} <= ${refill})`);
  t.ok(per(0) > 15_000 && per(1) > 5_000, 'both extents still reported');
  s.heat.stop();
});
