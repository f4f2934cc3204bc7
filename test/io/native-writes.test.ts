/**
 * NativeWrites grants: a write through JS opens the extents it wrote and GRANT_AHEAD_EXTENTS after
 * them to native writes, never an extent with a copy, and an extent granted ahead (not written)
 * has its generation bumped, so a copy read before the grant cannot be published.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { GRANT_AHEAD_EXTENTS, NativeWrites, type NativeWritePort } from '../../src/io/native-writes';
import { Mutex } from '../../src/util/mutex';
import { OpenFiles, type OpenFile } from '../../src/volume/open-files';

const E = 64 * 1024;
const FH = 7;

async function setup(t: Test, extents: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-grants-'));
  const map = await ExtentMap.open(path.join(dir, 'extents'));
  t.teardown(async () => {
    await map.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const files = new OpenFiles();
  const file: OpenFile = {
    fileId: 'f1', livePath: path.join(dir, 'f1'), sizeBytes: extents * E, writeLock: new Mutex(), readFd: -1,
    handles: 0, modified: false, nativeWritable: false, unlinked: false, fhs: new Set(),
  };
  files.addFile(file);
  files.addHandle({ fh: FH, fd: 99, file, writable: true });
  const marks: string[] = [];
  const port: NativeWritePort = {
    setFileWrites: () => undefined,
    setExtentsWritable: (fh, first, last, writable) => void marks.push(`${fh}:${first}-${last}:${writable ? 'on' : 'off'}`),
    setNativeWrites: () => 0,
    fileNativeWrites: () => 0,
  };
  const writes = new NativeWrites(map, files, E);
  writes.attach(port);
  return { map, file, writes, marks };
}

t.test('a JS write grants the extents it wrote and those after it, one mark per run, never one with a copy', async (t) => {
  const { map, file, writes, marks } = await setup(t, 100);
  t.ok(await map.addCopy(file.fileId, 5, { tierId: 1, generation: 0, crc32: 1, sizeBytes: E }, 0), 'extent 5 has a copy');
  writes.afterWrite(file, 2, 3, false);
  t.same(marks, [`${FH}:2-4:on`, `${FH}:6-${3 + GRANT_AHEAD_EXTENTS}:on`], 'written and ahead, around the copied extent');
  t.equal(writes.grantedExtents(), 2 + GRANT_AHEAD_EXTENTS - 1);
  t.equal(map.get(file.fileId, 5)?.generation, 0, 'the copied extent is left alone');

  marks.length = 0;
  writes.afterWrite(file, 90, 90, false);
  t.same(marks, [`${FH}:90-99:on`], 'ahead stops at the end of the file');

  marks.length = 0;
  writes.afterWrite(file, 3, 4, false);
  t.same(marks, [`${FH}:${4 + GRANT_AHEAD_EXTENTS}-${4 + GRANT_AHEAD_EXTENTS}:on`], 'granted ones are not marked again; the window moves on');

  marks.length = 0;
  writes.revoke(file.fileId, 10, 10);
  t.same(marks, [`${FH}:10-10:off`], 'a copy about to read extent 10 revokes it');
});

t.test('a copy read before its extent was granted ahead is refused', async (t) => {
  const { map, file, writes } = await setup(t, 8);
  // A background copy of extent 4 reads it at this generation (the shadow manager, under the lock).
  const taken = map.ensureRecord(file.fileId, 4);
  writes.revoke(file.fileId, 4, 4);
  // Then a JS write to extent 1 grants 1..7: extent 4 may now change natively.
  writes.afterWrite(file, 1, 1, false);
  t.ok((map.get(file.fileId, 4)?.generation ?? 0) > taken, 'its generation moved');
  t.notOk(await map.addCopy(file.fileId, 4, { tierId: 1, generation: taken, crc32: 1, sizeBytes: E }, taken), 'the copy read before is not published');
  // A copy taken after the grant revokes it first; that one publishes.
  const again = map.ensureRecord(file.fileId, 4);
  writes.revoke(file.fileId, 4, 4);
  t.ok(await map.addCopy(file.fileId, 4, { tierId: 1, generation: again, crc32: 2, sizeBytes: E }, again), 'a copy read after the revoke is');
});
