import * as fs from 'node:fs';

/**
 * Whether a process with this pid exists and has not exited. Signal 0 probes without signalling,
 * but also finds a zombie: a process that has exited and waits for its parent (init, for a daemon)
 * to reap it, which some inits do only every second or two.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !hasExited(pid);
}

function hasExited(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // Reaped between the probe and the read (where there is a /proc to read at all).
    return fs.existsSync('/proc/self/stat');
  }
  // "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ")".
  const end = stat.lastIndexOf(')');
  return stat.charAt(end + 2) === 'Z';
}
