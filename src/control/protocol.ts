/**
 * The control protocol: one JSON request per line on the mount's Unix socket, one JSON reply per
 * line. Requests: {"command": "status"}. Replies: {"ok": true, "result": ...} or
 * {"ok": false, "error": "one-line reason"}.
 */
import type { CoverageReport } from '../shadow/coverage';

export interface ControlRequest {
  command: string;
  [arg: string]: unknown;
}

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: string };

export interface TierStatus {
  name: string;
  class: string;
  health: string;
  usedBytes: number;
  capacityBytes: number;
  costPerGiBMonth: number;
  /** Recent p95 of reads served by the tier through the redirector (hedging uses it). */
  readP95Us?: number;
}

export interface StatusReport {
  mountpoint: string;
  livePath: string;
  pid: number;
  uptimeSeconds: number;
  extentSizeBytes: number;
  tiers: TierStatus[];
  coverage: CoverageReport | null;
  pins: { path: string; tier: string }[];
  /** The placement policy and, when predictive, what the planner did. */
  placement: { policy: 'reactive' | 'predictive'; rounds: number; planned: number; requested: number; readahead: number; demoted?: number; dropped?: number };
  /** Hints not yet expired (pending or active). */
  hints: number;
  /** Monthly cost of the copies where they are now, and of holding all of them on the fastest tier. */
  cost: { placementPerMonth: number; allOnFastestPerMonth: number };
  /** Reads served by the redirector (JavaScript), by source. */
  served: { source: string; bytes: number; reads: number }[];
  /** Reads served natively from mapped tier copies, without the JavaScript round trip. */
  /**
   * hits are requests; liveHits and copyHits count, per extent a native read touched, whether the
   * live file (an extent without a copy) or a tier copy answered it: their ratio splits hits.
   * unreported: native accesses the placement policy never saw (the FUSE layer dropped them, or
   * the policy's rate bound cut them off). polled: requests a FUSE thread found without sleeping;
   * answeredDirectly: native reads and writes answered without passing through libfuse.
   * idlePolls, idlePollMs: times, and milliseconds of CPU, the idle poller kept a CPU awake.
   * ringRequests: requests that came through FUSE over io_uring (0: all through /dev/fuse);
   * ringEntries: ring entries registered with the kernel (one per ring thread).
   */
  fastPath: { hits: number; misses: number; errors: number; polled?: number; answeredDirectly?: number; idlePolls?: number; idlePollMs?: number; ringRequests?: number; ringEntries?: number; mappedExtents?: number; liveMappedExtents?: number; liveHits?: number; copyHits?: number; unreported?: number };
  /** Writes the FUSE layer wrote to the live file itself (absent: not used on this mount). */
  nativeWrites?: { on: boolean; hits: number; misses: number; errors: number; stalls: number; grantedExtents: number };
  /** liveReads: how background copies read the live file, with O_DIRECT or through the page cache (src/volume/direct-live-reads.ts). */
  shadow: { copies: number; copyBytes: number; evictions: number; discardedCopies: number; failedCopies: number; copyErrors: number; corruptCopies: number; hedgesIssued?: number; hedgesWon?: number; writtenAround?: number; writtenCopies?: number; liveOnlyWrites?: number; liveReads?: { direct: number; buffered: number }; unsyncedFiles?: number; filesDroppedAfterRestart?: number };
  /** Where the volume is served from (live, or its shadows while failed over) and the live volume's health. */
  failover?: { mode: 'live' | 'failed-over' | 'resyncing'; health: string; reason: string; since: number | null; dirtyExtents: number; abandonedOps: number };
  /**
   * Checks of every copy against its checksum: the last whole one (by any mount of the volume), the
   * next background one (null: none scheduled), and the one running (paced: a background one).
   */
  scrub?: { lastFinishedAtMs: number | null; nextDueAtMs: number | null; running: boolean; paced: boolean; checkedCopies: number; totalCopies: number };
  /** The config file the mount was started from (null: flags only) and its last reload. */
  config: { file: string; lastReload: ReloadReport | null } | null;
}

/** The outcome of re-reading the mount's config file (`shadowfs reload`, or the file changed). */
export interface ReloadReport {
  file: string;
  trigger: 'file-changed' | 'command';
  atMs: number;
  /** False: refused, nothing applied (or, with `changes`, what was applied before a step failed). */
  accepted: boolean;
  /** What was applied, one line each. */
  changes: string[];
  reason?: string;
}

export interface ExtentPlacement {
  index: number;
  generation: number;
  /** Tiers holding a fresh copy, fastest first. */
  fresh: string[];
  /** Tiers holding a copy of an older generation (never served; being removed). */
  stale: string[];
}

export interface WhichTierReport {
  path: string;
  fileId: string;
  sizeBytes: number;
  extentSizeBytes: number;
  extents: ExtentPlacement[];
}

/** Of native reads, the share the live file answered (liveHits and copyHits of StatusReport.fastPath). */
export function liveShare(liveHits: number, copyHits: number): number {
  return liveHits + copyHits > 0 ? liveHits / (liveHits + copyHits) : 0;
}
