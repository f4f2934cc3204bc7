/**
 * Pages of a per-file table (ExtentTable's rows, a tier's copy sizes), by page number. Most files
 * are small and have page 0 alone: it is kept in a field, and the Map for the others (~180 B even
 * empty) is made only for a file that reaches a second page.
 */
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
