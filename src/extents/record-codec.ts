/**
 * Compact binary form of an extent record, so the map stays well under 64 bytes per extent on
 * disk: varints for generations and sizes, a one-byte tier id instead of the tier's name.
 */
export interface CopyRecord {
  tierId: number;
  generation: number;
  /** CRC-32 of the copy's bytes; null while unknown (patched in place, to be recomputed). */
  crc32: number | null;
  sizeBytes: number;
  /**
   * Not persisted: the copy's bytes were checked against crc32 (or written by this process) since
   * the mount started. Unverified copies are read whole and checked before they serve a read.
   */
  verified?: boolean;
  /**
   * Not persisted: which copy this is, in memory. A copy made again on the same tier is another
   * copy, with another serial (set by the map when it stores the copy).
   */
  serial?: number;
}

export interface ExtentRecord {
  generation: number;
  copies: CopyRecord[];
  /**
   * This generation's bytes were written through the mount (not only copied from the live volume,
   * or changed behind its back): until the coverage tier holds them, a shadow copy of them is the
   * write's only home off the live volume (ARCHITECTURE rule 2), and eviction must leave it.
   */
  written?: boolean;
  /**
   * This generation's bytes are all zeros, made so through the mount (a truncate or fallocate that
   * grew the file, a punched or zeroed range): with no copy, they are still known, so failover
   * serves them without the live volume and nothing has to be copied to keep them.
   */
  zeros?: boolean;
}

function writeVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function readVarint(buf: Buffer, pos: { at: number }): number {
  let result = 0;
  let scale = 1;
  for (;;) {
    if (pos.at >= buf.length) throw new Error('extent record truncated');
    const b = buf[pos.at++];
    result += (b & 0x7f) * scale;
    if (b < 0x80) return result;
    scale *= 0x80;
  }
}

const HAS_CRC = 0x80;
/** Flags in the copy-count byte (an extent has one copy per tier, far fewer than 64). */
const WRITTEN = 0x80;
const ZEROS = 0x40;
const MAX_COPIES = 0x3f;

export function encodeExtentRecord(rec: ExtentRecord): Buffer {
  const out: number[] = [];
  writeVarint(out, rec.generation);
  if (rec.copies.length > MAX_COPIES) throw new Error(`an extent record holds at most ${MAX_COPIES} copies`);
  out.push(rec.copies.length | (rec.written ? WRITTEN : 0) | (rec.zeros ? ZEROS : 0));
  for (const c of rec.copies) {
    out.push(c.tierId | (c.crc32 === null ? 0 : HAS_CRC));
    writeVarint(out, rec.generation - c.generation);
    writeVarint(out, c.sizeBytes);
    if (c.crc32 !== null) {
      out.push(c.crc32 & 0xff, (c.crc32 >>> 8) & 0xff, (c.crc32 >>> 16) & 0xff, (c.crc32 >>> 24) & 0xff);
    }
  }
  return Buffer.from(out);
}

export function decodeExtentRecord(buf: Buffer): ExtentRecord {
  const pos = { at: 0 };
  const generation = readVarint(buf, pos);
  const countByte = buf[pos.at++];
  const count = countByte & MAX_COPIES;
  // Exactly `count` long: an array grown by push keeps room for 16 more (a million are kept in memory).
  const copies = new Array<CopyRecord>(count);
  for (let i = 0; i < count; i++) {
    const head = buf[pos.at++];
    const lag = readVarint(buf, pos);
    const sizeBytes = readVarint(buf, pos);
    let crc32: number | null = null;
    if (head & HAS_CRC) {
      crc32 = (buf[pos.at] | (buf[pos.at + 1] << 8) | (buf[pos.at + 2] << 16) | (buf[pos.at + 3] << 24)) >>> 0;
      pos.at += 4;
    }
    copies[i] = { tierId: head & 0x7f, generation: generation - lag, crc32, sizeBytes };
  }
  const rec: ExtentRecord = { generation, copies };
  if (countByte & WRITTEN) rec.written = true;
  if (countByte & ZEROS) rec.zeros = true;
  return rec;
}
