/** A FIFO async mutex: writes to one file are applied in order to the live file and its copies. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private held = 0;

  get locked(): boolean {
    return this.held > 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    this.held++;
    try {
      await prev;
      return await fn();
    } finally {
      this.held--;
      release();
    }
  }
}
