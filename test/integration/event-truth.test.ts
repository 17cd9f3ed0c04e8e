/**
 * Events tell what was persisted, per branch.
 *
 *  - Two operators without leader election race on the same transactions:
 *    the one that loses the resourceVersion race used to record its Events
 *    anyway (two "Decided" Events for one transaction). Now Events follow
 *    the status write: one Decided per transaction, whoever wins.
 *  - Failures of different branches used to fold into one CallFailed series
 *    that named only the first branch and kept the first error forever.
 *    Now each (branch, method) has its own series, and a new error starts a
 *    new Event with the new text.
 */
import * as k8s from '@kubernetes/client-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { terminal, transactions } from '../support/payment.js';
import { OK, startScriptedParticipant, type ScriptedParticipant } from '../support/scripted-participant.js';

let kc: k8s.KubeConfig;
let operators: OperatorProcess[] = [];
let participant: ScriptedParticipant;
let txs: ReturnType<typeof transactions>;
let events: k8s.EventsV1Api;

beforeAll(async () => {
  kc = kubeConfig();
  txs = transactions(kc);
  events = kc.makeApiClient(k8s.EventsV1Api);
  // Confirm of "flaky-*" transactions: branch a fails 3 times, branch b twice with one error and twice
  // with another, branch c never; then all succeed.
  participant = await startScriptedParticipant((method, call, nth) => {
    if (method !== 'Confirm' || !call.transaction.startsWith('flaky-')) return OK;
    if (call.branch === 'a' && nth <= 3) return { code: GrpcStatus.UNAVAILABLE, details: 'ledger a offline' };
    if (call.branch === 'b' && nth <= 2) return { code: GrpcStatus.UNAVAILABLE, details: 'ledger b offline' };
    if (call.branch === 'b' && nth <= 4) return { code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'ledger b disk full' };
    return OK;
  });
});

afterAll(async () => {
  await Promise.all(operators.map((o) => o.kill()));
  await participant?.stop();
});

function tcc(ns: string, name: string, branches: string[]): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout: '30s',
      retry: { initialInterval: '100ms', maxInterval: '200ms' },
      branches: branches.map((b) => ({ name: b, endpoint: { address: participant.address } })),
    },
  };
}

async function eventsOf(ns: string, name: string) {
  return (await events.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.regarding?.name === name);
}

describe('Events follow persisted status', () => {
  it('two operators racing on 12 transactions: exactly one Decided Event each', async () => {
    const ns = await freshNamespace(kc, 'race');
    // No leader election: both reconcile everything, as two operators installed by mistake would.
    // --events all: the Normal Decided Event of a Confirm is recorded too.
    operators = await Promise.all([0, 1].map(() => startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: ['--events', 'all'] })));
    const names = Array.from({ length: 12 }, (_, i) => `race-${i}`);
    await Promise.all(names.map((n) => txs.create(tcc(ns, n, ['a', 'b']))));
    for (const n of names) expect((await txs.untilPhase(ns, n, terminal)).status?.phase).toBe('Committed');
    // Both operators tried (the race is real): each made calls.
    const tries = participant.calls.filter((c) => c.method === 'Try' && names.includes(c.transaction)).length;
    expect(tries).toBeGreaterThanOrEqual(24);
    // Events are written asynchronously: wait until each transaction has its Committed Event, then count.
    await eventually('a Committed Event for each', async () => {
      for (const n of names) if (!(await eventsOf(ns, n)).some((e) => e.reason === 'Committed')) return undefined;
      return true;
    }, 30_000);
    for (const n of names) {
      const evs = await eventsOf(ns, n);
      const decided = evs.filter((e) => e.reason === 'Decided');
      expect(decided.map((e) => `${e.reportingInstance}: ${e.note}`), `${n}: Decided Events`).toHaveLength(1);
      expect(evs.filter((e) => e.reason === 'Committed')).toHaveLength(1);
    }
    await Promise.all(operators.map((o) => o.kill()));
    operators = [];
  });

  it('failing branches each get their own CallFailed Event, and a new error a new Event with its text', async () => {
    const ns = await freshNamespace(kc, 'evbranch');
    operators = [await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] })];
    const name = 'flaky-1';
    await txs.create(tcc(ns, name, ['a', 'b', 'c']));
    const done = await txs.untilPhase(ns, name, terminal);
    expect(done.status?.phase).toBe('Committed');
    const notes = await eventually('CallFailed Events for a and b', async () => {
      const n = (await eventsOf(ns, name)).filter((e) => e.reason === 'CallFailed').map((e) => e.note ?? '');
      return n.some((x) => x.includes('disk full')) && n.some((x) => x.startsWith('branch a:')) ? n : undefined;
    }, 30_000);
    // Before: one series "branch a: Confirm attempt 1 failed: …" for everything.
    expect(notes.filter((n) => n.startsWith('branch a:'))).toEqual(['branch a: Confirm failed: UNAVAILABLE: ledger a offline']);
    expect(notes.filter((n) => n.startsWith('branch b:')).sort()).toEqual([
      'branch b: Confirm failed: RESOURCE_EXHAUSTED: ledger b disk full',
      'branch b: Confirm failed: UNAVAILABLE: ledger b offline',
    ]);
    expect(notes.some((n) => n.startsWith('branch c:'))).toBe(false);
    // The status says the same: no error left on any Confirmed branch; the attempts tell the history.
    expect(done.status?.branches?.map((b) => [b.name, b.state, b.attempts, b.lastError])).toEqual([
      ['a', 'Confirmed', 4, undefined],
      ['b', 'Confirmed', 5, undefined],
      ['c', 'Confirmed', 1, undefined],
    ]);
  });
});
