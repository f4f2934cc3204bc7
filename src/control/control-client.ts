/** Sends one request to a mount's control socket and returns the result (or a one-line error). */
import * as net from 'node:net';
import * as path from 'node:path';
import { isStaleShadowfsMount } from '../fuse/mount-table';
import { ShadowfsError, errorCode } from '../util/errors';
import { ControlReply, ControlRequest } from './protocol';
import { socketFile } from './runtime-files';

/** A shadowfs mount whose daemon died (kill -9, a crash): not the same as no mount at all. */
export function staleMountMessage(mountpoint: string): string {
  return `${mountpoint} is a stale shadowfs mount (its daemon is gone); \`shadowfs unmount ${mountpoint}\` clears it`;
}

/** Nothing answers on the control socket: a stale mount, or no shadowfs mount there at all. */
async function nobodyAnswers(mountpoint: string): Promise<ShadowfsError> {
  const stale = await isStaleShadowfsMount(mountpoint).catch(() => false);
  return new ShadowfsError(stale ? staleMountMessage(mountpoint) : `${mountpoint} is not a running shadowfs mount`);
}

export async function controlRequest(mountpoint: string, req: ControlRequest, timeoutMs = 30_000): Promise<unknown> {
  const sockPath = socketFile(path.resolve(mountpoint));
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(sockPath);
    let buf = '';
    let answered = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ShadowfsError(`${mountpoint}: the mount did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      answered = true;
      sock.end();
      const reply = JSON.parse(buf.slice(0, nl)) as ControlReply;
      if (reply.ok) resolve(reply.result);
      else reject(new ShadowfsError(reply.error));
    });
    // The daemon went away mid-request (it exited or was killed): say so now, not at the timeout.
    sock.on('close', () => {
      if (answered) return;
      clearTimeout(timer);
      reject(new ShadowfsError(`${mountpoint}: the mount's daemon closed the connection without answering (did it exit? see its log)`));
    });
    sock.on('error', (err) => {
      answered = true;
      clearTimeout(timer);
      const code = errorCode(err);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') void nobodyAnswers(mountpoint).then(reject);
      else if (code === 'EACCES') reject(new ShadowfsError(`${mountpoint}: permission denied (the control socket is root's)`));
      else reject(new ShadowfsError(`${mountpoint}: ${(err as Error).message}`));
    });
  });
}
