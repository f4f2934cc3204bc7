/**
 * A mount reconciles each tier with the extent map (src/volume/open-volume.ts, reconcile): a copy
 * the map does not know of (a crash between the copy and its record) is removed, and a copy the
 * map names whose bytes are gone is forgotten, so that no read goes looking for it.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { readWholeDirect } from '../helpers/direct-read';

const EXTENT = 64 * 1024;

/** Copy files under a tier directory, by path relative to it. */
function copyFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

t.test('a remount removes copies the map does not know and forgets copies whose bytes are gone', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1, extraArgs: ['--verbose'] });
  await vol.start();
  const f = path.join(sb.mnt, 'data.bin');
  const data = Buffer.alloc(4 * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  fs.writeFileSync(f, data);
  const tier = sb.tierDir('nvme');
  // Read until every extent has its copy (reads are admitted after one read).
  await waitFor(() => {
    readWholeDirect(f, data.length, EXTENT);
    return copyFiles(tier).length >= 4;
  }, 'every extent copied to nvme');
  t.equal(await vol.stop(), 0, 'clean unmount');

  const copies = copyFiles(tier);
  t.equal(copies.length, 4);
  const fileDir = path.dirname(path.join(tier, copies[0]));
  fs.unlinkSync(path.join(fileDir, '1'));
  fs.copyFileSync(path.join(fileDir, '0'), path.join(fileDir, '9'));

  await vol.start();
  t.match(vol.output, /reconciled tiers: 1 unrecorded copies removed, 1 missing copies forgotten/);
  t.notOk(fs.existsSync(path.join(fileDir, '9')), 'the copy the map did not know is gone');
  t.same(readWholeDirect(f, data.length, EXTENT), data, 'every extent reads right, the one whose copy went too');
  t.equal(await vol.stop(), 0);
});
