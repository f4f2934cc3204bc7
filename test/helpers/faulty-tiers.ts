/**
 * Mounts whose tier directories are faultfs mounts (fixtures/faultfs), the live volume healthy:
 * what tier-faults.test.ts and tier-faults-fsx.test.ts build on.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountedVolume, Sandbox, cli, makeSandbox, removeSandbox } from './mounted-volume';
import type { HasTeardown } from './temp-dir';
import { FaultFs, startFaultFs } from '../../fixtures/faultfs/faultfs-client';
import type { StatusReport } from '../../src/control/protocol';

/** Lets the page cache go, so that reads of copies reach faultfs. */
export function dropCaches(): void {
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

export const errno = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? '';

/** A sandbox whose `faulty` tiers are faultfs mounts (a backing directory each), a mount over it from `config`, all torn down. */
export async function faultyTiers(t: HasTeardown, prefix: string, faulty: readonly string[], config: (sb: Sandbox) => string): Promise<{ sb: Sandbox; vol: MountedVolume; ffs: Map<string, FaultFs> }> {
  const sb = makeSandbox(prefix);
  const ffs = new Map<string, FaultFs>();
  const vol = new MountedVolume(sb, { configFile: config(sb) });
  t.teardown(async () => {
    for (const f of ffs.values()) await f.clear().catch(() => undefined);
    await vol.cleanup();
    for (const f of ffs.values()) await f.stop().catch(() => undefined);
    removeSandbox(sb);
  });
  for (const name of faulty) {
    const backing = path.join(sb.root, `${name}-backing`);
    fs.mkdirSync(backing);
    fs.mkdirSync(sb.tierDir(name), { recursive: true });
    ffs.set(name, await startFaultFs(backing, sb.tierDir(name)));
  }
  return { sb, vol, ffs };
}

export function status(mnt: string): StatusReport | undefined {
  const r = cli(['status', '--json', mnt]);
  return r.status === 0 ? (JSON.parse(r.stdout) as StatusReport) : undefined;
}

/** Until every tier is healthy again (the prober runs every 2 s); false if not within `ms`. */
export async function tiersHealthy(mnt: string, ms = 8_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = status(mnt);
    if (s && s.tiers.every((x) => x.health === 'healthy')) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Clears the faults of a faultfs after `ms`, from another process: this one may be stuck in a read of the mount then. */
export function clearLater(controlPath: string, ms: number): Promise<void> {
  const script = `setTimeout(() => {
    const c = require('net').createConnection(process.argv[1]);
    c.on('error', () => process.exit(1));
    c.on('data', () => process.exit(0));
    c.write(JSON.stringify({ clear: true }) + '\\n');
    setTimeout(() => process.exit(2), 5000);
  }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ['-e', script, controlPath, String(ms)], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
