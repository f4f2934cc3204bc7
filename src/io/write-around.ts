/**
 * Write-around for streaming writers: which writes leave cache copies stale instead of patching
 * them. A policy; the redirector drops the copies, NativeWrites opens the extents to native writes.
 *
 * Write-through patches every fresh copy of a written extent. For a writer streaming through a
 * file that doubles the bytes written (the live file, then each copy) for copies the writer is
 * replacing wholesale, and it keeps those extents off the native write path (an extent with a copy
 * is never granted). bcache makes the same call with its `sequential_cutoff` (default 4 MiB):
 * sequential I/O past it bypasses the cache. So once a handle's writes have run sequentially for
 * `cutoffBytes`, the writes that follow, and the extents just ahead of them, lose their cache
 * copies. Copies eviction must leave alone (the coverage tier, pins, hints) are still patched: a
 * failover depends on them. Dropped copies come back the usual way, when the extents are read.
 */

/** bcache's default `sequential_cutoff`. */
export const DEFAULT_WRITE_AROUND_AFTER_BYTES = 4 * 1024 * 1024;

interface Run {
  /** Where a write continuing the run starts. */
  nextByte: number;
  bytes: number;
}

export class SequentialWrites {
  /** By FUSE handle: a stream is one file descriptor of one writer. Bounded by the open handles. */
  private readonly runs = new Map<number, Run>();

  constructor(
    /** 0: never write around. */
    private readonly cutoffBytes: number,
    /**
     * How far past the run's end a write may start and still continue it, once the run streams:
     * the writes in between went to the live file natively and were not seen here.
     */
    private readonly unseenGapBytes: number,
  ) {}

  /** A write through JS on handle fh. True: it streams (write around cache copies). */
  observe(fh: number, position: number, length: number): boolean {
    if (this.cutoffBytes <= 0 || length <= 0) return false;
    const run = this.runs.get(fh);
    const streaming = run !== undefined && run.bytes >= this.cutoffBytes;
    const continues = run !== undefined && (position === run.nextByte || (streaming && position > run.nextByte && position - run.nextByte <= this.unseenGapBytes));
    if (!continues) {
      this.runs.set(fh, { nextByte: position + length, bytes: length });
      return length >= this.cutoffBytes;
    }
    run.bytes += length + (position - run.nextByte);
    run.nextByte = position + length;
    return run.bytes >= this.cutoffBytes;
  }

  /** The handle was released (its number may be reused for another file). */
  forget(fh: number): void {
    this.runs.delete(fh);
  }
}
