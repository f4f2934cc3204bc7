/**
 * A shadow tier that is a plain directory (usually the mount point of its own device).
 *
 * Layout: see layout.ts (one file per extent copy). Durability: `put` writes a temp file (whole
 * aligned copies with direct I/O, see direct-io.ts), fsyncs it, renames it over the final name
 * and fsyncs the directory, so a copy is either the old or the new bytes after a crash, never a
 * mix. `patch` writes in place (the extent map bumps the
 * generation first, so a torn patch is a stale copy, never served).
 *
 * Capacity is enforced by the caller (the extent map decides what to evict); the tier only keeps
 * an exact in-memory count of the bytes it holds.
 */
import { DirSyncer, fsyncDir } from './dir-sync';
import { DirectIo } from './direct-io';
import { closeFd, fsyncFd, openFd, pwriteFull } from '../util/fd-io';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FsError, ShadowfsError, errorCode } from '../util/errors';
import { makeDirs } from '../util/make-dirs';
import { Slots } from '../util/slots';
import {
  CopyInventory,
  OWNER_MARK,
  TEMP_PREFIX,
  assertExtentRef,
  assertFileId,
  extentPath,
  fanoutDir,
  fileDir,
  isValidFileId,
  ownedByAnother,
  parseIndex,
  refKey,
} from './layout';
import type { CopyBuffer, ExtentRef, ShadowTier, TierHealthState, TierSpec } from './tier';

export interface DirectoryTierOptions {
  /** Upper bound on cached open fds (pinned fds may exceed it briefly). */
  maxOpenFds?: number;
  /** Consecutive I/O errors after which the tier is 'failed' (one error makes it 'suspect'). */
  failAfterErrors?: number;
  /** Prefix for error messages, e.g. "tier s3 cache" (default "tier <name>"). */
  label?: string;
}

/** A pinned fd: stays open (even across LRU eviction, put or remove) until `release()`. */
export interface FdLease {
  readonly fd: number;
  /** Idempotent. */
  release(): void;
}

const DEFAULT_MAX_OPEN_FDS = 256;
const DEFAULT_FAIL_AFTER_ERRORS = 3;
/**
 * Operations in progress on one tier at once. Each holds a libuv thread while it waits on the
 * device, and the live volume's ops need those threads too: without a cap, a tier that hangs
 * (a truncate that drops 24 copies: 24 unlinks) took every thread, and a live op then waited for
 * one past its deadline and failed a healthy volume over. The pool is sized for it (src/cli/thread-pool.ts).
 */
const TIER_IO_SLOTS = 8;
/** Copies a walk of the tier stats at once: each holds a libuv thread, so no more than its I/O slots. */
const WALK_STATS_AT_ONCE = TIER_IO_SLOTS;

/** Errors that say the device is in trouble (as opposed to a missing copy or a bad argument). */
const HEALTH_ERROR_CODES = new Set(['EIO', 'ENOSPC', 'EROFS', 'EDQUOT', 'ENXIO', 'ENODEV', 'ESTALE', 'ENOTCONN']);

interface FdEntry {
  readonly key: string;
  readonly fh: FileHandle;
  pins: number;
  /** Invalidated (copy replaced/removed/evicted) while pinned: close when the last pin goes. */
  stale: boolean;
  closed: boolean;
}

/** An open in flight for one copy, and how many callers wait to pin what it opens. */
interface PendingOpen {
  waiters: number;
  entry: Promise<FdEntry | undefined>;
}

/**
 * Serialises async work per key (mutations of one extent copy). Bounded: an entry exists only
 * while work for that key is queued or running.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      done();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export class DirectoryTier implements ShadowTier {
  /** Copies into one directory share their directory fsyncs. */
  private readonly dirSyncs = new DirSyncer();
  /** Whole copies bypass the page cache (set up in the constructor, once root is known). */
  private readonly direct: DirectIo;
  readonly root: string;
  private readonly label: string;
  private readonly maxOpenFds: number;
  private readonly failAfterErrors: number;

  /** Bounds the operations in progress on the tier (see TIER_IO_SLOTS). */
  private readonly slots = new Slots(TIER_IO_SLOTS);

  /** Sizes of the copies held: the authoritative in-memory inventory. */
  private readonly sizes = new CopyInventory();
  /** fileId → indexes patched without sync since the last syncFile. */
  private readonly unsynced = new Map<string, Set<number>>();
  /** fileIds whose directory took a rename (an unsynced put) since the last syncFile. */
  private readonly unsyncedDirs = new Set<string>();
  /** The latest syncFile of each file still running. */
  private readonly syncing = new Map<string, Promise<void>>();
  /** LRU of open fds: Map iteration order is insertion order, touched entries are re-inserted. */
  private readonly fds = new Map<string, FdEntry>();
  private readonly pendingOpens = new Map<string, PendingOpen>();
  /** Bumped whenever a key's file is replaced or removed, so an fd opened before is known stale. */
  private readonly epochs = new Map<string, number>();
  /**
   * Opens in flight by key. Not pendingOpens: invalidate() forgets those at once, and the epoch of
   * a key with an open in flight must survive the trim, or that open would cache the replaced file.
   */
  private readonly opening = new Map<string, number>();
  /** Temp files being written right now: list() must not delete them as orphans. */
  private readonly activeTemps = new Set<string>();
  private readonly locks = new KeyedMutex();
  /** Temp names: random per tier object (no clash with another process's), then a counter. */
  private readonly tempStem = `${randomBytes(6).toString('hex')}-`;
  private tempCount = 0;

  private errorStreak = 0;
  private mountFailure: string | undefined;
  private rootDev = -1;
  private separateMountAtOpen = false;
  private opened = false;

  constructor(readonly spec: TierSpec, options: DirectoryTierOptions = {}) {
    this.root = spec.path ? path.resolve(spec.path) : '';
    this.label = options.label ?? `tier ${spec.name}`;
    this.maxOpenFds = Math.max(1, options.maxOpenFds ?? DEFAULT_MAX_OPEN_FDS);
    this.failAfterErrors = Math.max(1, options.failAfterErrors ?? DEFAULT_FAIL_AFTER_ERRORS);
    this.direct = new DirectIo(this.root, TEMP_PREFIX);
  }

  health(): TierHealthState {
    if (this.mountFailure !== undefined || this.errorStreak >= this.failAfterErrors) return 'failed';
    return this.errorStreak > 0 ? 'suspect' : 'healthy';
  }

  /** Why the tier is failed by the mount check, if it is (for status output). */
  failureReason(): string | undefined {
    return this.mountFailure;
  }

  async open(owner?: string): Promise<void> {
    if (!this.root) throw new ShadowfsError(`${this.label}: no directory path given`);
    try {
      // Not fsp.mkdir's recursive: it loops forever where mkdir answers ENOENT (under /proc).
      await makeDirs(this.root);
      const st = await fsp.stat(this.root);
      if (!st.isDirectory()) throw new FsError('ENOTDIR', 'not a directory');
      // A real write, not access(W_OK): root passes access() on many unwritable setups.
      const probe = path.join(this.root, `${TEMP_PREFIX}probe-${randomBytes(6).toString('hex')}`);
      await fsp.writeFile(probe, 'ok');
      await fsp.unlink(probe);
      const parent = await fsp.stat(path.dirname(this.root));
      this.rootDev = st.dev;
      this.separateMountAtOpen = st.dev !== parent.dev;
    } catch (err) {
      throw new ShadowfsError(`${this.label}: directory ${this.root} is not usable: ${describe(err)}`);
    }
    if (owner !== undefined) await this.claim(owner);
    // A reopen (after a failure) must not serve through fds opened on the old tree.
    for (const key of [...this.fds.keys(), ...this.pendingOpens.keys()]) this.invalidate(key);
    this.sizes.clear();
    this.unsynced.clear();
    this.unsyncedDirs.clear();
    for await (const copy of this.walk()) this.track(copy, copy.sizeBytes);
    this.errorStreak = 0;
    this.mountFailure = undefined;
    this.opened = true;
  }

  async close(): Promise<void> {
    this.opened = false;
    const entries = [...this.fds.values()];
    this.fds.clear();
    // Pinned fds are closed too: a lease does not outlive the tier.
    await Promise.all(entries.map((e) => this.closeEntry(e)));
  }

  usedBytes(): number {
    return this.sizes.usedBytes();
  }

  freeBytes(): number {
    return Math.max(0, this.spec.capacityBytes - this.sizes.usedBytes());
  }

  /** Size of the copy as tracked in memory, or undefined if the tier holds none. */
  sizeOf(ref: ExtentRef): number | undefined {
    return this.sizes.sizeOf(ref);
  }

  has(ref: ExtentRef): boolean {
    return this.sizeOf(ref) !== undefined;
  }

  /** Path of the file holding a copy (whether or not it exists). */
  pathOf(ref: ExtentRef): string {
    return extentPath(this.root, ref);
  }

  async read(ref: ExtentRef, offsetInExtent: number, length: number, into: Buffer, intoOffset: number): Promise<number> {
    assertExtentRef(ref);
    if (length <= 0) return 0;
    if (!Number.isSafeInteger(offsetInExtent) || offsetInExtent < 0) throw new FsError('EINVAL', `read: bad offset ${offsetInExtent}`);
    if (intoOffset < 0 || intoOffset + length > into.length) throw new FsError('EINVAL', 'read: target buffer too small');
    return this.io(async () => {
      const lease = await this.pin(ref);
      if (!lease) throw missing(this.label, ref);
      try {
        const { bytesRead } = await lease.fh.read(into, intoOffset, length, offsetInExtent);
        return bytesRead;
      } finally {
        this.unpin(lease);
      }
    });
  }

  async put(ref: ExtentRef, data: Buffer, sync = true): Promise<void> {
    assertExtentRef(ref);
    const key = refKey(ref);
    await this.locks.run(key, () =>
      this.io(async () => {
        const dir = fileDir(this.root, ref.fileId);
        const finalPath = extentPath(this.root, ref);
        const tempPath = path.join(dir, `${TEMP_PREFIX}${this.tempStem}${(this.tempCount++).toString(36)}`);
        this.activeTemps.add(tempPath);
        try {
          await this.writeTemp(ref.fileId, tempPath, data, sync);
          await fsp.rename(tempPath, finalPath);
        } catch (err) {
          await fsp.unlink(tempPath).catch(() => undefined);
          throw err;
        } finally {
          this.activeTemps.delete(tempPath);
        }
        // Cached fds point at the replaced inode: drop them before anyone reads through them again.
        this.invalidate(key);
        if (!sync) {
          this.markUnsynced(ref);
          this.unsyncedDirs.add(ref.fileId);
          this.track(ref, data.length);
          return;
        }
        this.unsynced.get(ref.fileId)?.delete(ref.index);
        // Counted as used only once the directory is synced: until put() returns, the shadow
        // manager still holds these bytes as reserved, and counted twice while a slow directory
        // fsync ran (seconds behind heavy writeback), a concurrent copy found the tier full and
        // evicted a copy for room that was there.
        try {
          await this.dirSyncs.sync(dir);
        } finally {
          this.track(ref, data.length);
        }
      }),
    );
  }

  /** A reusable buffer for a copy to put here; aligned for direct I/O when the filesystem takes it. */
  copyBuffer(sizeBytes: number): Promise<CopyBuffer> {
    return this.direct.lend(sizeBytes);
  }

  async patch(ref: ExtentRef, offsetInExtent: number, data: Buffer, sync: boolean): Promise<void> {
    assertExtentRef(ref);
    if (offsetInExtent < 0) throw new FsError('EINVAL', 'patch: negative offset');
    await this.locks.run(refKey(ref), () =>
      this.io(async () => {
        const lease = await this.pin(ref);
        if (!lease) throw missing(this.label, ref);
        try {
          await writeAll(lease.fh, data, offsetInExtent);
          if (sync) await lease.fh.sync();
        } finally {
          this.unpin(lease);
        }
        const before = this.sizeOf(ref) ?? 0;
        this.track(ref, Math.max(before, offsetInExtent + data.length));
        if (!sync) this.markUnsynced(ref);
      }),
    );
  }

  async truncate(ref: ExtentRef, length: number): Promise<void> {
    assertExtentRef(ref);
    if (!Number.isSafeInteger(length) || length < 0) throw new FsError('EINVAL', `truncate: bad length ${length}`);
    await this.locks.run(refKey(ref), () =>
      this.io(async () => {
        const lease = await this.pin(ref);
        if (!lease) throw missing(this.label, ref);
        try {
          await lease.fh.truncate(length);
          await lease.fh.sync();
        } finally {
          this.unpin(lease);
        }
        this.track(ref, length);
      }),
    );
  }

  async remove(ref: ExtentRef): Promise<void> {
    assertExtentRef(ref);
    const key = refKey(ref);
    await this.locks.run(key, () =>
      this.io(async () => {
        try {
          await fsp.unlink(extentPath(this.root, ref));
        } catch (err) {
          if (errorCode(err) !== 'ENOENT') throw err;
        }
        // No directory fsync: a copy that reappears after a crash is reconciled by list(), and
        // evictions come in bulk where a per-unlink fsync would cost more than it protects.
        this.invalidate(key);
        this.untrack(ref);
      }),
    );
  }

  async removeFile(fileId: string): Promise<void> {
    assertFileId(fileId);
    await this.io(async () => {
      const dir = fileDir(this.root, fileId);
      // One unlink at a time: fs.rm unlinks a directory's entries all at once, a thread each.
      const names = await fsp.readdir(dir).catch((err: unknown) => {
        if (errorCode(err) === 'ENOENT') return [];
        throw err;
      });
      for (const name of names) await fsp.rm(path.join(dir, name), { recursive: true, force: true });
      await fsp.rmdir(dir).catch((err: unknown) => {
        // ENOTEMPTY: a copy of the file was being put meanwhile. Its caller removes it when it
        // finds the file's records gone; the empty directory left behind costs nothing.
        if (errorCode(err) !== 'ENOENT' && errorCode(err) !== 'ENOTEMPTY') throw err;
      });
      for (const key of [...this.fds.keys(), ...this.pendingOpens.keys()]) {
        if (key.startsWith(`${fileId}/`)) this.invalidate(key);
      }
      for (const index of this.sizes.indexesOf(fileId)) this.untrack({ fileId, index });
      this.unsynced.delete(fileId);
      this.unsyncedDirs.delete(fileId);
    });
  }

  async syncFile(fileId: string): Promise<void> {
    assertFileId(fileId);
    // Each sync of a file waits for the ones before it: they took the pending copies over, and an
    // fsync must not return before those are durable too.
    const earlier = this.syncing.get(fileId);
    const run = (async () => {
      if (earlier) await earlier.catch(() => undefined);
      await this.syncPending(fileId);
    })();
    this.syncing.set(fileId, run);
    try {
      await run;
    } finally {
      if (this.syncing.get(fileId) === run) this.syncing.delete(fileId);
    }
  }

  private async syncPending(fileId: string): Promise<void> {
    const pending = this.unsynced.get(fileId);
    const renamed = this.unsyncedDirs.delete(fileId);
    if ((!pending || pending.size === 0) && !renamed) return;
    this.unsynced.delete(fileId);
    const indexes = [...(pending ?? [])];
    try {
      await this.io(async () => {
        for (const index of indexes) {
          const lease = await this.pin({ fileId, index });
          if (!lease) continue; // removed since: nothing left to make durable
          try {
            await lease.fh.sync();
          } finally {
            this.unpin(lease);
          }
        }
        // Copies put without sync were renamed into place: their names are durable with the directory.
        if (renamed) await this.dirSyncs.sync(fileDir(this.root, fileId));
      });
    } catch (err) {
      // Keep them pending so a retry syncs them again.
      for (const index of indexes) this.markUnsynced({ fileId, index });
      if (renamed) this.unsyncedDirs.add(fileId);
      throw err;
    }
  }

  /**
   * An fd kept open on the copy, for the FUSE read fast path to pread directly (read-only use:
   * the extent map, not the fd, decides whether the bytes are fresh). Undefined if the tier holds
   * no such copy. Unpinned: valid until the next `put`/`remove`/`removeFile` of this copy, an LRU
   * eviction or `close()` — use it synchronously, or pin with `acquireFd` across awaits.
   */
  async fdFor(ref: ExtentRef): Promise<number | undefined> {
    assertExtentRef(ref);
    const lease = await this.pin(ref);
    if (!lease) return undefined;
    this.unpin(lease);
    return lease.fh.fd;
  }

  /**
   * A pinned fd on the copy: never closed by eviction, put or remove until `release()`; after a
   * `put`/`remove` it keeps reading the bytes the copy had when it was acquired. Undefined if the
   * tier holds no such copy.
   */
  async acquireFd(ref: ExtentRef): Promise<FdLease | undefined> {
    assertExtentRef(ref);
    const entry = await this.pin(ref);
    if (!entry) return undefined;
    let released = false;
    return {
      fd: entry.fh.fd,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(entry);
      },
    };
  }

  /** Number of fds currently cached (for tests and metrics). */
  openFdCount(): number {
    return this.fds.size;
  }

  /**
   * Check the directory is still there and still the device it was at open. Marks the tier failed
   * (sticky until the next open(), which rescans: copies may be gone or stale) when the directory
   * disappeared or a separate mount at open no longer is one (unmounted: we'd write to the parent).
   */
  async checkMount(): Promise<TierHealthState> {
    if (this.mountFailure !== undefined) return 'failed';
    try {
      const st = await fsp.stat(this.root);
      if (!st.isDirectory()) {
        this.mountFailure = `${this.root} is no longer a directory`;
      } else if (this.separateMountAtOpen) {
        const parent = await fsp.stat(path.dirname(this.root));
        if (st.dev === parent.dev) this.mountFailure = `${this.root} is no longer a separate mount`;
        else if (st.dev !== this.rootDev) this.mountFailure = `${this.root} is a different device than at open`;
      }
    } catch (err) {
      // The device failing a stat is an I/O error like any other (the probe clears it once the
      // device answers again); only a directory that is gone is for good.
      if (HEALTH_ERROR_CODES.has(errorCode(err) ?? '')) this.errorStreak++;
      else this.mountFailure = `${this.root}: ${describe(err)}`;
    }
    return this.health();
  }

  /**
   * checkMount(), then — if I/O errors made the tier suspect or failed — a small write, fsync,
   * read back and unlink; its success resets the error streak (nothing else would: a failed tier
   * gets no traffic). Never rejects.
   */
  async probe(): Promise<TierHealthState> {
    if ((await this.checkMount()) === 'failed' && this.mountFailure !== undefined) return 'failed';
    if (this.errorStreak === 0 || !this.opened) return this.health();
    const probePath = path.join(this.root, `${TEMP_PREFIX}probe-${randomBytes(6).toString('hex')}`);
    this.activeTemps.add(probePath);
    try {
      await this.io(async () => {
        const expected = randomBytes(512);
        const fh = await fsp.open(probePath, 'w+');
        try {
          await writeAll(fh, expected, 0);
          await fh.sync();
          const back = Buffer.alloc(expected.length);
          await fh.read(back, 0, back.length, 0);
          if (!back.equals(expected)) throw new FsError('EIO', 'probe read back different bytes');
        } finally {
          await fh.close();
        }
      });
    } catch {
      // io() counted it; health() reflects it.
    } finally {
      this.activeTemps.delete(probePath);
      await fsp.unlink(probePath).catch(() => undefined);
    }
    return this.health();
  }

  /**
   * The copies on the tier: once open, those its walk found, kept up to date since by every put and
   * remove. The mount's reconcile lists every tier right after opening it, and walking the
   * directory again made a third of the remount (100,000 copies: 4.3 s, against 2.8 s without).
   */
  holds(ref: ExtentRef): boolean {
    return this.sizes.sizeOf(ref) !== undefined;
  }

  async *list(): AsyncIterable<ExtentRef & { sizeBytes: number }> {
    if (this.opened) yield* this.sizes.copies();
    else yield* this.walk();
  }

  async disown(volumeId: string): Promise<string | undefined> {
    const mark = path.join(this.root, OWNER_MARK);
    const found = await fsp.readFile(mark, 'utf8').catch(() => undefined);
    if (found?.trim() !== volumeId) return undefined;
    return fsp.unlink(mark).then(() => undefined, (err: unknown) => {
      if (errorCode(err) === 'ENOENT') return undefined;
      return `the owner mark ${mark} could not be removed (${describe(err)}): until someone removes it, no other volume can use ${this.root}`;
    });
  }

  async claim(volumeId: string): Promise<void> {
    const mark = path.join(this.root, OWNER_MARK);
    const found = await fsp.readFile(mark, 'utf8').catch((err: unknown) => {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw new ShadowfsError(`${this.label}: ${mark} cannot be read: ${describe(err)}`);
    });
    if (found !== undefined) {
      if (found.trim() !== volumeId) throw ownedByAnother(this.label, `directory ${this.root}`);
      return;
    }
    // Written whole under a temporary name, then renamed: a crash leaves no half mark behind.
    const tmp = path.join(this.root, `${TEMP_PREFIX}owner-${randomBytes(6).toString('hex')}`);
    try {
      await fsp.writeFile(tmp, `${volumeId}\n`, { flush: true });
      await fsp.rename(tmp, mark);
      await fsyncDir(this.root);
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw new ShadowfsError(`${this.label}: cannot write ${mark}: ${describe(err)}`);
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Walk the tree, yielding copies and deleting orphan temp files left by a crash. */
  private async *walk(): AsyncGenerator<ExtentRef & { sizeBytes: number }> {
    for (const fan of await readdirOrEmpty(this.root)) {
      if (fan.name.startsWith(TEMP_PREFIX) && fan.isFile()) {
        await this.removeOrphan(path.join(this.root, fan.name));
        continue;
      }
      if (!fan.isDirectory()) continue;
      const fanPath = path.join(this.root, fan.name);
      for (const fileEnt of await readdirOrEmpty(fanPath)) {
        if (!fileEnt.isDirectory() || !isValidFileId(fileEnt.name) || fileEnt.name.slice(0, 2) !== fan.name) continue;
        const fileId = fileEnt.name;
        const dir = path.join(fanPath, fileId);
        const copies: { full: string; index: number }[] = [];
        for (const ent of await readdirOrEmpty(dir)) {
          const full = path.join(dir, ent.name);
          if (ent.name.startsWith(TEMP_PREFIX)) {
            await this.removeOrphan(full);
            continue;
          }
          const index = parseIndex(ent.name);
          if (index !== undefined && ent.isFile()) copies.push({ full, index });
        }
        // Several stats at once: one at a time, a mount's two walks over 100,000 copies took 10 s,
        // mostly waiting for each answer in turn.
        for (let i = 0; i < copies.length; i += WALK_STATS_AT_ONCE) {
          const batch = copies.slice(i, i + WALK_STATS_AT_ONCE);
          const sizes = await Promise.all(batch.map(({ full }) => fsp.stat(full).then((st) => st.size, (err: unknown) => {
            if (errorCode(err) !== 'ENOENT') throw err;
            return undefined; // removed while we walked
          })));
          for (const [k, { index }] of batch.entries()) {
            const sizeBytes = sizes[k];
            if (sizeBytes !== undefined) yield { fileId, index, sizeBytes };
          }
        }
      }
    }
  }

  private async removeOrphan(p: string): Promise<void> {
    if (this.activeTemps.has(p)) return;
    await fsp.unlink(p).catch((err: unknown) => {
      if (errorCode(err) !== 'ENOENT') throw err;
    });
  }

  /**
   * A copy's bytes into a new temporary file, fsynced if `sync` (else its data is on the device, its
   * metadata with the next syncFile). Whole aligned copies go through direct I/O (see direct-io.ts:
   * no page cache to fill, and on this VM fresh page-cache pages cost more than the device write);
   * if the filesystem refuses it, this tier stops trying and the copy is written through the page
   * cache.
   */
  private async writeTemp(fileId: string, tempPath: string, data: Buffer, sync: boolean): Promise<void> {
    try {
      const done = await this.direct.withAligned(data, (aligned) => this.writeNew(fileId, tempPath, aligned, true, sync));
      if (done) return;
    } catch (err) {
      if (errorCode(err) !== 'EINVAL') throw err;
      this.direct.disable();
      await fsp.unlink(tempPath).catch(() => undefined);
    }
    await this.writeNew(fileId, tempPath, data, false, sync);
  }

  /** Plain fds, not FileHandles: four calls per copy, and nothing for the garbage collector to track. */
  private async writeNew(fileId: string, tempPath: string, data: Buffer, direct: boolean, sync: boolean): Promise<void> {
    const fd = await this.createTemp(fileId, tempPath, direct);
    try {
      await pwriteFull(fd, data, 0, data.length, 0);
      if (sync) await fsyncFd(fd, false);
    } finally {
      await closeFd(fd);
    }
  }

  private async createTemp(fileId: string, tempPath: string, direct: boolean): Promise<number> {
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (direct ? fsConstants.O_DIRECT : 0);
    try {
      return await openFd(tempPath, flags, 0o644);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
    // First copy of this file: create its directory and make the new entries durable. One level at
    // a time below the root, never the root itself: a tier whose directory was removed must fail
    // (checkMount), not be made again, empty, while its records still name the copies it held.
    const fanout = fanoutDir(this.root, fileId);
    if (await mkdirIfMissing(fanout)) await fsyncDir(this.root);
    if (await mkdirIfMissing(fileDir(this.root, fileId))) await fsyncDir(fanout);
    return openFd(tempPath, flags, 0o644);
  }

  /**
   * Run a tier operation in one of the tier's slots, feeding its outcome into the health streak.
   * Never nested: an operation that waited for a slot inside another would deadlock once every
   * slot is held by such an outer one.
   */
  private async io<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.opened) throw new FsError('EIO', `${this.label}: not open`);
    try {
      const result = await this.slots.run(fn);
      this.errorStreak = 0;
      return result;
    } catch (err) {
      if (HEALTH_ERROR_CODES.has(errorCode(err) ?? '')) this.errorStreak++;
      throw err;
    }
  }

  private track(ref: ExtentRef, sizeBytes: number): void {
    this.sizes.set(ref, sizeBytes);
  }

  private untrack(ref: ExtentRef): void {
    this.sizes.delete(ref);
    const pending = this.unsynced.get(ref.fileId);
    pending?.delete(ref.index);
    if (pending?.size === 0) this.unsynced.delete(ref.fileId);
  }

  private markUnsynced(ref: ExtentRef): void {
    let pending = this.unsynced.get(ref.fileId);
    if (!pending) this.unsynced.set(ref.fileId, (pending = new Set()));
    pending.add(ref.index);
  }

  /** Get (opening if needed) the cached fd for a copy and pin it; undefined if the copy is missing. */
  private async pin(ref: ExtentRef): Promise<FdEntry | undefined> {
    const key = refKey(ref);
    const cached = this.fds.get(key);
    if (cached) {
      this.fds.delete(key); // re-insert: most recently used
      this.fds.set(key, cached);
      cached.pins++;
      return cached;
    }
    let pending = this.pendingOpens.get(key);
    if (!pending) {
      const open: PendingOpen = { waiters: 0, entry: Promise.resolve(undefined) };
      open.entry = this.openEntry(ref, key, open);
      this.pendingOpens.set(key, open);
      pending = open;
    }
    // The opened entry comes back pinned once per waiter: pinning it after the await would leave
    // it unpinned for a few microtasks, in which the LRU (when every other fd is pinned) or the
    // one-off cleanup closed it, and the waiter opened it again, and again (an open/close
    // livelock that kept FUSE reads waiting forever).
    pending.waiters++;
    const entry = await pending.entry;
    // Only close() of the whole tier closes a pinned fd: open a one-off then.
    if (entry?.closed) {
      this.unpin(entry);
      return this.pin(ref);
    }
    return entry;
  }

  private unpin(entry: FdEntry): void {
    entry.pins--;
    if (entry.pins <= 0 && entry.stale) void this.closeEntry(entry);
    else this.evictOverflow();
  }

  private async openEntry(ref: ExtentRef, key: string, pending: PendingOpen): Promise<FdEntry | undefined> {
    const epoch = this.epochs.get(key) ?? 0;
    this.opening.set(key, (this.opening.get(key) ?? 0) + 1);
    const settle = (): void => {
      if (this.pendingOpens.get(key) === pending) this.pendingOpens.delete(key);
      const n = (this.opening.get(key) ?? 1) - 1;
      if (n > 0) this.opening.set(key, n);
      else this.opening.delete(key);
    };
    let fh: FileHandle;
    try {
      // r+: the same cached fd serves reads, patches, truncates and fsyncs.
      fh = await fsp.open(extentPath(this.root, ref), 'r+');
    } catch (err) {
      settle();
      if (errorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    // From here on synchronous: no waiter can join after `pins` is set.
    settle();
    const entry: FdEntry = { key, fh, pins: pending.waiters, stale: false, closed: false };
    if ((this.epochs.get(key) ?? 0) !== epoch || !this.opened) {
      // Replaced or removed while we were opening, or the tier closed: the waiters use it once,
      // it is never cached, and the last unpin closes it.
      entry.stale = true;
      return entry;
    }
    this.fds.set(key, entry);
    this.evictOverflow();
    return entry;
  }

  /** The copy behind `key` changed identity: no cached or in-flight fd may be reused for it. */
  private invalidate(key: string): void {
    this.epochs.set(key, (this.epochs.get(key) ?? 0) + 1);
    this.pendingOpens.delete(key);
    const entry = this.fds.get(key);
    if (entry) {
      this.fds.delete(key);
      entry.stale = true;
      if (entry.pins === 0) void this.closeEntry(entry);
    }
    // Epochs only matter while an open may be in flight; keep the map bounded.
    if (this.epochs.size > this.maxOpenFds * 4) {
      for (const k of this.epochs.keys()) {
        if (!this.opening.has(k)) this.epochs.delete(k);
        if (this.epochs.size <= this.maxOpenFds * 2) break;
      }
    }
  }

  private evictOverflow(): void {
    if (this.fds.size <= this.maxOpenFds) return;
    for (const entry of this.fds.values()) {
      if (this.fds.size <= this.maxOpenFds) break;
      if (entry.pins > 0) continue;
      this.fds.delete(entry.key);
      void this.closeEntry(entry);
    }
  }

  private async closeEntry(entry: FdEntry): Promise<void> {
    if (entry.closed) return;
    entry.closed = true;
    await entry.fh.close().catch(() => undefined);
  }
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new FsError('EIO', 'short write');
    done += bytesWritten;
  }
}

/** mkdir of one level; true when it made the directory, false when it was there. */
async function mkdirIfMissing(dir: string): Promise<boolean> {
  try {
    await fsp.mkdir(dir);
    return true;
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
}

async function readdirOrEmpty(dir: string) {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw err;
  }
}

function missing(label: string, ref: ExtentRef): FsError {
  return new FsError('ENOENT', `${label}: no copy of ${ref.fileId}/${ref.index}`);
}

function describe(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

