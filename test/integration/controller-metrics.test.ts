/**
 * The controller-runtime / client-go metrics a controller user recognises,
 * scraped from the real operator after real transactions: every name, its
 * labels (controller="distributedtransaction", the work queue's name and
 * controller, the API server's host:port), histograms with _bucket/_sum/_count,
 * and values that fit what happened. A second operator on the same namespace
 * (no leader election) races the first for every write, so 409 conflicts and
 * result="requeue" are seen too.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { apiHost } from '../../src/controller/rest-client-metrics.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { terminal, transactions } from '../support/payment.js';
import { OK, startScriptedParticipant, type ScriptedParticipant } from '../support/scripted-participant.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text → samples (enough of the format for prom-client's output). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const matches = (s: Sample, name: string, labels: Record<string, string>) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
const sum = (samples: Sample[], name: string, labels: Record<string, string> = {}) => samples.filter((s) => matches(s, name, labels)).reduce((a, s) => a + s.value, 0);
const series = (samples: Sample[], name: string) => samples.filter((s) => s.name === name);

const CONTROLLER = 'distributedtransaction';
const ctrl = { controller: CONTROLLER };
const queue = { name: CONTROLLER, controller: CONTROLLER };
const TXS = 4;

let kc: k8s.KubeConfig;
let ns: string;
let participant: ScriptedParticipant;
let first: OperatorProcess;
let second: OperatorProcess | undefined;
let txs: ReturnType<typeof transactions>;
let host: string;

function tx(name: string): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout: '60s',
      branches: [
        { name: 'a', endpoint: { address: participant.address } },
        { name: 'b', endpoint: { address: participant.address } },
      ],
    },
  };
}

async function runTransactions(prefix: string, n: number): Promise<void> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const name of names) await txs.create(tx(name));
  for (const name of names) expect((await txs.untilPhase(ns, name, terminal, 90_000)).status?.phase).toBe('Committed');
}

beforeAll(async () => {
  kc = kubeConfig();
  host = apiHost(kc.getCurrentCluster()?.server);
  ns = await freshNamespace(kc, 'ctrl-metrics');
  txs = transactions(kc);
  participant = await startScriptedParticipant(() => OK, ['tcc']);
  // --events all: each transaction's Decided/Committed Events are POSTs, so every verb shows up.
  first = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], args: ['--events', 'all'] });
});

afterAll(async () => {
  await second?.kill();
  await first?.kill();
  await participant?.stop();
});

describe('controller-runtime and client-go metrics', () => {
  it('after real transactions: every name, with its labels and plausible values', async () => {
    await runTransactions('m', TXS);
    // A transaction's last reconcile may still be counting when its status says Committed.
    const m = await eventually('the reconciles counted', async () => {
      const s = parse(await first.metrics());
      return sum(s, 'controller_runtime_reconcile_total', { ...ctrl, result: 'success' }) >= TXS && sum(s, 'kubetx_events_total', { result: 'created' }) >= TXS ? s : undefined;
    }, 30_000);

    // controller_runtime_*: every result label value exists (zero or not).
    for (const result of ['success', 'error', 'requeue', 'requeue_after']) {
      expect(series(m, 'controller_runtime_reconcile_total').some((s) => matches(s, 'controller_runtime_reconcile_total', { ...ctrl, result })), result).toBe(true);
    }
    expect(new Set(series(m, 'controller_runtime_reconcile_total').map((s) => s.labels.result))).toEqual(new Set(['success', 'error', 'requeue', 'requeue_after']));
    expect(series(m, 'controller_runtime_reconcile_errors_total')).toEqual([{ name: 'controller_runtime_reconcile_errors_total', labels: ctrl, value: 0 }]);
    expect(sum(m, 'controller_runtime_reconcile_total', { ...ctrl, result: 'error' })).toBe(0);
    const reconciles = sum(m, 'controller_runtime_reconcile_total', ctrl);
    // Each committed transaction: finalizer + Trys, decision + Confirms, the outcome (at least).
    expect(sum(m, 'controller_runtime_reconcile_total', { ...ctrl, result: 'success' }) + sum(m, 'controller_runtime_reconcile_total', { ...ctrl, result: 'requeue_after' })).toBeGreaterThanOrEqual(3 * TXS);
    expect(sum(m, 'controller_runtime_reconcile_time_seconds_count', ctrl)).toBe(reconciles);
    expect(sum(m, 'controller_runtime_reconcile_time_seconds_bucket', { ...ctrl, le: '+Inf' })).toBe(reconciles);
    expect(sum(m, 'controller_runtime_reconcile_time_seconds_bucket', { ...ctrl, le: '0.005' })).toBeLessThanOrEqual(reconciles);
    expect(series(m, 'controller_runtime_reconcile_time_seconds_bucket').filter((s) => s.labels.controller === CONTROLLER)).toHaveLength(41); // 40 buckets + Inf
    expect(sum(m, 'controller_runtime_reconcile_time_seconds_sum', ctrl)).toBeGreaterThan(0);
    expect(sum(m, 'controller_runtime_reconcile_time_seconds_sum', ctrl)).toBeLessThan(reconciles * 10);
    expect(sum(m, 'controller_runtime_max_concurrent_reconciles', ctrl)).toBe(16);
    expect(series(m, 'controller_runtime_active_workers')).toHaveLength(1);
    expect(sum(m, 'controller_runtime_active_workers', ctrl)).toBeGreaterThanOrEqual(0);
    expect(sum(m, 'controller_runtime_active_workers', ctrl)).toBeLessThanOrEqual(16);

    // workqueue_*: name and controller labels, client-go's buckets (1e-8 … 1e3 s).
    const adds = sum(m, 'workqueue_adds_total', queue);
    expect(adds).toBeGreaterThanOrEqual(reconciles); // every reconcile was handed out after an add
    expect(sum(m, 'kubetx_workqueue_adds_total')).toBe(adds);
    expect(series(m, 'workqueue_depth')).toEqual([{ name: 'workqueue_depth', labels: queue, value: expect.any(Number) }]);
    expect(sum(m, 'workqueue_depth', queue)).toBeGreaterThanOrEqual(0);
    for (const h of ['workqueue_queue_duration_seconds', 'workqueue_work_duration_seconds']) {
      // Observed at get (queue) and done (work): a reconcile under way at the scrape may be counted already.
      expect(sum(m, `${h}_count`, queue), h).toBeGreaterThanOrEqual(h.includes('queue') ? reconciles : reconciles - 16);
      expect(sum(m, `${h}_count`, queue), h).toBeLessThanOrEqual(reconciles + 16);
      expect(sum(m, `${h}_bucket`, { ...queue, le: '+Inf' }), h).toBe(sum(m, `${h}_count`, queue));
      expect(series(m, `${h}_bucket`).map((s) => s.labels.le), h).toEqual(['1e-8', '1e-7', '0.000001', '0.00001', '0.0001', '0.001', '0.01', '0.1', '1', '10', '100', '1000', '+Inf']);
      expect(sum(m, `${h}_sum`, queue), h).toBeGreaterThan(0);
      expect(sum(m, `${h}_sum`, queue), h).toBeLessThan(reconciles * 10);
    }
    for (const g of ['workqueue_unfinished_work_seconds', 'workqueue_longest_running_processor_seconds']) {
      expect(series(m, g), g).toHaveLength(1);
      expect(sum(m, g, queue), g).toBeGreaterThanOrEqual(0);
      expect(sum(m, g, queue), g).toBeLessThan(60);
    }
    expect(series(m, 'workqueue_retries_total')).toEqual([{ name: 'workqueue_retries_total', labels: queue, value: expect.any(Number) }]);

    // rest_client_*: every request, by code/method/host and verb/host; the host is the API server's host:port only.
    const requests = series(m, 'rest_client_requests_total');
    expect(requests.length).toBeGreaterThan(0);
    for (const s of requests) {
      expect(Object.keys(s.labels).sort()).toEqual(['code', 'host', 'method']);
      expect(s.labels.host).toBe(host);
      expect(s.labels.code).toMatch(/^(\d{3}|<error>)$/);
      expect(['GET', 'PUT', 'PATCH', 'POST', 'DELETE']).toContain(s.labels.method);
    }
    // GETs: list pages, watches (counted by their initial 200), Secrets/EndpointSlices informers.
    expect(sum(m, 'rest_client_requests_total', { code: '200', method: 'GET', host })).toBeGreaterThanOrEqual(2);
    // PATCH: the finalizer (merge patch); PUT: two status writes per transaction (decision, outcome); POST: the Events.
    expect(sum(m, 'rest_client_requests_total', { code: '200', method: 'PATCH', host })).toBeGreaterThanOrEqual(TXS);
    expect(sum(m, 'rest_client_requests_total', { code: '200', method: 'PUT', host })).toBeGreaterThanOrEqual(2 * TXS);
    expect(sum(m, 'rest_client_requests_total', { code: '201', method: 'POST', host })).toBeGreaterThanOrEqual(TXS);
    expect(sum(m, 'rest_client_requests_total', { code: '200', method: 'PUT', host })).toBe(sum(m, 'kubetx_status_writes_total', { result: 'ok' }));
    const durations = series(m, 'rest_client_request_duration_seconds_count');
    for (const s of durations) expect(Object.keys(s.labels).sort()).toEqual(['host', 'verb']);
    for (const verb of ['GET', 'PUT', 'PATCH', 'POST']) {
      expect(sum(m, 'rest_client_request_duration_seconds_count', { verb, host }), verb).toBeGreaterThan(0);
      expect(sum(m, 'rest_client_request_duration_seconds_bucket', { verb, host, le: '60' }), verb).toBe(sum(m, 'rest_client_request_duration_seconds_count', { verb, host }));
      expect(sum(m, 'rest_client_request_duration_seconds_sum', { verb, host }), verb).toBeGreaterThan(0);
    }
    // Every non-watch request has a duration; watches (GET, open for minutes) have none.
    expect(sum(m, 'rest_client_request_duration_seconds_count', { verb: 'PUT', host })).toBe(sum(m, 'rest_client_requests_total', { method: 'PUT', host }));
    expect(sum(m, 'rest_client_request_duration_seconds_count', { verb: 'GET', host })).toBeLessThan(sum(m, 'rest_client_requests_total', { method: 'GET', host }));
    expect(series(m, 'rest_client_request_duration_seconds_bucket').filter((s) => s.labels.verb === 'PUT').map((s) => s.labels.le)).toEqual(
      ['0.005', '0.025', '0.1', '0.25', '0.5', '1', '2', '4', '8', '15', '30', '60', '+Inf'],
    );

    // The business metrics are all still there.
    expect(sum(m, 'kubetx_transactions_total', { mode: 'TCC', result: 'Committed' })).toBe(TXS);
    expect(sum(m, 'kubetx_reconcile_total', { result: 'success' })).toBeGreaterThanOrEqual(TXS);
  });

  it('two operators racing for the same transactions: 409s counted, and the lost races are result="requeue"', async () => {
    second = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
    const scrape = async () => [parse(await first.metrics()), parse(await second!.metrics())] as const;
    const before = await scrape();
    let round = 0;
    // Both see each new transaction at once and both write its finalizer with the same resourceVersion precondition: one loses.
    await eventually('a 409 Conflict', async () => {
      await runTransactions(`race${round++}`, 3);
      const [a, b] = await scrape();
      return sum(a, 'rest_client_requests_total', { code: '409' }) + sum(b, 'rest_client_requests_total', { code: '409' }) > 0 ? true : undefined;
    }, 120_000);
    const [a, b] = await scrape();
    const both = (name: string, labels: Record<string, string>) => sum(a, name, labels) + sum(b, name, labels);
    const conflicts = both('rest_client_requests_total', { code: '409', host });
    expect(conflicts).toBeGreaterThanOrEqual(1);
    expect(both('rest_client_requests_total', { code: '409' })).toBe(conflicts);
    // Every lost write race is a requeue (kubetx_reconcile_total says "conflict"), through the rate limiter: a retry.
    const requeues = both('controller_runtime_reconcile_total', { ...ctrl, result: 'requeue' });
    expect(requeues).toBeGreaterThanOrEqual(1);
    expect(requeues).toBe(both('kubetx_reconcile_total', { result: 'conflict' }));
    expect(both('workqueue_retries_total', queue)).toBeGreaterThan(sum(before[0], 'workqueue_retries_total', queue) + sum(before[1], 'workqueue_retries_total', queue));
  });
});
