/**
 * A fast-tier policy as the replay drives it: one call per demand access, in trace order, with
 * the extent already interned to a dense id. Policies count their own copies into the fast tier
 * (demand fills and prefetches alike), so "promotion traffic" is measured the same way for all.
 */
export interface ReplayPolicy {
  readonly name: string;
  /** Access number `i` (0-based, collapsed) to extent `id` at `timeUs`. True on a fast-tier hit. */
  access(i: number, id: number, timeUs: number, isWrite: boolean): boolean;
  /** Extent copies into the fast tier so far. */
  readonly copies: number;
  /** Extent ids in the fast tier now. */
  residents(): number[];
  /** Policy-specific counters for the report (optional). */
  details?(): Record<string, number>;
}

export function assertCapacity(capacityExtents: number, name: string): void {
  if (!Number.isInteger(capacityExtents) || capacityExtents < 1) {
    throw new Error(`${name}: capacity must be at least one extent, got ${capacityExtents}`);
  }
}
