/**
 * Where the extent map keeps its records in memory: rows of 32-bit words in typed arrays, not an
 * object per record and per copy. As objects (a record, a copies array, a copy, a boxed checksum,
 * a Map entry) an extent took ~400 B of V8 heap; a row is 32 B, outside the heap, and a second
 * copy 20 B more. The map works on an ExtentState taken out with `get` and puts it back with
 * `set`: a state is a snapshot, never a live view.
 *
 * Rows live in pages of up to PAGE_ROWS extents per file, so a sparse file costs a page per range
 * it touches (at most one per PAGE_ROWS extents of file), and a small file a small page. A row holds
 * one copy; a page where some extent has a second one gets a side array of second copies (most
 * extents have one copy, on the coverage tier, and the hot ones a second). An extent with more
 * copies, or a generation lag beyond 32 bits, keeps them as objects beside the page.
 */
import { CopyRecord, ExtentRecord } from './record-codec';
import { PAGE_ROWS, PageMap, pageNoOf, rowOf, rowsToReach } from '../util/page-map';

/** An extent's record as the map works on it. */
export interface ExtentState extends ExtentRecord {
  /** True when the persisted record may claim a fresh copy: a write must withdraw it first. */
  persistedFresh: boolean;
  dirty: boolean;
  /** Writes in progress: until they end, copies kept fresh in memory may not be persisted as fresh. */
  writing: number;
}

/** Copies kept in words: the row's, and the page's side array of second copies. */
const COPY_SLOTS = 2;
const COPY_WORDS = 5;
const HEAD_WORDS = 3;
const ROW_WORDS = HEAD_WORDS + COPY_WORDS;
const TWO_32 = 0x1_0000_0000;

// Word 0 of a row.
const PRESENT = 1 << 0;
const PERSISTED_FRESH = 1 << 1;
const DIRTY = 1 << 2;
const WRITTEN = 1 << 3;
const ZEROS = 1 << 4;
/** The copies are in FileExtents.overflow, not in the row. */
const OVERFLOW = 1 << 5;
const COUNT_SHIFT = 8;
// Word 1 and 2: the generation, low and high 32 bits.
// Per copy slot: tier id and flags, generation lag (extent's generation minus the copy's),
// checksum, size, serial.
const TIER_MASK = 0xff;
const HAS_CRC = 1 << 8;
const VERIFIED = 1 << 9;
const MAX_LAG = 0xffff_ffff;

/** A copy slot's words, at `c`, for an extent at `generation`. */
function readCopy(words: Uint32Array, c: number, generation: number): CopyRecord {
  const tierWord = words[c];
  return {
    tierId: tierWord & TIER_MASK,
    generation: generation - words[c + 1],
    crc32: tierWord & HAS_CRC ? words[c + 2] : null,
    sizeBytes: words[c + 3],
    verified: (tierWord & VERIFIED) !== 0,
    serial: words[c + 4],
  };
}

function writeCopy(words: Uint32Array, c: number, copy: CopyRecord, generation: number, serial: number): void {
  words[c] = copy.tierId | (copy.crc32 === null ? 0 : HAS_CRC) | (copy.verified ? VERIFIED : 0);
  words[c + 1] = generation - copy.generation;
  words[c + 2] = copy.crc32 ?? 0;
  words[c + 3] = copy.sizeBytes;
  words[c + 4] = serial;
}

/**
 * One file's rows. What only some files need is made when first needed: a file of one extent
 * costs ~300 B (this object, its page and its entry in the table), not ~1 KB.
 */
class FileExtents {
  readonly pages = new PageMap<Uint32Array>();
  /** Per page, the second copies of its extents (COPY_WORDS per row), made when one has two. */
  readonly seconds = new PageMap<Uint32Array>();
  /** Copies of extents whose row cannot hold them (see OVERFLOW). */
  overflow: Map<number, CopyRecord[]> | undefined;
  /** Writes in progress per extent; only extents being written are here. */
  writing: Map<number, number> | undefined;
  count = 0;

  /** The page and row offset of an extent, or undefined when its page does not reach it. */
  locate(index: number): { page: Uint32Array; at: number } | undefined {
    const page = this.pages.get(pageNoOf(index));
    const at = rowOf(index) * ROW_WORDS;
    return page && at < page.length ? { page, at } : undefined;
  }

  /** The page holding an extent's row, grown (by doubling, up to PAGE_ROWS rows) to reach it. */
  pageFor(index: number): { page: Uint32Array; at: number } {
    const pageNo = pageNoOf(index);
    const row = rowOf(index);
    let page = this.pages.get(pageNo);
    if (!page || (row + 1) * ROW_WORDS > page.length) {
      const grown = new Uint32Array(rowsToReach(page ? page.length / ROW_WORDS : 0, row) * ROW_WORDS);
      if (page) grown.set(page);
      this.pages.set(pageNo, grown);
      page = grown;
    }
    return { page, at: row * ROW_WORDS };
  }

  /** The side array of second copies of the page holding `index`, made or grown to reach its row. */
  secondsFor(index: number): Uint32Array {
    const pageNo = pageNoOf(index);
    const rows = (this.pages.get(pageNo) as Uint32Array).length / ROW_WORDS;
    let seconds = this.seconds.get(pageNo);
    if (!seconds || seconds.length < rows * COPY_WORDS) {
      const grown = new Uint32Array(rows * COPY_WORDS);
      if (seconds) grown.set(seconds);
      this.seconds.set(pageNo, grown);
      seconds = grown;
    }
    return seconds;
  }
}

export class ExtentTable {
  private readonly files = new Map<string, FileExtents>();
  /** Names each copy stored: a copy made again on the same tier is another copy (see ExtentMap.removeThisCopy). */
  private nextSerial = 1;

  fileIds(): IterableIterator<string> {
    return this.files.keys();
  }

  count(fileId: string): number {
    return this.files.get(fileId)?.count ?? 0;
  }

  has(fileId: string, index: number): boolean {
    const loc = this.files.get(fileId)?.locate(index);
    return !!loc && (loc.page[loc.at] & PRESENT) !== 0;
  }

  /**
   * Indexes of a file's extents that have rows (`dirty`: only those changed since they were last
   * persisted), page by page, in no particular order across pages.
   */
  *indexes(fileId: string, dirty = false): Generator<number> {
    const f = this.files.get(fileId);
    if (!f) return;
    const want = dirty ? PRESENT | DIRTY : PRESENT;
    for (const [pageNo, page] of f.pages.entries()) {
      for (let at = 0; at < page.length; at += ROW_WORDS) {
        if ((page[at] & want) === want) yield pageNo * PAGE_ROWS + at / ROW_WORDS;
      }
    }
  }

  /** Writes in progress on the extent (see ExtentState.writing). */
  writing(fileId: string, index: number): number {
    return this.files.get(fileId)?.writing?.get(index) ?? 0;
  }

  get(fileId: string, index: number): ExtentState | undefined {
    const f = this.files.get(fileId);
    const loc = f?.locate(index);
    if (!f || !loc) return undefined;
    const { page, at } = loc;
    const head = page[at];
    if ((head & PRESENT) === 0) return undefined;
    const generation = page[at + 1] + page[at + 2] * TWO_32;
    let copies: CopyRecord[];
    if (head & OVERFLOW) {
      copies = (f.overflow?.get(index) ?? []).map((c) => ({ ...c }));
    } else {
      const count = (head >>> COUNT_SHIFT) & 0xff;
      copies = new Array<CopyRecord>(count);
      if (count > 0) copies[0] = readCopy(page, at + HEAD_WORDS, generation);
      if (count > 1) copies[1] = readCopy(f.seconds.get(pageNoOf(index)) as Uint32Array, rowOf(index) * COPY_WORDS, generation);
    }
    const st: ExtentState = { generation, copies, persistedFresh: (head & PERSISTED_FRESH) !== 0, dirty: (head & DIRTY) !== 0, writing: f.writing?.get(index) ?? 0 };
    if (head & WRITTEN) st.written = true;
    if (head & ZEROS) st.zeros = true;
    return st;
  }

  /** Store the state of an extent; copies without a serial (new ones) are given one. */
  set(fileId: string, index: number, st: ExtentState): void {
    let f = this.files.get(fileId);
    if (!f) {
      f = new FileExtents();
      this.files.set(fileId, f);
    }
    const { page, at } = f.pageFor(index);
    if ((page[at] & PRESENT) === 0) f.count++;
    const fits = st.copies.length <= COPY_SLOTS && st.copies.every((c) => st.generation - c.generation >= 0 && st.generation - c.generation <= MAX_LAG && c.sizeBytes < TWO_32);
    let head = PRESENT | (st.persistedFresh ? PERSISTED_FRESH : 0) | (st.dirty ? DIRTY : 0) | (st.written ? WRITTEN : 0) | (st.zeros ? ZEROS : 0);
    page.fill(0, at + HEAD_WORDS, at + ROW_WORDS);
    const second = rowOf(index) * COPY_WORDS;
    f.seconds.get(pageNoOf(index))?.fill(0, second, second + COPY_WORDS);
    if (fits) {
      f.overflow?.delete(index);
      head |= st.copies.length << COUNT_SHIFT;
      const [first, other] = st.copies;
      if (first) writeCopy(page, at + HEAD_WORDS, first, st.generation, first.serial ?? this.takeSerial());
      if (other) writeCopy(f.secondsFor(index), second, other, st.generation, other.serial ?? this.takeSerial());
    } else {
      head |= OVERFLOW;
      (f.overflow ??= new Map()).set(index, st.copies.map((c) => ({ ...c, serial: c.serial ?? this.takeSerial() })));
    }
    page[at] = head;
    page[at + 1] = st.generation % TWO_32;
    page[at + 2] = Math.floor(st.generation / TWO_32);
    if (st.writing > 0) (f.writing ??= new Map()).set(index, st.writing);
    else f.writing?.delete(index);
  }

  dropFile(fileId: string): void {
    this.files.delete(fileId);
  }

  /**
   * Serials wrap after 2^32 copies. A serial only tells apart copies of one extent on one tier made
   * at different times, so a clash needs 2^32 copies made while one caller waits on one.
   */
  private takeSerial(): number {
    const s = this.nextSerial;
    this.nextSerial = s === 0xffff_ffff ? 1 : s + 1;
    return s;
  }
}
