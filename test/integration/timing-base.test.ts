/**
 * Deadlines are never early. metadata.creationTimestamp is truncated to the
 * second, so counting spec.timeout or spec.message.checkAfter from it fired
 * them up to a second early: a transaction created at x.900 s with a 1 s
 * timeout was aborted 99 ms after creation, and a Message was checked back
 * 2.3–2.9 s after creation with checkAfter 3s. Every test here creates its
 * transaction late in a second and measures from the client's side, from the
 * moment before the create request (which is before the real creation):
 * being late is allowed, early is not.
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
let ns: string;
let operator: OperatorProcess;
let participant: ScriptedParticipant;
let txs: ReturnType<typeof transactions>;

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'timing');
  txs = transactions(kc);
  // Try: the first attempt of every "flaky-*" transaction fails (retryable); "down-*" always fails.
  // CheckPrepared answers COMMITTED.
  participant = await startScriptedParticipant((method, call, nth) => {
    if (method === 'CheckPrepared') return { state: 'COMMITTED' };
    if (method === 'Try' && call.transaction.startsWith('down-')) return { code: GrpcStatus.UNAVAILABLE, details: 'ledger down' };
    if (method === 'Try' && call.transaction.startsWith('flaky-') && nth === 1) return { code: GrpcStatus.UNAVAILABLE, details: 'ledger restarting' };
    return OK;
  });
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
});

afterAll(async () => {
  await operator?.kill();
  await participant?.stop();
});

/**
 * Creates `make(name)` late in a second of the API server's clock (the same
 * machine's): sentAt is read just before the request, so the real creation is
 * after it. Tries again under a new name until the API server stamped a
 * creationTimestamp at least 700 ms before sentAt (the request did not cross
 * into the next second).
 */
async function createLateInSecond(prefix: string, make: (name: string) => DistributedTransaction): Promise<{ tx: DistributedTransaction; sentAt: number }> {
  for (let i = 0; i < 10; i++) {
    const msIntoSecond = Date.now() % 1000;
    // Choosing the moment to create is the point of the test, not a stand-in for synchronisation.
    if (msIntoSecond < 850) await new Promise((r) => setTimeout(r, 850 - msIntoSecond));
    const sentAt = Date.now();
    const tx = await txs.create(make(`${prefix}-${i}`));
    const stamped = Date.parse(tx.metadata.creationTimestamp!);
    if (sentAt - stamped >= 700) return { tx, sentAt };
  }
  throw new Error('could not create a transaction late in a second in 10 tries');
}

function tcc(name: string, timeout: string): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout,
      retry: { initialInterval: '100ms', maxInterval: '100ms' },
      branches: [{ name: 'ledger', endpoint: { address: participant.address }, callTimeout: '500ms' }],
    },
  };
}

describe('deadlines count from the real creation, never from the truncated creationTimestamp', () => {
  it('created late in a second with timeout 1s and one transient Try failure → Committed', async () => {
    const { tx } = await createLateInSecond('flaky', (name) => tcc(name, '1s'));
    const done = await txs.untilPhase(ns, tx.metadata.name, terminal);
    const tries = participant.seen('Try', tx.metadata.name);
    expect(tries.length, `Trys seen: ${tries.length}; status: ${JSON.stringify(done.status?.message)}`).toBeGreaterThanOrEqual(2);
    expect(done.status?.phase, done.status?.message).toBe('Committed');
    // startTime is precise and within a second after the truncated creationTimestamp.
    const start = Date.parse(done.status!.startTime!);
    const stamped = Date.parse(tx.metadata.creationTimestamp!);
    expect(done.status!.startTime).toMatch(/\.\d{3}Z$/);
    expect(start).toBeGreaterThanOrEqual(stamped);
    expect(start).toBeLessThanOrEqual(stamped + 1000);
  });

  it('a Try that keeps failing with timeout 1s: the abort is decided no earlier than 1 s after the create request', async () => {
    const { tx, sentAt } = await createLateInSecond('down', (name) => tcc(name, '1s'));
    const done = await txs.untilPhase(ns, tx.metadata.name, terminal);
    expect(done.status?.phase).toBe('Aborted');
    const decided = Date.parse(done.status!.decisionTime!);
    // Before: decided at creationTimestamp + 1 s, i.e. 100–300 ms after the request.
    expect(decided - sentAt).toBeGreaterThanOrEqual(1000);
    // The participant kept being asked until the real deadline.
    const lastTry = Math.max(...participant.seen('Try', tx.metadata.name).map((c) => c.receivedAt));
    expect(lastTry - sentAt).toBeGreaterThan(700);
  });

  it('a Message with checkAfter 3s is never checked back before 3 s after the create request (measured at the source)', async () => {
    const { tx, sentAt } = await createLateInSecond('msg', (name) => ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DistributedTransaction',
      metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
      spec: {
        mode: 'Message',
        timeout: '30s',
        message: { source: { endpoint: { address: participant.address }, operation: 'createOrder' }, checkAfter: '3s' },
        branches: [{ name: 'points', endpoint: { address: participant.address } }],
      },
    }));
    const checked = await eventually('the first CheckPrepared', async () => participant.seen('CheckPrepared', tx.metadata.name)[0], 30_000);
    // Before: 2.1–2.9 s after the request.
    expect(checked.receivedAt - sentAt).toBeGreaterThanOrEqual(3000);
    const done = await txs.untilPhase(ns, tx.metadata.name, ['Delivered']);
    expect(done.status?.check?.lastAnswer).toBe('COMMITTED');
  });
});
