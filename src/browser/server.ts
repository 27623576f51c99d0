/**
 * The page's only source of files: an HTTP server on 127.0.0.1, on an ephemeral port, that
 * answers GET for exactly the paths registered with it (the page, the tfjs bundles the user has
 * installed, the models being checked) and 404 for everything else: no directory listing, no
 * path resolution, so nothing else on disk is reachable.
 */
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';

type Body = Buffer | string | { file: string };

export class AssetServer {
  private readonly files = new Map<string, { body: Body; type: string }>();
  private server: http.Server | null = null;
  private port = 0;

  /** Serves `body` at `path` (exact match, e.g. "/m/1/model.json"). */
  add(path: string, body: Body, type: string): string {
    this.files.set(path, { body, type });
    return `${this.origin}${path}`;
  }

  remove(prefix: string): void {
    for (const path of [...this.files.keys()]) if (path.startsWith(prefix)) this.files.delete(path);
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = http.createServer((request, response) => {
      const path = (request.url ?? '').split('?')[0];
      const entry = request.method === 'GET' ? this.files.get(path) : undefined;
      if (!entry) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const body = typeof entry.body === 'object' && 'file' in entry.body ? fs.readFileSync(entry.body.file) : entry.body;
      response.writeHead(200, { 'content-type': entry.type, 'cache-control': 'no-store' }).end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  close(): void {
    this.server?.closeAllConnections?.();
    this.server?.close();
    this.server = null;
    this.files.clear();
  }
}
