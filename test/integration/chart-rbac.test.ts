/**
 * The Helm chart (charts/kubetx): lint, render, schema, and — on the real
 * control plane — that its RBAC is exactly enough: the operator process,
 * authenticated as the chart's ServiceAccount with a TokenRequest token and
 * started with the chart's own arguments, commits a payment; and the API
 * server's view of that ServiceAccount's permissions holds nothing beyond the
 * least-privilege list in test/support/rbac.ts.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseFlags } from '../../src/cmd/flags.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import {
  applyServerSide,
  chartDir,
  helm,
  kubeVersion,
  loadKubeconfig,
  operatorArgs,
  operatorContainer,
  renderChart,
  serviceAccountKubeconfig,
  templateChart,
  type K8sObject,
  type Rendered,
  DEFAULT_OBJECTS,
} from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, terminal, transactions, type PaymentServices } from '../support/payment.js';
import { refusal } from '../support/refusal.js';
import { difference, expectedOperatorRules, leaderElectionRules, permissions, type Rule } from '../support/rbac.js';
import { repoRoot } from '../support/testenv-paths.js';

const suffix = () => randomBytes(3).toString('hex');

describe('chart: lint, render, schema', () => {
  it('ships byte-identical copies of crds/ in files/crds/ (fix: hack/sync-chart-crds.sh), and no Helm crds/ directory', () => {
    const src = readdirSync(join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml')).sort();
    const copy = readdirSync(join(chartDir, 'files/crds')).filter((f) => f.endsWith('.yaml')).sort();
    expect(copy, 'chart files/crds/ files (run hack/sync-chart-crds.sh)').toEqual(src);
    for (const f of src) {
      const same = readFileSync(join(repoRoot, 'crds', f)).equals(readFileSync(join(chartDir, 'files/crds', f)));
      expect(same, `charts/kubetx/files/crds/${f} differs from crds/${f}: run hack/sync-chart-crds.sh`).toBe(true);
    }
    // Helm would install a crds/ directory itself, once, and never upgrade it; the template would then clash with it.
    expect(existsSync(join(chartDir, 'crds')), 'charts/kubetx/crds/ must not exist (the CRDs are templates)').toBe(false);
    const check = spawnSync('bash', [join(repoRoot, 'hack/sync-chart-crds.sh'), '--check'], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });

  it('renders each CRD of crds/ unchanged but for the chart labels and helm.sh/resource-policy: keep (the spec guard\'s rules: spec-guard.test.ts); crds.enabled / crds.keep turn them off', () => {
    const files = readdirSync(join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml'));
    const rendered = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { specGuard: { enabled: false } } }).all<{ spec: unknown }>('CustomResourceDefinition');
    expect(rendered).toHaveLength(files.length);
    for (const f of files) {
      const want = parse(readFileSync(join(repoRoot, 'crds', f), 'utf8')) as K8sObject & { spec: unknown };
      const got = rendered.find((o) => o.metadata.name === want.metadata.name);
      expect(got, `${f} rendered`).toBeDefined();
      expect(got!.spec, `${f}: the rendered spec is the file's`).toEqual(want.spec);
      const { labels, annotations, ...rest } = got!.metadata as K8sObject['metadata'] & { annotations?: Record<string, string> };
      expect(rest).toEqual(want.metadata);
      expect(annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      expect(labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'Helm', 'app.kubernetes.io/part-of': 'kubetx', 'app.kubernetes.io/instance': 'kubetx' });
    }
    expect(renderChart({ release: 'kubetx', namespace: 'x', values: { crds: { enabled: false } } }).all('CustomResourceDefinition')).toEqual([]);
    const notKept = renderChart({ release: 'kubetx', namespace: 'x', values: { crds: { keep: false, annotations: { 'argocd.argoproj.io/sync-options': 'ServerSideApply=true' } } } }).one('CustomResourceDefinition');
    expect((notKept.metadata as { annotations?: Record<string, string> }).annotations).toEqual({ 'argocd.argoproj.io/sync-options': 'ServerSideApply=true' });
  });

  it('helm template works without --kube-version: the testenv helm defaults to the control plane\'s Kubernetes', () => {
    const r = helm(['template', 'kubetx', chartDir]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kind: MutatingAdmissionPolicy\b/); // rendered for Kubernetes >= 1.36 only
  });

  it('Chart.yaml: icon, kubeVersion and Artifact Hub annotations that agree with the chart', () => {
    const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { icon: string; kubeVersion: string; appVersion: string; annotations: Record<string, string> };
    expect(chart.kubeVersion).toBe('>=1.30.0-0');
    expect(chart.icon).toMatch(/^https:\/\/raw\.githubusercontent\.com\/kubetx\/kubetx\/main\/charts\/kubetx\/icon\.svg$/);
    expect(readFileSync(join(chartDir, 'icon.svg'), 'utf8')).toMatch(/^<svg /);
    const a = chart.annotations;
    expect(a['artifacthub.io/license']).toBe(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).license);
    expect(a['artifacthub.io/prerelease']).toBe('true');
    expect((parse(a['artifacthub.io/images']!) as Array<{ image: string }>).map((i) => i.image)).toEqual([`ghcr.io/kubetx/kubetx:${chart.appVersion}`]);
    for (const key of ['artifacthub.io/links', 'artifacthub.io/changes']) {
      const list = parse(a[key]!) as unknown[];
      expect(Array.isArray(list) && list.length > 0, key).toBe(true);
    }
    const crds = parse(a['artifacthub.io/crds']!) as Array<{ kind: string; version: string; name: string }>;
    const rendered = renderChart({ release: 'kubetx', namespace: 'x' }).all<{ spec: { names: { kind: string }; versions: Array<{ name: string; served: boolean }> } }>('CustomResourceDefinition');
    expect(crds.map((c) => `${c.name} ${c.kind} ${c.version}`)).toEqual(rendered.map((c) => `${c.metadata.name} ${c.spec.names.kind} ${c.spec.versions.find((v) => v.served)!.name}`));
  });

  it('helm lint --strict passes with default values and with watchNamespaces', () => {
    for (const extra of [[], ['--set', 'watchNamespaces={shop,billing}', '--set', 'tls.readSecrets=true']]) {
      const r = helm(['lint', '--strict', chartDir, '--kube-version', kubeVersion, ...extra]);
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('default values: ServiceAccount, ClusterRole(+Binding), Lease Role(+Binding), Deployment, metrics Service — hardened and wired to the flags', () => {
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system' });
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(DEFAULT_OBJECTS);
    const d = r.one<{ spec: k8s.V1DeploymentSpec }>('Deployment');
    expect(d.spec.replicas).toBe(2);
    const pod = d.spec.template.spec!;
    expect(pod.serviceAccountName).toBe('kubetx');
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    const c = operatorContainer(r);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.ports).toEqual(expect.arrayContaining([
      expect.objectContaining({ name: 'metrics', containerPort: 8080 }),
      expect.objectContaining({ name: 'health', containerPort: 8081 }),
    ]));
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'health' });
    expect(c.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources?.limits).toMatchObject({ memory: expect.any(String) });
    expect(c.env).toEqual(expect.arrayContaining([
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=320' },
    ]));
    // The arguments mean what the values say, read by the operator's own flag parser.
    const f = parseFlags(c.args ?? [], { POD_NAME: 'kubetx-abc', POD_NAMESPACE: 'kubetx-system' });
    expect(f).toMatchObject({
      workers: 16,
      namespaces: [],
      metricsBindAddress: ':8080',
      healthProbeBindAddress: ':8081',
      allowCrossNamespace: false,
      allowRawAddresses: false,
      clusterDomain: 'cluster.local',
      defaultTtlMs: undefined,
      defaultCallTimeoutMs: 5000,
      maxCallTimeoutMs: 60_000,
      livenessStallMs: 120_000,
      logLevel: 'info',
      leaderElect: true,
      leaderElectionNamespace: 'kubetx-system',
      leaderElectionId: 'kubetx-leader',
      leaseMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2000,
      identity: 'kubetx-abc',
      maxCallsPerEndpoint: 32,
      maxForwardTransactions: 0,
      messageCheckTimeoutAction: 'Rollback',
    });
    const svc = r.one<{ spec: k8s.V1ServiceSpec }>('Service');
    expect(svc.spec.ports).toEqual([expect.objectContaining({ name: 'metrics', port: 8080, targetPort: 'metrics' })]);
    expect(d.spec.template.metadata?.labels).toMatchObject(svc.spec.selector!);
  });

  it('every operator flag has a value: non-default values reach the flags', () => {
    const r = renderChart({
      release: 'tx',
      namespace: 'ops',
      values: {
        workers: 4,
        watchNamespaces: ['shop', 'billing'],
        endpointPolicy: { allowCrossNamespace: true, allowRawAddresses: true },
        defaultTtlAfterFinished: '168h',
        defaultCallTimeout: '2s',
        maxCallTimeout: '30s',
        livenessStallTimeout: '90s',
        logLevel: 'debug',
        clusterDomain: 'corp.example',
        flowControl: { maxCallsPerEndpoint: 8, maxForwardTransactions: 100 },
        message: { checkTimeoutAction: 'Fail' },
        stalled: { afterAttempts: 7, after: '3m' },
        events: 'all',
        leaderElection: { leaseName: 'tx-lease', leaseDuration: '30s', renewDeadline: '20s', retryPeriod: '4s' },
      },
    });
    const f = parseFlags(operatorContainer(r).args ?? [], { POD_NAME: 'p', POD_NAMESPACE: 'ops' });
    expect(f).toMatchObject({
      workers: 4,
      namespaces: ['shop', 'billing'],
      allowCrossNamespace: true,
      allowRawAddresses: true,
      clusterDomain: 'corp.example',
      defaultTtlMs: 168 * 3_600_000,
      defaultCallTimeoutMs: 2000,
      maxCallTimeoutMs: 30_000,
      livenessStallMs: 90_000,
      logLevel: 'debug',
      leaderElect: true,
      leaderElectionNamespace: 'ops',
      leaderElectionId: 'tx-lease',
      leaseMs: 30_000,
      renewDeadlineMs: 20_000,
      retryPeriodMs: 4000,
      maxCallsPerEndpoint: 8,
      maxForwardTransactions: 100,
      messageCheckTimeoutAction: 'Fail',
      stallAfterAttempts: 7,
      stallAfterMs: 180_000,
      events: 'all',
    });
    const off = renderChart({ release: 'tx', namespace: 'ops', values: { replicaCount: 1, leaderElection: { enabled: false } } });
    expect(parseFlags(operatorContainer(off).args ?? [], {}).leaderElect).toBe(false);
    expect(off.all('Role')).toEqual([]);
  });

  it('watchNamespaces: a Role + RoleBinding in each namespace and nothing cluster-wide', () => {
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { watchNamespaces: ['shop', 'billing'] } });
    // Only the tenant roles (bound by no one until a tenant's RoleBinding) are cluster-scoped.
    expect(r.all('ClusterRole').map((o) => o.metadata.name).sort()).toEqual(['kubetx-edit', 'kubetx-view']);
    expect(r.all('ClusterRoleBinding')).toEqual([]);
    // The finalizer policy is cluster-wide and would hold transactions in namespaces no operator serves.
    expect(r.all('MutatingAdmissionPolicy')).toEqual([]);
    const roles = r.all('Role').map((o) => `${o.metadata.namespace}/${o.metadata.name}`).sort();
    expect(roles).toEqual(['billing/kubetx', 'kubetx-system/kubetx-leader-election', 'shop/kubetx']);
    for (const ns of ['shop', 'billing']) {
      const b = r.all<{ roleRef: k8s.V1RoleRef; subjects: k8s.RbacV1Subject[] }>('RoleBinding').find((o) => o.metadata.namespace === ns)!;
      expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubetx' });
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kubetx', namespace: 'kubetx-system' }]);
    }
  });

  it('ServiceMonitor and PodDisruptionBudget are off by default and render when enabled', () => {
    const on = renderChart({ release: 'kubetx', namespace: 'm', values: { serviceMonitor: { enabled: true }, podDisruptionBudget: { enabled: true } } });
    const sm = on.one<{ spec: { endpoints: Array<{ port: string; path: string }> } }>('ServiceMonitor');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    expect(on.one<{ spec: { maxUnavailable: number } }>('PodDisruptionBudget').spec.maxUnavailable).toBe(1);
  });

  // Each bad value fails the render, and the message names it.
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['workers: -1', { workers: -1 }, /at '\/workers': minimum/],
    ['flowControl.maxCallsPerEndpoint: -1', { flowControl: { maxCallsPerEndpoint: -1 } }, /at '\/flowControl\/maxCallsPerEndpoint': minimum/],
    ['workers: 5000', { workers: 5000 }, /at '\/workers': maximum/],
    ['workers: "4" (a string)', { workers: '4' }, /at '\/workers': got string, want integer/],
    ['message.checkTimeoutAction: Commit', { message: { checkTimeoutAction: 'Commit' } }, /at '\/message\/checkTimeoutAction': value must be one of 'Rollback', 'Fail'/],
    ['logLevel: loud', { logLevel: 'loud' }, /at '\/logLevel': value must be one of 'trace', 'debug', 'info'/],
    ['a misspelt top-level key (replicas)', { replicas: 3 }, /additional properties 'replicas' not allowed/],
    ['a misspelt nested key', { endpointPolicy: { allowRawAddress: true } }, /at '\/endpointPolicy': additional properties 'allowRawAddress' not allowed/],
    ['endpointPolicy.allowRawAddresses: "yes"', { endpointPolicy: { allowRawAddresses: 'yes' } }, /at '\/endpointPolicy\/allowRawAddresses': got string, want boolean/],
    ['watchNamespaces: a string, not a list', { watchNamespaces: 'shop' }, /at '\/watchNamespaces': got string, want array/],
    ['watchNamespaces: an invalid name', { watchNamespaces: ['Shop_1'] }, /at '\/watchNamespaces\/0': 'Shop_1' does not match pattern/],
    ['leaseDuration: 15 (no unit)', { leaderElection: { leaseDuration: 15 } }, /at '\/leaderElection\/leaseDuration'/],
    ['defaultCallTimeout: 0s', { defaultCallTimeout: '0s' }, /at '\/defaultCallTimeout'/],
    ['defaultTtlAfterFinished: 1 day', { defaultTtlAfterFinished: '1 day' }, /at '\/defaultTtlAfterFinished'/],
    ['tls.readSecrets: "true" (a string)', { tls: { readSecrets: 'true' } }, /at '\/tls\/readSecrets': got string, want boolean/],
    ['image.digest: not a sha256', { image: { repository: 'r', digest: 'latest' } }, /at '\/image\/digest'/],
    ['2 replicas without leader election', { leaderElection: { enabled: false } }, /replicaCount: 2 replicas need leaderElection.enabled=true/],
    ['renewDeadline longer than leaseDuration', { leaderElection: { renewDeadline: '20s' } }, /leaderElection: retryPeriod \(2s\) < renewDeadline \(20s\) < leaseDuration \(15s\) must hold/],
    ['clusterDomain given as the Service suffix', { clusterDomain: 'svc.cluster.local' }, /clusterDomain: "svc.cluster.local" looks like a Service suffix/],
    ['metrics and health on one port', { health: { port: 8080 } }, /metrics.port and health.port are both 8080/],
    ['a PDB letting every replica go', { podDisruptionBudget: { enabled: true, maxUnavailable: 2 } }, /podDisruptionBudget.maxUnavailable: 2 of 2 replicas/],
    ['a PDB of 100 %', { podDisruptionBudget: { enabled: true, maxUnavailable: '100%' } }, /at '\/podDisruptionBudget\/maxUnavailable'/],
    ['nameOverride not a DNS label', { nameOverride: 'Bad_Name' }, /at '\/nameOverride': 'Bad_Name' does not match pattern/],
    ['resyncPeriod 1000h', { resyncPeriod: '1000h' }, /resyncPeriod: 1000h is longer than 24h/],
    ['defaultTtlAfterFinished over a year', { defaultTtlAfterFinished: '10000h' }, /defaultTtlAfterFinished: 10000h is longer than a year/],
    ['maxCallTimeout 2h', { maxCallTimeout: '2h' }, /maxCallTimeout: 2h is longer than 1h/],
    ['defaultCallTimeout above maxCallTimeout', { defaultCallTimeout: '2m' }, /defaultCallTimeout \(2m\) must not exceed maxCallTimeout \(60s\)/],
    ['leaseDuration 1000h', { leaderElection: { leaseDuration: '1000h' } }, /leaderElection.leaseDuration: 1000h is longer than 5m/],
    ['crds.enabled: "yes"', { crds: { enabled: 'yes' } }, /at '\/crds\/enabled': got string, want boolean/],
    ['a misspelt crds key', { crds: { keepp: true } }, /at '\/crds': additional properties 'keepp' not allowed/],
    ['prometheusRule.branchCallErrorRatio: 2', { prometheusRule: { branchCallErrorRatio: 2 } }, /at '\/prometheusRule\/branchCallErrorRatio': maximum/],
    ['prometheusRule.stuckFor: 30 (no unit)', { prometheusRule: { stuckFor: 30 } }, /at '\/prometheusRule\/stuckFor'/],
    ['grafanaDashboard.labelValue: 1 (a number)', { grafanaDashboard: { labelValue: 1 } }, /at '\/grafanaDashboard\/labelValue': got number, want string/],
    ['networkPolicy.egress.apiServer.cidrs: not a CIDR', { networkPolicy: { egress: { apiServer: { cidrs: ['10.0.0.1'] } } } }, /at '\/networkPolicy\/egress\/apiServer\/cidrs\/0'/],
  ])('rejects %s, naming the value', (_, values, message) => {
    const r = templateChart({ release: 'kubetx', namespace: 'x', values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it('networkPolicy: off by default; on, metrics only from metricsFrom, probes open, and the API server accepts it', () => {
    expect(renderChart({ release: 'kubetx', namespace: 'm', values: {} }).objects.some((o) => o.kind === 'NetworkPolicy')).toBe(false);
    const from = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }];
    const on = renderChart({ release: 'kubetx', namespace: 'default', values: { networkPolicy: { enabled: true, metricsFrom: from } } });
    const np = on.one<{ spec: k8s.V1NetworkPolicySpec }>('NetworkPolicy');
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([
      { ports: [{ port: 'health', protocol: 'TCP' }] },
      { from, ports: [{ port: 'metrics', protocol: 'TCP' }] },
    ]);
    const doc = on.yaml.split(/^---$/m).find((d) => /kind: NetworkPolicy/.test(d))!;
    const applied = applyServerSide(kubeconfigPath(), doc);
    expect(applied.status, applied.stderr).toBe(0);
  });

  it('networkPolicy.egress: only DNS, the API server and the listed participants; refused without the API server', () => {
    const participants = [{ to: [{ namespaceSelector: { matchLabels: { 'kubetx.io/tenant': 'true' } } }], ports: [{ port: 50051, protocol: 'TCP' }] }];
    const values = { networkPolicy: { enabled: true, egress: { enabled: true, apiServer: { cidrs: ['10.0.0.1/32', '192.0.2.10/32'] }, participants } } };
    const np = renderChart({ release: 'kubetx', namespace: 'default', values }).one<{ spec: k8s.V1NetworkPolicySpec }>('NetworkPolicy');
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.egress).toEqual([
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }],
      },
      { to: [{ ipBlock: { cidr: '10.0.0.1/32' } }, { ipBlock: { cidr: '192.0.2.10/32' } }], ports: [{ port: 443, protocol: 'TCP' }, { port: 6443, protocol: 'TCP' }] },
      ...participants,
    ]);
    const doc = renderChart({ release: 'kubetx', namespace: 'default', values }).yaml.split(/^---$/m).find((d) => /kind: NetworkPolicy/.test(d))!;
    expect(applyServerSide(kubeconfigPath(), doc).status).toBe(0);
    const noApi = templateChart({ release: 'kubetx', namespace: 'x', values: { networkPolicy: { enabled: true, egress: { enabled: true } } } });
    expect(noApi.status).not.toBe(0);
    expect(noApi.stderr).toMatch(/networkPolicy.egress.apiServer.cidrs: with networkPolicy.egress.enabled/);
  });

  it('prometheusRule and grafanaDashboard: off by default; the rule selects the release\'s ServiceMonitor job, or prometheusRule.selector', () => {
    const off = renderChart({ release: 'kubetx', namespace: 'm' });
    expect(off.all('PrometheusRule')).toEqual([]);
    const on = renderChart({ release: 'tx', namespace: 'ops', values: { prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } } } });
    const rule = on.one<{ spec: { groups: Array<{ rules: Array<{ expr: string }> }> } }>('PrometheusRule');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
    for (const r of rule.spec.groups[0]!.rules) expect(r.expr).toContain('job="tx-kubetx-metrics", namespace="ops"');
    const custom = renderChart({ release: 'tx', namespace: 'ops', values: { prometheusRule: { enabled: true, selector: 'service="kubetx"' } } });
    for (const r of custom.one<{ spec: { groups: Array<{ rules: Array<{ expr: string }> }> } }>('PrometheusRule').spec.groups[0]!.rules) {
      expect(r.expr).toContain('{service="kubetx"');
      expect(r.expr).not.toContain('job=');
    }
  });

  it('finalizerPolicy: rendered for Kubernetes >= 1.36 only, and off when disabled (the operator then writes the finalizer)', () => {
    const kinds = (r: ReturnType<typeof renderChart>) => r.objects.map((o) => o.kind).filter((k) => k.startsWith('MutatingAdmissionPolicy')).sort();
    expect(kinds(renderChart({ release: 'kubetx', namespace: 'kubetx-system' }))).toEqual(['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding']);
    expect(kinds(renderChart({ release: 'kubetx', namespace: 'kubetx-system', kubeVersion: 'v1.35.3' }))).toEqual([]);
    expect(kinds(renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { finalizerPolicy: { enabled: false } } }))).toEqual([]);
  });

  it('refuses Kubernetes older than 1.30', () => {
    const r = helm(['template', 'kubetx', chartDir, '--kube-version', 'v1.29.9']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/chart requires kubeVersion: >=1.30.0-0/);
  });

  it('the rendered rules are exactly the least-privilege list, in every mode', () => {
    const leaseOf = (r: Rendered) => parseFlags(operatorContainer(r).args ?? [], {}).leaderElectionId;
    for (const readSecrets of [false, true]) {
      for (const watchNamespaces of [[], ['shop', 'billing']]) {
        const mode = `readSecrets=${readSecrets} watchNamespaces=[${watchNamespaces.join(',')}]`;
        const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { watchNamespaces, tls: { readSecrets } } });
        const want = permissions(expectedOperatorRules({ readSecrets }));
        const scopes = watchNamespaces.length
          ? r.all<{ rules: Rule[] }>('Role').filter((o) => watchNamespaces.includes(o.metadata.namespace!))
          : r.all<{ rules: Rule[] }>('ClusterRole').filter((o) => o.metadata.name === 'kubetx');
        expect(scopes, mode).toHaveLength(watchNamespaces.length || 1);
        for (const role of scopes) {
          const got = permissions(role.rules);
          expect(difference(got, want), `${mode}: ${role.kind} ${role.metadata.name} grants more than the operator needs`).toEqual([]);
          expect(difference(want, got), `${mode}: ${role.kind} ${role.metadata.name} misses`).toEqual([]);
        }
        const lease = r.one<{ rules: Rule[] }>('Role', 'kubetx-leader-election');
        expect(lease.metadata.namespace).toBe('kubetx-system');
        expect([...permissions(lease.rules)].sort(), mode).toEqual([...permissions(leaderElectionRules(leaseOf(r)))].sort());
        // No wildcard anywhere.
        for (const o of [...r.all<{ rules: Rule[] }>('Role'), ...r.all<{ rules: Rule[] }>('ClusterRole').filter((o) => o.metadata.name === 'kubetx')]) {
          for (const rule of o.rules) expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain('*');
        }
      }
    }
  });
});

describe('chart on the real API server', () => {
  const admin = kubeConfig();
  const adminPath = kubeconfigPath();
  let pay: PaymentServices;
  let txs: ReturnType<typeof transactions>;
  let nextOrder = 7000;
  const operators: OperatorProcess[] = [];

  beforeAll(async () => {
    txs = transactions(admin);
    pay = await startPayment();
  });

  afterAll(async () => {
    await pay?.stopAll();
  });

  /** Each group stops its operators, even after a failure: a cluster-wide one left running would act in the next group's namespaces. */
  const stopOperators = async () => {
    for (const o of operators.splice(0)) await o.kill('SIGKILL');
  };

  const newOrder = () => {
    const id = nextOrder++;
    pay.addOrders([id]);
    return id;
  };

  async function until(ns: string, name: string, timeoutMs = 60_000): Promise<DistributedTransaction> {
    return eventually(`${ns}/${name} terminal`, async () => {
      const tx = await txs.get(ns, name);
      return terminal.has(tx.status?.phase ?? '') ? tx : undefined;
    }, timeoutMs);
  }

  /** A namespace where Pod Security "restricted" is enforced (and warned about for Deployments). */
  async function restrictedNamespace(prefix: string): Promise<string> {
    const name = `${prefix}-${suffix()}`;
    const level = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted', 'kubetx.io/test': 'true' };
    await admin.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name, labels: level } } });
    return name;
  }

  /** The API server's answer to "may I?", asked with the ServiceAccount's own token. */
  async function can(kc: k8s.KubeConfig, attrs: k8s.V1ResourceAttributes): Promise<boolean> {
    const r = await kc.makeApiClient(k8s.AuthorizationV1Api).createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attrs } } });
    return r.status?.allowed === true;
  }

  /** Every resource permission the token holds in `namespace` (cluster-wide grants included), per the API server. */
  async function effective(kc: k8s.KubeConfig, namespace: string) {
    const r = await kc.makeApiClient(k8s.AuthorizationV1Api).createSelfSubjectRulesReview({ body: { spec: { namespace } } });
    expect(r.status?.incomplete, r.status?.evaluationError).toBe(false);
    return permissions(r.status?.resourceRules ?? []);
  }

  /** Installs the rendered chart server-side, with its ServiceAccount's token kubeconfig. */
  async function install(release: string, values: Record<string, unknown>) {
    const releaseNs = await restrictedNamespace('kubetx-system');
    // The status guard is cluster-wide and would refuse the admin status writes of the other test files
    // sharing this control plane; it and the tenant roles are tested in status-guard.test.ts (bound to its namespace).
    // The finalizer policy is cluster-wide too (tested in finalizer-policy.test.ts).
    // The CRD is the global setup's (chart-upgrade.test.ts installs the chart's own on a control plane of its own),
    // and so is the spec guard, which goes with the chart's CRD (spec-guard.test.ts, on a control plane of its own).
    const tenantSide = { statusGuard: { enabled: false }, tenantRoles: { enabled: false }, finalizerPolicy: { enabled: false }, crds: { enabled: false }, specGuard: { enabled: false } };
    const rendered = renderChart({ release, namespace: releaseNs, values: { ...tenantSide, ...values } });
    const applied = applyServerSide(adminPath, rendered.yaml);
    const sa = rendered.one('ServiceAccount').metadata.name;
    const token = await serviceAccountKubeconfig(admin, releaseNs, sa);
    // A ServiceAccount bound to nothing: what every authenticated account may do anyway.
    const nobody = `nobody-${suffix()}`;
    await admin.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccount({ namespace: releaseNs, body: { metadata: { name: nobody } } });
    const baseline = loadKubeconfig((await serviceAccountKubeconfig(admin, releaseNs, nobody)).path);
    return { releaseNs, rendered, applied, sa, saPath: token.path, saKc: loadKubeconfig(token.path), baseline };
  }

  async function runOperator(r: Rendered, saPath: string, releaseNs: string): Promise<OperatorProcess> {
    const pod = `${r.one('Deployment').metadata.name}-7d9f-${suffix()}`;
    const op = await startOperator({ kubeconfig: saPath, allowRawAddresses: false, args: operatorArgs(r), env: { POD_NAME: pod, POD_NAMESPACE: releaseNs } });
    operators.push(op);
    await op.waitForLog((l) => l.msg === 'became leader' && l.identity === pod, 30_000);
    await op.waitForLog((l) => l.msg === 'controller started', 30_000);
    return op;
  }

  /** Anything the API server refused to the operator shows up in its logs as one of these. */
  const refusals = (op: OperatorProcess) =>
    op.lines.filter((l) => /forbidden|could not record event|watch failed|lease update failed|could not release/i.test(JSON.stringify(l)));

  it('tenantQuota: the API server refuses a tenant\'s transaction over its quota', async () => {
    const ns = await freshNamespace(admin, 'quota');
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { tenantQuota: { namespaces: [ns], maxTransactions: 2 } } });
    const quota = r.objects.find((o) => o.kind === 'ResourceQuota')!;
    expect(quota.metadata.namespace).toBe(ns);
    const core = admin.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedResourceQuota({ namespace: ns, body: quota as k8s.V1ResourceQuota });
    // The quota controller (kube-controller-manager, absent here) would initialise the usage; do what it does.
    const hard = { 'count/distributedtransactions.kubetx.io': '2' };
    const rq = await core.readNamespacedResourceQuota({ name: quota.metadata.name, namespace: ns });
    await core.replaceNamespacedResourceQuotaStatus({ name: quota.metadata.name, namespace: ns, body: { ...rq, status: { hard, used: { 'count/distributedtransactions.kubetx.io': '0' } } } });
    for (const id of [1, 2]) await txs.create(payOrder(pay, { name: `q-${id}`, namespace: ns, orderId: 90_000 + id }));
    const refused = await refusal(txs.create(payOrder(pay, { name: 'q-3', namespace: ns, orderId: 90_003 })));
    expect(refused.code).toBe(403);
    expect(refused.message).toMatch(/exceeded quota: .*count\/distributedtransactions\.kubetx\.io=2/);
  });

  describe('default values (every namespace, ClusterRole)', () => {
    let inst: Awaited<ReturnType<typeof install>>;
    let txNs: string;
    beforeAll(async () => {
      // events: all, so the happy path records Events too and the chart's Event RBAC is exercised.
      inst = await install(`kt-${suffix()}`, { events: 'all', endpointPolicy: { allowRawAddresses: true, allowAddressCidrs: ['127.0.0.0/8'] } });
      txNs = await freshNamespace(admin, 'chart-tx');
    });
    afterAll(stopOperators);

    it('is accepted server-side, and its pod template passes the "restricted" Pod Security Standard', async () => {
      const kinds = inst.applied.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0]!.split('/')[0]).sort();
      expect(kinds).toEqual([
        'clusterrole.rbac.authorization.k8s.io',
        'clusterrolebinding.rbac.authorization.k8s.io',
        'deployment.apps',
        'role.rbac.authorization.k8s.io',
        'rolebinding.rbac.authorization.k8s.io',
        'service',
        'serviceaccount',
      ]);
      // The namespace warns about Deployments whose pods would violate "restricted": none.
      expect(inst.applied.stderr).not.toMatch(/PodSecurity|Warning/);
      const dep = await admin.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ name: inst.rendered.one('Deployment').metadata.name, namespace: inst.releaseNs });
      expect(dep.spec?.template.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem).toBe(true);

      // Enforcement is on pods: a Pod from the template is admitted (dry run; there are no nodes) ...
      const core = admin.makeApiClient(k8s.CoreV1Api);
      const template = dep.spec!.template;
      await core.createNamespacedPod({ namespace: inst.releaseNs, dryRun: 'All', body: { metadata: { name: 'from-template', labels: template.metadata?.labels }, spec: template.spec! } });
      // ... and the check is real: the same pod without the hardening is refused.
      const weak = structuredClone(template.spec!);
      delete weak.securityContext;
      delete weak.containers[0]!.securityContext;
      await expect(core.createNamespacedPod({ namespace: inst.releaseNs, dryRun: 'All', body: { metadata: { name: 'weak' }, spec: weak } })).rejects.toMatchObject({
        code: 403,
        body: expect.stringMatching(/violates PodSecurity .{0,2}restricted/),
      });
    });

    it('the operator, as the chart ServiceAccount with the chart arguments, commits a payment, records Events, expires by TTL and releases its Lease', async () => {
      const op = await runOperator(inst.rendered, inst.saPath, inst.releaseNs);
      const leaseName = parseFlags(operatorArgs(inst.rendered), {}).leaderElectionId;
      const coord = admin.makeApiClient(k8s.CoordinationV1Api);
      const pod = (op.lines.find((l) => l.msg === 'became leader')!.identity as string);
      expect((await coord.readNamespacedLease({ name: leaseName, namespace: inst.releaseNs })).spec?.holderIdentity).toBe(pod);

      const before = pay.ledgers();
      const orderId = newOrder();
      const name = `pay-${orderId}`;
      await txs.create(payOrder(pay, { name, namespace: txNs, orderId }));
      const tx = await until(txNs, name);
      expect(tx.status?.phase).toBe('Committed');
      const after = pay.ledgers();
      expect(after.order!.orders[String(orderId)]!.status).toBe('PAID');
      expect(after.credit!.accounts['7']!.credit).toBe(before.credit!.accounts['7']!.credit + 10);
      // events.k8s.io create (and patch for repeats) worked under the chart's Role.
      const events = await eventually('Decided and Committed events', async () => {
        const list = await admin.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: txNs });
        const reasons = list.items.filter((e) => e.regarding?.name === name).map((e) => e.reason);
        return reasons.includes('Decided') && reasons.includes('Committed') ? reasons : undefined;
      }, 10_000);
      expect(events).toEqual(expect.arrayContaining(['Decided', 'Committed']));

      // delete: ttlAfterFinished removes a finished transaction.
      const ttlOrder = newOrder();
      const ttlTx = payOrder(pay, { name: `ttl-${ttlOrder}`, namespace: txNs, orderId: ttlOrder });
      ttlTx.spec.ttlAfterFinished = '1s';
      await txs.create(ttlTx);
      await eventually('the TTL transaction to be deleted', async () => {
        try {
          await txs.get(txNs, ttlTx.metadata.name);
          return undefined;
        } catch (err) {
          return (err as { code?: number }).code === 404 ? true : undefined;
        }
      }, 30_000);
      expect(op.lines.some((l) => l.msg === 'deleted finished transaction (ttlAfterFinished)' && l.transaction === ttlTx.metadata.name)).toBe(true);

      // SIGTERM: the Lease is given back (get + update on its own name).
      await op.kill('SIGTERM');
      expect(op.child.exitCode).toBe(0);
      expect(op.lines.some((l) => l.msg === 'released leadership')).toBe(true);
      expect((await coord.readNamespacedLease({ name: leaseName, namespace: inst.releaseNs })).spec?.holderIdentity).toBeUndefined();
      expect(refusals(op)).toEqual([]);
    });

    it('the ServiceAccount may do what the operator needs and nothing more (SelfSubjectAccessReview)', async () => {
      const lease = parseFlags(operatorArgs(inst.rendered), {}).leaderElectionId;
      const dtx = { group: 'kubetx.io', resource: 'distributedtransactions' };
      const allowed: k8s.V1ResourceAttributes[] = [
        { ...dtx, verb: 'list' },
        { ...dtx, verb: 'watch' },
        { ...dtx, verb: 'get', namespace: txNs },
        { ...dtx, verb: 'delete', namespace: txNs },
        { ...dtx, verb: 'patch', namespace: txNs },
        { ...dtx, subresource: 'status', verb: 'update', namespace: txNs },
        { group: 'events.k8s.io', resource: 'events', verb: 'create', namespace: txNs },
        { group: 'events.k8s.io', resource: 'events', verb: 'patch', namespace: txNs },
        { group: 'coordination.k8s.io', resource: 'leases', verb: 'create', namespace: inst.releaseNs },
        { group: 'coordination.k8s.io', resource: 'leases', verb: 'get', name: lease, namespace: inst.releaseNs },
        { group: 'coordination.k8s.io', resource: 'leases', verb: 'update', name: lease, namespace: inst.releaseNs },
      ];
      const denied: k8s.V1ResourceAttributes[] = [
        { resource: 'secrets', verb: 'list' },
        { resource: 'secrets', verb: 'get', namespace: txNs, name: 'anything' },
        { resource: 'configmaps', verb: 'get', namespace: txNs },
        { resource: 'pods', verb: 'list' },
        { resource: 'events', verb: 'create', namespace: txNs },
        { ...dtx, verb: 'create', namespace: txNs },
        { ...dtx, verb: 'update', namespace: txNs },
        { ...dtx, verb: 'deletecollection', namespace: txNs },
        { ...dtx, subresource: 'status', verb: 'patch', namespace: txNs },
        { group: 'events.k8s.io', resource: 'events', verb: 'delete', namespace: txNs },
        { group: 'coordination.k8s.io', resource: 'leases', verb: 'delete', name: lease, namespace: inst.releaseNs },
        { group: 'coordination.k8s.io', resource: 'leases', verb: 'list', namespace: inst.releaseNs },
        { group: 'coordination.k8s.io', resource: 'leases', verb: 'update', name: 'kube-controller-manager', namespace: inst.releaseNs },
        { group: 'coordination.k8s.io', resource: 'leases', verb: 'create', namespace: 'kube-system' },
        { group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', verb: 'get' },
        { group: 'rbac.authorization.k8s.io', resource: 'clusterroles', verb: 'escalate' },
        { resource: 'serviceaccounts', verb: 'impersonate' },
      ];
      for (const a of allowed) expect(await can(inst.saKc, a), `allowed: ${JSON.stringify(a)}`).toBe(true);
      for (const a of denied) expect(await can(inst.saKc, a), `denied: ${JSON.stringify(a)}`).toBe(false);
    });

    it("the API server's view of the ServiceAccount's rules, minus what any account has, is exactly the expected list", async () => {
      const lease = parseFlags(operatorArgs(inst.rendered), {}).leaderElectionId;
      const operator = permissions(expectedOperatorRules({ readSecrets: false }));
      for (const [ns, want] of [
        [txNs, operator],
        [inst.releaseNs, new Set([...operator, ...permissions(leaderElectionRules(lease))])],
      ] as const) {
        const got = new Set(difference(await effective(inst.saKc, ns), await effective(inst.baseline, ns)));
        expect(difference(got, want), `extra in ${ns}`).toEqual([]);
        expect(difference(want, got), `missing in ${ns}`).toEqual([]);
      }
    });
  });

  describe('watchNamespaces (Roles only) with tls.readSecrets', () => {
    let inst: Awaited<ReturnType<typeof install>>;
    let watched: string[];
    let other: string;
    beforeAll(async () => {
      watched = [await freshNamespace(admin, 'chart-wa'), await freshNamespace(admin, 'chart-wb')];
      other = await freshNamespace(admin, 'chart-other');
      inst = await install(`kw-${suffix()}`, { watchNamespaces: watched, tls: { readSecrets: true }, endpointPolicy: { allowRawAddresses: true, allowAddressCidrs: ['127.0.0.0/8'] } });
    });
    afterAll(stopOperators);

    it('has no cluster-wide objects and the operator, limited to its namespaces, commits a payment there and ignores the rest', async () => {
      expect(inst.applied.stdout).not.toMatch(/clusterrole/);
      // Created before the operator starts: if it could see this namespace it would act on it first.
      const ignoredOrder = newOrder();
      await txs.create(payOrder(pay, { name: `pay-${ignoredOrder}`, namespace: other, orderId: ignoredOrder }));

      const op = await runOperator(inst.rendered, inst.saPath, inst.releaseNs);
      const orderId = newOrder();
      const name = `pay-${orderId}`;
      await txs.create(payOrder(pay, { name, namespace: watched[1]!, orderId }));
      expect((await until(watched[1]!, name)).status?.phase).toBe('Committed');
      expect(pay.ledgers().order!.orders[String(orderId)]!.status).toBe('PAID');

      expect((await txs.get(other, `pay-${ignoredOrder}`)).status).toBeUndefined();
      expect(pay.ledgers().order!.orders[String(ignoredOrder)]!.status).toBe('UNPAID');
      await op.kill('SIGTERM');
      expect(op.lines.some((l) => l.msg === 'released leadership')).toBe(true);
      expect(refusals(op)).toEqual([]);
    });

    it('the ServiceAccount is confined to the watched namespaces (and the Lease)', async () => {
      const dtx = { group: 'kubetx.io', resource: 'distributedtransactions' };
      for (const ns of watched) {
        expect(await can(inst.saKc, { ...dtx, verb: 'list', namespace: ns })).toBe(true);
        // A watch of the labelled Secrets (list, watch), no get by name: the operator reads them from its cache.
        expect(await can(inst.saKc, { resource: 'secrets', verb: 'list', namespace: ns })).toBe(true);
        expect(await can(inst.saKc, { resource: 'secrets', verb: 'watch', namespace: ns })).toBe(true);
        expect(await can(inst.saKc, { resource: 'secrets', verb: 'get', namespace: ns, name: 'participant-tls' })).toBe(false);
      }
      expect(await can(inst.saKc, { ...dtx, verb: 'list' })).toBe(false);
      expect(await can(inst.saKc, { ...dtx, verb: 'list', namespace: other })).toBe(false);
      expect(await can(inst.saKc, { resource: 'secrets', verb: 'list', namespace: other })).toBe(false);
      expect(await can(inst.saKc, { resource: 'secrets', verb: 'list', namespace: inst.releaseNs })).toBe(false);

      const lease = parseFlags(operatorArgs(inst.rendered), {}).leaderElectionId;
      const operator = permissions(expectedOperatorRules({ readSecrets: true }));
      for (const [ns, want] of [
        [watched[0]!, operator],
        [watched[1]!, operator],
        [other, new Set<string>()],
        [inst.releaseNs, permissions(leaderElectionRules(lease))],
      ] as const) {
        const got = new Set(difference(await effective(inst.saKc, ns), await effective(inst.baseline, ns)));
        expect(difference(got, want), `extra in ${ns}`).toEqual([]);
        expect(difference(want, got), `missing in ${ns}`).toEqual([]);
      }
    });
  });
});
