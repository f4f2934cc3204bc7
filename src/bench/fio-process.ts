/** Running fio: one section of a job file at a time, JSON out, bounded in time, one-line errors. */
import { spawn, spawnSync } from 'node:child_process';
import { ShadowfsError } from '../util/errors';
import { FioJobResult, fioJobResults } from './fio-json';

/** "fio-3.33"; a one-line error when fio is not there. */
export function fioVersion(fio = 'fio'): string {
  const r = spawnSync(fio, ['--version'], { encoding: 'utf8' });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new ShadowfsError(code === 'ENOENT' ? 'fio is not installed (Debian: apt-get install fio)' : `cannot run fio: ${r.error.message}`);
  }
  return r.stdout.trim();
}

/** Beyond the job's runtime, what laying out its files may take before fio is judged hung. */
const SETUP_ALLOWANCE_MS = 120_000;

/** fio's first line that says what went wrong ("fio: ...", "verify: bad magic header ..."). */
function firstErrorLine(stderr: string, stdout: string): string {
  const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const hit = lines.find((l) => /error|verify|fio:|bad|fail/i.test(l) && !l.startsWith('{') && !l.startsWith('"'));
  return (hit ?? lines.find((l) => !l.startsWith('{') && !l.startsWith('"')) ?? 'no message').slice(0, 300);
}

/** Runs [section] of jobFile with `env` added; resolves with its jobs' numbers. `abort` stops fio. */
export function runFioSection(jobFile: string, section: string, env: Record<string, string>, runtimeSeconds: number, abort?: AbortSignal, fio = 'fio'): Promise<FioJobResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(fio, ['--output-format=json', `--section=${section}`, jobFile], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const stop = (): void => {
      child.kill('SIGINT');
    };
    abort?.addEventListener('abort', stop, { once: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timedOut = false;
    const limitMs = runtimeSeconds * 1000 + SETUP_ALLOWANCE_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, limitMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', stop);
      reject(new ShadowfsError(`cannot run fio: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', stop);
      if (abort?.aborted) return reject(new ShadowfsError(`interrupted during fio job ${section}`, 130));
      if (timedOut) return reject(new ShadowfsError(`fio job ${section} still running ${Math.round(limitMs / 1000)} s after it started: stopped (hung I/O?)`));
      if (code !== 0) return reject(new ShadowfsError(`fio job ${section} failed (exit ${code}): ${firstErrorLine(stderr, stdout)}`));
      try {
        resolve(fioJobResults(stdout).jobs);
      } catch (err) {
        reject(new ShadowfsError(`fio job ${section}: unreadable output: ${(err as Error).message}`));
      }
    });
  });
}
