/**
 * A mount whose daemon died (kill -9) is told apart from no mount at all: the commands that ask the
 * daemon say it is stale and how to clear it, and `unmount` clears it even when the first look at
 * it, racing the death, fails with ECONNABORTED rather than ENOTCONN. And a signal while a mount
 * starts leaves no dead mount behind: the mount stops cleanly once it has started.
 */
import t from 'tap';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { CLI, cli, isMounted, makeSandbox, mountArgs, removeSandbox, sandboxedMount } from '../helpers/mounted-volume';
import * as path from 'node:path';
import { waitFor } from '../helpers/wait';
import { waitingRequests } from '../helpers/fuse-connection';

t.test('status, health and scrub of a stale mount say so, and how to clear it', async (t) => {
  const { sb, vol } = sandboxedMount(t);
  await vol.start();
  await vol.crash();
  t.ok(isMounted(sb.mnt), 'the kernel mount is left behind');
  for (const command of ['status', 'health', 'scrub']) {
    const r = cli([command, sb.mnt]);
    t.equal(r.status, 1, `${command}: exit 1`);
    t.equal(r.stderr, `shadowfs: ${sb.mnt} is a stale shadowfs mount (its daemon is gone); \`shadowfs unmount ${sb.mnt}\` clears it\n`, `${command}: one line that says what to do`);
  }
  const u = cli(['unmount', sb.mnt]);
  t.equal(u.status, 0, u.stderr);
  t.notOk(isMounted(sb.mnt));
  t.match(cli(['status', sb.mnt]).stderr, /is not a running shadowfs mount\n$/, 'once cleared: no mount there');
});

t.test('unmount whose look at the mount races the daemon\'s death (ECONNABORTED, ECANCELED through io_uring) clears it as stale', async (t) => {
  const { sb, vol } = sandboxedMount(t);
  await vol.start();
  const pid = vol.proc?.pid as number;
  // A stopped daemon answers nothing: unmount's stat of the mount point waits in the kernel, and
  // fails with ECONNABORTED when the daemon is killed under it (ECANCELED if the kernel had handed
  // it to a ring: with FUSE over io_uring; a stat after that sees ENOTCONN).
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  });
  const unmount = spawn(process.execPath, [CLI, 'unmount', sb.mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  unmount.stdout.on('data', (d: Buffer) => (out += d.toString()));
  unmount.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => unmount.once('exit', resolve));
  await waitFor(() => waitingRequests(sb.mnt) > 0, "unmount's stat waiting on the stopped daemon");
  await vol.crash();
  t.equal(await exited, 0, out);
  t.equal(out, `shadowfs: cleared a stale mount at ${sb.mnt}\n`, 'seen as stale, not as a daemon that left no pid');
  t.notOk(isMounted(sb.mnt), 'cleared');
});

t.test('SIGTERM while the mount starts: it stops cleanly once started, no dead mount left', async (t) => {
  const sb = makeSandbox('start-signal-');
  t.teardown(() => removeSandbox(sb));
  const proc = spawn(process.execPath, [CLI, ...mountArgs(sb)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  // The extent map is being opened: the mount has begun, and is not serving yet.
  await waitFor(() => fs.existsSync(path.join(sb.state, 'extents', 'LOCK')), 'the state being opened', 30_000, 2);
  t.notOk(/mounted at/.test(out), 'signalled before the mount served');
  proc.kill('SIGTERM');
  const { code, signal } = await exited;
  t.same({ code, signal }, { code: 0, signal: null }, `a clean exit, not death by the signal: ${out}`);
  t.match(out, /shadowfs: SIGTERM: stopping as soon as the mount has started/);
  t.match(out, /shadowfs: unmounted /, 'the usual clean unmount');
  t.notOk(isMounted(sb.mnt), 'no mount left behind');
});
