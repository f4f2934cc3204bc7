/**
 * Typed binding to fuse-native: the only module in shadowfs that requires 'fuse-native'.
 *
 * fuse-native is patched and rebuilt against the system libfuse 2 by scripts/build-fuse-native.sh
 * (native/fuse-native.patch). What the patch adds, as seen from here:
 * - utimens receives both times with nanoseconds; `null` means "leave unchanged" (touch -m / -a).
 * - `context()` gives the caller's uid/gid/pid, read on the FUSE thread before dispatch.
 * - request timeouts are off (fuse-native's default answers ETIMEDOUT after 15 s while the handler
 *   keeps running): a handler must always call back; the application bounds its own waits.
 * - mount options of 0 (attr_timeout=0, entry_timeout=0) reach libfuse; any -o option can be added.
 * - unmount() ends the FUSE thread and closes its handles, so the process can exit afterwards,
 *   even if the mount was busy (it is detached lazily and its connection closed).
 * - a native read fast path: see `setFileMap`; a native write fast path: see `setFileWrites`;
 *   per extent, how many reads and writes those served since the last `drainExtentHits()`.
 * - answered on the FUSE thread without calling a handler (both on by default, see
 *   FuseMountOptions): getxattr/setxattr of "security.capability" (noFileCapabilities), and
 *   FOPEN_DIRECT_IO for opens with O_DIRECT (directIoOnODirect).
 *
 * Conventions (fuse-native's): every handler gets a callback as its last argument and calls it
 * exactly once, with 0 or a negative errno (`Errno.ENOENT`, `errnoOf(err)`) first, then results.
 * read and write call back with the byte count or a negative errno instead. A handler that throws
 * (or whose returned promise rejects) before calling back gets `errnoOf(err)` sent for it; a
 * second callback is ignored; both are reported to `onHandlerError`.
 *
 * Handlers run on the JS thread while a FUSE thread waits: never do synchronous fs calls into the
 * mount itself from this process (the request would wait for this very thread), and never spawn a
 * child with `cwd` inside the mount (spawn blocks until the child's chdir, which needs us). The
 * daemon spawns no child at all once it holds live fds: see syncAllFilesystems below.
 *
 * O_DIRECT: `open` receives the application's flags, O_DIRECT included. The filesystem
 * must not pass O_DIRECT on to the files it opens on backing volumes or tiers (alignment rules of
 * those devices would leak to the application); FUSE already bypasses the page cache for such
 * opens on the mount side.
 */
import os from 'os';
import path from 'path';
import { getSystemErrorName } from 'util';
import { errorCode, FsError, ShadowfsError } from '../util/errors';

// ---- errno -----------------------------------------------------------------------------------

type ErrnoName = keyof typeof os.constants.errno;

/** Negative errno values as handlers return them: `cb(Errno.ENOENT)`. */
export const Errno: { readonly [K in ErrnoName]: number } = Object.freeze(
  Object.fromEntries(Object.entries(os.constants.errno).map(([name, value]) => [name, -value])),
) as { readonly [K in ErrnoName]: number };

/** The negative errno for an error: its `code` (Node system errors, FsError), else -EIO. */
export function errnoOf(err: unknown): number {
  const code = errorCode(err);
  if (code && Object.prototype.hasOwnProperty.call(os.constants.errno, code)) {
    return -os.constants.errno[code as ErrnoName];
  }
  return Errno.EIO;
}

// ---- handler table ---------------------------------------------------------------------------

/** Reply of an operation without results: 0 or a negative errno. */
export type Callback = (errno: number) => void;
/**
 * Reply with a result, which is only read when errno is 0. (Declared as a method so that generic
 * helpers typed `(errno: number, ...results: unknown[]) => void` can take it: bivariant params.)
 */
export type ResultCallback<T> = { reply(errno: number, result?: T): void }['reply'];
/** readdir's reply: names, and optionally one stat per name (same order). */
export type ReaddirCallback = { reply(errno: number, names?: string[], stats?: FuseStat[]): void }['reply'];
/** Reply of read/write: bytes transferred (>= 0) or a negative errno. */
export type IoCallback = (bytesOrErrno: number) => void;

/** Times are Dates or milliseconds since the epoch (fuse-native keeps millisecond precision). */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date | number;
  atime: Date | number;
  ctime: Date | number;
  nlink?: number;
  ino?: number;
  dev?: number;
  rdev?: number;
  blksize?: number;
  blocks?: number;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** A time with nanoseconds, as utimens receives it. */
export interface TimeSpec {
  sec: number;
  nsec: number;
}

/** Who issued the operation being handled. */
export interface CallerContext {
  uid: number;
  gid: number;
  pid: number;
}

export type FuseContext = CallerContext;

/**
 * The operations fuse-native supports. Paths are absolute within the mount ('/', '/a/b').
 * `fh` is the handle this filesystem returned from open/create/opendir: an integer from 1 to
 * 2^31 - 1 (0 would mean "no handle" to fuse-native).
 */
export interface FuseHandlers {
  init?(cb: Callback): void;
  access?(path: string, mode: number, cb: Callback): void;
  statfs?(path: string, cb: ResultCallback<FuseStatfs>): void;
  getattr?(path: string, cb: ResultCallback<FuseStat>): void;
  fgetattr?(path: string, fh: number, cb: ResultCallback<FuseStat>): void;
  flush?(path: string, fh: number, cb: Callback): void;
  /** datasync: nonzero when only data (not metadata) must reach stable storage. */
  fsync?(path: string, datasync: number, fh: number, cb: Callback): void;
  fsyncdir?(path: string, datasync: number, fh: number, cb: Callback): void;
  readdir?(path: string, cb: ReaddirCallback): void;
  truncate?(path: string, size: number, cb: Callback): void;
  ftruncate?(path: string, fh: number, size: number, cb: Callback): void;
  /** atime/mtime null: leave that time unchanged (UTIME_OMIT). UTIME_NOW arrives resolved. */
  utimens?(path: string, atime: TimeSpec | null, mtime: TimeSpec | null, cb: Callback): void;
  readlink?(path: string, cb: ResultCallback<string>): void;
  chown?(path: string, uid: number, gid: number, cb: Callback): void;
  chmod?(path: string, mode: number, cb: Callback): void;
  mknod?(path: string, mode: number, dev: number, cb: Callback): void;
  setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Callback): void;
  /** No value with errno 0 answers ENODATA. */
  getxattr?(path: string, name: string, position: number, cb: ResultCallback<Buffer>): void;
  listxattr?(path: string, cb: ResultCallback<string[]>): void;
  removexattr?(path: string, name: string, cb: Callback): void;
  open?(path: string, flags: number, cb: ResultCallback<number>): void;
  opendir?(path: string, flags: number, cb: ResultCallback<number>): void;
  /** buf is only valid until cb is called. */
  read?(path: string, fh: number, buf: Buffer, length: number, position: number, cb: IoCallback): void;
  /** buf is only valid until cb is called. */
  write?(path: string, fh: number, buf: Buffer, length: number, position: number, cb: IoCallback): void;
  /** The fast-path map of fh is already dropped when this runs: close its fds here. */
  release?(path: string, fh: number, cb: Callback): void;
  releasedir?(path: string, fh: number, cb: Callback): void;
  create?(path: string, mode: number, cb: ResultCallback<number>): void;
  unlink?(path: string, cb: Callback): void;
  rename?(src: string, dest: string, cb: Callback): void;
  /** Hard link: `linkPath` becomes another name of `existingPath`. */
  link?(existingPath: string, linkPath: string, cb: Callback): void;
  /** Symlink at `linkPath` whose content is `target`. */
  symlink?(target: string, linkPath: string, cb: Callback): void;
  mkdir?(path: string, mode: number, cb: Callback): void;
  rmdir?(path: string, cb: Callback): void;
  /** fallocate(2): mode is its flags (FALLOC_FL_*); fh 0 when the kernel gave none. */
  fallocate?(path: string, mode: number, offset: number, length: number, fh: number, cb: Callback): void;
}

export type FuseOpName = keyof FuseHandlers;

const OP_NAMES: readonly FuseOpName[] = [
  'init', 'access', 'statfs', 'getattr', 'fgetattr', 'flush', 'fsync', 'fsyncdir', 'readdir', 'truncate',
  'ftruncate', 'utimens', 'readlink', 'chown', 'chmod', 'mknod', 'setxattr', 'getxattr', 'listxattr',
  'removexattr', 'open', 'opendir', 'read', 'write', 'release', 'releasedir', 'create', 'unlink', 'rename',
  'link', 'symlink', 'mkdir', 'rmdir', 'fallocate',
];

/** Ops whose callback carries a file handle that later keys the fast-path map. */
const HANDLE_OPS: ReadonlySet<FuseOpName> = new Set<FuseOpName>(['open', 'opendir', 'create']);

const MAX_FH = 2 ** 31 - 1;

/** File capabilities: answered natively when noFileCapabilities is on. */
const XATTR_CAPS = 'security.capability';

// ---- options ---------------------------------------------------------------------------------

export interface FuseMountOptions {
  /** -o allow_other: users other than the mounting one may use the mount (root is always allowed to mount so). */
  allowOther?: boolean;
  /** -o default_permissions: the kernel checks modes against the caller; else the filesystem decides. */
  defaultPermissions?: boolean;
  fsname?: string;
  subtype?: string;
  /** How long the kernel caches attributes / names / missing names; 0 disables. libfuse default 1 s. */
  attrTimeoutSeconds?: number;
  entryTimeoutSeconds?: number;
  negativeTimeoutSeconds?: number;
  /** -o big_writes: buffered writes reach `write` in chunks up to maxWriteBytes instead of 4 KiB. */
  bigWrites?: boolean;
  /**
   * Largest write and read requests (bytes). Up to 128 KiB is libfuse 2's own limit; above it (up
   * to 1 MiB, MAX_REQUEST_BYTES) the patched binding negotiates FUSE max_pages, which libfuse 2
   * cannot: a 1 MiB read or write is then one request instead of eight.
   */
  maxWriteBytes?: number;
  maxReadBytes?: number;
  /** Further -o options, verbatim ('kernel_cache', 'max_readahead=131072', ...). No commas. */
  options?: readonly string[];
  /** -o debug: libfuse traces every request on stderr. */
  debug?: boolean;
  /**
   * The filesystem carries no file capabilities (default true): getxattr("security.capability")
   * answers ENODATA and setxattr of it ENOTSUP on the FUSE thread, and listxattr leaves it out;
   * the handlers never see that name. The kernel asks for it before every write that is not
   * direct I/O (file_remove_privs), so this saves a JS round trip per write.
   */
  noFileCapabilities?: boolean;
  /**
   * Opens and creates with O_DIRECT get FOPEN_DIRECT_IO (default true): the kernel then sends
   * reads and writes straight to the handlers by its direct path, without the page cache (which
   * O_DIRECT bypasses anyway) and without asking for security.capability before each write.
   * Costs: a MAP_SHARED mmap of such an fd fails (ENODEV); the kernel leaves clearing setuid/setgid
   * bits on write to the filesystem (libfuse 2 does not pass that flag on, so O_DIRECT writes by
   * unprivileged users do not clear them).
   */
  directIoOnODirect?: boolean;
  /**
   * While requests keep coming, one FUSE thread polls for the next request for up to 100 µs
   * (yielding the CPU between polls) before it sleeps in read() (default true). On a virtual
   * machine a sleeping reader's wake-up can cost more than a native read or write itself.
   */
  pollRequests?: boolean;
  /**
   * Reads and writes the fast path serves are answered by the FUSE thread itself, without passing
   * through libfuse's request handling (default true): no request allocated, no path built under
   * libfuse's tree lock, no lock round trips that several callers contend for.
   */
  answerDirectly?: boolean;
  /**
   * While one caller at a time sends native reads or writes that take long to answer (≥ 50 µs,
   * e.g. 1 MiB), a thread of the lowest priority (SCHED_IDLE) keeps an otherwise idle CPU polling
   * (default true). On a virtual machine without halt polling, the caller's idle vCPU otherwise
   * halts while it waits, and waking it costs tens of microseconds per request. The poller uses
   * only CPU time nothing else wants. Request times are measured on the requests answered
   * directly, so it needs answerDirectly.
   */
  idlePoll?: boolean;
  /**
   * Take requests through FUSE over io_uring when the kernel offers it (default true): one ring
   * per CPU, whose thread serves the requests of callers on that CPU. The kernel offers it only
   * with the fuse module's enable_uring parameter set (/sys/module/fuse/parameters/enable_uring);
   * otherwise requests come through /dev/fuse as before. Needs answerDirectly, and requests above
   * 128 KiB (maxReadBytes or maxWriteBytes; the binding patches the INIT reply only then).
   */
  ioUring?: boolean;
  /** A handler threw, its promise rejected, or it called back twice. Default: console.error. */
  onHandlerError?: (op: FuseOpName, err: unknown) => void;
}

export interface FastPathStats {
  /** Reads served natively from mapped extents. */
  hits: number;
  /** Reads sent to the JS read handler. */
  misses: number;
  /** Native preads that failed; each of those reads went to the JS handler instead. */
  errors: number;
  /** Requests (of any kind) a FUSE thread found by polling, without sleeping for them (pollRequests). */
  polled: number;
  /** Fast-path reads and writes answered without libfuse (answerDirectly). */
  answeredDirectly: number;
  /** Times the idle poller began keeping a CPU awake (idlePoll). */
  idlePolls: number;
  /** Milliseconds it spent polling. */
  idlePollMs: number;
  /** Requests received through FUSE over io_uring (ioUring; 0 when the kernel did not offer it). */
  ringRequests: number;
  /** Ring entries registered with the kernel (one per ring thread; it uses the rings once every CPU has one). */
  ringEntries: number;
}

export interface NativeWriteStats {
  /** The global switch (setNativeWrites), which also turns itself off when a native write stalls. */
  on: boolean;
  /** Writes served natively. */
  hits: number;
  /** Writes sent to the JS write handler while the switch was on. */
  misses: number;
  /** Native pwrites that failed; each of those writes went to the JS handler instead. */
  errors: number;
  /** Times the switch turned itself off because a native write made no progress for 200 ms. */
  stalls: number;
  /** Native writes in flight now. */
  inflight: number;
}

/** mount() failed; `code` is the errno name when there is one (ENOTCONN: stale mount). */
export class FuseMountError extends Error {
  constructor(message: string, readonly code: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'FuseMountError';
  }
}

// ---- fuse-native, as patched -----------------------------------------------------------------

type RawHandler = (...args: unknown[]) => unknown;

interface NativeFuse {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  context(): CallerContext | null;
  setFileMap(fh: number, extentSizeBytes: number): void;
  mapExtent(fh: number, index: number, fd: number, deltaBytes: number): void;
  unmapExtent(fh: number, index: number): number;
  requestsEnded(fh: number, ticket: number): boolean;
  unmapFile(fh: number): void;
  fastPathStats(): FastPathStats;
  setIdlePollThreshold(micros: number): void;
  maxRequestBytes(): number;
  setFileWrites(fh: number, fd: number, limitBytes: number): void;
  setExtentsWritable(fh: number, first: number, last: number, writable: boolean): void;
  setNativeWrites(enabled: boolean): number;
  nativeWriteStats(): NativeWriteStats;
  fileNativeWrites(fh: number): number;
  drainExtentHits(fh: number): Float64Array;
  onexit: (() => void) | null;
}

interface NativeFuseOptions {
  timeout: false;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  fsname?: string;
  subtype?: string;
  attrTimeout?: number;
  entryTimeout?: number;
  negativeTimeout?: number;
  maxRead?: number;
  debug?: boolean;
  noFileCapabilities: boolean;
  directIoOnODirect: boolean;
  pollRequests: boolean;
  answerDirectly: boolean;
  idlePoll: boolean;
  ioUring: boolean;
  /** Bytes per request above libfuse 2's 128 KiB (0: libfuse's limit). */
  maxRequest: number;
  options: string[];
}

interface NativeFuseConstructor {
  new (mnt: string, ops: Record<string, RawHandler>, opts: NativeFuseOptions): NativeFuse;
  /** A lazy unmount (umount2 MNT_DETACH as root, else fusermount -uz). */
  unmount(mnt: string, cb: (err: Error | null) => void): void;
  syncAll(cb: (errno: number) => void): void;
  mknodAt(path: string, mode: number, dev: number, cb: (errno: number) => void): void;
  fallocateFd(fd: number, mode: number, offset: number, length: number, cb: (errno: number) => void): void;
}

let nativeFuseClass: NativeFuseConstructor | undefined;

/**
 * The native addon, loaded on first use rather than when this module is: `shadowfs status`,
 * `unmount` of a live daemon and the other control commands import this module but need no addon,
 * and must keep working while it is missing or being rebuilt.
 */
function nativeFuse(): NativeFuseConstructor {
  if (nativeFuseClass === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      nativeFuseClass = require('fuse-native') as NativeFuseConstructor;
    } catch (err) {
      throw new ShadowfsError(
        `the FUSE binding (fuse-native) could not be loaded: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}; run \`make build\` (it rebuilds it against Debian's libfuse)`,
      );
    }
  }
  return nativeFuseClass;
}

/** Loads the native addon now, so that a mount without one fails before it touches anything. */
export function loadFuseBinding(): void {
  nativeFuse();
}

// ---- system calls off the JS thread, without a child process ---------------------------------
//
// A fork and exec in this process, while it holds an fd on a FUSE filesystem whose server hangs (a
// hung live volume), blocks the JS thread until that server answers: the child's exec closes its
// copies of our close-on-exec fds, each close of a FUSE file waits for the answer to its FLUSH,
// and libuv's spawn waits for the exec. So the daemon runs none (sync, fusermount and mknod were);
// the patched binding makes these calls on a libuv pool thread instead.

function errnoToError(call: string, errno: number): FsError {
  const name = errno > 0 ? getSystemErrorName(-errno) : 'EIO';
  return new FsError(name, `${call}: ${name}`);
}

function viaErrno(call: string, start: (cb: (errno: number) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => start((errno) => (errno === 0 ? resolve() : reject(errnoToError(call, errno)))));
}

/** sync(2): every filesystem's dirty data and metadata. Holds a pool thread while it waits. */
export function syncAllFilesystems(): Promise<void> {
  return viaErrno('sync', (cb) => nativeFuse().syncAll(cb));
}

/** mknod(2) of a FIFO or device node (`mode` with its S_IF* type). Rejects with the errno's code. */
export function mknodAt(p: string, mode: number, dev: number): Promise<void> {
  return viaErrno('mknod', (cb) => nativeFuse().mknodAt(p, mode, dev, cb));
}

/** fallocate(2) of an fd (what the fallocate handler applies to the live file). Rejects with the errno's code. */
export function fallocateFd(fd: number, mode: number, offsetBytes: number, lengthBytes: number): Promise<void> {
  return viaErrno('fallocate', (cb) => nativeFuse().fallocateFd(fd, mode, offsetBytes, lengthBytes, cb));
}

/**
 * A lazy unmount of `mountpoint` (detached now, gone once unused), as FuseMount.unmount does its
 * own: a stale mount, or one whose unmount failed or took too long.
 */
export function lazyUnmount(mountpoint: string): Promise<void> {
  return new Promise((resolve, reject) => nativeFuse().unmount(path.resolve(mountpoint), (err) => (err ? reject(err) : resolve())));
}

// ---- FuseMount -------------------------------------------------------------------------------

type MountState = 'new' | 'mounting' | 'mounted' | 'unmounting' | 'unmounted' | 'failed';

/**
 * One FUSE mount: construct, `mount()`, serve, `unmount()`. Single use.
 *
 * The caller clears a stale mountpoint ("Transport endpoint is not connected", left by a crashed
 * process) with `fusermount -uz` before mounting; mount() rejects with a FuseMountError (code
 * ENOTCONN) when it finds one, and with other codes when libfuse refuses (bad option, ...).
 */
export class FuseMount {
  readonly mountpoint: string;
  /** Resolves when the FUSE thread has ended: after unmount(), or when unmounted from outside. */
  readonly exited: Promise<void>;
  private readonly native: NativeFuse;
  private state: MountState = 'new';
  private unmounting: Promise<void> | null = null;

  constructor(mountpoint: string, handlers: FuseHandlers, options: FuseMountOptions = {}) {
    this.mountpoint = path.resolve(mountpoint);
    const onHandlerError = options.onHandlerError ?? defaultHandlerError;
    const native = nativeOptions(options);
    this.native = new (nativeFuse())(this.mountpoint, rawOps(handlers, onHandlerError, native.noFileCapabilities), native);
    this.exited = new Promise((resolve) => {
      this.native.onexit = () => {
        if (this.state !== 'failed') this.state = 'unmounted';
        resolve();
      };
    });
  }

  /** Resolves once the kernel has sent INIT (the mount is usable). */
  mount(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error(`FuseMount ${this.mountpoint}: already ${this.state}`));
    this.state = 'mounting';
    return new Promise((resolve, reject) => {
      this.native.mount((err) => {
        if (!err) {
          this.state = 'mounted';
          resolve();
          return;
        }
        this.state = 'failed';
        reject(mountError(this.mountpoint, err));
      });
    });
  }

  /**
   * Unmounts (lazily, so a busy mount cannot block it) and waits for the FUSE thread to end. In-flight
   * handlers must still call back first. Idempotent; a never-mounted or failed mount resolves at once.
   */
  unmount(): Promise<void> {
    if (this.unmounting) return this.unmounting;
    if (this.state === 'new' || this.state === 'failed') return Promise.resolve();
    this.state = 'unmounting';
    this.unmounting = new Promise((resolve, reject) => {
      this.native.unmount((err) => {
        if (err) {
          reject(err);
          return;
        }
        this.state = 'unmounted';
        resolve();
      });
    });
    return this.unmounting;
  }

  /**
   * The caller of the operation whose handler is running. Valid only in the synchronous part of a
   * handler call (read it before the first await); undefined anywhere else.
   */
  context(): CallerContext | undefined {
    return this.native.context() ?? undefined;
  }

  // ---- native read fast path ----
  //
  // For an open handle fh, JS declares an extent size and maps extents to a backing fd: bytes
  // [k * size, (k + 1) * size) of the file are at fd offset (file offset + deltaBytes). A read whose
  // extents are all mapped is served by pread on the FUSE thread (a short pread ends the read, as at
  // EOF); any other read, or one whose pread fails, goes to the read handler as usual.
  // Freshness: when unmapExtent/unmapFile returns, no read starts with the old mapping, so unmap
  // before acknowledging a write that makes the copy stale. JS keeps each fd open while it is
  // mapped, and after an unmap until the reads that began before it have ended (unmapExtent's
  // ticket); the map of fh is dropped by itself before the release handler runs. Never map an fd of a file inside this mount (the pread would wait on itself).
  // Limits (per mount): 65,536 mapped handles, extent index < 2^24, 2^24 extent slots in all
  // (24 bytes each: at most 384 MiB); a map grows by doubling up to the highest index mapped.
  // Fast reads and writes copy what they need from the map under its lock and do their I/O
  // without it, so a request stuck on a failing device holds up no other file. unmapExtent does
  // not wait for the file's reads that began before it (beyond 50 µs): they cannot see a write
  // acknowledged after it. unmapFile and the narrowing write calls below do wait for that file's
  // requests that began before them (microseconds on local tiers); if one is stuck, they throw an
  // Error with code ETIMEDOUT after 2 s: the map is changed, but the fd the stuck request uses must
  // stay open. The same call made again waits again for every request of that file still in flight.

  /** (Re)declares the map of fh, every extent unmapped. extentSizeBytes: power of two, 512 B to 1 GiB. */
  setFileMap(fh: number, extentSizeBytes: number): void {
    this.native.setFileMap(checkFh(fh), extentSizeBytes);
  }

  mapExtent(fh: number, index: number, fd: number, deltaBytes: number): void {
    this.native.mapExtent(checkFh(fh), index, fd, deltaBytes);
  }

  /** -1: no read that began before is in flight; else a ticket for requestsEnded (keep the old fd open until then). */
  unmapExtent(fh: number, index: number): number {
    return this.native.unmapExtent(checkFh(fh), index);
  }

  /** The reads an unmapExtent left in flight (its ticket) have ended; after the unmount, none is left. */
  requestsEnded(fh: number, ticket: number): boolean {
    return this.native.requestsEnded(checkFh(fh), ticket);
  }

  unmapFile(fh: number): void {
    this.native.unmapFile(checkFh(fh));
  }

  /** Counters since mount (they survive unmount). */
  fastPathStats(): FastPathStats {
    return this.native.fastPathStats();
  }

  /**
   * The idle poller (idlePoll) runs while native requests take this long on average to answer
   * (default 50 µs, below which the caller's CPU is woken cheaply anyway). Needs a mount.
   */
  setIdlePollThreshold(micros: number): void {
    if (!Number.isFinite(micros) || micros < 0 || micros > 4_000_000) throw new RangeError(`idle poll threshold: expected 0..4000000 µs, got ${micros}`);
    this.native.setIdlePollThreshold(micros);
  }

  /**
   * Bytes per read/write request the kernel agreed to at INIT (LIBFUSE_MAX_REQUEST_BYTES unless
   * raised). The INIT reply leaves after mount() resolves: known once a request has been answered.
   */
  maxRequestBytes(): number {
    return this.native.maxRequestBytes() || LIBFUSE_MAX_REQUEST_BYTES;
  }

  // ---- native write fast path ----
  //
  // For an open handle fh (with a map from setFileMap), JS declares a write fd and a limit, and
  // marks extents writable. While the global switch is on (setNativeWrites, off at mount), a write
  // that ends at or before the limit and touches only writable extents is written to that fd at
  // the same offset by pwrite on the FUSE thread; the write handler never sees it. Everything
  // else, and a native write that fails, goes to the write handler as usual (it writes the whole
  // range again).
  // What JS must do with that: a native write bumps no generation and tells no policy. Mark an
  // extent writable only while nothing depends on its exact bytes (no copy of it exists or is being
  // taken), and clear the mark (setExtentsWritable(..., false)) before anything starts to (a copy
  // reads it, a write through JS begins). When that call returns, no native write to those extents
  // is in flight, and none starts. fileNativeWrites(fh) tells whether fh was written natively.
  // Hangs: a native write runs on a FUSE thread and cannot be abandoned. A write in flight without
  // progress for 200 ms turns the switch off by itself (stats: stalls), so later writes go to JS
  // (which can bound its waits); only the writes already in flight wait on a hung volume. Turn the
  // switch off before anything that needs every write in JS (failover, a suspect volume); it does
  // not wait for writes in flight (see setNativeWrites).

  /** Native writes of fh go to fd (-1: none), if they end at or before limitBytes. */
  setFileWrites(fh: number, fd: number, limitBytes: number): void {
    this.native.setFileWrites(checkFh(fh), fd, limitBytes);
  }

  /** Marks extents [first, last] of fh; false waits for native writes of fh in flight (up to 2 s, then throws ETIMEDOUT: no new one starts, but one may still land). */
  setExtentsWritable(fh: number, first: number, last: number, writable: boolean): void {
    this.native.setExtentsWritable(checkFh(fh), first, last, writable);
  }

  /**
   * The global switch (off at mount); never waits. Off takes effect for every write that has not
   * started yet. Returns the native writes in flight at that moment: after switching off, 0 means
   * none is in flight and none will start; more are writes started before, still running (poll
   * nativeWriteStats().inflight before anything that must see every write, e.g. a resync).
   */
  setNativeWrites(enabled: boolean): number {
    return this.native.setNativeWrites(enabled);
  }

  nativeWriteStats(): NativeWriteStats {
    return this.native.nativeWriteStats();
  }

  /** Writes served natively for fh since its map was declared (0 once released). */
  fileNativeWrites(fh: number): number {
    return this.native.fileNativeWrites(checkFh(fh));
  }

  // ---- native hits ----
  //
  // Reads and writes served natively never reach a handler, so no policy hears of them. Each
  // mapped extent counts them instead (a request once per extent it touches), until drained here.

  /**
   * The native hits counted since the last drain, as (fh, extent index, reads, writes)
   * quadruples in one flat array, each count reset to zero: of every handle, or only of `fh`.
   * Counts of a handle released since the last drain are included (they come first) until its fh
   * is declared again by setFileMap, which drops them: drain a handle's counts before forgetting
   * it, or its fh may name another file by then. A quadruple with fh 0 carries counts lost because
   * too many released extents were waiting (8,192; drains of every handle only). Never blocks
   * FUSE requests: it takes the map's read lock, so only map changes and releases wait for it.
   * Empty once unmounted.
   */
  drainExtentHits(fh?: number): Float64Array {
    return this.native.drainExtentHits(fh === undefined ? 0 : checkFh(fh));
  }
}

function checkFh(fh: number): number {
  if (!Number.isInteger(fh) || fh < 1 || fh > MAX_FH) throw new RangeError(`bad file handle ${fh}`);
  return fh;
}

function defaultHandlerError(op: FuseOpName, err: unknown): void {
  console.error(`shadowfs fuse: ${op} handler:`, err);
}

/** What libfuse 2 negotiates by itself: 32 pages. */
export const LIBFUSE_MAX_REQUEST_BYTES = 128 * 1024;
/** The kernel's ceiling: 256 pages (FUSE_MAX_MAX_PAGES). */
export const MAX_REQUEST_BYTES = 1024 * 1024;

function nativeOptions(o: FuseMountOptions): NativeFuseOptions {
  const extra: string[] = [];
  for (const [what, v] of [['maxWriteBytes', o.maxWriteBytes], ['maxReadBytes', o.maxReadBytes]] as const) {
    if (v !== undefined && positiveInt(v, what) > MAX_REQUEST_BYTES) throw new RangeError(`${what}: at most ${MAX_REQUEST_BYTES}, got ${v}`);
  }
  const maxRequest = Math.max(o.maxWriteBytes ?? 0, o.maxReadBytes ?? 0);
  if (o.bigWrites) extra.push('big_writes');
  if (o.maxWriteBytes !== undefined) extra.push(`max_write=${positiveInt(o.maxWriteBytes, 'maxWriteBytes')}`);
  for (const opt of o.options ?? []) {
    if (!/^[^,\s\0]+$/.test(opt)) throw new RangeError(`bad FUSE mount option "${opt}"`);
    extra.push(opt);
  }
  for (const name of ['fsname', 'subtype'] as const) {
    const v = o[name];
    if (v !== undefined && !/^[^,\s\0]+$/.test(v)) throw new RangeError(`bad FUSE ${name} "${v}"`);
  }
  return {
    timeout: false,
    allowOther: o.allowOther,
    defaultPermissions: o.defaultPermissions,
    fsname: o.fsname,
    subtype: o.subtype,
    attrTimeout: seconds(o.attrTimeoutSeconds, 'attrTimeoutSeconds'),
    entryTimeout: seconds(o.entryTimeoutSeconds, 'entryTimeoutSeconds'),
    negativeTimeout: seconds(o.negativeTimeoutSeconds, 'negativeTimeoutSeconds'),
    maxRead: o.maxReadBytes === undefined ? undefined : positiveInt(o.maxReadBytes, 'maxReadBytes'),
    debug: o.debug,
    noFileCapabilities: o.noFileCapabilities ?? true,
    directIoOnODirect: o.directIoOnODirect ?? true,
    pollRequests: o.pollRequests ?? true,
    answerDirectly: o.answerDirectly ?? true,
    idlePoll: o.idlePoll ?? true,
    ioUring: o.ioUring ?? true,
    maxRequest: maxRequest > LIBFUSE_MAX_REQUEST_BYTES ? maxRequest : 0,
    options: extra,
  };
}

function seconds(v: number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${what}: expected seconds >= 0, got ${v}`);
  return v;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${what}: expected a positive integer, got ${v}`);
  return v;
}

/**
 * fuse-native's ops object: each handler guarded so that a throw or a rejected promise still
 * replies (the kernel request would otherwise hang) and a second callback cannot reach the
 * native side (it would complete some later request of the same FUSE thread).
 */
function rawOps(handlers: FuseHandlers, onHandlerError: (op: FuseOpName, err: unknown) => void, noFileCapabilities: boolean): Record<string, RawHandler> {
  const ops: Record<string, RawHandler> = {};
  for (const op of OP_NAMES) {
    const handler = handlers[op] as RawHandler | undefined;
    if (typeof handler !== 'function') continue;
    ops[op] = (...args: unknown[]): void => {
      const reply = args.pop() as (...results: unknown[]) => void;
      let replied = false;
      args.push((...results: unknown[]) => {
        if (replied) {
          onHandlerError(op, new Error(`${op}: callback called twice`));
          return;
        }
        replied = true;
        if (noFileCapabilities && op === 'listxattr' && results[0] === 0 && Array.isArray(results[1])) {
          results[1] = (results[1] as string[]).filter((name) => name !== XATTR_CAPS);
        }
        if (HANDLE_OPS.has(op) && results[0] === 0) {
          const fh = results[1];
          if (typeof fh !== 'number' || !Number.isInteger(fh) || fh < 1 || fh > MAX_FH) {
            onHandlerError(op, new RangeError(`${op}: file handle must be an integer from 1 to ${MAX_FH}, got ${String(fh)}`));
            reply(Errno.EIO);
            return;
          }
        }
        reply(...results);
      });
      const fail = (err: unknown): void => {
        onHandlerError(op, err);
        if (!replied) {
          replied = true;
          reply(errnoOf(err));
        }
      };
      try {
        const ret: unknown = handler.apply(handlers, args);
        if (ret && typeof (ret as PromiseLike<unknown>).then === 'function') {
          (ret as PromiseLike<unknown>).then(undefined, fail);
        }
      } catch (err) {
        fail(err);
      }
    };
  }
  return ops;
}

function mountError(mountpoint: string, err: Error): FuseMountError {
  const code = errorCode(err) ?? '';
  const errno = (err as { errno?: unknown }).errno;
  if (code === 'ENOTCONN' || errno === Errno.ENOTCONN) {
    return new FuseMountError(
      `${mountpoint} is a stale FUSE mount (Transport endpoint is not connected); clear it with: fusermount -uz ${mountpoint}`,
      'ENOTCONN', err);
  }
  if (err.message === 'Mountpoint in use') {
    return new FuseMountError(`${mountpoint} is already a mount point`, 'EBUSY', err);
  }
  if (err.message === 'Mountpoint does not exist' || code === 'ENOENT') {
    return new FuseMountError(`mountpoint ${mountpoint} does not exist`, 'ENOENT', err);
  }
  if (err.message === 'Mountpoint is not a directory') {
    return new FuseMountError(`mountpoint ${mountpoint} is not a directory`, 'ENOTDIR', err);
  }
  return new FuseMountError(`mounting ${mountpoint} failed: ${err.message}`, code || 'EIO', err);
}
