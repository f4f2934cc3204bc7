/**
 * Waits for `p`, but no longer than `ms`: true if it settled (resolved or rejected) in time. The
 * work goes on either way; this only bounds how long a caller waits for it.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(() => true as const, () => true as const);
  const ended = await Promise.race([settled, new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return ended;
}
