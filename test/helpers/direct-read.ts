import * as fs from 'node:fs';

/**
 * Reads a whole file with O_DIRECT in `chunkBytes` requests (no page cache: through a mount, every
 * byte comes from the daemon). `sizeHint`: the expected size; a longer file is read to its end.
 */
export function readWholeDirect(file: string, sizeHint: number, chunkBytes: number): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  try {
    const buf = Buffer.alloc(sizeHint + chunkBytes);
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, Math.min(chunkBytes, buf.length - n), n);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}
