/**
 * POSIX behaviour of every operation through a real mount, errno cases included.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { MountedVolume, makeSandbox, removeSandbox } from '../helpers/mounted-volume';

const sb = makeSandbox();
const vol = new MountedVolume(sb, { extentSize: '64KiB' });
const m = (p: string): string => path.join(sb.mnt, p);
const l = (p: string): string => path.join(sb.live, p);

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
}

function asNobody(cmd: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

t.before(async () => {
  fs.chmodSync(sb.root, 0o755);
  fs.mkdirSync(l('pre'));
  fs.writeFileSync(l('pre/existing.txt'), 'hello from the live volume\n');
  await vol.start();
});
t.teardown(async () => {
  await vol.cleanup();
  removeSandbox(sb);
});

t.test('the live volume is visible and reads match', async (t) => {
  t.same(fs.readdirSync(m('pre')), ['existing.txt']);
  t.equal(fs.readFileSync(m('pre/existing.txt'), 'utf8'), 'hello from the live volume\n');
  t.equal(fs.statSync(m('pre/existing.txt')).size, 27);
  t.equal(errnoOf(() => fs.statSync(m('nope'))), 'ENOENT');
  t.equal(errnoOf(() => fs.readFileSync(m('pre'))), 'EISDIR');
  t.equal(errnoOf(() => fs.readdirSync(m('pre/existing.txt'))), 'ENOTDIR');
  t.equal(errnoOf(() => fs.statSync(m('pre/existing.txt/x'))), 'ENOTDIR');
});

t.test('create, write, read back, and the live file holds the bytes', async (t) => {
  const data = Buffer.alloc(300_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  fs.writeFileSync(m('a.bin'), data);
  t.ok(fs.readFileSync(m('a.bin')).equals(data), 'read through the mount');
  t.ok(fs.readFileSync(l('a.bin')).equals(data), 'write-through reached the live file');
  t.equal(errnoOf(() => fs.openSync(m('a.bin'), fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY)), 'EEXIST');
  const fd = fs.openSync(m('a.bin'), 'r+');
  fs.writeSync(fd, Buffer.from('XYZ'), 0, 3, 70_000);
  const back = Buffer.alloc(5);
  fs.readSync(fd, back, 0, 5, 69_999);
  t.equal(back.toString('latin1'), String.fromCharCode(data[69_999]) + 'XYZ' + String.fromCharCode(data[70_003]));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
});

t.test('truncate and ftruncate, both ways', async (t) => {
  fs.writeFileSync(m('t.bin'), Buffer.alloc(200_000, 0x61));
  fs.truncateSync(m('t.bin'), 100_001);
  t.equal(fs.statSync(m('t.bin')).size, 100_001);
  const fd = fs.openSync(m('t.bin'), 'r+');
  fs.ftruncateSync(fd, 150_000);
  fs.closeSync(fd);
  const b = fs.readFileSync(m('t.bin'));
  t.equal(b.length, 150_000);
  t.equal(b[100_000], 0x61);
  t.equal(b[100_001], 0, 'grown bytes are zeros');
  t.equal(b[149_999], 0);
  fs.truncateSync(m('t.bin'), 0);
  t.equal(fs.readFileSync(m('t.bin')).length, 0);
  fs.writeFileSync(m('t2.bin'), 'abcdef');
  fs.writeFileSync(m('t2.bin'), 'xy');
  t.equal(fs.readFileSync(m('t2.bin'), 'utf8'), 'xy', 'O_TRUNC on open');
});

t.test('directories: mkdir, rmdir, ENOTEMPTY, EEXIST', async (t) => {
  fs.mkdirSync(m('d1'));
  fs.mkdirSync(m('d1/sub'), { mode: 0o750 });
  t.equal(fs.statSync(m('d1/sub')).mode & 0o777, 0o750);
  t.equal(errnoOf(() => fs.mkdirSync(m('d1'))), 'EEXIST');
  t.equal(errnoOf(() => fs.rmdirSync(m('d1'))), 'ENOTEMPTY');
  t.equal(errnoOf(() => fs.rmdirSync(m('pre/existing.txt'))), 'ENOTDIR');
  t.equal(errnoOf(() => fs.unlinkSync(m('d1'))), 'EISDIR');
  fs.rmdirSync(m('d1/sub'));
  fs.rmdirSync(m('d1'));
  t.notOk(fs.existsSync(l('d1')));
});

t.test('rename files and directories, replacing targets', async (t) => {
  fs.writeFileSync(m('r1'), 'one');
  fs.writeFileSync(m('r2'), 'two');
  fs.renameSync(m('r1'), m('r2'));
  t.equal(fs.readFileSync(m('r2'), 'utf8'), 'one');
  t.notOk(fs.existsSync(m('r1')));
  fs.mkdirSync(m('rd'));
  fs.writeFileSync(m('rd/f'), 'inside');
  fs.mkdirSync(m('rd2'));
  fs.renameSync(m('rd'), m('rd2'));
  t.equal(fs.readFileSync(m('rd2/f'), 'utf8'), 'inside');
  fs.mkdirSync(m('full'));
  fs.writeFileSync(m('full/x'), 'x');
  fs.mkdirSync(m('rd3'));
  t.equal(errnoOf(() => fs.renameSync(m('rd3'), m('full'))), 'ENOTEMPTY');
  t.equal(errnoOf(() => fs.renameSync(m('rd3'), m('r2'))), 'ENOTDIR');
  t.equal(errnoOf(() => fs.renameSync(m('r2'), m('rd3'))), 'EISDIR');
  t.equal(errnoOf(() => fs.renameSync(m('missing'), m('r3'))), 'ENOENT');
});

t.test('links: hard links share data, symlinks resolve, readlink', async (t) => {
  fs.writeFileSync(m('h1'), 'shared');
  fs.linkSync(m('h1'), m('h2'));
  t.equal(fs.statSync(m('h1')).nlink, 2);
  fs.appendFileSync(m('h2'), '+more');
  t.equal(fs.readFileSync(m('h1'), 'utf8'), 'shared+more');
  fs.unlinkSync(m('h1'));
  t.equal(fs.readFileSync(m('h2'), 'utf8'), 'shared+more');
  t.equal(errnoOf(() => fs.linkSync(m('h2'), m('pre/existing.txt'))), 'EEXIST');
  fs.symlinkSync('pre/existing.txt', m('sl'));
  t.equal(fs.readlinkSync(m('sl')), 'pre/existing.txt');
  t.ok(fs.lstatSync(m('sl')).isSymbolicLink());
  t.equal(fs.readFileSync(m('sl'), 'utf8'), 'hello from the live volume\n');
  t.equal(fs.readlinkSync(l('sl')), 'pre/existing.txt', 'the live volume has the symlink');
  t.equal(errnoOf(() => fs.readlinkSync(m('h2'))), 'EINVAL');
});

t.test('attributes: chmod, chown, utimens (atime and mtime apart)', async (t) => {
  fs.writeFileSync(m('attr'), 'x');
  fs.chmodSync(m('attr'), 0o640);
  t.equal(fs.statSync(m('attr')).mode & 0o777, 0o640);
  fs.chownSync(m('attr'), 65534, 65534);
  t.equal(fs.statSync(m('attr')).uid, 65534);
  t.equal(fs.statSync(l('attr')).gid, 65534);
  fs.utimesSync(m('attr'), new Date(1_000_000_000_000), new Date(1_200_000_000_000));
  const st = fs.statSync(m('attr'));
  t.equal(st.atimeMs, 1_000_000_000_000);
  t.equal(st.mtimeMs, 1_200_000_000_000, 'mtime is its own, not atime');
});

t.test('permissions: EACCES for another user, new files owned by their creator', async (t) => {
  fs.writeFileSync(m('secret'), 'root only');
  fs.chmodSync(m('secret'), 0o600);
  const r = asNobody(['cat', m('secret')]);
  t.not(r.status, 0);
  t.match(r.stderr, /Permission denied/);
  fs.mkdirSync(m('shared'), { mode: 0o777 });
  fs.chmodSync(m('shared'), 0o777);
  const c = asNobody(['sh', '-c', `echo hi > ${m('shared/byuser')} && mkdir ${m('shared/userdir')}`]);
  t.equal(c.status, 0, c.stderr);
  t.equal(fs.statSync(l('shared/byuser')).uid, 65534, 'file owned by the caller');
  t.equal(fs.statSync(l('shared/userdir')).uid, 65534, 'directory owned by the caller');
  t.equal(asNobody(['test', '-w', m('secret')]).status, 1, 'access(W_OK) refused');
});

t.test('mknod: a FIFO works through the mount', async (t) => {
  const r = spawnSync('mkfifo', [m('fifo')]);
  t.equal(r.status, 0);
  t.ok(fs.statSync(m('fifo')).isFIFO());
  t.ok(fs.statSync(l('fifo')).isFIFO());
});

t.test('file locks: flock and POSIX record locks exclude another process', async (t) => {
  fs.writeFileSync(m('lockme'), 'x');
  // The holder keeps each lock for two seconds; the other process tries without waiting meanwhile.
  const tryLock = (holder: string[], other: string[]): { held: number | null; refused: number | null } => {
    const h = spawnSync('sh', ['-c', `${holder.join(' ')} & sleep 0.5; ${other.join(' ')}; echo "other=$?"; wait`], { encoding: 'utf8' });
    const otherExit = /other=(\d+)/.exec(h.stdout);
    return { held: h.status, refused: otherExit ? Number(otherExit[1]) : null };
  };
  const flock = tryLock(['flock', '-x', m('lockme'), 'sleep', '2'], ['flock', '-n', '-x', m('lockme'), 'true']);
  t.equal(flock.held, 0, 'the holder got its flock');
  t.equal(flock.refused, 1, 'a second flock -n is refused while it is held');
  const py = (cmd: string): string[] => ['python3', '-c', `"import fcntl,os,time; fd=os.open('${m('lockme')}', os.O_RDWR); ${cmd}"`];
  const posix = tryLock(py('fcntl.lockf(fd, fcntl.LOCK_EX); time.sleep(2)'), py('fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)'));
  t.equal(posix.held, 0, 'the holder got its POSIX lock');
  t.equal(posix.refused, 1, 'another process cannot take it');
  t.equal(spawnSync('flock', ['-n', '-x', m('lockme'), 'true']).status, 0, 'free again once the holder is gone');
});

t.test('extended attributes', async (t) => {
  fs.writeFileSync(m('xa'), 'x');
  let r = spawnSync('setfattr', ['-n', 'user.color', '-v', 'blue', m('xa')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  r = spawnSync('getfattr', ['--only-values', '-n', 'user.color', m('xa')], { encoding: 'utf8' });
  t.equal(r.stdout, 'blue');
  r = spawnSync('getfattr', ['-d', m('xa')], { encoding: 'utf8' });
  t.match(r.stdout, /user.color="blue"/);
  r = spawnSync('getfattr', ['-n', 'user.none', m('xa')], { encoding: 'utf8' });
  t.match(r.stderr, /No such attribute/);
  r = spawnSync('setfattr', ['-x', 'user.color', m('xa')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  r = spawnSync('getfattr', ['-d', m('xa')], { encoding: 'utf8' });
  t.notMatch(r.stdout, /user.color/);
});

t.test('statfs reports the live volume', async (t) => {
  const s = fs.statfsSync(m(''));
  const live = fs.statfsSync(sb.live);
  t.equal(s.bsize, live.bsize);
  t.ok(Math.abs(s.blocks - live.blocks) <= 1);
});

t.test('files larger than 4 GiB (sparse)', async (t) => {
  const fd = fs.openSync(m('big'), 'w+');
  const at = 5 * 1024 ** 3 + 123;
  fs.writeSync(fd, Buffer.from('beyond 4GiB'), 0, 11, at);
  fs.closeSync(fd);
  t.equal(fs.statSync(m('big')).size, at + 11);
  const fd2 = fs.openSync(m('big'), 'r');
  const b = Buffer.alloc(11);
  fs.readSync(fd2, b, 0, 11, at);
  fs.closeSync(fd2);
  t.equal(b.toString(), 'beyond 4GiB');
  fs.unlinkSync(m('big'));
});

t.test('concurrent writers in several processes', async (t) => {
  const script = (i: number): string =>
    `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(m('conc'))},'r+');` +
    `for(let k=0;k<64;k++){fs.writeSync(fd,Buffer.alloc(4096,${i}),0,4096,(k*4+${i})*4096);}fs.closeSync(fd);`;
  fs.writeFileSync(m('conc'), Buffer.alloc(4 * 64 * 4096));
  const procs = [0, 1, 2, 3].map((i) => new Promise<number | null>((resolve) => {
    const c = require('node:child_process').spawn(process.execPath, ['-e', script(i)]);
    c.on('exit', resolve);
  }));
  t.same(await Promise.all(procs), [0, 0, 0, 0]);
  const b = fs.readFileSync(m('conc'));
  let ok = true;
  for (let blk = 0; blk < 256; blk++) if (b[blk * 4096] !== blk % 4 || b[blk * 4096 + 4095] !== blk % 4) ok = false;
  t.ok(ok, 'every block holds its writer\'s bytes');
  t.ok(fs.readFileSync(l('conc')).equals(b), 'the live file agrees');
});

t.test('unlink of an open file keeps it readable until close', async (t) => {
  fs.writeFileSync(m('ghost'), 'still here');
  const fd = fs.openSync(m('ghost'), 'r');
  fs.unlinkSync(m('ghost'));
  t.equal(errnoOf(() => fs.statSync(m('ghost'))), 'ENOENT');
  const b = Buffer.alloc(10);
  fs.readSync(fd, b, 0, 10, 0);
  t.equal(b.toString(), 'still here');
  fs.closeSync(fd);
});

t.test('clean unmount on SIGTERM', async (t) => {
  t.equal(await vol.stop(), 0, vol.output);
  t.notOk(fs.existsSync(m('a.bin')), 'mount point is empty again');
});
