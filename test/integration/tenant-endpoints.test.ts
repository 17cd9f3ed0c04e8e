/**
 * Isolation does not rest on DNS (src/participants/service-resolver.ts,
 * dial.ts, address-policy.ts). A tenant names ExternalName Services pointing
 * at a victim's participants: the operator refuses them and the victim's
 * ledgers do not move. A Service is dialled at its ready EndpointSlice
 * addresses, in turn; a not-ready endpoint never; and the operator's own
 * metrics and health ports are refused even where loopback is allowed.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES, type ServiceName } from '../../examples/payment/db.js';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startHangingParticipant, type HangingParticipant } from '../support/hanging-participant.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';

let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let discovery: k8s.DiscoveryV1Api;
let victimNs: string;
let tenantNs: string;
let pay: PaymentServices;
let operator: OperatorProcess;
let txs: ReturnType<typeof transactions>;
const spread: HangingParticipant[] = [];

/**
 * The API server refuses loopback addresses in EndpointSlices, so the slices list a documentation
 * address (192.0.2.1, RFC 5737, never routed) and the operator dials it as 127.0.0.1 (--dial-address-map).
 */
const SLICE_IP = '192.0.2.1';

/** A Service without selector and one EndpointSlice per (port, ready) given. */
async function service(ns: string, name: string, endpoints: Array<{ port: number; ready?: boolean }>) {
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name }, spec: { ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }] } } });
  for (const [i, e] of endpoints.entries()) {
    await discovery.createNamespacedEndpointSlice({
      namespace: ns,
      body: {
        metadata: { name: `${name}-${i}`, labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        endpoints: [{ addresses: [SLICE_IP], conditions: { ready: e.ready ?? true } }],
        ports: [{ name: 'grpc', port: e.port, protocol: 'TCP' }],
      },
    });
  }
}

function viaServices(tx: DistributedTransaction): DistributedTransaction {
  tx.spec.branches = tx.spec.branches.map((b) => ({ ...b, endpoint: { service: { name: b.name, port: 50051 } } }));
  return tx;
}

function tccTo(ns: string, name: string, branches: Array<{ name: string; endpoint: DistributedTransaction['spec']['branches'][number]['endpoint'] }>, timeout = '1h'): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: { mode: 'TCC', timeout, retry: { initialInterval: '200ms', maxInterval: '1s' }, branches },
  };
}

beforeAll(async () => {
  kc = kubeConfig();
  core = kc.makeApiClient(k8s.CoreV1Api);
  discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  victimNs = await freshNamespace(kc, 'victim');
  tenantNs = await freshNamespace(kc, 'tenant');
  txs = transactions(kc);
  pay = await startPayment();
  for (const s of SERVICES) await service(victimNs, s, [{ port: pay.ports[s as ServiceName] }]);
  for (let i = 0; i < 3; i++) spread.push(await startHangingParticipant());
  await service(tenantNs, 'spread', [{ port: spread[0]!.port }, { port: spread[1]!.port }, { port: spread[2]!.port, ready: false }]);
  // The tenant's ExternalName Services, each pointing at the victim's participant of the same name.
  for (const s of SERVICES) {
    await core.createNamespacedService({ namespace: tenantNs, body: { metadata: { name: s }, spec: { type: 'ExternalName', externalName: `${s}.${victimNs}.svc.cluster.local` } } });
  }
  // Raw addresses and loopback allowed (startOperator's defaults here): the refusals below are not those defaults.
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [victimNs, tenantNs], args: ['--dial-address-map', `${SLICE_IP}=127.0.0.1`] });
});

afterAll(async () => {
  await operator?.kill();
  await pay?.stopAll();
  for (const s of spread) await s.stop();
});

describe('endpoint.service through the API', () => {
  it("the victim's own transaction reaches its participants at their EndpointSlice addresses", async () => {
    pay.addOrders([6101]);
    await txs.create(viaServices(payOrder(pay, { name: 'own', namespace: victimNs, orderId: 6101 })));
    expect((await txs.untilPhase(victimNs, 'own', ['Committed', 'Aborted', 'Failed'])).status?.phase).toBe('Committed');
    expect(pay.ledgers().order!.orders['6101']!.status).toBe('PAID');
  });

  it('ExternalName Services pointing at another namespace are refused; the victim is not called', async () => {
    pay.addOrders([6102]);
    const before = pay.ledgers();
    await txs.create(viaServices(payOrder(pay, { name: 'through-externalname', namespace: tenantNs, orderId: 6102, timeout: '3s' })));
    const tx = await txs.untilPhase(tenantNs, 'through-externalname', ['Committed', 'Aborted', 'Failed']);
    // Refused before any call, naming the field and the Service.
    expect(tx.status?.phase).toBe('Failed');
    expect(tx.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidEndpoint' });
    expect(tx.status?.message).toMatch(new RegExp(`spec\\.branches\\[0\\]\\.endpoint\\.service: Service ${tenantNs}/order is of type ExternalName, which kubetx refuses`));
    const after = pay.ledgers();
    expect(after.order!.orders['6102']!.status).toBe('UNPAID');
    expect(after.credit!.accounts).toEqual(before.credit!.accounts);
    expect(after.inventory!.items).toEqual(before.inventory!.items);
  });

  it('calls go to the ready endpoints in turn, never to a not-ready one', async () => {
    const endpoint = { service: { name: 'spread', port: 50051 } };
    await txs.create(tccTo(tenantNs, 'spread-calls', ['a', 'b', 'c', 'd'].map((name) => ({ name, endpoint }))));
    await eventually('4 Trys held', async () => (spread[0]!.calls.length + spread[1]!.calls.length >= 4 ? true : undefined));
    expect(spread[0]!.calls.length).toBeGreaterThanOrEqual(1);
    expect(spread[1]!.calls.length).toBeGreaterThanOrEqual(1);
    expect(spread[2]!.calls).toEqual([]);
  });

  it("the operator's own metrics and health ports are refused, as raw addresses and as slice addresses", async () => {
    const raw = tccTo(tenantNs, 'raw-own-port', [{ name: 'a', endpoint: { address: `127.0.0.1:${operator.metricsPort}` } }]);
    await txs.create(raw);
    const refused = await txs.untilPhase(tenantNs, 'raw-own-port', ['Failed']);
    expect(refused.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'InvalidEndpoint' });
    expect(refused.status?.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${operator.metricsPort} is the operator's own port`));

    await service(tenantNs, 'health-probe', [{ port: operator.healthPort }]);
    await txs.create(tccTo(tenantNs, 'slice-own-port', [{ name: 'a', endpoint: { service: { name: 'health-probe', port: 50051 } } }]));
    // Never dialled: every attempt fails before a connection, naming why (the Service's pods could change).
    const lastError = await eventually('the refusal in lastError', async () => (await txs.get(tenantNs, 'slice-own-port')).status?.branches?.[0]?.lastError);
    expect(lastError).toMatch(new RegExp(`127\\.0\\.0\\.1:${operator.healthPort} is the operator's own port`));
  });

  it('a Service that does not exist (yet) is retried with a clear message', async () => {
    await txs.create(tccTo(tenantNs, 'no-such-service', [{ name: 'a', endpoint: { service: { name: 'nowhere', port: 50051 } } }]));
    const lastError = await eventually('the look-up failure in lastError', async () => (await txs.get(tenantNs, 'no-such-service')).status?.branches?.[0]?.lastError);
    expect(lastError).toMatch(new RegExp(`Service ${tenantNs}/nowhere not found`));
  });
});
