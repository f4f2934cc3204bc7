/**
 * faultfs on real mounts: passthrough correctness, then each fault made real (latency, errno,
 * hang) and undone, and a stop while ops hang.
 *
 * faultfs runs in its own process, so this process may use fs.promises on the mount; but an op
 * that hangs puts its caller in uninterruptible sleep, so hung I/O is always issued from child
 * processes.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { FaultFs, isMounted, startFaultFs } from '../../fixtures/faultfs/faultfs-client';

const run = promisify(execFile);

interface Scratch {
  backing: string;
  mnt: string;
  ffs: FaultFs;
}

/** A temp dir with backing/ and mnt/, faultfs mounted; stopped (by force if need be) and removed at teardown. */
async function mountedFaultFs(t: Test): Promise<Scratch> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'faultfs-test-'));
  const backing = path.join(dir, 'backing');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(backing);
  await fsp.mkdir(mnt);
  let ffs: FaultFs | undefined;
  t.teardown(async () => {
    await ffs?.stop().catch(() => undefined);
    if (isMounted(mnt)) await run('fusermount', ['-uz', mnt]).catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  });
  ffs = await startFaultFs(backing, mnt);
  return { backing, mnt, ffs };
}

interface ChildRead {
  ok: boolean;
  code?: string;
  bytes?: number;
  sha256?: string;
}

/** Reads (or stats, with what='stat') a file in a child process; killed at teardown if still running. */
function inChild(t: Test, file: string, what: 'read' | 'stat' = 'read'): { proc: ChildProcess; result: Promise<ChildRead> } {
  const script = `
    const fs = require('fs'), crypto = require('crypto');
    try {
      if (process.argv[2] === 'stat') { fs.statSync(process.argv[1]); console.log(JSON.stringify({ ok: true })); }
      else {
        const b = fs.readFileSync(process.argv[1]);
        console.log(JSON.stringify({ ok: true, bytes: b.length, sha256: crypto.createHash('sha256').update(b).digest('hex') }));
      }
    } catch (e) { console.log(JSON.stringify({ ok: false, code: e.code })); }`;
  const proc = spawn(process.execPath, ['-e', script, file, what], { cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  // Never rejects (a child killed at teardown must not become an unhandled rejection).
  const result = new Promise<ChildRead>((resolve) => {
    proc.once('error', (err) => resolve({ ok: false, code: `spawn: ${err.message}` }));
    proc.once('exit', (code, signal) => {
      try {
        resolve(JSON.parse(out) as ChildRead);
      } catch {
        resolve({ ok: false, code: `no output (exit ${code ?? signal})` });
      }
    });
  });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return { proc, result };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** 'pending' if p has not settled within ms. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([p, pending]);
  } finally {
    clearTimeout(timer);
  }
}

t.test('passthrough: what goes through the mount is what the backing dir holds', async (t) => {
  const { backing, mnt } = await mountedFaultFs(t);
  const m = (p: string): string => path.join(mnt, p);
  const b = (p: string): string => path.join(backing, p);

  const big = randomBytes(3 * 1024 * 1024 + 123);
  await fsp.writeFile(m('big'), big);
  t.equal(sha256(await fsp.readFile(b('big'))), sha256(big), 'write through the mount lands in the backing dir');
  t.equal(sha256(await fsp.readFile(m('big'))), sha256(big), 'and reads back through the mount');

  // Partial overwrite and read at an offset.
  const fh = await fsp.open(m('big'), 'r+');
  await fh.write(Buffer.from('patched'), 0, 7, 1_000_000);
  const part = Buffer.alloc(7);
  await fh.read(part, 0, 7, 1_000_000);
  await fh.sync();
  await fh.close();
  t.equal(part.toString(), 'patched');
  t.equal((await fsp.readFile(b('big'))).subarray(1_000_000, 1_000_007).toString(), 'patched');

  await fsp.writeFile(b('from-backing'), 'made behind the mount');
  t.equal(await fsp.readFile(m('from-backing'), 'utf8'), 'made behind the mount', 'changes in the backing dir show at once');
  await fsp.appendFile(m('from-backing'), ', appended');
  t.equal(await fsp.readFile(b('from-backing'), 'utf8'), 'made behind the mount, appended');

  await fsp.rename(m('from-backing'), m('renamed'));
  t.notOk(fs.existsSync(b('from-backing')));
  t.equal(await fsp.readFile(b('renamed'), 'utf8'), 'made behind the mount, appended');
  await fsp.truncate(m('renamed'), 4);
  t.equal(await fsp.readFile(b('renamed'), 'utf8'), 'made');
  await fsp.chmod(m('renamed'), 0o640);
  t.equal((await fsp.stat(b('renamed'))).mode & 0o7777, 0o640);
  await fsp.utimes(m('renamed'), 1_000_000, 1_234_567);
  t.equal((await fsp.stat(b('renamed'))).mtimeMs, 1_234_567_000);
  await fsp.link(m('renamed'), m('hardlink'));
  t.equal((await fsp.stat(m('renamed'))).nlink, 2);
  await fsp.symlink('renamed', m('sym'));
  t.equal(await fsp.readlink(m('sym')), 'renamed');
  t.equal(await fsp.readlink(b('sym')), 'renamed');
  await fsp.mkdir(m('dir/sub'), { recursive: true });
  t.ok((await fsp.stat(b('dir/sub'))).isDirectory());
  await run('setfattr', ['-n', 'user.color', '-v', 'blue', m('renamed')]);
  t.match((await run('getfattr', ['-n', 'user.color', '--only-values', b('renamed')])).stdout, 'blue');
  t.same((await fsp.readdir(m('.'))).sort(), (await fsp.readdir(backing)).sort(), 'same listing');
  const sfs = await fsp.statfs(mnt);
  t.ok(sfs.blocks > 0, 'statfs passes through');

  await fsp.unlink(m('hardlink'));
  await fsp.rmdir(m('dir/sub'));
  await fsp.unlink(m('big'));
  t.notOk(fs.existsSync(b('big')));
  t.notOk(fs.existsSync(b('dir/sub')));
  await t.rejects(fsp.readFile(m('big')), { code: 'ENOENT' }, 'errors of the backing dir pass through');
});

t.test('faults on a live mount', async (t) => {
  const { backing, mnt, ffs } = await mountedFaultFs(t);
  const data = randomBytes(256 * 1024);
  await fsp.writeFile(path.join(backing, 'f'), data);
  const f = path.join(mnt, 'f');

  await t.test('latency delays a read by at least the injected amount', async (t) => {
    await ffs.set({ latencyMs: 300, ops: ['read'] });
    const started = process.hrtime.bigint();
    const got = await fsp.readFile(f);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    t.equal(sha256(got), sha256(data));
    t.ok(elapsedMs >= 300, `read took ${elapsedMs.toFixed(0)} ms`);
    t.ok((await ffs.status()).opsTotal > 0);
  });

  await t.test('a ramp reaches its target latency', async (t) => {
    await ffs.set({ ramp: { fromMs: 0, toMs: 250, overSeconds: 0.5 }, ops: ['getattr'] });
    await new Promise((r) => setTimeout(r, 600));
    const started = process.hrtime.bigint();
    await fsp.stat(f);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    t.ok(elapsedMs >= 250, `stat after the ramp took ${elapsedMs.toFixed(0)} ms`);
  });

  await t.test('EIO on reads fails reads, other ops work', async (t) => {
    await ffs.set({ error: 'EIO', ops: ['read'], probability: 1 });
    await t.rejects(fsp.readFile(f), { code: 'EIO' });
    t.equal((await fsp.stat(f)).size, data.length, 'stat works');
    await fsp.writeFile(path.join(mnt, 'new'), 'written while reads fail');
    t.equal(await fsp.readFile(path.join(backing, 'new'), 'utf8'), 'written while reads fail', 'writes work');
    t.ok((await fsp.readdir(mnt)).includes('new'), 'readdir works');
    t.ok((await ffs.status()).errorsInjected > 0);
  });

  await t.test('ETIMEDOUT on getattr', async (t) => {
    await ffs.set({ error: 'ETIMEDOUT', ops: ['getattr'] });
    await t.rejects(fsp.stat(f), { code: 'ETIMEDOUT' });
  });

  await t.test('clear restores normal behaviour', async (t) => {
    await ffs.clear();
    t.equal(sha256(await fsp.readFile(f)), sha256(data));
    t.same((await ffs.status()).rules, []);
  });

  await t.test('a hung read does not return until the fault is cleared', async (t) => {
    await ffs.set({ hang: true, ops: ['read'] });
    const child = inChild(t, f);
    await ffs.waitFor((s) => s.hungNow >= 1, 10_000);
    t.equal(await within(child.result, 1000), 'pending', 'no answer within 1 s');
    // Other ops are still served while the read hangs (stat from here is safe: only reads hang).
    t.equal((await fsp.stat(f)).size, data.length, 'stat is answered meanwhile');
    await ffs.clear();
    const r = await within(child.result, 10_000);
    t.same(r, { ok: true, bytes: data.length, sha256: sha256(data) }, 'the read completes once cleared');
  });

  await t.test('bad specs are refused and change nothing', async (t) => {
    await ffs.set({ latencyMs: 1 });
    await t.rejects(ffs.set({ error: 'EWHATEVER' }), /error: an errno name/);
    t.same((await ffs.status()).rules, [{ latencyMs: 1 }]);
    await ffs.clear();
  });
});

t.test('stop() while every op hangs unmounts cleanly', async (t) => {
  const { backing, mnt, ffs } = await mountedFaultFs(t);
  await fsp.writeFile(path.join(backing, 'f'), 'x');
  await fsp.writeFile(path.join(backing, 'g'), 'y');
  await ffs.set({ hang: true });
  // Only one op is hung at faultfs: libfuse 2 does not ask for parallel lookups, so the kernel
  // serializes lookups in a directory and the second caller waits in the kernel behind the first.
  const reader = inChild(t, path.join(mnt, 'f'));
  const statter = inChild(t, path.join(mnt, 'g'), 'stat');
  await ffs.waitFor((s) => s.hungNow >= 1, 10_000);
  t.equal(await within(Promise.race([reader.result, statter.result]), 1000), 'pending', 'both hang');

  const stopped = await ffs.stop();
  t.same(stopped, { exitCode: 0, forced: false }, 'faultfs unmounted and exited by itself');
  t.notOk(isMounted(fs.realpathSync(mnt)), 'no mount left');
  const results = await within(Promise.all([reader.result, statter.result]), 10_000);
  t.not(results, 'pending', 'the hung callers were answered');
  if (results !== 'pending') {
    for (const r of results) t.match(r, { ok: false, code: /^(EIO|ENOTCONN)$/ }, 'with an error');
  }
  t.same(await fsp.readdir(mnt), [], 'the mountpoint is a plain empty directory again (not a stale mount)');
  t.same(await ffs.stop(), stopped, 'stop is idempotent');
});
