/**
 * /healthz reports a stalled controller. The operator reaches the API server
 * through a TCP relay the test can freeze (requests held, nothing answered, as
 * a hung connection would): with work queued and its only worker stuck inside
 * a reconcile for longer than --liveness-stall-timeout, /healthz answers 503,
 * so the kubelet restarts the operator; once requests flow again it is 200.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

interface Relay {
  port: number;
  /** Stops passing the operator's bytes on (they wait, unread). */
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

async function startRelay(host: string, port: number): Promise<Relay> {
  let frozen = false;
  const clients = new Map<Socket, Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host, port });
    clients.set(client, upstream);
    upstream.pipe(client);
    if (!frozen) client.pipe(upstream);
    else client.pause();
    const end = () => {
      clients.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    freeze: () => {
      frozen = true;
      for (const c of clients.keys()) c.unpipe().pause();
    },
    thaw: () => {
      frozen = false;
      for (const [c, upstream] of clients) c.pipe(upstream);
    },
    close: async () => {
      for (const c of clients.keys()) c.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

let ns: string;
let relay: Relay;
let operator: OperatorProcess;

beforeAll(async () => {
  const kc = kubeConfig();
  ns = await freshNamespace(kc, 'liveness');
  const server = new URL(kc.getCurrentCluster()!.server);
  relay = await startRelay(server.hostname, Number(server.port));
  const config = parse(readFileSync(kubeconfigPath(), 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
  for (const c of config.clusters) c.cluster.server = `https://${server.hostname}:${relay.port}`;
  const relayed = join(mkdtempSync(join(tmpdir(), 'kubetx-relay-')), 'kubeconfig');
  writeFileSync(relayed, stringify(config));
  operator = await startOperator({ kubeconfig: relayed, namespaces: [ns], args: ['--workers', '1', '--liveness-stall-timeout', '2s'] });
});

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await relay?.close();
});

const healthz = async () => (await fetch(`http://127.0.0.1:${operator.healthPort}/healthz`)).status;

describe('/healthz and a stalled controller', () => {
  it('503 while the only worker is stuck on an API request with work queued; 200 again once it returns', async () => {
    const txs = transactions(kubeConfig());
    // Two transactions whose participant refuses connections: each retry is a status write.
    for (const name of ['stuck-a', 'stuck-b']) {
      await txs.create({
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'DistributedTransaction',
        metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
        spec: { mode: 'TCC', timeout: '10m', retry: { initialInterval: '100ms', maxInterval: '200ms' }, branches: [{ name: 'a', endpoint: { address: '127.0.0.1:1' } }] },
      });
    }
    await eventually('both retrying', async () => {
      const all = await txs.list(ns);
      return all.every((t) => (t.status?.branches?.[0]?.attempts ?? 0) >= 2) ? true : undefined;
    });
    expect(await healthz()).toBe(200);

    relay.freeze();
    const frozenAt = Date.now();
    await eventually('/healthz to report the stall', async () => ((await healthz()) === 503 ? true : undefined), 30_000);
    // Not before the stall timeout has passed.
    expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(2000);

    relay.thaw();
    await eventually('/healthz healthy again', async () => ((await healthz()) === 200 ? true : undefined), 30_000);
  });
});
