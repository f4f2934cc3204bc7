/**
 * Progress for long operations: a bar on a terminal, plain lines (at most one every few seconds)
 * when the output is a file or a pipe.
 */
import { SingleBar, Presets } from 'cli-progress';

export interface Progress {
  update(done: number, total: number, detail?: string): void;
  stop(): void;
}

const PLAIN_EVERY_MS = 2000;

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
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
  let lastMs = 0;
  return {
    update(done, total, detail = '') {
      const now = Date.now();
      if (now - lastMs < PLAIN_EVERY_MS && done < total) return;
      lastMs = now;
      stream.write(`${label}: ${done}/${total}${detail ? ' ' + detail : ''}\n`);
    },
    stop: () => undefined,
  };
}
