/**
 * kill -9 of the daemon during a write workload, then remount: everything that was fsync'd is
 * intact, and the mount shows exactly the live file's bytes (no stale copy survived the crash).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import type { StatusReport } from '../../src/control/protocol';

const BLOCK = 16 * 1024;
const BLOCKS = 64;

/**
 * The writer: overwrites blocks with (block, iteration)-stamped bytes, in random order or front to
 * back over and over (a streaming writer); reads a random block after each write; journals what it
 * fsync'd.
 */
const writer = (order: 'random' | 'sequential'): string => `
const fs = require('fs');
const [file, journal] = process.argv.slice(1);
const BLOCK = ${BLOCK}, BLOCKS = ${BLOCKS};
function stamp(k, it) { const b = Buffer.alloc(BLOCK); for (let i = 0; i < BLOCK; i += 8) { b.writeUInt32LE(k, i); b.writeUInt32LE(it, i + 4); } return b; }
const fd = fs.openSync(file, 'r+');
const jfd = fs.openSync(journal, 'a');
let it = 1; const pending = [];
try {
  for (;;) {
    const k = ${order === 'random' ? 'Math.floor(Math.random() * BLOCKS)' : '(it - 1) % BLOCKS'};
    fs.writeSync(fd, stamp(k, it), 0, BLOCK, k * BLOCK);
    pending.push(k + ' ' + it);
    const r = Buffer.alloc(BLOCK); fs.readSync(fd, r, 0, BLOCK, Math.floor(Math.random() * BLOCKS) * BLOCK);
    if (it % 4 === 0) { fs.fsyncSync(fd); fs.writeSync(jfd, pending.join('\\n') + '\\n'); fs.fsyncSync(jfd); pending.length = 0; }
    it++;
  }
} catch (e) { process.exit(0); }
`;

for (const order of ['random', 'sequential'] as const) {
  t.test(`kill -9 during ${order} writes loses nothing that was fsync'd`, async (t) => {
    // Sequential: the writer streams, so past 64 KiB its writes drop the copies its reads made
    // (write-around) and go natively; the drop must be on disk before any of those writes.
    const { sb, vol } = sandboxedMount(t, {
      extentSize: '16KiB', admitAfter: 1, tiers: [{ name: 'nvme', capacity: '512KiB' }],
      extraArgs: order === 'sequential' ? ['--write-around-after', '64KiB'] : [],
    });
    fs.writeFileSync(path.join(sb.live, 'data'), Buffer.alloc(BLOCK * BLOCKS));
    await vol.start();
    const journal = path.join(sb.root, 'journal');
    fs.writeFileSync(journal, '');
    const proc = spawn(process.execPath, ['-e', writer(order), path.join(sb.mnt, 'data'), journal], { stdio: 'inherit' });
    const writerDone = new Promise((r) => proc.once('exit', r));
    await new Promise((r) => setTimeout(r, 2500));
    if (order === 'sequential') {
      const s = JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
      t.ok((s.shadow.writtenAround ?? 0) > 0 && (s.nativeWrites?.hits ?? 0) > 0, `the stream wrote around copies (${s.shadow.writtenAround}) and natively (${s.nativeWrites?.hits}) before the crash`);
    }
    await vol.crash();
    await writerDone;

    const lastSynced = new Map<number, number>();
    for (const line of fs.readFileSync(journal, 'utf8').split('\n')) {
      if (!line) continue;
      const [k, it] = line.split(' ').map(Number);
      lastSynced.set(k, Math.max(lastSynced.get(k) ?? 0, it));
    }
    t.ok(lastSynced.size > 10, `the writer made progress before the crash (${lastSynced.size} blocks fsync'd)`);

    // The next mount clears the stale kernel mount by itself.
    await vol.start();
    const viaMount = fs.readFileSync(path.join(sb.mnt, 'data'));
    const live = fs.readFileSync(path.join(sb.live, 'data'));
    t.ok(viaMount.equals(live), 'the mount shows exactly the live bytes: no stale copy is served');
    let lost = 0;
    for (const [k, it] of lastSynced) {
      const got = viaMount.readUInt32LE(k * BLOCK + 4);
      if (viaMount.readUInt32LE(k * BLOCK) !== k || got < it) lost++;
    }
    t.equal(lost, 0, 'every fsync\'d block holds its fsync\'d write or a later one');
    t.equal(await vol.stop(), 0, `clean unmount: ${vol.output}`);
  });
}

t.test('kill -9 during replication: after remount no stale copy is served and coverage recovers', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB',
    tiers: [{ name: 'hdd', capacity: '256MiB' }],
    coverageTier: 'hdd',
    extraArgs: ['--copy-rate', '8MiB'],
  });
  for (let f = 0; f < 4; f++) {
    const b = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < b.length; i += 4096) b.writeUInt32LE(f * 1_000_000 + i, i);
    fs.writeFileSync(path.join(sb.live, `r${f}.bin`), b);
  }
  await vol.start();
  // Replication is running (8 MiB/s for 32 MiB); write into the files it is copying, then crash.
  await new Promise((r) => setTimeout(r, 1500));
  for (let f = 0; f < 4; f++) {
    const fd = fs.openSync(path.join(sb.mnt, `r${f}.bin`), 'r+');
    for (let k = 0; k < 64; k++) fs.writeSync(fd, Buffer.alloc(4096, 0xee - f), 0, 4096, (k * 37 % 128) * 65536 + 100);
    fs.closeSync(fd);
  }
  await vol.crash();
  await vol.start();
  for (let f = 0; f < 4; f++) {
    const name = `r${f}.bin`;
    t.ok(fs.readFileSync(path.join(sb.mnt, name)).equals(fs.readFileSync(path.join(sb.live, name))), `${name}: the mount shows the live bytes`);
  }
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  const deadline = Date.now() + 60_000;
  while (status().coverage?.coveredShare !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  t.equal(status().coverage?.coveredShare, 1, 'coverage is back at 100%');
  const temps = fs.readdirSync(sb.tierDir('hdd'), { recursive: true }).map(String).filter((n) => path.basename(n).startsWith('.tmp'));
  t.same(temps, [], 'no temporary copy is left on the tier');
  // Every copy on the tier now matches the live bytes of its extent.
  for (let f = 0; f < 4; f++) {
    const name = `r${f}.bin`;
    t.ok(fs.readFileSync(path.join(sb.mnt, name)).equals(fs.readFileSync(path.join(sb.live, name))), `${name} after coverage caught up`);
  }
  t.equal(await vol.stop(), 0, `clean unmount: ${vol.output}`);
});
