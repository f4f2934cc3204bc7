/**
 * Directory fsyncs, coalesced. A copy made visible by a rename needs a directory fsync that starts
 * after the rename. While one runs, later callers share the next one: N concurrent copies into a
 * directory cost about two directory fsyncs instead of N.
 */
import * as fsp from 'node:fs/promises';

interface DirState {
  running: Promise<void>;
  next: Promise<void> | undefined;
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class DirSyncer {
  private readonly state = new Map<string, DirState>();

  /** Resolves once an fsync of `dir` that started after this call has completed. */
  sync(dir: string): Promise<void> {
    const s = this.state.get(dir);
    if (!s) return this.begin(dir);
    // The running one may have started before the caller's rename: join the one after it.
    s.next ??= s.running.catch(() => undefined).then(() => this.begin(dir));
    return s.next;
  }

  private begin(dir: string): Promise<void> {
    const entry: DirState = { running: Promise.resolve(), next: undefined };
    entry.running = fsyncDir(dir).finally(() => {
      if (this.state.get(dir) === entry && !entry.next) this.state.delete(dir);
    });
    this.state.set(dir, entry);
    return entry.running;
  }
}
