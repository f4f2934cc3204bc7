/**
 * Where a running mount leaves its pid file (and later its control socket): one name per mount
 * point under /run/shadowfs, so `shadowfs unmount /mnt/app` finds the daemon that serves it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { makeDirs } from '../util/make-dirs';

export const RUNTIME_DIR = process.env.SHADOWFS_RUNTIME_DIR ?? '/run/shadowfs';

function stem(mountpoint: string): string {
  const abs = path.resolve(mountpoint);
  const readable = abs.replace(/[^a-zA-Z0-9]+/g, '_').replace(/^_|_$/g, '').slice(-40) || 'root';
  return `${readable}-${createHash('sha256').update(abs).digest('hex').slice(0, 8)}`;
}

export function pidFile(mountpoint: string): string {
  return path.join(RUNTIME_DIR, `${stem(mountpoint)}.pid`);
}

export function socketFile(mountpoint: string): string {
  return path.join(RUNTIME_DIR, `${stem(mountpoint)}.sock`);
}

export async function writePidFile(mountpoint: string): Promise<void> {
  await makeDirs(RUNTIME_DIR, 0o700);
  await fs.writeFile(pidFile(mountpoint), `${process.pid}\n`, { mode: 0o600 });
}

export async function readPid(mountpoint: string): Promise<number | undefined> {
  try {
    const pid = Number((await fs.readFile(pidFile(mountpoint), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function removePidFile(mountpoint: string): Promise<void> {
  await fs.rm(pidFile(mountpoint), { force: true });
}
