/** What the kernel says is mounted where (/proc/self/mountinfo), and clearing stale FUSE mounts. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errorCode } from '../util/errors';

/** Mountinfo escapes spaces and such as \\040 octal. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export async function fuseMountsAt(mountpoint: string): Promise<string[]> {
  const abs = path.resolve(mountpoint);
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const types: string[] = [];
  for (const line of info.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 0) continue;
    if (unescapeMountPath(fields[4]) === abs) types.push(fields[sep + 1]);
  }
  return types;
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  return (await fuseMountsAt(mountpoint)).length > 0;
}

/**
 * What a stat of a FUSE mount whose daemon is gone fails with: ENOTCONN ("Transport endpoint is not
 * connected"), and right after the death ECONNABORTED, for the request the kernel had sent it
 * (ECANCELED when it had handed that request to one of the daemon's io_uring rings).
 */
const DAEMON_GONE_CODES: ReadonlySet<string> = new Set(['ENOTCONN', 'ECONNABORTED', 'ECANCELED']);

/** The error of a stat (or any access) of a mount point says its FUSE daemon is gone. */
export function meansDaemonGone(err: unknown): boolean {
  return DAEMON_GONE_CODES.has(errorCode(err) ?? '');
}

/** True when a FUSE mount is there but its daemon is gone. */
export async function isStale(mountpoint: string): Promise<boolean> {
  try {
    await fs.stat(mountpoint);
    return false;
  } catch (err) {
    return meansDaemonGone(err);
  }
}

/** True when `mountpoint` is a shadowfs mount whose daemon is gone (what `shadowfs unmount` clears). */
export async function isStaleShadowfsMount(mountpoint: string): Promise<boolean> {
  return (await fuseMountsAt(mountpoint)).at(-1) === 'fuse.shadowfs' && (await isStale(mountpoint));
}

/** The innermost shadowfs mount point containing `p`, if any. */
export async function findMountOf(p: string): Promise<string | undefined> {
  const abs = path.resolve(p);
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  let best: string | undefined;
  for (const line of info.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 0 || !fields[sep + 2]?.startsWith('shadowfs')) continue;
    const mp = unescapeMountPath(fields[4]);
    if ((abs === mp || abs.startsWith(mp.endsWith('/') ? mp : mp + '/')) && (!best || mp.length > best.length)) best = mp;
  }
  return best;
}
