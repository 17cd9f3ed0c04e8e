/**
 * Peak shaving: a burst of 500 TCC transactions against one participant, with
 * the operator limited to 5 calls in flight per endpoint and 50 transactions
 * in the forward phase. The participant never sees more than 5 concurrent
 * calls, transactions beyond the 50 wait Pending (WaitingForCapacity), and
 * every one of them still commits.
 *
 * Judged by progress, not by a wall-clock total a loaded machine cannot
 * meet: the test fails only when no transaction has changed phase for
 * STALL_MS, and then says where every transaction is. The operator runs with
 * a 1000 h resync, so a transaction stranded by a lost event or a missed
 * requeue stalls the test instead of being rescued by the periodic resync.
 * The test's own watch is closed by the server every few seconds
 * (timeoutSeconds) and once from this side, and must still see every commit:
 * during the burst the API server also force-closes a watcher that reads too
 * slowly ("watcher close due to unresponsiveness"), and a watch that was not
 * re-established once left this test waiting for commits it never saw.
 */
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { serveParticipant, type Participant } from '../../sdk/typescript/src/index.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath, whileProgressing } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';
import { TransactionWatch } from '../support/tx-watch.js';

// KUBETX_FLOW_TOTAL makes the burst smaller.
const TOTAL = Number(process.env.KUBETX_FLOW_TOTAL ?? 500);
/** The test fails when no transaction has changed phase for this long. */
const STALL_MS = Number(process.env.KUBETX_FLOW_STALL_MS ?? 60_000);
/** The server closes the test's watch after this long; it must be re-established without losing a commit. */
const WATCH_TIMEOUT_S = 5;
const MAX_CALLS = 5;
const MAX_FORWARD = 50;

let kc: k8s.KubeConfig;
let ns: string;
let operator: OperatorProcess;
let participant: Participant;
let txs: ReturnType<typeof transactions>;
const load = { current: 0, max: 0, calls: 0 };

beforeAll(async () => {
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'flow');
  txs = transactions(kc);
  const handler = async () => {
    load.current++;
    load.calls++;
    load.max = Math.max(load.max, load.current);
    try {
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 5));
    } finally {
      load.current--;
    }
  };
  participant = await serveParticipant({
    address: '127.0.0.1:0',
    logger: pino({ level: 'silent' }),
    tcc: { try: handler, confirm: handler, cancel: handler },
  });
  operator = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespaces: [ns],
    // More workers than the forward limit, so the limit (not the worker count) is what holds transactions back.
    // No periodic resync during the test: completion must not depend on it.
    args: ['--workers', '128', '--max-calls-per-endpoint', String(MAX_CALLS), '--max-forward-transactions', String(MAX_FORWARD), '--resync-period', '1000h'],
  });
});

afterAll(async () => {
  await operator?.kill();
  await participant?.shutdown(0);
});

function tcc(name: string): DistributedTransaction {
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      // Waiting for capacity counts against the forward timeout: leave room for the whole burst, however
      // slow the machine (the test judges progress, and is bounded by the same hour).
      timeout: '1h',
      retry: { initialInterval: '200ms', maxInterval: '1s', multiplier: 2, maxAttempts: 0 },
      branches: ['a', 'b'].map((b) => ({ name: b, endpoint: { address: `127.0.0.1:${participant.port}` }, operation: 'op', payload: { n: 1 }, callTimeout: '5s' })),
    },
  };
}

/** Where the transactions are: from the server, with a count per phase and a few examples of those not committed. */
function census(list: DistributedTransaction[]): string {
  const byPhase = new Map<string, number>();
  const label = (t: DistributedTransaction) => {
    const phase = t.status?.phase || '(no status)';
    const reason = t.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason;
    return phase === 'Pending' && reason ? `${phase}/${reason}` : phase;
  };
  for (const t of list) byPhase.set(label(t), (byPhase.get(label(t)) ?? 0) + 1);
  const committed = list.filter((t) => t.status?.phase === 'Committed').length;
  // Up to two examples of each phase that is not Committed.
  const shown = new Map<string, number>();
  const examples = list
    .filter((t) => t.status?.phase !== 'Committed')
    .filter((t) => {
      const n = shown.get(label(t)) ?? 0;
      shown.set(label(t), n + 1);
      return n < 2;
    })
    .map((t) => `  ${t.metadata.name}: ${label(t)}: ${t.status?.message ?? '(no message)'}`);
  return [
    `server: ${list.length} transactions, ${committed} committed; by phase: ${[...byPhase].map(([p, n]) => `${p}=${n}`).join(', ')}`,
    ...(examples.length ? ['not committed, e.g.:', ...examples] : []),
  ].join('\n');
}

describe('flow control', () => {
  it(`a burst of ${TOTAL}: ≤ ${MAX_CALLS} concurrent calls per endpoint, the rest wait Pending, all commit`, async () => {
    const waiting = new Set<string>();
    const phases = new Map<string, string>();
    /** When any transaction last changed phase (or appeared): the measure of progress. */
    let lastProgress = Date.now();
    const watch = new TransactionWatch(
      kc,
      ns,
      (obj) => {
        const phase = obj.status?.phase ?? '';
        if (phases.get(obj.metadata.name) !== phase) {
          phases.set(obj.metadata.name, phase);
          lastProgress = Date.now();
        }
        const c = obj.status?.conditions?.find((x) => x.type === 'Succeeded');
        if (obj.status?.phase === 'Pending' && c?.status === 'Unknown' && c.reason === 'WaitingForCapacity') waiting.add(obj.metadata.name);
      },
      { timeoutSeconds: WATCH_TIMEOUT_S },
    );
    await watch.start();
    const committedSeen = () => [...phases.values()].filter((p) => p === 'Committed').length;
    try {
      const started = Date.now();
      const names = Array.from({ length: TOTAL }, (_, i) => `burst-${String(i).padStart(3, '0')}`);
      for (let i = 0; i < names.length; i += 50) {
        await Promise.all(names.slice(i, i + 50).map((n) => txs.create(tcc(n))));
        lastProgress = Date.now();
      }
      const created = Date.now() - started;
      // The flow-control gauge, sampled while the burst runs: both kinds of waiting must show.
      const peak = { transactions: 0, calls: 0 };
      const sample = async () => {
        const text = await operator.metrics();
        for (const what of ['transactions', 'calls'] as const) peak[what] = Math.max(peak[what], counterValue(text, 'kubetx_flow_control_waiting', { what }));
      };
      let dropped = false;
      let reported = Date.now();
      await whileProgressing(
        `all ${TOTAL} transactions to commit`,
        async () => {
          const committed = committedSeen();
          // Halfway, break the watch from this side too (as a reset connection would): it must resume from its resourceVersion.
          if (!dropped && committed >= TOTAL / 2) {
            dropped = true;
            watch.drop();
          }
          if (Date.now() - reported >= 15_000) {
            reported = Date.now();
            process.stderr.write(`flow-control: ${committed}/${TOTAL} committed after ${Date.now() - started} ms (watch closed ${watch.closes} times, ${watch.early} early)\n`);
          }
          await sample();
          return committed === TOTAL ? true : undefined;
        },
        () => lastProgress,
        STALL_MS,
        async () => {
          const text = await operator.metrics().catch(() => '');
          const gauge = (name: string, labels: Record<string, string> = {}) => counterValue(text, name, labels);
          return [
            census(await txs.list(ns)),
            `test's watch: ${committedSeen()} committed seen, ${phases.size} transactions seen, closed ${watch.closes} times (${watch.early} early), ${watch.relists} relists`,
            `operator: workqueue depth ${gauge('kubetx_workqueue_depth')}, waiting for capacity ${gauge('kubetx_flow_control_waiting', { what: 'transactions' })}, ` +
              `calls waiting ${gauge('kubetx_flow_control_waiting', { what: 'calls' })}, in flight ${gauge('kubetx_transactions_in_flight')}, ` +
              `reconcile errors ${gauge('kubetx_reconcile_total', { result: 'error' })}, status write errors ${gauge('kubetx_status_writes_total', { result: 'error' })}`,
            `participant: ${load.calls} calls, ${load.current} in flight now, max concurrent ${load.max}`,
          ].join('\n');
        },
      );
      const elapsed = Date.now() - started;
      process.stderr.write(`flow-control: ${TOTAL} created in ${created} ms, all committed after ${elapsed} ms; ${load.calls} calls, max concurrent ${load.max}; ${waiting.size} seen WaitingForCapacity; gauge peaks: ${peak.transactions} transactions, ${peak.calls} calls waiting; test watch closed ${watch.closes} times (${watch.early} early, by the server), ${watch.relists} relists\n`);
      // Confirm with the server, not just the watch.
      const list = await txs.list(ns);
      expect(list.length).toBe(TOTAL);
      expect(list.filter((t) => t.status?.phase === 'Committed').length, census(list)).toBe(TOTAL);
      expect(load.max).toBeLessThanOrEqual(MAX_CALLS);
      expect(load.max).toBeGreaterThan(1);
      expect(waiting.size).toBeGreaterThan(0);
      // The watch was closed (by the server's timeoutSeconds and by the drop above) and still saw every commit.
      expect(dropped).toBe(true);
      expect(watch.closes).toBeGreaterThanOrEqual(1);
      // Nothing failed on the way: no status write or reconcile error in a burst with healthy
      // participants and API server (a keep-alive bug in the HTTP client once failed hundreds).
      const text = await operator.metrics();
      expect(counterValue(text, 'kubetx_status_writes_total', { result: 'error' })).toBe(0);
      expect(counterValue(text, 'kubetx_reconcile_total', { result: 'error' })).toBe(0);
      expect(peak.transactions).toBeGreaterThan(0);
      expect(peak.calls).toBeGreaterThan(0);
      // Once everything committed, nothing is held back and the operator's cache shows nothing
      // in flight (it may lag the last writes a moment; there is no resync to catch it up).
      await eventually('the flow-control and in-flight gauges back to 0', async () => {
        const text = await operator.metrics();
        return counterValue(text, 'kubetx_flow_control_waiting', { what: 'transactions' }) === 0 &&
          counterValue(text, 'kubetx_flow_control_waiting', { what: 'calls' }) === 0 &&
          counterValue(text, 'kubetx_transactions_in_flight') === 0 ? true : undefined;
      }, STALL_MS);
    } finally {
      watch.stop();
    }
  // No wall-clock limit of its own: the stall window above decides; this only bounds a runaway.
  }, 3_600_000);
});
