/**
 * Which extents a change the copies cannot follow (a truncate, a fallocate) leaves all zeros, and
 * which it changes only in part. Pure arithmetic, so the callers agree on one answer.
 */

export interface ChangedExtents {
  /** Extents whose every byte is now zero: past the old end of the file, or inside the zeroed range. */
  zeros: number[];
  /** Extents the change touched that still hold other bytes too. */
  partial: number[];
}

/**
 * A file goes from `oldSize` to `newSize` bytes, and bytes [zero.from, zero.to) (a punched hole or
 * a zeroed range, if any) become zeros. Extents are `E` bytes.
 */
export function changedExtents(E: number, oldSize: number, newSize: number, zero?: { from: number; to: number }): ChangedExtents {
  const out: ChangedExtents = { zeros: [], partial: [] };
  // The zeroed range, clipped to the file as it is after the change.
  const z = zero && zero.from < Math.min(zero.to, newSize) ? { from: zero.from, to: Math.min(zero.to, newSize) } : undefined;
  const grows = newSize > oldSize;
  let first = Number.POSITIVE_INFINITY;
  let last = -1;
  if (grows) {
    first = Math.floor(oldSize / E);
    last = Math.ceil(newSize / E) - 1;
  }
  if (z) {
    first = Math.min(first, Math.floor(z.from / E));
    last = Math.max(last, Math.floor((z.to - 1) / E));
  }
  const inside = (from: number, to: number, a: number, b: number): boolean => from >= a && to <= b;
  for (let i = first; i <= last; i++) {
    const from = i * E;
    const to = Math.min(from + E, newSize);
    if (to <= from) continue;
    const allZero =
      (grows && from >= oldSize) ||
      (z !== undefined && inside(from, to, z.from, z.to)) ||
      // The zeroed range runs into the grown part: one stretch of zeros.
      (grows && z !== undefined && z.to >= oldSize && inside(from, to, z.from, newSize));
    if (allZero) out.zeros.push(i);
    else out.partial.push(i);
  }
  return out;
}
