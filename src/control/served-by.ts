/**
 * Which tier (or the live volume) served the reads made between two status reports of a mount.
 * Reads the redirector served are counted by source; reads the native fast path answered are
 * counted for the fastest usable directory tier, the only tier the fast path maps
 * (src/io/fast-path.ts), except those it answered from the live file (`liveHits`).
 * Shares are of read requests: the fast path counts requests, not bytes.
 */
import { StatusReport, liveShare } from './protocol';

export interface ServedShare {
  /** A tier name, or "live" for the live volume. */
  source: string;
  reads: number;
  /** Of those, reads the native fast path answered (from a tier copy, or for "live" the live file). */
  fastPathReads: number;
  /** reads / all reads in the interval, 0..1. */
  share: number;
}

type Snapshot = Pick<StatusReport, 'served' | 'fastPath' | 'tiers'>;

function fastPathTier(s: Snapshot): string {
  const t = s.tiers.find((tier) => tier.class !== 'object' && tier.health !== 'failed');
  return t?.name ?? 'fast path';
}

/** Reads between `before` and `after` by source, busiest first; empty when there were none. */
export function servedBetween(before: Snapshot, after: Snapshot): ServedShare[] {
  const earlier = new Map(before.served.map((s) => [s.source, s.reads]));
  const rows = new Map<string, { reads: number; fastPathReads: number }>();
  for (const s of after.served) {
    const reads = s.reads - (earlier.get(s.source) ?? 0);
    if (reads > 0) rows.set(s.source, { reads, fastPathReads: 0 });
  }
  const hits = (after.fastPath?.hits ?? 0) - (before.fastPath?.hits ?? 0);
  const share = liveShare((after.fastPath?.liveHits ?? 0) - (before.fastPath?.liveHits ?? 0), (after.fastPath?.copyHits ?? 0) - (before.fastPath?.copyHits ?? 0));
  const live = Math.round(hits * share);
  for (const [name, fast] of [[fastPathTier(after), hits - live], ['live', live]] as const) {
    if (fast <= 0) continue;
    const row = rows.get(name) ?? { reads: 0, fastPathReads: 0 };
    rows.set(name, { reads: row.reads + fast, fastPathReads: row.fastPathReads + fast });
  }
  const total = [...rows.values()].reduce((a, r) => a + r.reads, 0);
  return [...rows.entries()]
    .map(([source, r]) => ({ source, reads: r.reads, fastPathReads: r.fastPathReads, share: total > 0 ? r.reads / total : 0 }))
    .sort((a, b) => b.reads - a.reads);
}

/** "nvme 62% · live 38%", or "no reads". */
export function formatServed(rows: readonly ServedShare[]): string {
  if (rows.length === 0) return 'no reads';
  return rows.map((r) => `${r.source} ${r.share > 0 && r.share < 0.005 ? '<1' : (100 * r.share).toFixed(0)}%`).join(' · ');
}
