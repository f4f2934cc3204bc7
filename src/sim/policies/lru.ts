import { assertCapacity, type ReplayPolicy } from './policy';

/**
 * Least recently used, demand-filled: every miss copies the extent in and evicts the extent
 * untouched for longest. A Map keeps insertion order, so delete+set moves a key to the MRU end
 * and the first key is the LRU one.
 */
export class LruPolicy implements ReplayPolicy {
  readonly name = 'lru';
  private readonly cache = new Map<number, true>();
  copies = 0;

  constructor(private readonly capacityExtents: number) {
    assertCapacity(capacityExtents, 'lru');
  }

  access(_i: number, id: number): boolean {
    const c = this.cache;
    if (c.has(id)) {
      c.delete(id);
      c.set(id, true);
      return true;
    }
    if (c.size >= this.capacityExtents) c.delete(c.keys().next().value as number);
    c.set(id, true);
    this.copies++;
    return false;
  }

  residents(): number[] {
    return [...this.cache.keys()];
  }
}
