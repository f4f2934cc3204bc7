/**
 * One tier's copies, least recently read first: what eviction takes from the old end.
 *
 * Compact because a tier may hold millions of copies for the life of a mount: a Map keyed by a
 * `fileId/index` string took ~61 B of V8 heap per copy, ~90 once reads had moved them (deleted
 * entries linger in a Map until it rehashes). Here a copy is a slot in typed arrays: 24 B, plus
 * 2 B of hash buckets and up to a quarter spare, ~32 B per copy at 1 M copies; outside the V8
 * heap, so the GC never traces them, and a read allocates nothing. The slots form a doubly linked
 * list in recency order, found through a chained hash on (fileNo, index).
 * fileIds are interned per tier to small numbers (fileNo) with a count of entries each (~50 B per
 * file with copies on the tier); a number whose file has no entry left is reused, so the number
 * space never runs out however many files come and go. Indexes are stored as doubles: every
 * extent index (a non-negative safe integer) is exact, so there is no range limit and no
 * fallback path.
 *
 * Why not a Set of `fileNo * 2**32 + index` numbers: such keys are above V8's small-integer
 * range, so each is a 16 B heap object besides its place in the Set (~37 B per copy, ~58 once
 * reads moved them), every touch allocates one, and indexes of 2**32 or more need a second
 * structure.
 *
 * Iteration follows Map's rules: entries deleted before they are reached are not visited, entries
 * added (or moved to the newest end) meanwhile are. Limits: fewer than 2**31 entries per tier.
 */

/** No slot: end of a list or chain. */
const NIL = -1;
const MIN_CAPACITY = 16;
/**
 * Slot arrays grow by a quarter: at least 80% used after a grow (doubling would leave half idle at
 * the worst), and the old and new arrays held at once during the copy are 2.25 times the data, not 3.
 */
const GROWTH = 1.25;
/** Slots per hash bucket at full capacity: chains of two on average are as quick to walk and halve the buckets. */
const SLOTS_PER_BUCKET = 2;

export interface CopyRef {
  fileId: string;
  index: number;
}

/** Where a live iteration will go next; moved on when that slot is unlinked. */
interface Cursor {
  next: number;
}

/** Mixes (fileNo, index) into 32 bits; consecutive indexes of one file spread over the buckets. */
function hashOf(fileNo: number, index: number): number {
  const lo = index >>> 0;
  const hi = (index / 4294967296) >>> 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x27d4eb2d), 0x9e3779b1) ^ Math.imul(fileNo + 0x632be5ab, 0x85ebca77);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h;
}

function bucketsFor(capacity: number): Int32Array {
  let n = 1;
  while (n * SLOTS_PER_BUCKET < capacity) n *= 2;
  return new Int32Array(n).fill(NIL);
}

export class CopyLru {
  // Interned fileIds: fileNo → fileId and entry count; numbers of files with no entry are reused.
  private readonly fileNos = new Map<string, number>();
  private readonly fileIdOf: (string | undefined)[] = [];
  private readonly entriesOf: number[] = [];
  private readonly freeFileNos: number[] = [];

  // Per slot. `prev`/`next`: the recency list (oldest at head); a free slot's `next` links the free list.
  private fileNoOf: Uint32Array = new Uint32Array(0);
  private indexOf: Float64Array = new Float64Array(0);
  private prev: Int32Array = new Int32Array(0);
  private next: Int32Array = new Int32Array(0);
  /** Next slot in the same hash bucket. */
  private chain: Int32Array = new Int32Array(0);
  /** First slot of each bucket; a power of two, at least capacity / SLOTS_PER_BUCKET. */
  private buckets: Int32Array = new Int32Array(0);

  private head = NIL;
  private tail = NIL;
  private freeHead = NIL;
  /** Slots ever handed out below this; the ones above are untouched capacity. */
  private top = 0;
  private count = 0;
  private readonly cursors = new Set<Cursor>();

  get size(): number {
    return this.count;
  }

  /** File numbers handed out so far: the most files this tier held entries of at once (numbers are reused). */
  get fileNumberSpan(): number {
    return this.fileIdOf.length;
  }

  has(fileId: string, index: number): boolean {
    const fileNo = this.fileNos.get(fileId);
    return fileNo !== undefined && this.find(fileNo, index) !== NIL;
  }

  /** A read of the copy: it becomes the newest, added if it was not there. */
  touch(fileId: string, index: number): void {
    const fileNo = this.fileNos.get(fileId);
    const s = fileNo === undefined ? NIL : this.find(fileNo, index);
    if (s === NIL) return this.insert(fileId, index);
    if (s === this.tail) return;
    this.unlink(s);
    this.linkAtTail(s);
  }

  /** Adds the copy as the newest if it is not there; one that is keeps its place (Map.set's rule). */
  add(fileId: string, index: number): void {
    if (!this.has(fileId, index)) this.insert(fileId, index);
  }

  /** False if it was not there. */
  delete(fileId: string, index: number): boolean {
    const fileNo = this.fileNos.get(fileId);
    if (fileNo === undefined) return false;
    const s = this.find(fileNo, index);
    if (s === NIL) return false;
    this.unlink(s);
    this.unhash(s);
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this.count--;
    this.release(fileNo);
    this.maybeShrink();
    return true;
  }

  /** The least recently read copy, or undefined when there is none. */
  oldest(): CopyRef | undefined {
    return this.head === NIL ? undefined : this.refAt(this.head);
  }

  /** Least recently read first; each as a new object. See the file comment for changes meanwhile. */
  *[Symbol.iterator](): Generator<CopyRef, void, undefined> {
    const cursor: Cursor = { next: this.head };
    this.cursors.add(cursor);
    try {
      while (cursor.next !== NIL) {
        const s = cursor.next;
        cursor.next = this.next[s];
        yield this.refAt(s);
      }
    } finally {
      this.cursors.delete(cursor);
    }
  }

  private refAt(s: number): CopyRef {
    return { fileId: this.fileIdOf[this.fileNoOf[s]] as string, index: this.indexOf[s] };
  }

  private find(fileNo: number, index: number): number {
    for (let s = this.buckets.length === 0 ? NIL : this.buckets[hashOf(fileNo, index) & (this.buckets.length - 1)]; s !== NIL; s = this.chain[s]) {
      if (this.fileNoOf[s] === fileNo && this.indexOf[s] === index) return s;
    }
    return NIL;
  }

  private insert(fileId: string, index: number): void {
    const fileNo = this.intern(fileId);
    let s = this.freeHead;
    if (s !== NIL) this.freeHead = this.next[s];
    else {
      if (this.top === this.fileNoOf.length) this.resize(Math.max(MIN_CAPACITY, Math.ceil(this.fileNoOf.length * GROWTH)));
      s = this.top++;
    }
    this.fileNoOf[s] = fileNo;
    this.indexOf[s] = index;
    this.hash(s);
    this.linkAtTail(s);
    this.count++;
  }

  private intern(fileId: string): number {
    let fileNo = this.fileNos.get(fileId);
    if (fileNo === undefined) {
      fileNo = this.freeFileNos.pop() ?? this.fileIdOf.length;
      this.fileNos.set(fileId, fileNo);
      this.fileIdOf[fileNo] = fileId;
      this.entriesOf[fileNo] = 0;
    }
    this.entriesOf[fileNo]++;
    return fileNo;
  }

  /** One entry of the file went; with its last, its number is free for another file. */
  private release(fileNo: number): void {
    if (--this.entriesOf[fileNo] > 0) return;
    this.fileNos.delete(this.fileIdOf[fileNo] as string);
    this.fileIdOf[fileNo] = undefined;
    this.freeFileNos.push(fileNo);
  }

  private linkAtTail(s: number): void {
    this.prev[s] = this.tail;
    this.next[s] = NIL;
    if (this.tail === NIL) this.head = s;
    else this.next[this.tail] = s;
    this.tail = s;
    // An iteration standing at the end goes on to the new newest (as a Map's iterator would).
    for (const c of this.cursors) if (c.next === NIL) c.next = s;
  }

  private unlink(s: number): void {
    const p = this.prev[s];
    const n = this.next[s];
    if (p === NIL) this.head = n;
    else this.next[p] = n;
    if (n === NIL) this.tail = p;
    else this.prev[n] = p;
    for (const c of this.cursors) if (c.next === s) c.next = n;
  }

  private hash(s: number): void {
    const b = hashOf(this.fileNoOf[s], this.indexOf[s]) & (this.buckets.length - 1);
    this.chain[s] = this.buckets[b];
    this.buckets[b] = s;
  }

  private unhash(s: number): void {
    const b = hashOf(this.fileNoOf[s], this.indexOf[s]) & (this.buckets.length - 1);
    if (this.buckets[b] === s) {
      this.buckets[b] = this.chain[s];
      return;
    }
    let q = this.buckets[b];
    while (this.chain[q] !== s) q = this.chain[q];
    this.chain[q] = this.chain[s];
  }

  /** New slot arrays of `capacity`, holding the live slots at the same numbers (top ≤ capacity). */
  private resize(capacity: number): void {
    const grow = <T extends Uint32Array | Float64Array | Int32Array>(old: T, fresh: T): T => {
      fresh.set(old.subarray(0, this.top));
      return fresh;
    };
    this.fileNoOf = grow(this.fileNoOf, new Uint32Array(capacity));
    this.indexOf = grow(this.indexOf, new Float64Array(capacity));
    this.prev = grow(this.prev, new Int32Array(capacity));
    this.next = grow(this.next, new Int32Array(capacity));
    this.chain = new Int32Array(capacity);
    this.buckets = bucketsFor(capacity);
    for (let s = this.head; s !== NIL; s = this.next[s]) this.hash(s);
  }

  /**
   * A tier that emptied (shrunk, drained) gives its memory back: below a quarter full, the live
   * slots are renumbered 0.. in list order into arrays twice their number. Not while an iteration
   * is live (its cursor holds a slot number); a later delete tries again.
   */
  private maybeShrink(): void {
    const capacity = this.fileNoOf.length;
    if (capacity <= MIN_CAPACITY || this.count * 4 > capacity || this.cursors.size > 0) return;
    const fileNoOf = this.fileNoOf;
    const indexOf = this.indexOf;
    const next = this.next;
    const from = this.head;
    const n = this.count;
    const size = Math.max(MIN_CAPACITY, n * 2);
    this.fileNoOf = new Uint32Array(size);
    this.indexOf = new Float64Array(size);
    this.prev = new Int32Array(size);
    this.next = new Int32Array(size);
    this.chain = new Int32Array(size);
    this.buckets = bucketsFor(size);
    let i = 0;
    for (let s = from; s !== NIL; s = next[s], i++) {
      this.fileNoOf[i] = fileNoOf[s];
      this.indexOf[i] = indexOf[s];
      this.prev[i] = i - 1;
      this.next[i] = i + 1 < n ? i + 1 : NIL;
      this.hash(i);
    }
    this.head = n > 0 ? 0 : NIL;
    this.tail = n - 1 >= 0 ? n - 1 : NIL;
    this.top = n;
    this.freeHead = NIL;
  }
}
