/**
 * The dashboard of a running mount, on 127.0.0.1 only (`--dashboard-port`): one static page, its
 * script, and the JSON snapshot the page polls every second. Read-only: nothing here changes the
 * mount.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { LocalHttpServer } from '../control/local-http';
import { ShadowfsError } from '../util/errors';
import { DashboardData } from './dashboard-data';

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'dashboard.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard-page.js', type: 'text/javascript; charset=utf-8' },
};
export const SNAPSHOT_PATH = '/api/snapshot';

/** The page assets are not compiled: found beside this module, or in the source tree beside dist/. */
function assetDir(): string {
  const candidates = [__dirname, path.resolve(__dirname, '../../../src/dashboard')];
  const dir = candidates.find((d) => fs.existsSync(path.join(d, 'dashboard.html')));
  if (!dir) throw new ShadowfsError(`dashboard page not found (looked in ${candidates.join(', ')})`);
  return dir;
}

export class DashboardServer {
  private readonly assets = new Map<string, { body: Buffer; type: string }>();
  private readonly http = new LocalHttpServer((req, res) => this.serve(req, res));
  private port = 0;

  constructor(private readonly data: DashboardData) {
    const dir = assetDir();
    for (const [url, a] of Object.entries(ASSETS)) this.assets.set(url, { body: fs.readFileSync(path.join(dir, a.file)), type: a.type });
  }

  async start(port: number): Promise<number> {
    try {
      this.port = await this.http.start(port);
    } catch (err) {
      throw new ShadowfsError(`cannot serve the dashboard on 127.0.0.1:${port}: ${(err as Error).message}`);
    }
    this.data.history.start();
    return this.port;
  }

  async stop(): Promise<void> {
    this.data.history.stop();
    await this.http.stop();
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const headers = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
    // Another site's page can point a name of its own at 127.0.0.1 (DNS rebinding): answer only
    // requests addressed to this machine by its loopback names.
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) {
      res.writeHead(421, headers).end('addressed to another host\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end('read-only\n');
      return;
    }
    const url = (req.url ?? '/').split('?')[0];
    if (url === SNAPSHOT_PATH) {
      let body: string;
      try {
        body = JSON.stringify(this.data.snapshot());
      } catch (err) {
        res.writeHead(500, headers).end(`${(err as Error).message}\n`);
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Type': 'application/json' }).end(body);
      return;
    }
    const asset = this.assets.get(url);
    if (!asset) {
      res.writeHead(404, headers).end('try /\n');
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': asset.type,
      'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    }).end(asset.body);
  }
}
