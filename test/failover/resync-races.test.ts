/**
 * Resync replays onto the live volume what was written while failed over, in passes that run while
 * the application keeps writing to the shadows. A write that lands while a pass is busy must reach
 * the live file by the final pass: neither the bytes read before it (checked against the generation
 * they were read at) nor a size learnt before it may clear its journal entry unwritten.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Resync } from '../../src/failover/resync';
import { FailoverJournal, FailoverStore } from '../../src/failover/failover-store';
import { NamespaceMirror, entryFromStats } from '../../src/failover/namespace-mirror';
import { LiveGuard } from '../../src/failover/live-guard';
import { createLogger, silentLogger } from '../../src/util/log';
import type { ExtentRef } from '../../src/tiers/tier';
import { directoryTierFixture, TierFixture } from '../helpers/tier-fixture';
import type { HasTeardown } from '../helpers/temp-dir';

const E = 64 * 1024;

interface Rig extends TierFixture {
  live: string;
  mirror: NamespaceMirror;
  journal: FailoverJournal;
  resync: Resync;
  /** A live file as it was when the failover began, mirrored; returns its file id. */
  liveFile(name: string, bytes: Buffer): string;
  /** A file created while failed over (no live file behind it); returns its file id. */
  newFile(name: string): string;
  /** A write while failed over: the whole extent on the tier, committed, journaled. */
  shadowWrite(name: string, index: number, bytes: Buffer, newSize?: number): Promise<void>;
  /** The tier's reads of `fileId` finish, then wait until the returned release is called. */
  holdReads(fileId: string): { reached: () => boolean; release: () => void };
}

/** `errors`, when given, collects what resync logs as errors. */
async function rig(t: HasTeardown, errors?: string[]): Promise<Rig> {
  const fx = await directoryTierFixture(t);
  const live = path.join(fx.dir, 'live');
  fs.mkdirSync(live);
  const store = await FailoverStore.open(path.join(fx.dir, 'failover'));
  t.teardown(() => store.close());
  const failedOverAtMs = Date.now() - 60_000;
  const journal: FailoverJournal = {
    mode: 'resyncing', failedOverAtMs, reason: 'test', dirty: new Map(), lost: new Set(), touched: new Set(),
    namespaceChanged: false, removed: new Set(), resynced: new Set(), nextSyntheticId: 1,
  };
  const mirror = new NamespaceMirror();
  mirror.set('/', entryFromStats(fs.statSync(live)));
  const resync = new Resync({
    livePath: live, mirror, journal, store, map: fx.map, tiers: fx.tiers,
    guard: new LiveGuard({ deadlineMs: 10_000, syncDeadlineMs: 10_000, maxConcurrent: 4 }),
    extentSizeBytes: E, log: errors ? createLogger('error', (l) => errors.push(l)) : silentLogger, bytesPerSec: 1 << 30, isOpen: () => false, dropFile: async () => undefined,
  });
  const idOf = (name: string): string => mirror.get(`/${name}`)?.fileId as string;
  return {
    ...fx, live, mirror, journal, resync,
    liveFile(name, bytes) {
      const p = path.join(live, name);
      fs.writeFileSync(p, bytes);
      // Last changed before the failover: not a conflict.
      const before = new Date(failedOverAtMs - 60_000);
      fs.utimesSync(p, before, before);
      const e = entryFromStats(fs.statSync(p));
      mirror.set(`/${name}`, { ...e, liveSize: e.size });
      return e.fileId as string;
    },
    newFile(name) {
      const fileId = `s${(journal.nextSyntheticId++).toString(36)}`;
      const now = Date.now();
      mirror.set(`/${name}`, {
        type: 'file', mode: fs.constants.S_IFREG | 0o644, uid: 0, gid: 0, size: 0, nlink: 1, rdev: 0,
        atimeMs: now, mtimeMs: now, ctimeMs: now, fileId, liveSize: 0,
      });
      journal.touched.add(fileId);
      return fileId;
    },
    async shadowWrite(name, index, bytes, newSize) {
      const fileId = idOf(name);
      await fx.tier.put({ fileId, index }, bytes);
      await fx.map.commitShadowWrite(fileId, index, [fx.tierId], bytes.length);
      let dirty = journal.dirty.get(fileId);
      if (!dirty) journal.dirty.set(fileId, (dirty = new Set()));
      dirty.add(index);
      const e = mirror.get(`/${name}`);
      if (!e) throw new Error(`no entry for ${name}`);
      mirror.set(`/${name}`, { ...e, size: Math.max(e.size, newSize ?? 0), mtimeMs: Date.now() });
      journal.touched.add(fileId);
    },
    holdReads(fileId) {
      let reached = false;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const realRead = fx.tier.read.bind(fx.tier);
      fx.tier.read = async (ref: ExtentRef, offset: number, length: number, into: Buffer, at: number) => {
        const n = await realRead(ref, offset, length, into, at);
        if (ref.fileId === fileId) {
          reached = true;
          await gate;
        }
        return n;
      };
      return { reached: () => reached, release };
    },
  };
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('a write landing while resync reads the extent reaches the live file', async (t) => {
  const r = await rig(t);
  const fileId = r.liveFile('f', Buffer.alloc(E, 0x11));
  const first = Buffer.alloc(E, 0x22);
  const second = Buffer.alloc(E, 0x33);
  await r.shadowWrite('f', 0, first);

  const held = r.holdReads(fileId);
  const pass = r.resync.pass(false);
  await until(held.reached);
  // The first write's bytes are read; the second write lands before the pass goes on.
  await r.shadowWrite('f', 0, second);
  held.release();
  t.ok((await pass) >= 1, 'the pass leaves the extent for the next one');
  t.ok(r.journal.dirty.get(fileId)?.has(0), 'still journaled');
  await r.resync.pass(true);
  t.ok(fs.readFileSync(path.join(r.live, 'f')).equals(second), 'the live file holds the second write');
  t.equal(r.journal.dirty.size, 0, 'nothing left to replay');
});

t.test('a final pass that could not settle an extent leaves it journaled, and a final pass again settles it', async (t) => {
  // What failback relies on when it repeats the last pass (failover-controller.ts, FINAL_PASS_RETRIES).
  const r = await rig(t);
  const fileId = r.liveFile('f', Buffer.alloc(E, 0x11));
  await r.shadowWrite('f', 0, Buffer.alloc(E, 0x22));
  const held = r.holdReads(fileId);
  const pass = r.resync.pass(true);
  await until(held.reached);
  await r.shadowWrite('f', 0, Buffer.alloc(E, 0x33));
  held.release();
  t.ok((await pass) >= 1, 'the final pass says it left the extent');
  t.ok(r.journal.dirty.get(fileId)?.has(0), 'still journaled after it');
  t.equal(await r.resync.pass(true), 0, 'the next final pass leaves nothing');
  t.ok(fs.readFileSync(path.join(r.live, 'f')).equals(Buffer.alloc(E, 0x33)), 'the live file holds the last write');
  t.equal(r.journal.dirty.size, 0);
});

t.test('a file grown while a pass is busy before it gets its new extent', async (t) => {
  const r = await rig(t);
  const aId = r.liveFile('a', Buffer.alloc(E, 0x01));
  r.liveFile('f', Buffer.alloc(E, 0x02));
  await r.shadowWrite('a', 0, Buffer.alloc(E, 0x03));

  const held = r.holdReads(aId);
  const pass = r.resync.pass(false);
  await until(held.reached);
  // While the pass replays a, f grows by a whole extent (written while failed over).
  await r.shadowWrite('f', 1, Buffer.alloc(E, 0x04), 2 * E);
  held.release();
  await pass;
  await r.resync.pass(true);
  const want = Buffer.concat([Buffer.alloc(E, 0x02), Buffer.alloc(E, 0x04)]);
  const got = fs.readFileSync(path.join(r.live, 'f'));
  t.equal(got.length, 2 * E, 'f has its new size');
  t.ok(got.equals(want), 'and its new extent');
  t.ok(fs.readFileSync(path.join(r.live, 'a')).equals(Buffer.alloc(E, 0x03)), 'a was replayed');
  t.equal(r.journal.dirty.size, 0, 'nothing left to replay');
});

t.test('a file made while failed over and grown while resync copies it is written whole again', async (t) => {
  const r = await rig(t);
  const fileId = r.newFile('n');
  await r.shadowWrite('n', 0, Buffer.alloc(E, 0x05), E);

  const held = r.holdReads(fileId);
  const pass = r.resync.pass(false);
  await until(held.reached);
  // The pass has copied extent 0 to a new live file; the application appends a whole extent.
  await r.shadowWrite('n', 1, Buffer.alloc(E, 0x06), 2 * E);
  held.release();
  t.ok((await pass) >= 1, 'the pass leaves the file for the next one');
  t.equal(r.mirror.get('/n')?.size, 2 * E, 'the mount still shows the grown file');
  await r.resync.pass(true);
  const got = fs.readFileSync(path.join(r.live, 'n'));
  t.equal(got.length, 2 * E, 'the live file has the grown size');
  t.ok(got.equals(Buffer.concat([Buffer.alloc(E, 0x05), Buffer.alloc(E, 0x06)])), 'and both extents');
  t.same(fs.readdirSync(r.live), ['n'], 'no temporary file is left');
  t.equal(r.journal.dirty.size, 0, 'nothing left to replay');
});

t.test('a conflict kept aside stays aside when its file has to be written again', async (t) => {
  const r = await rig(t);
  const fileId = r.liveFile('c', Buffer.alloc(E, 0x07));
  await r.shadowWrite('c', 0, Buffer.alloc(E, 0x08));
  // Someone else changes the live file during the failover: a conflict.
  fs.writeFileSync(path.join(r.live, 'c'), Buffer.alloc(E, 0x09));

  const held = r.holdReads(fileId);
  const pass = r.resync.pass(false);
  await until(held.reached);
  await r.shadowWrite('c', 0, Buffer.alloc(E, 0x0a));
  held.release();
  t.ok((await pass) >= 1, 'the pass leaves the file for the next one');
  await r.resync.pass(true);
  t.ok(fs.readFileSync(path.join(r.live, 'c')).equals(Buffer.alloc(E, 0x0a)), 'the mount\'s version is the file');
  const aside = fs.readdirSync(r.live).filter((n) => n.startsWith('c.shadowfs-conflict-'));
  t.equal(aside.length, 1, 'one conflict copy');
  t.ok(aside.length === 1 && fs.readFileSync(path.join(r.live, aside[0])).equals(Buffer.alloc(E, 0x09)), 'holding the other writer\'s bytes');
});

t.test('resync removes what the mount removed, and never a live file the mirror missed', async (t) => {
  const r = await rig(t);
  const old = new Date(Date.now() - 10 * 60_000);
  r.liveFile('gone', Buffer.alloc(E, 1));
  // A live file the mirror never learnt of (say, made while the tree was walked).
  fs.writeFileSync(path.join(r.live, 'missed'), 'not in the mirror');
  fs.utimesSync(path.join(r.live, 'missed'), old, old);
  // A directory with a file, renamed away while failed over.
  fs.mkdirSync(path.join(r.live, 'd'));
  r.mirror.set('/d', entryFromStats(fs.statSync(path.join(r.live, 'd'))));
  r.liveFile('d/f', Buffer.alloc(E, 2));
  fs.utimesSync(path.join(r.live, 'd'), old, old);

  // The failover comes after all that (a removal counts a file's ctime, which cannot be set back).
  r.journal.failedOverAtMs = Date.now();
  // While failed over: /gone is unlinked, /d is renamed to /e (journaled as the mount does).
  r.mirror.delete('/gone');
  r.mirror.rename('/d', '/e');
  for (const p of ['/gone', '/d']) r.journal.removed.add(p);
  r.journal.touched.add('p:/e');
  r.journal.touched.add(r.mirror.get('/e/f')?.fileId as string);
  r.journal.namespaceChanged = true;
  await r.resync.pass(true);

  const names = (dir: string): string[] => fs.readdirSync(path.join(r.live, dir)).sort();
  t.same(names('.'), ['e', 'missed'], 'the unlinked file and the renamed directory are gone from their old places');
  t.equal(fs.readFileSync(path.join(r.live, 'missed'), 'utf8'), 'not in the mirror', 'the file the mirror missed is kept');
  t.same(names('e'), ['f'], 'the directory is at its new name');
  t.ok(fs.readFileSync(path.join(r.live, 'e/f')).equals(Buffer.alloc(E, 2)), 'with its file');
  t.equal(r.journal.removed.size, 0, 'the removals are done');
});

t.test('an extent written, cut off by a truncate and grown again while failed over is a hole: zeros, and no claim that changes were lost', async (t) => {
  const errors: string[] = [];
  const r = await rig(t, errors);
  const fileId = r.liveFile('f', Buffer.alloc(2 * E, 0x21));
  await r.shadowWrite('f', 1, Buffer.alloc(E, 0x22));
  // The truncate to one extent (its record gone, what the live file holds cut), then growth back to two.
  for (const { index, copy } of await r.map.truncateRecords(fileId, 1)) r.map.removeCopy(fileId, index, copy.tierId);
  const e = r.mirror.get('/f');
  if (!e) throw new Error('no entry');
  r.mirror.set('/f', { ...e, liveSize: E, size: 2 * E });
  await r.resync.pass(true);
  t.ok(fs.readFileSync(path.join(r.live, 'f')).equals(Buffer.concat([Buffer.alloc(E, 0x21), Buffer.alloc(E)])), 'the first extent kept, the second zeros');
  t.same(errors, [], 'nothing logged as lost');
  t.equal(r.journal.dirty.size, 0, 'nothing left to replay');
});
