/**
 * A plain HTTP server on 127.0.0.1 only, for what a running mount serves to the local machine
 * (Prometheus metrics, the dashboard). Port 0 picks any free port; `start` returns the one bound.
 */
import * as http from 'node:http';

export class LocalHttpServer {
  private server: http.Server | undefined;

  constructor(private readonly handle: http.RequestListener) {}

  async start(port: number): Promise<number> {
    const server = http.createServer(this.handle);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    // Open keep-alive or event-stream connections would otherwise hold close() forever.
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
