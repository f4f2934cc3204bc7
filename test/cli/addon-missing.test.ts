/**
 * The control commands need no FUSE addon: while fuse-native cannot be loaded (not built yet, or
 * being rebuilt), a running daemon can still be asked for its status and unmounted, and `mount`
 * says in one line what is wrong and what to run.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, isMounted, makeSandbox, mountArgs, removeSandbox, sandboxedMount } from '../helpers/mounted-volume';

/** A preload that makes `require('fuse-native')` fail as it does when no build is found. */
function writeAddonBlocker(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'no-addon-'));
  const file = path.join(dir, 'block-fuse-native.js');
  fs.writeFileSync(
    file,
    `const Module = require('module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'fuse-native') throw new Error('No native build was found for platform=linux arch=x64 (blocked by the test)');
  return resolve.call(this, request, ...rest);
};
`,
  );
  return file;
}

/**
 * Asynchronous: a daemon started by this process that exits stays a zombie (alive to `unmount`'s
 * look) until this process reaps it, which it cannot while blocked in spawnSync.
 */
async function cliWithoutAddon(blocker: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ['--require', blocker, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const status = await new Promise<number | null>((resolve) => proc.once('close', resolve));
  return { status, stdout, stderr };
}

t.test('status and unmount of a running mount work without the addon; mount says what to run', async (t) => {
  const blocker = writeAddonBlocker();
  t.teardown(() => fs.rmSync(path.dirname(blocker), { recursive: true, force: true }));
  const { sb, vol } = sandboxedMount(t);
  await vol.start();

  const status = await cliWithoutAddon(blocker, ['status', sb.mnt]);
  t.equal(status.status, 0, status.stderr);
  t.match(status.stdout, sb.mnt, 'the status of the mount');
  t.match(status.stdout, /reads served by/);

  const other = makeSandbox('no-addon-');
  t.teardown(() => removeSandbox(other));
  const mount = await cliWithoutAddon(blocker, mountArgs(other));
  t.equal(mount.status, 1, 'mount fails');
  t.match(mount.stderr, /^shadowfs: the FUSE binding \(fuse-native\) could not be loaded: No native build was found[^\n]*; run `make build`[^\n]*\n$/, `one line: ${mount.stderr}`);
  t.notOk(isMounted(other.mnt), 'nothing mounted');

  const unmount = await cliWithoutAddon(blocker, ['unmount', sb.mnt]);
  t.equal(unmount.status, 0, unmount.stderr);
  t.equal(unmount.stdout, `shadowfs: unmounted ${sb.mnt}\n`);
  t.notOk(isMounted(sb.mnt), 'unmounted');
});
