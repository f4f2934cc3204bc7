import { assertCapacity, type ReplayPolicy } from './policy';

/**
 * Adaptive Replacement Cache (Megiddo & Modha, FAST 2003), as in the paper's pseudo-code.
 *
 * T1: resident, seen once recently; T2: resident, seen at least twice. B1/B2: ghost lists of
 * extents recently evicted from T1/T2 (ids only, no data). p is the adaptive target size of T1:
 * a hit in B1 says "T1 was too small" and grows p, a hit in B2 shrinks it. |T1|+|T2| <= c and
 * |T1|+|T2|+|B1|+|B2| <= 2c. Each list is a Map in LRU -> MRU order.
 */
export class ArcPolicy implements ReplayPolicy {
  readonly name = 'arc';
  private readonly t1 = new Map<number, true>();
  private readonly t2 = new Map<number, true>();
  private readonly b1 = new Map<number, true>();
  private readonly b2 = new Map<number, true>();
  /** Target size of T1 (real-valued, as in the paper). */
  p = 0;
  copies = 0;

  constructor(private readonly c: number) {
    assertCapacity(c, 'arc');
  }

  access(_i: number, x: number): boolean {
    const { t1, t2, b1, b2, c } = this;
    // Case I: hit in T1 or T2 -> MRU of T2.
    if (t1.has(x) || t2.has(x)) {
      t1.delete(x);
      t2.delete(x);
      t2.set(x, true);
      return true;
    }
    this.copies++;
    // Case II: ghost hit in B1 -> favour recency.
    if (b1.has(x)) {
      const delta = b1.size >= b2.size ? 1 : b2.size / b1.size;
      this.p = Math.min(c, this.p + delta);
      this.replace(false);
      b1.delete(x);
      t2.set(x, true);
      return false;
    }
    // Case III: ghost hit in B2 -> favour frequency.
    if (b2.has(x)) {
      const delta = b2.size >= b1.size ? 1 : b1.size / b2.size;
      this.p = Math.max(0, this.p - delta);
      this.replace(true);
      b2.delete(x);
      t2.set(x, true);
      return false;
    }
    // Case IV: not in any list.
    const l1 = t1.size + b1.size;
    if (l1 === c) {
      if (t1.size < c) {
        deleteLru(b1);
        this.replace(false);
      } else {
        deleteLru(t1); // B1 is empty: drop T1's LRU page outright
      }
    } else {
      const total = l1 + t2.size + b2.size;
      if (total >= c) {
        if (total === 2 * c) deleteLru(b2);
        this.replace(false);
      }
    }
    t1.set(x, true);
    return false;
  }

  /** REPLACE(x, p): evict from T1 or T2 into its ghost list. `inB2`: the request was a B2 hit. */
  private replace(inB2: boolean): void {
    const { t1, t2, b1, b2 } = this;
    if (t1.size > 0 && (t1.size > this.p || (inB2 && t1.size === this.p))) {
      const v = deleteLru(t1);
      if (v !== undefined) b1.set(v, true);
    } else {
      const v = deleteLru(t2);
      if (v !== undefined) b2.set(v, true);
      else {
        // T2 empty (possible only with a fractional p): fall back to T1 so space is always made.
        const w = deleteLru(t1);
        if (w !== undefined) b1.set(w, true);
      }
    }
  }

  residents(): number[] {
    return [...this.t1.keys(), ...this.t2.keys()];
  }

  lists(): { t1: number[]; t2: number[]; b1: number[]; b2: number[]; p: number } {
    return { t1: [...this.t1.keys()], t2: [...this.t2.keys()], b1: [...this.b1.keys()], b2: [...this.b2.keys()], p: this.p };
  }

  details(): Record<string, number> {
    return { p: this.p, t1: this.t1.size, t2: this.t2.size };
  }
}

function deleteLru(m: Map<number, true>): number | undefined {
  const it = m.keys().next();
  if (it.done) return undefined;
  m.delete(it.value);
  return it.value;
}
