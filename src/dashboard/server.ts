/**
 * kubetx dashboard: a web UI on localhost that talks to the Kubernetes API
 * with the user's own kubeconfig credentials (the way `kubectl proxy` or
 * argo's --auth-mode=client do). The browser never sees those credentials; it
 * gets a narrow JSON API:
 *
 *   GET  /api/config                                  read-only?, context, namespace scope
 *   GET  /api/stream                                  Server-Sent Events: `snapshot` (a list), then `change`
 *                                                     (one watch event) for as long as the page is open
 *   GET  /api/transactions/NS/NAME                    one transaction
 *   GET  /api/transactions/NS/NAME/events             its events.k8s.io Events
 *   GET  /api/transactions/NS/NAME/events/stream      the same as Server-Sent Events (list, then watch)
 *   POST /api/transactions/NS/NAME/retry              sets kubetx.io/retry (actions.ts)
 *   POST /api/transactions/NS/NAME/abort {reason}     sets kubetx.io/abort
 *
 * Every answer from the API server, a refusal included, is passed on with its
 * status code and message, so a 403 from RBAC reads the same as in kubectl.
 *
 * Security: it binds 127.0.0.1 unless told otherwise. A random token, made per
 * process and printed in the URL, is exchanged for an HttpOnly SameSite=Strict
 * cookie; every /api request needs that cookie, and a POST also needs the
 * token in the X-Kubetx-Token header, which a page from another origin cannot
 * send without a CORS preflight this server never answers. The Host header
 * must name the server itself (no DNS rebinding). With --read-only (in-cluster
 * mode, src/dashboard/main.ts) there is no token and no action at all: the
 * ServiceAccount's read-only RBAC is then what everyone who reaches the
 * Service gets.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../api/types.js';
import { requestAbort, requestRetry } from './actions.js';

export interface DashboardOptions {
  kc: k8s.KubeConfig;
  /** 0 picks a free port. @default 2746 */
  port?: number;
  /** @default "127.0.0.1" */
  address?: string;
  /** No retry/abort, no token (in-cluster mode). @default false */
  readOnly?: boolean;
  /** Watch one namespace instead of the whole cluster (for users who may only list there). */
  namespace?: string;
  /** The built UI (index.html, app.js, app.css). @default dist/dashboard, found next to this file */
  staticDir?: string;
  /** @default a random 32-hex-digit token */
  token?: string;
}

export interface Dashboard {
  /** Open this: it carries the token (no token in read-only mode). */
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const COOKIE = 'kubetx_dashboard';
type Listed = { items: object[]; metadata?: { resourceVersion?: string } };
const TX_PATH = /^\/api\/transactions\/([a-z0-9.-]{1,253})\/([a-z0-9.-]{1,253})(\/events|\/events\/stream|\/retry|\/abort)?$/;
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.map': 'application/json' };

/** dist/src/dashboard/server.js → dist/dashboard; src/dashboard/server.ts (through tsx) → dist/dashboard. */
export function defaultStaticDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [join(here, '../../dashboard'), join(here, '../../dist/dashboard')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? candidates[0]!;
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const readOnly = opts.readOnly ?? false;
  const token = opts.token ?? randomBytes(16).toString('hex');
  const staticDir = opts.staticDir ?? defaultStaticDir();
  const api = opts.kc.makeApiClient(k8s.CustomObjectsApi);
  const events = opts.kc.makeApiClient(k8s.EventsV1Api);
  const streams = new Set<() => void>();
  let port = 0;

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => sendApiError(res, err));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (!readOnly && !hostAllowed(req.headers.host, port)) return sendJson(res, 421, { message: 'unexpected Host header' });
    if (!url.pathname.startsWith('/api/')) return serveStatic(url, res);
    if (!readOnly && !hasCookie(req)) return sendJson(res, 401, { message: 'open the URL printed by kubectl dtx dashboard (it carries the token)' });

    if (url.pathname === '/api/config' && req.method === 'GET') {
      return sendJson(res, 200, { readOnly, context: opts.kc.getCurrentContext(), namespace: opts.namespace ?? null, token: readOnly ? null : token });
    }
    if (url.pathname === '/api/stream' && req.method === 'GET') {
      const path = opts.namespace ? `/apis/${GROUP}/${VERSION}/namespaces/${opts.namespace}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
      const list = () =>
        (opts.namespace
          ? api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: opts.namespace })
          : api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as Promise<Listed>;
      return stream(res, list, path, {}, (o) => slim(o as DistributedTransaction));
    }
    const m = TX_PATH.exec(url.pathname);
    if (!m) return sendJson(res, 404, { message: 'not found' });
    const ref = { namespace: m[1]!, name: m[2]! };
    const sub = m[3];
    if (req.method === 'GET' && !sub) {
      const tx = await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, ...ref });
      return sendJson(res, 200, slim(tx as DistributedTransaction));
    }
    if (req.method === 'GET' && sub === '/events/stream') {
      const fieldSelector = `regarding.name=${ref.name}`;
      const list = () => events.listNamespacedEvent({ namespace: ref.namespace, fieldSelector }) as Promise<Listed>;
      return stream(res, list, `/apis/events.k8s.io/v1/namespaces/${ref.namespace}/events`, { fieldSelector }, (o) => o);
    }
    if (req.method === 'GET' && sub === '/events') {
      const list = await events.listNamespacedEvent({ namespace: ref.namespace, fieldSelector: `regarding.name=${ref.name}` });
      return sendJson(res, 200, { items: list.items.filter((e) => e.regarding?.kind === 'DistributedTransaction' || e.regarding?.kind === undefined) });
    }
    if (req.method === 'POST' && (sub === '/retry' || sub === '/abort')) {
      if (readOnly) return sendJson(res, 405, { message: 'this dashboard runs read-only: use kubectl dtx retry|abort' });
      if (!headerToken(req, token)) return sendJson(res, 403, { message: 'missing or wrong X-Kubetx-Token header' });
      const body = await readBody(req);
      if (sub === '/retry') {
        await requestRetry(api, ref);
        return sendJson(res, 200, { message: `retry requested for ${ref.namespace}/${ref.name}; the operator acknowledges it in status.retryAcknowledged` });
      }
      const reason = typeof body.reason === 'string' ? body.reason.trim() : '';
      if (!reason) return sendJson(res, 400, { message: 'abort needs a reason (it is recorded in the transaction status and Events)' });
      await requestAbort(api, ref, reason.slice(0, 1024));
      return sendJson(res, 200, { message: `abort requested for ${ref.namespace}/${ref.name}; refused by the operator if the transaction has already decided` });
    }
    return sendJson(res, 405, { message: 'method not allowed' });
  }

  /** One real API watch per open stream: list, then watch from its resourceVersion; relist when the watch ends. */
  function stream(res: ServerResponse, list: () => Promise<Listed>, path: string, query: Record<string, string>, shape: (o: object) => object): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    let closed = false;
    let abort: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    const send = (event: string, data: unknown) => {
      if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const heartbeat = setInterval(() => !closed && res.write(': keep-alive\n\n'), 25_000);
    const stop = () => {
      closed = true;
      clearInterval(heartbeat);
      clearTimeout(timer);
      abort?.abort();
      streams.delete(stop);
      res.end();
    };
    streams.add(stop);
    res.on('close', stop);
    const again = (ms: number) => {
      if (!closed) timer = setTimeout(() => void cycle(), ms);
    };
    const cycle = async () => {
      try {
        const listed = await list();
        if (closed) return;
        send('snapshot', { items: listed.items.map(shape) });
        abort = await new k8s.Watch(opts.kc).watch(
          path,
          { ...query, resourceVersion: listed.metadata?.resourceVersion, allowWatchBookmarks: false },
          (type, obj: object) => {
            if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') send('change', { type, object: shape(obj) });
          },
          (err) => again(err ? 2000 : 100),
        );
        if (closed) abort.abort();
      } catch (err) {
        send('failure', apiError(err));
        again(5000);
      }
    };
    void cycle();
  }

  function serveStatic(url: URL, res: ServerResponse): void {
    if (!readOnly && url.searchParams.get('token') !== null) {
      // Trade the URL's token for a cookie, then drop it from the address bar (and from history).
      if (!safeEqual(url.searchParams.get('token')!, token)) return sendJson(res, 403, { message: 'wrong token' });
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
      res.writeHead(303, { Location: url.pathname });
      res.end();
      return;
    }
    const rel = url.pathname === '/' || !extname(url.pathname) ? 'index.html' : normalize(decodeURIComponent(url.pathname)).replace(/^[/\\]+/, '');
    const file = join(staticDir, rel);
    if (!file.startsWith(staticDir.endsWith(sep) ? staticDir : staticDir + sep) || !existsSync(file)) {
      if (rel === 'index.html') return sendJson(res, 500, { message: `no UI build in ${staticDir}: run npm run build:dashboard` });
      return sendJson(res, 404, { message: 'not found' });
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
      'X-Frame-Options': 'DENY',
    });
    res.end(readFileSync(file));
  }

  function hasCookie(req: IncomingMessage): boolean {
    const cookies = (req.headers.cookie ?? '').split(';').map((c) => c.trim());
    return cookies.some((c) => c.startsWith(`${COOKIE}=`) && safeEqual(c.slice(COOKIE.length + 1), token));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 2746, opts.address ?? '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const host = opts.address && opts.address !== '0.0.0.0' && opts.address !== '::' ? opts.address : '127.0.0.1';
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  return {
    url: readOnly ? base : `${base}?token=${token}`,
    port,
    token,
    close: async () => {
      for (const stop of [...streams]) stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function hostAllowed(host: string | undefined, port: number): boolean {
  if (!host) return false;
  return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host.toLowerCase());
}

function headerToken(req: IncomingMessage, token: string): boolean {
  const h = req.headers['x-kubetx-token'];
  return typeof h === 'string' && safeEqual(h, token);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** managedFields are most of an object's bytes and nothing the UI shows. */
function slim(tx: DistributedTransaction): DistributedTransaction {
  const { managedFields: _, ...metadata } = tx.metadata as DistributedTransaction['metadata'] & { managedFields?: unknown };
  return { ...tx, metadata };
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let raw = '';
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 16_384) throw Object.assign(new Error('request body too large'), { code: 413 });
  }
  if (!raw) return {};
  try {
    const v = JSON.parse(raw) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The API server's Status (code + message) out of a client-node error, or the error's own message. */
export function apiError(err: unknown): { code: number; message: string; reason?: string } {
  const e = err as { code?: unknown; body?: unknown; message?: string };
  const code = typeof e.code === 'number' && e.code >= 400 && e.code < 600 ? e.code : 502;
  let body: unknown = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* a plain text body */
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    const s = body as { message: string; reason?: string };
    return { code, message: s.message, ...(s.reason ? { reason: s.reason } : {}) };
  }
  return { code, message: typeof body === 'string' && body ? body : (e.message ?? String(err)) };
}

function sendApiError(res: ServerResponse, err: unknown): void {
  const e = apiError(err);
  if (res.headersSent) return void res.end();
  sendJson(res, e.code, e);
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}
