/**
 * Lets the volume switch between the live volume and the shadows without an op straddling the
 * switch: ops enter shared; the switch waits until none is inside and holds new ones back while
 * it runs (failback's final resync pass and the flip of the mode).
 */
export class ModeGate {
  private active = 0;
  private switching: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  private readonly leave = (): void => {
    this.active--;
    if (this.active === 0) this.drained?.();
  };

  /** Enter shared; undefined while a switch is running (then await `enter`). */
  tryEnter(): (() => void) | undefined {
    if (this.switching) return undefined;
    this.active++;
    return this.leave;
  }

  async enter(): Promise<() => void> {
    while (this.switching) await this.switching;
    this.active++;
    return this.leave;
  }

  /** Run `fn` with no op inside and none entering. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.switching) await this.switching;
    let done: () => void = () => undefined;
    this.switching = new Promise<void>((r) => (done = r));
    try {
      if (this.active > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return await fn();
    } finally {
      this.switching = undefined;
      done();
    }
  }
}
