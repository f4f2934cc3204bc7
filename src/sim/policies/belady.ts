import { MinHeap } from '../../predict/heap';
import { assertCapacity, type ReplayPolicy } from './policy';

/**
 * Belady's MIN: on a miss with a full tier, evict the resident extent whose next use is furthest in
 * the future. Optimal among demand-fetch policies (each miss must be brought in, nothing is fetched
 * early), so it is the floor for LRU and ARC, and only a policy that promotes *before* the demand
 * access can go below it.
 *
 * Needs the future: `nextUse[i]` is the index of the next access to the same extent after access i
 * (or `length` for never), computed backwards over the compact trace. Victims come from a max-heap
 * on next use (a min-heap on its negation) with lazy invalidation.
 */
export class BeladyPolicy implements ReplayPolicy {
  readonly name = 'belady';
  private readonly nextUse: Int32Array;
  private readonly resident: Uint8Array;
  private readonly currentNext: Int32Array;
  private readonly heap = new MinHeap<number>();
  private size = 0;
  copies = 0;

  constructor(
    private readonly capacityExtents: number,
    extentIds: Uint32Array,
    extentCount: number,
  ) {
    assertCapacity(capacityExtents, 'belady');
    const n = extentIds.length;
    this.nextUse = new Int32Array(n);
    const last = new Int32Array(extentCount).fill(n);
    for (let i = n - 1; i >= 0; i--) {
      const id = extentIds[i];
      this.nextUse[i] = last[id];
      last[id] = i;
    }
    this.resident = new Uint8Array(extentCount);
    this.currentNext = new Int32Array(extentCount);
  }

  access(i: number, id: number): boolean {
    const next = this.nextUse[i];
    if (this.resident[id]) {
      this.currentNext[id] = next;
      this.heap.push(-next, id);
      return true;
    }
    this.copies++;
    if (this.size >= this.capacityExtents) this.evict();
    this.resident[id] = 1;
    this.size++;
    this.currentNext[id] = next;
    this.heap.push(-next, id);
    return false;
  }

  private evict(): void {
    for (;;) {
      const key = this.heap.peekKey();
      const v = this.heap.pop();
      if (v === undefined) return;
      if (this.resident[v] && -key === this.currentNext[v]) {
        this.resident[v] = 0;
        this.size--;
        return;
      }
    }
  }

  residents(): number[] {
    const out: number[] = [];
    for (let id = 0; id < this.resident.length; id++) if (this.resident[id]) out.push(id);
    return out;
  }
}
