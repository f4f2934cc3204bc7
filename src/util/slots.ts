/** At most `limit` calls of `run` are in progress at once; the others wait their turn, in order. */
export class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slots: limit must be a positive integer, got ${limit}`);
  }

  /** Calls in progress and waiting (for tests and metrics). */
  get inUse(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A slot freed while others wait passes straight to the first of them, so `running` never
    // drops below the limit in between and a newcomer cannot jump the queue.
    if (this.running < this.limit) this.running++;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
