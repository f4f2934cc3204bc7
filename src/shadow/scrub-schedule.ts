/**
 * When the background scrub runs: an interval after the last whole scrub of the volume (kept in
 * the extent map, so remounts do not postpone it), paced to the scrub rate. A read checks a copy's
 * checksum only the first time after a mount, so without this a copy that rots while mounted is
 * served until an operator scrubs.
 *
 * A volume never scrubbed waits FIRST_SCRUB_DELAY_MS (or the interval, if shorter) after its
 * mount: not at once, which would hold every mount's first minutes; not a whole interval, which a
 * volume remounted more often than that would never reach.
 */
import { ExtentMap } from '../extents/extent-map';
import { Logger } from '../util/log';
import { Scrubber } from './scrubber';

export const FIRST_SCRUB_DELAY_MS = 3600_000;
/** setTimeout's limit (~24.8 days): a later due time is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ScrubSchedule {
  private timer: NodeJS.Timeout | undefined;
  private firstDueAtMs: number | undefined;
  /** After a failed scrub: not again before this (an interval later). */
  private notBeforeMs = 0;
  private stopped = false;

  constructor(
    /** The volume's scrubber, which an operator's `shadowfs scrub` runs too. */
    readonly scrubber: Scrubber,
    private readonly map: ExtentMap,
    /** null: no background scrub. */
    private intervalMs: number | null,
    private readonly log: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {}

  start(): void {
    this.arm();
  }

  /** A reload: the next scrub is due an interval after the last one (at once if that is past). */
  setIntervalMs(ms: number | null): void {
    this.intervalMs = ms;
    this.arm();
  }

  /** The background scrub's read rate, for the next copy it reads. */
  setRate(bytesPerSec: number): void {
    this.scrubber.bytesPerSec = bytesPerSec;
  }

  /** When the next background scrub starts; undefined when there is none. */
  nextDueAtMs(): number | undefined {
    if (this.intervalMs === null || this.stopped) return undefined;
    const last = this.map.lastScrubbedAtMs;
    if (last === undefined) this.firstDueAtMs ??= this.nowMs() + Math.min(this.intervalMs, FIRST_SCRUB_DELAY_MS);
    return Math.max(last === undefined ? (this.firstDueAtMs as number) : last + this.intervalMs, this.notBeforeMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.scrubber.stop();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const due = this.nextDueAtMs();
    if (due === undefined) return;
    this.timer = setTimeout(() => void this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, due - this.nowMs())));
    this.timer.unref();
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    const due = this.nextDueAtMs();
    if (due === undefined) return;
    if (due > this.nowMs()) return this.arm();
    this.log.info('scrub', 'background scrub started');
    try {
      const r = await this.scrubber.run({ paced: true });
      if (this.stopped) return;
      const said = `background scrub checked ${r.checkedCopies} copies (${r.checkedBytes} bytes): ${r.badCopies} bad, dropped and made again`;
      if (r.badCopies > 0) this.log.warn('scrub', said);
      else this.log.info('scrub', said);
    } catch (err) {
      this.log.error('scrub', `background scrub failed: ${(err as Error).message}`);
      this.notBeforeMs = this.nowMs() + (this.intervalMs ?? 0);
    }
    if (!this.stopped) this.arm();
  }
}
