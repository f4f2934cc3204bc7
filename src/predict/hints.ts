import type { ExtentRef } from '../tiers/tier';
import type { FileAccessMode } from './sequential';

/**
 * Application hints and pins: what an application (or an operator) knows that the history cannot.
 * They are plain data so the control API can accept them from the CLI, they persist with the
 * workload history, and they reach the planner only through the heat predictor (hints) and the
 * `pinnedTier` field of a planner extent (pins). Every hint expires; the book is bounded.
 *
 * - willneed: the range will be read soon -> predicted accesses raised to at least
 *   `expectedAccesses` until `untilUs` (pre-staged like a forecast spike).
 * - dontneed: the range will not be read again soon -> predicted accesses 0 (first to go).
 * - sequential / random: how the file is read -> full readahead at once, or no stream detection.
 * - periodic: the range is read every `periodUs`, next at `nextAtUs` -> seeds the period estimate so
 *   the first run is already pre-staged.
 * Pins (`PinHint`) hold a range on a named tier regardless of heat (within its capacity).
 */
export type HintKind = 'willneed' | 'dontneed' | 'sequential' | 'random' | 'periodic';

export interface ExtentRange {
  fileId: string;
  /** First extent index (inclusive); default 0. */
  fromIndex?: number;
  /** Last extent index (inclusive); default: to the end of the file. */
  toIndex?: number;
}

export interface AccessHint extends ExtentRange {
  kind: HintKind;
  /** willneed: expected accesses per prediction horizon (default 4). */
  expectedAccesses?: number;
  /** periodic: the period and the next expected run. */
  periodUs?: number;
  nextAtUs?: number;
  /** Hint stops applying at this time; default: `DEFAULT_HINT_TTL_US` after it was given. */
  untilUs?: number;
}

export interface PinHint extends ExtentRange {
  tier: string;
  untilUs?: number;
}

export const DEFAULT_HINT_TTL_US = 3600e6;
export const DEFAULT_WILLNEED_ACCESSES = 4;
/** Bound on live hints and pins each; the oldest is dropped first. */
export const MAX_HINTS = 1024;
/** Bound on extents one hint contributes as planning candidates per round. */
export const MAX_HINT_CANDIDATES = 4096;

interface StoredHint extends AccessHint {
  untilUs: number;
  givenAtUs: number;
}
interface StoredPin extends PinHint {
  untilUs: number;
  givenAtUs: number;
}

/** What the hints say about one extent at one time. */
export interface HintEffect {
  /** Predicted accesses are at least this (willneed). */
  minAccesses: number;
  /** dontneed: predicted accesses forced to 0. */
  suppress: boolean;
  pinnedTier?: string;
  periodic?: { periodUs: number; nextAtUs: number };
}

export const NO_HINT: Readonly<HintEffect> = Object.freeze({ minAccesses: 0, suppress: false });

function covers(r: ExtentRange, fileId: string, index: number): boolean {
  return r.fileId === fileId && index >= (r.fromIndex ?? 0) && index <= (r.toIndex ?? Number.POSITIVE_INFINITY);
}

export function validateRange(r: ExtentRange, what: string): void {
  if (typeof r.fileId !== 'string' || r.fileId === '') throw new Error(`${what}: fileId is required`);
  const from = r.fromIndex ?? 0;
  const to = r.toIndex ?? Number.POSITIVE_INFINITY;
  if (!Number.isInteger(from) || from < 0 || !(to >= from)) throw new Error(`${what}: bad extent range ${from}..${to}`);
}

export class HintBook {
  private hints: StoredHint[] = [];
  private pins: StoredPin[] = [];
  /** Bumped on every change, so persistence and caches know when to refresh. */
  version = 0;

  addHint(hint: AccessHint, nowUs: number): void {
    validateRange(hint, `hint ${hint.kind}`);
    if (hint.kind === 'periodic' && !(hint.periodUs !== undefined && hint.periodUs > 0 && hint.nextAtUs !== undefined)) {
      throw new Error('periodic hint needs periodUs > 0 and nextAtUs');
    }
    const untilUs = hint.untilUs ?? (hint.kind === 'periodic' ? Number.POSITIVE_INFINITY : nowUs + DEFAULT_HINT_TTL_US);
    // A new hint on the same range and kind replaces the old one rather than stacking.
    this.hints = this.hints.filter((h) => !(h.kind === hint.kind && sameRange(h, hint)));
    this.hints.push({ ...hint, untilUs, givenAtUs: nowUs });
    if (this.hints.length > MAX_HINTS) this.hints.splice(0, this.hints.length - MAX_HINTS);
    this.version++;
  }

  addPin(pin: PinHint, nowUs: number): void {
    validateRange(pin, `pin to ${pin.tier}`);
    this.pins = this.pins.filter((p) => !sameRange(p, pin));
    this.pins.push({ ...pin, untilUs: pin.untilUs ?? Number.POSITIVE_INFINITY, givenAtUs: nowUs });
    if (this.pins.length > MAX_HINTS) this.pins.splice(0, this.pins.length - MAX_HINTS);
    this.version++;
  }

  removePin(range: ExtentRange): boolean {
    const before = this.pins.length;
    this.pins = this.pins.filter((p) => !sameRange(p, range));
    if (this.pins.length !== before) this.version++;
    return this.pins.length !== before;
  }

  clearHints(fileId?: string): void {
    this.hints = fileId === undefined ? [] : this.hints.filter((h) => h.fileId !== fileId);
    this.version++;
  }

  /** Drop expired hints and pins. */
  expire(nowUs: number): void {
    const h = this.hints.length;
    const p = this.pins.length;
    this.hints = this.hints.filter((x) => x.untilUs > nowUs);
    this.pins = this.pins.filter((x) => x.untilUs > nowUs);
    if (h !== this.hints.length || p !== this.pins.length) this.version++;
  }

  get empty(): boolean {
    return this.hints.length === 0 && this.pins.length === 0;
  }

  listHints(): readonly AccessHint[] {
    return this.hints;
  }

  listPins(): readonly PinHint[] {
    return this.pins;
  }

  /** The combined effect on one extent; the latest hint wins on conflicts. */
  effect(fileId: string, index: number, nowUs: number): HintEffect {
    if (this.empty) return NO_HINT;
    let e: HintEffect | undefined;
    for (const h of this.hints) {
      if (h.untilUs <= nowUs || !covers(h, fileId, index)) continue;
      e ??= { minAccesses: 0, suppress: false };
      switch (h.kind) {
        case 'willneed':
          e.minAccesses = Math.max(e.minAccesses, h.expectedAccesses ?? DEFAULT_WILLNEED_ACCESSES);
          e.suppress = false;
          break;
        case 'dontneed':
          e.suppress = true;
          e.minAccesses = 0;
          break;
        case 'periodic':
          e.periodic = { periodUs: h.periodUs ?? 0, nextAtUs: h.nextAtUs ?? 0 };
          break;
        default:
          break;
      }
    }
    for (const p of this.pins) {
      if (p.untilUs <= nowUs || !covers(p, fileId, index)) continue;
      e ??= { minAccesses: 0, suppress: false };
      e.pinnedTier = p.tier;
    }
    return e ?? NO_HINT;
  }

  /** How a file is read, per the latest sequential/random hint. */
  fileMode(fileId: string, nowUs: number): FileAccessMode {
    let mode: FileAccessMode = 'normal';
    for (const h of this.hints) {
      if (h.fileId !== fileId || h.untilUs <= nowUs) continue;
      if (h.kind === 'sequential') mode = 'sequential';
      else if (h.kind === 'random') mode = 'random';
    }
    return mode;
  }

  /**
   * Extents hints and pins want considered this round even if the history has never seen them
   * (willneed, due periodic runs, pins). `fileExtents` gives a file's extent count if known.
   */
  candidates(nowUs: number, leadUs: number, fileExtents: (fileId: string) => number | undefined): ExtentRef[] {
    const out: ExtentRef[] = [];
    const push = (r: ExtentRange): void => {
      const count = fileExtents(r.fileId);
      const from = r.fromIndex ?? 0;
      // An open-ended range needs the file size; without it only its first extent is known.
      const last = Math.min(r.toIndex ?? (count === undefined ? from : count - 1), count === undefined ? Number.POSITIVE_INFINITY : count - 1);
      const to = Math.min(last, from + MAX_HINT_CANDIDATES - 1);
      for (let i = from; i <= to && out.length < MAX_HINT_CANDIDATES * 4; i++) out.push({ fileId: r.fileId, index: i });
    };
    for (const h of this.hints) {
      if (h.untilUs <= nowUs) continue;
      if (h.kind === 'willneed') push(h);
      else if (h.kind === 'periodic' && h.periodUs !== undefined && h.nextAtUs !== undefined) {
        const next = nextOccurrence(h.nextAtUs, h.periodUs, nowUs);
        if (next - nowUs <= leadUs) push(h);
      }
    }
    for (const p of this.pins) if (p.untilUs > nowUs) push(p);
    return out;
  }

  /** Plain data for persistence (infinite expiries must be encoded by the caller). */
  toJSON(): { hints: AccessHint[]; pins: PinHint[] } {
    return { hints: this.hints, pins: this.pins };
  }

  static fromJSON(data: { hints?: unknown; pins?: unknown }): HintBook {
    const book = new HintBook();
    const restore = <T extends { untilUs?: number; givenAtUs?: number }>(x: T): T & { untilUs: number; givenAtUs: number } => ({
      ...x,
      untilUs: typeof x.untilUs === 'number' ? x.untilUs : Number.POSITIVE_INFINITY,
      givenAtUs: typeof x.givenAtUs === 'number' ? x.givenAtUs : 0,
    });
    if (Array.isArray(data.hints)) book.hints = (data.hints as AccessHint[]).map(restore);
    if (Array.isArray(data.pins)) book.pins = (data.pins as PinHint[]).map(restore);
    return book;
  }
}

function sameRange(a: ExtentRange, b: ExtentRange): boolean {
  return a.fileId === b.fileId && (a.fromIndex ?? 0) === (b.fromIndex ?? 0) && (a.toIndex ?? -1) === (b.toIndex ?? -1);
}

/** First occurrence of a periodic event (anchor + k * period) that has not ended before now. */
export function nextOccurrence(anchorUs: number, periodUs: number, nowUs: number): number {
  if (nowUs <= anchorUs) return anchorUs;
  const k = Math.ceil((nowUs - anchorUs) / periodUs);
  return anchorUs + k * periodUs;
}

/** Something that holds a hint book: the workload history. */
export interface HasHints {
  readonly hints: HintBook;
}

/** Wall-clock time in microseconds (the time base of a live mount's history). */
function wallClockUs(): number {
  return Date.now() * 1000;
}

/** Record an application hint; it takes effect at the next prediction. */
export function applyHint(history: HasHints, hint: AccessHint, nowUs: number = wallClockUs()): void {
  history.hints.addHint(hint, nowUs);
}

/** Pin a range to a tier; the planner then places it there first (within capacity). */
export function applyPin(history: HasHints, pin: PinHint, nowUs: number = wallClockUs()): void {
  history.hints.addPin(pin, nowUs);
}

export function removePin(history: HasHints, range: ExtentRange): boolean {
  return history.hints.removePin(range);
}
