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
import { promises as fsp } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** s3rver accepts only this key pair for signed requests. */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';
export const S3_TEST_REGION = 'us-east-1';

/** The part of s3rver's (untyped) API we use. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string; configs: never[] }[];
}) => S3rverInstance;

// s3rver ships no type declarations; require keeps the untyped import local to this file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as S3rverConstructor;

export interface S3TestServer {
  /** e.g. http://127.0.0.1:41234 */
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly directory: string;
  running(): boolean;
  /** Stop listening and drop open connections (keep-alive sockets too), keeping the data. */
  stop(): Promise<void>;
  /** Start again on the same port with the same data. */
  start(): Promise<void>;
  /** Stop (if running) and delete the data directory. Idempotent. */
  close(): Promise<void>;
}

/** Set the env credentials s3rver accepts (the AWS SDK default provider chain reads them). */
export function useS3Credentials(): void {
  process.env.AWS_ACCESS_KEY_ID = S3RVER_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_SECRET_ACCESS_KEY;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

export async function startS3Server(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'shadowfs-test';
  const directory = await fsp.mkdtemp(path.join(os.tmpdir(), 'shadowfs-s3rver-'));
  let instance: S3rverInstance | undefined;
  let port = 0; // 0: let the kernel pick a free port the first time, then reuse it

  const start = async (): Promise<void> => {
    if (instance) return;
    const next = new S3rver({
      address: '127.0.0.1',
      port,
      silent: true,
      directory,
      configureBuckets: [{ name: bucket, configs: [] }],
    });
    const address = await next.run();
    port = address.port;
    instance = next;
  };

  const stop = async (): Promise<void> => {
    const current = instance;
    if (!current) return;
    instance = undefined;
    const closed = current.close();
    // Without this, the client's keep-alive sockets would keep talking to a "stopped" server.
    current.httpServer?.closeAllConnections();
    await closed;
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
    running: () => instance !== undefined,
    stop,
    start,
    close: async () => {
      await stop();
      await fsp.rm(directory, { recursive: true, force: true });
    },
  };
}
