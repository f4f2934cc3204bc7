/**
 * Progress for long operations: a bar on a terminal, plain lines (at most one every few seconds)
 * when the output is a file or a pipe.
 */
import { SingleBar, Presets } from 'cli-progress';

export interface Progress {
  update(done: number, total: number, detail?: string): void;
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /**
   * Said on Ctrl-C (or SIGTERM) for work that goes on without us: the mount runs it, and leaving
   * the command does not stop it.
   */
  interruptNote?: string;
}

const PLAIN_EVERY_MS = 2000;
const EXIT_INTERRUPTED = 130;

export function progress(label: string, { stream = process.stderr, interruptNote }: ProgressOptions = {}): Progress {
  const shown = stream.isTTY ? terminalBar(label, stream) : plainLines(label, stream);
  // Ctrl-C: the bar hid the cursor and turned off line wrapping; put the terminal back before exiting.
  const interrupted = (): void => {
    shown.stop();
    if (interruptNote) stream.write(`shadowfs: ${interruptNote}\n`);
    process.exit(EXIT_INTERRUPTED);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  // A poll answered after stop() must not bring the bar (and its hidden cursor) back.
  let stopped = false;
  return {
    update: (done, total, detail) => (stopped ? undefined : shown.update(done, total, detail)),
    stop() {
      stopped = true;
      process.removeListener('SIGINT', interrupted);
      process.removeListener('SIGTERM', interrupted);
      shown.stop();
    },
  };
}

function terminalBar(label: string, stream: NodeJS.WriteStream): Progress {
  const bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} {detail}`, stream, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    update(done, total, detail = '') {
      if (!started) {
        bar.start(Math.max(total, 1), done, { detail });
        started = true;
      }
      bar.setTotal(Math.max(total, 1));
      bar.update(done, { detail });
    },
    stop: () => (started ? bar.stop() : undefined),
  };
}

function plainLines(label: string, stream: NodeJS.WriteStream): Progress {
  let lastMs = 0;
  let lastLine = '';
  return {
    update(done, total, detail = '') {
      const now = Date.now();
      if (now - lastMs < PLAIN_EVERY_MS && done < total) return;
      const line = `${label}: ${done}/${total}${detail ? ' ' + detail : ''}`;
      // Work that is done but not yet over (a drain waiting for its last copies) is polled on: its
      // last line is said once, not at every poll.
      if (done >= total && line === lastLine) return;
      lastMs = now;
      lastLine = line;
      stream.write(`${line}\n`);
    },
    stop: () => undefined,
  };
}
