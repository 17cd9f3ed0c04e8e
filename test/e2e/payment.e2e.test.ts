/**
 * The payment example end to end, against one of two targets chosen in one
 * place (`startTarget`, from KUBETX_E2E_TARGET):
 *
 * - `local` (default; what `make test` / CI runs): the test control plane,
 *   the operator as a process (test/support/operator.ts) and the four
 *   participants in this process (test/support/payment.ts), as in tcc.test.ts.
 *   Raw addresses stay off: the operator reaches the Services through
 *   --service-override, so the transactions are the cluster's, unchanged.
 * - `cluster` (hack/kind-e2e.sh): the cluster of KUBETX_E2E_KUBECONFIG with
 *   the operator installed by the Helm chart and examples/payment/k8s deployed
 *   in KUBETX_E2E_NAMESPACE (default `shop`). The ledgers are read with
 *   `kubectl exec … ledger.js` in each participant's pod.
 *
 * Both create the transactions of examples/payment/manifests/pay-order-
 * {success,refused}.yaml (endpoint.service), changing only the name, the
 * namespace and the order id, and make the same assertions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SERVICES, type ServiceName } from '../../examples/payment/db.js';
import type { Ledger, Ledgers } from '../../examples/payment/ledger.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { kubectl } from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator } from '../support/operator.js';
import { startPayment, terminal, transactions } from '../support/payment.js';
import { repoRoot } from '../support/testenv-paths.js';

interface Target {
  namespace: string;
  /** Adds UNPAID orders of user 7 to the order service (the seed has only 1001–1005). */
  addOrders(ids: number[]): Promise<void>;
  ledgers(): Promise<Ledgers>;
  stop(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  const target = process.env.KUBETX_E2E_TARGET ?? 'local';
  if (target === 'local') return localTarget();
  if (target === 'cluster') return clusterTarget();
  throw new Error(`KUBETX_E2E_TARGET=${target}: want local or cluster`);
}

async function localTarget(): Promise<Target> {
  const namespace = await freshNamespace(kubeConfig(), 'e2e');
  const pay = await startPayment();
  const operator = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespaces: [namespace],
    allowRawAddresses: false,
    args: SERVICES.flatMap((s) => ['--service-override', `${s}.${namespace}=127.0.0.1:${pay.ports[s]}`]),
  });
  return {
    namespace,
    addOrders: async (ids) => pay.addOrders(ids),
    ledgers: async () => pay.ledgers(),
    stop: async () => {
      await operator.kill();
      await pay.stopAll();
    },
  };
}

// Runs in the order container (node + better-sqlite3 from the image); the same insert as test/support/payment.ts.
const ADD_ORDERS_JS = `const db = new (require('better-sqlite3'))(process.argv[1], { fileMustExist: true });
db.pragma('busy_timeout = 5000');
const ins = db.prepare("INSERT OR IGNORE INTO orders (id, user_id, status, updated_at) VALUES (?, 7, 'UNPAID', ?)");
for (const id of process.argv.slice(2)) ins.run(Number(id), Date.now());`;

async function clusterTarget(): Promise<Target> {
  if (!process.env.KUBETX_E2E_KUBECONFIG) throw new Error('KUBETX_E2E_TARGET=cluster needs KUBETX_E2E_KUBECONFIG (see hack/kind-e2e.sh)');
  const kubeconfig = kubeconfigPath();
  const namespace = process.env.KUBETX_E2E_NAMESPACE ?? 'shop';
  const run = (args: string[]) => {
    const r = kubectl(kubeconfig, ['-n', namespace, ...args]);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  };
  const exec = (s: ServiceName, cmd: string[]) => run(['exec', `deploy/${s}`, '-c', s, '--', ...cmd]);
  for (const s of SERVICES) run(['rollout', 'status', `deploy/${s}`, '--timeout=180s']);
  return {
    namespace,
    addOrders: async (ids) => {
      exec('order', ['node', '-e', ADD_ORDERS_JS, '/data/order.db', ...ids.map(String)]);
    },
    ledgers: async () =>
      Object.fromEntries(SERVICES.map((s) => [s, JSON.parse(exec(s, ['node', 'dist/examples/payment/ledger.js', '--db', `/data/${s}.db`])) as Ledger])),
    stop: async () => undefined,
  };
}

/** One of the example's transactions with a new name, namespace and order id; nothing else changes. */
function fromManifest(file: 'pay-order-success.yaml' | 'pay-order-refused.yaml', namespace: string, orderId: number): DistributedTransaction {
  const tx = parse(readFileSync(join(repoRoot, 'examples/payment/manifests', file), 'utf8')) as DistributedTransaction;
  tx.metadata = { name: `e2e-pay-${orderId}`, namespace } as DistributedTransaction['metadata'];
  const withOrder = (p: unknown) => ({ ...(p as Record<string, unknown>), orderId });
  tx.spec.payload = withOrder(tx.spec.payload);
  for (const b of tx.spec.branches) b.payload = withOrder(b.payload);
  return tx;
}

let target: Target;
let txs: ReturnType<typeof transactions>;
// Unique across runs: a kept cluster's order service remembers earlier runs' orders.
let nextOrder = 100_000 + (Math.floor(Date.now() / 1000) % 10_000_000) * 10;

async function payAndWait(file: Parameters<typeof fromManifest>[0]): Promise<{ tx: DistributedTransaction; orderId: number; before: Ledgers; after: Ledgers }> {
  const orderId = nextOrder++;
  await target.addOrders([orderId]);
  const before = await target.ledgers();
  const created = fromManifest(file, target.namespace, orderId);
  expect(created.spec.branches.every((b) => b.endpoint?.service && b.endpoint.address === undefined)).toBe(true);
  await txs.create(created);
  const tx = await eventually(`${created.metadata.name} to finish`, async () => {
    const t = await txs.get(target.namespace, created.metadata.name);
    return terminal.has(t.status?.phase ?? '') ? t : undefined;
  }, 120_000);
  return { tx, orderId, before, after: await target.ledgers() };
}

beforeAll(async () => {
  txs = transactions(kubeConfig());
  target = await startTarget();
});

afterAll(async () => {
  await target?.stop();
});

describe(`payment example end to end (${process.env.KUBETX_E2E_TARGET ?? 'local'})`, () => {
  it('order paid → Committed, 4/4 branches Confirmed, every ledger confirmed', async () => {
    const { tx, orderId, before, after } = await payAndWait('pay-order-success.yaml');
    expect(tx.status?.phase).toBe('Committed');
    expect(tx.status?.decision).toBe('Confirm');
    expect(tx.status?.progress).toBe('4/4');
    expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual(SERVICES.map((s) => [s, 'Confirmed']));

    expect(after.order!.orders[String(orderId)]!.status).toBe('PAID');
    const item = (l: Ledgers) => l.inventory!.items['A-1']!;
    expect(item(after)).toEqual({ stock: item(before).stock - 2, frozen: item(before).frozen, sold: item(before).sold + 2 });
    expect(after.credit!.accounts['7']).toEqual({ credit: before.credit!.accounts['7']!.credit + 10, prepareAddCredit: 0 });
    expect(after.warehouse!.deliveryNotes.filter((n) => n.orderId === orderId).map((n) => n.state)).toEqual(['CREATED']);
  });

  it('order refused (1000 units) → Aborted, every branch Cancelled, no ledger effect', async () => {
    const { tx, orderId, before, after } = await payAndWait('pay-order-refused.yaml');
    expect(tx.status?.phase).toBe('Aborted');
    expect(tx.status?.decision).toBe('Cancel');
    expect(tx.status?.message).toMatch(/inventory.*insufficient stock/);
    expect(tx.status?.branches?.map((b) => [b.name, b.state])).toEqual(SERVICES.map((s) => [s, 'Cancelled']));

    expect(after.order!.orders[String(orderId)]!.status).toBe('CANCELED');
    expect(after.inventory!.items).toEqual(before.inventory!.items);
    expect(after.inventory!.reservations.filter((r) => r.orderId === orderId && r.state !== 'RELEASED')).toEqual([]);
    expect(after.credit!.accounts).toEqual(before.credit!.accounts);
    expect(after.warehouse!.deliveryNotes.filter((n) => n.orderId === orderId).every((n) => n.state === 'CANCELED')).toBe(true);
  });
});
