/**
 * Paths inside a volume ("/", "/d/f": absolute, normalised, no trailing slash) as the namespace
 * code compares them, by string: no path.relative per entry where a rename walks every open file,
 * pending file or mirror entry.
 */

/** True when `p` is `dir` itself or lies below it ("/ab" is not below "/a"). */
export function isAtOrUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir === '/' ? '/' : dir + '/');
}

/** Where `p` is after a rename of `from` (a file, or a directory and all below it) to `to`; undefined when the rename did not move it. */
export function movedPath(p: string, from: string, to: string): string | undefined {
  return isAtOrUnder(p, from) ? to + p.slice(from.length) : undefined;
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}
