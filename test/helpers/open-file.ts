import * as fs from 'node:fs';
import { Mutex } from '../../src/util/mutex';
import type { OpenFile } from '../../src/volume/open-files';

/** An OpenFile for the file at `p`, as the volume would make it (id from its inode, a read fd); close readFd when done. */
export function openFileOn(p: string): OpenFile {
  const st = fs.statSync(p);
  return {
    fileId: st.ino.toString(16), livePath: p, sizeBytes: st.size, writeLock: new Mutex(), readFd: fs.openSync(p, 'r'),
    handles: 1, modified: false, nativeWritable: false, unlinked: false, fhs: new Set(),
  };
}
