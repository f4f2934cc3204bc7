/**
 * Background copies read the live file with direct I/O (O_DIRECT), into the aligned buffer the
 * target tier lends (src/tiers/direct-io.ts).
 *
 * Why: with copies written by direct I/O, copying the live file into our buffer through the page
 * cache was the largest CPU cost of replication left (`_copy_to_iter`, a third or more of the
 * daemon's CPU; docs/benchmarks.md, "Replication"). A direct read lets the device put the bytes
 * in our buffer. The price: an extent still in the page cache is read from the device again.
 *
 * Freshness is unchanged: the read runs where the buffered one did (under the file's write lock
 * and the live guard). A direct read sees bytes written through the page cache but not yet
 * written back: the kernel writes the range back before it reads it.
 *
 * Each open file gets a second read-only fd, opened on first use through /proc/self/fd/<readFd>
 * (the same inode even after a rename or unlink) and closed with the file. Anything direct I/O
 * does not suit (a length or offset off the 4 KiB grid, a buffer not known to be aligned, a
 * filesystem that refuses O_DIRECT) takes the buffered read; an EINVAL from the live filesystem
 * turns direct reads off for the mount. SHADOWFS_NO_DIRECT_LIVE_READS=1 turns them off from the
 * start (for comparisons).
 */
import { constants as fsConstants } from 'node:fs';
import { ALIGN, startsAligned } from '../tiers/direct-io';
import { errorCode } from '../util/errors';
import { fstat, openFd, pread, preadFull } from '../util/fd-io';
import type { OpenFile } from './open-files';

/** An fd that could not be opened (this file reads buffered). */
const NONE = -1;

export interface DirectLiveReadCounters {
  /** Copy reads answered with direct I/O. */
  directReads: number;
  /** Copy reads that took the page cache. */
  bufferedReads: number;
}

export class DirectLiveReads {
  readonly counters: DirectLiveReadCounters = { directReads: 0, bufferedReads: 0 };
  /** Per open file: its direct fd (NONE: not to be had), opening or open. */
  private readonly fds = new Map<OpenFile, Promise<number>>();

  /**
   * `enabled`: false reads everything through the page cache. `closeFd`: how to close an fd on
   * the live volume (the volume's guard). `onRefused`: told once if the live volume turns direct
   * reads off.
   */
  constructor(private enabled: boolean, private readonly closeFd: (fd: number) => Promise<void>, private readonly onRefused: (why: string) => void = () => undefined) {}

  /**
   * Read `length` bytes at `position` of the live file into the start of `buf`: fewer only at the
   * end of the file. Direct when it suits, else through the file's readFd.
   */
  async read(file: OpenFile, buf: Buffer, length: number, position: number): Promise<number> {
    const span = Math.ceil(length / ALIGN) * ALIGN;
    if (this.enabled && file.readFd >= 0 && position % ALIGN === 0 && span <= buf.length && startsAligned(buf)) {
      const fd = await this.fdOf(file);
      if (fd !== NONE) {
        const done = await this.readDirect(fd, buf, span, position);
        if (done !== undefined) {
          this.counters.directReads++;
          // A short direct read ends at the end of the file; should one ever stop early, the rest
          // comes through the page cache (at the end of the file that reads nothing).
          if (done >= length) return length;
          return done + (await preadFull(file.readFd, buf, done, length - done, position + done));
        }
      }
    }
    this.counters.bufferedReads++;
    return preadFull(file.readFd, buf, 0, length, position);
  }

  /** The file is closed: close its direct fd (once an open in flight has ended). */
  forget(file: OpenFile): void {
    const fd = this.fds.get(file);
    if (!fd) return;
    this.fds.delete(file);
    fd.then((n) => (n === NONE ? undefined : this.closeFd(n))).catch(() => undefined);
  }

  /** Bytes read from the start of the span, or undefined when the filesystem refused direct I/O. */
  private async readDirect(fd: number, buf: Buffer, span: number, position: number): Promise<number | undefined> {
    let done = 0;
    try {
      while (done < span) {
        const n = await pread(fd, buf, done, span - done, position + done);
        done += n;
        if (n === 0 || n % ALIGN !== 0) break;
      }
      return done;
    } catch (err) {
      if (errorCode(err) !== 'EINVAL' || done > 0) throw err;
      // The device wants more alignment than the tier's buffers have, or takes no direct I/O.
      this.refuse('a direct read');
      return undefined;
    }
  }

  private refuse(what: string): void {
    if (!this.enabled) return;
    this.enabled = false;
    this.onRefused(`the live volume refused ${what} (EINVAL): background copies read it through the page cache from now on`);
  }

  private fdOf(file: OpenFile): Promise<number> {
    let fd = this.fds.get(file);
    if (!fd) {
      fd = this.open(file);
      this.fds.set(file, fd);
    }
    return fd;
  }

  private async open(file: OpenFile): Promise<number> {
    let fd: number;
    try {
      fd = await openFd(`/proc/self/fd/${file.readFd}`, fsConstants.O_RDONLY | fsConstants.O_DIRECT);
    } catch (err) {
      if (errorCode(err) === 'EINVAL') this.refuse('opening with O_DIRECT'); // the live filesystem takes no O_DIRECT
      return NONE;
    }
    // Only ever the file itself (the fd number could have been reused by another file).
    const st = await fstat(fd).catch(() => undefined);
    if (st?.ino.toString(16) !== file.fileId) {
      await this.closeFd(fd).catch(() => undefined);
      return NONE;
    }
    return fd;
  }
}
