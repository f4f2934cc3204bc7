/**
 * A real S3-protocol server (s3rver) on loopback for tests: a free port, a temp data directory,
 * one bucket. `stop()`/`start()` simulate an outage and recovery on the same port and data;
 * `close()` stops it for good and deletes its data.
 *
 *   const s3 = await startS3Server();
 *   t.teardown(() => s3.close());
 *   useS3Credentials();                      // the SDK's default provider chain reads env
 *   const spec = { endpoint: s3.endpoint, bucket: s3.bucket, region: S3_TEST_REGION, ... };
 */
import { ChildProcess, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** s3rver accepts only this key pair for signed requests. */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';
export const S3_TEST_REGION = 'us-east-1';

/** Set the env credentials s3rver accepts (the AWS SDK default provider chain reads them). */
export function useS3Credentials(): void {
  process.env.AWS_ACCESS_KEY_ID = S3RVER_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_SECRET_ACCESS_KEY;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

export interface S3TestServer {
  /** e.g. http://127.0.0.1:41234 */
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly directory: string;
  running(): boolean;
  /** Kill the server process (an outage: every connection drops), keeping the data. */
  stop(): Promise<void>;
  /** Start again on the same port with the same data. */
  start(): Promise<void>;
  /** Stop (if running) and delete the data directory. Idempotent. */
  close(): Promise<void>;
}

const SERVER_SCRIPT = path.resolve(__dirname, '../../fixtures/s3/s3rver-process.js');

export async function startS3Server(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'shadowfs-test';
  const directory = await fsp.mkdtemp(path.join(os.tmpdir(), 'shadowfs-s3rver-'));
  let child: ChildProcess | undefined;
  let port = 0; // 0: let the kernel pick a free port the first time, then reuse it

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(process.execPath, [SERVER_SCRIPT, '--dir', directory, '--bucket', bucket, '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      proc.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening`)));
    });
    child = proc;
  };

  const stop = async (): Promise<void> => {
    const current = child;
    if (!current) return;
    child = undefined;
    const exited = new Promise((r) => current.once('exit', r));
    // SIGKILL: an outage, with every open connection dropped at once.
    current.kill('SIGKILL');
    await exited;
  };

  try {
    await start();
  } catch (err) {
    await fsp.rm(directory, { recursive: true, force: true });
    throw err;
  }

  return {
    get endpoint() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    bucket,
    directory,
    running: () => child !== undefined,
    stop,
    start,
    close: async () => {
      await stop();
      await fsp.rm(directory, { recursive: true, force: true });
    },
  };
}
