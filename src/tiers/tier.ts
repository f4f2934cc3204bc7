/**
 * The contract every shadow tier implements (directory tiers, the object tier).
 *
 * A tier stores whole extents, one copy per (fileId, extent index). It knows nothing about
 * generations or freshness: the extent map decides which copy is fresh (ARCHITECTURE rule 1),
 * the tier only moves bytes. Every method that changes bytes resolves only once they are durable
 * on the tier, so the extent map may point at them afterwards (data first, then metadata).
 */
export type TierClass = 'nvme' | 'ssd' | 'hdd' | 'object';

/** Lower is faster: the order in which tiers are preferred for reads. */
export const TIER_CLASS_RANK: Readonly<Record<TierClass, number>> = { nvme: 0, ssd: 1, hdd: 2, object: 3 };

/** Default cost per GiB-month by class, used when a tier definition gives none. */
export const DEFAULT_COST_PER_GIB_MONTH: Readonly<Record<TierClass, number>> = {
  nvme: 0.25,
  ssd: 0.1,
  hdd: 0.03,
  object: 0.02,
};

export interface ObjectStoreSpec {
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  forcePathStyle: boolean;
  /** Local cache directory for this tier's extents (reads of cached extents never touch the network). */
  cacheDir: string;
  cacheCapacityBytes: number;
}

export interface TierSpec {
  /** Unique name within a volume, e.g. "nvme" or "ssd2". */
  name: string;
  class: TierClass;
  /** Directory holding the copies (for the object tier: unused, see object.cacheDir). */
  path: string;
  capacityBytes: number;
  costPerGiBMonth: number;
  object?: ObjectStoreSpec;
}

/** Identifies one extent of one file. fileId is stable across renames. */
export interface ExtentRef {
  fileId: string;
  index: number;
}

export type TierHealthState = 'healthy' | 'suspect' | 'failed';

/** A buffer a tier lends for one whole copy (see ShadowTier.copyBuffer). */
export interface CopyBuffer {
  readonly bytes: Buffer;
  /** Done with it: the tier may lend it again. Only once nothing can still write into it. */
  release(): void;
}

export interface ShadowTier {
  readonly spec: TierSpec;
  /** Current health as judged by the tier itself (I/O errors, endpoint reachability). */
  health(): TierHealthState;
  /**
   * Actively check the tier and resolve to the resulting health (never rejects). Directory tiers:
   * still there, still the mount they were, and (after I/O errors) a small write/fsync/read works;
   * object tier: HeadBucket. A tier marked failed by in-band errors gets no foreground traffic, so
   * this is its only way back to healthy: the watchdog calls it periodically.
   */
  probe(): Promise<TierHealthState>;
  /**
   * Create directories, check the tier is usable; throws a ShadowfsError with a clear message if not.
   * With `owner` (a volume id), the tier is claimed for it (see claim) before anything in it is
   * touched: opening walks the tier and removes temporary files a crash left, and another volume's
   * would be copies it is writing right now.
   */
  open(owner?: string): Promise<void>;
  /**
   * Mark the tier as this volume's (an owner mark beside the copies), or throw a ShadowfsError if
   * another volume's mark is there: at mount, each volume removes the copies its map does not
   * name, and those would be the other volume's.
   */
  claim(volumeId: string): Promise<void>;
  /**
   * Remove this volume's owner mark (the tier was drained and leaves the volume): the tier is free
   * again. Resolves with what was left behind for the operator to see to (a mark that could not be
   * removed), else undefined.
   */
  disown(volumeId: string): Promise<string | undefined>;
  close(): Promise<void>;
  /**
   * Read `length` bytes starting `offsetInExtent` bytes into the extent copy into `into[intoOffset..]`.
   * Resolves to the number of bytes read (short at the copy's end). Exactly one read on the tier.
   */
  read(ref: ExtentRef, offsetInExtent: number, length: number, into: Buffer, intoOffset: number): Promise<number>;
  /**
   * Store a whole extent copy, replacing any previous one, atomically and durably. `sync` false
   * (a copy a write made, no more durable than the write itself): atomically, durable once
   * syncFile ran; a tier may still make it durable at once.
   */
  put(ref: ExtentRef, data: Buffer, sync?: boolean): Promise<void>;
  /**
   * Optional: a buffer of `sizeBytes` to read a copy into before `put`ting it here; the tier may
   * write it without copying it first (directory tiers: aligned for direct I/O) and reuses it.
   */
  copyBuffer?(sizeBytes: number): Promise<CopyBuffer>;
  /** Update part of an existing copy in place (write-through); `sync` makes it durable before resolving. */
  patch(ref: ExtentRef, offsetInExtent: number, data: Buffer, sync: boolean): Promise<void>;
  /** Cut an existing copy to `length` bytes. */
  truncate(ref: ExtentRef, length: number): Promise<void>;
  /** Remove a copy; removing a missing copy is not an error. */
  remove(ref: ExtentRef): Promise<void>;
  /** Remove every copy of a file. */
  removeFile(fileId: string): Promise<void>;
  /** Make every patch of this file so far durable. */
  syncFile(fileId: string): Promise<void>;
  /** Bytes currently held (as tracked by the tier, not a directory walk). */
  usedBytes(): number;
  /** Room left under the capacity (0 when at or over it). */
  freeBytes(): number;
  /** Every copy present on the tier (used to reconcile after a crash). */
  list(): AsyncIterable<ExtentRef & { sizeBytes: number }>;
  /** The tier holds a copy of the extent, as its inventory (made when it opened) says. */
  holds(ref: ExtentRef): boolean;
}
