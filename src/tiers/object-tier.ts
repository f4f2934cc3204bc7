/**
 * The object tier: extent copies in an S3-compatible bucket, fronted by a local cache directory.
 *
 * Object layout: ONE OBJECT PER EXTENT COPY, key `<prefix><fileId>/<index>` (prefix used as
 * given, so "vol1/" gives "vol1/1a2b/0"). Why not pack several extents into one object:
 * - S3 objects are immutable; replacing one extent of a packed object means rewriting (and
 *   re-uploading) its neighbours, or keeping garbage and compacting later — a second, heavier
 *   mechanism with its own crash states. One object per copy: replace = one PutObject, which S3
 *   makes atomic, and remove = one DeleteObject that frees the space at once.
 * - Extents are ~1 MiB, so per-request overhead and small-object minimums (128 KiB on some
 *   storage classes) cost little; a packed layout pays off only for much smaller extents.
 * - A read miss is one GET of exactly the bytes needed to fill the cache.
 *
 * Local cache: a DirectoryTier (same layout and durability) with its own capacity; least recently
 * used copies are evicted when over. The cache only ever holds bytes the bucket also holds: a
 * cached copy is dropped before its object changes or is deleted, filled only after an upload or
 * download succeeded, and reconciled against the bucket listing at open. So a cache hit is as
 * fresh as the object, and never touches the network.
 *
 * Failure: every request has a connection timeout, a request timeout, limited retries and a hard
 * deadline (the request is aborted), so an unreachable endpoint turns into EIO within seconds,
 * never a hang (rule 5). An unreachable endpoint marks the tier 'failed' at once; while failed,
 * operations that need the network fail fast without trying, until `probe()` (HeadBucket)
 * succeeds — the watchdog calls it periodically.
 */
import type * as S3 from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { FsError, ShadowfsError, errorCode } from '../util/errors';
import { DirectoryTier, KeyedMutex } from './directory-tier';
import { CopyInventory, OWNER_MARK, assertExtentRef, assertFileId, isValidFileId, ownedByAnother, parseIndex, refKey } from './layout';
import type { ExtentRef, ObjectStoreSpec, ShadowTier, TierHealthState, TierSpec } from './tier';

export interface ObjectTierOptions {
  /** TCP connect timeout per attempt (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Whole request/response timeout per attempt (default 5000 ms: a 1 MiB extent on a slow link). */
  requestTimeoutMs?: number;
  /** Attempts per request including the first (default 2). */
  maxAttempts?: number;
  /** Consecutive service errors (5xx, access denied...) after which the tier is 'failed' (default 3). */
  failAfterErrors?: number;
  /** fd cache bound of the local cache directory tier. */
  cacheMaxOpenFds?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
const DEFAULT_MAX_ATTEMPTS = 2;
const DEFAULT_FAIL_AFTER_ERRORS = 3;
/** Added to the per-attempt budget for retry backoff when computing the hard deadline. */
const RETRY_BACKOFF_BUDGET_MS = 500;
/** S3's limit for one DeleteObjects request. */
const DELETE_BATCH_KEYS = 1000;

/** Errors that mean "we could not talk to the endpoint" (as opposed to "it said no"). */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND',
  'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'ESOCKETTIMEDOUT', 'ERR_SOCKET_CONNECTION_TIMEOUT',
]);
const NETWORK_ERROR_NAMES = new Set(['TimeoutError', 'AbortError', 'RequestTimeout', 'RequestTimeoutException']);

type Failure = 'missing' | 'network' | 'service';

/**
 * The AWS SDK takes ~100 ms of CPU to load (most of what a mount's start-up spent loading modules):
 * loaded when the first object tier is constructed, so volumes without one never pay for it.
 */
function loadS3Sdk(): typeof S3 {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@aws-sdk/client-s3') as typeof S3;
}

export class ObjectTier implements ShadowTier {
  readonly store: ObjectStoreSpec;
  /** The local cache; callers may use its fd API (acquireFd) for cached copies. */
  readonly cache: DirectoryTier;
  private readonly label: string;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly failAfterErrors: number;
  private readonly deadlineMs: number;

  private readonly sdk = loadS3Sdk();
  private client: S3Client | undefined;
  /** Sizes of the objects in the bucket under our prefix. */
  private readonly objects = new CopyInventory();
  /** Cached copies in least-recently-used-first order (re-inserted on use). */
  private readonly cacheLru = new Map<string, ExtentRef>();
  private readonly locks = new KeyedMutex();
  /** Work that outlives the call that started it (cache fills, evictions); awaited by close(). */
  private readonly background = new Set<Promise<void>>();
  private evicting = false;

  private unreachable: string | undefined;
  private errorStreak = 0;
  private requests = 0;

  constructor(readonly spec: TierSpec, options: ObjectTierOptions = {}) {
    if (!spec.object) throw new ShadowfsError(`tier ${spec.name}: class object needs an object store definition`);
    this.store = spec.object;
    this.label = `tier ${spec.name}`;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.failAfterErrors = Math.max(1, options.failAfterErrors ?? DEFAULT_FAIL_AFTER_ERRORS);
    this.deadlineMs = this.maxAttempts * (this.connectTimeoutMs + this.requestTimeoutMs) + RETRY_BACKOFF_BUDGET_MS;
    this.cache = new DirectoryTier(
      {
        name: `${spec.name}-cache`,
        class: spec.class,
        path: this.store.cacheDir,
        capacityBytes: this.store.cacheCapacityBytes,
        costPerGiBMonth: 0,
      },
      { label: `tier ${spec.name}: cache`, maxOpenFds: options.cacheMaxOpenFds },
    );
  }

  health(): TierHealthState {
    if (this.unreachable !== undefined || this.errorStreak >= this.failAfterErrors) return 'failed';
    return this.errorStreak > 0 ? 'suspect' : 'healthy';
  }

  /** Why the tier is failed, if it is (for status output). */
  failureReason(): string | undefined {
    if (this.unreachable !== undefined) return this.unreachable;
    return this.errorStreak >= this.failAfterErrors ? `${this.errorStreak} request errors in a row` : undefined;
  }

  /** Requests sent to the endpoint so far (metrics; tests use it to prove a read stayed local). */
  requestCount(): number {
    return this.requests;
  }

  async open(owner?: string): Promise<void> {
    const { endpoint, bucket } = this.store;
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new ShadowfsError(`${this.label}: bad endpoint URL "${endpoint}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ShadowfsError(`${this.label}: bad endpoint URL "${endpoint}" (expected http:// or https://)`);
    }
    if (!bucket) throw new ShadowfsError(`${this.label}: no bucket given`);
    if (!isValidPrefix(this.store.prefix)) {
      throw new ShadowfsError(`${this.label}: bad key prefix "${this.store.prefix}"`);
    }

    this.client?.destroy();
    this.client = new this.sdk.S3Client({
      endpoint,
      region: this.store.region,
      forcePathStyle: this.store.forcePathStyle,
      maxAttempts: this.maxAttempts,
      // Credentials: the SDK's default provider chain (env, shared config, instance role...).
      requestHandler: {
        connectionTimeout: this.connectTimeoutMs,
        requestTimeout: this.requestTimeoutMs,
        throwOnRequestTimeout: true,
      },
      // Checksums only where S3 requires them: many S3-compatible stores reject the newer
      // default CRC headers. Integrity is checked end to end by the extent map's checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.unreachable = undefined;
    this.errorStreak = 0;

    await this.cache.open(owner);
    try {
      await this.call('HeadBucket', undefined, (signal) =>
        this.s3().send(new this.sdk.HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal }),
      );
    } catch (err) {
      throw new ShadowfsError(this.describeOpenFailure(err));
    }
    if (owner !== undefined) await this.claimPrefix(owner);

    this.objects.clear();
    try {
      for await (const copy of this.list()) this.objects.set(copy, copy.sizeBytes);
    } catch (err) {
      throw new ShadowfsError(`${this.label}: cannot list ${bucket}/${this.store.prefix} at ${endpoint}: ${message(err)}`);
    }
    await this.reconcileCache();
  }

  async disown(volumeId: string): Promise<string | undefined> {
    const cacheNote = await this.cache.disown(volumeId);
    const key = `${this.store.prefix}${OWNER_MARK}`;
    // An unreachable endpoint leaves the mark, which only this volume can then use: the operator is told.
    const failed = await this.call('DeleteObject', key, (signal) =>
      this.s3().send(new this.sdk.DeleteObjectCommand({ Bucket: this.store.bucket, Key: key }), { abortSignal: signal }),
    ).then(() => undefined, (err: Error) => err.message);
    if (failed === undefined) return cacheNote;
    return `the owner mark ${this.store.bucket}/${key} at ${this.store.endpoint} could not be deleted (${failed}): until someone deletes it, no other volume can use that bucket and prefix`;
  }

  /** The cache directory and the bucket's prefix both carry the owner mark. */
  async claim(volumeId: string): Promise<void> {
    await this.cache.claim(volumeId);
    await this.claimPrefix(volumeId);
  }

  private async claimPrefix(volumeId: string): Promise<void> {
    const { bucket, prefix } = this.store;
    const key = `${prefix}${OWNER_MARK}`;
    let found: string | undefined;
    try {
      found = await this.call('GetObject', key, async (signal) => {
        const res = await this.s3().send(new this.sdk.GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
        return res.Body ? (await res.Body.transformToString()).trim() : '';
      });
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw new ShadowfsError(`${this.label}: cannot read ${bucket}/${key}: ${message(err)}`);
    }
    if (found !== undefined) {
      if (found !== volumeId) throw ownedByAnother(this.label, `${bucket}/${prefix}`);
      return;
    }
    const body = Buffer.from(`${volumeId}\n`);
    try {
      await this.call('PutObject', key, (signal) =>
        this.s3().send(new this.sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }), { abortSignal: signal }),
      );
    } catch (err) {
      throw new ShadowfsError(`${this.label}: cannot write ${bucket}/${key}: ${message(err)}`);
    }
  }

  /** Resolves once background work (cache fills after a miss or an upload, evictions) is done. */
  async whenIdle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  async close(): Promise<void> {
    await this.whenIdle();
    await this.cache.close();
    this.client?.destroy();
    this.client = undefined;
  }

  /**
   * HeadBucket: the watchdog's probe, and the only way back to healthy once failed. Resolves to
   * the resulting health (never rejects).
   */
  async probe(): Promise<TierHealthState> {
    if (!this.client) return 'failed';
    try {
      await this.call('HeadBucket', undefined, (signal) =>
        this.s3().send(new this.sdk.HeadBucketCommand({ Bucket: this.store.bucket }), { abortSignal: signal }),
      );
      this.unreachable = undefined;
      this.errorStreak = 0;
    } catch (err) {
      // call() already judged network errors; a missing bucket is as bad: nothing we hold is there.
      if (errorCode(err) === 'ENOENT') this.unreachable = `bucket ${this.store.bucket} not found`;
    }
    return this.health();
  }

  usedBytes(): number {
    return this.objects.usedBytes();
  }

  freeBytes(): number {
    return Math.max(0, this.spec.capacityBytes - this.objects.usedBytes());
  }

  /** Whether a copy is in the local cache (a read of it will not touch the network). */
  isCached(ref: ExtentRef): boolean {
    return this.cache.has(ref);
  }

  async read(ref: ExtentRef, offsetInExtent: number, length: number, into: Buffer, intoOffset: number): Promise<number> {
    assertExtentRef(ref);
    if (length <= 0) return 0;
    if (!Number.isSafeInteger(offsetInExtent) || offsetInExtent < 0) throw new FsError('EINVAL', `read: bad offset ${offsetInExtent}`);
    if (intoOffset < 0 || intoOffset + length > into.length) throw new FsError('EINVAL', 'read: target buffer too small');
    const cached = await this.readCached(ref, offsetInExtent, length, into, intoOffset);
    if (cached !== undefined) return cached;
    const data = await this.fetch(ref);
    const n = Math.max(0, Math.min(length, data.length - offsetInExtent));
    data.copy(into, intoOffset, offsetInExtent, offsetInExtent + n);
    return n;
  }

  async put(ref: ExtentRef, data: Buffer): Promise<void> {
    assertExtentRef(ref);
    this.failFast();
    await this.whileLocked(ref, async () => {
      await this.upload(ref, data);
      return data;
    });
  }

  /** Read-modify-write of the whole object: S3 has no partial writes. Always durable (`sync` moot). */
  async patch(ref: ExtentRef, offsetInExtent: number, data: Buffer, _sync: boolean): Promise<void> {
    assertExtentRef(ref);
    if (offsetInExtent < 0) throw new FsError('EINVAL', 'patch: negative offset');
    this.failFast();
    await this.whileLocked(ref, async () => {
      const current = await this.loadLocked(ref);
      const next = Buffer.alloc(Math.max(current.length, offsetInExtent + data.length));
      current.copy(next);
      data.copy(next, offsetInExtent);
      await this.upload(ref, next);
      return next;
    });
  }

  async truncate(ref: ExtentRef, length: number): Promise<void> {
    assertExtentRef(ref);
    if (!Number.isSafeInteger(length) || length < 0) throw new FsError('EINVAL', `truncate: bad length ${length}`);
    this.failFast();
    await this.whileLocked(ref, async () => {
      const current = await this.loadLocked(ref);
      const next = Buffer.alloc(length);
      current.copy(next, 0, 0, Math.min(length, current.length));
      await this.upload(ref, next);
      return next;
    });
  }

  async remove(ref: ExtentRef): Promise<void> {
    assertExtentRef(ref);
    const key = refKey(ref);
    await this.locks.run(key, async () => {
      // Cache first: it must never hold a copy the bucket lacks (reconcileCache covers a crash).
      await this.dropCached(ref);
      this.failFast();
      await this.call('DeleteObject', this.keyOf(ref), (signal) =>
        this.s3().send(new this.sdk.DeleteObjectCommand({ Bucket: this.store.bucket, Key: this.keyOf(ref) }), {
          abortSignal: signal,
        }),
      );
      this.objects.delete(ref);
    });
  }

  async removeFile(fileId: string): Promise<void> {
    assertFileId(fileId);
    await this.cache.removeFile(fileId);
    for (const key of [...this.cacheLru.keys()]) if (key.startsWith(`${fileId}/`)) this.cacheLru.delete(key);
    this.failFast();
    // List rather than trust the inventory: an upload that failed half way may still have landed.
    const keys: string[] = [];
    for await (const copy of this.listUnder(`${this.store.prefix}${fileId}/`)) keys.push(this.keyOf(copy));
    for (let i = 0; i < keys.length; i += DELETE_BATCH_KEYS) {
      const batch = keys.slice(i, i + DELETE_BATCH_KEYS);
      const res = await this.call('DeleteObjects', `${this.store.prefix}${fileId}/`, (signal) =>
        this.s3().send(
          new this.sdk.DeleteObjectsCommand({
            Bucket: this.store.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
          { abortSignal: signal },
        ),
      );
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        throw new FsError('EIO', `${this.label}: could not delete ${failed.length} objects of ${fileId}: ${failed[0].Message ?? failed[0].Code ?? '?'}`);
      }
    }
    for (const index of this.objects.indexesOf(fileId)) this.objects.delete({ fileId, index });
  }

  /** Every change is uploaded whole before it resolves: nothing is ever pending. */
  async syncFile(fileId: string): Promise<void> {
    assertFileId(fileId);
  }

  holds(ref: ExtentRef): boolean {
    return this.objects.sizeOf(ref) !== undefined;
  }

  async *list(): AsyncIterable<ExtentRef & { sizeBytes: number }> {
    yield* this.listUnder(this.store.prefix);
  }

  // ---- internals -------------------------------------------------------------------------------

  private s3(): S3Client {
    if (!this.client) throw new FsError('EIO', `${this.label}: not open`);
    return this.client;
  }

  private keyOf(ref: ExtentRef): string {
    return `${this.store.prefix}${ref.fileId}/${ref.index}`;
  }

  private failFast(): void {
    if (this.health() !== 'failed') return;
    throw new FsError('EIO', `${this.label}: failed (${this.failureReason() ?? '?'}); waiting for a successful probe`);
  }

  /** A cache hit (no network), or undefined on a miss. Cache trouble is a miss, not an error. */
  private async readCached(ref: ExtentRef, offset: number, length: number, into: Buffer, intoOffset: number): Promise<number | undefined> {
    if (!this.cache.has(ref)) return undefined;
    try {
      const n = await this.cache.read(ref, offset, length, into, intoOffset);
      this.touch(ref);
      return n;
    } catch {
      return undefined; // evicted under us, or the cache device is in trouble: go to the bucket
    }
  }

  /**
   * The whole copy, from the cache if it got there meanwhile, else one GET. Resolves as soon as
   * the bytes are here; the cache fill continues in the background under the extent's lock, so a
   * concurrent put can never be overwritten by older downloaded bytes.
   */
  private fetch(ref: ExtentRef): Promise<Buffer> {
    this.failFast();
    return new Promise<Buffer>((resolve, reject) => {
      let served = false;
      const work = this.locks.run(refKey(ref), async () => {
        const data = await this.loadLocked(ref);
        served = true;
        resolve(data);
        await this.fillCache(ref, data);
      });
      this.track(
        work.catch((err: unknown) => {
          if (!served) reject(err);
        }),
      );
    });
  }

  /** Run a mutation under the extent's lock; `fn` returns the new bytes, which then fill the cache. */
  private whileLocked(ref: ExtentRef, fn: () => Promise<Buffer>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let stored = false;
      const work = this.locks.run(refKey(ref), async () => {
        const data = await fn();
        stored = true;
        resolve();
        await this.fillCache(ref, data);
      });
      this.track(
        work.catch((err: unknown) => {
          if (!stored) reject(err);
        }),
      );
    });
  }

  /** Current bytes of a copy (caller holds its lock): cache if present, else GET. */
  private async loadLocked(ref: ExtentRef): Promise<Buffer> {
    const cachedSize = this.cache.sizeOf(ref);
    if (cachedSize !== undefined) {
      const buf = Buffer.alloc(cachedSize);
      const n = await this.readCached(ref, 0, cachedSize, buf, 0);
      if (n !== undefined) return buf.subarray(0, n);
    }
    this.failFast();
    const key = this.keyOf(ref);
    return this.call('GetObject', key, async (signal) => {
      const res = await this.s3().send(new this.sdk.GetObjectCommand({ Bucket: this.store.bucket, Key: key }), {
        abortSignal: signal,
      });
      if (!res.Body) return Buffer.alloc(0);
      const body = res.Body;
      // The deadline aborts the request; make sure a stalled body stream dies with it.
      const onAbort = (): void => (body as { destroy?: () => void }).destroy?.();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const bytes = await body.transformToByteArray();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    });
  }

  /** PutObject (caller holds the lock); the cached copy is dropped first and refilled after. */
  private async upload(ref: ExtentRef, data: Buffer): Promise<void> {
    // Drop the old cached copy before the bucket changes: if the upload fails half way we do not
    // know which version the bucket holds, and the cache must never disagree with it.
    await this.dropCached(ref);
    const key = this.keyOf(ref);
    await this.call('PutObject', key, (signal) =>
      this.s3().send(
        new this.sdk.PutObjectCommand({ Bucket: this.store.bucket, Key: key, Body: data, ContentLength: data.length }),
        { abortSignal: signal },
      ),
    );
    this.objects.set(ref, data.length);
  }

  /** Put bytes the bucket holds into the cache (caller holds the lock). Best effort. */
  private async fillCache(ref: ExtentRef, data: Buffer): Promise<void> {
    if (data.length > this.store.cacheCapacityBytes) return;
    // Used now (put or read), not when the cache file lands: fills finish out of order under
    // load, and the one made first would pass for the more recent.
    this.touch(ref);
    try {
      await this.cache.put(ref, data);
    } catch {
      // A failed cache put leaves the previous file (if any) in place: it must not survive.
      await this.dropCached(ref).catch(() => undefined);
      return;
    }
    this.scheduleEviction();
  }

  private async dropCached(ref: ExtentRef): Promise<void> {
    this.cacheLru.delete(refKey(ref));
    if (this.cache.has(ref)) await this.cache.remove(ref);
  }

  private touch(ref: ExtentRef): void {
    const key = refKey(ref);
    this.cacheLru.delete(key);
    this.cacheLru.set(key, { fileId: ref.fileId, index: ref.index });
  }

  /** Evict least recently used cached copies until the cache fits its capacity. One at a time. */
  private scheduleEviction(): void {
    if (this.evicting || this.cache.usedBytes() <= this.store.cacheCapacityBytes) return;
    this.evicting = true;
    this.track(
      (async () => {
        try {
          while (this.cache.usedBytes() > this.store.cacheCapacityBytes) {
            const oldest = this.cacheLru.entries().next();
            if (oldest.done) break;
            const [key, ref] = oldest.value;
            this.cacheLru.delete(key);
            await this.locks.run(key, async () => {
              if (this.cacheLru.has(key)) return; // used again while we waited: keep it
              await this.cache.remove(ref);
            });
          }
        } catch {
          // The cache device is in trouble; its own health says so. Try again on the next fill.
        } finally {
          this.evicting = false;
        }
      })(),
    );
  }

  /** At open: drop cached copies the bucket does not hold (same size), then enforce capacity. */
  private async reconcileCache(): Promise<void> {
    this.cacheLru.clear();
    for await (const copy of this.cache.list()) {
      if (this.objects.sizeOf(copy) === copy.sizeBytes) this.touch(copy);
      else await this.cache.remove(copy);
    }
    this.scheduleEviction();
  }

  private track(work: Promise<void>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  private async *listUnder(prefix: string): AsyncGenerator<ExtentRef & { sizeBytes: number }> {
    let token: string | undefined;
    do {
      const res = await this.call('ListObjectsV2', prefix, (signal) =>
        this.s3().send(
          new this.sdk.ListObjectsV2Command({ Bucket: this.store.bucket, Prefix: prefix, ContinuationToken: token }),
          { abortSignal: signal },
        ),
      );
      for (const obj of res.Contents ?? []) {
        const ref = this.parseKey(obj.Key ?? '');
        if (ref) yield { ...ref, sizeBytes: obj.Size ?? 0 };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  private parseKey(key: string): ExtentRef | undefined {
    if (!key.startsWith(this.store.prefix)) return undefined;
    const parts = key.slice(this.store.prefix.length).split('/');
    if (parts.length !== 2 || !isValidFileId(parts[0])) return undefined;
    const index = parseIndex(parts[1]);
    return index === undefined ? undefined : { fileId: parts[0], index };
  }

  /**
   * One S3 request with a hard deadline (aborts it), feeding the outcome into health and mapping
   * failures to FsError: ENOENT for a missing object, EIO for everything else.
   */
  private async call<T>(op: string, key: string | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`no answer within ${this.deadlineMs} ms`);
        err.name = 'TimeoutError';
        controller.abort(err);
        reject(err);
      }, this.deadlineMs);
    });
    this.requests++;
    try {
      const result = await Promise.race([fn(controller.signal), deadline]);
      this.unreachable = undefined;
      this.errorStreak = 0;
      return result;
    } catch (err) {
      const failure = classify(err);
      const where = `${this.label}: ${op}${key !== undefined ? ` ${key}` : ''}`;
      if (failure === 'network') this.unreachable = `${this.store.endpoint} unreachable: ${message(err)}`;
      else if (failure === 'service') this.errorStreak++;
      const fsErr =
        failure === 'missing' ? new FsError('ENOENT', `${where}: not found`) : new FsError('EIO', `${where}: ${message(err)}`);
      (fsErr as Error & { cause?: unknown }).cause = err;
      throw fsErr;
    } finally {
      clearTimeout(timer);
    }
  }

  private describeOpenFailure(err: unknown): string {
    const { endpoint, bucket } = this.store;
    const cause = (err as { cause?: unknown }).cause ?? err;
    const status = statusOf(cause);
    const name = cause instanceof Error ? cause.name : '';
    if (status === 404 || name === 'NotFound' || name === 'NoSuchBucket' || errorCode(err) === 'ENOENT') {
      return `${this.label}: bucket ${bucket} not found at ${endpoint}`;
    }
    if (name === 'CredentialsProviderError') {
      return `${this.label}: no AWS credentials for ${endpoint} (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile): ${message(cause)}`;
    }
    if (status === 403 || status === 401) {
      return `${this.label}: access to bucket ${bucket} at ${endpoint} denied (check the AWS credentials)`;
    }
    if (classify(cause) === 'network') return `${this.label}: endpoint ${endpoint} unreachable: ${message(cause)}`;
    return `${this.label}: bucket ${bucket} at ${endpoint} not usable: ${message(cause)}`;
  }
}

function statusOf(err: unknown): number | undefined {
  const meta = (err as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata;
  return typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

function classify(err: unknown): Failure {
  const name = err instanceof Error ? err.name : '';
  if (name === 'NoSuchKey' || name === 'NotFound' || statusOf(err) === 404) return 'missing';
  if (name === 'CredentialsProviderError') return 'service'; // reachable or not, we cannot sign
  const code = errorCode(err) ?? errorCode((err as { cause?: unknown } | undefined)?.cause);
  if (NETWORK_ERROR_NAMES.has(name) || (code !== undefined && NETWORK_ERROR_CODES.has(code))) return 'network';
  // No HTTP status at all: the request never got an answer.
  if (statusOf(err) === undefined && !(err instanceof FsError)) return 'network';
  return 'service';
}

function message(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  const code = errorCode(err);
  return (code && !text.includes(code) ? `${code}: ${text}` : text).split('\n')[0];
}

/** Key prefixes: empty or path-like without "..", so keys stay inside our namespace. */
function isValidPrefix(prefix: string): boolean {
  return prefix === '' || (/^[0-9A-Za-z_.\-/]+$/.test(prefix) && !prefix.split('/').includes('..') && !prefix.startsWith('/'));
}
