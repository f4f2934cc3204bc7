/**
 * Watches the live directory for changes made behind the mount's back (another host, a restore,
 * an admin with `cp`): an affected file's shadow copies are invalidated. Opening a file checks
 * size and mtime too, so a change the watcher misses (inotify overflow, a remount) is still caught.
 */
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
    const w = watch(this.livePath, { ignoreInitial: true, persistent: true, followSymlinks: false });
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
