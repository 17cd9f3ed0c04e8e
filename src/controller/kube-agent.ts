/**
 * One keep-alive HTTPS agent per TLS identity for every request to the API server.
 *
 * Why: @kubernetes/client-node 1.4 builds a new https.Agent for each request
 * (KubeConfig.applySecurityAuthentication → createAgent), so every status
 * write and Event pays a new TCP connection, a full TLS handshake and a new
 * SecureContext (parsing the CA and client key). That was more than half of
 * the operator's CPU at saturation; reusing the agent doubled throughput
 * (bench/RESULTS.md). The agent is keyed by everything that shapes the
 * connection, so a rotated client certificate (exec plugins) gets a new one.
 */
import { createHash } from 'node:crypto';
import type { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import type * as k8s from '@kubernetes/client-node';

/** Keep the last few identities only: rotation must not grow the cache without bound. */
const MAX_AGENTS = 4;

/**
 * An https.Agent that hands a freed keep-alive socket to the next request one
 * macrotask later. Why: client-node's node-fetch 2.x checks, when a chunked
 * response emits 'close', whether its socket still has a 'data' listener and
 * then fails the request with "Premature close". With keep-alive the agent
 * may already have given that socket to the next request (which listens for
 * 'data'), so a response that arrived whole is reported as failed — seen as
 * hundreds of failed status writes in a 500-transaction burst. Deferring the
 * agent's 'free' handling lets the finished response close first.
 */
export class DeferredFreeAgent extends HttpsAgent {
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'free') {
      setImmediate(() => super.emit(event, ...args));
      return true;
    }
    return super.emit(event, ...args);
  }
}

type CreateAgent = (cluster: k8s.Cluster | null, options: AgentOptions) => HttpAgent | HttpsAgent;

export interface ReuseOptions {
  /** Sockets per agent; watches hold one each for their lifetime. @default 64 */
  maxSockets?: number;
}

function fingerprint(cluster: k8s.Cluster | null, o: AgentOptions): string {
  const h = createHash('sha256');
  for (const part of [cluster?.server, o.ca, o.cert, o.key, o.pfx, o.passphrase, o.servername, String(o.rejectUnauthorized)]) {
    h.update(part === undefined ? '\0' : Array.isArray(part) ? part.map(String).join('\n') : (part as string | Buffer));
    h.update('\u0001');
  }
  return h.digest('hex');
}

/**
 * Makes `kc` hand out one shared keep-alive agent per TLS identity. Proxies
 * and plain-HTTP clusters keep client-node's own agents (rare, and their agent
 * classes take other options). Returns the number of agents made so far (for tests).
 */
export function reuseConnections(kc: k8s.KubeConfig, opts: ReuseOptions = {}): () => number {
  const target = kc as unknown as { createAgent: CreateAgent };
  const original = target.createAgent.bind(kc);
  const agents = new Map<string, HttpsAgent>();
  let made = 0;
  target.createAgent = (cluster, options) => {
    if (!cluster?.server?.startsWith('https:') || cluster.proxyUrl) return original(cluster, options);
    const key = fingerprint(cluster, options);
    let agent = agents.get(key);
    if (!agent) {
      agent = new DeferredFreeAgent({ ...options, keepAlive: true, maxSockets: opts.maxSockets ?? 64, maxFreeSockets: opts.maxSockets ?? 64 });
      made++;
      agents.set(key, agent);
      // Evicted agents are only forgotten, not destroyed: a watch may still be
      // streaming on one of their sockets; idle ones are closed by the server.
      for (const k of agents.keys()) {
        if (agents.size <= MAX_AGENTS) break;
        agents.delete(k);
      }
    } else {
      agents.delete(key); // LRU order: most recently used last
      agents.set(key, agent);
    }
    return agent;
  };
  return () => made;
}
