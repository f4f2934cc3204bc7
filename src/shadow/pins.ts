/**
 * Pins and hints: what an operator or an application says about placement.
 * - a pin keeps every extent of a file on a named tier (copied there now, never evicted from it);
 * - a hint says a range of a file will be used soon: its extents are promoted to the fastest tier
 *   at the hinted time and protected from eviction for the hinted duration.
 * Pins survive remounts (a small JSON file in the state directory); hints are for the moment.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OpenFile } from '../volume/open-files';

export interface Pin {
  fileId: string;
  path: string;
  tier: string;
}

export interface Hint {
  fileId: string;
  path: string;
  firstIndex: number;
  lastIndex: number;
  fromMs: number;
  untilMs: number;
}

const MAX_HINTS = 10_000;

export class Placements {
  private readonly pins = new Map<string, Pin>();
  private hints: Hint[] = [];

  constructor(private readonly file: string) {
    try {
      for (const p of JSON.parse(fs.readFileSync(file, 'utf8')) as Pin[]) this.pins.set(p.fileId, p);
    } catch {
      // No pins yet (or an unreadable file: start without, the operator re-pins).
    }
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify([...this.pins.values()], null, 1));
    fs.renameSync(tmp, this.file);
  }

  pin(p: Pin): void {
    this.pins.set(p.fileId, p);
    this.save();
  }

  unpin(fileId: string): boolean {
    const had = this.pins.delete(fileId);
    if (had) this.save();
    return had;
  }

  pinOf(fileId: string): Pin | undefined {
    return this.pins.get(fileId);
  }

  allPins(): Pin[] {
    return [...this.pins.values()];
  }

  addHint(h: Hint): void {
    this.hints.push(h);
    if (this.hints.length > MAX_HINTS) this.hints.shift();
  }

  activeHints(nowMs: number): Hint[] {
    this.hints = this.hints.filter((h) => h.untilMs > nowMs);
    return this.hints.filter((h) => h.fromMs <= nowMs);
  }

  pendingHints(nowMs: number): Hint[] {
    this.hints = this.hints.filter((h) => h.untilMs > nowMs);
    return [...this.hints];
  }

  /** Eviction must not take this copy: a pin to this tier, or an active hint covering it. */
  isProtected(tierName: string, fileId: string, index: number, nowMs: number): boolean {
    if (this.pins.get(fileId)?.tier === tierName) return true;
    return this.hints.some((h) => h.fileId === fileId && index >= h.firstIndex && index <= h.lastIndex && h.fromMs <= nowMs && h.untilMs > nowMs);
  }
}

/** What enforcing pins and hints needs from the volume. */
export interface PlacementTarget {
  pinFile(livePath: string): Promise<OpenFile | undefined>;
  unpinFile(file: OpenFile): void;
  hasFreshCopy(fileId: string, index: number, tierName: string): boolean;
  fastestTier(): string | undefined;
  requestCopy(file: OpenFile, index: number, tierName: string): boolean;
  extentSizeBytes: number;
}

/** Once a second: every pinned or hinted extent that lacks its copy is asked for (bounded). */
export class PlacementEnforcer {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly placements: Placements, private readonly target: PlacementTarget, private readonly intervalMs = 1000) {}

  start(): void {
    this.timer = setInterval(() => void this.enforce(Date.now()), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async enforce(nowMs: number): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const fastest = this.target.fastestTier();
      const wants: { path: string; fileId: string; first: number; last: number; tier: string }[] = [];
      for (const p of this.placements.allPins()) wants.push({ path: p.path, fileId: p.fileId, first: 0, last: Number.MAX_SAFE_INTEGER, tier: p.tier });
      if (fastest) for (const h of this.placements.activeHints(nowMs)) wants.push({ path: h.path, fileId: h.fileId, first: h.firstIndex, last: h.lastIndex, tier: fastest });
      for (const w of wants) {
        const file = await this.target.pinFile(w.path);
        if (!file) continue;
        try {
          if (file.fileId !== w.fileId) continue;
          const count = Math.ceil(file.sizeBytes / this.target.extentSizeBytes);
          for (let i = w.first; i <= Math.min(w.last, count - 1); i++) {
            if (!this.target.hasFreshCopy(w.fileId, i, w.tier) && !this.target.requestCopy(file, i, w.tier)) break;
          }
        } finally {
          this.target.unpinFile(file);
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
