/**
 * A tenant cannot crash-loop the operator with big transactions (issue: 200
 * valid transactions of 1.2 MB took it to 496 MiB, and to 1.15 GiB while
 * starting again — OOM-killed in the chart's 512 MiB limit). The cache holds
 * no payloads, managedFields or last-applied copies, the list comes in pages,
 * and all payloads of one transaction together are bounded (256 KiB), so these
 * objects are refused before any call; the operator's peak RSS stays under
 * 512 MiB while it takes them in and again after a restart. And a transaction
 * whose payloads the cache dropped still sends them to its participants.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';

const OBJECTS = Number(process.env.KUBETX_TEST_MEMORY_OBJECTS ?? 200);
const BRANCHES = 64;
const PAYLOAD_BYTES = 19 * 1024;
const LIMIT_MIB = 512;

let ns: string;
let pay: PaymentServices;
const operators: OperatorProcess[] = [];
let txs: ReturnType<typeof transactions>;

beforeAll(async () => {
  const kc = kubeConfig();
  ns = await freshNamespace(kc, 'memory');
  txs = transactions(kc);
  pay = await startPayment();
});

afterAll(async () => {
  for (const op of operators) await op.kill('SIGKILL');
  await pay?.stopAll();
});

/** Peak resident memory of a process, in MiB (VmHWM). */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

function bigTx(i: number): DistributedTransaction {
  const blob = 'p'.repeat(PAYLOAD_BYTES);
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name: `big-${i}`, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout: '1h',
      branches: Array.from({ length: BRANCHES }, (_, b) => ({ name: `b${b}`, endpoint: { address: '127.0.0.1:1' }, payload: { b, blob } })),
    },
  };
}

const start = async () => {
  // As the chart runs it: a V8 heap limit below the container's memory limit (values.heapLimitMiB, 320 for the 512Mi limit), so the
  // garbage of a start-up list is collected before the cgroup would kill the process.
  const op = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], nodeArgs: ['--max-old-space-size=320', ...(process.env.KUBETX_TEST_TRACE_GC ? ['--trace-gc'] : [])] });
  operators.push(op);
  return op;
};

describe('operator memory with hostile payloads', () => {
  it('a transaction whose payloads the cache dropped still sends them (one live read before its calls)', async () => {
    const op = await start();
    pay.addOrders([9901]);
    const tx = payOrder(pay, { name: 'stripped-payload', namespace: ns, orderId: 9901 });
    // Over the 2 KiB the cache keeps: the payloads are read live before the Trys.
    (tx.spec.branches[2]!.payload as Record<string, unknown>).note = 'n'.repeat(4096);
    await txs.create(tx);
    expect((await txs.untilPhase(ns, 'stripped-payload', ['Committed', 'Aborted', 'Failed'])).status?.phase).toBe('Committed');
    const l = pay.ledgers();
    expect(l.order!.orders['9901']!.status).toBe('PAID');
    await op.kill('SIGKILL');
  });

  it(`${OBJECTS} transactions of ${((BRANCHES * PAYLOAD_BYTES) / 1e6).toFixed(1)} MB: refused before any call, peak RSS under ${LIMIT_MIB} MiB, and again after a restart`, async () => {
    // Created before the operator runs, so its start-up list takes them all at once (the worst case).
    const t0 = Date.now();
    for (let i = 0; i < OBJECTS; i += 4) await Promise.all([0, 1, 2, 3].map((k) => (i + k < OBJECTS ? txs.create(bigTx(i + k)) : undefined)));
    console.log(`[memory] ${OBJECTS} objects created in ${Date.now() - t0} ms`);
    const first = await start();
    // Reading 240 MB back to check would cost more than the test: the operator counts its refusals.
    await eventually('every big transaction refused', async () =>
      counterValue(await first.metrics(), 'kubetx_escalations_total', { reason: 'PayloadTooLarge' }) >= OBJECTS ? true : undefined, 170_000).catch((err) => {
      throw new Error(`${(err as Error).message}; operator exit ${first.child.exitCode ?? first.child.signalCode}, stderr: ${first.stderr().slice(-1500)}`);
    });
    for (const i of [0, OBJECTS - 1]) {
      const t = await txs.get(ns, `big-${i}`);
      expect(t.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'PayloadTooLarge' });
      expect(t.status?.message).toMatch(/the payloads total \d+ bytes of JSON, more than the 262144 allowed/);
    }
    const firstPeak = peakRssMiB(first.child.pid!);
    await first.kill('SIGKILL');

    const second = await start();
    // Synced: the controller has started with every object listed; a reconcile of each follows (no writes: all finished).
    await second.waitForLog((l) => l.msg === 'controller started');
    // Its first pass over them: one reconcile each (nothing to write, all are finished).
    await eventually('the restarted operator through its queue', async () =>
      counterValue(await second.metrics(), 'kubetx_reconcile_total', { result: 'success' }) >= OBJECTS ? true : undefined, 120_000);
    const secondPeak = peakRssMiB(second.child.pid!);
    console.log(`[memory] peak RSS: ${firstPeak.toFixed(0)} MiB taking ${OBJECTS} objects in, ${secondPeak.toFixed(0)} MiB after a restart`);
    expect(firstPeak).toBeLessThan(LIMIT_MIB);
    expect(secondPeak).toBeLessThan(LIMIT_MIB);
  }, 300_000);
});
