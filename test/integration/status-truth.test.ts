/**
 * Status fields that are not stale, in every mode: lastError is cleared by a
 * success, a Failed transaction schedules nothing and says how to resume,
 * a branch's state says which call is under way, progress is done/total
 * branches, a retry keeps the count of earlier attempts, and while a forward
 * phase waits, status.message says on what.
 */
import * as k8s from '@kubernetes/client-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type BranchSpec, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { terminal, transactions } from '../support/payment.js';
import { OK, startScriptedParticipant, type ScriptedParticipant } from '../support/scripted-participant.js';

let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;
let participant: ScriptedParticipant;
let txs: ReturnType<typeof transactions>;
const finished = new Set([...terminal, 'Delivered', 'RolledBack', 'Exhausted']);

const down = (what: string) => ({ code: GrpcStatus.UNAVAILABLE, details: `${what} down` });

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'truth');
  txs = transactions(kc);
  // Every behaviour is chosen by the transaction's name prefix and the branch.
  participant = await startScriptedParticipant((method, call, nth) => {
    const t = call.transaction;
    if (t.startsWith('wait-') && method === 'Try' && call.branch === 'b' && nth <= 4) return down('ledger b');
    if (t.startsWith('cancel-') && method === 'Try' && call.branch === 'a') return { code: GrpcStatus.ABORTED, details: 'no stock' };
    if (t.startsWith('cancel-') && method === 'Cancel' && call.branch === 'b' && nth <= 3) return down('ledger b');
    if (t.startsWith('saga-') && method === 'Execute' && call.branch === 'c') return { code: GrpcStatus.ABORTED, details: 'no seat' };
    if (t.startsWith('failed-') && method === 'Confirm' && call.branch === 'a') return down('ledger a');
    if (t.startsWith('notify-') && method === 'Deliver' && nth <= 2) return down('merchant');
    if (t.startsWith('msg-') && method === 'Deliver' && nth <= 1) return down('points');
    return OK;
  });
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterAll(async () => {
  await operator?.kill();
  await participant?.stop();
});

function tx(name: string, mode: DistributedTransaction['spec']['mode'], branches: Array<Partial<BranchSpec> & { name: string }>, extra: Partial<DistributedTransaction['spec']> = {}): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode,
      timeout: '30s',
      retry: { initialInterval: '200ms', maxInterval: '300ms' },
      branches: branches.map((b) => ({ endpoint: { address: participant.address }, ...b })),
      ...extra,
    },
  };
}

/** Watches status.phase/branches through polling of the API (each observation is a persisted status). */
function observe(name: string, until: (t: DistributedTransaction) => boolean) {
  return eventually(`${name}: the observed status`, async () => {
    const t = await txs.get(ns, name);
    return until(t) ? t : undefined;
  }, 30_000);
}

describe('status that is not stale', () => {
  it('TCC waiting on a failing Try: status.message and the condition say on what; a success clears lastError', async () => {
    await txs.create(tx('wait-1', 'TCC', [{ name: 'a' }, { name: 'b' }]));
    const waiting = await observe('wait-1', (t) => t.status?.phase === 'Trying' && !!t.status.message);
    expect(waiting.status?.message).toBe('waiting on b: UNAVAILABLE: ledger b down');
    expect(waiting.status?.conditions?.find((c) => c.type === 'Succeeded')?.message).toBe('waiting on b: UNAVAILABLE: ledger b down');
    const done = await txs.untilPhase(ns, 'wait-1', terminal);
    expect(done.status?.phase).toBe('Committed');
    expect(done.status?.branches?.map((b) => b.lastError)).toEqual([undefined, undefined]);
    expect(done.status?.progress).toBe('2/2');
  });

  it('TCC Cancels failing: the branch is Cancelling (not Trying) with its error and next attempt; Aborted clears them', async () => {
    await txs.create(tx('cancel-1', 'TCC', [{ name: 'a' }, { name: 'b' }]));
    const failing = await observe('cancel-1', (t) => t.status?.phase === 'Cancelling' && !!t.status.branches?.find((b) => b.name === 'b')?.nextAttemptTime);
    expect(failing.status?.branches?.find((b) => b.name === 'b')).toMatchObject({ state: 'Cancelling', lastError: 'UNAVAILABLE: ledger b down' });
    // The decision's reason stays the message while the Cancels are retried.
    expect(failing.status?.message).toBe('branch a: Try refused: ABORTED: no stock');
    const done = await txs.untilPhase(ns, 'cancel-1', terminal);
    expect(done.status?.phase).toBe('Aborted');
    expect(done.status?.branches?.map((b) => [b.state, b.lastError, b.nextAttemptTime])).toEqual([
      ['Cancelled', undefined, undefined],
      ['Cancelled', undefined, undefined],
    ]);
    expect(done.status?.progress).toBe('2/2');
  });

  it('Saga whose third branch is refused: progress counts every branch (3/3 when compensated)', async () => {
    await txs.create(tx('saga-1', 'Saga', [{ name: 'a' }, { name: 'b', dependsOn: ['a'] }, { name: 'c', dependsOn: ['b'] }]));
    const done = await txs.untilPhase(ns, 'saga-1', terminal);
    expect(done.status?.phase).toBe('Compensated');
    expect(done.status?.branches?.map((b) => b.state)).toEqual(['Compensated', 'Compensated', 'Refused']);
    // Before: "2/2" (compensated / owed a compensation).
    expect(done.status?.progress).toBe('3/3');
  });

  it('Failed: nothing scheduled, the message says how to resume; a retry keeps the earlier attempts in totalAttempts', async () => {
    await txs.create(tx('failed-1', 'TCC', [{ name: 'a' }, { name: 'b' }], { retry: { initialInterval: '100ms', maxInterval: '100ms', maxAttempts: 2 } }));
    const failed = await txs.untilPhase(ns, 'failed-1', ['Failed']);
    expect(failed.status?.branches?.map((b) => b.nextAttemptTime)).toEqual([undefined, undefined]);
    expect(failed.status?.message).toContain(`kubectl dtx retry failed-1 -n ${ns}`);
    expect(failed.status?.branches?.find((b) => b.name === 'a')).toMatchObject({ state: 'Confirming', attempts: 2, lastError: 'UNAVAILABLE: ledger a down' });

    await txs.patchAnnotations(ns, 'failed-1', { 'kubetx.io/retry': 'once-more' });
    const again = await observe('failed-1', (t) => t.status?.retryAcknowledged === 'once-more' && t.status.phase === 'Failed');
    // The budget counter starts again; the total does not forget the first two.
    expect(again.status?.branches?.find((b) => b.name === 'a')).toMatchObject({ attempts: 2, totalAttempts: 4 });
  });

  it('Notify and Message: a Deliver that failed, then succeeded, leaves no error behind', async () => {
    await txs.create(tx('notify-1', 'Notify', [{ name: 'merchant' }], { notify: { schedule: ['1s'], maxAttempts: 5 } }));
    await txs.create(
      tx('msg-1', 'Message', [{ name: 'points' }], {
        message: { source: { endpoint: { address: participant.address } }, checkAfter: '10s', decision: 'Commit' },
      }),
    );
    const notified = await txs.untilPhase(ns, 'notify-1', finished);
    expect(notified.status?.phase).toBe('Delivered');
    expect(notified.status?.branches?.[0]).toMatchObject({ state: 'Delivered', attempts: 3 });
    expect(notified.status?.branches?.[0]?.lastError).toBeUndefined();
    expect(notified.status?.progress).toBe('1/1');
    const delivered = await txs.untilPhase(ns, 'msg-1', finished);
    expect(delivered.status?.phase).toBe('Delivered');
    expect(delivered.status?.branches?.[0]).toMatchObject({ state: 'Delivered', attempts: 2 });
    expect(delivered.status?.branches?.[0]?.lastError).toBeUndefined();
  });
});
