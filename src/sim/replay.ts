import { ShadowfsError } from '../util/errors';
import { parseBytes } from '../util/units';
import { loadTrace, type CompactTrace } from './compact-trace';
import { ArcPolicy } from './policies/arc';
import { BeladyPolicy } from './policies/belady';
import { LruPolicy } from './policies/lru';
import type { ReplayPolicy } from './policies/policy';
import { PredictivePolicy, type PredictiveOptions } from './policies/predictive';
import { TraceReader, type TraceFormat, type TraceReaderOptions, type TraceSummary } from './trace-reader';

/**
 * Offline replay: every policy sees the same compact trace (demand accesses in extent units) and a
 * fast tier of the same capacity; the replay counts misses and copies. Policies run one after
 * another on the in-memory trace, so the text is parsed once.
 */
export type PolicyName = 'predictive' | 'lru' | 'arc' | 'belady';
export const POLICY_NAMES: readonly PolicyName[] = ['lru', 'arc', 'belady', 'predictive'];

/** Either a fraction of the trace's footprint (distinct extents accessed) or a size in bytes. */
export type CapacitySpec = { fraction: number } | { bytes: number };

export function parseCapacity(s: string): CapacitySpec {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(s);
  if (m) {
    const pct = Number(m[1]);
    if (!(pct > 0 && pct <= 100)) throw new ShadowfsError(`--capacity: a percentage must be in (0, 100], got ${s}`);
    return { fraction: pct / 100 };
  }
  return { bytes: parseBytes(s, '--capacity') };
}

export interface ReplayOptions {
  extentSizeBytes: number;
  capacity: CapacitySpec;
  policies: readonly PolicyName[];
  predictive?: Partial<PredictiveOptions>;
  /** Called between policies and every so many accesses, for progress display. */
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface PolicyResult {
  policy: PolicyName;
  accesses: number;
  misses: number;
  missRatio: number;
  copies: number;
  /** Extent copies into the fast tier per demand access. */
  copiesPerAccess: number;
  /** Forecast quality of the volume IOPS forecast at 1 min, 10 min and 1 h (predictive only). */
  mase?: Record<string, number>;
  elapsedMs: number;
  details?: Record<string, number>;
}

export interface ReplayReport {
  requests: number;
  accesses: number;
  rawExtentAccesses: number;
  footprintExtents: number;
  capacityExtents: number;
  extentSizeBytes: number;
  spanUs: number;
  results: PolicyResult[];
  summary: TraceSummary;
}

export function capacityExtents(trace: CompactTrace, spec: CapacitySpec, extentSizeBytes: number): number {
  const n = 'fraction' in spec ? Math.floor(trace.refs.length * spec.fraction) : Math.floor(spec.bytes / extentSizeBytes);
  return Math.max(1, n);
}

export function makePolicy(name: PolicyName, trace: CompactTrace, cap: number, options: ReplayOptions): ReplayPolicy {
  switch (name) {
    case 'lru':
      return new LruPolicy(cap);
    case 'arc':
      return new ArcPolicy(cap);
    case 'belady':
      return new BeladyPolicy(cap, trace.extentIds, trace.refs.length);
    case 'predictive':
      return new PredictivePolicy(trace, { ...options.predictive, capacityExtents: cap, extentSizeBytes: options.extentSizeBytes });
  }
}

export function runPolicy(policy: ReplayPolicy, trace: CompactTrace, onProgress?: (done: number) => void): { misses: number; hits: Uint8Array } {
  const hits = new Uint8Array(trace.length);
  let misses = 0;
  const { extentIds, timesUs, writes } = trace;
  for (let i = 0; i < trace.length; i++) {
    if (policy.access(i, extentIds[i], timesUs[i], writes[i] === 1)) hits[i] = 1;
    else misses++;
    if (onProgress && (i & 0xffff) === 0xffff) onProgress(i + 1);
  }
  return { misses, hits };
}

export function replayCompact(trace: CompactTrace, options: ReplayOptions): ReplayReport {
  const cap = capacityExtents(trace, options.capacity, options.extentSizeBytes);
  const results: PolicyResult[] = [];
  for (const name of options.policies) {
    const started = Date.now();
    const policy = makePolicy(name, trace, cap, options);
    const { misses } = runPolicy(policy, trace, (done) => options.onProgress?.(name, done, trace.length));
    options.onProgress?.(name, trace.length, trace.length);
    const r: PolicyResult = {
      policy: name,
      accesses: trace.length,
      misses,
      missRatio: trace.length > 0 ? misses / trace.length : 0,
      copies: policy.copies,
      copiesPerAccess: trace.length > 0 ? policy.copies / trace.length : 0,
      elapsedMs: Date.now() - started,
      details: policy.details?.(),
    };
    if (policy instanceof PredictivePolicy) {
      const f = policy.engine.forecaster;
      r.mase = {};
      for (const h of f.horizonsSteps) r.mase[`${h}m`] = f.mase('iops', h);
    }
    results.push(r);
  }
  return {
    requests: trace.requests,
    accesses: trace.length,
    rawExtentAccesses: trace.rawExtentAccesses,
    footprintExtents: trace.refs.length,
    capacityExtents: cap,
    extentSizeBytes: options.extentSizeBytes,
    spanUs: trace.lastUs - trace.firstUs,
    results,
    summary: trace.summary,
  };
}

export async function replayFile(
  file: string,
  format: TraceFormat,
  options: ReplayOptions & { reader?: TraceReaderOptions; onLoadProgress?: (s: TraceSummary) => void },
): Promise<ReplayReport> {
  const reader = new TraceReader(file, format, options.reader);
  const trace = await loadTrace(reader, { extentSizeBytes: options.extentSizeBytes, onProgress: options.onLoadProgress });
  if (trace.length === 0) {
    const why = trace.summary.truncated ? ` (${trace.summary.truncated})` : '';
    throw new ShadowfsError(`trace ${file} has no I/O records${why}`);
  }
  return replayCompact(trace, options);
}
