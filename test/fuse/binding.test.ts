/**
 * The patched fuse-native through src/fuse/binding.ts, on real mounts (root, /dev/fuse).
 *
 * This process serves the mounts, so it never touches them with synchronous fs calls: it uses
 * child processes (touch, stat, dd) or fs.promises (libuv's thread pool), and read handlers
 * answer from memory so that they never need the thread pool themselves.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile, spawn, ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { fuseConnection } from '../helpers/fuse-connection';
import {
  CallerContext, Errno, errnoOf, FuseHandlers, FuseMount, FuseMountError, FuseMountOptions, FuseStat, loadFuseBinding, ResultCallback, TimeSpec,
} from '../../src/fuse/binding';

const run = promisify(execFile);
const BINDING_JS = path.resolve(__dirname, '../../src/fuse/binding.js');
const MiB = 1024 * 1024;


// ---- helpers -----------------------------------------------------------------------------------

/** A fresh directory under /tmp with an empty mountpoint in it, removed (unmounted first) at teardown. */
async function scratch(t: Test): Promise<{ dir: string; mnt: string }> {
  const dir = await fsp.mkdtemp('/tmp/shadowfs-binding-');
  await fsp.chmod(dir, 0o755); // so that `nobody` can reach the mountpoint
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(mnt);
  t.teardown(async () => {
    await run('fusermount', ['-uz', mnt]).catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return { dir, mnt };
}

/** Mounts handlers at a scratch mountpoint; always unmounted at teardown, even if the test failed. */
async function mounted(t: Test, handlers: FuseHandlers, options: FuseMountOptions = {}) {
  const { dir, mnt } = await scratch(t);
  const fm = new FuseMount(mnt, handlers, options);
  t.teardown(async () => {
    await Promise.race([fm.unmount().catch(() => undefined), sleep(10_000)]);
  });
  await fm.mount();
  return { fm, mnt, dir };
}

/**
 * A hung "device": a file (holding `content`) on a second mount whose `op` handler holds its reply
 * until the test calls `held.reply`. Returns it opened with `flags`.
 */
async function hungDevice(t: Test, op: 'read' | 'write', content: Buffer, flags: string) {
  const held: { reply?: (n: number) => void; buf?: Buffer; len?: number } = {};
  const slow = new MemFs();
  slow.add('dev', content);
  const handlers = slow.handlers();
  const hold = (p: string, fh: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void => {
    held.buf = buf;
    held.len = len;
    held.reply = cb;
  };
  if (op === 'read') handlers.read = hold;
  else handlers.write = hold;
  const { mnt } = await mounted(t, handlers, { options: ['direct_io'] });
  const file = await fsp.open(path.join(mnt, 'dev'), flags);
  t.teardown(() => file.close().catch(() => undefined));
  return { held, file };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isMounted(mnt: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === mnt);
}

interface Node {
  mode: number;
  uid: number;
  gid: number;
  data: Buffer;
  atime: TimeSpec;
  mtime: TimeSpec;
}

function nowSpec(): TimeSpec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

function specMs(ts: TimeSpec): number {
  return ts.sec * 1000 + Math.floor(ts.nsec / 1e6);
}

/** A flat in-memory filesystem; `calls` counts handler calls by op. */
class MemFs {
  readonly files = new Map<string, Node>();
  readonly calls = new Map<string, number>();
  readonly writeSizes: number[] = [];
  readonly readSizes: number[] = [];
  mount: FuseMount | undefined;
  private nextFh = 10;

  count(op: string): number {
    return this.calls.get(op) ?? 0;
  }

  private hit(op: string): void {
    this.calls.set(op, this.count(op) + 1);
  }

  add(name: string, data: Buffer, mode = 0o100644): Node {
    const node = { mode, uid: 0, gid: 0, data, atime: nowSpec(), mtime: nowSpec() };
    this.files.set('/' + name, node);
    return node;
  }

  stat(node: Node): FuseStat {
    return {
      mode: node.mode, uid: node.uid, gid: node.gid, size: node.data.length,
      atime: specMs(node.atime), mtime: specMs(node.mtime), ctime: specMs(node.mtime), nlink: 1,
    };
  }

  handlers(): FuseHandlers {
    return {
      getattr: (p, cb) => {
        this.hit(`getattr ${p}`);
        if (p === '/') return cb(0, { mode: 0o40777, uid: 0, gid: 0, size: 4096, atime: 0, mtime: 0, ctime: 0, nlink: 2 });
        const node = this.files.get(p);
        if (!node) return cb(Errno.ENOENT);
        cb(0, this.stat(node));
      },
      readdir: (p, cb) => cb(0, [...this.files.keys()].map((k) => k.slice(1))),
      open: (p, flags, cb) => {
        if (!this.files.has(p)) return cb(Errno.ENOENT);
        cb(0, this.nextFh++);
      },
      create: (p, mode, cb) => {
        this.hit('create');
        const caller = this.mount?.context();
        const node = this.add(p.slice(1), Buffer.alloc(0), mode);
        if (caller) {
          node.uid = caller.uid;
          node.gid = caller.gid;
          this.creators.push(caller);
        }
        cb(0, this.nextFh++);
      },
      read: (p, fh, buf, len, pos, cb) => {
        this.hit('read');
        this.readSizes.push(len);
        const node = this.files.get(p);
        if (!node) return cb(Errno.ENOENT);
        const n = node.data.copy(buf, 0, pos, Math.min(node.data.length, pos + len));
        cb(n);
      },
      write: (p, fh, buf, len, pos, cb) => {
        this.writeSizes.push(len);
        const node = this.files.get(p);
        if (!node) return cb(Errno.ENOENT);
        if (node.data.length < pos + len) {
          const grown = Buffer.alloc(pos + len);
          node.data.copy(grown);
          node.data = grown;
        }
        buf.copy(node.data, pos, 0, len);
        cb(len);
      },
      truncate: (p, size, cb) => {
        const node = this.files.get(p);
        if (!node) return cb(Errno.ENOENT);
        const resized = Buffer.alloc(size);
        node.data.copy(resized, 0, 0, size);
        node.data = resized;
        cb(0);
      },
      utimens: (p, atime, mtime, cb) => {
        this.utimes.push({ path: p, atime, mtime });
        const node = this.files.get(p);
        if (!node) return cb(Errno.ENOENT);
        if (atime) node.atime = atime;
        if (mtime) node.mtime = mtime;
        cb(0);
      },
      release: (p, fh, cb) => cb(0),
    };
  }

  readonly creators: CallerContext[] = [];
  readonly utimes: { path: string; atime: TimeSpec | null; mtime: TimeSpec | null }[] = [];
}

// ---- the build ---------------------------------------------------------------------------------

t.test('fuse-native is our build, linked against the system libfuse 2', async (t) => {
  const pkg = path.dirname(require.resolve('fuse-native/package.json'));
  t.ok(fs.existsSync(path.join(pkg, 'build/Release/fuse.node')), 'build/Release/fuse.node exists');
  t.notOk(fs.existsSync(path.join(pkg, 'prebuilds/linux-x64')), 'the linux prebuild (with its own libfuse.so) is gone');
  t.match(fs.readFileSync(path.join(pkg, 'fuse-native.c'), 'utf8'), /SHADOWFS_FUSE_NATIVE_PATCH/, 'patched source');

  loadFuseBinding(); // loaded on first use, not on import
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5] ?? '');
  const libfuse = maps.filter((p) => /\/libfuse\.so/.test(p));
  t.ok(libfuse.length > 0, 'libfuse is loaded');
  t.ok(libfuse.every((p) => p.startsWith('/lib/') || p.startsWith('/usr/lib/')), `system libfuse: ${[...new Set(libfuse)]}`);
  t.ok(maps.some((p) => p === fs.realpathSync(path.join(pkg, 'build/Release/fuse.node'))), 'the addon comes from build/Release');
});

// ---- 1. utimens --------------------------------------------------------------------------------

t.test('utimens receives atime and mtime, with nanoseconds, and null for an omitted time', async (t) => {
  const memfs = new MemFs();
  const { mnt } = await mounted(t, memfs.handlers());
  const f = path.join(mnt, 'f');
  await run('touch', [f]);
  const before = memfs.files.get('/f')!.atime.sec;

  await run('touch', ['-m', '-d', '@1000000000', f]);
  const { stdout } = await run('stat', ['-c', '%X %Y', f]);
  const [atime, mtime] = stdout.trim().split(' ').map(Number);
  t.equal(mtime, 1000000000, 'stat shows the new mtime');
  t.not(atime, 1000000000, 'atime is not overwritten with mtime');
  t.equal(atime, before, 'atime untouched');
  t.same(memfs.utimes.at(-1), { path: '/f', atime: null, mtime: { sec: 1000000000, nsec: 0 } });

  await run('touch', ['-d', '@1234567890.123456789', f]);
  t.same(memfs.utimes.at(-1), {
    path: '/f', atime: { sec: 1234567890, nsec: 123456789 }, mtime: { sec: 1234567890, nsec: 123456789 },
  }, 'both times, to the nanosecond');

  await run('touch', ['-a', '-d', '@2000000000', f]);
  t.same(memfs.utimes.at(-1), { path: '/f', atime: { sec: 2000000000, nsec: 0 }, mtime: null }, 'touch -a omits mtime');

  const t0 = Date.now();
  await run('touch', [f]);
  const last = memfs.utimes.at(-1)!;
  t.ok(last.atime && Math.abs(specMs(last.atime) - t0) < 5000, 'UTIME_NOW arrives as the current time');
  t.ok(last.mtime && Math.abs(specMs(last.mtime) - t0) < 5000);
});

// ---- 2. caller context -------------------------------------------------------------------------

t.test('handlers see the caller uid/gid/pid via context()', async (t) => {
  const memfs = new MemFs();
  const { fm, mnt } = await mounted(t, memfs.handlers(), { allowOther: true });
  memfs.mount = fm;
  t.equal(fm.context(), undefined, 'no context outside a handler');

  const f = path.join(mnt, 'by-nobody');
  await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'touch', f]);
  t.equal(memfs.creators.length, 1, 'create was called once');
  const caller = memfs.creators[0];
  t.equal(caller.uid, 65534, 'uid of nobody');
  t.equal(caller.gid, 65534, 'gid of nogroup');
  t.ok(caller.pid > 0 && caller.pid !== process.pid, `pid of the touch process (${caller.pid})`);
  const { stdout } = await run('stat', ['-c', '%u:%g', f]);
  t.equal(stdout.trim(), '65534:65534', 'the file belongs to its creator');

  await run('touch', [path.join(mnt, 'by-root')]);
  t.equal(memfs.creators[1]?.uid, 0, 'root is root');
});

// ---- 3. no request timeout ---------------------------------------------------------------------

t.test('a handler slower than fuse-native\'s 15 s default timeout still answers', async (t) => {
  const memfs = new MemFs();
  memfs.add('f', Buffer.from('x'));
  const handlers = memfs.handlers();
  const getattr = handlers.getattr!;
  handlers.getattr = (p, cb) => {
    if (p !== '/slow') return getattr(p, cb);
    setTimeout(() => getattr('/f', cb), 16_000);
  };
  const { mnt } = await mounted(t, handlers);
  const t0 = Date.now();
  const { stdout } = await run('stat', ['-c', '%s', path.join(mnt, 'slow')]);
  t.equal(stdout.trim(), '1', 'stat got the answer, not ETIMEDOUT');
  t.ok(Date.now() - t0 >= 15_000, `it took ${Date.now() - t0} ms`);
});

// ---- 4. mount options ----------------------------------------------------------------------------

t.test('attr_timeout=0 and entry_timeout=0 reach the kernel', async (t) => {
  const countLookups = async (options: FuseMountOptions): Promise<number> => {
    const memfs = new MemFs();
    memfs.add('f', Buffer.from('x'));
    const { mnt, fm } = await mounted(t, memfs.handlers(), options);
    const f = path.join(mnt, 'f');
    await run('sh', ['-c', 'stat "$0" >/dev/null && stat "$0" >/dev/null && stat "$0" >/dev/null', f]);
    await fm.unmount();
    return memfs.count('getattr /f');
  };
  t.equal(await countLookups({}), 1, 'with the default 1 s timeouts the kernel caches');
  t.ok(await countLookups({ attrTimeoutSeconds: 0, entryTimeoutSeconds: 0 }) >= 3, 'with 0 every stat asks us');
});

t.test('big_writes: a 1 MiB buffered write arrives in chunks larger than 4 KiB', async (t) => {
  const maxChunk = async (options: FuseMountOptions): Promise<number> => {
    const memfs = new MemFs();
    const { mnt, fm } = await mounted(t, memfs.handlers(), options);
    await run('dd', ['if=/dev/zero', `of=${path.join(mnt, 'big')}`, 'bs=1M', 'count=1', 'status=none']);
    t.equal(memfs.files.get('/big')?.data.length, MiB, 'all bytes written');
    await fm.unmount();
    return Math.max(...memfs.writeSizes);
  };
  t.equal(await maxChunk({}), 4096, 'without big_writes: 4 KiB');
  t.equal(await maxChunk({ bigWrites: true, maxWriteBytes: 131072, maxReadBytes: 131072 }), 131072, 'with big_writes: max_write');
  t.equal(await maxChunk({ options: ['big_writes', 'max_write=65536'] }), 65536, 'raw -o options pass through');
});

t.test('requests above 128 KiB: the binding negotiates max_pages, which libfuse 2 cannot', async (t) => {
  const requestSizes = async (options: FuseMountOptions) => {
    const memfs = new MemFs();
    const data = randomBytes(2 * MiB);
    memfs.add('src', data);
    const { mnt, fm, dir } = await mounted(t, memfs.handlers(), options);
    // A buffered 1 MiB write (big_writes) and an O_DIRECT 1 MiB read, each one system call.
    await run('dd', [`if=${path.join(mnt, 'src')}`, `of=${path.join(mnt, 'copy')}`, 'bs=1M', 'count=2', 'iflag=direct', 'status=none']);
    const back = path.join(dir, 'back');
    await run('dd', [`if=${path.join(mnt, 'copy')}`, `of=${back}`, 'bs=1M', 'iflag=direct', 'status=none']);
    t.ok(fs.readFileSync(back).equals(data), 'the bytes survive the round trip');
    const agreed = fm.maxRequestBytes(); // the INIT reply has certainly left by now
    await fm.unmount();
    return { agreed, write: Math.max(...memfs.writeSizes), read: Math.max(...memfs.readSizes) };
  };
  const big = { bigWrites: true, maxWriteBytes: MiB, maxReadBytes: MiB };
  t.same(await requestSizes(big), { agreed: MiB, write: MiB, read: MiB }, '1 MiB: one request per 1 MiB read or write');
  t.same(await requestSizes({ bigWrites: true, maxWriteBytes: 131072, maxReadBytes: 131072 }), { agreed: 131072, write: 131072, read: 131072 },
    '128 KiB: libfuse 2 alone');
  t.throws(() => new FuseMount('/nonexistent', {}, { maxWriteBytes: 2 * MiB }), /at most 1048576/, 'beyond the kernel ceiling: refused');
});

t.test('pollRequests: while requests stream in, a FUSE thread finds the next one by polling', async (t) => {
  const polledDuring = async (pollRequests: boolean): Promise<number> => {
    const memfs = new MemFs();
    memfs.add('f', randomBytes(4 * MiB));
    // Readers of /dev/fuse poll; a ring's thread waits in the kernel.
    const { mnt, fm } = await mounted(t, memfs.handlers(), { pollRequests, ioUring: false });
    // One reader, one request at a time: each next request comes within microseconds of a reply.
    await run('dd', [`if=${path.join(mnt, 'f')}`, 'of=/dev/null', 'bs=4k', 'iflag=direct', 'status=none']);
    const { polled } = fm.fastPathStats();
    t.ok(memfs.count('read') >= 1024, `every read reached the handler (pollRequests ${pollRequests}: ${memfs.count('read')})`);
    await fm.unmount();
    return polled;
  };
  t.ok((await polledDuring(true)) > 0, 'on: requests found by polling');
  t.equal(await polledDuring(false), 0, 'off: none');
});

/**
 * A 2 MiB file "data" on a MemFs mount (JS holds `jsContent`), opened O_DIRECT, whose extent 0
 * (1 MiB) is mapped natively and writable: a backing file of random bytes answers there, JS answers
 * extent 1. Requests up to 1 MiB, as shadowfs mounts (a 512 KiB read is one request).
 */
async function oneNativeExtent(t: Test, options: FuseMountOptions, jsContent: Buffer) {
  const SIZE = 2 * MiB;
  const { dir } = await scratch(t);
  const backingPath = path.join(dir, 'backing');
  const backingBytes = randomBytes(SIZE);
  await fsp.writeFile(backingPath, backingBytes);
  const backingFd = fs.openSync(backingPath, 'r+');
  t.teardown(() => fs.closeSync(backingFd));
  const memfs = new MemFs();
  memfs.add('data', jsContent);
  let fh = 0;
  const { fm, mnt } = await mounted(t, handleTracking(memfs, (h) => (fh = h)), { ...options, bigWrites: true, maxWriteBytes: MiB, maxReadBytes: MiB });
  const file = await fsp.open(path.join(mnt, 'data'), fs.constants.O_RDWR | fs.constants.O_DIRECT);
  t.teardown(() => file.close().catch(() => undefined));
  fm.setFileMap(fh, MiB);
  fm.mapExtent(fh, 0, backingFd, 0);
  fm.setFileWrites(fh, backingFd, SIZE);
  fm.setExtentsWritable(fh, 0, 0, true);
  fm.setNativeWrites(true);
  const readAt = async (pos: number, len: number): Promise<Buffer> => {
    const b = Buffer.alloc(len);
    const { bytesRead } = await file.read(b, 0, len, pos);
    return b.subarray(0, bytesRead);
  };
  return { fm, mnt, file, readAt, memfs, backingPath, backingBytes };
}

t.test('answerDirectly: fast-path reads and writes skip libfuse, with the same bytes and the same counts', async (t) => {
  const SIZE = 2 * MiB;
  const session = async (answerDirectly: boolean) => {
    const { fm, file, readAt, memfs, backingBytes } = await oneNativeExtent(t, { answerDirectly }, Buffer.alloc(SIZE, 0x33));
    const what = `answerDirectly ${answerDirectly}`;
    // 512 KiB: one request wherever the buffer lies (a 1 MiB one spans 257 pages unless aligned).
    t.same(await readAt(0, 512 * 1024), backingBytes.subarray(0, 512 * 1024), `${what}: a 512 KiB native read`);
    t.same(await readAt(8192, 4096), backingBytes.subarray(8192, 12288), `${what}: a 4 KiB native read`);
    t.same(await readAt(MiB, 4096), Buffer.alloc(4096, 0x33), `${what}: the unmapped extent from JS`);
    t.same(await readAt(MiB - 4096, 8192), Buffer.alloc(8192, 0x33), `${what}: across both: all from JS`);
    const written = randomBytes(8192);
    await file.write(written, 0, written.length, 4096);
    t.same(await readAt(4096, 8192), written, `${what}: a native write, read back natively`);
    await file.write(Buffer.alloc(4096, 0x44), 0, 4096, MiB + 4096);
    t.same(memfs.files.get('/data')!.data.subarray(MiB + 4096, MiB + 8192), Buffer.alloc(4096, 0x44), `${what}: a write to extent 1 reached JS`);
    const { hits, misses, errors, answeredDirectly: direct } = fm.fastPathStats();
    const writes = fm.nativeWriteStats();
    await file.close();
    return { hits, misses, errors, writeHits: writes.hits, writeMisses: writes.misses, jsReads: memfs.count('read'), jsWrites: memfs.writeSizes.length, direct };
  };
  const on = await session(true);
  const off = await session(false);
  // Each request tried on the fast path once, whichever route answered it.
  t.same({ ...on, direct: 0 }, { ...off, direct: 0 }, 'the same hits, misses and JS calls either way');
  t.same({ hits: on.hits, misses: on.misses, writeHits: on.writeHits, writeMisses: on.writeMisses }, { hits: 3, misses: 2, writeHits: 1, writeMisses: 1 }, 'native and JS reads and writes');
  t.equal(on.direct, on.hits + on.writeHits, 'on: every native read and write answered directly');
  t.equal(off.direct, 0, 'off: none');
});

/**
 * Lets the kernel offer FUSE over io_uring for this test (root; `make fuse-uring` does the same),
 * as it was at teardown. False: this kernel has no FUSE over io_uring (no such parameter).
 */
function allowFuseUring(t: Test): boolean {
  const param = '/sys/module/fuse/parameters/enable_uring';
  if (!fs.existsSync(param)) return false;
  const was = fs.readFileSync(param, 'utf8').trim();
  fs.writeFileSync(param, 'Y');
  t.teardown(() => fs.writeFileSync(param, was));
  return true;
}

t.test('ioUring: when the kernel offers FUSE over io_uring, every request comes through the rings, answered natively or by JS; off: /dev/fuse', async (t) => {
  const kernelHasIt = allowFuseUring(t);
  const SIZE = 2 * MiB;
  const session = async (ioUring: boolean) => {
    const jsBytes = randomBytes(SIZE);
    const { fm, mnt, file, readAt, memfs, backingPath, backingBytes } = await oneNativeExtent(t, { ioUring }, Buffer.from(jsBytes));
    const what = `ioUring ${ioUring}`;
    // Requests for JS of several kinds: create, write, read, readdir, getattr, setattr.
    const { stdout } = await run('sh', ['-c', `printf hello > ${mnt}/a && cat ${mnt}/a && ls ${mnt} && truncate -s 3 ${mnt}/a && stat -c %s ${mnt}/a`]);
    t.same(stdout.split('\n'), ['helloa', 'data', '3', ''], `${what}: JS requests answered`);
    t.same(memfs.files.get('/a')?.data.toString(), 'hel', `${what}: the file JS holds`);
    t.same(await readAt(0, 512 * 1024), backingBytes.subarray(0, 512 * 1024), `${what}: a 512 KiB native read`);
    t.same(await readAt(MiB, 4096), jsBytes.subarray(MiB, MiB + 4096), `${what}: a read from JS`);
    const written = randomBytes(8192);
    await file.write(written, 0, written.length, 4096);
    t.same(fs.readFileSync(backingPath).subarray(4096, 4096 + 8192), written, `${what}: a native write reached the backing file`);
    await file.write(Buffer.alloc(4096, 0x44), 0, 4096, MiB + 4096);
    t.same(memfs.files.get('/data')!.data.subarray(MiB + 4096, MiB + 8192), Buffer.alloc(4096, 0x44), `${what}: a write to the unmapped extent reached JS`);
    // Four callers at once (libuv's pool threads, on both CPUs: the kernel queues a request on
    // the ring of its caller's CPU), on the native extent and the JS one alike, 4 KiB at a time.
    const expected = Buffer.concat([fs.readFileSync(backingPath).subarray(0, MiB), memfs.files.get('/data')!.data.subarray(MiB)]);
    const wrong = await Promise.all(Array.from({ length: 4 }, async (_, lane) => {
      let bad = 0;
      for (let pos = lane * 4096; pos < SIZE; pos += 4 * 4096) {
        if (!(await readAt(pos, 4096)).equals(expected.subarray(pos, pos + 4096))) bad++;
      }
      return bad;
    }));
    t.same(wrong, [0, 0, 0, 0], `${what}: concurrent readers read the right bytes`);
    const stats = fm.fastPathStats();
    await file.close();
    return stats;
  };
  const on = await session(true);
  if (kernelHasIt) {
    t.ok(on.ringRequests > 0, `on: requests came through the rings (${on.ringRequests})`);
    t.ok(on.answeredDirectly > 0, `on: native reads and writes answered on a ring's thread (${on.answeredDirectly})`);
  } else {
    t.equal(on.ringRequests, 0, 'on, but this kernel has no FUSE over io_uring: all through /dev/fuse');
  }
  const off = await session(false);
  t.equal(off.ringRequests, 0, 'off: all through /dev/fuse');
});

t.test('ioUring: a CPU whose rings cannot be set up sends the mount back to /dev/fuse instead of leaving the kernel holding requests', async (t) => {
  const kernelHasIt = allowFuseUring(t);
  // The kernel holds every request until each CPU's queue has an entry: without the fallback the
  // first request below would wait forever (the test's timeout).
  process.env.SHADOWFS_TEST_RING_FAILS_ON_CPU = String(os.cpus().length - 1);
  t.teardown(() => delete process.env.SHADOWFS_TEST_RING_FAILS_ON_CPU);
  const memfs = new MemFs();
  memfs.add('f', Buffer.from('through /dev/fuse'));
  const { fm, mnt } = await mounted(t, memfs.handlers(), { ioUring: true, bigWrites: true, maxWriteBytes: MiB, maxReadBytes: MiB });
  if (kernelHasIt) {
    // The other CPUs' entries are registered (the first request may come before they are).
    const others = 2 * (os.cpus().length - 1);
    for (let i = 0; i < 500 && fm.fastPathStats().ringEntries < others; i++) await sleep(10);
    t.equal(fm.fastPathStats().ringEntries, others, `the other CPUs' ring entries registered (${others})`);
  }
  const { stdout } = await run('sh', ['-c', `cat ${mnt}/f && printf more > ${mnt}/g && cat ${mnt}/g`], { timeout: 20_000 });
  t.equal(stdout, 'through /dev/fusemore', 'requests answered');
  t.equal(fm.fastPathStats().ringRequests, 0, 'none through the rings');
});

t.test('idlePoll: while one writer streams native writes an idle CPU is kept polling, until the writes stop; not while they block; off: never', async (t) => {
  // dir: where the backing file lives; dsync: every native write waits for the disk (blocks).
  const session = async (idlePoll: boolean, dir: string, dsync: boolean) => {
    const backingPath = path.join(dir, 'backing');
    await fsp.writeFile(backingPath, Buffer.alloc(8 * MiB));
    const backingFd = fs.openSync(backingPath, fs.constants.O_RDWR | (dsync ? fs.constants.O_DSYNC : 0));
    t.teardown(() => fs.closeSync(backingFd));
    const memfs = new MemFs();
    memfs.add('data', Buffer.alloc(8 * MiB));
    let fh = 0;
    const { fm, mnt } = await mounted(t, handleTracking(memfs, (h) => (fh = h)), { idlePoll, bigWrites: true, maxWriteBytes: MiB, maxReadBytes: MiB });
    // Any native write qualifies (default: 50 µs on average), whatever this machine's speed.
    fm.setIdlePollThreshold(0);
    const file = await fsp.open(path.join(mnt, 'data'), fs.constants.O_RDWR | fs.constants.O_DIRECT);
    t.teardown(() => file.close().catch(() => undefined));
    fm.setFileMap(fh, MiB);
    for (let i = 0; i < 8; i++) fm.mapExtent(fh, i, backingFd, i * MiB);
    fm.setFileWrites(fh, backingFd, 8 * MiB);
    fm.setExtentsWritable(fh, 0, 7, true);
    fm.setNativeWrites(true);
    // One writer, one request at a time; 512 KiB is one request wherever the buffer lies.
    const chunk = randomBytes(512 * 1024);
    const stream = async (rounds: number) => {
      for (let round = 0; round < rounds; round++) {
        for (let pos = 0; pos < 8 * MiB; pos += chunk.length) await file.write(chunk, 0, chunk.length, pos);
      }
    };
    // Blocking is sampled on one native request in 32 (a moving average, 1/8 per sample; a
    // quarter means "they block"): 192 writes teach it that they block.
    await stream(12);
    await sleep(50); // the poller stops 2 ms after the last request
    const warm = fm.fastPathStats();
    await stream(4);
    await sleep(50);
    const after = fm.fastPathStats();
    await sleep(200);
    const later = fm.fastPathStats();
    const what = `idlePoll ${idlePoll}${dsync ? ', O_DSYNC' : ''}`;
    t.equal(fm.nativeWriteStats().hits, 256, `${what}: every write served natively`);
    t.same(fs.readFileSync(backingPath).subarray(0, chunk.length), chunk, `${what}: the bytes reached the backing file`);
    await file.close();
    return { warm, after, later };
  };
  const on = await session(true, (await scratch(t)).dir, false);
  t.ok(on.after.idlePolls > 0 && on.after.idlePollMs > 0, `on: an idle CPU was kept polling (${on.after.idlePolls} times, ${on.after.idlePollMs.toFixed(1)} ms)`);
  // Counts of polls begun: a poll cut short by other tasks (it has the lowest priority) may add
  // its time late, but none begins once the writes have stopped.
  t.equal(on.later.idlePolls, on.after.idlePolls, 'on: no polling begun once the writes stopped');
  // On a disk (/var/tmp, never a tmpfs on Debian) O_DSYNC writes sleep until the data is written.
  const diskDir = await fsp.mkdtemp('/var/tmp/shadowfs-binding-');
  t.teardown(() => fsp.rm(diskDir, { recursive: true, force: true }));
  const blocking = await session(true, diskDir, true);
  t.equal(blocking.after.idlePolls, blocking.warm.idlePolls, `blocking writes: no polling begun once they are known to block (${blocking.warm.idlePolls} before)`);
  const off = await session(false, (await scratch(t)).dir, false);
  t.same([off.after.idlePolls, off.after.idlePollMs], [0, 0], 'off: never');
});

/** MemFs with xattr handlers; `xattrNames` lists every name the getxattr/setxattr handlers saw. */
function xattrFs(): { memfs: MemFs; handlers: FuseHandlers; xattrNames: string[] } {
  const memfs = new MemFs();
  const xattrNames: string[] = [];
  const stored = new Map<string, Buffer>();
  const handlers: FuseHandlers = {
    ...memfs.handlers(),
    getxattr: (p, name, position, cb) => {
      xattrNames.push(name);
      const v = stored.get(name);
      return v ? cb(0, v) : cb(Errno.ENODATA);
    },
    setxattr: (p, name, value, position, flags, cb) => {
      xattrNames.push(name);
      stored.set(name, Buffer.from(value));
      cb(0);
    },
    // As if the backing file carried a capability set behind the mount's back.
    listxattr: (p, cb) => cb(0, [...stored.keys(), 'security.capability']),
  };
  return { memfs, handlers, xattrNames };
}

t.test('security.capability is answered natively: ENODATA, ENOTSUP to set, not listed; other names reach JS', async (t) => {
  const { memfs, handlers, xattrNames } = xattrFs();
  memfs.add('f', Buffer.alloc(64 * 1024));
  const { mnt } = await mounted(t, handlers);
  const f = path.join(mnt, 'f');
  const get = await run('getfattr', ['-n', 'security.capability', f]).then(() => 'ok', (err: { stderr: string }) => err.stderr);
  t.match(get, /No such attribute/, 'getxattr: ENODATA');
  const set = await run('setfattr', ['-n', 'security.capability', '-v', '0x0000000200200000000000000000000000000000', f]).then(() => 'ok', (err: { stderr: string }) => err.stderr);
  t.match(set, /Operation not supported/, 'setxattr of a valid capability (cap_net_raw=p): ENOTSUP');
  await run('dd', ['if=/dev/zero', `of=${f}`, 'bs=4k', 'count=16', 'conv=notrunc', 'status=none']);
  await run('setfattr', ['-n', 'user.k', '-v', 'v', f]);
  const { stdout } = await run('getfattr', ['-d', '-m', '-', '--absolute-names', f]);
  t.match(stdout, /user\.k="v"/, 'other names are served by the handlers');
  t.notMatch(stdout, /security\.capability/, 'listxattr leaves security.capability out');
  t.same(xattrNames.filter((n) => n === 'security.capability'), [], 'the handlers never saw security.capability (16 writes, a get, a set)');
  t.ok(xattrNames.includes('user.k'), 'user.k reached the handlers');
});

t.test('without noFileCapabilities the kernel asks the handlers for security.capability before each buffered write', async (t) => {
  const { memfs, handlers, xattrNames } = xattrFs();
  memfs.add('f', Buffer.alloc(64 * 1024));
  const { mnt } = await mounted(t, handlers, { noFileCapabilities: false });
  await run('dd', ['if=/dev/zero', `of=${path.join(mnt, 'f')}`, 'bs=4k', 'count=8', 'conv=notrunc', 'status=none']);
  t.equal(xattrNames.filter((n) => n === 'security.capability').length, 8, 'one getxattr per write');
});

t.test('O_DIRECT opens get FOPEN_DIRECT_IO: writes go by the direct path (no security.capability round trip)', async (t) => {
  const capsAsked = async (options: FuseMountOptions, ddFlags: string[]): Promise<number> => {
    const { memfs, handlers, xattrNames } = xattrFs();
    memfs.add('f', Buffer.alloc(64 * 1024));
    const { mnt, fm } = await mounted(t, handlers, { noFileCapabilities: false, ...options });
    await run('dd', ['if=/dev/zero', `of=${path.join(mnt, 'f')}`, 'bs=4k', 'count=8', 'conv=notrunc', 'status=none', ...ddFlags]);
    t.equal(memfs.writeSizes.length, 8, `8 writes reached the handler (${ddFlags.join(' ') || 'buffered'})`);
    await fm.unmount();
    return xattrNames.filter((n) => n === 'security.capability').length;
  };
  t.equal(await capsAsked({}, ['oflag=direct']), 0, 'O_DIRECT: no getxattr');
  t.equal(await capsAsked({ directIoOnODirect: false }, ['oflag=direct']), 8, 'O_DIRECT without directIoOnODirect: one getxattr per write');
  t.equal(await capsAsked({}, []), 8, 'buffered opens keep the page-cache path');
});

t.test('bad options are refused', async (t) => {
  const { mnt } = await scratch(t);
  t.throws(() => new FuseMount(mnt, {}, { options: ['a,b'] }), RangeError);
  t.throws(() => new FuseMount(mnt, {}, { attrTimeoutSeconds: -1 }), RangeError);
  const fm = new FuseMount(mnt, new MemFs().handlers(), { options: ['no_such_option_xyz'] });
  await t.rejects(fm.mount(), FuseMountError, 'libfuse refuses it: mount() rejects');
  t.notOk(isMounted(mnt), 'and leaves nothing mounted');
  await fm.unmount();
});

// ---- 5. unmount, exit, stale mounts ---------------------------------------------------------------

/** A child process that serves a mount: prints "ready", unmounts on "u", then must exit on its own. */
function mountInChild(mnt: string): { child: ChildProcess; ready: Promise<void>; exited: Promise<number | null> } {
  const script = `
    const { FuseMount } = require(${JSON.stringify(BINDING_JS)});
    const fsp = require('fs/promises');
    const fm = new FuseMount(${JSON.stringify(mnt)}, {
      getattr: (p, cb) => p === '/' ? cb(0, { mode: 0o40755, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0, ctime: 0 })
        : p === '/f' ? cb(0, { mode: 0o100644, uid: 0, gid: 0, size: 1, atime: 0, mtime: 0, ctime: 0 }) : cb(-2),
      open: (p, flags, cb) => cb(0, 1),
      read: (p, fh, buf, len, pos, cb) => { buf[0] = 120; cb(pos === 0 ? 1 : 0); },
    });
    fm.mount().then(() => fsp.readFile(${JSON.stringify(mnt + '/f')}, 'utf8')).then((s) => {
      process.stdout.write('ready ' + s + '\\n');
      process.stdin.once('data', async () => {
        process.stdin.destroy();
        await fm.unmount();
        process.stdout.write('unmounted\\n');
      });
    }, (err) => { console.error(err); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready x')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited early (${code}): ${out}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exited };
}

async function exitsWithin(exited: Promise<number | null>, ms: number): Promise<number | null | 'timeout'> {
  return Promise.race([exited, sleep(ms).then(() => 'timeout' as const)]);
}

t.test('unmount ends the FUSE thread and lets the process exit', async (t) => {
  const { mnt } = await scratch(t);
  const { child, ready, exited } = mountInChild(mnt);
  t.teardown(() => child.kill('SIGKILL'));
  await ready;
  t.ok(isMounted(mnt), 'mounted');
  child.stdin!.write('u\n');
  t.equal(await exitsWithin(exited, 10_000), 0, 'the child exited by itself after unmount()');
  t.notOk(isMounted(mnt), 'and the mount is gone');
});

t.test('unmount of a busy mount still ends the FUSE thread; users see ENOTCONN, not a hang', async (t) => {
  const { mnt } = await scratch(t);
  const { child, ready, exited } = mountInChild(mnt);
  t.teardown(() => child.kill('SIGKILL'));
  await ready;
  // A process with its cwd and an open file in the mount keeps it busy.
  const holder = spawn('sh', ['-c', 'cd "$0" && exec sleep 60 < f', mnt], { stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await sleep(300);
  child.stdin!.write('u\n');
  t.equal(await exitsWithin(exited, 10_000), 0, 'the child exited by itself');
  t.notOk(isMounted(mnt), 'detached from the namespace');
  const ls = await run('timeout', ['5', 'ls', `/proc/${holder.pid}/cwd/`]).then(() => 'listed', (err: { code?: number; stderr?: string }) =>
    err.code === 124 ? 'hung' : String(err.stderr));
  t.match(ls, /Transport endpoint is not connected/, 'the busy user gets ENOTCONN');
});

t.test('unmount() in this process with a busy mount: the FUSE thread ends, the connection is closed', async (t) => {
  const memfs = new MemFs();
  memfs.add('f', Buffer.from('x'));
  const { fm, mnt } = await mounted(t, memfs.handlers());
  // Spawned after mount: it must not inherit /dev/fuse (which would keep the connection alive).
  const holder = spawn('sh', ['-c', 'cd "$0" && exec sleep 60 < f', mnt], { stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await sleep(300);
  const result = await Promise.race([fm.unmount().then(() => 'unmounted'), sleep(10_000).then(() => 'timeout')]);
  t.equal(result, 'unmounted', 'unmount() resolved');
  t.equal(await Promise.race([fm.exited.then(() => 'exited'), sleep(1000).then(() => 'running')]), 'exited');
  t.notOk(isMounted(mnt), 'detached from the namespace');
  const ls = await run('timeout', ['5', 'ls', `/proc/${holder.pid}/cwd/`]).then(() => 'listed', (err: { code?: number; stderr?: string }) =>
    err.code === 124 ? 'hung' : String(err.stderr));
  t.match(ls, /Transport endpoint is not connected/, 'the busy user gets ENOTCONN, not a hang');
});

t.test('the mount ending from outside resolves `exited`', async (t) => {
  const memfs = new MemFs();
  const { fm, mnt } = await mounted(t, memfs.handlers());
  await run('fusermount', ['-u', mnt]);
  t.equal(await Promise.race([fm.exited.then(() => 'exited'), sleep(10_000).then(() => 'timeout')]), 'exited');
  await fm.unmount();
  t.pass('unmount() after that is a no-op');
});

t.test('a stale mountpoint (crashed server) is reported, and usable after fusermount -uz', async (t) => {
  const { mnt } = await scratch(t);
  const { child, ready, exited } = mountInChild(mnt);
  await ready;
  child.kill('SIGKILL');
  await exited;
  await t.rejects(fsp.stat(mnt), { code: 'ENOTCONN' }, 'stale: Transport endpoint is not connected');

  const memfs = new MemFs();
  const stale = new FuseMount(mnt, memfs.handlers());
  await t.rejects(stale.mount(), { name: 'FuseMountError', code: 'ENOTCONN', message: /fusermount -uz/ });
  await stale.unmount();

  await run('fusermount', ['-uz', mnt]);
  const fresh = new FuseMount(mnt, memfs.handlers());
  await fresh.mount();
  t.teardown(() => fresh.unmount());
  const { stdout } = await run('stat', ['-c', '%F', mnt]);
  t.equal(stdout.trim(), 'directory', 'mounted again');
  await fresh.unmount();
});

t.test('mount, unmount, mount again in one process', async (t) => {
  const { mnt } = await scratch(t);
  for (let i = 0; i < 3; i++) {
    const memfs = new MemFs();
    memfs.add('f', Buffer.from(`round ${i}`));
    const fm = new FuseMount(mnt, memfs.handlers());
    await fm.mount();
    t.equal(await fsp.readFile(path.join(mnt, 'f'), 'utf8'), `round ${i}`);
    await fm.unmount();
    t.notOk(isMounted(mnt));
  }
});

t.test('a handler that throws answers with its errno instead of hanging', async (t) => {
  const memfs = new MemFs();
  memfs.add('f', Buffer.from('x'));
  const errors: string[] = [];
  const handlers = memfs.handlers();
  handlers.open = () => {
    throw Object.assign(new Error('boom'), { code: 'EACCES' });
  };
  handlers.mkdir = async (): Promise<void> => {
    throw new Error('no code');
  };
  const { mnt } = await mounted(t, handlers, { onHandlerError: (op) => errors.push(op) });
  await t.rejects(fsp.readFile(path.join(mnt, 'f')), { code: 'EACCES' });
  await t.rejects(fsp.mkdir(path.join(mnt, 'd')), { code: 'EIO' }, 'a rejected promise: EIO');
  t.same(errors, ['open', 'mkdir']);
});

// ---- 6. native read fast path -------------------------------------------------------------------

t.test('fast path: mapped extents are read natively, unmapped ones by the JS handler', async (t) => {
  const EXTENT = MiB;
  const SIZE = 3 * MiB + 1000;
  const { dir } = await scratch(t);

  // The JS handler serves a recognisable pattern; the backing files hold different (random) bytes,
  // so every read shows who served it.
  const jsBytes = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) jsBytes[i] = (i * 7 + 3) & 0xff;
  const backing = randomBytes(SIZE);
  const backingPath = path.join(dir, 'backing');
  await fsp.writeFile(backingPath, backing);
  // Extent 2 also lives alone at offset 0 of a second file, cut short after 1000 bytes.
  const shortPath = path.join(dir, 'extent2');
  await fsp.writeFile(shortPath, backing.subarray(2 * EXTENT, 2 * EXTENT + 1000));
  const backingFd = fs.openSync(backingPath, 'r');
  const shortFd = fs.openSync(shortPath, 'r');
  t.teardown(() => {
    fs.closeSync(backingFd);
    fs.closeSync(shortFd);
  });

  const memfs = new MemFs();
  memfs.add('data', jsBytes);
  memfs.add('reuse', jsBytes);
  const handlers = memfs.handlers();
  const open = handlers.open!;
  let lastFh = 0;
  handlers.open = (p, flags, cb) => {
    const reply: ResultCallback<number> = (errno, fh) => {
      lastFh = fh ?? 0;
      cb(errno, fh);
    };
    if (p === '/reuse') return reply(0, 1); // always handle 1, to see a released handle reused
    open(p, flags, reply);
  };
  const { fm, mnt } = await mounted(t, handlers);

  const file = await fsp.open(path.join(mnt, 'data'), fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  t.teardown(() => file.close().catch(() => undefined));
  const fh = lastFh;
  const readAt = async (pos: number, len: number): Promise<Buffer> => {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await file.read(buf, 0, len, pos);
    return buf.subarray(0, bytesRead);
  };
  const jsReads = (): number => memfs.count('read');

  // Unmapped: everything goes to JS.
  let before = jsReads();
  t.same(await readAt(0, 4096), jsBytes.subarray(0, 4096), 'unmapped: JS bytes');
  t.equal(jsReads(), before + 1);
  t.equal(fm.fastPathStats().hits, 0);

  t.throws(() => fm.mapExtent(fh, 0, backingFd, 0), /setFileMap/, 'mapExtent needs setFileMap first');
  t.throws(() => fm.setFileMap(fh, 3000), RangeError, 'extent size must be a power of two');
  fm.setFileMap(fh, EXTENT);
  for (let k = 0; k < 4; k++) fm.mapExtent(fh, k, backingFd, 0);

  before = jsReads();
  const hits0 = fm.fastPathStats().hits;
  t.same(await readAt(0, 4096), backing.subarray(0, 4096), 'mapped: backing bytes');
  t.same(await readAt(EXTENT - 2048, 4096), backing.subarray(EXTENT - 2048, EXTENT + 2048), 'across two mapped extents');
  t.same(await readAt(5 * 4096 + 100, 300), backing.subarray(5 * 4096 + 100, 5 * 4096 + 400), 'unaligned');
  t.equal(jsReads(), before, 'the JS read handler was not called');
  t.equal(fm.fastPathStats().hits, hits0 + 3, 'three hits');

  // A short pread is not taken for the end of the file natively (it may be a damaged copy, or a
  // read failing part way): the read goes to JS, which knows where the file ends.
  const eof = await readAt(3 * MiB, 8192);
  t.same(eof, jsBytes.subarray(3 * MiB), 'a read past the end of the mapped backing file is answered by JS');
  t.equal(jsReads(), before + 1, 'one JS read');

  // Unmapping takes effect for the very next read.
  fm.unmapExtent(fh, 1);
  before = jsReads();
  t.same(await readAt(EXTENT + 100, 4096), jsBytes.subarray(EXTENT + 100, EXTENT + 4196), 'unmapped extent: JS bytes');
  t.equal(jsReads(), before + 1, 'JS was called');
  t.same(await readAt(EXTENT - 2048, 4096), jsBytes.subarray(EXTENT - 2048, EXTENT + 2048), 'mapped + unmapped span: JS');
  t.equal(jsReads(), before + 2);
  t.same(await readAt(0, 4096), backing.subarray(0, 4096), 'extent 0 is still mapped');
  t.equal(jsReads(), before + 2);

  // delta: extent 2 at offset 0 of its own file. That copy is only 1000 bytes long: a read past its
  // end is not answered short (the application would take it for the end of the file) but by JS.
  fm.mapExtent(fh, 2, shortFd, -2 * EXTENT);
  t.same(await readAt(2 * EXTENT + 100, 500), backing.subarray(2 * EXTENT + 100, 2 * EXTENT + 600), 'delta honoured');
  t.equal(jsReads(), before + 2, 'natively');
  const cut = await readAt(2 * EXTENT + 500, 4096);
  t.same(cut, jsBytes.subarray(2 * EXTENT + 500, 2 * EXTENT + 4596), 'a mapped copy read short: the read is answered whole, by JS');
  t.throws(() => fm.mapExtent(fh, 0, backingFd, -1), RangeError, 'delta may not point before the file');
  t.equal(jsReads(), before + 3, 'one JS read for those');

  fm.unmapFile(fh);
  before = jsReads();
  t.same(await readAt(0, 4096), jsBytes.subarray(0, 4096), 'unmapFile: back to JS');
  t.equal(jsReads(), before + 1);
  const stats = fm.fastPathStats();
  t.ok(stats.hits >= 5 && stats.misses >= 6 && stats.errors === 0, `stats ${JSON.stringify(stats)}`);

  // The map of a handle is dropped when it is released: a reused handle number starts unmapped.
  const first = await fsp.open(path.join(mnt, 'reuse'), fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  fm.setFileMap(1, EXTENT);
  fm.mapExtent(1, 0, backingFd, 0);
  const b1 = Buffer.alloc(4096);
  await first.read(b1, 0, 4096, 0);
  t.same(b1, backing.subarray(0, 4096), 'fh 1 mapped');
  await first.close();
  await sleep(100); // release is asynchronous to close(2)
  const second = await fsp.open(path.join(mnt, 'reuse'), fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  await second.read(b1, 0, 4096, 0);
  await second.close();
  t.same(b1, jsBytes.subarray(0, 4096), 'fh 1 reopened: not mapped any more');
});

/** A mount whose file `data` holds `size` bytes of 0x22 (served by JS unless mapped), opened with O_DIRECT; fh: its handle. */
async function mappableFile(t: Test, size: number) {
  const memfs = new MemFs();
  memfs.add('data', Buffer.alloc(size, 0x22));
  let fh = 0;
  const handlers = memfs.handlers();
  const open = handlers.open!;
  handlers.open = (p, flags, cb) => open(p, flags, (errno, h) => {
    fh = h ?? 0;
    cb(errno, h);
  });
  const { fm, mnt } = await mounted(t, handlers);
  const file = await fsp.open(path.join(mnt, 'data'), fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  t.teardown(() => file.close().catch(() => undefined));
  return { memfs, fm, mnt, fh, file };
}

t.test('fast path: unmapping while reads run never serves the old mapping afterwards', async (t) => {
  const EXTENT = 64 * 1024;
  const { dir } = await scratch(t);
  const oldCopy = Buffer.alloc(EXTENT, 0x11);
  const oldPath = path.join(dir, 'old');
  await fsp.writeFile(oldPath, oldCopy);
  const oldFd = fs.openSync(oldPath, 'r');
  t.teardown(() => fs.closeSync(oldFd));

  const { fm, fh, file } = await mappableFile(t, EXTENT); // 'data': the current bytes, served by JS

  // Readers hammer the file; at some point JS unmaps. Every read that starts after unmapExtent()
  // returned must see the current bytes.
  fm.setFileMap(fh, EXTENT);
  fm.mapExtent(fh, 0, oldFd, 0);
  let unmappedAt = Infinity;
  const stopAt = performance.now() + 400;
  let stale = 0;
  let before = 0;
  let after = 0;
  const reader = async (): Promise<void> => {
    const buf = Buffer.alloc(4096);
    for (let i = 0; performance.now() < stopAt; i++) {
      const startedAt = performance.now();
      await file.read(buf, 0, 4096, (i % 16) * 4096);
      if (startedAt > unmappedAt) {
        after++;
        if (buf[0] === 0x11) stale++;
      } else {
        before++;
      }
    }
  };
  const readers = [reader(), reader()];
  await sleep(150);
  fm.unmapExtent(fh, 0);
  unmappedAt = performance.now();
  await Promise.all(readers);
  t.ok(before > 0 && after > 0, `reads before (${before}) and after (${after}) the unmap`);
  t.equal(stale, 0, 'no read that began after unmap saw the old copy');
  t.ok(fm.fastPathStats().hits > 0, 'the fast path was used before the unmap');
});

t.test('fast path: a stuck mapped read neither blocks other requests nor freezes JS forever', async (t) => {
  // The "device" behind the mapped extent: its reads hang.
  const { held, file: copy } = await hungDevice(t, 'read', Buffer.alloc(4096, 0x33), 'r');

  const { memfs, fm, mnt, fh, file } = await mappableFile(t, 4096);
  fm.setFileMap(fh, 4096);
  fm.mapExtent(fh, 0, copy.fd, 0);

  const stuckRead = file.read(Buffer.alloc(4096), 0, 4096, 0);
  for (let i = 0; i < 100 && !held.reply; i++) await sleep(20);
  t.ok(held.reply, 'the mapped read reached the stuck device');

  const t0 = Date.now();
  const { stdout } = await run('stat', ['-c', '%s', path.join(mnt, 'data')]);
  t.equal(stdout.trim(), '4096', `other requests are still served (${Date.now() - t0} ms)`);

  // The unmap does not wait for it, but says a read that began before is still in flight.
  const ticket = fm.unmapExtent(fh, 0);
  t.ok(ticket >= 0, `unmap returns at once with a ticket for the read in flight (${ticket})`);
  await sleep(100);
  t.equal(fm.requestsEnded(fh, ticket), false, 'which has not ended');
  t.equal(fm.unmapExtent(fh, 0), -1, 'unmapping it again changes nothing and leaves nothing to wait for');

  held.buf!.fill(0x44);
  held.reply!(4096);
  const { bytesRead, buffer } = await stuckRead;
  t.equal(bytesRead, 4096);
  t.equal(buffer[0], 0x44, 'the stuck read completes with what the device returned');
  t.equal(fm.requestsEnded(fh, ticket), true, 'and then it has ended');
  memfs.add('data', Buffer.alloc(4096, 0x55));
  const after = await file.read(Buffer.alloc(4096), 0, 4096, 0);
  t.equal(after.buffer[0], 0x55, 'a read after the unmap goes to JS');
});

t.test('fast path: an unmap with no read in flight leaves nothing to wait for', async (t) => {
  const { fm, fh, file } = await mappableFile(t, 4096);
  const copy = await fsp.open(path.join((await scratch(t)).dir, 'copy'), 'w+');
  t.teardown(() => copy.close());
  await copy.write(Buffer.alloc(4096, 0x33), 0, 4096, 0);
  fm.setFileMap(fh, 4096);
  fm.mapExtent(fh, 0, copy.fd, 0);
  t.equal((await file.read(Buffer.alloc(4096), 0, 4096, 0)).buffer[0], 0x33, 'read natively from the copy');
  t.equal(fm.unmapExtent(fh, 0), -1, 'the read has ended: no ticket');
  t.equal(fm.requestsEnded(fh, 12345), true, 'a ticket of no map of this handle has nothing in flight');
});

// ---- 6b. native write fast path -----------------------------------------------------------------

/** MemFs whose open/create tell `opened` each new handle before the kernel sees it. */
function handleTracking(memfs: MemFs, opened: (fh: number) => void): FuseHandlers {
  const handlers = memfs.handlers();
  const open = handlers.open!;
  handlers.open = (p, flags, cb) => open(p, flags, (errno, fh) => {
    if (errno === 0 && fh) opened(fh);
    cb(errno, fh);
  });
  return handlers;
}

t.test('native writes: writable extents within the limit go to the write fd; the rest, and all while switched off, to JS', async (t) => {
  const SIZE = 3 * MiB;
  const { dir } = await scratch(t);
  const backingPath = path.join(dir, 'backing');
  await fsp.writeFile(backingPath, Buffer.alloc(SIZE));
  const backingFd = fs.openSync(backingPath, 'r+');
  t.teardown(() => fs.closeSync(backingFd));
  const memfs = new MemFs();
  memfs.add('data', Buffer.alloc(SIZE));
  let fh = 0;
  const { fm, mnt } = await mounted(t, handleTracking(memfs, (h) => (fh = h)));
  t.same(fm.nativeWriteStats(), { on: false, hits: 0, misses: 0, errors: 0, stalls: 0, inflight: 0 }, 'off at mount');

  const file = await fsp.open(path.join(mnt, 'data'), fs.constants.O_RDWR | fs.constants.O_DIRECT);
  t.teardown(() => file.close().catch(() => undefined));
  const jsWrites = (): number => memfs.writeSizes.length;
  const backing = (pos: number, len: number): Buffer => {
    const b = Buffer.alloc(len);
    fs.readSync(backingFd, b, 0, len, pos);
    return b;
  };
  let fill = 1;
  const writeAt = async (pos: number, len: number): Promise<Buffer> => {
    const b = Buffer.alloc(len, fill++);
    await file.write(b, 0, len, pos);
    return b;
  };

  t.throws(() => fm.setFileWrites(fh, backingFd, SIZE), /setFileMap/, 'setFileWrites needs setFileMap first');
  fm.setFileMap(fh, MiB);
  fm.setFileWrites(fh, backingFd, MiB + 8192);
  fm.setExtentsWritable(fh, 0, 1, true);

  let before = jsWrites();
  await writeAt(0, 4096);
  t.equal(jsWrites(), before + 1, 'switch off: JS');

  t.equal(fm.setNativeWrites(true), 0);
  before = jsWrites();
  let b = await writeAt(8192, 4096);
  t.same(backing(8192, 4096), b, 'native: the bytes are in the write fd');
  b = await writeAt(MiB - 2048, 4096);
  t.same(backing(MiB - 2048, 4096), b, 'across two writable extents');
  t.equal(jsWrites(), before, 'the JS write handler was not called');
  t.equal(fm.fileNativeWrites(fh), 2);

  b = await writeAt(MiB + 4096, 8192);
  t.equal(jsWrites(), before + 1, 'ending past the limit: JS');
  t.same(memfs.files.get('/data')!.data.subarray(MiB + 4096, MiB + 12288), b);
  await writeAt(2 * MiB - 4096, 8192);
  t.equal(jsWrites(), before + 2, 'touching an extent not marked writable: JS');

  fm.setExtentsWritable(fh, 0, 0, false);
  await writeAt(0, 4096);
  t.equal(jsWrites(), before + 3, 'mark cleared: JS');
  await writeAt(MiB, 4096);
  t.equal(jsWrites(), before + 3, 'extent 1 is still native');

  t.equal(fm.setNativeWrites(false), 0, 'switched off, nothing in flight');
  await writeAt(MiB, 4096);
  t.equal(jsWrites(), before + 4, 'switch off: JS again');
  const stats = fm.nativeWriteStats();
  t.same({ on: stats.on, hits: stats.hits, misses: stats.misses, errors: stats.errors, stalls: stats.stalls }, { on: false, hits: 3, misses: 3, errors: 0, stalls: 0 });
});

t.test('native writes: once setExtentsWritable(false) returns, no native write to them lands', async (t) => {
  const WRITES = 1000;
  const { dir } = await scratch(t);
  const backingPath = path.join(dir, 'backing');
  await fsp.writeFile(backingPath, Buffer.alloc(MiB));
  const backingFd = fs.openSync(backingPath, 'r+');
  t.teardown(() => fs.closeSync(backingFd));
  const memfs = new MemFs();
  memfs.add('data', Buffer.alloc(MiB));
  const state: { fm?: FuseMount; fh: number } = { fh: 0 };
  const { fm, mnt } = await mounted(t, handleTracking(memfs, (h) => {
    state.fh = h;
    state.fm!.setFileMap(h, MiB);
    state.fm!.setFileWrites(h, backingFd, MiB);
    state.fm!.setExtentsWritable(h, 0, 0, true);
  }));
  state.fm = fm;
  fm.setNativeWrites(true);

  // A child writes 4 KiB blocks into extent 0, one request each (O_DIRECT), while we revoke.
  const dd = run('dd', ['if=/dev/zero', `of=${path.join(mnt, 'data')}`, 'bs=4k', `count=${WRITES}`, 'seek=0', 'oflag=direct', 'conv=notrunc', 'status=none'])
    .catch(() => undefined);
  for (let i = 0; i < 500 && (state.fh === 0 || fm.fileNativeWrites(state.fh) < 50); i++) await sleep(2);
  fm.setExtentsWritable(state.fh, 0, 0, false);
  const nativeAtRevoke = fm.fileNativeWrites(state.fh);
  t.ok(nativeAtRevoke >= 50 && nativeAtRevoke < WRITES, `revoked mid-run, after ${nativeAtRevoke} native writes`);
  await sleep(50);
  t.equal(fm.fileNativeWrites(state.fh), nativeAtRevoke, 'no native write counted after the revoke returned');
  await dd;
  t.equal(memfs.writeSizes.length, WRITES - nativeAtRevoke, 'every later write reached the JS handler');
});

t.test('native writes: a stalled write turns the switch off; later writes go to JS; off counts the stuck write', async (t) => {
  // The write fd: a hung volume.
  const { held, file: live } = await hungDevice(t, 'write', Buffer.alloc(MiB), 'r+');

  const memfs = new MemFs();
  memfs.add('data', Buffer.alloc(MiB));
  memfs.add('other', Buffer.alloc(MiB));
  const fhs: number[] = [];
  const { fm, mnt } = await mounted(t, handleTracking(memfs, (h) => fhs.push(h)));
  const a = await fsp.open(path.join(mnt, 'data'), fs.constants.O_RDWR | fs.constants.O_DIRECT);
  t.teardown(() => a.close().catch(() => undefined));
  // Another file: the kernel holds the inode lock of `data` while its write is stuck.
  const b = await fsp.open(path.join(mnt, 'other'), fs.constants.O_RDWR | fs.constants.O_DIRECT);
  t.teardown(() => b.close().catch(() => undefined));
  for (const fh of fhs) {
    fm.setFileMap(fh, 64 * 1024);
    fm.setFileWrites(fh, live.fd, MiB);
    fm.setExtentsWritable(fh, 0, 15, true);
  }
  fm.setNativeWrites(true);

  const stuck = a.write(Buffer.alloc(4096, 7), 0, 4096, 0);
  for (let i = 0; i < 100 && !held.reply; i++) await sleep(20);
  t.ok(held.reply, 'the native write reached the hung volume');
  // Whatever fails below, answer the stuck write before unmounting: this process serves both
  // mounts, and a FUSE thread stuck on the other one would keep it from exiting.
  t.teardown(() => held.reply?.(held.len ?? 0));
  for (let i = 0; i < 100 && fm.nativeWriteStats().on; i++) await sleep(20);
  const stats = fm.nativeWriteStats();
  t.same({ on: stats.on, stalls: stats.stalls, inflight: stats.inflight }, { on: false, stalls: 1, inflight: 1 }, 'the switch turned itself off');

  const t0 = Date.now();
  await b.write(Buffer.alloc(4096, 9), 0, 4096, 8192);
  t.equal(memfs.writeSizes.length, 1, `the next write went to JS and was answered (${Date.now() - t0} ms)`);

  const t1 = Date.now();
  t.equal(fm.setNativeWrites(false), 1, 'off says one native write is still in flight');
  t.ok(Date.now() - t1 < 100, `without waiting for it (${Date.now() - t1} ms)`);

  const reply = held.reply!;
  held.reply = undefined;
  reply(held.len!);
  t.equal((await stuck).bytesWritten, 4096, 'the stuck write completes once the volume answers');
  t.equal(fm.nativeWriteStats().inflight, 0);
  t.equal(fm.setNativeWrites(false), 0, 'none in flight now');
});

// ---- 7. every request is answered under concurrency ----------------------------------------------

/** A passthrough filesystem over a backing directory (fs.promises: libuv's thread pool). */
class Passthrough {
  readonly files = new Map<number, fsp.FileHandle>();
  readonly calls = new Map<string, number>();
  mount: FuseMount | undefined;
  /** Map every open file's first 16 extents (64 KiB each) to its backing fd: reads become native. */
  fastPath = false;
  private nextFh = 1;

  constructor(readonly back: string) {}

  private hit(op: string): void {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
  }

  private opened(cb: ResultCallback<number>, file: fsp.FileHandle): void {
    const fh = this.nextFh++;
    this.files.set(fh, file);
    if (this.fastPath && this.mount) {
      this.mount.setFileMap(fh, 64 * 1024);
      for (let k = 0; k < 16; k++) this.mount.mapExtent(fh, k, file.fd, 0);
    }
    cb(0, fh);
  }

  handlers(): FuseHandlers {
    // Every handler answers exactly once, whether its promise resolves or rejects.
    const io = <T>(op: string, cb: (errno: number) => void, p: () => Promise<T>, ok: (v: T) => void): void => {
      this.hit(op);
      p().then(ok, (err) => cb(errnoOf(err)));
    };
    const stat = (s: fs.Stats): FuseStat => ({
      mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: s.atimeMs, mtime: s.mtimeMs, ctime: s.ctimeMs, nlink: s.nlink, ino: s.ino,
    });
    const file = (fh: number): fsp.FileHandle => {
      const f = this.files.get(fh);
      if (!f) throw Object.assign(new Error(`bad fh ${fh}`), { code: 'EBADF' });
      return f;
    };
    return {
      getattr: (p, cb) => io('getattr', cb, () => fsp.lstat(this.back + p), (s) => cb(0, stat(s))),
      fgetattr: (p, fh, cb) => io('fgetattr', cb, async () => file(fh).stat(), (s) => cb(0, stat(s))),
      readdir: (p, cb) => io('readdir', cb, () => fsp.readdir(this.back + p), (names) => cb(0, names)),
      // Only the access mode: no O_DIRECT (or O_CREAT...) on the backing file.
      open: (p, flags, cb) => io('open', cb, () => fsp.open(this.back + p, flags & 3), (f) => this.opened(cb, f)),
      create: (p, mode, cb) => io('create', cb, () => fsp.open(this.back + p, 'w+', mode), (f) => this.opened(cb, f)),
      read: (p, fh, buf, len, pos, cb) => io('read', cb, async () => file(fh).read(buf, 0, len, pos), (r) => cb(r.bytesRead)),
      write: (p, fh, buf, len, pos, cb) => io('write', cb, async () => file(fh).write(buf, 0, len, pos), (r) => cb(r.bytesWritten)),
      truncate: (p, size, cb) => io('truncate', cb, () => fsp.truncate(this.back + p, size), () => cb(0)),
      ftruncate: (p, fh, size, cb) => io('ftruncate', cb, async () => file(fh).truncate(size), () => cb(0)),
      utimens: (p, atime, mtime, cb) => cb(0),
      flush: (p, fh, cb) => cb(0),
      fsync: (p, datasync, fh, cb) => io('fsync', cb, async () => file(fh).datasync(), () => cb(0)),
      release: (p, fh, cb) => {
        const f = this.files.get(fh);
        this.files.delete(fh);
        io('release', cb, async () => f?.close(), () => cb(0));
      },
      unlink: (p, cb) => io('unlink', cb, () => fsp.unlink(this.back + p), () => cb(0)),
    };
  }
}

/**
 * Each child lays out a 1 MiB file with buffered 4 KiB writes (as fio does), then reopens it
 * O_DIRECT and does `ops` random 4 KiB reads and writes (one in three a write), checking that every
 * read returns what it last wrote there. Prints {reads, writes, bad}.
 */
const IO_CHILD = `
  const fs = require('fs');
  const [file, ops, seed] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
  const BS = 4096, BLOCKS = 256;
  const expect = new Uint8Array(BLOCKS).fill(1);
  const buf = Buffer.alloc(BS, 1);
  let fd = fs.openSync(file, 'w+');
  for (let b = 0; b < BLOCKS; b++) fs.writeSync(fd, buf, 0, BS, b * BS);
  fs.closeSync(fd);
  fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DIRECT);
  let x = seed, reads = 0, writes = 0, bad = 0;
  for (let i = 0; i < ops; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const b = x % BLOCKS;
    if (i % 3 === 0) {
      const v = 2 + (i % 250);
      buf.fill(v);
      fs.writeSync(fd, buf, 0, BS, b * BS);
      expect[b] = v;
      writes++;
    } else {
      fs.readSync(fd, buf, 0, BS, b * BS);
      if (buf[0] !== expect[b] || buf[BS - 1] !== expect[b]) bad++;
      reads++;
    }
    if (i % 100 === 0) fs.fstatSync(fd);
  }
  fs.closeSync(fd);
  process.stdout.write(JSON.stringify({ reads, writes, bad }));
`;

for (const fastPath of [false, true]) {
  t.test(`4 processes doing small reads and writes concurrently: every request is answered (fast path ${fastPath ? 'on' : 'off'})`, async (t) => {
    const PROCS = 4;
    const OPS = 3000;
    const BOUND_MS = 90_000; // normally a few seconds; a lost request never completes
    const { dir } = await scratch(t);
    const back = path.join(dir, 'back');
    await fsp.mkdir(back);
    const pt = new Passthrough(back);
    pt.fastPath = fastPath;
    const { fm, mnt } = await mounted(t, pt.handlers());
    pt.mount = fm;
    const conn = fuseConnection(mnt);

    const children = Array.from({ length: PROCS }, (_, i) => {
      const child = spawn(process.execPath, ['-e', IO_CHILD, path.join(mnt, `f${i}`), String(OPS), String(1000 + i)], {
        cwd: dir, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const done = new Promise<{ code: number | null; out: string }>((resolve) => child.once('exit', (code) => resolve({ code, out })));
      t.teardown(() => child.kill('SIGKILL'));
      return { child, done };
    });

    const t0 = Date.now();
    const all = Promise.all(children.map((c) => c.done));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), BOUND_MS)));
    const result = await Promise.race([all, bound]);
    clearTimeout(timer);
    if (result === 'timeout') {
      // Unblock everything so the test fails instead of hanging: abort the FUSE connection (the
      // children's requests then fail with ENOTCONN), then report what was left unanswered.
      const waiting = conn ? fs.readFileSync(path.join(conn, 'waiting'), 'utf8').trim() : '?';
      const wchan = children.map(({ child }) => {
        try {
          return fs.readFileSync(`/proc/${child.pid}/wchan`, 'utf8');
        } catch {
          return 'exited';
        }
      });
      if (conn) fs.writeFileSync(path.join(conn, 'abort'), '1');
      for (const { child } of children) child.kill('SIGKILL');
      t.fail(`not done after ${BOUND_MS} ms: ${waiting} requests unanswered, children in ${wchan.join(', ')}`);
      return;
    }
    const ms = Date.now() - t0;
    for (const [i, { code, out }] of result.entries()) {
      t.equal(code, 0, `child ${i} exited cleanly ${code === 0 ? '' : out}`);
      if (code === 0) t.match(JSON.parse(out), { reads: 2000, writes: 1000, bad: 0 }, `child ${i}: every read saw the last write`);
    }
    const calls = Object.fromEntries(pt.calls);
    t.ok((calls.write ?? 0) >= PROCS * (256 + 1000), `the writes reached the handler (${calls.write})`);
    const stats = fm.fastPathStats();
    if (fastPath) t.ok(stats.hits >= PROCS * 2000, `reads were served natively (${JSON.stringify(stats)})`);
    else t.ok((calls.read ?? 0) >= PROCS * 2000, `the O_DIRECT reads reached the handler (${calls.read})`);
    t.ok(ms < BOUND_MS, `done in ${ms} ms`);
    if (conn) t.equal(fs.readFileSync(path.join(conn, 'waiting'), 'utf8').trim(), '0', 'nothing left waiting in the kernel');
  });
}
