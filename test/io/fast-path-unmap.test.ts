/**
 * FastPath against a scripted read map: an unmap does not wait for native reads that began before
 * it, but the copy's fd they may use stays open until the read map says they have ended.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { FastPath, ReadMap } from '../../src/io/fast-path';
import { OpenFiles } from '../../src/volume/open-files';
import { liveFileFixture } from '../helpers/tier-fixture';
import { waitFor } from '../helpers/wait';

const E = 64 * 1024;
const FH = 7;

/** Whether fd is still open (fstat fails with EBADF once it is closed). */
function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** A one-extent file whose copy on nvme is mapped for handle FH; `ticket` is what the next unmapExtent returns. */
async function mapped(t: Test) {
  const bytes = Buffer.alloc(E, 1);
  const { map, tier, tiers, tierId, file } = await liveFileFixture(t, bytes);
  const ref = { fileId: file.fileId, index: 0 };
  await tier.put(ref, bytes);
  await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: crc32(bytes), sizeBytes: E }, 0);
  const files = new OpenFiles();
  files.addFile(file);
  files.addHandle({ fh: FH, fd: -1, file, writable: false });
  const script = { ticket: -1, ended: false, fd: -1, asked: [] as number[] };
  const readMap: ReadMap = {
    setFileMap: () => undefined,
    mapExtent: (_fh, _index, fd) => void (script.fd = fd),
    unmapExtent: () => script.ticket,
    requestsEnded: (_fh, ticket) => {
      script.asked.push(ticket);
      return script.ended;
    },
  };
  const fastPath = new FastPath(map, tiers, files, E);
  fastPath.attach(readMap);
  fastPath.onHandleOpened(FH, file);
  await waitFor(() => fastPath.mappedTo(file.fileId, 0) === tierId, 'the copy is mapped', 5_000, 5);
  t.ok(isOpen(script.fd), 'the mapped copy has an open fd');
  return { fastPath, tier, ref, file, script };
}

t.test('an unmap with reads still in flight keeps the copy\'s fd open until they have ended', async (t) => {
  const { fastPath, tier, ref, file, script } = await mapped(t);
  script.ticket = 42;
  fastPath.unmap(file.fileId, 0, 0);
  t.equal(fastPath.mappedTo(file.fileId, 0), undefined, 'the extent is unmapped at once');
  // The copy goes away (an eviction): a pinned fd is closed only once its last pin goes.
  await tier.remove(ref);
  await new Promise((r) => setTimeout(r, 100));
  t.ok(isOpen(script.fd), 'while the reads are in flight, their fd stays open');
  t.ok(script.asked.length > 0 && script.asked.every((x) => x === 42), 'the read map was asked about them, with the unmap\'s ticket');
  script.ended = true;
  await waitFor(() => !isOpen(script.fd), 'the fd closed', 5_000, 5);
  t.pass('once they have ended, the fd is released');
  const asked = script.asked.length;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(script.asked.length, asked, 'and nothing is asked any more');
});

t.test('an unmap with no read in flight releases the copy\'s fd at once', async (t) => {
  const { fastPath, tier, ref, file, script } = await mapped(t);
  fastPath.unmap(file.fileId, 0, 0);
  await tier.remove(ref);
  // (The tier closes it in the background.)
  await waitFor(() => !isOpen(script.fd), 'the fd closed', 5_000, 5);
  t.pass('the fd is closed with the copy');
  t.same(script.asked, [], 'the read map was asked nothing');
});
