/**
 * rest_client_* for every request client-node makes: the generated API
 * clients and Watch, through KubeConfig.createAgent, against a local HTTP
 * server that plays the API server.
 */
import { createServer, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiHost, codeLabel, observeRequests, type RestClientSink } from '../../src/controller/rest-client-metrics.js';

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url.includes('watch=true')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(JSON.stringify({ type: 'ADDED', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'x', resourceVersion: '1' } } }) + '\n');
      setTimeout(() => res.end(), 50);
      return;
    }
    if (url.includes('/configmaps/broken')) return void req.socket.destroy();
    if (req.method === 'PUT') {
      res.writeHead(409, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Conflict', code: 409 }));
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'x', resourceVersion: '1' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  // client-node allows plain http only with skipTLSVerify.
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

function sink() {
  const requests: string[] = [];
  const latencies: Array<{ verb: string; host: string; seconds: number }> = [];
  const s: RestClientSink = {
    request: (code, method, host) => void requests.push(`${method} ${code} ${host}`),
    latency: (verb, host, seconds) => void latencies.push({ verb, host, seconds }),
  };
  return { s, requests, latencies };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('observeRequests', () => {
  it('counts API calls by code, method and host:port, with their durations', async () => {
    const kc = kubeConfig();
    const { s, requests, latencies } = sink();
    observeRequests(kc, s);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.readNamespacedConfigMap({ name: 'a', namespace: 'x' });
    await core.replaceNamespacedConfigMap({ name: 'a', namespace: 'x', body: { metadata: { name: 'a' } } }).catch((e: unknown) => e);
    await core.createNamespacedConfigMap({ namespace: 'x', body: { metadata: { name: 'b' } } });
    await expect(core.readNamespacedConfigMap({ name: 'broken', namespace: 'x' })).rejects.toThrow();
    await settle();
    const host = `127.0.0.1:${port}`;
    expect(requests).toEqual([`GET 200 ${host}`, `PUT 409 ${host}`, `POST 200 ${host}`, `GET <error> ${host}`]);
    expect(latencies.map((l) => l.verb)).toEqual(['GET', 'PUT', 'POST', 'GET']);
    expect(latencies.every((l) => l.host === host && l.seconds >= 0 && l.seconds < 10)).toBe(true);
  });

  it('counts a watch as GET with its initial code, and no duration (as client-go)', async () => {
    const kc = kubeConfig();
    const { s, requests, latencies } = sink();
    observeRequests(kc, s);
    const events: string[] = [];
    const ended = new Promise<void>((resolve) => {
      void new k8s.Watch(kc).watch('/api/v1/namespaces/x/configmaps', {}, (type) => events.push(type), () => resolve());
    });
    await ended;
    await settle();
    expect(events).toEqual(['ADDED']);
    expect(requests).toEqual([`GET 200 127.0.0.1:${port}`]);
    expect(latencies).toEqual([]);
  });

  it('instruments a shared agent once, however often createAgent hands it out', async () => {
    const kc = kubeConfig();
    const shared = new Agent({ keepAlive: true });
    (kc as unknown as { createAgent: () => Agent }).createAgent = () => shared;
    const { s, requests } = sink();
    observeRequests(kc, s);
    observeRequests(kc, s); // even wrapped twice
    const core = kc.makeApiClient(k8s.CoreV1Api);
    for (let i = 0; i < 3; i++) await core.readNamespacedConfigMap({ name: 'a', namespace: 'x' });
    await settle();
    expect(requests).toHaveLength(3);
    shared.destroy();
  });

  it('bounded label values', () => {
    expect(apiHost('https://10.0.0.1:6443')).toBe('10.0.0.1:6443');
    expect(apiHost('https://kubernetes.default.svc')).toBe('kubernetes.default.svc:443');
    expect(apiHost('https://kubernetes.default.svc/some/path?x=1')).toBe('kubernetes.default.svc:443');
    expect(apiHost('http://[::1]:8080')).toBe('[::1]:8080');
    expect(apiHost(undefined)).toBe('none');
    expect(apiHost('not a url')).toBe('none');
    expect(codeLabel(200)).toBe('200');
    expect(codeLabel(409)).toBe('409');
    expect(codeLabel(undefined)).toBe('<error>');
    expect(codeLabel(0)).toBe('<error>');
    expect(codeLabel(1000)).toBe('<error>');
  });
});
