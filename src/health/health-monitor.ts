/**
 * The health of one volume (the live volume, or one tier): in-band signals from real I/O and
 * active probes, judged against a learned baseline and the volume's latency limit, turned into a
 * state with hysteresis:
 *
 *   healthy ──warn──► suspect ──fail──► failed-over ──clean for minHealthyForFailbackMs──► resyncing
 *      ▲  └───────────fail────────────────────▲   ▲                                          │  │
 *      │                                      │   └──────────────fail (abort resync)─────────┘  │
 *      └──── suspect, clean for minHealthyForClearMs ◄── ... ◄────────── resyncDone() ──────────┘
 *
 * warn: an isolated error, p95 over suspectRatio x baseline, a trend reaching the limit within
 *       2 x horizon, an op pending longer than the limit.
 * fail: a trend reaching the limit within the horizon, error rate over the threshold, any op
 *       timed out, p95 over the limit. Entering failed-over is the decision "fail over now"
 *       (`failOverNow` / action 'fail-over' in that evaluation's report); it is taken from healthy
 *       directly when a fail signal comes without warning (a hang).
 *
 * Pure logic: no I/O, no timers, no clock. Every call takes nowMs (one monotonic ms clock for all
 * calls, fractions allowed); the owner calls evaluate() periodically (about once per bucket,
 * 1 s) and acts on the report. See recordOp/beginOp/recordProbe for what to feed.
 */
import { DEFAULT_HEALTH_SETTINGS, HealthSettings, resolveHealthSettings } from './health-settings';
import { InFlightOps } from './in-flight';
import { LatencyTrack, TrackAssessment } from './track';

export { DEFAULT_HEALTH_SETTINGS };
export type { HealthSettings };

export type HealthState = 'healthy' | 'suspect' | 'failed-over' | 'resyncing';

/** Op classes with their own window and baseline: their latencies differ by orders of magnitude. */
export type OpKind = 'read' | 'write' | 'meta' | 'sync';
export const OP_KINDS: readonly OpKind[] = ['read', 'write', 'meta', 'sync'];

/** What the owner must do after an evaluation (only on the evaluation that changed state). */
export type HealthAction = 'fail-over' | 'resync' | 'abort-resync';

export interface Transition {
  timeMs: number;
  from: HealthState;
  to: HealthState;
  reason: string;
}

export interface TrackReport {
  name: OpKind | 'probe';
  samples: number;
  errors: number;
  timeouts: number;
  p50Us?: number;
  p95Us?: number;
  p99Us?: number;
  baselineP95Us?: number;
  slopeUsPerSec?: number;
  predictedMsToLimit?: number;
}

export interface HealthReport {
  state: HealthState;
  /** Why the state is what it is: the reason of the transition into it (or 'initial state'). */
  reason: string;
  /** Set only when this evaluation changed the state and the owner must act. */
  action?: HealthAction;
  /** action === 'fail-over'. */
  failOverNow: boolean;
  /** Current warning and failure signs (empty when all is well), worst first. */
  signals: string[];
  /** p95 of the track furthest above its baseline (undefined without samples). */
  p95Us?: number;
  baselineP95Us?: number;
  /** Failed share of all ops and probes in the eval window. */
  errorRate: number;
  /** Earliest predicted crossing of the latency limit over all tracks, ms from now. */
  predictedMsToLimit?: number;
  pendingOps: number;
  oldestPendingMs: number;
  /** ms the current clean stretch has lasted (0 when signals are present). */
  cleanForMs: number;
  tracks: TrackReport[];
}

export class HealthMonitor {
  readonly settings: HealthSettings;
  private readonly tracks = new Map<OpKind, LatencyTrack>();
  private readonly probeTrack: LatencyTrack;
  private readonly inFlight = new InFlightOps<OpKind>();
  private readonly log: Transition[] = [];
  private current: HealthState = 'healthy';
  private currentReason = 'initial state';
  private enteredMs: number | undefined;
  /** Last time anything was wrong (a bad sample, or an evaluation with signals or not near baseline). */
  private lastTroubleMs = -Infinity;
  /** Consecutive successful probes. */
  private probeStreak = 0;
  private pendingAction: HealthAction | undefined;
  /** Since when every evaluation has shown a warning sign (undefined: the last one showed none). */
  private warnSinceMs: number | undefined;

  constructor(settings: Partial<HealthSettings> = {}, private readonly onTransition?: (t: Transition) => void) {
    this.settings = resolveHealthSettings(settings);
    // Probes come about once a second: a few are enough to judge their latency.
    const probeMinSamples = Math.max(1, Math.min(this.settings.minSamples, this.settings.minProbesForFailback));
    this.probeTrack = new LatencyTrack('probe', this.settings, probeMinSamples);
  }

  /**
   * New thresholds (a config reload). Window and bucket sizes shape the data already collected,
   * so they keep their values until the next mount.
   */
  updateSettings(partial: Partial<HealthSettings>): void {
    const next = resolveHealthSettings({ ...this.settings, ...partial });
    for (const key of ['evalWindowMs', 'errorWindowMs', 'trendWindowMs', 'bucketMs'] as const) next[key] = this.settings[key];
    Object.assign(this.settings, next);
  }

  get state(): HealthState {
    return this.current;
  }

  /** Oldest first; at most settings.transitionLogSize entries. */
  transitions(): readonly Transition[] {
    return this.log;
  }

  // ---- in-band signals ----

  /**
   * One finished op on this volume. ok=false only for failures that say the volume is unwell
   * (see isVolumeFault); an op slower than opTimeoutMs counts as a timeout even if it succeeded.
   */
  recordOp(kind: OpKind, latencyUs: number, ok: boolean, nowMs: number): void {
    const timedOut = latencyUs >= this.settings.opTimeoutMs * 1000;
    const outcome = timedOut ? 'timeout' : ok ? 'ok' : 'error';
    this.track(kind).record(nowMs, latencyUs, outcome);
    if (outcome !== 'ok') this.trouble(nowMs);
  }

  /** An op the owner gave up on after opTimeoutMs (with its own timer). Not needed with beginOp/endOp. */
  recordTimeout(kind: OpKind, nowMs: number): void {
    this.recordOp(kind, this.settings.opTimeoutMs * 1000, false, nowMs);
  }

  /**
   * Alternative to recordOp that also sees hangs: call at the start of an op, and endOp when it
   * finishes. An op still pending after opTimeoutMs is counted as a timeout by evaluate(), once,
   * whether or not it ever ends. Returns a token for endOp (0 if too many ops are pending to track).
   */
  beginOp(kind: OpKind, nowMs: number): number {
    return this.inFlight.begin(kind, nowMs);
  }

  endOp(token: number, ok: boolean, nowMs: number): void {
    const op = this.inFlight.end(token);
    if (!op || op.timedOut) return; // already counted as a timeout
    this.recordOp(op.kind, Math.max(0, nowMs - op.startMs) * 1000, ok, nowMs);
  }

  // ---- active probes ----

  /**
   * One probe (a small read/write/fsync the owner does on the volume every second or so, with
   * or without other traffic). A probe with no answer within opTimeoutMs is reported as
   * ok=false with latencyUs >= opTimeoutMs * 1000.
   */
  recordProbe(latencyUs: number, ok: boolean, nowMs: number): void {
    const timedOut = latencyUs >= this.settings.opTimeoutMs * 1000;
    const outcome = timedOut ? 'timeout' : ok ? 'ok' : 'error';
    this.probeTrack.record(nowMs, latencyUs, outcome);
    if (outcome === 'ok') this.probeStreak++;
    else {
      this.probeStreak = 0;
      this.trouble(nowMs);
    }
  }

  // ---- commands from the owner ----

  /** The resync after a failover has finished: the live volume is authoritative again. */
  resyncDone(nowMs: number, reason = 'resync finished'): void {
    if (this.current === 'resyncing') this.transition('healthy', reason, nowMs);
  }

  /** Operator: fail over now, whatever the signals say. */
  requestFailover(nowMs: number, reason = 'failover requested'): void {
    if (this.current === 'healthy' || this.current === 'suspect' || this.current === 'resyncing') {
      this.transition('failed-over', reason, nowMs);
      this.pendingAction = 'fail-over';
    }
  }

  /** Operator: start resyncing now, without waiting for minHealthyForFailbackMs of health. */
  requestFailback(nowMs: number, reason = 'failback requested'): void {
    if (this.current === 'failed-over') {
      this.transition('resyncing', reason, nowMs);
      this.pendingAction = 'resync';
    }
  }

  // ---- judgement ----

  evaluate(nowMs: number): HealthReport {
    const s = this.settings;
    // Ops hung past the timeout count now, not when (if ever) they end.
    for (const op of this.inFlight.overdue(nowMs, s.opTimeoutMs)) {
      this.track(op.kind).record(nowMs, (nowMs - op.startMs) * 1000, 'timeout');
      this.trouble(nowMs);
    }
    const pendingOverLimit = this.pendingOverLimit(nowMs);
    const assessments: { track: LatencyTrack; a: TrackAssessment }[] = [];
    for (const track of [...this.tracks.values(), this.probeTrack]) {
      assessments.push({ track, a: track.assess(nowMs, pendingOverLimit.get(track.name) ?? 0) });
    }
    const fail = assessments.flatMap(({ a }) => a.fail);
    const warn = assessments.flatMap(({ a }) => a.warn);
    const clean = assessments.every(({ a }) => a.clean) && fail.length === 0 && warn.length === 0;
    if (!clean) this.trouble(nowMs);
    if (warn.length === 0) this.warnSinceMs = undefined;
    else this.warnSinceMs ??= nowMs;
    const cleanForMs = clean ? Math.max(0, nowMs - Math.max(this.lastTroubleMs, this.enteredMs ?? -Infinity)) : 0;

    let action = this.pendingAction;
    this.pendingAction = undefined;
    switch (this.current) {
      case 'healthy':
        if (fail.length) action = this.transition('failed-over', fail[0], nowMs, 'fail-over');
        else if (warn.length && nowMs - (this.warnSinceMs ?? nowMs) >= s.suspectConfirmMs) this.transition('suspect', warn[0], nowMs);
        break;
      case 'suspect':
        if (fail.length) action = this.transition('failed-over', fail[0], nowMs, 'fail-over');
        else if (clean && cleanForMs >= s.minHealthyForClearMs) {
          this.transition('healthy', `no warning sign for ${(cleanForMs / 1000).toFixed(0)} s, latency near baseline`, nowMs);
        }
        break;
      case 'failed-over':
        if (clean && cleanForMs >= s.minHealthyForFailbackMs && this.probeStreak >= s.minProbesForFailback) {
          action = this.transition('resyncing',
            `healthy for ${(cleanForMs / 1000).toFixed(0)} s (${this.probeStreak} probes in a row OK, latency near baseline)`, nowMs, 'resync');
        }
        break;
      case 'resyncing':
        if (fail.length) action = this.transition('failed-over', `during resync: ${fail[0]}`, nowMs, 'abort-resync');
        break;
    }

    // Learn the normal only from healthy, clean periods: a fault must never become the norm.
    for (const { track, a } of assessments) track.learn(nowMs, a.summary, this.current === 'healthy' && clean);

    return this.report(nowMs, assessments.map(({ a }) => a), [...fail, ...warn], action, cleanForMs);
  }

  // ---- internals ----

  private track(kind: OpKind): LatencyTrack {
    let t = this.tracks.get(kind);
    if (!t) {
      if (!OP_KINDS.includes(kind)) throw new RangeError(`unknown op kind ${String(kind)}`);
      t = new LatencyTrack(kind, this.settings);
      this.tracks.set(kind, t);
    }
    return t;
  }

  private trouble(nowMs: number): void {
    if (nowMs > this.lastTroubleMs) this.lastTroubleMs = nowMs;
  }

  /** Per kind: ops pending longer than the latency limit (they will be far beyond p95 when they end). */
  private pendingOverLimit(nowMs: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const op of this.inFlight.pendingOlderThan(nowMs, this.settings.latencyLimitMs)) {
      out.set(op.kind, (out.get(op.kind) ?? 0) + 1);
    }
    return out;
  }

  private transition(to: HealthState, reason: string, nowMs: number, action?: HealthAction): HealthAction | undefined {
    const t: Transition = { timeMs: nowMs, from: this.current, to, reason };
    this.current = to;
    this.currentReason = reason;
    this.enteredMs = nowMs;
    this.log.push(t);
    if (this.log.length > this.settings.transitionLogSize) this.log.shift();
    this.onTransition?.(t);
    return action;
  }

  private report(nowMs: number, all: TrackAssessment[], signals: string[], action: HealthAction | undefined, cleanForMs: number): HealthReport {
    let count = 0;
    let errors = 0;
    let worst: TrackAssessment | undefined;
    let worstScore = -Infinity;
    let predicted: number | undefined;
    for (const a of all) {
      count += a.summary.count;
      errors += a.summary.errors;
      if (a.summary.p95Us !== undefined) {
        // Furthest above its own baseline; tracks without one rank by p95 against the limit.
        const score = a.baselineP95Us ? a.summary.p95Us / a.baselineP95Us : a.summary.p95Us / (this.settings.latencyLimitMs * 1000);
        if (score > worstScore) {
          worstScore = score;
          worst = a;
        }
      }
      const m = a.trend?.msToLimit;
      if (m !== undefined && (predicted === undefined || m < predicted)) predicted = m;
    }
    return {
      state: this.current,
      reason: this.currentReason,
      action,
      failOverNow: action === 'fail-over',
      signals,
      p95Us: worst?.summary.p95Us,
      baselineP95Us: worst?.baselineP95Us,
      errorRate: count ? errors / count : 0,
      predictedMsToLimit: predicted,
      pendingOps: this.inFlight.size,
      oldestPendingMs: this.inFlight.oldestAgeMs(nowMs),
      cleanForMs,
      tracks: all.map((a) => ({
        name: a.name as OpKind | 'probe',
        samples: a.summary.count,
        errors: a.summary.errors,
        timeouts: a.summary.timeouts,
        p50Us: a.summary.p50Us,
        p95Us: a.summary.p95Us,
        p99Us: a.summary.p99Us,
        baselineP95Us: a.baselineP95Us,
        slopeUsPerSec: a.trend?.slopeUsPerSec,
        predictedMsToLimit: a.trend?.msToLimit,
      })),
    };
  }
}
