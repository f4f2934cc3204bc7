/**
 * Binary min-heap keyed by a number. Used for "what is due next" queues and for eviction victims
 * with lazy invalidation (callers push a new entry when a key changes and skip stale ones on pop).
 */
export class MinHeap<T> {
  private keys: number[] = [];
  private items: T[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(key: number, item: T): void {
    const k = this.keys;
    const it = this.items;
    let i = k.length;
    k.push(key);
    it.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (k[p] <= key) break;
      k[i] = k[p];
      it[i] = it[p];
      i = p;
    }
    k[i] = key;
    it[i] = item;
  }

  peekKey(): number {
    return this.keys.length > 0 ? this.keys[0] : Number.POSITIVE_INFINITY;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  pop(): T | undefined {
    const k = this.keys;
    const it = this.items;
    if (k.length === 0) return undefined;
    const top = it[0];
    const lastK = k.pop() as number;
    const lastI = it.pop() as T;
    const n = k.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && k[r] < k[l] ? r : l;
        if (k[c] >= lastK) break;
        k[i] = k[c];
        it[i] = it[c];
        i = c;
      }
      k[i] = lastK;
      it[i] = lastI;
    }
    return top;
  }

  clear(): void {
    this.keys = [];
    this.items = [];
  }
}
