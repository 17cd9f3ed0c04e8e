/**
 * client-go's REST client metrics for every request the operator makes to the
 * API server: rest_client_requests_total{code,method,host} and
 * rest_client_request_duration_seconds{verb,host}, with client-go's label
 * values (rest/request.go: `sanitize`, controller-runtime's
 * client_go_adapter.go).
 *
 * The choke point: every request @kubernetes/client-node 1.4 sends — the
 * generated API clients (KubeConfig.applySecurityAuthentication) and Watch
 * (applyToFetchOptions), so informers, status writes, Events, Leases, list
 * pages — gets its HTTP agent from `KubeConfig.createAgent`, and node's
 * ClientRequest hands itself to that agent's `addRequest`. Wrapping
 * createAgent (after kube-agent.ts's reuseConnections, which makes it return
 * one shared agent) and patching each agent's addRequest once sees them all,
 * whatever client code made the request.
 *
 * Per request: the count when the response headers arrive (the status code),
 * or when the request closes without a response ("<error>"); the duration
 * from the request's creation until it closes, i.e. the response read to its
 * end, as client-go measures Do(). Watches count as GET with their initial
 * status code and, as in client-go (whose Watch() records no latency), add
 * no duration: theirs is the connection's lifetime.
 *
 * Label values are bounded: host is the API server's host:port from the
 * kubeconfig (one per cluster), method one of the HTTP methods, code a status
 * code 100–599 or "<error>".
 */
import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import type * as k8s from '@kubernetes/client-node';

export interface RestClientSink {
  /** One request: its HTTP status code or "<error>", its method, the API server's host:port. */
  request(code: string, method: string, host: string): void;
  /** A request's duration in seconds (not for watches). */
  latency(verb: string, host: string, seconds: number): void;
}

type CreateAgent = (cluster: k8s.Cluster | null, options: unknown) => Agent;
type AddRequest = (req: ClientRequest, options: unknown) => void;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const WATCH = /[?&]watch=(?:true|1)(?:&|$)/;

/** The host label: host:port of the API server URL, the port spelt out ("none" without a URL, as client-go). */
export function apiHost(server: string | undefined): string {
  if (!server) return 'none';
  try {
    const u = new URL(server);
    return u.port ? u.host : `${u.host}:${u.protocol === 'http:' ? 80 : 443}`;
  } catch {
    return 'none';
  }
}

/** The code label: the HTTP status, or "<error>" when there is none (client-go's sanitize). */
export function codeLabel(status: number | undefined): string {
  return status !== undefined && Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : '<error>';
}

const instrumented = new WeakSet<object>();

/** Makes `agent` report every request it carries to `sink` (once per agent, however often it is handed out). */
export function instrumentAgent(agent: Agent, host: string, sink: RestClientSink, now: () => number = () => performance.now()): Agent {
  if (instrumented.has(agent)) return agent;
  instrumented.add(agent);
  const target = agent as unknown as { addRequest: AddRequest };
  const addRequest = target.addRequest;
  target.addRequest = function (this: Agent, req: ClientRequest, options: unknown) {
    track(req, host, sink, now);
    return addRequest.call(this, req, options);
  };
  return agent;
}

function track(req: ClientRequest, host: string, sink: RestClientSink, now: () => number): void {
  const start = now();
  const method = METHODS.has(req.method) ? req.method : 'OTHER';
  const watch = WATCH.test(req.path);
  let counted = false;
  req.once('response', (res: IncomingMessage) => {
    counted = true;
    sink.request(codeLabel(res.statusCode), method, host);
  });
  // 'close' comes once the response has been read to its end, or when the request failed.
  req.once('close', () => {
    if (!counted) sink.request('<error>', method, host);
    if (!watch) sink.latency(method, host, (now() - start) / 1000);
  });
}

/** Every request `kc` makes from now on is counted in `sink`. Call it after reuseConnections. */
export function observeRequests(kc: k8s.KubeConfig, sink: RestClientSink): void {
  const target = kc as unknown as { createAgent: CreateAgent };
  const next = target.createAgent.bind(kc);
  // client-node asks for an agent per request: parse each server URL once.
  const hosts = new Map<string, string>();
  target.createAgent = (cluster, options) => {
    const server = cluster?.server ?? '';
    let host = hosts.get(server);
    if (host === undefined) {
      host = apiHost(server);
      if (hosts.size < 16) hosts.set(server, host);
    }
    return instrumentAgent(next(cluster, options), host, sink);
  };
}
