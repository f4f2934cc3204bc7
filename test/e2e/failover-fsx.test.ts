/**
 * Randomized operations through the mount across manual failovers and failbacks, checked against a
 * model (in the spirit of fsx.test.ts): the application never sees an error or a wrong byte, and
 * after each failback the live directory holds exactly what the model (and the mount) holds.
 *
 * Small extents and tiny fast tiers make copies, patches and evictions happen; a directory tier
 * covers everything, and each failover waits for full coverage first, so every byte is expected
 * to survive. Handles stay open across some switches and are reopened after others. The ops and
 * the checks are the model of test/helpers/fsx-model.ts (shared with tiers-fsx.test.ts).
 * SHADOWFS_FAILOVER_FSX_SEED replays a run, SHADOWFS_FAILOVER_FSX_OPS sets the op count,
 * SHADOWFS_FAILOVER_FSX_TRACE=1 prints every op.
 *
 * Below it, each problem the random run found, made into a small test of its own.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import { failoverConfigFile, fsxVolumeExtra } from '../helpers/failover-config';
import { FSX_EXTENT_BYTES as EXTENT, FSX_MAX_FILE_BYTES as MAX_SIZE, FsxModel, FsxOpTable, fsxKnobs, seededBytes } from '../helpers/fsx-model';
import { waitFor } from '../helpers/wait';
import type { HasTeardown } from '../helpers/temp-dir';
import { treeDigest } from '../../fixtures/failover-bench/tree-digest';
import { controlRequest } from '../../src/control/control-client';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';
import type { FailoverStatus } from '../../src/failover/failover-controller';
import { seededRandom } from '../../src/util/seeded-random';

const { seed, ops: OPS, trace } = fsxKnobs('FAILOVER_FSX', 3000);
/** A switch (failover or failback) every SWITCH_EVERY ops on average: ~20 switches by default. */
const SWITCH_EVERY = Math.max(20, Math.round(OPS / 20));
const DIRS = ['/d', '/e'];
const FILES = ['/f0', '/f1', '/f2', '/d/g0', '/d/g1', '/e/g0'];
/** The share of each op (cumulative; ops on a file are skipped while there is none). */
const OP_TABLE: FsxOpTable = [
  ['read', 0.32], ['write', 0.60], ['truncate', 0.68], ['rename', 0.75], ['create', 0.79], ['unlink', 0.83],
  ['dir', 0.87], ['fsync', 0.91], ['chmod', 0.93], ['read-whole', 0.97], ['close-all', 1],
];
// Modes in the model are exact: files are made 0644 and directories 0755 whatever the caller's umask.
process.umask(0o022);

t.test(`random operations across manual failovers and failbacks (seed ${seed}, ${OPS} ops)`, async (t) => {
  t.comment(`replay with SHADOWFS_FAILOVER_FSX_SEED=${seed}`);
  const { sb, vol } = sandboxedMount(t, (sb) => ({
    configFile: failoverConfigFile(sb, { enabled: false }, sb.live, fsxVolumeExtra(sb)),
  }), 'failover-fsx-');
  await vol.start();
  const rand = seededRandom(seed);
  // In an object: TypeScript does not see the closures below change it.
  const at: { mode: 'live' | 'failed-over' } = { mode: 'live' };
  const model = new FsxModel({
    t, mnt: sb.mnt, rand, files: FILES, dirs: DIRS, ops: OP_TABLE,
    note: () => `replay: SHADOWFS_FAILOVER_FSX_SEED=${seed}`,
    opState: () => at.mode,
    trace,
  });
  const fail = (msg: string): void => model.fail(msg);
  const status = (): Promise<StatusReport> => controlRequest(sb.mnt, { command: 'status' }, 10_000) as Promise<StatusReport>;

  // ---- switches ----
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
    model.sameTree(sb.mnt, `op ${op}: the mount right after failover`);
  };
  const failback = async (op: number): Promise<void> => {
    model.sameTree(sb.mnt, `op ${op}: the mount right before failback`);
    // The watchdog is off (a manual test): no probe has run, so the operator forces the failback.
    const r = cli(['failback', sb.mnt, '--force', '--json']);
    if (r.status !== 0) return fail(`op ${op}: failback failed: ${r.stderr.trim()}`);
    const s = JSON.parse(r.stdout) as FailoverStatus;
    resyncedExtents += s.lastResync?.extents ?? 0;
    if ((s.lastResync?.conflicts.length ?? 0) > 0) fail(`op ${op}: resync saw conflicts (nobody else touched the live directory): ${s.lastResync?.conflicts.join(', ')}`);
    await waitFor(async () => (await status()).failover?.mode === 'live', `mode live after failback (op ${op})`, 30_000, 50);
    at.mode = 'live';
    trace(`${op} failed back (${s.lastResync?.extents ?? 0} extents resynced)`);
    model.sameTree(sb.live, `op ${op}: the live directory after failback`);
    model.sameTree(sb.mnt, `op ${op}: the mount after failback`);
  };

  // ---- the start: a few files and a directory ----
  for (const p of ['/f0', '/f1', '/f2']) model.writeFile(p, model.bytes(model.int(MAX_SIZE)));
  model.mkdir('/d');

  let nextSwitch = Math.floor(SWITCH_EVERY / 2) + model.int(SWITCH_EVERY);
  for (let op = 0; op < OPS && model.failures === 0; op++) {
    if (op === nextSwitch) {
      // Handles either stay open across the switch, or all are reopened after it.
      if (rand() < 0.5) model.closeAll();
      if (at.mode === 'live') await failover(op);
      else await failback(op);
      nextSwitch = op + Math.floor(SWITCH_EVERY / 2) + model.int(SWITCH_EVERY);
      if (model.failures > 0) break;
    }
    await model.randomOp(op);
  }

  if (model.failures === 0 && at.mode === 'failed-over') await failback(OPS);
  if (model.failures === 0) model.mountReadsModel('at the end');
  model.closeAll();
  t.ok(failovers >= 5 || OPS < SWITCH_EVERY * 10, `${failovers} failovers and as many failbacks (${resyncedExtents} extents resynced, ${refusals} failovers refused for coverage at first)`);
  t.equal(model.failures, 0, `no error and no wrong byte (seed ${seed})`);
  t.equal(await vol.stop(), 0, 'clean unmount');
  if (model.failures === 0) model.sameTree(sb.live, 'the live directory after unmount');
  // Across a remount, the mount shows the same.
  await vol.start();
  if (model.failures === 0) {
    model.sameTree(sb.mnt, 'the mount after remount');
    model.mountReadsModel('after remount');
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
