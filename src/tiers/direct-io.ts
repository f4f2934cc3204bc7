/**
 * Direct I/O (O_DIRECT) for whole copies written to a directory tier, and the reusable buffers it
 * needs.
 *
 * Why: a copy must be durable before it counts, so keeping its bytes in the page cache buys
 * nothing, and the buffered path was most of replication's cost: the kernel copied every byte
 * into fresh page-cache pages and wrote them back later, about as much CPU again as reading the
 * live file (docs/benchmarks.md, "Replication"). With O_DIRECT the device takes the bytes straight
 * from our buffer, and the fsync that follows only commits metadata. Reusing the buffers also
 * spares the garbage collector a megabyte of external memory per copy.
 *
 * O_DIRECT wants the buffer's memory address, the file offset and the length aligned to the
 * device's logical block size. Node tells no buffer addresses, so each new buffer is probed once:
 * a direct write of ALIGN bytes from successive offsets into it, to a scratch file in the tier,
 * until one is accepted. Buffers are reused, so probing is rare. Lengths are kept to multiples of
 * ALIGN (4 KiB, the largest logical block size in use); anything else, and a filesystem that
 * refuses O_DIRECT, takes the buffered path.
 */
import { constants as fsConstants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errorCode } from '../util/errors';
import type { CopyBuffer } from './tier';

export const ALIGN = 4096;
/** Buffer addresses are at least this aligned (V8 backing stores); probing steps by it. */
const ADDRESS_STEP = 16;
/** Free buffers kept for reuse; more are left to the garbage collector. */
const MAX_FREE = 16;

/**
 * Memory known to suit direct I/O: the aligned offset of each probed slab, by its memory. Kept
 * per process, not per tier, so that other direct I/O (background copies reading the live file,
 * src/volume/direct-live-reads.ts) can use a lent buffer without a probe of its own.
 */
const alignedStarts = new WeakMap<ArrayBufferLike, number>();

/**
 * `buf` starts at an address some filesystem accepted for direct I/O (a buffer a tier lent,
 * aligned to that tier's logical block size; another device may want more, and answers EINVAL).
 */
export function startsAligned(buf: Buffer): boolean {
  return alignedStarts.get(buf.buffer) === buf.byteOffset;
}

interface Slab {
  readonly raw: Buffer;
  /** Offset into `raw` whose address the device accepts for direct I/O; undefined: none known. */
  readonly aligned: number | undefined;
}

export class DirectIo {
  /** undefined: not tried yet; false: the tier's filesystem refuses direct I/O. */
  private supported: boolean | undefined;
  private readonly free: Slab[] = [];
  /** Slabs by their memory, to recognise a buffer we lent when it comes back in a put. */
  private readonly lent = new WeakMap<ArrayBufferLike, Slab>();

  /** `scratchDir`: a directory on the tier, for the probe files. */
  constructor(private readonly scratchDir: string, private readonly tempPrefix: string) {}

  /** Direct I/O of `length` bytes is worth a try (as far as is known yet). */
  suits(length: number): boolean {
    return this.supported !== false && length > 0 && length % ALIGN === 0;
  }

  /** The filesystem refused a direct write: buffered from now on. */
  disable(): void {
    this.supported = false;
  }

  /** A buffer of `size` bytes, aligned for direct I/O when that works here; give it back with release(). */
  async lend(size: number): Promise<CopyBuffer> {
    const slab = await this.take(size);
    const start = slab.aligned ?? 0;
    const bytes = slab.raw.subarray(start, start + size);
    this.lent.set(slab.raw.buffer, slab);
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) return;
        released = true;
        this.give(slab);
      },
    };
  }

  /**
   * `data` as it can be written with O_DIRECT: itself when it is (the start of) a buffer we lent
   * with an aligned address, else undefined.
   */
  directView(data: Buffer): Buffer | undefined {
    if (!this.suits(data.length)) return undefined;
    const slab = this.lent.get(data.buffer);
    if (!slab || slab.aligned === undefined || data.byteOffset !== slab.raw.byteOffset + slab.aligned) return undefined;
    return data;
  }

  /**
   * Run `write` with `data` copied into an aligned buffer (or with `data` itself if it already is
   * one of ours); undefined when direct I/O does not suit it.
   */
  async withAligned<T>(data: Buffer, write: (aligned: Buffer) => Promise<T>): Promise<{ result: T } | undefined> {
    const own = this.directView(data);
    if (own) return { result: await write(own) };
    if (!this.suits(data.length)) return undefined;
    const slab = await this.take(data.length);
    if (slab.aligned === undefined) {
      this.give(slab);
      return undefined;
    }
    const aligned = slab.raw.subarray(slab.aligned, slab.aligned + data.length);
    data.copy(aligned);
    const result = await write(aligned);
    // Not on failure: a write still in flight must not land in a buffer lent to someone else.
    this.give(slab);
    return { result };
  }

  private async take(size: number): Promise<Slab> {
    const i = this.free.findIndex((s) => s.raw.length - (s.aligned ?? 0) >= size);
    if (i >= 0) return this.free.splice(i, 1)[0];
    const raw = Buffer.allocUnsafe(size + ALIGN);
    const aligned = this.supported === false ? undefined : await this.probe(raw);
    if (aligned !== undefined) {
      this.supported = true;
      alignedStarts.set(raw.buffer, raw.byteOffset + aligned);
    }
    return { raw, aligned };
  }

  private give(slab: Slab): void {
    // An unaligned one (its probe failed, e.g. the tier was full) is not kept while direct I/O
    // may still work: the next buffer gets probed again.
    if (slab.aligned === undefined && this.supported !== false) return;
    if (this.free.length < MAX_FREE) this.free.push(slab);
  }

  /** The first offset into `raw` from which the filesystem takes a direct write, if any. */
  private async probe(raw: Buffer): Promise<number | undefined> {
    const probePath = path.join(this.scratchDir, `${this.tempPrefix}direct-${randomBytes(6).toString('hex')}`);
    let fh;
    try {
      fh = await fsp.open(probePath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_DIRECT, 0o600);
    } catch (err) {
      if (errorCode(err) === 'EINVAL') this.disable(); // no O_DIRECT on this filesystem
      return undefined; // otherwise (no room for a probe?) this buffer stays unaligned; the next one tries again
    }
    try {
      for (let offset = 0; offset < ALIGN; offset += ADDRESS_STEP) {
        try {
          const { bytesWritten } = await fh.write(raw, offset, ALIGN, 0);
          return bytesWritten === ALIGN ? offset : undefined;
        } catch (err) {
          if (errorCode(err) !== 'EINVAL') return undefined;
        }
      }
      this.disable(); // no address alignment it takes
      return undefined;
    } finally {
      await fh.close().catch(() => undefined);
      await fsp.unlink(probePath).catch(() => undefined);
    }
  }
}
