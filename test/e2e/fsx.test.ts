/**
 * Randomized operations through the mount, checked byte for byte against a model after every
 * read (in the spirit of fsx). Small extents, admission after one read and a tiny fast tier make
 * copies, patches, evictions, stale copies and write-around happen all the time. SHADOWFS_FSX_SEED
 * replays a run.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import type { StatusReport } from '../../src/control/protocol';
import { seededRandom } from '../../src/util/seeded-random';

const seed = Number(process.env.SHADOWFS_FSX_SEED ?? Date.now() % 1_000_000);
const OPS = Number(process.env.SHADOWFS_FSX_OPS ?? 3000);
const EXTENT = 16 * 1024;
const MAX_SIZE = 40 * EXTENT;


t.test(`fsx-style random operations (seed ${seed}, ${OPS} ops)`, async (t) => {
  t.comment(`replay with SHADOWFS_FSX_SEED=${seed}`);
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '16KiB',
    admitAfter: 1,
    tiers: [{ name: 'nvme', capacity: '256KiB' }, { name: 'ssd', capacity: '2MiB' }],
    // Streams of writes (below) reach it: write-around mixes with copies, truncates and renames.
    extraArgs: ['--write-around-after', '32KiB'],
  });
  await vol.start();
  const rand = seededRandom(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const names = ['f0', 'f1', 'f2'];
  const model = new Map<string, Buffer>();
  for (const n of names) {
    const init = Buffer.alloc(int(MAX_SIZE));
    for (let i = 0; i < init.length; i++) init[i] = int(256);
    fs.writeFileSync(path.join(sb.mnt, n), init);
    model.set(n, init);
  }
  const fds = new Map<string, number>();
  const fdOf = (n: string): number => {
    let fd = fds.get(n);
    if (fd === undefined) {
      fd = fs.openSync(path.join(sb.mnt, n), 'r+');
      fds.set(n, fd);
    }
    return fd;
  };
  const closeAll = (): void => {
    for (const fd of fds.values()) fs.closeSync(fd);
    fds.clear();
  };
  let mismatches = 0;
  const trace = process.env.SHADOWFS_FSX_TRACE ? (msg: string): void => void process.stderr.write(msg + '\n') : (): void => undefined;
  const check = (op: number, n: string, off: number, len: number): void => {
    const want = model.get(n) as Buffer;
    const got = Buffer.alloc(len);
    const r = fs.readSync(fdOf(n), got, 0, len, off);
    const expected = want.subarray(Math.min(off, want.length), Math.min(off + len, want.length));
    if (r !== expected.length || !got.subarray(0, r).equals(expected)) {
      mismatches++;
      if (mismatches <= 3) t.fail(`op ${op}: read ${n} [${off}, +${len}) got ${r} bytes, expected ${expected.length}; seed ${seed}`);
    }
  };
  for (let op = 0; op < OPS && mismatches === 0; op++) {
    const n = names[int(names.length)];
    const cur = model.get(n) as Buffer;
    const what = rand();
    if (what < 0.45) {
      const off = int(cur.length + EXTENT);
      const len = 1 + int(EXTENT * 2.5);
      trace(`${op} read ${n} ${off} ${len} (size ${cur.length})`);
      check(op, n, off, len);
    } else if (what < 0.8) {
      // One write, or (one in four) a stream of consecutive writes, which soon writes around copies.
      const writes = rand() < 0.25 ? 2 + int(6) : 1;
      let off = int(Math.min(MAX_SIZE, cur.length + EXTENT));
      let next = cur;
      for (let w = 0; w < writes && off < MAX_SIZE; w++) {
        const len = 1 + int(Math.min(EXTENT * 3, MAX_SIZE - off));
        const data = Buffer.alloc(len);
        for (let i = 0; i < len; i++) data[i] = int(256);
        trace(`${op} write ${n} ${off} ${len} (size ${next.length})`);
        fs.writeSync(fdOf(n), data, 0, len, off);
        const grown = Buffer.alloc(Math.max(next.length, off + len));
        next.copy(grown);
        data.copy(grown, off);
        next = grown;
        off += len;
      }
      model.set(n, next);
    } else if (what < 0.88) {
      const size = int(MAX_SIZE);
      trace(`${op} truncate ${n} ${size} (size ${cur.length})`);
      if (rand() < 0.5) fs.ftruncateSync(fdOf(n), size);
      else fs.truncateSync(path.join(sb.mnt, n), size);
      const next = Buffer.alloc(size);
      cur.copy(next, 0, 0, Math.min(size, cur.length));
      model.set(n, next);
    } else if (what < 0.92) {
      const other = names[int(names.length)];
      if (other !== n) {
        closeAll();
        trace(`${op} rename ${n} ${other}`);
        fs.renameSync(path.join(sb.mnt, n), path.join(sb.mnt, other));
        model.set(other, cur);
        fs.writeFileSync(path.join(sb.mnt, n), Buffer.alloc(0));
        model.set(n, Buffer.alloc(0));
      }
    } else if (what < 0.95) {
      fs.fsyncSync(fdOf(n));
    } else if (what < 0.98) {
      closeAll();
    } else {
      // Let background copies land so later reads come from the tiers.
      closeAll();
      await new Promise((r) => setTimeout(r, 30));
    }
  }
  closeAll();
  for (const n of names) {
    t.ok(fs.readFileSync(path.join(sb.mnt, n)).equals(model.get(n) as Buffer), `${n} matches the model at the end`);
    t.ok(fs.readFileSync(path.join(sb.live, n)).equals(model.get(n) as Buffer), `live ${n} matches the model`);
  }
  t.equal(mismatches, 0, `no mismatching read (seed ${seed})`);
  const servedByTiers = (): { redirector: number; native: number } => {
    const report = JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
    // Native reads of the live file (extents without a copy) are not reads of the tiers.
    return { redirector: report.served.filter((s) => s.source !== 'live').reduce((a, s) => a + s.reads, 0), native: report.fastPath.copyHits ?? 0 };
  };
  // Some seeds never give a copy a quiet moment to land before the next write or truncate: then
  // let copies land and read again, so that every run checks bytes served by the tiers too.
  let served = servedByTiers();
  for (let round = 0; round < 15 && served.redirector + served.native === 0; round++) {
    await new Promise((r) => setTimeout(r, 300));
    for (const n of names) t.ok(fs.readFileSync(path.join(sb.mnt, n)).equals(model.get(n) as Buffer), `${n} matches the model (quiet round ${round})`);
    served = servedByTiers();
  }
  t.ok(served.redirector + served.native > 0, `reads came from the tiers (${served.redirector} via the redirector, ${served.native} on the fast path)`);
  const nativeWrites = (JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport).nativeWrites;
  const shadow = (JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport).shadow;
  t.comment(`writes: ${nativeWrites?.hits ?? 0} written natively, ${nativeWrites?.misses ?? 0} through the redirector; ${shadow.writtenAround ?? 0} copies written around`);
  t.equal(await vol.stop(), 0, 'clean unmount');
  // Across a remount, nothing stale comes back.
  await vol.start();
  for (const n of names) t.ok(fs.readFileSync(path.join(sb.mnt, n)).equals(model.get(n) as Buffer), `${n} after remount`);
  await vol.stop();
});
