/**
 * A lean HTTPS client for the benchmark's own traffic to the API server
 * (creates, the ceiling's status PUTs, /metrics, the one watch). It talks
 * JSON over keep-alive sockets with the admin client certificate from the
 * kubeconfig, so the load generator spends as little CPU as possible on the
 * 2-core machine it shares with the API server, etcd and the operator.
 */
import { randomBytes } from 'node:crypto';
import { request, Agent } from 'node:https';
import type { IncomingMessage } from 'node:http';
import * as k8s from '@kubernetes/client-node';

export class ApiError extends Error {
  constructor(readonly status: number, readonly body: string, what: string) {
    super(`${what}: HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

export interface Tls {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

export class Api {
  readonly agent: Agent;

  private constructor(readonly server: string, private readonly tls: Tls, maxSockets: number) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, ...tls });
  }

  static async fromKubeconfig(path: string, maxSockets = 256): Promise<Api> {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(path);
    const opts: Record<string, unknown> = {};
    await kc.applyToHTTPSOptions(opts);
    return new Api(kc.getCurrentCluster()!.server, { ca: opts.ca as Buffer, cert: opts.cert as Buffer, key: opts.key as Buffer }, maxSockets);
  }

  /** One request; resolves with status and body text whatever the status. */
  raw(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: string }> {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        this.server + path,
        {
          method,
          agent: this.agent,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw(method, path, body);
    if (r.status < 200 || r.status > 299) throw new ApiError(r.status, r.body, `${method} ${path}`);
    return JSON.parse(r.body) as T;
  }

  /** GET /metrics of the API server (the admin certificate is system:masters). */
  async metrics(): Promise<string> {
    const r = await this.raw('GET', '/metrics');
    if (r.status !== 200) throw new ApiError(r.status, r.body, 'GET /metrics');
    return r.body;
  }

  /**
   * A watch that survives disconnects (resumes from the last resourceVersion
   * seen). Calls onEvent for every ADDED/MODIFIED/DELETED. Returns a stop function.
   */
  watch(path: string, onEvent: (type: string, obj: any) => void, fromResourceVersion = ''): { stop(): void; ready: Promise<void> } {
    let rv = fromResourceVersion;
    let stopped = false;
    let current: IncomingMessage | undefined;
    let readyResolve!: () => void;
    const ready = new Promise<void>((r) => (readyResolve = r));
    const agent = new Agent({ keepAlive: false, ...this.tls });
    const connect = () => {
      if (stopped) return;
      const q = `watch=1&allowWatchBookmarks=true&timeoutSeconds=3600${rv ? `&resourceVersion=${rv}` : ''}`;
      const req = request(this.server + path + (path.includes('?') ? '&' : '?') + q, { agent, headers: { accept: 'application/json' } }, (res) => {
        current = res;
        if (res.statusCode !== 200) {
          res.resume();
          setTimeout(connect, 200);
          return;
        }
        readyResolve();
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (!line) continue;
            const ev = JSON.parse(line) as { type: string; object: any };
            if (ev.type === 'ERROR') {
              // 410 Gone: start over from now (not expected within a benchmark run).
              if (ev.object?.code === 410) rv = '';
              continue;
            }
            if (ev.object?.metadata?.resourceVersion) rv = ev.object.metadata.resourceVersion;
            if (ev.type === 'BOOKMARK') continue;
            onEvent(ev.type, ev.object);
          }
        });
        res.on('end', () => setTimeout(connect, 10));
        res.on('error', () => undefined);
      });
      req.on('error', () => setTimeout(connect, 200));
      req.end();
    };
    connect();
    return {
      ready,
      stop() {
        stopped = true;
        current?.destroy();
        agent.destroy();
      },
    };
  }
}

/** apiserver_request_total samples, keyed by their label set. */
export type RequestCounts = Array<{ labels: Record<string, string>; value: number }>;

export function parseRequestTotals(text: string): RequestCounts {
  const out: RequestCounts = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const m = /^apiserver_request_total\{([^}]*)\}\s+([0-9.eE+-]+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const kv of m[1]!.matchAll(/([a-z_]+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

export function sumRequests(c: RequestCounts, filter: (l: Record<string, string>) => boolean): number {
  let s = 0;
  for (const x of c) if (filter(x.labels)) s += x.value;
  return s;
}

/** after − before, per label set. */
export function diffRequests(before: RequestCounts, after: RequestCounts): RequestCounts {
  const key = (l: Record<string, string>) => JSON.stringify(Object.entries(l).sort());
  const b = new Map(before.map((x) => [key(x.labels), x.value]));
  return after.map((x) => ({ labels: x.labels, value: x.value - (b.get(key(x.labels)) ?? 0) })).filter((x) => x.value !== 0);
}

/** Value of a metric in Prometheus text (first sample whose name matches exactly and labels include `labels`). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

/** Bytes of an object's metadata.managedFields as JSON (server-side apply's record, stored and sent with every write). */
export function managedFieldsBytes(obj: { metadata?: object }): number {
  return JSON.stringify((obj.metadata as { managedFields?: unknown[] } | undefined)?.managedFields ?? []).length;
}

/** A namespace of the benchmark's own (labelled kubetx.io/bench), with a random suffix. */
export async function newNamespace(api: Api, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await api.json('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubetx.io/bench': 'true' } } });
  return name;
}
