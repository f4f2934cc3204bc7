/**
 * A real shadowfs mount for tests: temp live/tier/state directories, the real CLI in a child
 * process, the real kernel FUSE mount. Always torn down, even when a test fails.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HasTeardown } from './temp-dir';
import { LIBUV_POOL_THREADS } from '../../src/cli/thread-pool';

export const REPO = path.resolve(__dirname, '../../..');
export const CLI = path.join(REPO, 'bin/shadowfs');

// tap hands its process-info hook to every child through NODE_OPTIONS (--import). In a shadowfs
// process it loads before bin/shadowfs runs and starts libuv's thread pool at its default 4
// threads, too early for bin/shadowfs to ask for more: the mounts under test were not the mounts
// users run (a tier that hung took all 4 threads, and the live volume's ops then missed their
// deadlines). Set in the environment, the size holds from the start.
process.env.UV_THREADPOOL_SIZE ??= String(LIBUV_POOL_THREADS);

export interface MountOptions {
  extentSize?: string;
  /** Tier specs relative to the sandbox: name → capacity. Default: one nvme tier of 64MiB. */
  tiers?: { name: string; capacity: string; cls?: string }[];
  admitAfter?: number;
  /** Raw --tier values added after `tiers` (e.g. an object tier). */
  tierFlags?: string[];
  coverageTier?: string;
  extraArgs?: string[];
  /** Mount from this config file alone (`--config FILE`); the options above are then ignored. */
  configFile?: string;
}

export interface Sandbox {
  root: string;
  live: string;
  mnt: string;
  state: string;
  tierDir(name: string): string;
}

export function makeSandbox(prefix = 'shadowfs-test-'): Sandbox {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const sb: Sandbox = {
    root,
    live: path.join(root, 'live'),
    mnt: path.join(root, 'mnt'),
    state: path.join(root, 'state'),
    tierDir: (name) => path.join(root, 'tiers', name),
  };
  fs.mkdirSync(sb.live);
  fs.mkdirSync(sb.mnt);
  fs.mkdirSync(path.join(root, 'tiers'));
  return sb;
}

export function mountArgs(sb: Sandbox, opts: MountOptions = {}): string[] {
  if (opts.configFile) return ['mount', '--config', opts.configFile, ...(opts.extraArgs ?? []), sb.mnt];
  const tiers = opts.tiers ?? [{ name: 'nvme', capacity: '64MiB' }];
  const args = ['mount', '--live', sb.live, '--state', sb.state];
  for (const t of tiers) args.push('--tier', `${t.name}=${sb.tierDir(t.name)},cap=${t.capacity}${t.cls ? `,class=${t.cls}` : ''}`);
  for (const f of opts.tierFlags ?? []) args.push('--tier', f);
  if (opts.coverageTier) args.push('--coverage-tier', opts.coverageTier);
  if (opts.extentSize) args.push('--extent-size', opts.extentSize);
  if (opts.admitAfter !== undefined) args.push('--admit-after', String(opts.admitAfter));
  args.push(...(opts.extraArgs ?? []), sb.mnt);
  return args;
}

export function isMounted(mnt: string): boolean {
  const info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === mnt);
}

export class MountedVolume {
  proc: ChildProcess | undefined;
  output = '';

  constructor(readonly sb: Sandbox, readonly opts: MountOptions = {}) {}

  /** Starts `shadowfs mount` in the foreground and waits until the kernel shows the mount. */
  async start(timeoutMs = 30_000): Promise<void> {
    // Output of this run only: an earlier run's "mounted at" must not count as this one's.
    this.output = '';
    const proc = spawn(process.execPath, [CLI, ...mountArgs(this.sb, this.opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    // SHADOWFS_TEST_LOG=FILE keeps every daemon's output, to see why a mount died.
    const keep = process.env.SHADOWFS_TEST_LOG;
    const take = (d: Buffer): void => {
      this.output += d.toString();
      if (keep) fs.appendFileSync(keep, d);
    };
    proc.stdout?.on('data', take);
    proc.stderr?.on('data', take);
    let exited = false;
    proc.once('exit', () => (exited = true));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`shadowfs mount exited early: ${this.output}`);
      if (isMounted(this.sb.mnt) && /mounted at/.test(this.output)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`shadowfs mount did not come up: ${this.output}`);
  }

  /** The daemon has been started and has not died. */
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Clean unmount via SIGTERM, as an operator's Ctrl-C would. Resolves with the exit code. */
  async stop(timeoutMs = 30_000): Promise<number | null> {
    const proc = this.proc;
    // Dead already (exited, or killed by a signal: its 'exit' has been emitted and will not be again).
    if (!proc || !this.running) return proc?.exitCode ?? null;
    const done = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const code = await done;
    clearTimeout(timer);
    this.proc = undefined;
    return code;
  }

  /** kill -9: the daemon dies mid-work; the kernel mount is left stale. */
  async crash(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    if (!this.running) {
      this.proc = undefined;
      return;
    }
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await done;
    this.proc = undefined;
  }

  /** Best effort, for teardown: never throws. */
  async cleanup(): Promise<void> {
    try {
      await this.stop(10_000);
    } catch {
      /* teardown */
    }
    if (isMounted(this.sb.mnt)) spawnSync('fusermount', ['-uz', this.sb.mnt]);
  }
}

/**
 * A sandbox and a (not yet started) mount over it, both torn down when the test ends. `opts` may
 * depend on the sandbox (tier paths, a config file written into it).
 */
export function sandboxedMount(t: HasTeardown, opts: MountOptions | ((sb: Sandbox) => MountOptions) = {}, prefix?: string): { sb: Sandbox; vol: MountedVolume } {
  const sb = makeSandbox(prefix);
  const vol = new MountedVolume(sb, typeof opts === 'function' ? opts(sb) : opts);
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });
  return { sb, vol };
}

export function removeSandbox(sb: Sandbox): void {
  if (isMounted(sb.mnt)) spawnSync('fusermount', ['-uz', sb.mnt]);
  fs.rmSync(sb.root, { recursive: true, force: true });
}

/** Runs the CLI to completion. */
export function cli(args: string[], timeoutMs = 60_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
