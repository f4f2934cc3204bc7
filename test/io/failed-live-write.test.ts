/**
 * A write stamps the copies it keeps with the new generation before the live file is written, and
 * patches them after. If the live write fails (ENOSPC, EIO) the live file may hold part of the new
 * bytes (a short write before the error) while the kept copies still hold the old ones: they must
 * not stay fresh, or reads are served old bytes the live file no longer has.
 */
import t from 'tap';
import * as fs from 'node:fs';
import { IoRedirector } from '../../src/io/redirector';
import { FsError } from '../../src/util/errors';
import { liveFileFixture } from '../helpers/tier-fixture';

const E = 64 * 1024;

t.test('a write whose live op fails part-way leaves no copy serving the old bytes', async (t) => {
  const { map, tier, tiers, tierId, p, file, live } = await liveFileFixture(t, Buffer.alloc(E, 1));
  const writeFd = fs.openSync(p, 'r+');
  t.teardown(() => fs.closeSync(writeFd));
  const discarded: number[] = [];
  const io = new IoRedirector(map, tiers, E, { onExtentRead: () => undefined }, (_f, _i, id) => discarded.push(id));

  await tier.put({ fileId: file.fileId, index: 0 }, Buffer.alloc(E, 1));
  t.ok(await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: null, sizeBytes: E }, 0), 'copy recorded');

  // The live volume takes the first half of the write, then runs out of space.
  io.liveWrite = async () => {
    fs.writeSync(writeFd, Buffer.alloc(E / 2, 2), 0, E / 2, 0);
    throw new FsError('ENOSPC');
  };
  await t.rejects(io.write(file, writeFd, Buffer.alloc(E, 2), E, 0), { code: 'ENOSPC' }, 'the write fails');

  const got = Buffer.alloc(E);
  t.equal(await io.read(file, live, got, E, 0), E, 'the extent reads whole');
  t.ok(got.equals(fs.readFileSync(p)), 'with the live file\'s bytes, half of them new');
  t.same(map.get(file.fileId, 0)?.copies ?? [], [], 'the copy is no longer recorded');
  t.same(discarded, [tierId], 'and its bytes are discarded');
});

t.test('a write whose live op is not answered keeps its copies for the shadows to patch', async (t) => {
  const { map, tier, tiers, tierId, file } = await liveFileFixture(t, Buffer.alloc(E, 1));
  const io = new IoRedirector(map, tiers, E, { onExtentRead: () => undefined }, () => undefined);
  await tier.put({ fileId: file.fileId, index: 0 }, Buffer.alloc(E, 1));
  t.ok(await map.addCopy(file.fileId, 0, { tierId, generation: 0, crc32: null, sizeBytes: E }, 0), 'copy recorded');

  class NotAnswered extends Error {}
  io.liveUnanswered = (err) => err instanceof NotAnswered;
  io.liveWrite = async () => {
    throw new NotAnswered('write not answered');
  };
  await t.rejects(io.write(file, file.readFd, Buffer.alloc(E, 2), E, 0), { message: 'write not answered' }, 'the write fails');
  const rec = map.get(file.fileId, 0);
  t.ok(rec && rec.copies.some((c) => c.tierId === tierId && c.generation === rec.generation), 'the copy stays fresh, for the write to be redone on it');
});
