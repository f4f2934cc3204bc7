import { formatBytes } from '../util/units';
import type { ReplayReport } from './replay';

/** Human-readable replay results: one row per policy. */
export function formatReport(r: ReplayReport, traceName: string): string {
  const lines: string[] = [];
  const hours = r.spanUs / 3600e6;
  lines.push(
    `trace ${traceName}: ${r.requests} requests over ${hours.toFixed(1)} h -> ${r.accesses} extent accesses ` +
      `(${r.rawExtentAccesses} before collapsing repeats), footprint ${r.footprintExtents} extents of ${formatBytes(r.extentSizeBytes)}`,
  );
  lines.push(`fast tier: ${r.capacityExtents} extents (${formatBytes(r.capacityExtents * r.extentSizeBytes)})`);
  if (r.summary.truncated) lines.push(`warning: ${r.summary.truncated}`);
  const header = ['policy', 'miss ratio', 'copies/access', 'MASE 1m/10m/1h', 'time'];
  const rows = r.results.map((p) => [
    p.policy,
    `${(p.missRatio * 100).toFixed(2)}%`,
    p.copiesPerAccess.toFixed(3),
    p.mase ? Object.values(p.mase).map(fmtMase).join('/') : '-',
    `${(p.elapsedMs / 1000).toFixed(1)}s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const fmt = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  lines.push(fmt(header));
  for (const row of rows) lines.push(fmt(row));
  return lines.join('\n');
}

function fmtMase(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : 'n/a';
}
