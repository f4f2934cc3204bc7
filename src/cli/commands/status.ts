/** `shadowfs status MOUNTPOINT`: tiers, where reads were served from, shadow copy activity. */
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import { StatusReport, liveShare } from '../../control/protocol';
import { formatBytes } from '../../util/units';
import { servedBetween } from '../../control/served-by';

export interface StatusArgs {
  mountpoint: string;
  json: boolean;
}

function coverageLine(s: StatusReport): string {
  const c = s.coverage;
  if (!c) return 'coverage: no coverage tier configured (failover could lose data)';
  // Before its first scan coverage knows nothing, and reports 0%: say so rather than show a number.
  if (c.lastScanMs === null) {
    const why = s.failover && s.failover.mode !== 'live' ? 'no scan runs while failed over; the first comes after failback' : 'the first scan of the live volume is running';
    return `coverage on ${c.tier}: not measured since the mount (${why})`;
  }
  return `coverage on ${c.tier}: ${(100 * c.coveredShare).toFixed(1)}% of ${formatBytes(c.totalBytes)}, ${formatBytes(c.pendingBytes)} pending, lag ${(c.lagMs / 1000).toFixed(1)} s`;
}

/**
 * Where reads were served from, as shares of requests with the native fast path's included: most
 * reads of a busy mount never reach JS, and a table of redirector bytes alone showed the tier the
 * fast path serves from as nearly idle.
 */
export function servedLines(s: Pick<StatusReport, 'served' | 'fastPath' | 'tiers'>): string[] {
  const served = servedBetween({ served: [], fastPath: { hits: 0, misses: 0, errors: 0 }, tiers: [] }, s);
  const bytesVia = new Map(s.served.map((r) => [r.source, r.bytes]));
  const rows = served.map((r) => {
    const viaJs = r.reads - r.fastPathReads;
    const parts = [
      ...(r.fastPathReads > 0 ? [`${r.fastPathReads} natively`] : []),
      ...(viaJs > 0 ? [`${viaJs} through the redirector (${formatBytes(bytesVia.get(r.source) ?? 0)})`] : []),
    ];
    return `  ${r.source.padEnd(8)} ${(100 * r.share).toFixed(1).padStart(5)}%  ${String(r.reads).padStart(9)} reads: ${parts.join(', ')}`;
  });
  return ["reads served by (share of read requests, the native fast path's included):", ...(rows.length ? rows : ['  (no reads yet)'])];
}

export function formatStatus(s: StatusReport): string {
  const lines = [
    `${s.mountpoint}  ←  ${s.livePath}   (pid ${s.pid}, up ${s.uptimeSeconds} s, extent ${formatBytes(s.extentSizeBytes)})`,
    '',
    'tier      class   health    used / capacity            cost/GiB-month',
    ...s.tiers.map((t) => `${t.name.padEnd(9)} ${t.class.padEnd(7)} ${t.health.padEnd(9)} ${(formatBytes(t.usedBytes) + ' / ' + formatBytes(t.capacityBytes)).padEnd(26)} $${t.costPerGiBMonth.toFixed(3)}`),
    '',
    coverageLine(s),
    `placement: ${s.placement.policy}${s.placement.policy === 'predictive' ? ` (${s.placement.rounds} planning rounds, ${s.placement.requested} copies asked for, ${s.placement.readahead} staged ahead of sequential reads)` : ''}`,
    `pins: ${s.pins.length ? s.pins.map((p) => `${p.path} → ${p.tier}`).join(', ') : 'none'}; hints pending or active: ${s.hints}`,
    `cost: $${s.cost.placementPerMonth.toFixed(2)}/month as placed, $${s.cost.allOnFastestPerMonth.toFixed(2)}/month if all on the fastest tier`,
    '',
    ...servedLines(s),
    `  fast path: ${s.fastPath.hits} reads served natively (${(100 * liveShare(s.fastPath.liveHits ?? 0, s.fastPath.copyHits ?? 0)).toFixed(0)}% from the live file; ${s.fastPath.mappedExtents ?? 0} extents mapped to tier copies, ${s.fastPath.liveMappedExtents ?? 0} to the live file), ${s.fastPath.misses} went through the redirector${s.fastPath.unreported ? `; ${s.fastPath.unreported} native accesses not reported to the placement policy (dropped or over its rate bound)` : ''}`,
    `  requests from the kernel: ${s.fastPath.ringRequests ? `through io_uring (${s.fastPath.ringRequests} so far)` : 'through /dev/fuse'}`,
    ...(s.nativeWrites ? [`native writes: ${s.nativeWrites.hits} written straight to the live volume (${s.nativeWrites.grantedExtents} extents without copies open to them${s.nativeWrites.on || s.nativeWrites.stalls === 0 ? '' : ', off since a stall until the next write through the redirector'}), ${s.nativeWrites.misses} went through the redirector, ${s.nativeWrites.errors} failed and were retried there, ${s.nativeWrites.stalls} stalls`] : []),
    '',
    `shadow copies: ${s.shadow.copies} made (${formatBytes(s.shadow.copyBytes)}), ${s.shadow.evictions} evicted, ${s.shadow.discardedCopies} stale dropped, ${s.shadow.failedCopies} failed, ${s.shadow.copyErrors} read errors, ${s.shadow.corruptCopies} failed their checksum${s.shadow.writtenAround ? `, ${s.shadow.writtenAround} left stale by streaming writers (write-around)` : ''}`,
    ...(s.shadow.writtenCopies || s.shadow.liveOnlyWrites ? [`write-through: ${s.shadow.writtenCopies ?? 0} new copies made by writes to extents without one; ${s.shadow.liveOnlyWrites ?? 0} extents written to the live volume only (no tier could take a copy)`] : []),
    `hedged reads: ${s.shadow.hedgesIssued ?? 0} sent to a second copy, ${s.shadow.hedgesWon ?? 0} answered first there`,
    ...(s.shadow.unsyncedFiles !== undefined ? [`power loss: ${s.shadow.unsyncedFiles} file(s) written since their last sync point (their copies are dropped if the machine restarts before the next one)${s.shadow.filesDroppedAfterRestart ? `; the machine had restarted before this mount: copies of ${s.shadow.filesDroppedAfterRestart} file(s) were dropped` : ''}`] : []),
    ...(s.shadow.liveReads ? [`copies read the live file: ${s.shadow.liveReads.direct} times with O_DIRECT, ${s.shadow.liveReads.buffered} through the page cache`] : []),
    ...(s.failover ? [`mode: ${s.failover.mode}${s.failover.mode !== 'live' ? ` (${s.failover.reason}; ${s.failover.dirtyExtents} dirty extents to resync)` : ''}; live volume health: ${s.failover.health}`] : []),
    ...(s.scrub ? [scrubLine(s.scrub)] : []),
    ...(s.config ? [configLine(s.config)] : []),
  ];
  return lines.join('\n');
}

function scrubLine(s: NonNullable<StatusReport['scrub']>): string {
  const at = (ms: number): string => new Date(ms).toISOString();
  const last = s.lastFinishedAtMs === null ? 'never scrubbed' : `last scrubbed ${at(s.lastFinishedAtMs)}`;
  const next = s.nextDueAtMs === null ? 'no background scrub (scrubInterval off)' : `next background scrub ${at(s.nextDueAtMs)}`;
  const running = s.running ? `; ${s.paced ? 'a background' : 'a'} scrub is running: ${s.checkedCopies}/${s.totalCopies} copies checked` : '';
  return `scrub: ${last}, ${next}${running}`;
}

function configLine(c: NonNullable<StatusReport['config']>): string {
  const r = c.lastReload;
  if (!r) return `config: ${c.file} (not reloaded since mount)`;
  const when = `${new Date(r.atMs).toISOString()} (${r.trigger})`;
  if (!r.accepted) {
    const kept = r.changes.length > 0 ? `stopped after applying ${r.changes.join('; ')}` : 'refused, old settings kept';
    return `config: ${c.file}, last reload ${when} ${kept}: ${r.reason ?? ''}`;
  }
  return `config: ${c.file}, last reload ${when} applied: ${r.changes.length > 0 ? r.changes.join('; ') : 'no changes'}`;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status <mountpoint>',
  describe: 'Show a running mount: tiers, where reads were served from, shadow copies',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'A running shadowfs mount' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' }) as unknown as Argv<StatusArgs>,
  handler: async (args) => {
    const report = (await controlRequest(args.mountpoint, { command: 'status' })) as StatusReport;
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : formatStatus(report) + '\n');
  },
};
