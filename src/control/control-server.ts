/**
 * The running mount's control socket: root-only (mode 0600 in a 0700 directory), one per mount
 * point, so one mount's socket never controls another. Handlers are registered by command name.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ShadowfsError } from '../util/errors';
import { makeDirs } from '../util/make-dirs';
import { Logger } from '../util/log';
import { ControlReply, ControlRequest } from './protocol';

export type ControlHandler = (req: ControlRequest) => Promise<unknown>;

const MAX_REQUEST_BYTES = 64 * 1024;

export class ControlServer {
  private server: net.Server | undefined;
  private readonly handlers = new Map<string, ControlHandler>();

  constructor(private readonly socketPath: string, private readonly log: Logger) {}

  on(command: string, handler: ControlHandler): void {
    this.handlers.set(command, handler);
  }

  async start(): Promise<void> {
    await makeDirs(path.dirname(this.socketPath), 0o700);
    fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer((sock) => this.serve(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    fs.chmodSync(this.socketPath, 0o600);
  }

  private serve(sock: net.Socket): void {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        this.reply(sock, { ok: false, error: 'request too large' });
        sock.end();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.handle(line).then((r) => this.reply(sock, r));
      }
    });
  }

  private reply(sock: net.Socket, reply: ControlReply): void {
    if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
  }

  private async handle(line: string): Promise<ControlReply> {
    let req: ControlRequest;
    try {
      req = JSON.parse(line) as ControlRequest;
      if (typeof req !== 'object' || req === null || typeof req.command !== 'string') throw new Error('no command');
    } catch {
      this.log.warn('control', 'refused a malformed request');
      return { ok: false, error: 'malformed request: expected a JSON object with a "command"' };
    }
    const handler = this.handlers.get(req.command);
    if (!handler) {
      this.log.warn('control', `refused unknown command ${JSON.stringify(req.command)}`);
      return { ok: false, error: `unknown command "${req.command}" (known: ${[...this.handlers.keys()].join(', ')})` };
    }
    try {
      return { ok: true, result: await handler(req) };
    } catch (err) {
      const msg = err instanceof ShadowfsError ? err.message : `internal error: ${(err as Error).message}`;
      this.log.warn('control', `${req.command} refused: ${msg}`);
      return { ok: false, error: msg };
    }
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    fs.rmSync(this.socketPath, { force: true });
  }
}
