/**
 * The chart's sharding and API Priority and Fairness values (docs/scaling.md):
 *
 * - `helm template`: sharding.enabled passes --shards, --shard-filter,
 *   --shard-lease-prefix, the Lease namespace and timings and no --leader-elect,
 *   renders the shard-Lease Role instead of the leader-election one, and admits
 *   more than one replica without leader election; sharding off renders what
 *   the chart rendered before (the same arguments, the same objects, the new
 *   values inert); bad values are refused naming them.
 * - On the shared control plane: the shard-Lease Role lets the chart's
 *   ServiceAccount (a TokenRequest token) list, create, update and delete
 *   Leases in the release namespace, and nothing in another namespace.
 * - On a control plane of its own with API Priority and Fairness on (the
 *   shared one runs with it off): the rendered FlowSchema and
 *   PriorityLevelConfiguration are accepted, and the ServiceAccount's requests
 *   are dispatched under that FlowSchema, as the API server's own
 *   apiserver_flowcontrol_dispatched_requests_total says.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GROUP, PLURAL, VERSION } from '../../src/api/types.js';
import { parseFlags } from '../../src/cmd/flags.js';
import {
  applyServerSide,
  loadKubeconfig,
  operatorContainer,
  parseExposition,
  renderChart,
  serviceAccountKubeconfig,
  templateChart,
  type K8sObject,
  type Rendered,
  DEFAULT_OBJECTS,
} from '../support/chart.js';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { difference, expectedOperatorRules, leaderElectionRules, permissions, type Rule } from '../support/rbac.js';
import { testenvKubectl } from '../support/testenv-paths.js';

const suffix = () => randomBytes(3).toString('hex');

/** What the shard-Lease Role grants, in the release namespace only (list and create cannot be limited by name). */
const shardLeaseRules: Rule[] = [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] }];

/** The default values' operator arguments, as the chart rendered them before sharding existed. */
const defaultArgs = [
  '--workers=16',
  '--metrics-bind-address=:8080',
  '--health-probe-bind-address=:8081',
  '--cluster-domain=cluster.local',
  '--default-call-timeout=5s',
  '--max-call-timeout=60s',
  '--liveness-stall-timeout=2m',
  '--resync-period=5m',
  '--max-calls-per-endpoint=32',
  '--max-forward-transactions=0',
  '--queue-qps=50',
  '--queue-burst=100',
  '--message-check-timeout-action=Rollback',
  '--stall-after-attempts=5',
  '--stall-after=10m',
  '--events=warnings',
  '--call-history=failures',
  '--log-level=info',
  '--leader-elect',
  '--leader-election-namespace=kubetx-system',
  '--leader-election-id=kubetx-leader',
  '--lease-duration=15s',
  '--renew-deadline=10s',
  '--retry-period=2s',
];

/** The Lease and shard arguments of a render, in order (everything else is the same in both modes). */
const leaseArgs = (r: Rendered) => (operatorContainer(r).args ?? []).filter((a) => /^--(leader-elect|leader-election-|lease-|renew-|retry-|shard)/.test(a));

const yamlOf = (objects: K8sObject[]) => objects.map((o) => stringify(o)).join('---\n');

/** Rendered without the cluster-wide objects the other test files' namespaces would feel (as chart-rbac.test.ts does). */
const tenantSide = { statusGuard: { enabled: false }, tenantRoles: { enabled: false }, finalizerPolicy: { enabled: false } };

interface ResourcePolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  clusterScope?: boolean;
  namespaces?: string[];
}
interface FlowSchemaSpec {
  priorityLevelConfiguration: { name: string };
  matchingPrecedence: number;
  distinguisherMethod: { type: string };
  rules: Array<{ subjects: k8s.FlowcontrolV1Subject[]; resourceRules: ResourcePolicyRule[] }>;
}

describe('chart: sharding and API Priority and Fairness values', () => {
  it('sharding.enabled: --shards, --shard-filter, --shard-lease-prefix, the Lease namespace and timings, no --leader-elect; 3 replicas', () => {
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { sharding: { enabled: true }, replicaCount: 3 } });
    expect(r.one<{ spec: k8s.V1DeploymentSpec }>('Deployment').spec.replicas).toBe(3);
    expect(leaseArgs(r)).toEqual([
      '--shards=16',
      '--shard-filter=auto',
      '--shard-lease-prefix=kubetx-shard',
      '--leader-election-namespace=kubetx-system',
      '--lease-duration=15s',
      '--renew-deadline=10s',
      '--retry-period=2s',
    ]);
    // The rest of the arguments are the default ones.
    expect((operatorContainer(r).args ?? []).filter((a) => !leaseArgs(r).includes(a))).toEqual(defaultArgs.filter((a) => !/^--(leader-elect|leader-election-|lease-|renew-|retry-)/.test(a)));

    // Non-default values reach the flags; the timings are leaderElection's, leaderElection.enabled is ignored.
    const custom = renderChart({
      release: 'tx',
      namespace: 'ops',
      values: {
        replicaCount: 12,
        sharding: { enabled: true, shards: 64, filter: 'server', leasePrefix: 'tx-shards' },
        leaderElection: { enabled: false, leaseName: 'ignored', leaseDuration: '30s', renewDeadline: '20s', retryPeriod: '4s' },
      },
    });
    expect(custom.one<{ spec: k8s.V1DeploymentSpec }>('Deployment').spec.replicas).toBe(12);
    expect(leaseArgs(custom)).toEqual([
      '--shards=64',
      '--shard-filter=server',
      '--shard-lease-prefix=tx-shards',
      '--leader-election-namespace=ops',
      '--lease-duration=30s',
      '--renew-deadline=20s',
      '--retry-period=4s',
    ]);
    for (const filter of ['auto', 'server', 'client']) {
      const f = renderChart({ release: 'kubetx', namespace: 'x', values: { sharding: { enabled: true, filter } } });
      expect(leaseArgs(f)).toContain(`--shard-filter=${filter}`);
    }
  });

  it('sharding.enabled: the shard-Lease Role (get, list, watch, create, update, delete on leases) in the release namespace, instead of the leader-election Role', () => {
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { sharding: { enabled: true }, replicaCount: 3 } });
    expect(r.all('Role').map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['kubetx-system/kubetx-shards']);
    const role = r.one<{ rules: Rule[] }>('Role', 'kubetx-shards');
    expect([...permissions(role.rules)].sort()).toEqual([...permissions(shardLeaseRules)].sort());
    const binding = r.one<{ roleRef: k8s.V1RoleRef; subjects: k8s.RbacV1Subject[] }>('RoleBinding', 'kubetx-shards');
    expect(binding.metadata.namespace).toBe('kubetx-system');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubetx-shards' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kubetx', namespace: 'kubetx-system' }]);
    // The operator's ClusterRole is the same in both modes.
    const clusterRole = r.one<{ rules: Rule[] }>('ClusterRole', 'kubetx');
    const want = permissions(expectedOperatorRules({ readSecrets: false }));
    expect(difference(permissions(clusterRole.rules), want)).toEqual([]);
    expect(difference(want, permissions(clusterRole.rules))).toEqual([]);
    // With watchNamespaces, the shard Role stays in the release namespace, next to the per-namespace Roles.
    const watched = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { sharding: { enabled: true }, watchNamespaces: ['shop'] } });
    expect(watched.all('Role').map((o) => `${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual(['kubetx-system/kubetx-shards', 'shop/kubetx']);
    // rbac.create=false: no Role at all.
    expect(renderChart({ release: 'kubetx', namespace: 'x', values: { sharding: { enabled: true }, rbac: { create: false } } }).all('Role')).toEqual([]);
  });

  it('sharding off renders what it rendered before: --leader-elect, the leader-election Role, the same objects; the new values are inert', () => {
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system' });
    expect(operatorContainer(r).args).toEqual(defaultArgs);
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(DEFAULT_OBJECTS);
    const lease = r.one<{ rules: Rule[] }>('Role', 'kubetx-leader-election');
    expect([...permissions(lease.rules)].sort()).toEqual([...permissions(leaderElectionRules('kubetx-leader'))].sort());
    expect(parseFlags(operatorContainer(r).args ?? [], {})).toMatchObject({ leaderElect: true, leaderElectionId: 'kubetx-leader', leaderElectionNamespace: 'kubetx-system' });

    // Every new value changed but left off: byte for byte the default render.
    const inert = renderChart({
      release: 'kubetx',
      namespace: 'kubetx-system',
      values: {
        sharding: { enabled: false, shards: 200, filter: 'client', leasePrefix: 'other' },
        apiPriorityAndFairness: { enabled: false, nominalConcurrencyShares: 5, lendablePercent: 50, borrowingLimitPercent: 10, queues: 2, handSize: 1, queueLengthLimit: 9, matchingPrecedence: 500 },
      },
    });
    expect(inert.yaml).toBe(r.yaml);
    // Without sharding, more than one replica still needs leader election.
    const refused = templateChart({ release: 'kubetx', namespace: 'x', values: { replicaCount: 3, leaderElection: { enabled: false } } });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/replicaCount: 3 replicas need leaderElection.enabled=true/);
    // ... and which is accepted with sharding.
    const sharded = renderChart({ release: 'kubetx', namespace: 'x', values: { replicaCount: 3, leaderElection: { enabled: false }, sharding: { enabled: true } } });
    expect(leaseArgs(sharded)).not.toContain('--leader-elect');
  });

  // Each bad value fails the render, and the message names it.
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['sharding.shards: 0', { sharding: { enabled: true, shards: 0 } }, /at '\/sharding\/shards': minimum: got 0, want 1/],
    ['sharding.shards: 300', { sharding: { enabled: true, shards: 300 } }, /at '\/sharding\/shards': maximum: got 300, want 256/],
    ['sharding.shards: "16" (a string)', { sharding: { shards: '16' } }, /at '\/sharding\/shards': got string, want integer/],
    ['sharding.filter: bogus', { sharding: { enabled: true, filter: 'bogus' } }, /at '\/sharding\/filter': value must be one of 'auto', 'server', 'client'/],
    ['sharding.enabled: "yes"', { sharding: { enabled: 'yes' } }, /at '\/sharding\/enabled': got string, want boolean/],
    ['sharding.leasePrefix: not a DNS label', { sharding: { leasePrefix: 'Shard_' } }, /at '\/sharding\/leasePrefix': 'Shard_' does not match pattern/],
    ['a misspelt sharding key', { sharding: { shard: 4 } }, /at '\/sharding': additional properties 'shard' not allowed/],
    ['replicaCount: 300', { sharding: { enabled: true }, replicaCount: 300 }, /at '\/replicaCount': maximum: got 300, want 256/],
    ['12 replicas without sharding', { replicaCount: 12 }, /replicaCount: 12 replicas with one leader are 11 idle standbys; at most 10 without sharding.enabled/],
    ['sharding with renewDeadline longer than leaseDuration', { sharding: { enabled: true }, leaderElection: { enabled: false, renewDeadline: '20s' } }, /leaderElection: retryPeriod \(2s\) < renewDeadline \(20s\) < leaseDuration \(15s\) must hold/],
    ['apiPriorityAndFairness.lendablePercent: 101', { apiPriorityAndFairness: { lendablePercent: 101 } }, /at '\/apiPriorityAndFairness\/lendablePercent': maximum: got 101, want 100/],
    ['apiPriorityAndFairness.nominalConcurrencyShares: 0', { apiPriorityAndFairness: { nominalConcurrencyShares: 0 } }, /at '\/apiPriorityAndFairness\/nominalConcurrencyShares': minimum/],
    ['apiPriorityAndFairness.queues: 0', { apiPriorityAndFairness: { queues: 0 } }, /at '\/apiPriorityAndFairness\/queues': minimum/],
    ['apiPriorityAndFairness.handSize: 9', { apiPriorityAndFairness: { handSize: 9 } }, /at '\/apiPriorityAndFairness\/handSize': maximum/],
    ['apiPriorityAndFairness.handSize above queues', { apiPriorityAndFairness: { enabled: true, queues: 4, handSize: 6 } }, /apiPriorityAndFairness.handSize: 6 is more than apiPriorityAndFairness.queues \(4\)/],
    ['apiPriorityAndFairness.queueLengthLimit: 0', { apiPriorityAndFairness: { queueLengthLimit: 0 } }, /at '\/apiPriorityAndFairness\/queueLengthLimit': minimum/],
    ['apiPriorityAndFairness.matchingPrecedence: 1 (the exempt schema\'s)', { apiPriorityAndFairness: { matchingPrecedence: 1 } }, /at '\/apiPriorityAndFairness\/matchingPrecedence': minimum/],
    ['apiPriorityAndFairness.matchingPrecedence: 10000', { apiPriorityAndFairness: { matchingPrecedence: 10000 } }, /at '\/apiPriorityAndFairness\/matchingPrecedence': maximum/],
    ['apiPriorityAndFairness.borrowingLimitPercent: "lots"', { apiPriorityAndFairness: { borrowingLimitPercent: 'lots' } }, /at '\/apiPriorityAndFairness\/borrowingLimitPercent'/],
    ['a misspelt apiPriorityAndFairness key', { apiPriorityAndFairness: { queue: 4 } }, /at '\/apiPriorityAndFairness': additional properties 'queue' not allowed/],
  ])('rejects %s, naming the value', (_, values, message) => {
    const r = templateChart({ release: 'kubetx', namespace: 'x', values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it('apiPriorityAndFairness: off by default; on, a Limited priority level with queues and a FlowSchema for the ServiceAccount on every resource it uses', () => {
    const off = renderChart({ release: 'kubetx', namespace: 'kubetx-system' });
    expect(off.objects.filter((o) => o.apiVersion.startsWith('flowcontrol.'))).toEqual([]);

    const r = renderChart({ release: 'tx', namespace: 'ops', values: { apiPriorityAndFairness: { enabled: true } } });
    const plc = r.one<{ spec: k8s.V1PriorityLevelConfigurationSpec }>('PriorityLevelConfiguration');
    expect(plc.apiVersion).toBe('flowcontrol.apiserver.k8s.io/v1');
    expect(plc.metadata.name).toBe('tx-kubetx');
    expect(plc.spec).toEqual({
      type: 'Limited',
      limited: { nominalConcurrencyShares: 30, lendablePercent: 0, limitResponse: { type: 'Queue', queuing: { queues: 64, handSize: 6, queueLengthLimit: 50 } } },
    });
    const fs = r.one<{ spec: FlowSchemaSpec }>('FlowSchema');
    expect(fs.apiVersion).toBe('flowcontrol.apiserver.k8s.io/v1');
    expect(fs.spec.priorityLevelConfiguration).toEqual({ name: 'tx-kubetx' });
    expect(fs.spec.matchingPrecedence).toBe(800);
    expect(fs.spec.distinguisherMethod).toEqual({ type: 'ByUser' });
    expect(fs.spec.rules).toHaveLength(1);
    const rule = fs.spec.rules[0]!;
    expect(rule.subjects).toEqual([{ kind: 'ServiceAccount', serviceAccount: { name: 'tx-kubetx', namespace: 'ops' } }]);
    // Every resource of the operator's RBAC (Secrets included), its Leases and both groups' Events, all verbs.
    const covers = (group: string, resource: string, namespaced: string) =>
      rule.resourceRules.some((x) => x.apiGroups.includes(group) && x.resources.includes(resource) && x.verbs.includes('*') && (x.namespaces?.includes('*') || x.namespaces?.includes(namespaced)));
    const wanted = [...expectedOperatorRules({ readSecrets: true }), ...leaderElectionRules('any'), { apiGroups: [''], resources: ['events'], verbs: ['create'] }];
    for (const w of wanted) for (const g of w.apiGroups) for (const res of w.resources) expect(covers(g, res, 'ops'), `${g}/${res}`).toBe(true);
    // Cluster-wide lists and watches of transactions (no namespace in the request) are matched too; Leases only in the release namespace.
    expect(rule.resourceRules.find((x) => x.resources.includes('distributedtransactions'))!.clusterScope).toBe(true);
    expect(rule.resourceRules.find((x) => x.resources.includes('leases'))!.namespaces).toEqual(['ops']);

    const tuned = renderChart({
      release: 'tx',
      namespace: 'ops',
      values: { apiPriorityAndFairness: { enabled: true, nominalConcurrencyShares: 50, lendablePercent: 20, borrowingLimitPercent: 0, queues: 16, handSize: 4, queueLengthLimit: 100, matchingPrecedence: 700 } },
    });
    expect(tuned.one<{ spec: k8s.V1PriorityLevelConfigurationSpec }>('PriorityLevelConfiguration').spec.limited).toEqual({
      nominalConcurrencyShares: 50,
      lendablePercent: 20,
      borrowingLimitPercent: 0,
      limitResponse: { type: 'Queue', queuing: { queues: 16, handSize: 4, queueLengthLimit: 100 } },
    });
    expect(tuned.one<{ spec: FlowSchemaSpec }>('FlowSchema').spec.matchingPrecedence).toBe(700);
  });
});

describe('chart sharding on the real API server: the shard-Lease Role', () => {
  const admin = kubeConfig();
  let releaseNs: string;
  let otherNs: string;
  let sa: k8s.KubeConfig;
  let baseline: k8s.KubeConfig;

  beforeAll(async () => {
    releaseNs = await freshNamespace(admin, 'kubetx-shards');
    otherNs = await freshNamespace(admin, 'shards-other');
    const release = `ks-${suffix()}`;
    const r = renderChart({ release, namespace: releaseNs, values: { ...tenantSide, sharding: { enabled: true }, replicaCount: 3 } });
    // Only the namespaced objects: the ClusterRole would outlive the test (and grants nothing on Leases).
    const objs = r.objects.filter((o) => o.kind === 'ServiceAccount' || o.kind === 'Role' || o.kind === 'RoleBinding');
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([`Role/${release}-kubetx-shards`, `RoleBinding/${release}-kubetx-shards`, `ServiceAccount/${release}-kubetx`]);
    applyServerSide(kubeconfigPath(), yamlOf(objs));
    sa = loadKubeconfig((await serviceAccountKubeconfig(admin, releaseNs, `${release}-kubetx`)).path);
    const nobody = `nobody-${suffix()}`;
    await admin.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccount({ namespace: releaseNs, body: { metadata: { name: nobody } } });
    baseline = loadKubeconfig((await serviceAccountKubeconfig(admin, releaseNs, nobody)).path);
  });

  const lease = (name: string, holder: string): k8s.V1Lease => ({
    metadata: { name, labels: { 'kubetx.io/shard-set': 'kubetx-shard' } },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15, acquireTime: new k8s.V1MicroTime(Date.now()), renewTime: new k8s.V1MicroTime(Date.now()) },
  });

  it('the ServiceAccount lists, creates, updates and deletes shard and membership Leases in the release namespace', async () => {
    const coord = sa.makeApiClient(k8s.CoordinationV1Api);
    const pod = `kubetx-7d9f-${suffix()}`;
    for (const name of ['kubetx-shard-0', 'kubetx-shard-15', `kubetx-shard-replica-${pod}`]) {
      await coord.createNamespacedLease({ namespace: releaseNs, body: lease(name, pod) });
    }
    const listed = await coord.listNamespacedLease({ namespace: releaseNs, labelSelector: 'kubetx.io/shard-set=kubetx-shard' });
    expect(listed.items.map((l) => l.metadata!.name).sort()).toEqual(['kubetx-shard-0', 'kubetx-shard-15', `kubetx-shard-replica-${pod}`]);
    // Renew, then release (an update emptying the holder), as a replica does.
    const shard0 = await coord.readNamespacedLease({ name: 'kubetx-shard-0', namespace: releaseNs });
    shard0.spec!.renewTime = new k8s.V1MicroTime(Date.now());
    const renewed = await coord.replaceNamespacedLease({ name: 'kubetx-shard-0', namespace: releaseNs, body: shard0 });
    renewed.spec!.holderIdentity = undefined;
    const released = await coord.replaceNamespacedLease({ name: 'kubetx-shard-0', namespace: releaseNs, body: renewed });
    expect(released.spec?.holderIdentity).toBeUndefined();
    // A clean exit deletes the membership Lease; shards beyond --shards are deleted too.
    await coord.deleteNamespacedLease({ name: `kubetx-shard-replica-${pod}`, namespace: releaseNs });
    await coord.deleteNamespacedLease({ name: 'kubetx-shard-15', namespace: releaseNs });
    const left = await coord.listNamespacedLease({ namespace: releaseNs, labelSelector: 'kubetx.io/shard-set=kubetx-shard' });
    expect(left.items.map((l) => l.metadata!.name)).toEqual(['kubetx-shard-0']);
    // A watch (what an informer on the Leases would open) is allowed too.
    expect(await can(sa, { group: 'coordination.k8s.io', resource: 'leases', verb: 'watch', namespace: releaseNs })).toBe(true);
  });

  it('and nothing in another namespace, nor cluster-wide', async () => {
    const coord = sa.makeApiClient(k8s.CoordinationV1Api);
    await expect(coord.listNamespacedLease({ namespace: otherNs })).rejects.toMatchObject({ code: 403 });
    await expect(coord.createNamespacedLease({ namespace: otherNs, body: lease('kubetx-shard-0', 'p') })).rejects.toMatchObject({ code: 403 });
    await admin.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({ namespace: otherNs, body: lease('kubetx-shard-1', 'someone') });
    const theirs = { group: 'coordination.k8s.io', resource: 'leases', namespace: otherNs, name: 'kubetx-shard-1' };
    for (const verb of ['get', 'update', 'delete', 'patch']) expect(await can(sa, { ...theirs, verb }), verb).toBe(false);
    await expect(coord.deleteNamespacedLease({ name: 'kubetx-shard-1', namespace: otherNs })).rejects.toMatchObject({ code: 403 });
    expect(await can(sa, { group: 'coordination.k8s.io', resource: 'leases', verb: 'list' })).toBe(false);
    expect(await can(sa, { group: 'coordination.k8s.io', resource: 'leases', verb: 'create', namespace: 'kube-system' })).toBe(false);
    // Not patch or deletecollection even at home: the operator updates with a resourceVersion and deletes one by one.
    expect(await can(sa, { group: 'coordination.k8s.io', resource: 'leases', verb: 'patch', namespace: releaseNs, name: 'kubetx-shard-0' })).toBe(false);
    expect(await can(sa, { group: 'coordination.k8s.io', resource: 'leases', verb: 'deletecollection', namespace: releaseNs })).toBe(false);

    // The API server's view, minus what any account has: exactly the Lease rules at home, nothing elsewhere.
    for (const [ns, want] of [
      [releaseNs, permissions(shardLeaseRules)],
      [otherNs, new Set<string>()],
    ] as const) {
      const got = new Set(difference(await effective(sa, ns), await effective(baseline, ns)));
      expect(difference(got, want), `extra in ${ns}`).toEqual([]);
      expect(difference(want, got), `missing in ${ns}`).toEqual([]);
    }
  });
});

describe('chart apiPriorityAndFairness on a control plane with API Priority and Fairness on', () => {
  let cp: ControlPlane | undefined;

  afterAll(async () => {
    await cp?.stop();
  });

  it('the FlowSchema and PriorityLevelConfiguration are accepted and the ServiceAccount\'s requests are dispatched under them', async () => {
    // The shared control plane runs with --enable-priority-and-fairness=false; the later flag wins.
    cp = await startControlPlane({ apiServerArgs: ['--enable-priority-and-fairness=true'] });
    const admin = loadKubeconfig(cp.kubeconfigPath);
    const releaseNs = `kubetx-apf-${suffix()}`;
    await admin.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: releaseNs } } });
    const release = `kf-${suffix()}`;
    const r = renderChart({ release, namespace: releaseNs, values: { ...tenantSide, sharding: { enabled: true }, replicaCount: 3, apiPriorityAndFairness: { enabled: true } } });
    const name = `${release}-kubetx`;
    const kinds = new Set(['CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'FlowSchema', 'PriorityLevelConfiguration']);
    const applied = applyServerSide(cp.kubeconfigPath, yamlOf(r.objects.filter((o) => kinds.has(o.kind))));
    expect(applied.stdout).toMatch(new RegExp(`flowschema.flowcontrol.apiserver.k8s.io/${name} serverside-applied`));
    expect(applied.stdout).toMatch(new RegExp(`prioritylevelconfiguration.flowcontrol.apiserver.k8s.io/${name} serverside-applied`));

    const fc = admin.makeApiClient(k8s.FlowcontrolApiserverV1Api);
    // The API server's flow-control controller took it: the schema points at an existing level (Dangling=False).
    await eventually('FlowSchema condition Dangling=False', async () => {
      const fs = await fc.readFlowSchema({ name });
      return fs.status?.conditions?.some((c) => c.type === 'Dangling' && c.status === 'False') ? true : undefined;
    }, 30_000);
    const plc = await fc.readPriorityLevelConfiguration({ name });
    expect(plc.spec?.limited?.limitResponse?.queuing).toEqual({ queues: 64, handSize: 6, queueLengthLimit: 50 });

    const sa = loadKubeconfig((await serviceAccountKubeconfig(admin, releaseNs, name)).path);
    const dispatched = (schema: string) => {
      // /metrics of kube-apiserver is several MB: more than spawnSync's default buffer.
      const m = spawnSync(testenvKubectl(), ['--kubeconfig', cp!.kubeconfigPath, 'get', '--raw', '/metrics'], { encoding: 'utf8', maxBuffer: 256 << 20 });
      if (m.status !== 0) throw new Error(`GET /metrics: ${m.error ?? m.stderr}`);
      const family = 'apiserver_flowcontrol_dispatched_requests_total';
      return parseExposition(m.stdout.split('\n').filter((l) => l.includes(family)).join('\n'))
        .filter((s) => s.name === 'apiserver_flowcontrol_dispatched_requests_total' && s.labels.flow_schema === schema)
        .reduce((sum, s) => ({ total: sum.total + s.value, levels: [...sum.levels, s.labels.priority_level!] }), { total: 0, levels: [] as string[] });
    };
    expect(dispatched(name).total).toBe(0);

    // What a replica does: list its Leases, list the transactions. The new schema may take a moment to be in force.
    const seen = await eventually(`requests dispatched under flow_schema="${name}"`, async () => {
      await sa.makeApiClient(k8s.CoordinationV1Api).listNamespacedLease({ namespace: releaseNs, labelSelector: 'kubetx.io/shard-set=kubetx-shard' });
      await sa.makeApiClient(k8s.CustomObjectsApi).listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL });
      const d = dispatched(name);
      return d.total > 0 ? d : undefined;
    }, 30_000);
    expect(seen.total).toBeGreaterThan(0);
    expect([...new Set(seen.levels)]).toEqual([name]);

    // A request of the ServiceAccount outside the schema's rules stays with every other ServiceAccount (workload-low).
    const before = dispatched('service-accounts').total;
    await expect(sa.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: releaseNs })).rejects.toMatchObject({ code: 403 });
    expect(dispatched('service-accounts').total).toBeGreaterThan(before);

    // Cluster-scoped objects go with the control plane; delete them anyway, as a real uninstall would.
    await fc.deleteFlowSchema({ name });
    await fc.deletePriorityLevelConfiguration({ name });
  });
});

/** The API server's answer to "may I?", asked with the account's own token. */
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
