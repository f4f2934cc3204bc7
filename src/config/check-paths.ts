/**
 * Checks, before anything is touched, that the directories a mount will use make sense together.
 * Every failure is one ShadowfsError line naming the path and what is wrong with it.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ShadowfsError, errorCode } from '../util/errors';
import { VolumeConfig } from './volume-config';

/** True when `inner` is `outer` or lies below it. */
export function isWithin(inner: string, outer: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

async function requireDirectory(p: string, what: string): Promise<void> {
  let st;
  try {
    st = await fs.stat(p);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new ShadowfsError(`${what} ${p} does not exist`);
    throw new ShadowfsError(`${what} ${p} cannot be read: ${(err as Error).message}`);
  }
  if (!st.isDirectory()) throw new ShadowfsError(`${what} ${p} is not a directory`);
}

async function requireWritable(p: string, what: string): Promise<void> {
  try {
    await fs.access(p, fs.constants.W_OK | fs.constants.R_OK | fs.constants.X_OK);
  } catch {
    throw new ShadowfsError(`${what} ${p} is not writable`);
  }
}

/** A tier directory must exist, or be creatable (its parent exists and is writable): the tier creates it. */
async function requireUsableDirectory(p: string, what: string): Promise<void> {
  try {
    await fs.stat(p);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw new ShadowfsError(`${what} ${p} cannot be read: ${(err as Error).message}`);
    try {
      await fs.stat(path.dirname(p));
    } catch {
      throw new ShadowfsError(`${what} ${p}: its parent directory does not exist`);
    }
    await requireWritable(path.dirname(p), `${what} parent of`);
    return;
  }
  await requireDirectory(p, what);
  await requireWritable(p, what);
}

/**
 * The state directory need not exist (mount creates it and its missing parents): the nearest part
 * of the path that exists must be a writable directory.
 */
async function requireCreatableDirectory(p: string, what: string): Promise<void> {
  let existing = p;
  for (;;) {
    try {
      await fs.stat(existing);
      break;
    } catch (err) {
      const code = errorCode(err);
      // ENOTDIR: a file is in the way further up; found below as the part that exists.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ShadowfsError(`${what} ${p} cannot be read: ${(err as Error).message}`);
      existing = path.dirname(existing);
    }
  }
  if (existing === p) {
    await requireDirectory(p, what);
    await requireWritable(p, what);
    return;
  }
  const st = await fs.stat(existing);
  if (!st.isDirectory()) throw new ShadowfsError(`${what} ${p} cannot be created: ${existing} is not a directory`);
  await requireWritable(existing, `${what} ${p} cannot be created:`);
}

export async function checkVolumePaths(config: VolumeConfig, mountpoint: string): Promise<void> {
  const live = config.livePath;
  await requireDirectory(live, 'live volume');
  await requireWritable(live, 'live volume');
  if (isWithin(mountpoint, live) || isWithin(live, mountpoint)) {
    throw new ShadowfsError(`mount point ${mountpoint} and live volume ${live} must not contain each other`);
  }
  if (isWithin(config.stateDir, live) || isWithin(config.stateDir, mountpoint)) {
    throw new ShadowfsError(`state directory ${config.stateDir} must not be inside the live volume or the mount point`);
  }
  await requireCreatableDirectory(config.stateDir, 'state directory');
  const seen: { name: string; dir: string }[] = [];
  for (const tier of config.tiers) {
    const dir = tier.object ? tier.object.cacheDir : tier.path;
    const what = `tier ${tier.name}:`;
    if (isWithin(dir, live) || isWithin(live, dir)) throw new ShadowfsError(`${what} ${dir} overlaps the live volume ${live}`);
    if (isWithin(dir, mountpoint) || isWithin(mountpoint, dir)) throw new ShadowfsError(`${what} ${dir} overlaps the mount point ${mountpoint}`);
    if (isWithin(dir, config.stateDir) || isWithin(config.stateDir, dir)) throw new ShadowfsError(`${what} ${dir} overlaps the state directory ${config.stateDir}`);
    for (const other of seen) {
      if (isWithin(dir, other.dir) || isWithin(other.dir, dir)) {
        throw new ShadowfsError(`${what} ${dir} overlaps tier ${other.name} (${other.dir})`);
      }
    }
    seen.push({ name: tier.name, dir });
    await requireUsableDirectory(dir, `${what} directory`);
  }
}

/** The mount point must be an empty directory (a stale FUSE mount is cleared before this runs). */
export async function checkMountpoint(mountpoint: string): Promise<void> {
  await requireDirectory(mountpoint, 'mount point');
  const entries = await fs.readdir(mountpoint);
  if (entries.length > 0) {
    throw new ShadowfsError(`mount point ${mountpoint} is not empty (${entries.length} entries); refusing to hide them`);
  }
}
