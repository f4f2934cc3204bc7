/**
 * A daemon that has exited is not alive, also while it waits to be reaped: `shadowfs unmount`
 * waits for the daemon's exit, and an init that reaps late kept it waiting.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { processAlive } from '../../src/util/process-alive';

t.test('running, exited but not reaped (a zombie), gone', async (t) => {
  // The shell's background child exits at once; the shell then becomes `sleep`, which never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => parent.kill('SIGKILL'));
  const childPid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  t.ok(processAlive(parent.pid as number), 'a running process is alive');
  t.ok(processAlive(process.pid), 'this process is alive');
  const deadline = Date.now() + 10_000;
  while (processAlive(childPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.notOk(processAlive(childPid), 'an exited process is not, though it waits to be reaped');
  t.doesNotThrow(() => process.kill(childPid, 0), 'it is a zombie still (signal 0 finds it)');
  parent.kill('SIGKILL');
  await new Promise((r) => parent.once('exit', r));
  t.notOk(processAlive(parent.pid as number), 'a reaped process is not alive');
});
