/**
 * The seed's payment example for integration tests: the four participant
 * services (real gRPC servers, each with its own SQLite file) on free loopback
 * ports, and DistributedTransaction manifests that pay an order through them,
 * as TCC or as Saga.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { SERVICES, SEED, dbPathIn, type ServiceName } from '../../examples/payment/db.js';
import { readLedgers, type Ledgers } from '../../examples/payment/ledger.js';
import { startService, type RunningService } from '../../examples/payment/server.js';
import type { BranchSpec, DistributedTransaction, TransactionSpec } from '../../src/api/types.js';
import { GROUP, PLURAL, VERSION } from '../../src/api/types.js';
import { eventually } from './env.js';

export interface PaymentServices {
  dir: string;
  services: Record<ServiceName, RunningService>;
  ports: Record<ServiceName, number>;
  /** Stops one service (the port stays reserved for restart). */
  stop(service: ServiceName): Promise<void>;
  restart(service: ServiceName): Promise<void>;
  stopAll(): Promise<void>;
  ledgers(): Ledgers;
  /** Adds UNPAID orders (the seed has 1001–1005). */
  addOrders(ids: number[]): void;
}

export async function startPayment(): Promise<PaymentServices> {
  const dir = mkdtempSync(join(tmpdir(), 'kubetx-pay-'));
  const logger = pino({ level: process.env.KUBETX_TEST_PARTICIPANT_LOGS ? 'info' : 'silent' });
  const services = {} as Record<ServiceName, RunningService>;
  const ports = {} as Record<ServiceName, number>;
  const start = async (service: ServiceName, port = 0) => {
    services[service] = await startService({ service, dbPath: dbPathIn(dir, service), address: `127.0.0.1:${port}`, logger, faultOptions: { exit: () => undefined } });
    ports[service] = services[service].port;
  };
  for (const s of SERVICES) await start(s);
  return {
    dir,
    services,
    ports,
    stop: (s) => services[s].stop(0),
    restart: (s) => start(s, ports[s]),
    stopAll: async () => {
      await Promise.all(SERVICES.map((s) => services[s].stop(0)));
    },
    ledgers: () => readLedgers(dir),
    addOrders: (ids) => {
      const ins = services.order.db.prepare(`INSERT OR IGNORE INTO orders (id, user_id, status, updated_at) VALUES (?, ?, 'UNPAID', ?)`);
      for (const id of ids) ins.run(id, SEED.userId, Date.now());
    },
  };
}

export interface PayOptions {
  name: string;
  namespace: string;
  orderId: number;
  qty?: number;
  timeout?: string;
  callTimeout?: string;
  retry?: TransactionSpec['retry'];
  /** @default "TCC" */
  mode?: 'TCC' | 'Saga';
}

/**
 * Saga order: the order is paid first, then stock and credit together, the
 * delivery note once the stock is sold (so compensation runs warehouse before
 * inventory before order).
 */
export const SAGA_DEPENDS_ON: Record<ServiceName, string[]> = { order: [], inventory: ['order'], credit: ['order'], warehouse: ['inventory'] };

/** A transaction paying one order: the seed's four branches, reached by raw loopback addresses. */
export function payOrder(p: PaymentServices, o: PayOptions): DistributedTransaction {
  const qty = o.qty ?? 2;
  const mode = o.mode ?? 'TCC';
  const branch = (name: ServiceName, operation: string, payload: unknown): BranchSpec => ({
    name,
    endpoint: { address: `127.0.0.1:${p.ports[name]}` },
    operation,
    payload,
    callTimeout: o.callTimeout ?? '5s',
    ...(mode === 'Saga' && SAGA_DEPENDS_ON[name].length > 0 ? { dependsOn: SAGA_DEPENDS_ON[name] } : {}),
  });
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name: o.name, namespace: o.namespace } as DistributedTransaction['metadata'],
    spec: {
      mode,
      timeout: o.timeout ?? '30s',
      retry: o.retry ?? { initialInterval: '200ms', maxInterval: '2s', multiplier: 2, maxAttempts: 0 },
      branches: [
        branch('order', 'pay', { orderId: o.orderId }),
        branch('inventory', 'reduceStock', { orderId: o.orderId, sku: SEED.sku, qty }),
        branch('credit', 'addCredit', { orderId: o.orderId, userId: SEED.userId, credit: 10 }),
        branch('warehouse', 'saleDelivery', { orderId: o.orderId, sku: SEED.sku, qty }),
      ],
    },
  };
}

export function transactions(kc: k8s.KubeConfig) {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const base = { group: GROUP, version: VERSION, plural: PLURAL };
  const get = (namespace: string, name: string) => api.getNamespacedCustomObject({ ...base, namespace, name }) as Promise<DistributedTransaction>;
  return {
    create: (tx: DistributedTransaction) =>
      api.createNamespacedCustomObject({ ...base, namespace: tx.metadata.namespace, body: tx }) as Promise<DistributedTransaction>,
    get,
    /** Polls until the object's phase is one of `phases`; resolves with it. */
    untilPhase: (namespace: string, name: string, phases: Iterable<string>, timeoutMs = 60_000) => {
      const wanted = new Set(phases);
      return eventually(`${namespace}/${name} to reach ${[...wanted].join('|')}`, async () => {
        const tx = await get(namespace, name);
        return wanted.has(tx.status?.phase ?? '') ? tx : undefined;
      }, timeoutMs);
    },
    list: async (namespace: string) =>
      ((await api.listNamespacedCustomObject({ ...base, namespace })) as { items: DistributedTransaction[] }).items,
    patchAnnotations: (namespace: string, name: string, annotations: Record<string, string>) =>
      api.patchNamespacedCustomObject({ ...base, namespace, name, body: { metadata: { annotations } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)),
  };
}

export const terminal = new Set(['Committed', 'Aborted', 'Completed', 'Compensated', 'Failed']);
