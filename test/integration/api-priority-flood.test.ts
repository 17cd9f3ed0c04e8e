/**
 * The chart's API Priority and Fairness option under a real flood (issue 20,
 * item 3; docs/scaling.md, "Fair tenants"): a tenant's client floods the API
 * server with creates while the operator, as the chart's ServiceAccount,
 * keeps committing another namespace's transactions.
 *
 * On a control plane of its own with API Priority and Fairness on and a small
 * server concurrency (--max-requests-inflight=20, --max-mutating-requests-inflight=10:
 * 30 seats, shared by the priority levels in proportion to their
 * nominalConcurrencyShares), so that a flood from one client saturates the
 * server on a 2-core machine:
 *
 * - The chart, rendered with apiPriorityAndFairness.enabled and watchNamespaces
 *   set to the victim namespace: its ServiceAccount, Roles, tenant
 *   ClusterRoles, FlowSchema and PriorityLevelConfiguration, applied
 *   server-side. The operator runs with the chart's arguments and a
 *   TokenRequest token of that ServiceAccount, so its requests are classified
 *   as in a cluster. (The admin client is system:masters, which APF exempts:
 *   neither the operator nor the tenant uses it.)
 * - The tenant: a ServiceAccount of its own bound to the chart's
 *   `<fullname>-edit` ClusterRole in its namespace. Its client keeps
 *   FLOOD_CONCURRENCY (600) creates in flight for FLOOD_MS (25 s), more than
 *   one flow can queue at workload-low (a hand of 6 queues of 50), so it gets
 *   429s; after one a slot waits 100 ms and sends again (client-go would wait
 *   for Retry-After; a flooding client does not). KUBETX_APF_TENANT_ACCOUNTS
 *   spreads the flood over more ServiceAccounts (more flows: more queues
 *   taken, fewer 429s, the first assertion then fails by design). The creates are dry runs (dryRun=All): each goes through
 *   authentication, authorization, APF, admission and the CRD's schema and CEL
 *   validation like a real create, but stores nothing, so the operator has
 *   nothing to work through (it does not watch the tenant's namespace anyway),
 *   etcd does not grow, and both runs below meet the same server.
 * - The victim: every second the admin client (exempt, so not part of the
 *   tenant's flow) creates a 2-branch TCC transaction in the watched
 *   namespace, against an instant participant. Latency is from just before the
 *   create to when the test's own watch (admin, exempt) sees Committed.
 *
 * With the chart's FlowSchema the test asserts: the tenant was throttled (it
 * got 429s, and the API server counts rejected requests at its priority level,
 * workload-low); the operator's requests were dispatched under the chart's
 * FlowSchema and priority level only, none rejected there, they waited less
 * in its queues than the tenant's did in workload-low's, and the operator
 * itself saw no 429; every victim committed within VICTIM_BOUND_MS (10 s).
 *
 * The same flood once more without the FlowSchema (deleted, as an uninstall
 * of the option would): the operator's requests fall back to the
 * service-accounts FlowSchema at workload-low, the tenant's level, which the
 * test checks before flooding. Fair queuing within workload-low still gives
 * the operator's flow (distinguished by user) its turn, so how much worse the
 * victims fare depends on the machine: printed, not asserted, beyond every
 * victim committing in the end.
 *
 * One summary line gives both runs' figures.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import {
  applyServerSide,
  loadKubeconfig,
  operatorArgs,
  parseExposition,
  renderChart,
  serviceAccountKubeconfig,
  type K8sObject,
  type Rendered,
  type Sample,
} from '../support/chart.js';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { installCrds } from '../support/crds.js';
import { eventually, freshNamespace } from '../support/env.js';
import { counterValue, startOperator, type OperatorProcess } from '../support/operator.js';
import { OK, startScriptedParticipant, type ScriptedParticipant } from '../support/scripted-participant.js';
import { TransactionWatch } from '../support/tx-watch.js';

const FLOOD_MS = Number(process.env.KUBETX_APF_FLOOD_MS ?? 25_000);
const FLOOD_CONCURRENCY = Number(process.env.KUBETX_APF_FLOOD_CONCURRENCY ?? 600);
/** The tenant's ServiceAccounts (each its own flow under the ByUser distinguisher); the flood's slots are spread over them. */
const TENANT_ACCOUNTS = Number(process.env.KUBETX_APF_TENANT_ACCOUNTS ?? 1);
const VICTIM_EVERY_MS = 1_000;
/** Each victim transaction commits within this long of its create, with the chart's FlowSchema. */
const VICTIM_BOUND_MS = 10_000;
/** Without it, every victim still commits within this long after the flood ends. */
const DRAIN_MS = 60_000;

const suffix = () => randomBytes(3).toString('hex');
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bare HTTPS client with the kubeconfig's credentials and a keep-alive agent of `maxSockets` connections. */
interface RawClient {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }>;
  close(): void;
}

async function rawClient(kc: k8s.KubeConfig, maxSockets: number): Promise<RawClient> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const server = new URL(kc.getCurrentCluster()!.server);
  const agent = new https.Agent({ keepAlive: true, maxSockets, ca: opts.ca, cert: opts.cert, key: opts.key });
  const headers = { ...(opts.headers as Record<string, string> | undefined) };
  return {
    call: (method, path, body) =>
      new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : JSON.stringify(body);
        const req = https.request(
          { host: server.hostname, port: server.port, method, path, agent, headers: { ...headers, ...(data ? { 'content-type': 'application/json' } : {}) } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(data);
      }),
    close: () => agent.destroy(),
  };
}

/** The API server's apiserver_flowcontrol_* samples (/metrics, read by the exempt admin). */
async function flowcontrolMetrics(admin: RawClient): Promise<Sample[]> {
  const { status, text } = await admin.call('GET', '/metrics');
  if (status !== 200) throw new Error(`GET /metrics: ${status}`);
  return parseExposition(text.split('\n').filter((l) => l.includes('apiserver_flowcontrol_')).join('\n'));
}

const total = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);

/** What a run changed of a counter, over the samples matching `labels`. */
const delta = (before: Sample[], after: Sample[], name: string, labels: Record<string, string>) => total(after, name, labels) - total(before, name, labels);

/** The priority levels requests of a FlowSchema were dispatched to, between two snapshots. */
function dispatchedLevels(before: Sample[], after: Sample[], schema: string): string[] {
  const levels = new Set(after.filter((s) => s.name === 'apiserver_flowcontrol_dispatched_requests_total' && s.labels.flow_schema === schema).map((s) => s.labels.priority_level!));
  return [...levels].filter((l) => delta(before, after, 'apiserver_flowcontrol_dispatched_requests_total', { flow_schema: schema, priority_level: l }) > 0).sort();
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

interface RunResult {
  label: string;
  tenantSent: number;
  tenantCodes: Record<string, number>;
  victims: number;
  latenciesMs: number[];
  phases: Record<string, string>;
  /** Flow-control figures of the run, per (flow schema, priority level). */
  flow: Record<string, { dispatched: number; rejected: number; meanWaitMs: number }>;
  operator429: number;
  operatorRequests: number;
  /** The operator's own mean API request latency (rest_client_request_duration_seconds; watches add none). */
  operatorMeanMs: number;
  /** The API server's flow-control samples before and after the run. */
  before: Sample[];
  after: Sample[];
}

describe('chart apiPriorityAndFairness: a tenant floods the API server while the operator keeps committing', () => {
  let cp: ControlPlane | undefined;
  let admin: k8s.KubeConfig;
  let adminRaw: RawClient;
  let tenantRaw: RawClient[] = [];
  let operator: OperatorProcess | undefined;
  let participant: ScriptedParticipant | undefined;
  let watch: TransactionWatch | undefined;
  let rendered: Rendered;
  let fsName: string;
  let victimNs: string;
  let tenantNs: string;
  const seen = new Map<string, { phase: string; at: number }>();
  const results: RunResult[] = [];
  let flowObjects: K8sObject[];

  beforeAll(async () => {
    cp = await startControlPlane({ apiServerArgs: ['--enable-priority-and-fairness=true', '--max-requests-inflight=20', '--max-mutating-requests-inflight=10'] });
    await installCrds(cp.kubeconfigPath);
    admin = loadKubeconfig(cp.kubeconfigPath);
    adminRaw = await rawClient(admin, 4);
    const releaseNs = await freshNamespace(admin, 'kubetx-apf');
    victimNs = await freshNamespace(admin, 'victim');
    tenantNs = await freshNamespace(admin, 'tenant');

    const release = `kf-${suffix()}`;
    fsName = `${release}-kubetx`;
    rendered = renderChart({
      release,
      namespace: releaseNs,
      values: {
        watchNamespaces: [victimNs],
        apiPriorityAndFairness: { enabled: true },
        endpointPolicy: { allowRawAddresses: true, allowAddressCidrs: ['127.0.0.0/8'] },
        // Cluster-wide admission policies are not what this test is about (status-guard, finalizer-policy tests).
        statusGuard: { enabled: false },
        finalizerPolicy: { enabled: false },
        crds: { enabled: false },
      },
    });
    flowObjects = rendered.objects.filter((o) => o.kind === 'FlowSchema' || o.kind === 'PriorityLevelConfiguration');
    expect(flowObjects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([`FlowSchema/${fsName}`, `PriorityLevelConfiguration/${fsName}`]);
    const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'Role', 'RoleBinding']);
    applyServerSide(cp.kubeconfigPath, rendered.objects.filter((o) => rbacKinds.has(o.kind)).map((o) => stringify(o)).join('---\n'));

    // The tenant: ServiceAccounts of its own, with the chart's edit role in its namespace only.
    const core = admin.makeApiClient(k8s.CoreV1Api);
    const accounts = Array.from({ length: TENANT_ACCOUNTS }, (_, i) => `tenant-${i}`);
    for (const name of accounts) await core.createNamespacedServiceAccount({ namespace: tenantNs, body: { metadata: { name } } });
    await admin.makeApiClient(k8s.RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace: tenantNs,
      body: {
        metadata: { name: 'tenant-edit' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${release}-kubetx-edit` },
        subjects: accounts.map((name) => ({ kind: 'ServiceAccount', name, namespace: tenantNs })),
      },
    });
    for (const name of accounts) {
      tenantRaw.push(await rawClient(loadKubeconfig((await serviceAccountKubeconfig(admin, tenantNs, name)).path), Math.ceil(FLOOD_CONCURRENCY / TENANT_ACCOUNTS)));
    }

    participant = await startScriptedParticipant(() => OK, ['tcc']);
    const sa = await serviceAccountKubeconfig(admin, releaseNs, rendered.one('ServiceAccount').metadata.name);
    const pod = `${rendered.one('Deployment').metadata.name}-7d9f-${suffix()}`;
    operator = await startOperator({ kubeconfig: sa.path, allowRawAddresses: false, args: operatorArgs(rendered), env: { POD_NAME: pod, POD_NAMESPACE: releaseNs } });
    await operator.waitForLog((l) => l.msg === 'controller started', 60_000);

    watch = new TransactionWatch(admin, victimNs, (o) => {
      const phase = o.status?.phase;
      if (phase && !seen.get(o.metadata.name)?.phase.match(/^(Committed|Aborted|Failed)$/)) seen.set(o.metadata.name, { phase, at: Date.now() });
    });
    await watch.start();
  }, 180_000);

  afterAll(async () => {
    watch?.stop();
    await operator?.kill();
    await participant?.stop();
    for (const c of tenantRaw) c.close();
    if (cp) {
      // Cluster-scoped objects go with the control plane; delete them anyway, as an uninstall would.
      const fc = admin.makeApiClient(k8s.FlowcontrolApiserverV1Api);
      await fc.deleteFlowSchema({ name: fsName }).catch(() => undefined);
      await fc.deletePriorityLevelConfiguration({ name: fsName }).catch(() => undefined);
      const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
      for (const o of rendered?.all('ClusterRole') ?? []) await rbac.deleteClusterRole({ name: o.metadata.name }).catch(() => undefined);
    }
    adminRaw?.close();
    await cp?.stop();
  });

  const txs = () => admin.makeApiClient(k8s.CustomObjectsApi);

  function victim(name: string): DistributedTransaction {
    return {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DistributedTransaction',
      metadata: { name, namespace: victimNs } as DistributedTransaction['metadata'],
      spec: { mode: 'TCC', timeout: '60s', branches: ['debit', 'credit'].map((b) => ({ name: b, endpoint: { address: participant!.address } })) },
    };
  }

  async function createVictim(name: string): Promise<number> {
    const at = Date.now();
    await txs().createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: victimNs, body: victim(name) });
    return at;
  }

  /** Creates a transaction and waits for it to commit: the operator is working, under whatever schema now classifies it. */
  async function warmUp(label: string): Promise<void> {
    const name = `warm-${label}-${suffix()}`;
    await createVictim(name);
    await eventually(`${name} committed`, async () => (seen.get(name)?.phase === 'Committed' ? true : undefined), 30_000);
  }

  /** The tenant's flood: FLOOD_CONCURRENCY dry-run creates in flight until `stopAt`. */
  async function flood(stopAt: number): Promise<{ sent: number; codes: Record<string, number> }> {
    const codes: Record<string, number> = {};
    let sent = 0;
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${tenantNs}/${PLURAL}?dryRun=All`;
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DistributedTransaction',
      metadata: { generateName: 'flood-' },
      spec: { mode: 'TCC', timeout: '30s', branches: [{ name: 'a', endpoint: { address: '127.0.0.1:1' } }] },
    };
    const slot = async (client: RawClient) => {
      while (Date.now() < stopAt) {
        sent++;
        let code: string;
        try {
          code = String((await client.call('POST', path, body)).status);
        } catch {
          code = 'error';
        }
        codes[code] = (codes[code] ?? 0) + 1;
        if (code === '429' || code === 'error') await delay(100);
      }
    };
    await Promise.all(Array.from({ length: FLOOD_CONCURRENCY }, (_, i) => slot(tenantRaw[i % tenantRaw.length]!)));
    return { sent, codes };
  }

  async function run(label: string, schemas: Array<[string, string]>): Promise<RunResult> {
    const before = await flowcontrolMetrics(adminRaw);
    const opBefore = await operator!.metrics();
    const stopAt = Date.now() + FLOOD_MS;
    const created = new Map<string, number>();
    const victims = (async () => {
      for (let i = 0; Date.now() < stopAt; i++) {
        const next = Date.now() + VICTIM_EVERY_MS;
        const name = `${label}-${i}`;
        created.set(name, await createVictim(name));
        await delay(Math.max(0, next - Date.now()));
      }
    })();
    const [tenant] = await Promise.all([flood(stopAt), victims]);
    await eventually(`every ${label} victim finished`, async () => ([...created.keys()].every((n) => /^(Committed|Aborted|Failed)$/.test(seen.get(n)?.phase ?? '')) ? true : undefined), DRAIN_MS);
    const after = await flowcontrolMetrics(adminRaw);
    const opAfter = await operator!.metrics();

    const flow: RunResult['flow'] = {};
    for (const [schema, level] of schemas) {
      const labels = { flow_schema: schema, priority_level: level };
      const waitSum = delta(before, after, 'apiserver_flowcontrol_request_wait_duration_seconds_sum', labels);
      const waitCount = delta(before, after, 'apiserver_flowcontrol_request_wait_duration_seconds_count', labels);
      flow[`${schema}/${level}`] = {
        dispatched: delta(before, after, 'apiserver_flowcontrol_dispatched_requests_total', labels),
        rejected: delta(before, after, 'apiserver_flowcontrol_rejected_requests_total', labels),
        meanWaitMs: waitCount ? Math.round((waitSum / waitCount) * 1000) : 0,
      };
    }
    const latenciesMs = [...created].map(([n, at]) => seen.get(n)!.at - at).sort((a, b) => a - b);
    const result: RunResult = {
      label,
      tenantSent: tenant.sent,
      tenantCodes: tenant.codes,
      victims: created.size,
      latenciesMs,
      phases: Object.fromEntries([...created.keys()].map((n) => [n, seen.get(n)!.phase])),
      flow,
      operator429: counterValue(opAfter, 'rest_client_requests_total', { code: '429' }) - counterValue(opBefore, 'rest_client_requests_total', { code: '429' }),
      operatorRequests: counterValue(opAfter, 'rest_client_requests_total') - counterValue(opBefore, 'rest_client_requests_total'),
      operatorMeanMs: Math.round(
        ((counterValue(opAfter, 'rest_client_request_duration_seconds_sum') - counterValue(opBefore, 'rest_client_request_duration_seconds_sum')) /
          Math.max(1, counterValue(opAfter, 'rest_client_request_duration_seconds_count') - counterValue(opBefore, 'rest_client_request_duration_seconds_count'))) *
          1000,
      ),
      before,
      after,
    };
    results.push(result);
    console.log(`[apf-flood] ${describeRun(result)}; flow control ${JSON.stringify(flow)}; tenant codes ${JSON.stringify(tenant.codes)}`);
    return result;
  }

  const describeRun = (r: RunResult) =>
    `${r.label}: tenant sent ${r.tenantSent} (${r.tenantCodes['429'] ?? 0} × 429), operator ${r.operatorRequests} requests (${r.operator429} × 429, mean ${r.operatorMeanMs} ms), ` +
    `${r.victims} victims p50 ${quantile(r.latenciesMs, 0.5)} ms max ${r.latenciesMs.at(-1)} ms`;

  it(`with the chart's FlowSchema: the tenant is throttled, the operator's requests are not, every victim commits within ${VICTIM_BOUND_MS / 1000} s`, async () => {
    applyServerSide(cp!.kubeconfigPath, flowObjects.map((o) => stringify(o)).join('---\n'));
    const fc = admin.makeApiClient(k8s.FlowcontrolApiserverV1Api);
    await eventually('FlowSchema condition Dangling=False', async () => {
      const fs = await fc.readFlowSchema({ name: fsName });
      return fs.status?.conditions?.some((c) => c.type === 'Dangling' && c.status === 'False') ? true : undefined;
    }, 30_000);
    // The new schema is in force for the operator's requests before the flood starts.
    await eventually(`the operator's requests dispatched under flow_schema="${fsName}"`, async () => {
      const before = await flowcontrolMetrics(adminRaw);
      await warmUp('with');
      const after = await flowcontrolMetrics(adminRaw);
      return delta(before, after, 'apiserver_flowcontrol_dispatched_requests_total', { flow_schema: fsName }) > 0 ? true : undefined;
    }, 60_000);

    const r = await run('with', [[fsName, fsName], ['service-accounts', 'workload-low']]);

    // The tenant was throttled: 429s in its client, rejections at its priority level on the server.
    expect(r.tenantCodes['429'] ?? 0, JSON.stringify(r.tenantCodes)).toBeGreaterThan(0);
    expect(r.tenantCodes['201'] ?? 0, JSON.stringify(r.tenantCodes)).toBeGreaterThan(0);
    expect(r.flow['service-accounts/workload-low']!.rejected).toBeGreaterThan(0);
    // ... and its requests waited in the queues of workload-low longer than the operator's did in its own level's.
    expect(r.flow[`${fsName}/${fsName}`]!.meanWaitMs).toBeLessThan(r.flow['service-accounts/workload-low']!.meanWaitMs);
    // The operator's requests went to its own priority level, none rejected; the operator saw no 429.
    expect(dispatchedLevels(r.before, r.after, fsName)).toEqual([fsName]);
    expect(r.flow[`${fsName}/${fsName}`]!.dispatched).toBeGreaterThan(0);
    expect(delta(r.before, r.after, 'apiserver_flowcontrol_rejected_requests_total', { flow_schema: fsName })).toBe(0);
    expect(r.operator429).toBe(0);
    // Every victim committed, each within the bound.
    expect(Object.values(r.phases).every((p) => p === 'Committed'), JSON.stringify(r.phases)).toBe(true);
    expect(r.victims).toBeGreaterThanOrEqual(Math.floor(FLOOD_MS / VICTIM_EVERY_MS / 2));
    expect(r.latenciesMs.at(-1)!).toBeLessThanOrEqual(VICTIM_BOUND_MS);
  }, 150_000);

  it('without it (for comparison): the operator shares workload-low with the tenant; every victim still commits in the end', async () => {
    const fc = admin.makeApiClient(k8s.FlowcontrolApiserverV1Api);
    await fc.deleteFlowSchema({ name: fsName }).catch((err: { code?: number }) => {
      if (err.code !== 404) throw err;
    });
    await fc.deletePriorityLevelConfiguration({ name: fsName }).catch((err: { code?: number }) => {
      if (err.code !== 404) throw err;
    });
    // With the tenant idle, service-account requests under service-accounts are the operator's.
    await eventually('the operator\'s requests dispatched under flow_schema="service-accounts"', async () => {
      const before = await flowcontrolMetrics(adminRaw);
      await warmUp('without');
      const after = await flowcontrolMetrics(adminRaw);
      return delta(before, after, 'apiserver_flowcontrol_dispatched_requests_total', { flow_schema: 'service-accounts', priority_level: 'workload-low' }) > 0 &&
        delta(before, after, 'apiserver_flowcontrol_dispatched_requests_total', { flow_schema: fsName }) === 0
        ? true
        : undefined;
    }, 60_000);

    const r = await run('without', [['service-accounts', 'workload-low']]);
    expect(r.tenantCodes['429'] ?? 0, JSON.stringify(r.tenantCodes)).toBeGreaterThan(0);
    expect(Object.values(r.phases).every((p) => p === 'Committed'), JSON.stringify(r.phases)).toBe(true);

    const [w, wo] = [results.find((x) => x.label === 'with'), r];
    console.log(`[apf-flood] summary: ${w ? describeRun(w) : 'with: (did not run)'} | ${describeRun(wo)}`);
  }, 150_000);
});
