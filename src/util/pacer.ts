/**
 * Keeps background work (copies, resync, scrub) to a byte rate on average, so that it leaves the
 * devices to the foreground: each caller books the bytes it is about to move and waits its turn.
 * The rate is read at every booking, so a reloaded setting applies to the next one.
 */
export class Pacer {
  private nextAtMs = 0;

  constructor(private readonly bytesPerSec: () => number, private readonly nowMs: () => number = Date.now) {}

  /** Books `bytes`; returns how long to wait (ms) before moving them. */
  book(bytes: number): number {
    const now = this.nowMs();
    const at = Math.max(now, this.nextAtMs);
    this.nextAtMs = at + (bytes * 1000) / this.bytesPerSec();
    return at - now;
  }

  /** Books `bytes` and waits until they may move. */
  async take(bytes: number): Promise<void> {
    const ms = this.book(bytes);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }
}
