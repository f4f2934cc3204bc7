/**
 * A FUSE mount's control directory under /sys/fs/fuse/connections (fusectl): its count of requests
 * waiting for the daemon, and its abort switch. A fresh machine may not have fusectl mounted yet.
 */
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';

const CONNECTIONS = '/sys/fs/fuse/connections';

/** The directory of the FUSE connection mounted at `mnt` (fusectl mounted first if needed), if any. */
export function fuseConnection(mnt: string): string | undefined {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt);
  const minor = line?.split(' ')[2]?.split(':')[1];
  if (!minor) return undefined;
  const dir = `${CONNECTIONS}/${minor}`;
  if (!fs.existsSync(dir)) spawnSync('mount', ['-t', 'fusectl', 'none', CONNECTIONS]);
  return fs.existsSync(dir) ? dir : undefined;
}

/** The count of requests the connection at `mnt` has waiting for its daemon. */
export function waitingRequests(mnt: string): number {
  const dir = fuseConnection(mnt);
  if (!dir) throw new Error(`no fusectl directory for the mount at ${mnt} (is fusectl mountable at ${CONNECTIONS}?)`);
  return Number(fs.readFileSync(`${dir}/waiting`, 'utf8'));
}
