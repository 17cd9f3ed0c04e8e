/**
 * The chart's monitoring against the operator's REAL /metrics:
 *
 * - Every alert of the PrometheusRule is evaluated by Prometheus's own engine
 *   (`promtool test rules`, hack/promtool.sh) on series built from scrapes of
 *   a real operator: one scrape while healthy (a committed transaction), one
 *   after it met trouble that this file causes for real (an escalation, a
 *   stalled second phase whose Confirms fail, reconciles whose status writes
 *   the API server refuses), and one of a replica that never gets the Lease.
 *   The scrapes become a timeline (1m steps): healthy for 30m, then the
 *   counters climb linearly from the healthy to the troubled values over 30m
 *   (what the operator counted between the two scrapes, spread out) while the
 *   gauges hold the troubled values, then nothing moves for 60m. Expected: no
 *   alert while healthy; escalation, stalled, call errors and reconcile errors
 *   while the counters climb; stalled and stuck (in flight, nothing finishing)
 *   once nothing moves; no leader for the standby alone and for no series.
 *   The broker alerts need an operator with broker delivery and real NATS and
 *   Redis: chart-monitoring-broker.test.ts (here they must stay silent).
 * - Every panel query of the Grafana dashboard names only metrics that those
 *   scrapes hold (histograms through _bucket/_sum/_count), and the ConfigMap
 *   ships the dashboard file unchanged.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { AlertRules, chartDir, held, metricNames, MONITORED, parseExposition, promtool, promtoolPath, renderChart, timeline, type Sample } from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { OK, startScriptedParticipant, type ScriptedParticipant } from '../support/scripted-participant.js';

// The release the rules are rendered for: their selector is job="kubetx-metrics", namespace="kubetx-system".
const { job: JOB, namespace: RELEASE_NS } = MONITORED;
/** Tested in chart-monitoring-broker.test.ts, against an operator with broker delivery (its metrics exist only there). */
const BROKER_ALERTS = ['KubetxBrokerFailedOver', 'KubetxBrokerUndeliverable'];

const admin = kubeConfig();
const api = admin.makeApiClient(k8s.CustomObjectsApi);
const base = { group: GROUP, version: VERSION, plural: PLURAL };
const getTx = (namespace: string, name: string) => api.getNamespacedCustomObject({ ...base, namespace, name }) as Promise<DistributedTransaction>;

let ns: string;
let denyNs: string;
let participant: ScriptedParticipant;
let operator: OperatorProcess | undefined;
let standby: OperatorProcess | undefined;
let alerts: AlertRules;
const denyPolicy = `kubetx-test-deny-status-${Date.now().toString(36)}`;
const denyLabel = `kubetx.io/${denyPolicy}`;

/** The three scrapes: healthy, troubled (same process), and a standby replica. */
const scrape: { healthy?: Sample[]; troubled?: Sample[]; standby?: Sample[] } = {};

function tx(namespace: string, name: string, branch: Record<string, unknown>): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout: '30s',
      retry: { initialInterval: '100ms', maxInterval: '200ms' },
      branches: [{ name: 'ledger', endpoint: { address: participant.address }, ...branch }],
    } as DistributedTransaction['spec'],
  };
}
const create = (t: DistributedTransaction) => api.createNamespacedCustomObject({ ...base, namespace: t.metadata.namespace, body: t });

/** A ValidatingAdmissionPolicy refusing every status write in the namespaces labelled `denyLabel`: the operator's reconciles there fail. */
function applyDenyStatus(): Promise<unknown> {
  const adm = admin.makeApiClient(k8s.AdmissionregistrationV1Api);
  return adm
    .createValidatingAdmissionPolicy({
      body: {
        metadata: { name: denyPolicy },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: { resourceRules: [{ apiGroups: [GROUP], apiVersions: ['*'], operations: ['UPDATE'], resources: [`${PLURAL}/status`] }] },
          validations: [{ expression: 'false', reason: 'Forbidden', message: 'status writes refused by chart-monitoring.test.ts' }],
        },
      },
    })
    .then(() =>
      adm.createValidatingAdmissionPolicyBinding({
        body: {
          metadata: { name: denyPolicy },
          spec: { policyName: denyPolicy, validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { [denyLabel]: 'true' } } } },
        },
      }),
    );
}

beforeAll(async () => {
  promtoolPath(); // fail early, naming hack/promtool.sh
  alerts = new AlertRules(mkdtempSync(join(tmpdir(), 'kubetx-promtool-')));
  ns = await freshNamespace(admin, 'mon');
  // Status writes are refused in the namespaces labelled with the policy's name: denyNs (watched)
  // and probeNs (not watched: only this file writes there, to see the policy enforced).
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const labelled = async (prefix: string) => {
    const name = `${prefix}-${Math.random().toString(16).slice(2, 10)}`;
    await core.createNamespace({ body: { metadata: { name, labels: { 'kubetx.io/test': 'true', [denyLabel]: 'true' } } } });
    return name;
  };
  denyNs = await labelled('mon-deny');
  const probeNs = await labelled('mon-probe');
  participant = await startScriptedParticipant((method, call) =>
    call.transaction.startsWith('stall-') && method === 'Confirm' ? { code: GrpcStatus.UNAVAILABLE, details: 'ledger down' } : OK,
  );
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns, denyNs], args: ['--stall-after-attempts', '3'] });

  // Healthy: one transaction committed.
  await create(tx(ns, 'ok-1', {}));
  await eventually('ok-1 Committed', async () => ((await getTx(ns, 'ok-1')).status?.phase === 'Committed' ? true : undefined), 60_000);
  scrape.healthy = parseExposition(await operator.metrics());

  // Trouble, for real.
  await applyDenyStatus();
  // A new policy is enforced after a moment: wait until a status write there is refused.
  await create(tx(probeNs, 'probe', {}));
  await eventually('the status policy enforced', async () => {
    const cur = await getTx(probeNs, 'probe');
    const refused = await api
      .replaceNamespacedCustomObjectStatus({ ...base, namespace: probeNs, name: 'probe', body: { ...cur, status: { phase: 'Pending' } } })
      .then(() => false, (err: { code?: number; body?: unknown }) => {
        if (err.code === 403) return true;
        throw new Error(`status write: ${err.code} ${String(err.body)}`);
      });
    if (!refused) throw new Error('status write accepted');
    return true;
  }, 30_000);
  // An escalation: a Service in another namespace is refused before any call (InvalidEndpoint).
  await create(tx(ns, 'esc-1', { endpoint: { service: { name: 'ledger', namespace: 'elsewhere', port: 50051 } } }));
  // A stalled second phase: Try succeeds, every Confirm fails UNAVAILABLE.
  await create(tx(ns, 'stall-1', {}));
  // Reconcile errors: every status write in denyNs is refused by the policy.
  await create(tx(denyNs, 'denied-1', {}));
  await eventually('esc-1 Failed', async () => ((await getTx(ns, 'esc-1')).status?.phase === 'Failed' ? true : undefined), 60_000);
  await eventually('stall-1 Stalled=True', async () =>
    (await getTx(ns, 'stall-1')).status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True') ? true : undefined, 60_000);
  await eventually('reconcile errors for denied-1', async () =>
    operator!.lines.filter((l) => l.msg === 'reconcile failed, will retry' && l.transaction === 'denied-1').length >= 2 ? true : undefined, 60_000);
  // Enough failed Confirms that they outweigh denied-1's repeated (successful) Trys in the error ratio.
  await eventually('20 failed Confirms', async () =>
    counterValue(await operator!.metrics(), 'kubetx_branch_calls_total', { method: 'Confirm', code: 'UNAVAILABLE' }) >= 20 ? true : undefined, 60_000);
  scrape.troubled = parseExposition(await operator.metrics());
  // KUBETX_TEST_DUMP_SCRAPES=file: the scrapes, as YAML (to see what the alerts were evaluated on).
  if (process.env.KUBETX_TEST_DUMP_SCRAPES) writeFileSync(process.env.KUBETX_TEST_DUMP_SCRAPES, stringify(scrape));
  await operator.kill();
  operator = undefined;

  // A replica that never leads: the Lease is held (and far from expiry) by a holder that is gone.
  const leaseName = 'held-by-a-gone-replica';
  await admin.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({
    namespace: ns,
    body: { metadata: { name: leaseName }, spec: { holderIdentity: 'gone-replica', leaseDurationSeconds: 3600, acquireTime: new k8s.V1MicroTime(), renewTime: new k8s.V1MicroTime() } },
  });
  standby = await startOperator({
    kubeconfig: kubeconfigPath(),
    namespaces: [ns],
    args: ['--leader-elect', '--leader-election-namespace', ns, '--leader-election-id', leaseName],
    env: { POD_NAME: 'kubetx-standby' },
  });
  await standby.waitForLog((l) => l.msg === 'waiting for leadership');
  scrape.standby = parseExposition(await standby.metrics());
  if (process.env.KUBETX_TEST_DUMP_SCRAPES) writeFileSync(process.env.KUBETX_TEST_DUMP_SCRAPES, stringify(scrape));
  await standby.kill();
  standby = undefined;
}, 240_000);

afterAll(async () => {
  await operator?.kill('SIGKILL');
  await standby?.kill('SIGKILL');
  await participant?.stop();
  const adm = admin.makeApiClient(k8s.AdmissionregistrationV1Api);
  await adm.deleteValidatingAdmissionPolicyBinding({ name: denyPolicy }).catch(() => undefined);
  await adm.deleteValidatingAdmissionPolicy({ name: denyPolicy }).catch(() => undefined);
});

// ---- series for promtool -------------------------------------------------

const STEP_MIN = 1;
const HEALTHY = 30; // samples 0..29: healthy
const RAMP = 30; // samples 30..59: counters climb, gauges troubled
const STILL = 60; // samples 60..119: nothing moves

/** promtool input_series: healthy → climbing → still, from the healthy and troubled scrapes of one process. */
const troubleTimeline = (healthy: Sample[], troubled: Sample[], instance: string) =>
  timeline([{ scrape: healthy, minutes: HEALTHY }, { scrape: troubled, minutes: RAMP, climb: true }, { scrape: troubled, minutes: STILL }], instance);

/** Renders the chart's rules, with the chart's default branchCallErrorRatio unless one is given. */
const renderRules = (branchCallErrorRatio?: number) =>
  alerts.render(branchCallErrorRatio === undefined ? {} : { branchCallErrorRatio: Number(branchCallErrorRatio.toPrecision(3)) });

/** Failed participant calls over all calls between two scrapes; a refused Try/Execute is an answer, not a failure (as the rule says). */
function branchCallErrorRatio(before: Sample[], after: Sample[]): number {
  const refusal = (l: Record<string, string>) => /^(Try|Execute)$/.test(l.method ?? '') && /^(ABORTED|FAILED_PRECONDITION|INVALID_ARGUMENT)$/.test(l.code ?? '');
  let failed = 0;
  let all = 0;
  for (const s of after.filter((x) => x.name === 'kubetx_branch_calls_total')) {
    const was = before.find((x) => x.name === s.name && x.labels.method === s.labels.method && x.labels.code === s.labels.code)?.value ?? 0;
    const d = s.value - was;
    all += d;
    if (s.labels.code !== 'OK' && !refusal(s.labels)) failed += d;
  }
  return all > 0 ? failed / all : 0;
}

const sel = { job: JOB, namespace: RELEASE_NS };

describe('PrometheusRule against the real /metrics (promtool)', () => {
  it('renders one rule per alert, each with for, severity, summary, description and a runbook link into docs/alerts.md', () => {
    expect(alerts.alertNames).toEqual([
      'KubetxTransactionEscalated', 'KubetxTransactionsStalled', 'KubetxTransactionsStuck', 'KubetxBranchCallErrors', 'KubetxNoLeader', 'KubetxReconcileErrors',
      ...BROKER_ALERTS,
    ]);
    const runbook = readFileSync(join(chartDir, '../../docs/alerts.md'), 'utf8');
    for (const r of alerts.all) {
      expect(r.for, r.alert).toMatch(/^\d+m$/);
      expect(['warning', 'critical'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
      const anchor = r.alert!.toLowerCase();
      expect(r.annotations?.runbook_url).toBe(`https://github.com/kubetx/kubetx/blob/main/docs/alerts.md#${anchor}`);
      expect(runbook, `docs/alerts.md has a section "## ${r.alert}"`).toMatch(new RegExp(`^## ${r.alert}$`, 'm'));
    }
  });

  it('promtool check rules accepts the rendered rules (expressions and annotation templates)', () => {
    const r = promtool(['check', 'rules', alerts.file(true)]);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: 8 rules found/);
  });

  it('every metric an alert names is in the scrapes (the broker alerts\': in chart-monitoring-broker.test.ts\'s)', () => {
    const have = scrapedNames();
    for (const r of alerts.all.filter((x) => !BROKER_ALERTS.includes(x.alert!))) {
      const names = metricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) expect(have.has(n), `${r.alert}: ${n} is not exported by the operator`).toBe(true);
    }
  });

  it('the troubled scrape shows what was caused: an escalation, a stalled TCC, failed Confirms, reconcile errors', () => {
    const t = scrape.troubled!;
    const v = (name: string, labels: Record<string, string> = {}) =>
      t.filter((s) => s.name === name && Object.entries(labels).every(([k, x]) => s.labels[k] === x)).reduce((a, s) => a + s.value, 0);
    expect(v('kubetx_escalations_total', { reason: 'InvalidEndpoint' })).toBeGreaterThanOrEqual(1);
    expect(v('kubetx_transactions_stalled', { mode: 'TCC' })).toBeGreaterThanOrEqual(1);
    expect(v('kubetx_branch_calls_total', { method: 'Confirm', code: 'UNAVAILABLE' })).toBeGreaterThanOrEqual(20);
    expect(v('kubetx_reconcile_total', { result: 'error' })).toBeGreaterThanOrEqual(2);
    expect(v('kubetx_reconcile_total', { result: 'error' })).toBeGreaterThan(scrape.healthy!.filter((s) => s.name === 'kubetx_reconcile_total' && s.labels.result === 'error').reduce((a, s) => a + s.value, 0));
    expect(scrape.healthy!.some((s) => s.name === 'kubetx_escalations_total' && s.value > 0)).toBe(false);
    expect(scrape.standby!.find((s) => s.name === 'kubetx_leader_election_master_status')?.value).toBe(0);
  });

  it('healthy: nothing fires; trouble: escalated, stalled, call errors, reconcile errors; still: stalled and stuck', () => {
    const stalledReasons = scrape.troubled!.filter((s) => s.name === 'kubetx_transactions_stalled' && s.value > 0).map((s) => ({ mode: s.labels.mode!, reason: s.labels.reason! }));
    expect(stalledReasons.length).toBeGreaterThan(0);
    const stalled = stalledReasons.map((r) => ({ severity: 'warning', ...sel, ...r }));
    const warning = [{ severity: 'warning', ...sel }];
    // A spec refused before any call ends Failed without counting in kubetx_transactions_total, so
    // whether anything "finished" while the counters climbed is read from the scrapes, not assumed.
    const finished = (x: Sample[]) => x.filter((m) => m.name === 'kubetx_transactions_total').reduce((a, m) => a + m.value, 0);
    const stuckWhileClimbing = finished(scrape.troubled!) === finished(scrape.healthy!);
    // The error ratio the trouble really had (failed calls over all calls between the two scrapes, refusals
    // of Try/Execute not counted): denied-1 repeats its Trys as long as its status writes are refused, so the
    // ratio depends on timing. The rule's threshold is a chart value; render it at half the real ratio, so the
    // alert must fire, and at twice it, so it must not: the expression is tested, not the machine's speed.
    const ratio = branchCallErrorRatio(scrape.healthy!, scrape.troubled!);
    expect(ratio).toBeGreaterThan(0);
    renderRules(Math.min(1, ratio * 2));
    const quiet = alerts.test([
      {
        name: 'the same trouble under a threshold above its error ratio',
        interval: `${STEP_MIN}m`,
        input_series: troubleTimeline(scrape.healthy!, scrape.troubled!, 'kubetx-0'),
        alert_rule_test: [{ eval_time: '50m', alertname: 'KubetxBranchCallErrors', exp_alerts: [] }],
      },
    ]);
    expect(quiet.status, quiet.out).toBe(0);
    renderRules(ratio / 2);
    const r = alerts.test([
      {
        name: 'one operator: healthy, then trouble, then nothing moves',
        interval: `${STEP_MIN}m`,
        input_series: troubleTimeline(scrape.healthy!, scrape.troubled!, 'kubetx-0'),
        alert_rule_test: [
          ...alerts.expectAt(10, {}),
          ...alerts.expectAt(29, {}),
          ...alerts.expectAt(50, {
            KubetxTransactionEscalated: [{ severity: 'warning', ...sel, reason: 'InvalidEndpoint' }],
            KubetxTransactionsStalled: stalled,
            KubetxBranchCallErrors: warning,
            KubetxReconcileErrors: warning,
            ...(stuckWhileClimbing ? { KubetxTransactionsStuck: warning } : {}),
          }),
          ...alerts.expectAt(115, { KubetxTransactionsStalled: stalled, KubetxTransactionsStuck: warning }),
        ],
      },
    ]);
    renderRules();
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it('no leader: a standby alone fires KubetxNoLeader after 5m, and so does no series at all; a leader does not', () => {
    const r = alerts.test([
      {
        name: 'a standby replica, the Lease held by a replica that is gone',
        interval: '1m',
        input_series: held(scrape.standby!, 'kubetx-1', 20),
        alert_rule_test: [...alerts.expectAt(3, {}), ...alerts.expectAt(10, { KubetxNoLeader: [{ severity: 'critical', ...sel }] })],
      },
      {
        name: 'the healthy leader and the standby',
        interval: '1m',
        input_series: [...held(scrape.healthy!, 'kubetx-0', 20), ...held(scrape.standby!, 'kubetx-1', 20)],
        alert_rule_test: alerts.expectAt(15, {}),
      },
      {
        name: 'no operator scraped',
        interval: '1m',
        input_series: [{ series: `up{job="${JOB}", namespace="${RELEASE_NS}", instance="kubetx-0"}`, values: Array(20).fill('0').join(' ') }],
        alert_rule_test: [...alerts.expectAt(10, { KubetxNoLeader: [{ severity: 'critical', ...sel }] })],
      },
    ]);
    expect(r.status, r.out).toBe(0);
  });
});

/** Metric names in the three scrapes, with the base names of histograms and summaries. */
function scrapedNames(): Set<string> {
  const names = new Set<string>();
  for (const s of [...scrape.healthy!, ...scrape.troubled!, ...scrape.standby!]) names.add(s.name);
  return names;
}

describe('Grafana dashboard against the real /metrics', () => {
  interface Panel {
    title: string;
    type: string;
    targets?: Array<{ expr: string }>;
    panels?: Panel[];
  }
  const file = join(chartDir, 'dashboards/kubetx.json');
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: Panel[]; uid: string; title: string; templating: { list: Array<{ name: string; query?: { query: string } | string }> } };
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');

  it('every panel query names only metrics the operator exports', () => {
    expect(panels.length).toBeGreaterThanOrEqual(20);
    const have = scrapedNames();
    const used = new Set<string>();
    for (const p of panels) {
      expect(p.targets?.length, `panel "${p.title}" has a query`).toBeGreaterThan(0);
      for (const t of p.targets!) {
        const names = metricNames(t.expr);
        expect(names.length, `panel "${p.title}": ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) {
          used.add(n);
          expect(have.has(n), `panel "${p.title}": ${n} is not in the operator's /metrics`).toBe(true);
        }
      }
    }
    // The variables' queries too.
    for (const v of dashboard.templating.list) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      if (!q || v.name === 'datasource') continue;
      const inner = /label_values\((.*),\s*\w+\)$/.exec(q)?.[1] ?? q;
      for (const n of metricNames(inner)) expect(have.has(n), `variable ${v.name}: ${n}`).toBe(true);
    }
    expect(used.size).toBeGreaterThanOrEqual(15);
  });

  it('ships as a ConfigMap with the sidecar label, holding the file unchanged; off by default', () => {
    expect(renderChart({ release: 'kubetx', namespace: RELEASE_NS }).all('ConfigMap')).toEqual([]);
    const r = renderChart({ release: 'kubetx', namespace: RELEASE_NS, values: { grafanaDashboard: { enabled: true, namespace: 'monitoring', annotations: { grafana_folder: 'kubetx' } } } });
    const cm = r.one<{ data: Record<string, string>; metadata: { annotations?: Record<string, string> } }>('ConfigMap', 'kubetx-dashboard');
    expect(cm.metadata.namespace).toBe('monitoring');
    expect(cm.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    expect(cm.metadata.annotations).toEqual({ grafana_folder: 'kubetx' });
    expect(JSON.parse(cm.data['kubetx.json']!)).toEqual(dashboard);
    expect(cm.data['kubetx.json']).toBe(readFileSync(file, 'utf8').trim());
  });
});
