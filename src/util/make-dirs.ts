/**
 * mkdir -p without Node's recursive mkdir: that loops forever where mkdir answers ENOENT under a
 * directory that exists (/proc/x: procfs lets no one create anything), which hung `mount`.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errorCode } from './errors';

/**
 * Creates `dir` and its missing parents (with `mode`, less the umask, when given), one level at a
 * time from the nearest part of the path that exists. Throws the first mkdir error other than EEXIST (the caller words it; the error's
 * code and message name the directory that could not be made).
 */
export async function makeDirs(dir: string, mode?: number): Promise<void> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); d !== path.dirname(d); d = path.dirname(d)) {
    if (await exists(d)) break;
    missing.unshift(d);
  }
  for (const d of missing) {
    try {
      await fs.mkdir(d, mode);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    // ENOENT, or something in the way (ENOTDIR): the mkdir below says which.
    return false;
  }
}
