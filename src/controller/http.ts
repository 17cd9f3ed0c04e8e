/** HTTP endpoints: /metrics (Prometheus), /healthz (alive and not stalled), /readyz (caches synced). */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export function parseBindAddress(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bind address "${addr}": want [host]:port`);
  return { host: addr.slice(0, i) || '0.0.0.0', port };
}

export async function serveHttp(
  addr: string,
  routes: { registry?: Registry; ready?: () => boolean; live?: () => boolean },
): Promise<{ server: Server; port: number }> {
  const { host, port } = parseBindAddress(addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics' && routes.registry) {
      routes.registry.metrics().then(
        (body) => res.writeHead(200, { 'Content-Type': routes.registry!.contentType }).end(body),
        (err) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    if (path === '/healthz') {
      const ok = routes.live?.() ?? true;
      return void res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'stalled: work is queued and no reconcile has ended in time');
    }
    if (path === '/readyz' && routes.ready) {
      const ok = routes.ready();
      return void res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'not ready');
    }
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  return { server, port: typeof bound === 'object' && bound ? bound.port : port };
}
