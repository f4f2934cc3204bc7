/**
 * A shadow copy damaged on its tier (bytes flipped behind shadowfs's back) is detected by its
 * checksum, never served, and made again from a good source.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function copyFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

t.test('a corrupted copy is detected, served around and repaired', async (t) => {
  const sb = makeSandbox();
  const vol = new MountedVolume(sb, { extentSize: '64KiB', admitAfter: 1 });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });
  const data = Buffer.alloc(8 * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  fs.writeFileSync(path.join(sb.live, 'f.bin'), data);
  await vol.start();
  const f = path.join(sb.mnt, 'f.bin');
  fs.readFileSync(f);
  await waitFor(() => copyFiles(sb.tierDir('nvme')).length === 8, 'eight copies');
  t.equal(await vol.stop(), 0);

  // Flip bytes in the middle of every copy, as a failing disk might.
  for (const copy of copyFiles(sb.tierDir('nvme'))) {
    const fd = fs.openSync(copy, 'r+');
    fs.writeSync(fd, Buffer.from('CORRUPT!'), 0, 8, 1000);
    fs.closeSync(fd);
  }
  await vol.start();
  t.ok(fs.readFileSync(f).equals(data), 'the reader sees the right bytes');
  t.ok(fs.readFileSync(f).equals(data), 'and again');
  const report = JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  t.equal(report.shadow.corruptCopies, 8, 'every damaged copy was caught by its checksum');
  // The reads after the damage was found admit fresh copies again.
  await waitFor(() => {
    const w = JSON.parse(cli(['which-tier', '--json', f]).stdout) as WhichTierReport;
    return w.extents.every((e) => e.fresh.includes('nvme'));
  }, 'copies made again');
  for (const copy of copyFiles(sb.tierDir('nvme'))) {
    t.notOk(fs.readFileSync(copy).includes('CORRUPT!'), `${path.basename(copy)} is a good copy now`);
  }
  t.ok(fs.readFileSync(f).equals(data));
  t.equal(await vol.stop(), 0);
});
