/**
 * Leader election with two operator processes against one API server, with
 * short timings (lease 4s, renew deadline 3s, retry 1s) so the test is quick:
 *   - only the replica holding the Lease reconciles;
 *   - SIGKILL of the leader while Confirms are failing: the standby takes over
 *     once the lease has expired (not before, not much after) and finishes every
 *     transaction, and nothing is decided twice (participants' ledgers, a watch of
 *     every status each object went through, and the operators' logs);
 *   - SIGTERM of the leader gives the Lease back: the standby takes over in well
 *     under the lease duration.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, setFault } from '../../examples/payment/faults.js';
import { dbPathIn, SERVICES } from '../../examples/payment/db.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, terminal, transactions, type PaymentServices } from '../support/payment.js';
import { startHangingParticipant } from '../support/hanging-participant.js';

const leaseMs = 4000;
const retryMs = 1000;
const timing = ['--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '1s'];

let kc: k8s.KubeConfig;
let ns: string;
let pay: PaymentServices;
let txs: ReturnType<typeof transactions>;
let nextOrder = 5000;
const started: OperatorProcess[] = [];

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'leader');
  txs = transactions(kc);
  pay = await startPayment();
});

afterEach(async () => {
  for (const s of SERVICES) clearFaults(dbPathIn(pay.dir, s));
  for (const o of started.splice(0)) await o.kill('SIGKILL');
});

afterAll(async () => {
  await pay?.stopAll();
});

const newOrder = () => {
  const id = nextOrder++;
  pay.addOrders([id]);
  return id;
};

const logTime = (line: Record<string, unknown>) => Date.parse(line.time as string);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

interface Replica {
  id: string;
  op: OperatorProcess;
  startedAt: number;
}

/** Two operator processes competing for one Lease (debug logs: every participant call is logged). */
async function startPair(leaseName: string): Promise<{ leader: Replica; standby: Replica }> {
  const start = async (id: string): Promise<Replica> => {
    const startedAt = Date.now();
    const op = await startOperator({
      kubeconfig: kubeconfigPath(),
      namespaces: [ns],
      args: ['--leader-elect', '--leader-election-namespace', ns, '--leader-election-id', leaseName, ...timing, '--log-level', 'debug'],
      env: { POD_NAME: id, POD_NAMESPACE: ns },
    });
    started.push(op);
    return { id, op, startedAt };
  };
  const tag = randomBytes(2).toString('hex');
  const replicas = await Promise.all([start(`kubetx-a-${tag}`), start(`kubetx-b-${tag}`)]);
  const leader = await Promise.race(replicas.map((r) => r.op.waitForLog((l) => l.msg === 'became leader', 20_000).then(() => r)));
  await leader.op.waitForLog((l) => l.msg === 'controller started');
  return { leader, standby: replicas.find((r) => r !== leader)! };
}

async function lease(name: string): Promise<k8s.V1LeaseSpec> {
  return (await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name, namespace: ns })).spec ?? {};
}

/** Log lines that show a replica acting as the controller. */
const reconciling = (op: OperatorProcess) =>
  op.lines.filter((l) => ['controller started', 'calling participants', 'participant call failed', 'decision persisted', 'transaction finished'].includes(l.msg as string));

/** Every state each transaction was seen in by a watch opened before they were created. */
async function recordHistory(): Promise<{ history: Map<string, Array<{ phase?: string; decision?: string; rv?: string }>>; stop: () => void }> {
  const history = new Map<string, Array<{ phase?: string; decision?: string; rv?: string }>>();
  const req = await new k8s.Watch(kc).watch(
    `/apis/kubetx.io/v1alpha1/namespaces/${ns}/distributedtransactions`,
    {},
    (_type, obj: DistributedTransaction) => {
      const h = history.get(obj.metadata.name) ?? [];
      h.push({ phase: obj.status?.phase, decision: obj.status?.decision, rv: obj.metadata.resourceVersion });
      history.set(obj.metadata.name, h);
    },
    () => undefined,
  );
  return { history, stop: () => req.abort() };
}

async function allTerminal(names: string[], timeoutMs = 60_000): Promise<DistributedTransaction[]> {
  return eventually(`${names.length} transactions terminal`, async () => {
    const got = await Promise.all(names.map((n) => txs.get(ns, n)));
    return got.every((t) => terminal.has(t.status?.phase ?? '')) ? got : undefined;
  }, timeoutMs);
}

describe('leader election (lease 4s, renew deadline 3s, retry 1s)', () => {
  it('exactly one replica leads, and only the leader reconciles', async () => {
    const leaseName = `kubetx-le-${randomBytes(2).toString('hex')}`;
    const { leader, standby } = await startPair(leaseName);
    expect((await lease(leaseName)).holderIdentity).toBe(leader.id);

    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const orderId = newOrder();
      names.push(`one-${orderId}`);
      await txs.create(payOrder(pay, { name: `one-${orderId}`, namespace: ns, orderId }));
    }
    const done = await allTerminal(names);
    expect(done.map((t) => t.status?.phase)).toEqual(['Committed', 'Committed', 'Committed']);
    // Give the standby more than a lease duration of a healthy leader to misbehave in.
    await sleep(standby.startedAt + 1.5 * leaseMs - Date.now());

    for (const n of names) {
      expect(leader.op.lines.filter((l) => l.msg === 'decision persisted' && l.transaction === n)).toHaveLength(1);
    }
    expect(leader.op.lines.some((l) => l.msg === 'calling participants')).toBe(true);
    expect(standby.op.lines.some((l) => l.msg === 'became leader')).toBe(false);
    expect(standby.op.lines.some((l) => l.msg === 'waiting for leadership')).toBe(true);
    expect(reconciling(standby.op)).toEqual([]);

    const [lm, sm] = await Promise.all([leader.op.metrics(), standby.op.metrics()]);
    expect(counterValue(lm, 'kubetx_leader_election_master_status')).toBe(1);
    expect(counterValue(sm, 'kubetx_leader_election_master_status')).toBe(0);
    expect(counterValue(lm, 'kubetx_branch_calls_total')).toBeGreaterThanOrEqual(3 * 8);
    expect(counterValue(sm, 'kubetx_branch_calls_total')).toBe(0);
    expect(counterValue(sm, 'kubetx_status_writes_total')).toBe(0);
    expect((await lease(leaseName)).holderIdentity).toBe(leader.id);
  });

  it('leader SIGKILLed with Confirms in flight → the standby takes over after the lease expires and finishes them; nothing is decided twice', async () => {
    const leaseName = `kubetx-le-${randomBytes(2).toString('hex')}`;
    const { leader, standby } = await startPair(leaseName);
    const before = pay.ledgers();
    const watch = await recordHistory();

    // Confirms on credit and warehouse keep failing: every transaction is decided and stuck in Confirming.
    setFault(dbPathIn(pay.dir, 'credit'), { method: 'Confirm', mode: 'fail', remaining: 10_000 });
    setFault(dbPathIn(pay.dir, 'warehouse'), { method: 'Confirm', mode: 'fail', remaining: 10_000 });
    const orders: number[] = [];
    for (let i = 0; i < 5; i++) {
      const orderId = newOrder();
      orders.push(orderId);
      await txs.create(payOrder(pay, { name: `kill-${orderId}`, namespace: ns, orderId }));
    }
    const names = orders.map((o) => `kill-${o}`);
    await eventually('every transaction Confirming with a failed Confirm on credit', async () => {
      const got = await Promise.all(names.map((n) => txs.get(ns, n)));
      return got.every((t) => t.status?.phase === 'Confirming' && (t.status.branches?.find((b) => b.name === 'credit')?.attempts ?? 0) >= 2) ? true : undefined;
    }, 30_000);

    const killedAt = Date.now();
    await leader.op.kill('SIGKILL');
    // The new leader meets a few more failures (the count is shared by all transactions), then success.
    clearFaults(dbPathIn(pay.dir, 'warehouse'));
    setFault(dbPathIn(pay.dir, 'credit'), { method: 'Confirm', mode: 'fail', remaining: 3 });

    const became = await standby.op.waitForLog((l) => l.msg === 'became leader', leaseMs + 10_000);
    const takeoverMs = logTime(became) - killedAt;
    process.stderr.write(`[leader-election] SIGKILL → standby leading after ${takeoverMs} ms (lease ${leaseMs} ms)\n`);
    // It waited for the lease to expire (the last renewal was at most one retry period before the kill) ...
    expect(takeoverMs).toBeGreaterThanOrEqual(leaseMs - retryMs - 500);
    // ... and took over within the lease duration plus two polls and a margin.
    expect(takeoverMs).toBeLessThan(leaseMs + 2 * retryMs + 1000);

    const done = await allTerminal(names);
    watch.stop();
    expect(done.map((t) => t.status?.phase)).toEqual(names.map(() => 'Committed'));
    expect(done.every((t) => t.status?.decision === 'Confirm')).toBe(true);
    // The standby did the rest: it made calls, and none before it led.
    const becameIndex = standby.op.lines.indexOf(became);
    expect(reconciling({ ...standby.op, lines: standby.op.lines.slice(0, becameIndex) })).toEqual([]);
    expect(standby.op.lines.slice(becameIndex).some((l) => l.msg === 'calling participants')).toBe(true);

    // Decided once: by the first leader, before it died; the successor found the decision and only carried it out.
    for (const n of names) {
      // The standby logs "transaction finished" after its status write returns, so the test's watch can see the
      // terminal phase before that line has come through the pipe: wait for the line rather than expect it already.
      await standby.op.waitForLog((l) => l.msg === 'transaction finished' && l.transaction === n, 10_000);
      expect(leader.op.lines.filter((l) => l.msg === 'decision persisted' && l.transaction === n), n).toHaveLength(1);
      expect(standby.op.lines.filter((l) => l.msg === 'decision persisted' && l.transaction === n), n).toHaveLength(0);
    }
    // Every status the objects went through: once a decision is recorded it never changes or disappears,
    // and the phase only moves forward.
    const order = ['', 'Pending', 'Trying', 'Confirming', 'Committed'];
    for (const n of names) {
      const h = watch.history.get(n) ?? [];
      expect(h.at(-1)?.phase, `${n}: ${JSON.stringify(h)}`).toBe('Committed');
      const decisions = h.map((s) => s.decision).filter((d, i, all) => i === 0 || d !== all[i - 1]);
      expect(decisions, `${n}: ${JSON.stringify(h)}`).toEqual([undefined, 'Confirm']);
      const ranks = h.map((s) => order.indexOf(s.phase ?? ''));
      expect(ranks.every((r) => r >= 0), `${n}: ${JSON.stringify(h)}`).toBe(true);
      expect(ranks, `${n}: phases go forward`).toEqual([...ranks].sort((a, b) => a - b));
    }

    // The participants' ledgers: each Confirm took effect exactly once.
    const after = pay.ledgers();
    const uids = new Map(done.map((t) => [t.metadata.name, t.metadata.uid]));
    for (const service of SERVICES) {
      for (const uid of uids.values()) {
        expect(after[service]!.barrier.filter((b) => b.uid === uid && b.method === 'Confirm' && b.origin === 'call'), `${service} Confirm of ${uid}`).toHaveLength(1);
      }
    }
    const n = orders.length;
    expect(after.inventory!.items['A-1']!.sold).toBe(before.inventory!.items['A-1']!.sold + 2 * n);
    expect(after.inventory!.items['A-1']!.stock).toBe(before.inventory!.items['A-1']!.stock - 2 * n);
    expect(after.inventory!.items['A-1']!.frozen).toBe(before.inventory!.items['A-1']!.frozen);
    expect(after.credit!.accounts['7']).toEqual({ credit: before.credit!.accounts['7']!.credit + 10 * n, prepareAddCredit: 0 });
    for (const o of orders) {
      expect(after.order!.orders[String(o)]!.status).toBe('PAID');
      expect(after.warehouse!.deliveryNotes.filter((d) => d.orderId === o).map((d) => d.state)).toEqual(['CREATED']);
    }
    const spec = await lease(leaseName);
    expect(spec.holderIdentity).toBe(standby.id);
    expect(spec.leaseTransitions).toBeGreaterThanOrEqual(1);
  });

  it('leader SIGTERMed → it releases the Lease and the standby takes over in well under the lease duration', async () => {
    const leaseName = `kubetx-le-${randomBytes(2).toString('hex')}`;
    const { leader, standby } = await startPair(leaseName);
    // Let the standby see a few renewals, as it would in a long-running deployment.
    await sleep(standby.startedAt + 2 * retryMs - Date.now());

    const termAt = Date.now();
    await leader.op.kill('SIGTERM');
    expect(leader.op.child.exitCode).toBe(0);
    expect(leader.op.lines.some((l) => l.msg === 'released leadership')).toBe(true);
    const became = await standby.op.waitForLog((l) => l.msg === 'became leader', leaseMs + 10_000);
    const takeoverMs = logTime(became) - termAt;
    process.stderr.write(`[leader-election] SIGTERM → standby leading after ${takeoverMs} ms (lease ${leaseMs} ms)\n`);
    expect(takeoverMs).toBeLessThan(leaseMs);
    expect((await lease(leaseName)).holderIdentity).toBe(standby.id);

    // And it works: a payment commits under the new leader.
    const orderId = newOrder();
    await txs.create(payOrder(pay, { name: `term-${orderId}`, namespace: ns, orderId }));
    const [tx] = await allTerminal([`term-${orderId}`]);
    expect(tx!.status?.phase).toBe('Committed');
    expect(standby.op.lines.some((l) => l.msg === 'decision persisted' && l.transaction === `term-${orderId}`)).toBe(true);
  });

  it('leader SIGTERMed while a participant call hangs → it cancels the call, releases the Lease and exits 0 at once', async () => {
    const hang = await startHangingParticipant();
    try {
      const leaseName = `kubetx-le-${randomBytes(2).toString('hex')}`;
      const { leader, standby } = await startPair(leaseName);
      const name = `hang-${randomBytes(2).toString('hex')}`;
      await txs.create({
        apiVersion: 'kubetx.io/v1alpha1',
        kind: 'DistributedTransaction',
        metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
        spec: { mode: 'TCC', timeout: '10m', branches: [{ name: 'a', endpoint: { address: `127.0.0.1:${hang.port}` }, callTimeout: '50s' }] },
      });
      const held = await eventually('the Try held by the participant', async () => hang.open().find((c) => c.transaction === name));

      const termAt = Date.now();
      await leader.op.kill('SIGTERM');
      // Before: the shutdown waited for the call (up to 50 s), was forced out after 30 s with exit 1, and never released the Lease.
      expect(leader.op.child.exitCode).toBe(0);
      expect(leader.op.lines.some((l) => l.msg === 'released leadership')).toBe(true);
      await eventually('the held call cancelled', async () => (held.cancelled ? true : undefined), 10_000);
      expect(held.cancelledAt! - termAt).toBeLessThan(10_000);
      const became = await standby.op.waitForLog((l) => l.msg === 'became leader', leaseMs + 10_000);
      expect(logTime(became) - termAt).toBeLessThan(leaseMs);
      // The new leader takes the transaction over and calls Try again.
      await eventually('the standby retrying the Try', async () => (hang.open().some((c) => c.transaction === name && c !== held) ? true : undefined), 20_000);
    } finally {
      await hang.stop();
    }
  });
});
