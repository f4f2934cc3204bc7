/**
 * Pages of a per-file table (ExtentTable's rows, a tier's copy sizes), by page number. Most files
 * are small and have page 0 alone: it is kept in a field, and the Map for the others (~180 B even
 * empty) is made only for a file that reaches a second page.
 */
/** Rows per page: a sparse file costs a page per PAGE_ROWS extents it touches, at most. */
export const PAGE_ROWS = 256;

export const pageNoOf = (index: number): number => Math.floor(index / PAGE_ROWS);
export const rowOf = (index: number): number => index % PAGE_ROWS;

/**
 * The rows a page of `rows` (0: none yet) grows to, to reach `row`: doubled until it does, at most
 * PAGE_ROWS. A small file keeps a small page.
 */
export function rowsToReach(rows: number, row: number): number {
  let grown = Math.max(rows, 1);
  while (grown < row + 1) grown *= 2;
  return Math.min(grown, PAGE_ROWS);
}

export class PageMap<T> {
  private first: T | undefined;
  private rest: Map<number, T> | undefined;

  get(pageNo: number): T | undefined {
    return pageNo === 0 ? this.first : this.rest?.get(pageNo);
  }

  set(pageNo: number, page: T): void {
    if (pageNo === 0) this.first = page;
    else (this.rest ??= new Map()).set(pageNo, page);
  }

  /** Every page, page 0 first, as a list taken now. */
  entries(): [number, T][] {
    const out: [number, T][] = this.first === undefined ? [] : [[0, this.first]];
    if (this.rest) out.push(...this.rest);
    return out;
  }
}
