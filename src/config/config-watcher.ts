/**
 * Watches one config file (chokidar) and calls back once per burst of changes: an editor's save is
 * often several events (truncate, write, rename over the old file), and reading between them would
 * see a half-written file.
 */
import { watch, FSWatcher } from 'chokidar';
import { Logger } from '../util/log';

const SETTLE_MS = 150;

export class ConfigFileWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string,
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    // A single-file watch: chokidar's `atomic` handling turns an editor's rename-over-the-file
    // into one change. A deleted file is reported too (its reload is refused, saying so).
    const w = watch(this.file, { ignoreInitial: true, persistent: true });
    this.watcher = w;
    const changed = (): void => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.onChange();
      }, SETTLE_MS);
    };
    w.on('change', changed);
    w.on('add', changed);
    w.on('unlink', changed);
    w.on('error', (err: unknown) => this.log.warn('config', `watching ${this.file}: ${String(err)}`));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
