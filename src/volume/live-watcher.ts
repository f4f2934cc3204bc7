/**
 * Watches the live directory for changes made behind the mount's back (another host, a restore,
 * an admin with `cp`): an affected file's shadow copies are invalidated. Opening a file checks
 * size and mtime too, so a change the watcher misses (inotify overflow, a remount) is still caught.
 */
import * as path from 'node:path';
import { RESERVED_NAMES } from '../failover/namespace-mirror';
import { watch, FSWatcher } from 'chokidar';
import { Logger } from '../util/log';

export class LiveWatcher {
  private watcher: FSWatcher | undefined;

  constructor(
    private readonly livePath: string,
    private readonly onChange: (livePath: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    // The watchdog rewrites its canary every second: not a change to the volume's data.
    const reserved = new Set([...RESERVED_NAMES].map((n) => path.join(this.livePath, n)));
    const w = watch(this.livePath, { ignoreInitial: true, persistent: true, followSymlinks: false, ignored: (p: string) => reserved.has(p) });
    this.watcher = w;
    const handle = (p: string): void => {
      this.onChange(p).catch((err: Error) => this.log.warn('watcher', `${p}: ${err.message}`));
    };
    w.on('change', handle);
    w.on('add', handle);
    w.on('error', (err: unknown) => this.log.warn('watcher', String(err)));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
