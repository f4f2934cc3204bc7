/**
 * Every operation on the live volume passes through here, for three reasons:
 *
 * - no application call may hang on a hung live volume: an op that has not answered within the
 *   deadline is abandoned (the caller gets LiveUnavailable and completes the op from a shadow, or
 *   fails it); the late answer, if it ever comes, is dropped;
 * - hung ops hold a libuv thread each, and the tiers need those threads too: at most
 *   `maxConcurrent` live ops run at once, the rest wait for a slot (within the same deadline);
 * - the watchdog learns the live volume's health from real I/O: each op is reported to it.
 *
 * Abandoned ops are counted until they really end: resync must not start while one of them could
 * still land on the live volume and overwrite newer data.
 */
import { errorCode } from '../util/errors';
import { isVolumeFault } from '../health/volume-faults';
import { BufferPool } from '../util/buffer-pool';
import type { OpKind } from '../health/health-monitor';

/** The live volume did not answer in time (or is failed over): serve from the shadows instead. */
export class LiveUnavailable extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly why: string) {
    super(`live volume unavailable: ${why}`);
  }
}

/** Where the guard reports: the watchdog's health monitor. */
export interface LiveOpObserver {
  beginOp(kind: OpKind, nowMs: number): number;
  endOp(token: number, ok: boolean, nowMs: number): void;
}

export interface LiveGuardOptions {
  /** An op not answered within this is abandoned. */
  deadlineMs: number;
  /** The same for fsync, which legitimately takes long on a slow device with much dirty data. */
  syncDeadlineMs: number;
  maxConcurrent: number;
}

const nowMs = (): number => performance.now();

export class LiveGuard {
  private running = 0;
  private readonly waiters: (() => void)[] = [];
  private abandoned = 0;
  private idleWaiters: (() => void)[] = [];
  /** Each op started and not yet over (finished, or abandoned at its deadline). */
  private readonly inFlight = new Set<Promise<void>>();
  /** Set while failed over: live ops that are not explicitly allowed fail at once. */
  private closedReason: string | undefined;
  /** Buffers for the copies writeFrom() takes. */
  private readonly copies = new BufferPool();
  observer: LiveOpObserver | undefined;
  /** Told when an op is abandoned (the volume fails over on the first one). */
  onAbandoned: (kind: OpKind) => void = () => undefined;

  constructor(private options: LiveGuardOptions) {}

  setOptions(options: LiveGuardOptions): void {
    this.options = options;
  }

  get deadlineMs(): number {
    return this.options.deadlineMs;
  }

  /** Ops abandoned and still running on the live volume. */
  get abandonedOps(): number {
    return this.abandoned;
  }

  get runningOps(): number {
    return this.running;
  }

  /** Failed over: refuse live ops unless the caller passes `force` (resync, last-resort reads). */
  close(reason: string): void {
    this.closedReason = reason;
  }

  open(): void {
    this.closedReason = undefined;
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  /**
   * Run `fn` against the live volume. Rejects with LiveUnavailable when it does not finish within
   * the deadline (including the wait for a slot); otherwise resolves or rejects as `fn` does.
   */
  /**
   * `background`: the mount's own work (copies), not an application's: it gets the longer sync
   * deadline (nobody waits on it but other background work) and is not a health sample (a 1 MiB
   * copy read on a busy disk says nothing about the 4 KiB ops applications see).
   */
  run<T>(kind: OpKind, fn: () => Promise<T>, opts: { force?: boolean; deadlineMs?: number; background?: boolean } = {}): Promise<T> {
    if (this.closedReason !== undefined && !opts.force) return Promise.reject(new LiveUnavailable(this.closedReason));
    const deadlineMs = opts.deadlineMs ?? (kind === 'sync' || opts.background ? this.options.syncDeadlineMs : this.options.deadlineMs);
    const observer = opts.background ? undefined : this.observer;
    let over!: () => void;
    const overPromise = new Promise<void>((r) => (over = r));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let started = false;
      const timer = setTimeout(() => {
        settled = true;
        over();
        if (started) {
          this.abandoned++;
        } else {
          const i = this.waiters.indexOf(start);
          if (i >= 0) this.waiters.splice(i, 1);
        }
        if (!opts.background) this.onAbandoned(kind);
        reject(new LiveUnavailable(`${kind} not answered within ${deadlineMs} ms`));
      }, deadlineMs);
      const start = (): void => {
        if (settled) return;
        started = true;
        this.running++;
        this.inFlight.add(overPromise);
        void overPromise.then(() => this.inFlight.delete(overPromise));
        const token = observer?.beginOp(kind, nowMs()) ?? 0;
        fn().then((v) => {
          over();
          this.finish(observer, token, true, settled);
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            resolve(v);
          }
        }, (err: unknown) => {
          over();
          this.finish(observer, token, !isVolumeFault(errorCode(err)), settled);
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            reject(err);
          }
        });
      };
      if (this.running < this.options.maxConcurrent) start();
      else this.waiters.push(start);
    });
  }

  /**
   * A read under the guard (as `run`) through a buffer of its own, copied into `buf[at..]` only
   * when it answers in time. An abandoned read lands whenever the volume lets it, and by then the
   * caller's buffer may be someone else's: the FUSE adapter's is freed once the op is answered,
   * and a late write into it corrupts the daemon's heap.
   */
  async readInto(buf: Buffer, at: number, length: number, read: (own: Buffer) => Promise<number>, opts: { force?: boolean } = {}): Promise<number> {
    const own = Buffer.allocUnsafe(length);
    const n = await this.run('read', () => read(own), opts);
    return own.copy(buf, at, 0, n);
  }

  /**
   * A write under the guard (as `run`) from a copy of `buf[at..at + length)`. An abandoned write
   * takes its bytes whenever the volume lets it (a write queued behind a hung one on the same file
   * waits on the file's lock before it reads them), and by then the FUSE adapter has answered the
   * op and reused the caller's buffer for another request: that request's bytes, perhaps another
   * file's, would land in this file.
   */
  writeFrom<T>(buf: Buffer, at: number, length: number, write: (own: Buffer) => Promise<T>): Promise<T> {
    const own = this.copies.take(length);
    buf.copy(own, 0, at, at + length);
    // Back to the pool once the write has ended (landed or failed), not when it is abandoned.
    return this.run('write', () => write(own).finally(() => this.copies.give(own)));
  }

  private finish(observer: LiveOpObserver | undefined, token: number, ok: boolean, wasAbandoned: boolean): void {
    this.running--;
    if (wasAbandoned) this.abandoned--;
    observer?.endOp(token, ok, nowMs());
    const next = this.waiters.shift();
    if (next) next();
    if (this.abandoned === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /**
   * Resolves once every op running now is over: finished, or abandoned at its deadline (then it
   * counts in abandonedOps until it lands). Ops waiting for a slot are not waited for.
   */
  opsRunningNow(): Promise<void> {
    return Promise.all([...this.inFlight]).then(() => undefined);
  }

  /** Resolves once no abandoned op can still land on the live volume. */
  noAbandonedOps(): Promise<void> {
    if (this.abandoned === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
