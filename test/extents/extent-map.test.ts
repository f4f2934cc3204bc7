import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CopyRecord, ExtentMap, isFresh } from '../../src/extents/extent-map';
import { decodeExtentRecord, encodeExtentRecord } from '../../src/extents/record-codec';
import { Level } from 'level';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-map-'));

t.test('record codec round-trips and stays small', async (t) => {
  const rec = {
    generation: 123456,
    copies: [
      { tierId: 0, generation: 123456, crc32: 0xdeadbeef, sizeBytes: 1 << 20 },
      { tierId: 3, generation: 123400, crc32: null, sizeBytes: 4096 },
    ],
  };
  const buf = encodeExtentRecord(rec);
  t.same(decodeExtentRecord(buf), rec);
  t.ok(buf.length <= 24, `two copies encode in ${buf.length} bytes`);
});

t.test('an extent written through the mount says so, across a reopen; a change behind the mount\'s back clears it', async (t) => {
  const written = { generation: 5, written: true, copies: [{ tierId: 2, generation: 5, crc32: 9, sizeBytes: 100 }] };
  t.same(decodeExtentRecord(encodeExtentRecord(written)), written, 'the codec keeps the mark (no extra byte)');
  t.equal(encodeExtentRecord(written).length, encodeExtentRecord({ ...written, written: false }).length);
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let map = await ExtentMap.open(dir);
  const nvme = await map.tierId('nvme');
  t.ok(await map.addCopy('c', 0, { tierId: nvme, generation: 0, crc32: 1, sizeBytes: 10 }, 0));
  t.notOk(map.get('c', 0)?.written, 'a copy taken from the live volume holds nothing written');
  await map.beginWrite('c', 0, 0, () => true);
  map.endWrite('c', 0, 0);
  t.equal(map.get('c', 0)?.written, true, 'a write marks the extent');
  map.ensureRecord('c', 1, true);
  t.equal(map.get('c', 1)?.written, true, 'so does a write that finds no record');
  t.ok(await map.addCopy('c', 1, { tierId: nvme, generation: 0, crc32: 2, sizeBytes: 10 }, 0));
  await map.close();
  map = await ExtentMap.open(dir);
  t.equal(map.get('c', 0)?.written, true, 'the mark survives a reopen');
  t.equal(map.get('c', 1)?.written, true);
  await map.invalidateFile('c');
  t.notOk(map.get('c', 0)?.written, 'a change behind the mount\'s back clears it');
  await map.close();
});

t.test('extents made zeros through the mount say so until anything moves their generation', async (t) => {
  const zeros = { generation: 3, written: true, zeros: true, copies: [] };
  t.same(decodeExtentRecord(encodeExtentRecord(zeros)), zeros, 'the codec keeps the mark');
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let map = await ExtentMap.open(dir);
  await map.markZeros('z', [2, 3, 4]);
  await map.close();
  map = await ExtentMap.open(dir);
  t.same([2, 3, 4].map((i) => map.get('z', i)?.zeros), [true, true, true], 'persisted before markZeros resolves');
  await map.beginWrite('z', 3, 3, () => false);
  map.endWrite('z', 3, 3);
  t.notOk(map.get('z', 3)?.zeros, 'a write clears it');
  await map.truncateRecords('z', 4);
  t.notOk(map.get('z', 4)?.zeros, 'so does a truncate that cuts the extent');
  t.equal(map.get('z', 2)?.zeros, true, 'the others keep it');
  await map.close();
});

t.test('a copy is recorded only at the generation it was taken from', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const map = await ExtentMap.open(dir);
  const nvme = await map.tierId('nvme');
  t.equal(await map.tierId('nvme'), nvme, 'tier ids are stable');
  t.ok(await map.addCopy('a1', 0, { tierId: nvme, generation: 0, crc32: 1, sizeBytes: 10 }, 0));
  // A write bumps the generation; a copy taken before it must not be published.
  const kept = await map.beginWrite('a1', 0, 0, () => false);
  map.endWrite('a1', 0, 0);
  t.same(kept, [[]], 'nothing kept');
  const rec = map.get('a1', 0);
  t.ok(rec);
  t.equal(rec?.generation, 1);
  t.notOk(rec?.copies.some((c) => isFresh(rec, c)), 'the old copy is stale');
  t.notOk(await map.addCopy('a1', 0, { tierId: nvme, generation: 0, crc32: 1, sizeBytes: 10 }, 0), 'stale publish refused');
  t.ok(await map.addCopy('a1', 0, { tierId: nvme, generation: 1, crc32: 2, sizeBytes: 10 }, 1));
  await map.close();
});

t.test('after a crash mid-write no persisted record claims a stale copy fresh', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const map = await ExtentMap.open(dir, 60_000);
  const nvme = await map.tierId('nvme');
  await map.addCopy('f', 2, { tierId: nvme, generation: 0, crc32: 7, sizeBytes: 100 }, 0);
  // The write keeps the copy (it will be patched) but the process dies before the patch lands.
  await map.beginWrite('f', 2, 2, () => true);
  // Simulate the crash: read the database as it is on disk now, without closing the map cleanly.
  const dbDir = path.join(dir);
  const snapshot = path.join(tmp(), 'copy');
  fs.cpSync(dbDir, snapshot, { recursive: true });
  fs.rmSync(path.join(snapshot, 'LOCK'), { force: true });
  const db = new Level<string, Buffer>(snapshot, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  const raw = await db.get('e!f!00000002');
  t.ok(raw, 'the record is on disk');
  const rec = decodeExtentRecord(raw as Buffer);
  t.notOk(rec.copies.some((c) => c.generation === rec.generation), 'no copy claims the current generation');
  await db.close();
  fs.rmSync(path.dirname(snapshot), { recursive: true, force: true });
  // A flush while the write is still in progress must not claim it either.
  await map.flush();
  map.endWrite('f', 2, 2);
  await map.close();
  const reopened = await ExtentMap.open(dir);
  const after = reopened.get('f', 2);
  t.ok(after && after.copies.some((c) => isFresh(after, c)), 'after the write ended cleanly the patched copy is fresh');
  await reopened.close();
});

t.test('a withdrawal that cannot be written is undone: the next write withdraws again', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const map = await ExtentMap.open(dir, 60_000);
  t.teardown(() => map.close());
  const nvme = await map.tierId('nvme');
  await map.addCopy('f', 0, { tierId: nvme, generation: 0, crc32: 7, sizeBytes: 100 }, 0);
  await map.flush();
  // The state disk fails once (full, EIO): the withdrawn record does not land.
  const db = (map as unknown as { db: { batch: (ops: unknown[]) => Promise<void> } }).db;
  const batch = db.batch.bind(db);
  let batches = 0;
  db.batch = async (ops) => {
    batches++;
    if (batches === 1) throw new Error('EIO: simulated');
    return batch(ops);
  };
  await t.rejects(map.beginWrite('f', 0, 0, () => false), /simulated/, 'the write cannot begin');
  // No endWrite for it. The next write must withdraw the record on disk before it changes bytes.
  await map.beginWrite('f', 0, 0, () => false);
  t.equal(batches, 2, 'the next write wrote the withdrawn record');
  map.endWrite('f', 0, 0);
});

t.test('records survive reopen; dropFile forgets everything', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let map = await ExtentMap.open(dir);
  const ssd = await map.tierId('ssd');
  for (let i = 0; i < 50; i++) await map.addCopy('b2', i, { tierId: ssd, generation: 0, crc32: i, sizeBytes: 4096 }, 0);
  await map.setFileRecord('b2', { sizeBytes: 50 * 4096, mtimeMs: 1234 });
  await map.close();
  map = await ExtentMap.open(dir);
  t.equal(map.extents('b2').size, 50);
  t.same(map.fileRecord('b2'), { sizeBytes: 50 * 4096, mtimeMs: 1234 });
  t.equal(map.usedBytesByTier().get(ssd), 50 * 4096);
  await map.dropFile('b2');
  await map.close();
  map = await ExtentMap.open(dir);
  t.equal(map.extents('b2').size, 0);
  t.equal(map.fileRecord('b2'), undefined);
  await map.close();
});

t.test('removeThisCopy forgets the stale copy it was given, never a fresh one made since', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const map = await ExtentMap.open(dir);
  const nvme = await map.tierId('nvme');
  t.ok(await map.addCopy('b1', 0, { tierId: nvme, generation: 0, crc32: 1, sizeBytes: 10 }, 0));
  t.ok(await map.addCopy('b1', 1, { tierId: nvme, generation: 0, crc32: 1, sizeBytes: 10 }, 0));
  const stale = await map.invalidateFile('b1');
  t.equal(stale.length, 2, 'both copies were fresh before');
  const staleOf = (index: number): CopyRecord => (stale.find((x) => x.index === index) as { copy: CopyRecord }).copy;
  // Extent 1 is copied again at its new generation before the caller gets round to it.
  t.ok(await map.addCopy('b1', 1, { tierId: nvme, generation: 1, crc32: 2, sizeBytes: 10 }, 1));
  t.ok(map.removeThisCopy('b1', 0, staleOf(0)), 'the stale copy of extent 0 is forgotten');
  t.notOk(map.removeThisCopy('b1', 1, staleOf(1)), 'the new copy of extent 1 is not');
  const rec = map.get('b1', 1);
  t.ok(rec && rec.copies.some((c) => c.tierId === nvme && isFresh(rec, c)), 'and it is still fresh');
  t.notOk(map.removeThisCopy('b1', 0, staleOf(0)), 'a copy already forgotten: nothing');
  await map.close();
});

t.test('files written since their last sync point: marked durably once, cleared only if not written since', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let map = await ExtentMap.open(dir);
  const db = (map as unknown as { db: { batch: (ops: unknown[], o?: { sync?: boolean }) => Promise<void> } }).db;
  const batch = db.batch.bind(db);
  const synced: unknown[][] = [];
  db.batch = async (ops, o) => {
    if (o?.sync) synced.push(ops);
    return batch(ops, o);
  };
  // Marks that arrive while the batch waits for the writes before it share its one sync.
  await Promise.all([map.markWritten('a'), map.markWritten('b'), map.markWritten('c')]);
  t.equal(synced.length, 1, 'three first writes, one synced batch');
  t.equal(map.markWritten('a'), undefined, 'a later write to a marked file has nothing to wait for');
  t.equal(map.markWritten('d', false), undefined, 'a file without records is only counted');
  t.ok(map.isWritten('d'));
  t.equal(synced.length, 1);
  t.same(map.markedFiles().sort(), ['a', 'b', 'c'], 'durable marks: a, b, c');

  const snapshot = map.writtenSnapshot();
  map.markWritten('b');
  await map.clearWritten(snapshot);
  t.same(map.markedFiles(), ['b'], 'b was written after the snapshot: it stays marked');
  t.notOk(map.isWritten('d'), 'd is cleared too');
  await map.close();
  map = await ExtentMap.open(dir);
  t.same(map.markedFiles(), ['b'], 'the marks survive a reopen');
  t.equal(map.storedBootId, undefined);
  await map.setBootId('boot-1');
  await map.close();
  map = await ExtentMap.open(dir);
  t.equal(map.storedBootId, 'boot-1');
  await map.close();
});

t.test('a mark that cannot be written fails the write, and the next write tries again', async (t) => {
  const dir = tmp();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const map = await ExtentMap.open(dir);
  t.teardown(() => map.close());
  const db = (map as unknown as { db: { batch: (ops: unknown[], o?: unknown) => Promise<void> } }).db;
  const batch = db.batch.bind(db);
  let fail = true;
  db.batch = async (ops, o) => {
    if (fail) throw new Error('EIO: simulated');
    return batch(ops, o);
  };
  await t.rejects(map.markWritten('f') as Promise<void>, /simulated/);
  fail = false;
  const again = map.markWritten('f');
  t.ok(again, 'the next write waits for a new mark');
  await again;
  t.same(map.markedFiles(), ['f']);
});
