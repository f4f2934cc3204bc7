/**
 * Per-volume I/O time series: requests, bytes and latency in 1 s buckets, rolled up into 1 min and
 * 1 h buckets. Each resolution is a fixed-size ring, so memory is bounded whatever the uptime:
 * by default one hour of seconds, two weeks of minutes (enough for a weekly seasonal lag) and
 * ninety days of hours.
 *
 * Rollup is done on insert (a sample adds to its second, minute and hour at once) rather than at
 * bucket boundaries: the result is the same and nothing is lost if the process stops mid-minute.
 */

/** One bucket's counters. Latency is a sum so buckets can be merged and averaged exactly. */
export interface IoBucket {
  readOps: number;
  writeOps: number;
  readBytes: number;
  writeBytes: number;
  latencySumUs: number;
  latencyCount: number;
}

export type SeriesMetric = 'iops' | 'readIops' | 'writeIops' | 'bytesPerS' | 'latencyUs';
export type Resolution = 'second' | 'minute' | 'hour';

export const RESOLUTION_US: Readonly<Record<Resolution, number>> = {
  second: 1_000_000,
  minute: 60_000_000,
  hour: 3_600_000_000,
};

export interface SeriesRetention {
  seconds: number;
  minutes: number;
  hours: number;
}

export const DEFAULT_RETENTION: Readonly<SeriesRetention> = { seconds: 3600, minutes: 14 * 1440, hours: 90 * 24 };

const FIELDS = 6;

/** A ring of buckets indexed by bucket number (time / resolution). */
export class BucketRing {
  /** Bucket number held in each slot; -1 when empty. */
  private readonly numbers: Float64Array;
  private readonly values: Float64Array;
  /** Slots changed since the last `takeDirty` (persistence writes only these). */
  private readonly dirty = new Set<number>();
  private newest = -1;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error(`BucketRing capacity must be a positive integer, got ${capacity}`);
    this.numbers = new Float64Array(capacity).fill(-1);
    this.values = new Float64Array(capacity * FIELDS);
  }

  get newestBucket(): number {
    return this.newest;
  }

  /** Add to bucket `n`. Returns the bucket number evicted from the slot, or -1. */
  add(n: number, b: Readonly<IoBucket>): number {
    if (this.newest >= 0 && n <= this.newest - this.capacity) return -1; // older than retention
    const slot = n % this.capacity;
    let evicted = -1;
    if (this.numbers[slot] !== n) {
      evicted = this.numbers[slot];
      this.numbers[slot] = n;
      this.values.fill(0, slot * FIELDS, slot * FIELDS + FIELDS);
    }
    const o = slot * FIELDS;
    this.values[o] += b.readOps;
    this.values[o + 1] += b.writeOps;
    this.values[o + 2] += b.readBytes;
    this.values[o + 3] += b.writeBytes;
    this.values[o + 4] += b.latencySumUs;
    this.values[o + 5] += b.latencyCount;
    if (n > this.newest) this.newest = n;
    this.dirty.add(slot);
    return evicted;
  }

  /** Replace bucket `n` (used when loading persisted buckets). */
  set(n: number, b: Readonly<IoBucket>): void {
    if (this.newest >= 0 && n <= this.newest - this.capacity) return;
    const slot = n % this.capacity;
    this.numbers[slot] = n;
    this.values.fill(0, slot * FIELDS, slot * FIELDS + FIELDS);
    this.add(n, b);
    this.dirty.delete(slot);
  }

  get(n: number): IoBucket | undefined {
    const slot = n % this.capacity;
    if (n < 0 || this.numbers[slot] !== n) return undefined;
    const o = slot * FIELDS;
    const v = this.values;
    return { readOps: v[o], writeOps: v[o + 1], readBytes: v[o + 2], writeBytes: v[o + 3], latencySumUs: v[o + 4], latencyCount: v[o + 5] };
  }

  /** Value of a metric for bucket n; a bucket never written counts as idle (0), latency as NaN. */
  metric(n: number, metric: SeriesMetric, bucketSeconds: number): number {
    const slot = n % this.capacity;
    const present = n >= 0 && this.numbers[slot] === n;
    const o = slot * FIELDS;
    const v = this.values;
    switch (metric) {
      case 'iops':
        return present ? (v[o] + v[o + 1]) / bucketSeconds : 0;
      case 'readIops':
        return present ? v[o] / bucketSeconds : 0;
      case 'writeIops':
        return present ? v[o + 1] / bucketSeconds : 0;
      case 'bytesPerS':
        return present ? (v[o + 2] + v[o + 3]) / bucketSeconds : 0;
      case 'latencyUs':
        return present && v[o + 5] > 0 ? v[o + 4] / v[o + 5] : Number.NaN;
    }
  }

  /** Oldest bucket number still retained. */
  get oldestBucket(): number {
    return this.newest < 0 ? -1 : Math.max(0, this.newest - this.capacity + 1);
  }

  /** Oldest bucket number actually written (-1: none). */
  get oldestStoredBucket(): number {
    const lowest = this.oldestBucket;
    let oldest = -1;
    for (let slot = 0; slot < this.capacity; slot++) {
      const n = this.numbers[slot];
      if (n >= lowest && n >= 0 && (oldest < 0 || n < oldest)) oldest = n;
    }
    return oldest;
  }

  takeDirty(): Array<{ n: number; bucket: IoBucket }> {
    const out: Array<{ n: number; bucket: IoBucket }> = [];
    for (const slot of this.dirty) {
      const n = this.numbers[slot];
      const bucket = this.get(n);
      if (bucket) out.push({ n, bucket });
    }
    this.dirty.clear();
    return out;
  }
}

export class VolumeSeries {
  readonly seconds: BucketRing;
  readonly minutes: BucketRing;
  readonly hours: BucketRing;

  constructor(retention: SeriesRetention = DEFAULT_RETENTION) {
    this.seconds = new BucketRing(retention.seconds);
    this.minutes = new BucketRing(retention.minutes);
    this.hours = new BucketRing(retention.hours);
  }

  /** Record one request (or a pre-aggregated bucket) at `timeUs`. */
  add(timeUs: number, b: Readonly<IoBucket>): void {
    this.seconds.add(Math.floor(timeUs / RESOLUTION_US.second), b);
    this.minutes.add(Math.floor(timeUs / RESOLUTION_US.minute), b);
    this.hours.add(Math.floor(timeUs / RESOLUTION_US.hour), b);
  }

  addRequest(timeUs: number, op: 'R' | 'W', sizeBytes: number, latencyUs?: number): void {
    const isRead = op === 'R';
    this.add(timeUs, {
      readOps: isRead ? 1 : 0,
      writeOps: isRead ? 0 : 1,
      readBytes: isRead ? sizeBytes : 0,
      writeBytes: isRead ? 0 : sizeBytes,
      latencySumUs: latencyUs ?? 0,
      latencyCount: latencyUs === undefined ? 0 : 1,
    });
  }

  ring(resolution: Resolution): BucketRing {
    return resolution === 'second' ? this.seconds : resolution === 'minute' ? this.minutes : this.hours;
  }

  /** Metric values for buckets [fromBucket, toBucket) at a resolution. */
  range(resolution: Resolution, metric: SeriesMetric, fromBucket: number, toBucket: number): number[] {
    const ring = this.ring(resolution);
    const secs = RESOLUTION_US[resolution] / 1e6;
    const out: number[] = [];
    for (let n = fromBucket; n < toBucket; n++) out.push(ring.metric(n, metric, secs));
    return out;
  }
}

export function emptyBucket(): IoBucket {
  return { readOps: 0, writeOps: 0, readBytes: 0, writeBytes: 0, latencySumUs: 0, latencyCount: 0 };
}
