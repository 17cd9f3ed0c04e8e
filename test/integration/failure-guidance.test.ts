/**
 * Failures that say what to do.
 *
 *  - An endpoint that does not serve the service a branch needs (UNIMPLEMENTED,
 *    or not a gRPC server at all) is EndpointMisconfigured: on Try/Execute
 *    nothing ran, so it is a refusal naming the service expected; before, a
 *    Saga sent to a MessageReceiver sat in Compensating forever with no hint.
 *  - INVALID_ARGUMENT from Try/Execute is a refusal, not retried until timeout.
 *  - A second phase whose calls keep failing gets condition Stalled=True within
 *    --stall-after-attempts, a Warning Event and the kubetx_transactions_stalled
 *    gauge; it clears once the participant is back.
 */
import * as net from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type BranchSpec, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { terminal, transactions } from '../support/payment.js';
import { OK, startScriptedParticipant, type Script, type ScriptedParticipant } from '../support/scripted-participant.js';

const STALL_AFTER = 3;

let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;
let full: ScriptedParticipant;
let receiverOnly: ScriptedParticipant;
let http1: net.Server;
let http1Port: number;
let txs: ReturnType<typeof transactions>;
let ledgerDown = true;

const script: Script = (method, call) => {
  if (call.transaction.startsWith('invalid-') && method === 'Try') return { code: GrpcStatus.INVALID_ARGUMENT, details: 'amount: not a number' };
  if (call.transaction.startsWith('stall-') && method === 'Confirm' && call.branch === 'ledger' && ledgerDown) return { code: GrpcStatus.UNAVAILABLE, details: 'ledger down' };
  return OK;
};

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'guide');
  txs = transactions(kc);
  full = await startScriptedParticipant(script);
  receiverOnly = await startScriptedParticipant(() => OK, ['receiver']);
  // An HTTP/1.1 server where a gRPC participant should be.
  http1 = net.createServer((c) => {
    c.on('error', () => undefined);
    c.once('data', () => c.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  });
  http1Port = await new Promise<number>((r) => http1.listen(0, '127.0.0.1', () => r((http1.address() as net.AddressInfo).port)));
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: ['--stall-after-attempts', String(STALL_AFTER)] });
});

afterAll(async () => {
  await operator?.kill();
  await Promise.all([full?.stop(), receiverOnly?.stop()]);
  http1?.close();
});

function tx(name: string, mode: 'TCC' | 'Saga' | 'Message', branches: Array<Partial<BranchSpec> & { name: string }>, extra: Partial<DistributedTransaction['spec']> = {}): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode,
      timeout: '30s',
      retry: { initialInterval: '100ms', maxInterval: '200ms' },
      branches: branches.map((b) => ({ endpoint: { address: full.address }, ...b })),
      ...extra,
    },
  };
}

const reasons = async (name: string) =>
  (await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns })).items.filter((e) => e.regarding?.name === name).map((e) => `${e.reason}: ${e.note}`);

describe('endpoint misconfiguration is a refusal on the first phase', () => {
  it('TCC branch pointed at a MessageReceiver (UNIMPLEMENTED) → Aborted, naming the service expected', async () => {
    await txs.create(tx('unimpl-tcc', 'TCC', [{ name: 'order' }, { name: 'points', endpoint: { address: receiverOnly.address } }]));
    const done = await txs.untilPhase(ns, 'unimpl-tcc', terminal, 30_000);
    expect(done.status?.phase).toBe('Aborted');
    expect(done.status?.message).toMatch(/^branch points: Try refused: EndpointMisconfigured: the endpoint does not serve kubetx\.v1\.TccParticipant/);
    // One Try there, no retries until the timeout; the order branch was cancelled.
    expect(receiverOnly.calls).toHaveLength(0);
    expect(full.seen('Cancel', 'unimpl-tcc').map((c) => c.branch)).toEqual(['order']);
    expect(done.status?.branches?.map((b) => b.state)).toEqual(['Cancelled', 'Cancelled']);
    await eventually('an EndpointMisconfigured Event', async () => ((await reasons('unimpl-tcc')).some((r) => r.startsWith('EndpointMisconfigured: branch points')) ? true : undefined), 15_000);
  });

  it('Saga step pointed at a MessageReceiver → Compensated (before: Compensating forever)', async () => {
    await txs.create(tx('unimpl-saga', 'Saga', [{ name: 'order' }, { name: 'points', dependsOn: ['order'], endpoint: { address: receiverOnly.address } }]));
    const done = await txs.untilPhase(ns, 'unimpl-saga', terminal, 30_000);
    expect(done.status?.phase).toBe('Compensated');
    expect(done.status?.branches?.map((b) => b.state)).toEqual(['Compensated', 'Refused']);
    expect(done.status?.message).toContain('EndpointMisconfigured: the endpoint does not serve kubetx.v1.SagaParticipant');
  });

  it('an endpoint that is not a gRPC server (HTTP/1) → refused as EndpointMisconfigured, saying so', async () => {
    await txs.create(tx('http1', 'TCC', [{ name: 'web', endpoint: { address: `127.0.0.1:${http1Port}` } }]));
    const done = await txs.untilPhase(ns, 'http1', terminal, 30_000);
    // The Cancel meets the same non-gRPC endpoint: no Try ran there, so nothing to cancel.
    expect(done.status?.phase).toBe('Aborted');
    expect(done.status?.message).toContain('EndpointMisconfigured: the endpoint is not a gRPC server');
  });

  it('INVALID_ARGUMENT from Try is a refusal: Aborted after one Try, not retried until the timeout', async () => {
    await txs.create(tx('invalid-1', 'TCC', [{ name: 'ledger' }]));
    const done = await txs.untilPhase(ns, 'invalid-1', terminal, 30_000);
    expect(done.status?.phase).toBe('Aborted');
    expect(done.status?.message).toBe('branch ledger: Try refused: INVALID_ARGUMENT: amount: not a number');
    expect(full.seen('Try', 'invalid-1')).toHaveLength(1);
  });
});

describe('Stalled', () => {
  it(`a dead participant in the second phase → Stalled=True after ${STALL_AFTER} failed Confirms, a Warning and the gauge; cleared once it is back`, async () => {
    const name = 'stall-1';
    // Every persisted status, in order, from a watch started before the create.
    const seen: DistributedTransaction[] = [];
    const watch = await new k8s.Watch(kc).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${ns}/distributedtransactions`,
      { fieldSelector: `metadata.name=${name}` },
      (type, obj: DistributedTransaction) => type === 'MODIFIED' && seen.push(obj),
      () => undefined,
    );
    await txs.create(tx(name, 'TCC', [{ name: 'order' }, { name: 'ledger' }]));
    const stalled = await eventually('Stalled=True', async () => seen.find((t) => stalledOf(t)?.status === 'True'), 30_000);
    const ledger = (t: DistributedTransaction) => t.status!.branches!.find((b) => b.name === 'ledger')!;
    const failures = (t: DistributedTransaction) => (ledger(t).nextAttemptTime ? ledger(t).attempts : ledger(t).attempts - 1);
    // Within the bound: never before STALL_AFTER failures, and in the first status that records them.
    expect(failures(stalled)).toBe(STALL_AFTER);
    for (const t of seen.slice(0, seen.indexOf(stalled))) expect(stalledOf(t)?.status).not.toBe('True');
    expect(stalledOf(stalled)).toMatchObject({ reason: 'CallsFailing' });
    expect(stalledOf(stalled)?.message).toMatch(/^branch ledger: Confirm failed 3 times since .*: UNAVAILABLE: ledger down; kubetx keeps retrying/);
    expect(ledger(stalled).state).toBe('Confirming');
    const gauge = await eventually('the stalled gauge', async () => {
      const m = /kubetx_transactions_stalled\{mode="TCC",reason="CallsFailing"\} (\d+)/.exec(await operator.metrics());
      return m && Number(m[1]) >= 1 ? Number(m[1]) : undefined;
    }, 15_000);
    expect(gauge).toBe(1);
    await eventually('a Stalled Warning Event', async () => ((await reasons(name)).some((r) => r.startsWith('Stalled: branch ledger')) ? true : undefined), 15_000);

    ledgerDown = false;
    const done = await txs.untilPhase(ns, name, terminal, 30_000);
    watch.abort();
    expect(done.status?.phase).toBe('Committed');
    expect(stalledOf(done)).toMatchObject({ status: 'False', reason: 'Committed' });
    await eventually('the gauge back to 0', async () => (/kubetx_transactions_stalled\{mode="TCC",reason="CallsFailing"\} [1-9]/.test(await operator.metrics()) ? undefined : true), 15_000);
  });

  it('a Deliver to an endpoint that serves no MessageReceiver is retried (it must succeed) and Stalled at once as EndpointMisconfigured', async () => {
    const name = 'stall-unimpl';
    const only = await startScriptedParticipant(() => OK, ['tcc']);
    try {
      await txs.create(
        tx(name, 'Message', [{ name: 'points', endpoint: { address: only.address } }], {
          message: { source: { endpoint: { address: full.address } }, checkAfter: '10s', decision: 'Commit' },
        }),
      );
      const t = await eventually('Stalled=True', async () => {
        const x = await txs.get(ns, name);
        return stalledOf(x)?.status === 'True' ? x : undefined;
      }, 30_000);
      expect(t.status?.phase).toBe('Delivering');
      expect(stalledOf(t)?.reason).toBe('EndpointMisconfigured');
      expect(stalledOf(t)?.message).toContain('kubetx.v1.MessageReceiver');
      // At once: the first failure is enough.
      expect(t.status!.branches![0]!.attempts).toBeLessThan(STALL_AFTER);
    } finally {
      await only.stop();
    }
  });
});

function stalledOf(t: DistributedTransaction) {
  return t.status?.conditions?.find((c) => c.type === 'Stalled');
}
