/**
 * Randomized operations through the mount across manual failovers and failbacks, checked against a
 * model (in the spirit of fsx.test.ts): the application never sees an error or a wrong byte, and
 * after each failback the live directory holds exactly what the model (and the mount) holds.
 *
 * Small extents and tiny fast tiers make copies, patches and evictions happen; a directory tier
 * covers everything, and each failover waits for full coverage first, so every byte is expected
 * to survive. Handles stay open across some switches and are reopened after others.
 * SHADOWFS_FAILOVER_FSX_SEED replays a run, SHADOWFS_FAILOVER_FSX_OPS sets the op count,
 * SHADOWFS_FAILOVER_FSX_TRACE=1 prints every op.
 *
 * Below it, each problem the random run found, made into a small test of its own.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import { failoverConfigFile } from '../helpers/failover-config';
import { waitFor } from '../helpers/wait';
import type { HasTeardown } from '../helpers/temp-dir';
import { treeDifferences, treeDigest, TreeDigest } from '../../fixtures/failover-bench/tree-digest';
import { controlRequest } from '../../src/control/control-client';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';
import type { FailoverStatus } from '../../src/failover/failover-controller';
import { seededRandom } from '../../src/util/seeded-random';

const seed = Number(process.env.SHADOWFS_FAILOVER_FSX_SEED ?? Date.now() % 1_000_000);
const OPS = Number(process.env.SHADOWFS_FAILOVER_FSX_OPS ?? 3000);
/** A switch (failover or failback) every SWITCH_EVERY ops on average: ~20 switches by default. */
const SWITCH_EVERY = Math.max(20, Math.round(OPS / 20));
const KiB = 1024;
const EXTENT = 16 * KiB;
const MAX_SIZE = 24 * EXTENT;
const DIRS = ['/d', '/e'];
const FILES = ['/f0', '/f1', '/f2', '/d/g0', '/d/g1', '/e/g0'];
// Modes in the model are exact: files are made 0644 and directories 0755 whatever the caller's umask.
process.umask(0o022);

interface ModelFile {
  data: Buffer;
  mode: number;
}

const parentOf = (p: string): string => p.slice(0, p.lastIndexOf('/')) || '/';

/** `n` bytes from seed `s`. */
function seededBytes(s: number, n: number): Buffer {
  const r = seededRandom(s);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

t.test(`random operations across manual failovers and failbacks (seed ${seed}, ${OPS} ops)`, async (t) => {
  t.comment(`replay with SHADOWFS_FAILOVER_FSX_SEED=${seed}`);
  const { sb, vol } = sandboxedMount(t, (sb) => ({
    configFile: failoverConfigFile(sb, { enabled: false }, sb.live, {
      extentSize: '16KiB',
      admitAfterReads: 1,
      writeAroundAfter: '32KiB',
      tiers: [
        { name: 'nvme', class: 'nvme', path: sb.tierDir('nvme'), capacity: '128KiB' },
        { name: 'ssd', class: 'ssd', path: sb.tierDir('ssd'), capacity: '512KiB' },
        { name: 'hdd', class: 'hdd', path: sb.tierDir('hdd'), capacity: '32MiB' },
      ],
      coverageTier: 'hdd',
    }),
  }), 'failover-fsx-');
  await vol.start();
  const rand = seededRandom(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  const bytes = (n: number): Buffer => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const m = (p: string): string => sb.mnt + p;
  const trace = process.env.SHADOWFS_FAILOVER_FSX_TRACE ? (msg: string): void => void process.stderr.write(msg + '\n') : (): void => undefined;

  // ---- the model ----
  const files = new Map<string, ModelFile>();
  const dirs = new Set<string>();
  const modelTree = (): TreeDigest => {
    const out: TreeDigest = {};
    for (const d of dirs) out[d] = 'dir 755';
    for (const [p, f] of files) out[p] = `file ${f.mode.toString(8)} ${f.data.length} ${createHash('sha256').update(f.data).digest('hex')}`;
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
  };
  const existing = (): string[] => FILES.filter((p) => files.has(p));
  /** Names a file could take: free or not, in a directory that exists. */
  const placeable = (): string[] => FILES.filter((p) => parentOf(p) === '/' || dirs.has(parentOf(p)));

  // ---- open handles (by path; they follow their file across renames) ----
  const fds = new Map<string, number>();
  const fdOf = (p: string): number => {
    let fd = fds.get(p);
    if (fd === undefined) {
      fd = fs.openSync(m(p), 'r+');
      fds.set(p, fd);
    }
    return fd;
  };
  const close = (p: string): void => {
    const fd = fds.get(p);
    if (fd === undefined) return;
    fds.delete(p);
    fs.closeSync(fd);
  };
  const closeAll = (): void => {
    for (const p of [...fds.keys()]) close(p);
  };

  // ---- checks ----
  let failures = 0;
  const fail = (msg: string): void => {
    failures++;
    if (failures <= 5) t.fail(`${msg} (replay: SHADOWFS_FAILOVER_FSX_SEED=${seed})`);
  };
  /** Which extents of `got` differ from `want` (the first few), to say where a file went wrong. */
  const differingExtents = (got: Buffer, want: Buffer): string => {
    const out: string[] = [];
    for (let i = 0; i * EXTENT < Math.max(got.length, want.length) && out.length < 8; i++) {
      const a = got.subarray(i * EXTENT, (i + 1) * EXTENT);
      const b = want.subarray(i * EXTENT, (i + 1) * EXTENT);
      if (a.equals(b)) continue;
      let first = 0;
      while (first < Math.min(a.length, b.length) && a[first] === b[first]) first++;
      let last = Math.min(a.length, b.length) - 1;
      while (last > first && a[last] === b[last]) last--;
      out.push(`extent ${i} bytes ${first}..${last}${a.length !== b.length ? ` (length ${a.length} vs ${b.length})` : ''}${a.subarray(first, last + 1).every((x) => x === 0) ? ' are zeros' : ''}`);
    }
    return out.join(', ');
  };
  const sameTree = (root: string, what: string): void => {
    let got: TreeDigest;
    try {
      got = treeDigest(root);
    } catch (err) {
      fail(`${what}: reading the tree failed: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      return;
    }
    const want = modelTree();
    const diff = treeDifferences(got, want);
    if (diff.length === 0) return;
    const detail = (p: string): string => {
      const f = files.get(p);
      if (!f || !got[p]?.startsWith('file')) return '';
      return `: ${differingExtents(fs.readFileSync(root + p), f.data)}`;
    };
    fail(`${what}: differs from the model at ${diff.map((p) => `${p} (got ${got[p] ?? 'nothing'}, want ${want[p] ?? 'nothing'}${detail(p)})`).join('; ')}`);
  };
  const mountReadsModel = (what: string): void => {
    for (const [p, f] of files) {
      const got = attempt(() => fs.readFileSync(m(p)));
      if (typeof got === 'string') fail(`${what}: ${p} could not be read through a new open: ${got}`);
      else if (!got.equals(f.data)) fail(`${what}: ${p} reads back ${got.length} bytes through a new open, expected ${f.data.length}: ${differingExtents(got, f.data)}`);
    }
  };
  const status = (): Promise<StatusReport> => controlRequest(sb.mnt, { command: 'status' }, 10_000) as Promise<StatusReport>;

  // ---- switches ----
  // In an object: TypeScript does not see the closures below change it.
  const at: { mode: 'live' | 'failed-over' } = { mode: 'live' };
  let failovers = 0;
  let resyncedExtents = 0;
  let refusals = 0;
  const failover = async (op: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      // Every byte written so far has a copy on the coverage tier: nothing may be lost.
      await waitFor(async () => (await status()).coverage?.coveredShare === 1, `full coverage before failover (op ${op})`, 30_000, 50);
      const r = cli(['failover', sb.mnt]);
      if (r.status === 0) break;
      // The failover confirms coverage with a fresh scan, which can find what status does not
      // show yet (files resync wrote whole: see the test of that below): wait once more.
      if (attempt < 5 && /coverage is/.test(r.stderr)) {
        refusals++;
        trace(`${op} failover refused although status had just shown full coverage (${r.stderr.trim()}); waiting again`);
        continue;
      }
      return fail(`op ${op}: failover refused: ${r.stderr.trim()}`);
    }
    const now = (await status()).failover?.mode;
    if (now !== 'failed-over') return fail(`op ${op}: after failover the mode is ${now}`);
    at.mode = 'failed-over';
    failovers++;
    trace(`${op} failed over`);
    sameTree(sb.mnt, `op ${op}: the mount right after failover`);
  };
  const failback = async (op: number): Promise<void> => {
    sameTree(sb.mnt, `op ${op}: the mount right before failback`);
    // The watchdog is off (a manual test): no probe has run, so the operator forces the failback.
    const r = cli(['failback', sb.mnt, '--force', '--json']);
    if (r.status !== 0) return fail(`op ${op}: failback failed: ${r.stderr.trim()}`);
    const s = JSON.parse(r.stdout) as FailoverStatus;
    resyncedExtents += s.lastResync?.extents ?? 0;
    if ((s.lastResync?.conflicts.length ?? 0) > 0) fail(`op ${op}: resync saw conflicts (nobody else touched the live directory): ${s.lastResync?.conflicts.join(', ')}`);
    await waitFor(async () => (await status()).failover?.mode === 'live', `mode live after failback (op ${op})`, 30_000, 50);
    at.mode = 'live';
    trace(`${op} failed back (${s.lastResync?.extents ?? 0} extents resynced)`);
    sameTree(sb.live, `op ${op}: the live directory after failback`);
    sameTree(sb.mnt, `op ${op}: the mount after failback`);
  };

  // ---- the start: a few files and a directory ----
  for (const p of ['/f0', '/f1', '/f2']) {
    const data = bytes(int(MAX_SIZE));
    fs.writeFileSync(m(p), data);
    files.set(p, { data, mode: 0o644 });
  }
  fs.mkdirSync(m('/d'));
  dirs.add('/d');

  let nextSwitch = Math.floor(SWITCH_EVERY / 2) + int(SWITCH_EVERY);
  for (let op = 0; op < OPS && failures === 0; op++) {
    if (op === nextSwitch) {
      // Handles either stay open across the switch, or all are reopened after it.
      if (rand() < 0.5) closeAll();
      if (at.mode === 'live') await failover(op);
      else await failback(op);
      nextSwitch = op + Math.floor(SWITCH_EVERY / 2) + int(SWITCH_EVERY);
      if (failures > 0) break;
    }
    const names = existing();
    const n = names.length > 0 ? pick(names) : undefined;
    const what = rand();
    let desc = '';
    try {
      if (n && what < 0.32) {
        const cur = (files.get(n) as ModelFile).data;
        const off = int(cur.length + EXTENT);
        const len = 1 + int(EXTENT * 2.5);
        desc = `read ${n} ${off} ${len} (size ${cur.length})`;
        trace(`${op} ${desc}`);
        const got = Buffer.alloc(len);
        const r = fs.readSync(fdOf(n), got, 0, len, off);
        const want = cur.subarray(Math.min(off, cur.length), Math.min(off + len, cur.length));
        if (r !== want.length || !got.subarray(0, r).equals(want)) {
          fail(`op ${op} (${at.mode}): read ${n} [${off}, +${len}) got ${r} bytes, expected ${want.length}${r === want.length ? ' (other bytes)' : ''}`);
          t.comment(cli(['which-tier', m(n)]).stdout);
        }
      } else if (n && what < 0.60) {
        // One write, or (one in four) a stream of consecutive writes, which soon writes around copies.
        const f = files.get(n) as ModelFile;
        const writes = rand() < 0.25 ? 2 + int(5) : 1;
        let off = int(Math.min(MAX_SIZE, f.data.length + EXTENT));
        desc = `write ${n}`;
        for (let w = 0; w < writes && off < MAX_SIZE; w++) {
          const len = 1 + int(Math.min(EXTENT * 3, MAX_SIZE - off));
          const data = bytes(len);
          desc = `write ${n} ${off} ${len} (size ${f.data.length})`;
          trace(`${op} ${desc}`);
          fs.writeSync(fdOf(n), data, 0, len, off);
          const next = Buffer.alloc(Math.max(f.data.length, off + len));
          f.data.copy(next);
          data.copy(next, off);
          f.data = next;
          off += len;
        }
      } else if (n && what < 0.68) {
        const f = files.get(n) as ModelFile;
        const size = int(MAX_SIZE);
        const viaFd = rand() < 0.5;
        desc = `truncate ${n} ${size} (size ${f.data.length}, ${viaFd ? 'ftruncate' : 'truncate'})`;
        trace(`${op} ${desc}`);
        if (viaFd) fs.ftruncateSync(fdOf(n), size);
        else fs.truncateSync(m(n), size);
        const next = Buffer.alloc(size);
        f.data.copy(next, 0, 0, Math.min(size, f.data.length));
        f.data = next;
      } else if (n && what < 0.75) {
        // Rename over a free name or over another file; an open handle follows its file.
        const to = pick(placeable());
        if (to !== n) {
          desc = `rename ${n} ${to}${files.has(to) ? ' (replacing)' : ''}`;
          trace(`${op} ${desc}`);
          close(to);
          fs.renameSync(m(n), m(to));
          files.set(to, files.get(n) as ModelFile);
          files.delete(n);
          const fd = fds.get(n);
          fds.delete(n);
          if (fd !== undefined) fds.set(to, fd);
        }
      } else if (what < 0.79) {
        const free = placeable().filter((p) => !files.has(p));
        if (free.length > 0) {
          const p = pick(free);
          const data = bytes(int(3 * EXTENT));
          desc = `create ${p} ${data.length}`;
          trace(`${op} ${desc}`);
          const fd = fs.openSync(m(p), 'wx+');
          fs.writeSync(fd, data, 0, data.length, 0);
          fds.set(p, fd);
          files.set(p, { data, mode: 0o644 });
        }
      } else if (n && what < 0.83) {
        desc = `unlink ${n}`;
        trace(`${op} ${desc}`);
        close(n);
        fs.unlinkSync(m(n));
        files.delete(n);
      } else if (what < 0.87) {
        // A directory: made, removed when empty, or renamed (with what is in it) to a free name.
        const d = pick(DIRS);
        const other = DIRS.find((x) => x !== d) as string;
        const inside = (dir: string): string[] => [...files.keys()].filter((p) => parentOf(p) === dir);
        if (!dirs.has(d)) {
          desc = `mkdir ${d}`;
          trace(`${op} ${desc}`);
          fs.mkdirSync(m(d));
          dirs.add(d);
        } else if (inside(d).length === 0 && rand() < 0.6) {
          desc = `rmdir ${d}`;
          trace(`${op} ${desc}`);
          fs.rmdirSync(m(d));
          dirs.delete(d);
        } else if (!dirs.has(other)) {
          // Only names the model knows may end up inside: /d/g1 has no twin under /e.
          const moved = inside(d);
          if (moved.every((p) => FILES.includes(other + p.slice(d.length)))) {
            desc = `rename ${d} ${other} (${moved.length} files)`;
            trace(`${op} ${desc}`);
            fs.renameSync(m(d), m(other));
            dirs.delete(d);
            dirs.add(other);
            for (const p of moved) {
              const to = other + p.slice(d.length);
              files.set(to, files.get(p) as ModelFile);
              files.delete(p);
              const fd = fds.get(p);
              fds.delete(p);
              if (fd !== undefined) fds.set(to, fd);
            }
          }
        }
      } else if (n && what < 0.91) {
        desc = `fsync ${n}`;
        trace(`${op} ${desc}`);
        if (rand() < 0.5) fs.fsyncSync(fdOf(n));
        else fs.fdatasyncSync(fdOf(n));
      } else if (n && what < 0.93) {
        const f = files.get(n) as ModelFile;
        const next = pick([0o600, 0o640, 0o644]);
        desc = `chmod ${n} ${next.toString(8)}`;
        trace(`${op} ${desc}`);
        fs.chmodSync(m(n), next);
        f.mode = next;
      } else if (n && what < 0.97) {
        // A whole-file read through a new open.
        desc = `read whole ${n}`;
        trace(`${op} ${desc}`);
        const got = fs.readFileSync(m(n));
        const want = (files.get(n) as ModelFile).data;
        if (!got.equals(want)) {
          fail(`op ${op} (${at.mode}): ${n} read whole gave ${got.length} bytes, expected ${want.length}: ${differingExtents(got, want)}`);
          t.comment(cli(['which-tier', m(n)]).stdout);
        }
      } else {
        desc = 'close all';
        trace(`${op} ${desc}`);
        closeAll();
      }
    } catch (err) {
      fail(`op ${op} (${at.mode}): ${desc} failed: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      // Where the file's extents were, for the analysis.
      if (n) t.comment(cli(['which-tier', m(n)]).stdout);
    }
  }

  if (failures === 0 && at.mode === 'failed-over') await failback(OPS);
  if (failures === 0) mountReadsModel('at the end');
  closeAll();
  t.ok(failovers >= 5 || OPS < SWITCH_EVERY * 10, `${failovers} failovers and as many failbacks (${resyncedExtents} extents resynced, ${refusals} failovers refused for coverage at first)`);
  t.equal(failures, 0, `no error and no wrong byte (seed ${seed})`);
  t.equal(await vol.stop(), 0, 'clean unmount');
  if (failures === 0) sameTree(sb.live, 'the live directory after unmount');
  // Across a remount, the mount shows the same.
  await vol.start();
  if (failures === 0) {
    sameTree(sb.mnt, 'the mount after remount');
    mountReadsModel('after remount');
  }
  await vol.stop();
});

// ---- what the random run found, each made minimal ----

/** Until status shows the coverage tier holding every byte. */
async function fullCoverage(mnt: string): Promise<void> {
  await waitFor(async () => ((await controlRequest(mnt, { command: 'status' })) as StatusReport).coverage?.coveredShare === 1, 'full coverage', 30_000, 50);
}

/** A mount with 16 KiB extents and a directory coverage tier, holding `files`, all of them covered. */
async function coveredMount(t: HasTeardown, prefix: string, files: Record<string, Buffer>) {
  const { sb, vol } = sandboxedMount(t, (sb) => ({ configFile: failoverConfigFile(sb, { enabled: false }, sb.live, { extentSize: '16KiB' }) }), prefix);
  await vol.start();
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(sb.mnt, name), data);
  await fullCoverage(sb.mnt);
  return { sb, vol };
}

/** 'ok', or why the CLI refused. */
function failover(mnt: string): string {
  const r = cli(['failover', mnt]);
  return r.status === 0 ? 'ok' : r.stderr.trim();
}

/** 'ok', or why the CLI failed (forced: the watchdog is off, no probe has run). */
function failback(mnt: string): string {
  const r = cli(['failback', mnt, '--force']);
  return r.status === 0 ? 'ok' : r.stderr.trim();
}

/** What `fn` returns, or the errno code it threw: an error becomes a failed assertion, not a crash. */
function attempt<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

t.test('two files swapped by renames while failed over, one of them written: after failback each live file holds its own bytes', async (t) => {
  const a = seededBytes(1, 40_000);
  const b = seededBytes(2, 30_000);
  const { sb } = await coveredMount(t, 'failover-fsx-swap-', { x: a, y: b });
  t.equal(failover(sb.mnt), 'ok', 'failed over');
  const patch = seededBytes(3, EXTENT);
  const fd = fs.openSync(path.join(sb.mnt, 'x'), 'r+');
  fs.writeSync(fd, patch, 0, patch.length, 0);
  fs.closeSync(fd);
  patch.copy(a, 0);
  fs.renameSync(path.join(sb.mnt, 'x'), path.join(sb.mnt, 't'));
  fs.renameSync(path.join(sb.mnt, 'y'), path.join(sb.mnt, 'x'));
  fs.renameSync(path.join(sb.mnt, 't'), path.join(sb.mnt, 'y'));
  t.equal(failback(sb.mnt), 'ok', 'failed back');
  t.ok(fs.readFileSync(path.join(sb.live, 'y')).equals(a), 'live y holds the written file');
  t.ok(fs.readFileSync(path.join(sb.live, 'x')).equals(b), 'live x holds the other one, without the write made to the first');
  t.same(treeDigest(sb.live), treeDigest(sb.mnt), 'the live directory holds what the mount shows');
});

t.test('a written file renamed away while failed over and a new file put at its name: after failback the new file holds only its own bytes', async (t) => {
  const a = seededBytes(4, 40_000);
  const { sb } = await coveredMount(t, 'failover-fsx-replaced-', { f0: a });
  // Held open across the switches (which keeps its live inode from being reused by resync's new
  // file: without the handle the outcome depends on the inode number ext4 hands out).
  const held = fs.openSync(path.join(sb.mnt, 'f0'), 'r+');
  t.equal(failover(sb.mnt), 'ok', 'failed over');
  const patch = seededBytes(5, EXTENT);
  fs.writeSync(held, patch, 0, patch.length, 0);
  patch.copy(a, 0);
  fs.renameSync(path.join(sb.mnt, 'f0'), path.join(sb.mnt, 'f2'));
  const b = seededBytes(6, 30_000);
  fs.writeFileSync(path.join(sb.mnt, 'g'), b);
  fs.renameSync(path.join(sb.mnt, 'g'), path.join(sb.mnt, 'f0'));
  t.equal(failback(sb.mnt), 'ok', 'failed back');
  fs.closeSync(held);
  t.ok(fs.readFileSync(path.join(sb.live, 'f2')).equals(a), 'live f2 holds the renamed file');
  t.ok(fs.readFileSync(path.join(sb.live, 'f0')).equals(b), 'live f0 holds the new file, without the write made to the renamed one');
  t.ok(fs.readFileSync(path.join(sb.mnt, 'f0')).equals(b), 'and so does the mount');
});

t.test('an unmount right after a written file is closed, while copies of it are still queued, is clean', async (t) => {
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '16KiB',
    admitAfter: 1,
    tiers: [{ name: 'nvme', capacity: '64MiB' }, { name: 'hdd', capacity: '256MiB', cls: 'hdd' }],
    coverageTier: 'hdd',
    // Slow copies: those the read asks for are still queued when the unmount comes.
    extraArgs: ['--copy-rate', '64KiB'],
  }, 'failover-fsx-unmount-');
  await vol.start();
  const data = seededBytes(7, 8 * EXTENT);
  const fd = fs.openSync(path.join(sb.mnt, 'f'), 'w+');
  fs.writeSync(fd, data, 0, data.length, 0);
  // A read through a new open admits its extents: copies are queued, and hold the file open.
  t.ok(fs.readFileSync(path.join(sb.mnt, 'f')).equals(data), 'the file reads back');
  fs.closeSync(fd);
  // The kernel sends the release after close(2) returns: a moment for the mount to get it.
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await vol.stop(), 0, 'clean unmount');
  t.notMatch(vol.output, /Database is not open/, 'nothing wrote to the extent map after it was closed');
});

t.test('a file renamed while live with a handle open: after failover the handle still writes and reads it', async (t) => {
  const data = seededBytes(8, 3 * EXTENT);
  const { sb } = await coveredMount(t, 'failover-fsx-renamed-open-', {});
  const fd = fs.openSync(path.join(sb.mnt, 'a'), 'w+');
  fs.writeSync(fd, data, 0, data.length, 0);
  fs.renameSync(path.join(sb.mnt, 'a'), path.join(sb.mnt, 'b'));
  await fullCoverage(sb.mnt);
  t.equal(failover(sb.mnt), 'ok', 'failed over');
  const patch = seededBytes(9, 100);
  t.equal(attempt(() => fs.writeSync(fd, patch, 0, patch.length, EXTENT + 10)), patch.length, 'a write through the handle succeeds');
  patch.copy(data, EXTENT + 10);
  const got = Buffer.alloc(data.length);
  t.equal(attempt(() => fs.readSync(fd, got, 0, got.length, 0)), data.length, 'a read through the handle succeeds');
  t.ok(got.equals(data), 'and returns the bytes written');
  fs.closeSync(fd);
  t.equal(failback(sb.mnt), 'ok', 'failed back');
  t.ok(fs.readFileSync(path.join(sb.live, 'b')).equals(data), 'the live file holds every write');
});

t.test('a file made while failed over, held open across failback and then renamed: the handle still writes it', async (t) => {
  const { sb } = await coveredMount(t, 'failover-fsx-held-renamed-', {});
  t.equal(failover(sb.mnt), 'ok', 'failed over');
  const data = seededBytes(10, 2 * EXTENT);
  const fd = fs.openSync(path.join(sb.mnt, 'a'), 'w+');
  fs.writeSync(fd, data, 0, data.length, 0);
  t.equal(failback(sb.mnt), 'ok', 'failed back');
  fs.renameSync(path.join(sb.mnt, 'a'), path.join(sb.mnt, 'b'));
  const patch = seededBytes(11, 100);
  t.equal(attempt(() => fs.writeSync(fd, patch, 0, patch.length, 10)), patch.length, 'a write through the handle succeeds');
  patch.copy(data, 10);
  fs.closeSync(fd);
  t.ok(fs.readFileSync(path.join(sb.live, 'b')).equals(data), 'the live file holds every write');
});

t.test('a file renamed while live with a handle open, and a new file made at its old name: after failover a write through the handle changes only its own file', async (t) => {
  const g = seededBytes(12, 3 * EXTENT);
  const h = seededBytes(13, 100);
  const { sb } = await coveredMount(t, 'failover-fsx-renamed-reused-', {});
  const fd = fs.openSync(path.join(sb.mnt, 'a'), 'w+');
  fs.writeSync(fd, g, 0, g.length, 0);
  fs.renameSync(path.join(sb.mnt, 'a'), path.join(sb.mnt, 'b'));
  fs.writeFileSync(path.join(sb.mnt, 'a'), h);
  await fullCoverage(sb.mnt);
  t.equal(failover(sb.mnt), 'ok', 'failed over');
  const patch = seededBytes(14, 10);
  t.equal(attempt(() => fs.writeSync(fd, patch, 0, patch.length, 0)), patch.length, 'a write through the handle succeeds');
  patch.copy(g, 0);
  fs.closeSync(fd);
  t.equal(fs.statSync(path.join(sb.mnt, 'a')).size, h.length, 'the file at the old name keeps its size');
  t.same(attempt(() => fs.readFileSync(path.join(sb.mnt, 'a'))), h, 'and its bytes');
  t.same(attempt(() => fs.readFileSync(path.join(sb.mnt, 'b'))), g, 'the renamed file has the write');
  t.equal(failback(sb.mnt), 'ok', 'failed back');
  t.ok(fs.readFileSync(path.join(sb.live, 'a')).equals(h), 'live: the file at the old name is unchanged');
  t.ok(fs.readFileSync(path.join(sb.live, 'b')).equals(g), 'live: the renamed file has the write');
});

t.test('a file made while failed over is covered again after failback before status shows full coverage', async (t) => {
  const { sb } = await coveredMount(t, 'failover-fsx-made-while-over-', {});
  t.equal(failover(sb.mnt), 'ok', 'failed over');
  const data = seededBytes(15, 3 * EXTENT);
  fs.writeFileSync(path.join(sb.mnt, 'new'), data);
  t.equal(failback(sb.mnt), 'ok', 'failed back');
  // Resync wrote the file whole: a new live inode, whose extents need copies on the coverage tier.
  // Status must not read 100% before they are there: an automatic failover does not look further.
  await fullCoverage(sb.mnt);
  const placement = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, 'new')]).stdout) as WhichTierReport;
  const uncovered = placement.extents.filter((x) => !x.fresh.includes('hdd')).map((x) => x.index);
  t.same(uncovered, [], 'when status shows full coverage, every extent of the file has a fresh copy on the coverage tier');
  t.equal(placement.extents.length, 3, 'all three extents are listed');
});

t.test('a file removed while failed over after its directory was renamed away stays removed, also when a new directory takes the old name', async (t) => {
  const { sb } = await coveredMount(t, 'failover-fsx-removed-moved-', {});
  fs.mkdirSync(path.join(sb.mnt, 'd'));
  fs.writeFileSync(path.join(sb.mnt, 'd/x'), seededBytes(16, 100));
  await fullCoverage(sb.mnt);
  t.equal(failover(sb.mnt), 'ok', 'failed over');
  fs.renameSync(path.join(sb.mnt, 'd'), path.join(sb.mnt, 'e'));
  fs.unlinkSync(path.join(sb.mnt, 'e/x'));
  fs.rmdirSync(path.join(sb.mnt, 'e'));
  fs.mkdirSync(path.join(sb.mnt, 'd'));
  t.same(Object.keys(treeDigest(sb.mnt)), ['/d'], 'failed over, the mount shows the new, empty directory');
  t.equal(failback(sb.mnt), 'ok', 'failed back');
  t.same(Object.keys(treeDigest(sb.live)), ['/d'], 'the live directory holds it alone: the removed file did not come back');
  t.same(Object.keys(treeDigest(sb.mnt)), ['/d'], 'and so does the mount');
});
