/**
 * The chart's finalizer policy (a MutatingAdmissionPolicy, Kubernetes ≥ 1.36)
 * puts kubetx.io/finalizer on a transaction as it is created, so the operator
 * spends no write on it: a committed TCC transaction costs three writes
 * (create, decision, outcome) with the default --events warnings, against
 * five before (create, finalizer, decision, outcome... and two Events).
 * The policy as rendered by the chart, bound to this test's namespace only
 * (spec.matchResources) so other test files sharing the control plane keep
 * the operator's own finalizer write.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { applyFinalizerPolicy, kubectl } from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { terminal, transactions } from '../support/payment.js';
import { OK, startScriptedParticipant, type ScriptedParticipant } from '../support/scripted-participant.js';

const release = `fin-${randomBytes(3).toString('hex')}`;
const policyName = `${release}-kubetx-finalizer`;
let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;
let participant: ScriptedParticipant;
let txs: ReturnType<typeof transactions>;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'finpolicy');
  txs = transactions(kc);
  const applied = applyFinalizerPolicy(kubeconfigPath(), ns, { release });
  expect(applied.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([`MutatingAdmissionPolicy/${policyName}`, `MutatingAdmissionPolicyBinding/${policyName}`]);
  participant = await startScriptedParticipant(() => OK);
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
}, 60_000);

afterAll(async () => {
  await operator?.kill();
  await participant?.stop();
  // client-node 1.4 has no typed client for MutatingAdmissionPolicy yet.
  kubectl(kubeconfigPath(), ['delete', 'mutatingadmissionpolicybinding,mutatingadmissionpolicy', policyName, '--ignore-not-found']);
});

function tx(name: string, mode: 'TCC' | 'Notify'): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: { mode, timeout: '30s', branches: ['a', 'b', 'c', 'd'].map((b) => ({ name: b, endpoint: { address: participant.address } })) },
  };
}

describe('finalizer policy', () => {
  it('a TCC transaction carries the finalizer from its create; committing it costs 3 writes, no Events', async () => {
    // The policy takes effect a moment after it is applied (the API server's policy informer).
    const created = await eventually('a create that carries the finalizer', async () => {
      const t = await txs.create(tx(`probe-${randomBytes(3).toString('hex')}`, 'TCC'));
      return t.metadata.finalizers?.includes('kubetx.io/finalizer') ? t : undefined;
    }, 20_000);
    await txs.untilPhase(ns, created.metadata.name, terminal);

    const name = 'pay-3-writes';
    const writes: string[] = [];
    const watch = await new k8s.Watch(kc).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${ns}/distributedtransactions`,
      { fieldSelector: `metadata.name=${name}` },
      (type, obj: DistributedTransaction) => writes.push(`${type} ${obj.status?.phase ?? '-'} finalizers=${(obj.metadata.finalizers ?? []).join(',')}`),
      () => undefined,
    );
    const before = counterValue(await operator.metrics(), 'kubetx_events_total', { result: 'created' });
    await txs.create(tx(name, 'TCC'));
    const done = await txs.untilPhase(ns, name, terminal);
    expect(done.status?.phase).toBe('Committed');
    await eventually('the watch saw the outcome', async () => (writes.some((w) => w.startsWith('MODIFIED Committed')) ? true : undefined), 10_000);
    watch.abort();
    // create (with the finalizer), decision, outcome: no write of the operator's own for the finalizer.
    expect(writes).toEqual([
      'ADDED - finalizers=kubetx.io/finalizer',
      'MODIFIED Confirming finalizers=kubetx.io/finalizer',
      'MODIFIED Committed finalizers=kubetx.io/finalizer',
    ]);
    expect(counterValue(await operator.metrics(), 'kubetx_events_total', { result: 'created' })).toBe(before);
  });

  it('a Notify transaction gets no finalizer (it has nothing to finish on deletion)', async () => {
    const t = await txs.create(tx('notify-no-finalizer', 'Notify'));
    expect(t.metadata.finalizers ?? []).toEqual([]);
  });
});
