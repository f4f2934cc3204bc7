/**
 * The write fast path: which extents of an open file may be written by the FUSE layer itself
 * (a pwrite on its own thread, straight to the live file), skipping the JS round trip that caps
 * writes through the mount (docs/benchmarks.md, "Writes").
 *
 * A native write bumps no generation, patches no copy and tells no policy. So an extent is marked
 * writable only while nothing depends on its exact bytes:
 * - it has no copy on any tier (checked when the mark is granted, after a write through JS, under
 *   the file's write lock), and
 * - no copy of it is being taken: the shadow manager revokes the mark, under the write lock, before
 *   it reads the extent (`revoke` waits for native writes in flight). A copy that had read the
 *   extent before a JS write granted the mark cannot be published: that JS write bumped the
 *   generation it was read at.
 * While an extent has a copy it is not granted: writes to it patch the copy through JS (a streaming
 * writer drops cache copies ahead of itself first: src/io/write-around.ts).
 * A write through JS grants the extents it wrote and up to GRANT_AHEAD_EXTENTS after them, so a
 * writer going through a file pays one JS write per window, not one per extent. An extent granted
 * ahead was not written, so its generation is bumped at the grant instead (ExtentMap.bumpUncopied):
 * a copy read before then cannot be published either.
 * Native writes never grow the file (the FUSE layer only takes those ending at or before the
 * handle's limit, the file's size as the mount knows it), so `OpenFile.sizeBytes` stays right.
 *
 * Off where it cannot be bounded: a native write on a hung live volume cannot be abandoned, so a
 * volume protected by failover (a coverage tier) never turns it on, and a failover switches it off.
 */
import { ExtentMap } from '../extents/extent-map';
import { Handle, OpenFile, OpenFiles } from '../volume/open-files';

/** What the FUSE layer offers for native writes (FuseMount has these). */
export interface NativeWritePort {
  /** Native writes of fh go to fd (-1: none) if they end at or before limitBytes. */
  setFileWrites(fh: number, fd: number, limitBytes: number): void;
  /** false: returns once no native write to those extents is in flight (throws ETIMEDOUT after 2 s). */
  setExtentsWritable(fh: number, first: number, last: number, writable: boolean): void;
  /** The global switch; returns the native writes in flight. */
  setNativeWrites(enabled: boolean): number;
  /** Writes served natively for fh since it was declared. */
  fileNativeWrites(fh: number): number;
}

/** Extents granted past the last one a JS write wrote (64 MiB at the default 1 MiB extent). */
export const GRANT_AHEAD_EXTENTS = 64;

export class NativeWrites {
  /** fileId → extent indexes marked writable for every writable handle of that file. */
  private readonly granted = new Map<string, Set<number>>();
  private port: NativeWritePort | undefined;
  private switchedOff = false;

  constructor(
    private readonly map: ExtentMap,
    private readonly files: OpenFiles,
    private readonly extentSizeBytes: number,
  ) {}

  /** Set by the volume: native reads of the extent are answered from a tier copy. */
  mappedToCopy: (fileId: string, index: number) => boolean = () => false;

  /** Set once the FUSE mount exists, for volumes that may use it; until then nothing is granted. */
  attach(port: NativeWritePort): void {
    this.port = port;
  }

  get active(): boolean {
    return this.port !== undefined && !this.switchedOff;
  }

  /** For good (a failover): every write that has not started yet goes through JS. Returns writes in flight. */
  switchOff(): number {
    this.switchedOff = true;
    return this.port?.setNativeWrites(false) ?? 0;
  }

  /** A new handle (its FUSE map already declared): give it the file's limit and granted extents. */
  onHandleOpened(h: Handle): void {
    if (!this.active || !h.writable || h.fd < 0) return;
    const granted = this.granted.get(h.file.fileId);
    if (!this.setLimit(h, h.file.sizeBytes)) return;
    if (granted) for (const [a, b] of runsOf(granted)) this.mark(h.fh, a, b, true);
  }

  /**
   * After a write through JS, under the file's write lock: the extents it wrote that have no copy,
   * and those up to GRANT_AHEAD_EXTENTS after them, may be written natively from now on; a write
   * that grew the file raises every handle's limit.
   */
  afterWrite(file: OpenFile, first: number, last: number, grew: boolean): void {
    if (!this.active) return;
    if (grew) this.setLimits(file, file.sizeBytes);
    let granted = this.granted.get(file.fileId);
    const end = this.aheadOf(file, last)?.last ?? last;
    const added: number[] = [];
    for (let index = first; index <= end; index++) {
      if (granted?.has(index)) continue;
      // Native reads of it still go to a tier copy (an unmap that failed): they would not see
      // native writes.
      if (this.mappedToCopy(file.fileId, index)) continue;
      // The JS write bumped the generations of those it wrote; the others are bumped here.
      const uncopied = index <= last ? (this.map.get(file.fileId, index)?.copies.length ?? 0) === 0 : this.map.bumpUncopied(file.fileId, index);
      if (!uncopied) continue;
      if (!granted) {
        granted = new Set();
        this.granted.set(file.fileId, granted);
      }
      granted.add(index);
      added.push(index);
    }
    const runs = runsOf(added);
    for (const h of this.writableHandles(file.fileId)) for (const [a, b] of runs) this.mark(h.fh, a, b, true);
    if (granted && granted.size > 0) {
      // Its native writes are not seen one by one: the file counts as modified until it closes.
      file.nativeWritable = true;
      // On every grant: a stall (a native write without progress for 200 ms) switches it off by
      // itself; the JS write that just succeeded says the volume answers again.
      this.port?.setNativeWrites(true);
    }
  }

  /** Writes fh has had served natively so far (0 without native writes). */
  nativeWritesOf(fh: number): number {
    if (!this.port) return 0;
    try {
      return this.port.fileNativeWrites(fh);
    } catch {
      return 0;
    }
  }

  /**
   * The extents a grant after a write ending in extent `last` would reach past it; undefined when
   * none or while native writes are off. A streaming writer's copies there are dropped first
   * (src/io/write-around.ts), so that the grant can take them.
   */
  aheadOf(file: OpenFile, last: number): { first: number; last: number } | undefined {
    if (!this.active) return undefined;
    const end = Math.min(last + GRANT_AHEAD_EXTENTS, Math.ceil(file.sizeBytes / this.extentSizeBytes) - 1);
    return end > last ? { first: last + 1, last: end } : undefined;
  }

  /**
   * Before a truncate, under the write lock: no native write may land beyond the new end (it would
   * grow the file behind the mount's size). Returns once none is in flight.
   */
  beforeTruncate(file: OpenFile, sizeBytes: number): void {
    if (this.active) this.setLimits(file, Math.min(file.sizeBytes, sizeBytes));
  }

  afterTruncate(file: OpenFile): void {
    if (this.active) this.setLimits(file, file.sizeBytes);
  }

  /**
   * Before anything depends on the bytes of extents [first, last] (a copy reads them). Synchronous;
   * when it returns no native write to them is in flight and none starts. Throws (ETIMEDOUT) when
   * a native write is stuck: then the caller must not go ahead.
   */
  revoke(fileId: string, first: number, last: number): void {
    const granted = this.granted.get(fileId);
    if (!granted || !this.port) return;
    // By the range when it is the smaller (a copy revokes one extent; a file may have many granted).
    const indexes = last - first + 1 <= granted.size ? range(first, last) : [...granted];
    for (const index of indexes) {
      if (index < first || index > last || !granted.has(index)) continue;
      for (const h of this.writableHandles(fileId)) this.mark(h.fh, index, index, false);
      granted.delete(index);
    }
    if (granted.size === 0) this.granted.delete(fileId);
  }

  /** The file's last handle is gone (the FUSE layer dropped its maps with the handles). */
  onFileClosed(fileId: string): void {
    this.granted.delete(fileId);
  }

  grantedExtents(): number {
    let n = 0;
    for (const g of this.granted.values()) n += g.size;
    return n;
  }

  private *writableHandles(fileId: string): Iterable<Handle> {
    for (const fh of this.files.handlesOf(fileId)) {
      const h = this.files.handle(fh);
      if (h?.writable && h.fd >= 0) yield h;
    }
  }

  private setLimits(file: OpenFile, limitBytes: number): void {
    for (const h of this.writableHandles(file.fileId)) this.setLimit(h, limitBytes);
  }

  /**
   * The FUSE layer drops a handle's map as soon as the kernel releases it, a moment before our
   * release handler forgets the handle: changing it then fails (EINVAL) and is not needed.
   */
  private setLimit(h: Handle, limitBytes: number): boolean {
    try {
      this.port?.setFileWrites(h.fh, h.fd, limitBytes);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      return false;
    }
  }

  private mark(fh: number, first: number, last: number, writable: boolean): void {
    try {
      this.port?.setExtentsWritable(fh, first, last, writable);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }
}

function* range(first: number, last: number): Iterable<number> {
  for (let i = first; i <= last; i++) yield i;
}

/**
 * Extent indexes as [first, last] runs, ascending: one mark per run, since each takes the FUSE
 * layer's table lock, which native requests wait for.
 */
function runsOf(indexes: Iterable<number>): [number, number][] {
  const runs: [number, number][] = [];
  for (const index of [...indexes].sort((a, b) => a - b)) {
    const run = runs[runs.length - 1];
    if (run && run[1] === index - 1) run[1] = index;
    else runs.push([index, index]);
  }
  return runs;
}
