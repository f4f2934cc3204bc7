/**
 * Operations started and not yet finished, so that a hang is seen while it is happening: an op
 * pending for longer than the op timeout is reported once as a timeout, without waiting for it to
 * end (it may never end).
 */

export interface PendingOp<K extends string = string> {
  kind: K;
  startMs: number;
  /** Already reported as a timeout: its end, if it comes, is not a sample any more. */
  timedOut: boolean;
}

export class InFlightOps<K extends string = string> {
  private nextToken = 1;
  /** Insertion order is start order (time passed in is monotonic), so the first entries are the oldest. */
  private readonly ops = new Map<number, PendingOp<K>>();

  /** maxTracked bounds memory if callers leak tokens; ops beyond it are simply not tracked. */
  constructor(private readonly maxTracked = 65_536) {}

  get size(): number {
    return this.ops.size;
  }

  /** A token for end(); 0 when the table is full (end(0) is a no-op). */
  begin(kind: K, nowMs: number): number {
    if (this.ops.size >= this.maxTracked) return 0;
    const token = this.nextToken;
    this.nextToken = this.nextToken >= Number.MAX_SAFE_INTEGER ? 1 : this.nextToken + 1;
    this.ops.set(token, { kind, startMs: nowMs, timedOut: false });
    return token;
  }

  end(token: number): PendingOp<K> | undefined {
    const op = this.ops.get(token);
    if (op) this.ops.delete(token);
    return op;
  }

  /** Ops pending for timeoutMs or more that were not reported yet; marks them reported. */
  overdue(nowMs: number, timeoutMs: number): PendingOp<K>[] {
    const out: PendingOp<K>[] = [];
    for (const op of this.ops.values()) {
      if (nowMs - op.startMs < timeoutMs) break; // the rest started later
      if (op.timedOut) continue;
      op.timedOut = true;
      out.push(op);
    }
    return out;
  }

  /** Pending ops that started at least ageMs before nowMs, oldest first. */
  pendingOlderThan(nowMs: number, ageMs: number): PendingOp<K>[] {
    const out: PendingOp<K>[] = [];
    for (const op of this.ops.values()) {
      if (nowMs - op.startMs < ageMs) break;
      out.push(op);
    }
    return out;
  }

  /** How long the oldest pending op has been waiting (0 when none). */
  oldestAgeMs(nowMs: number): number {
    for (const op of this.ops.values()) return Math.max(0, nowMs - op.startMs);
    return 0;
  }
}
