/**
 * Bad input is refused with one clear line and a non-zero exit, before anything is touched.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { CLI, REPO, cli, makeSandbox, removeSandbox, Sandbox, isMounted, sandboxedMount } from '../helpers/mounted-volume';
import { startS3Server, useS3Credentials } from '../helpers/s3-server';
import { startFaultFs } from '../../fixtures/faultfs/faultfs-client';
import { progress } from '../../src/cli/progress';

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

function expectRefusal(t: Test, sb: Sandbox, args: string[], pattern: RegExp, exitCode = 1): void {
  const before = listTree(sb.root);
  const r = cli(args);
  t.equal(r.status, exitCode, `exit ${exitCode} for: ${args.join(' ')}`);
  const lines = r.stderr.trim().split('\n');
  t.match(lines[0], pattern, 'says what is wrong');
  t.notOk(/\n\s+at /.test(r.stderr), 'no stack trace');
  t.ok(lines.length <= 2, `a short message (${lines.length} lines): ${r.stderr}`);
  t.same(listTree(sb.root), before, 'nothing touched');
  t.notOk(isMounted(sb.mnt), 'nothing mounted');
}


t.test('bad mount input', async (t) => {
  const sb = makeSandbox();
  t.teardown(() => removeSandbox(sb));
  const tier = (extra = ''): string => `nvme=${sb.tierDir('nvme')},cap=64MiB${extra}`;
  fs.mkdirSync(sb.tierDir('nvme'));
  fs.writeFileSync(path.join(sb.live, 'keep.txt'), 'live data');

  expectRefusal(t, sb, ['mount', '--live', sb.live, sb.mnt, '--bogus-flag'], /Unknown argument: bogus-flag$/, 2);
  expectRefusal(t, sb, ['mount', '--live', path.join(sb.root, 'missing'), '--state', sb.state, '--tier', tier(), sb.mnt], /live volume .*missing does not exist/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), path.join(sb.root, 'nomnt')], /mount point .*nomnt does not exist/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), sb.live], /must not contain each other/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${path.join(sb.live, 'shadow')},cap=1GiB`, sb.mnt], /overlaps the live volume/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), '--tier', `ssd=${path.join(sb.tierDir('nvme'), 'inner')},cap=1GiB`, sb.mnt], /overlaps tier nvme/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${sb.tierDir('nvme')},cap=12parsecs`, sb.mnt], /capacity: expected a size like/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `warp=${sb.tierDir('nvme')},cap=1GiB`, sb.mnt], /class: expected nvme\|ssd\|hdd\|object/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${path.join(sb.root, 'no', 'such', 'parent')},cap=1GiB`, sb.mnt], /parent directory does not exist/);
  const notDir = path.join(sb.root, 'plainfile');
  fs.writeFileSync(notDir, 'x');
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${notDir},cap=1GiB`, sb.mnt], /is not a directory/);
  fs.rmSync(notDir);

  fs.writeFileSync(path.join(sb.mnt, 'occupied'), 'x');
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), sb.mnt], /is not empty/);
  fs.rmSync(path.join(sb.mnt, 'occupied'));

  const cfg = path.join(sb.root, 'broken.json');
  fs.writeFileSync(cfg, '{ "live": "/x", ');
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /broken.json is not valid JSON/);
  fs.writeFileSync(cfg, JSON.stringify({ live: sb.live, tiers: [{ name: 'nvme', path: sb.tierDir('nvme'), capacity: '1GiB' }], extentSize: '3MiB' }));
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /extentSize: expected a power of two/);
  fs.writeFileSync(cfg, JSON.stringify({ live: sb.live, tierz: [] }));
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /config tierz: expected one of/);
  fs.writeFileSync(cfg, 'null');
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /broken.json: expected a JSON object .*, got null$/);
  fs.writeFileSync(cfg, JSON.stringify({ live: sb.live, tiers: [{ name: 'nvme', path: sb.tierDir('nvme'), capacity: '1GiB' }], extentSize: {} }));
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /config extentSize: expected a size like 20GiB, got \{\}$/);
  fs.rmSync(cfg);
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /broken.json cannot be read: ENOENT/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `fast=${sb.tierDir('nvme')},cap=1GiB`, sb.mnt], /class: expected nvme\|ssd\|hdd\|object, got nothing \(fast is not a class/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${sb.tierDir('nvme')}`, sb.mnt], /capacity: expected a size like 20GiB, got nothing$/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), '--metrics-port', 'abc', sb.mnt], /--metrics-port: expected a TCP port/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), '--dashboard-port', '70000', sb.mnt], /--dashboard-port: expected a TCP port/);
  const stateFile = path.join(sb.root, 'state-file');
  fs.writeFileSync(stateFile, 'x');
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', stateFile, '--tier', tier(), sb.mnt], /state directory .*state-file is not a directory$/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', path.join(stateFile, 'sub'), '--tier', tier(), sb.mnt], /state directory .*state-file\/sub cannot be created: .*state-file is not a directory$/);
  fs.rmSync(stateFile);
  // A volume needs a tier: without one nothing is shadowed, and the mount would be a slow pass-through.
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, sb.mnt], /^shadowfs: no tiers: a shadowfs volume needs at least one tier .*give one with --tier NAME=PATH,cap=SIZE/);
  fs.writeFileSync(cfg, JSON.stringify({ live: sb.live, stateDir: sb.state, tiers: [] }));
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /broken.json: config tiers: expected at least one tier .*, got \[\]$/);
  fs.rmSync(cfg);
  // Last, and with --daemon: were it accepted, the mount would stay (not serve in the foreground).
  fs.writeFileSync(cfg, JSON.stringify({ live: sb.live, stateDir: sb.state, tiers: [{ name: 'nvme', path: sb.tierDir('nvme'), capacity: '1GiB' }], coverageScanInterval: '0s' }));
  expectRefusal(t, sb, ['mount', '--config', cfg, '--daemon', sb.mnt], /config coverageScanInterval: expected a duration of at least 1s, got "0s"$/);
  fs.rmSync(cfg);
  expectRefusal(t, sb, ['frobnicate'], /Unknown argument: frobnicate|Unknown command/, 2);

  t.equal(fs.readFileSync(path.join(sb.live, 'keep.txt'), 'utf8'), 'live data');
});

t.test('a tier directory mkdir cannot make (under /proc) is refused in one line, not a hang', async (t) => {
  const sb = makeSandbox();
  t.teardown(() => removeSandbox(sb));
  // /proc exists and passes the writable check, but mkdir there answers ENOENT: Node's recursive
  // mkdir looped on that forever.
  const procDir = `/proc/shadowfs-bad-input-${process.pid}`;
  const r = cli(['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${procDir},cap=1GiB`, sb.mnt], 15_000);
  t.equal(r.status, 1, `refused, within the time (status ${r.status}, null on a timeout)`);
  t.match(r.stderr, new RegExp(`^shadowfs: tier nvme: directory ${procDir} is not usable: ENOENT.*\n$`), `one line: ${r.stderr}`);
  t.notOk(isMounted(sb.mnt), 'nothing mounted');
});

t.test('a runtime directory mkdir cannot make (under /proc) ends the mount in one line, not a hang', async (t) => {
  const sb = makeSandbox();
  t.teardown(() => removeSandbox(sb));
  fs.mkdirSync(sb.tierDir('nvme'));
  const runtimeDir = `/proc/shadowfs-bad-input-${process.pid}/run`;
  const r = spawnSync(process.execPath, [CLI, 'mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${sb.tierDir('nvme')},cap=1GiB`, sb.mnt], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, SHADOWFS_RUNTIME_DIR: runtimeDir },
  });
  t.equal(r.status, 1, `refused, within the time (status ${r.status}, null on a timeout)`);
  t.match(r.stderr, /^shadowfs: .*could not start serving \(ENOENT.*mkdir '\/proc\/shadowfs-bad-input-\d+'\).*\n$/, `one line: ${r.stderr}`);
  t.notOk(isMounted(sb.mnt), 'nothing mounted');
});

t.test('bad object-store tiers', async (t) => {
  useS3Credentials();
  const s3 = await startS3Server({ bucket: 'exists' });
  const sb = makeSandbox();
  t.teardown(async () => {
    removeSandbox(sb);
    await s3.close();
  });
  const base = ['mount', '--live', sb.live, '--state', sb.state];
  const cache = sb.tierDir('cache');
  expectRefusal(t, sb, [...base, '--tier', `s3=notaurl,bucket=exists,cache=${cache},cap=1GiB`, sb.mnt], /endpoint: expected an http\(s\) URL/);
  expectRefusal(t, sb, [...base, '--tier', `s3=${s3.endpoint},bucket=Bad_Name,cache=${cache},cap=1GiB`, sb.mnt], /bucket: expected an S3 bucket name/);
  const r = cli([...base, '--tier', `s3=${s3.endpoint},bucket=missing,cache=${cache},cap=1GiB`, sb.mnt]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^shadowfs: tier s3: bucket missing not found at http:\/\/127\.0\.0\.1:\d+\n$/, 'a missing bucket is one line');
  t.notOk(isMounted(sb.mnt));
  await s3.stop();
  const down = cli([...base, '--tier', `s3=${s3.endpoint},bucket=exists,cache=${cache},cap=1GiB`, sb.mnt]);
  t.equal(down.status, 1);
  t.match(down.stderr, /^shadowfs: tier s3: .*\n$/, `an unreachable endpoint is one line: ${down.stderr.trim()}`);
  t.notOk(isMounted(sb.mnt));
});

t.test('--help explains the mount command', async (t) => {
  const r = cli(['mount', '--help']);
  t.equal(r.status, 0);
  t.match(r.stdout, /--tier/);
  t.match(r.stdout, /--daemon/);
  t.match(r.stdout, /Examples:/);
});

t.test('bad input to the other commands, refused before asking a mount', async (t) => {
  const sb = makeSandbox();
  t.teardown(() => removeSandbox(sb));
  expectRefusal(t, sb, ['unmount', '--timeout', 'abc', sb.mnt], /--timeout: expected a number of seconds above zero$/);
  expectRefusal(t, sb, ['tier', 'set', sb.mnt, '--capacity', '1GiB'], /tier set: give the tier with --name NAME$/);
  expectRefusal(t, sb, ['tier', 'remove', sb.mnt, 'nvme'], /tier remove takes --name, not a spec/);
  // A leading minus is the value, not flags -5 -G -i -B.
  expectRefusal(t, sb, ['tier', 'set', sb.mnt, '--name', 'nvme', '--capacity', '-5GiB'], /^shadowfs: --capacity "-5GiB": a capacity must be above zero/);
  expectRefusal(t, sb, ['tier', 'set', sb.mnt, '--name', 'nvme', '--capacity', '0'], /^shadowfs: --capacity "0": a capacity must be above zero/);
  expectRefusal(t, sb, ['tier', 'set', sb.mnt, '--name', 'nvme', '--capacity'], /^shadowfs: Not enough arguments following: capacity$/, 2);
  expectRefusal(t, sb, ['bench', sb.mnt, '--preset', 'rand', '--runtime', 'abc'], /^shadowfs: --runtime "abc": expected whole seconds per job, at least 1/);
  expectRefusal(t, sb, ['bench', sb.mnt, '--preset', 'rand', '--runtime', '-3'], /^shadowfs: --runtime "-3": expected whole seconds per job, at least 1/);
  expectRefusal(t, sb, ['status'], /Not enough non-option arguments/, 2);
  t.match(cli(['status']).stderr, /\(see: shadowfs status --help\)/, 'points at the help of the command');
  const version = cli(['--version']);
  t.equal(version.status, 0, '--version works');
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const tierHelp = cli(['tier', '--help']);
  t.match(tierHelp.stdout, /tier add \/mnt\/app ssd2=\S+,class=ssd/, 'the tier add example works as given (ssd2 is not a class)');
});

t.test('output into a pipe that is closed early (| head) is not a crash', async (t) => {
  const child = spawn(process.execPath, [CLI, 'forecast', '--trace', path.join(REPO, 'fixtures/traces/sample.csv'), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0, 'exits 0');
  t.notOk(/Unhandled|\n\s+at /.test(stderr), `no stack trace: ${stderr}`);
});

t.test('unmount and mount leave file systems that are not shadowfs alone', async (t) => {
  const sb = makeSandbox();
  const other = path.join(sb.root, 'tmpfs');
  const faultMnt = path.join(sb.root, 'faultfs');
  fs.mkdirSync(other);
  fs.mkdirSync(faultMnt);
  fs.mkdirSync(sb.tierDir('nvme'));
  let stopFaultFs = async (): Promise<unknown> => undefined;
  t.teardown(async () => {
    spawnSync('umount', [other]);
    await stopFaultFs(); // detaches its mount too
    removeSandbox(sb);
  });
  t.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1M', 'tmpfs', other]).status, 0, 'a tmpfs is mounted');
  fs.writeFileSync(path.join(other, 'precious'), 'data');
  const r = cli(['unmount', other]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^shadowfs: .*tmpfs is not a shadowfs mount \(it is tmpfs\); not touching it\n$/);
  t.ok(isMounted(other), 'the tmpfs is still mounted');
  t.ok(fs.existsSync(path.join(other, 'precious')), 'its files are still there');

  // Another FUSE file system whose daemon died: stale, but not ours to clear.
  const ffs = await startFaultFs(sb.live, faultMnt);
  stopFaultFs = () => ffs.stop().catch(() => undefined);
  const pid = pidWithArgs('faultfs.js', faultMnt);
  t.ok(pid, 'faultfs runs');
  process.kill(pid as number, 'SIGKILL');
  // The first stat after its death may see ECONNABORTED (the request it was serving); then ENOTCONN.
  for (let i = 0; i < 100 && statCode(faultMnt) !== 'ENOTCONN'; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(statCode(faultMnt), 'ENOTCONN', 'faultfs is a stale mount now');
  const m = cli(['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${sb.tierDir('nvme')},cap=64MiB`, '--daemon', faultMnt]);
  t.equal(m.status, 1, `mount over it is refused: ${m.stderr}`);
  t.match(m.stderr, /is already a mount point; unmount it first/);
  const u = cli(['unmount', faultMnt]);
  t.equal(u.status, 1);
  t.match(u.stderr, /is not a shadowfs mount \(it is fuse\.faultfs\)/);
  t.same(mountTypesAt(faultMnt), ['fuse.faultfs'], 'the stale faultfs mount is left as it was');
});

t.test('a running mount: its state directory, tiers and hints', async (t) => {
  const { sb, vol } = sandboxedMount(t);
  await vol.start();
  fs.writeFileSync(path.join(sb.mnt, 'f'), 'x'.repeat(4096));
  const other = makeSandbox();
  const relTier = `bad-input-rel-tier-${process.pid}`;
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    removeSandbox(other);
    fs.rmSync(path.resolve(relTier), { recursive: true, force: true }); // where an old build put it
    await new Promise((resolve) => server.close(resolve));
  });
  fs.mkdirSync(other.tierDir('nvme'));
  const before = listTree(other.root);

  const same = cli(['mount', '--live', other.live, '--state', sb.state, '--tier', `nvme=${other.tierDir('nvme')},cap=64MiB`, other.mnt]);
  t.equal(same.status, 1, 'a state directory in use is refused');
  t.match(same.stderr, /^shadowfs: state directory .* is in use by another shadowfs mount/);
  t.notOk(isMounted(other.mnt));

  const port = (server.address() as net.AddressInfo).port;
  const busy = cli(['mount', '--live', other.live, '--state', other.state, '--tier', `nvme=${other.tierDir('nvme')},cap=64MiB`, '--metrics-port', String(port), '--daemon', other.mnt]);
  t.equal(busy.status, 1, `--daemon does not report a mount that failed to start serving: ${busy.stdout}`);
  t.match(busy.stderr, /^shadowfs: the mount daemon exited \(code 1\): .*EADDRINUSE.*; unmounted again\n$/);
  t.notOk(isMounted(other.mnt));
  // The volume's owner mark on its tier is the volume's own, like its state directory.
    t.same(listTree(other.root).filter((f) => !f.startsWith('state') && !f.endsWith('/.shadowfs-volume')), before, 'nothing else touched');

  // The tier's directory is the caller's relative path, not the daemon's.
  const add = spawnSync(process.execPath, [CLI, 'tier', 'add', sb.mnt, `hdd=${relTier},cap=8MiB,class=hdd`], { cwd: other.root, encoding: 'utf8' });
  t.equal(add.status, 0, add.stderr);
  t.ok(fs.existsSync(path.join(other.root, relTier)), 'the tier directory is where the caller meant it');
  t.equal(cli(['tier', 'remove', sb.mnt, '--name', 'hdd']).status, 0);

  const hint = cli(['hint', path.join(sb.mnt, 'f'), '--duration', '0']);
  t.equal(hint.status, 1);
  t.match(hint.stderr, /^shadowfs: --duration "0": expected a duration above zero/);
});

t.test('Ctrl-C during a progress bar puts the terminal back and says the work goes on', async (t) => {
  let written = '';
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 80 }) as unknown as NodeJS.WriteStream;
  stream.on('data', (d: Buffer) => (written += d.toString()));
  const bar = progress('scrub', { stream, interruptNote: 'the scrub goes on in the mount' });
  bar.update(1, 10);
  const onSigint = process.listeners('SIGINT').at(-1) as () => void;
  const realExit = process.exit;
  let exitCode: number | undefined;
  process.exit = ((code?: number) => void (exitCode = code)) as typeof process.exit;
  try {
    onSigint();
  } finally {
    process.exit = realExit;
    bar.stop();
  }
  await new Promise((r) => setImmediate(r));
  t.equal(exitCode, 130, 'exits 130');
  t.match(written, '\x1b[?25h', 'the cursor is shown again');
  t.match(written, '\x1b[?7h', 'line wrapping is on again');
  t.match(written, /shadowfs: the scrub goes on in the mount\n$/);
});

t.test('progress to a pipe says the finished count once, however often it is polled after', async (t) => {
  let written = '';
  const stream = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
  stream.on('data', (d: Buffer) => (written += d.toString()));
  const bar = progress('draining ssd', { stream });
  bar.update(0, 3);
  bar.update(1, 3);
  for (let i = 0; i < 5; i++) bar.update(3, 3);
  bar.stop();
  await new Promise((r) => setImmediate(r));
  t.same(written.trim().split('\n'), ['draining ssd: 0/3', 'draining ssd: 3/3']);
});

/** The pid of the process whose command line holds all of `parts`. */
function pidWithArgs(...parts: string[]): number | undefined {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (parts.every((p) => cmdline.includes(p))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

function statCode(p: string): string | undefined {
  try {
    fs.statSync(p);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

function mountTypesAt(mnt: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[4] === mnt).map((f) => f[f.indexOf('-') + 1]);
}
