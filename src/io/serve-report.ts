/** A short account of where reads were served from, printed when a mount ends. */
import { ServeCounters } from './redirector';
import { ShadowCounters } from '../shadow/shadow-manager';
import { formatBytes } from '../util/units';

export function serveReport(io: ServeCounters, shadows: ShadowCounters): string {
  const total = [...io.bytesBySource.values()].reduce((a, b) => a + b, 0);
  const rows = [...io.bytesBySource.entries()].sort((a, b) => b[1] - a[1]).map(([source, bytes]) => {
    const share = total > 0 ? ((100 * bytes) / total).toFixed(1) : '0.0';
    return `  ${source.padEnd(8)} ${share.padStart(5)}%  ${formatBytes(bytes).padStart(10)}  ${io.readsBySource.get(source) ?? 0} reads`;
  });
  return [
    `served ${formatBytes(total)} of reads:`,
    ...(rows.length ? rows : ['  (no reads)']),
    `shadow copies made: ${shadows.copies} (${formatBytes(shadows.copyBytes)}), evicted: ${shadows.evictions}, stale copies dropped: ${shadows.discardedCopies}, copy errors: ${io.copyErrors}`,
  ].join('\n');
}
