/**
 * A file closed and reopened at once keeps its shadow copies. The last close stores the file's
 * record (size, mtime); an open that arrives while it does must not compare the live file with the
 * old record and drop every copy as "changed outside the mount". A real change behind the mount's
 * back still drops them.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import type { StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
const SIZE = 64 * EXTENT;
const OUT_OF_BAND = /changed outside the mount/g;

const status = (sb: Sandbox): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
const outOfBandLines = (output: string): number => (output.match(OUT_OF_BAND) ?? []).length;

/** Another process opening and closing `p` as fast as it can, so that some open meets a last close. */
function startOpener(p: string): { stop: () => Promise<number> } {
  const script = `
    const fs = require('node:fs');
    let opens = 0, stopping = false;
    process.on('SIGTERM', () => { stopping = true; });
    (function loop() {
      for (let i = 0; i < 200; i++) { fs.closeSync(fs.openSync(${JSON.stringify(p)}, 'r')); opens++; }
      if (stopping) { process.stdout.write(String(opens)); process.exit(0); }
      setImmediate(loop);
    })();`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
      return Number(out);
    },
  };
}

t.test('writes closed while another process reopens the file keep its copies', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB',
    tiers: [{ name: 'hdd', capacity: '1GiB', cls: 'hdd' }],
    coverageTier: 'hdd',
    extraArgs: ['--verbose'],
  });
  const model = Buffer.alloc(SIZE, 1);
  fs.writeFileSync(path.join(sb.live, 'a.bin'), model);
  await vol.start();
  await waitFor(() => status(sb).coverage?.coveredShare === 1, 'coverage 100%');

  const p = path.join(sb.mnt, 'a.bin');
  const opener = startOpener(p);
  const block = Buffer.alloc(4096);
  for (let i = 0; i < 1500; i++) {
    block.fill(i & 0xff);
    const off = ((i * 7) % (SIZE / 4096)) * 4096;
    const fd = fs.openSync(p, 'r+');
    fs.writeSync(fd, block, 0, block.length, off);
    fs.closeSync(fd);
    block.copy(model, off);
    // The opener needs the CPU too on a small machine.
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 50));
  }
  const opens = await opener.stop();
  t.ok(opens > 0, `the other process opened the file ${opens} times`);
  t.equal(outOfBandLines(vol.output), 0, 'no copy was dropped as changed outside the mount');
  t.ok(fs.readFileSync(p).equals(model), 'the file reads right through the mount');

  // The log line counted above is the one a real out-of-band change writes.
  fs.writeFileSync(path.join(sb.live, 'a.bin'), Buffer.alloc(SIZE, 2));
  await waitFor(() => {
    fs.closeSync(fs.openSync(p, 'r'));
    return outOfBandLines(vol.output) > 0;
  }, 'a change behind the mount dropping the copies');
  t.ok(fs.readFileSync(p).equals(Buffer.alloc(SIZE, 2)), 'the changed file reads right');
});
