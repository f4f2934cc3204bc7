/**
 * The mount(8) helper end to end: `mount -t fuse.shadowfs CONFIG MNT`, an fstab line (through
 * `mount --fstab FILE MNT`, not /etc/fstab), `umount` and `shadowfs unmount`, and a bad option.
 * util-linux looks for helpers only in /sbin (libmount's FS_SEARCH_PATH: /sbin:/sbin/fs.d:/sbin/fs),
 * so the test links /sbin/mount.fuse.shadowfs itself (restoring whatever was there) and does not
 * depend on `make install`.
 */
import { processAlive } from '../../src/util/process-alive';
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO, cli, isMounted, makeSandbox, removeSandbox, Sandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { pidFile, socketFile } from '../../src/control/runtime-files';
import type { StatusReport } from '../../src/control/protocol';

const HELPER = path.join(REPO, 'bin/mount.shadowfs');

/** Links /sbin/NAME to our helper for the test; returns the undo. */
function installHelper(name: string): () => void {
  const link = path.join('/sbin', name);
  let aside: string | undefined;
  try {
    if (fs.realpathSync(link) === fs.realpathSync(HELPER)) return () => undefined;
    aside = `${link}.shadowfs-test-${process.pid}`;
    fs.renameSync(link, aside);
  } catch {
    /* nothing there */
  }
  fs.symlinkSync(HELPER, link);
  return () => {
    fs.rmSync(link, { force: true });
    if (aside) fs.renameSync(aside, link);
  };
}

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function fsType(mnt: string): string | undefined {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt);
  if (!line) return undefined;
  const f = line.split(' ');
  return f[f.indexOf('-') + 1];
}


function writeConfig(sb: Sandbox): string {
  fs.mkdirSync(sb.tierDir('nvme'));
  const file = path.join(sb.root, 'app.json');
  fs.writeFileSync(file, JSON.stringify({ live: sb.live, stateDir: sb.state, tiers: [{ name: 'nvme', path: sb.tierDir('nvme'), capacity: '64MiB' }] }));
  return file;
}

/** The daemon of a mount exits after an unmount, leaving no pid file or socket behind. */
async function expectCleanExit(t: Test, mnt: string, pid: number): Promise<void> {
  await waitFor(() => !processAlive(pid), `daemon ${pid} to exit`, 30_000);
  t.notOk(isMounted(mnt), 'no longer mounted');
  t.notOk(fs.existsSync(pidFile(mnt)), 'pid file removed');
  t.notOk(fs.existsSync(socketFile(mnt)), 'control socket removed');
}

t.test('mount helper', async (t) => {
  const sb = makeSandbox();
  const undo = installHelper('mount.fuse.shadowfs');
  t.teardown(() => {
    undo();
    if (isMounted(sb.mnt)) spawnSync(process.execPath, [path.join(REPO, 'bin/shadowfs'), 'unmount', sb.mnt]);
    removeSandbox(sb);
  });
  const config = writeConfig(sb);
  fs.writeFileSync(path.join(sb.live, 'hello.txt'), 'hello from the live volume\n');

  t.test('mount -t fuse.shadowfs CONFIG MNT, then umount', async (t) => {
    const m = run('mount', ['-t', 'fuse.shadowfs', config, sb.mnt]);
    t.equal(m.status, 0, `mount succeeds: ${m.stderr}`);
    t.ok(isMounted(sb.mnt), 'mounted when mount(8) returns');
    t.equal(fsType(sb.mnt), 'fuse.shadowfs');
    t.equal(fs.readFileSync(path.join(sb.mnt, 'hello.txt'), 'utf8'), 'hello from the live volume\n', 'files visible');
    fs.writeFileSync(path.join(sb.mnt, 'written.txt'), 'through the mount');
    t.equal(fs.readFileSync(path.join(sb.live, 'written.txt'), 'utf8'), 'through the mount', 'writes reach the live volume');
    const pid = Number(fs.readFileSync(pidFile(sb.mnt), 'utf8'));
    const again = run('mount', ['-t', 'fuse.shadowfs', config, sb.mnt]);
    t.equal(again.status, 0, 'the same volume again: already mounted is success (what mount -a needs)');
    t.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === sb.mnt).length, 1, 'not mounted twice');
    t.equal(Number(fs.readFileSync(pidFile(sb.mnt), 'utf8')), pid, 'the same daemon serves it');
    const other = run('mount', ['-t', 'fuse.shadowfs', '-o', `live=${sb.root}`, config, sb.mnt]);
    t.not(other.status, 0, 'another volume on the same point is refused');
    t.match(other.stderr, /already a mount point/);
    const u = run('umount', [sb.mnt]);
    t.equal(u.status, 0, `umount succeeds: ${u.stderr}`);
    await expectCleanExit(t, sb.mnt, pid);
    t.match(fs.readFileSync(path.join(sb.state, 'shadowfs.log'), 'utf8'), /unmounted /, 'the daemon unmounted cleanly (status printed, metadata closed)');
  });

  t.test('an fstab line: mount --fstab FILE MNT, then shadowfs unmount', async (t) => {
    const fstab = path.join(sb.root, 'fstab');
    fs.writeFileSync(fstab, `# test fstab\n${config} ${sb.mnt} fuse.shadowfs defaults,_netdev,nofail,x-systemd.requires-mounts-for=${sb.live},placement=predictive,admit_after=5,dashboard_port=0 0 0\n`);
    const m = run('mount', ['--fstab', fstab, sb.mnt]);
    t.equal(m.status, 0, `mount succeeds: ${m.stderr}`);
    t.ok(isMounted(sb.mnt));
    const all = run('mount', ['-a', '--fstab', fstab]);
    t.equal(all.status, 0, `mount -a with the entry already mounted succeeds: ${all.stderr}`);
    t.equal(fs.readFileSync(path.join(sb.mnt, 'hello.txt'), 'utf8'), 'hello from the live volume\n');
    const st = cli(['status', '--json', sb.mnt]);
    t.equal(st.status, 0);
    const report = JSON.parse(st.stdout) as StatusReport;
    t.equal(report.placement.policy, 'predictive', 'placement=predictive reached the mount');
    const dashboardAt = /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(fs.readFileSync(path.join(sb.state, 'shadowfs.log'), 'utf8'));
    t.ok(dashboardAt, 'dashboard_port= started the dashboard');
    if (dashboardAt) {
      const page = await fetch(dashboardAt[1]);
      t.equal(page.status, 200, `the dashboard answers at ${dashboardAt[1]}`);
    }
    const u = cli(['unmount', sb.mnt]);
    t.equal(u.status, 0, `shadowfs unmount succeeds: ${u.stderr}`);
    await expectCleanExit(t, sb.mnt, report.pid);
  });

  t.test('bad options: one line, non-zero, nothing mounted', async (t) => {
    const viaMount = run('mount', ['-t', 'fuse.shadowfs', '-o', 'frobnicate=3', config, sb.mnt]);
    t.not(viaMount.status, 0);
    t.equal(viaMount.stderr.trim().split('\n').length, 1, 'one line');
    t.match(viaMount.stderr, /unknown mount option "frobnicate=3"/);
    const direct = run(HELPER, [config, sb.mnt, '-o', 'rw,ro']);
    t.equal(direct.status, 1);
    t.equal(direct.stderr.trim().split('\n').length, 1, 'one line');
    t.match(direct.stderr, /^mount\.shadowfs: mount option ro: read-only mounts are not supported/);
    const help = run(HELPER, ['--help']);
    t.equal(help.status, 0, '--help');
    t.match(help.stdout, /-o OPTIONS/);
    const usage = run(HELPER, [config]);
    t.equal(usage.status, 1);
    t.match(usage.stderr, /usage: mount\.shadowfs CONFIG MOUNTPOINT/);
    const badConfig = run(HELPER, [path.join(sb.root, 'missing.json'), sb.mnt]);
    t.equal(badConfig.status, 32, 'a mount that fails exits 32, as mount(8) documents');
    t.match(badConfig.stderr, /^shadowfs: config file .*missing\.json cannot be read: ENOENT\n$/);
    t.notOk(isMounted(sb.mnt));
  });
});
