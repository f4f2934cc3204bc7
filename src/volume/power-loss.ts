/**
 * Copies that can be trusted after a power loss.
 *
 * Between fsyncs, the live file, its copies and the extent map's records reach the disk each on
 * their own; a kill -9 loses none of them (the page cache survives it), a power loss may lose any.
 * So a write through the mount first leaves a durable mark on its file (ExtentMap.markWritten), and
 * a sync point — an fsync of the file through the mount, this module's periodic sync, a clean
 * unmount — clears the marks once everything written before it is on disk. At the next mount,
 * if the machine restarted since (its boot id changed), the marked files' copies are dropped: the
 * live volume is the truth then, and copies that may disagree with it are never served.
 */
import * as fs from 'node:fs';
import { ExtentMap } from '../extents/extent-map';
import { Logger } from '../util/log';
import { settlesWithin } from '../util/settles-within';

const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
/**
 * Files only counted (no durable mark) are cleared by any sync point; past this many, they call for
 * one themselves, so that the count stays bounded on a volume that writes many files.
 */
const MAX_COUNTED_FILES = 10_000;
/** A sync(2) that takes longer than this (a hung live volume) counts as failed; the marks stay. */
const SYNC_TIMEOUT_MS = 60_000;

export function readBootId(): string {
  return fs.readFileSync(BOOT_ID_FILE, 'utf8').trim();
}

/**
 * `syncAll` (sync(2): every filesystem's dirty data and metadata, the live volume's, also a FUSE or
 * network one's backing store, the tiers' and the state directory's), bounded: past `timeoutMs` (a
 * hung live volume) it counts as failed, and the marks stay. The call itself cannot be abandoned
 * (a pool thread waits in it until the kernel returns), so while it has not returned, the next
 * sync point fails at once instead of stacking a second thread behind it.
 */
export function boundedSync(syncAll: () => Promise<void>, timeoutMs = SYNC_TIMEOUT_MS): () => Promise<void> {
  let running: Promise<void> | undefined;
  return async () => {
    if (running) throw new Error('a sync(2) of an earlier sync point has not returned yet');
    const call = syncAll();
    const returned = call.then(() => undefined, () => undefined);
    running = returned;
    void returned.then(() => (running = undefined));
    if (!(await settlesWithin(call, timeoutMs))) throw new Error(`sync(2) has not returned within ${timeoutMs / 1000} s`);
    await call;
  };
}

/** Makes everything written so far durable, then clears the marks of files not written since. */
async function syncPoint(map: ExtentMap, sync: () => Promise<void>): Promise<void> {
  const snapshot = map.writtenSnapshot();
  if (snapshot.size === 0) return;
  await map.flush();
  await sync();
  await map.clearWritten(snapshot);
}

/**
 * Every `intervalMs`, a sync point when it can clear a mark: some marked file was not written
 * during the last interval, and `canRun` says the live volume is in use. A file written all the time
 * keeps its mark whatever is synced, so it alone calls for no machine-wide sync.
 */
export class SyncPoints {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** The marked files' write counts at the last tick. */
  private lastCounts = new Map<string, number>();

  constructor(
    private readonly map: ExtentMap,
    private readonly canRun: () => boolean,
    private readonly log: Logger,
    /** sync(2), through boundedSync. */
    private readonly sync: () => Promise<void>,
    private readonly intervalMs = 30_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** The timer's step (its own method for tests): a sync point if a marked file settled. */
  tick(): Promise<void> {
    const counts = this.map.writtenSnapshot();
    // Files only counted clear at any sync point, but call for one only when there are too many.
    const marked = new Set(this.map.markedFiles());
    const crowded = counts.size > MAX_COUNTED_FILES;
    const settled = [...counts].some(([id, n]) => (crowded || marked.has(id)) && this.lastCounts.get(id) === n);
    this.lastCounts = counts;
    return settled ? this.syncNow() : Promise.resolve();
  }

  /** A clean unmount's sync point, when a durable mark is left; a failure keeps the marks. */
  run(): Promise<void> {
    return this.map.markedFiles().length === 0 ? this.running ?? Promise.resolve() : this.syncNow();
  }

  private syncNow(): Promise<void> {
    if (this.running || !this.canRun()) return this.running ?? Promise.resolve();
    this.running = syncPoint(this.map, this.sync)
      .catch((err: Error) => this.log.warn('volume', `sync point failed, files stay marked as written: ${err.message}`))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /**
   * At a clean unmount: no more periodic sync points, and a last one, waited for `waitMs` at most (a
   * live volume that hangs keeps sync(2) waiting; the unmount goes on, and its files stay marked).
   */
  async close(waitMs = 30_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const last = (this.running ?? Promise.resolve()).then(() => this.run());
    if (!(await settlesWithin(last, waitMs))) {
      this.log.warn('volume', 'the last sync point is still running: the unmount goes on, and files stay marked as written');
    }
  }
}

/**
 * At mount: if the machine restarted since the volume was last mounted and files are still marked
 * (no sync point came after their last writes), drop their copies when the volume is live. Failed
 * over, the copies are the volume's only home and stay. Returns how many files lost their copies.
 */
export async function afterRestart(map: ExtentMap, invalidate: (fileId: string) => Promise<void>, live: boolean, bootId: string, log: Logger): Promise<number> {
  const rebooted = map.storedBootId !== undefined && map.storedBootId !== bootId;
  let dropped = 0;
  const marked = map.markedFiles();
  if (rebooted && marked.length > 0) {
    if (live) {
      for (const fileId of marked) {
        await invalidate(fileId);
        dropped++;
      }
      log.warn('volume', `the machine restarted while ${marked.length} file(s) had writes not yet synced: their shadow copies are dropped (the live volume has what survived)`);
    } else {
      log.warn('volume', `the machine restarted while failed over with ${marked.length} file(s) written: the copies are the volume's only home and are kept`);
    }
    // The withdrawals first, then the marks: a crash in between drops the copies again, harmlessly.
    await map.sync();
    await map.clearWritten(map.writtenSnapshot());
  }
  if (map.storedBootId !== bootId) await map.setBootId(bootId);
  return dropped;
}
