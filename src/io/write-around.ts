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
  /** The handle's native writes when the run last grew. */
  nativeWrites: number;
}

export class SequentialWrites {
  /** By FUSE handle: a stream is one file descriptor of one writer. Bounded by the open handles. */
  private readonly runs = new Map<number, Run>();

  constructor(
    /** 0: never write around. */
    private readonly cutoffBytes: number,
  ) {}

  /**
   * A write through JS on handle fh; `nativeWrites`: the writes fh had served natively so far (the
   * FUSE layer's count; not asked when write-around is off, since asking is a call into the binding
   * on the write path). True: it streams (write around cache copies).
   *
   * Writes the FUSE layer served natively are not seen here, so a run also continues past a gap
   * those could have filled: as many bytes as this write's size times the native writes since the
   * run last grew. A random writer's next JS write is rarely that close ahead.
   */
  observe(fh: number, position: number, length: number, nativeWrites: () => number = () => 0): boolean {
    if (this.cutoffBytes <= 0 || length <= 0) return false;
    const run = this.runs.get(fh);
    const gap = run ? position - run.nextByte : -1;
    const native = nativeWrites();
    if (!run || gap < 0 || gap > (native - run.nativeWrites) * length) {
      this.runs.set(fh, { nextByte: position + length, bytes: length, nativeWrites: native });
      return length >= this.cutoffBytes;
    }
    run.bytes += gap + length;
    run.nextByte = position + length;
    run.nativeWrites = native;
    return run.bytes >= this.cutoffBytes;
  }

  /** The handle was released (its number may be reused for another file). */
  forget(fh: number): void {
    this.runs.delete(fh);
  }
}
