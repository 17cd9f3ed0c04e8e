/**
 * The chart's broker values (issue 21; docs/message-and-notify.md, "Broker delivery"):
 *
 * - `helm template`, broker off: the render is byte for byte what the chart
 *   renders without its broker parts (broker-rbac.yaml and the broker block of
 *   deployment.yaml cut out of a copy), whatever the other broker values say.
 * - Broker on: the container's arguments, parsed by the operator's own
 *   parseFlags, give the broker settings the values asked for, and the Role
 *   grants exactly what the operator's broker code uses, in the release
 *   namespace: create configmaps; get and update the one route ConfigMap;
 *   create events.k8s.io Events; get the named broker Secrets (no Secret rule
 *   when none is named). Missing URLs and bad values are refused naming them.
 * - On the shared control plane: the chart's ServiceAccount (a TokenRequest
 *   token), bound by the rendered Role alone, runs the operator's RouteSwitch
 *   (create, read, flip the route ConfigMap) and route Event recorder, reads the
 *   named Secrets, and can do nothing else with ConfigMaps or Secrets, at home
 *   or in another namespace.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { routeEventRecorder } from '../../src/brokers/route-events.js';
import { RouteSwitch } from '../../src/brokers/route-switch.js';
import { parseFlags } from '../../src/cmd/flags.js';
import {
  applyServerSide,
  chartDir,
  loadKubeconfig,
  operatorContainer,
  renderChart,
  serviceAccountKubeconfig,
  templateChart,
  type K8sObject,
  type Rendered,
  DEFAULT_OBJECTS,
} from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { difference, expectedOperatorRules, permissions, type Rule } from '../support/rbac.js';

const suffix = () => randomBytes(3).toString('hex');

/**
 * What the broker Role must grant, in the release namespace only
 * (src/brokers/route-switch.ts, route-events.ts, connect.ts): `create` cannot be
 * limited by name, reading and flipping the route can, and so can reading Secrets.
 */
function brokerRules(routeConfigMap: string, secrets: string[]): Rule[] {
  return [
    { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
    { apiGroups: [''], resources: ['configmaps'], resourceNames: [routeConfigMap], verbs: ['get', 'update'] },
    { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
    ...(secrets.length ? [{ apiGroups: [''], resources: ['secrets'], resourceNames: secrets, verbs: ['get'] }] : []),
  ];
}

/** The values of a complete broker install (both URLs, both Secrets, a stream); the rest are the chart's defaults. */
const brokerOn = {
  enabled: true,
  nats: { url: 'nats://nats-0.nats.svc:4222,nats://nats-1.nats.svc:4222', secret: 'nats-creds', stream: 'KUBETX_ORDERS' },
  redis: { url: 'rediss://redis-master.redis.svc:6380/2', secret: 'redis-auth' },
};

const isBrokerArg = (a: string) => /^--(nats|redis|broker)-/.test(a);
const brokerArgs = (r: Rendered) => (operatorContainer(r).args ?? []).filter(isBrokerArg);
/** The settings the operator would start with, given the pod's environment (POD_NAMESPACE from the Downward API). */
const flagsOf = (r: Rendered, namespace: string) => parseFlags(operatorContainer(r).args ?? [], { POD_NAMESPACE: namespace, POD_NAME: 'kubetx-0' });
const rolesOf = (r: Rendered) => [...r.all('Role'), ...r.all('RoleBinding')].map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort();
const yamlOf = (objects: K8sObject[]) => objects.map((o) => stringify(o)).join('---\n');

/** Rendered without the cluster-wide objects the other test files' namespaces would feel (as chart-rbac.test.ts does). */
const tenantSide = { statusGuard: { enabled: false }, tenantRoles: { enabled: false }, finalizerPolicy: { enabled: false } };

/**
 * A copy of the chart as it was before broker delivery: broker-rbac.yaml removed
 * and the `{{- if .Values.broker.enabled }}` block of deployment.yaml cut out
 * (to its matching `end`). The broker values stay, unreferenced.
 */
function chartWithoutBroker(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'kubetx-chart-')), 'kubetx');
  cpSync(chartDir, dir, { recursive: true });
  rmSync(join(dir, 'templates/broker-rbac.yaml'));
  const file = join(dir, 'templates/deployment.yaml');
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => /\{\{-?\s*if \.Values\.broker\.enabled\s*-?\}\}/.test(l));
  if (start < 0) throw new Error('deployment.yaml has no {{ if .Values.broker.enabled }} block');
  let depth = 0;
  let end = start;
  for (; end < lines.length; end++) {
    depth += (lines[end]!.match(/\{\{-?\s*(if|with|range|define|block)\b/g) ?? []).length;
    depth -= (lines[end]!.match(/\{\{-?\s*end\b/g) ?? []).length;
    if (depth === 0) break;
  }
  if (depth !== 0) throw new Error('deployment.yaml: the broker block has no matching end');
  const stripped = [...lines.slice(0, start), ...lines.slice(end + 1)].join('\n');
  if (/\.Values\.broker\b/.test(stripped)) throw new Error('deployment.yaml refers to .Values.broker outside the broker block');
  writeFileSync(file, stripped);
  return dir;
}

describe('chart: broker values', () => {
  it('broker off renders what the chart rendered without its broker parts: no broker argument, no broker Role, DEFAULT_OBJECTS; the other broker values are inert', () => {
    const before = chartWithoutBroker();
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system' });
    expect(brokerArgs(r)).toEqual([]);
    expect(flagsOf(r, 'kubetx-system').broker).toBeUndefined();
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(DEFAULT_OBJECTS);
    expect(r.objects.filter((o) => o.metadata.name.endsWith('-broker'))).toEqual([]);
    expect(r.yaml).toBe(renderChart({ release: 'kubetx', namespace: 'kubetx-system', chart: before }).yaml);

    // Every broker value changed but left off: byte for byte the default render.
    const inert = renderChart({
      release: 'kubetx',
      namespace: 'kubetx-system',
      values: {
        broker: {
          ...brokerOn,
          enabled: false,
          redis: { ...brokerOn.redis, prefix: 'other', shards: 7 },
          subjectPrefix: 'other.prefix',
          publishTimeout: '9s',
          failureThreshold: 9,
          failureWindow: '1m',
          recoverAfter: '2m',
          probeInterval: '3s',
          routeConfigMap: 'other-route',
        },
      },
    });
    expect(inert.yaml).toBe(r.yaml);

    // The same with other modes of the chart: sharded, and per-namespace RBAC.
    const values = { sharding: { enabled: true }, replicaCount: 3, watchNamespaces: ['shop'] };
    expect(renderChart({ release: 'tx', namespace: 'ops', values }).yaml).toBe(renderChart({ release: 'tx', namespace: 'ops', values, chart: before }).yaml);
  });

  it('broker.enabled: the arguments parse into the broker settings asked for, in the release namespace; the rest of the arguments are unchanged', () => {
    const off = renderChart({ release: 'kubetx', namespace: 'kubetx-system' });
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { broker: brokerOn } });
    const flags = flagsOf(r, 'kubetx-system');
    expect(flags.broker).toEqual({
      natsUrls: ['nats://nats-0.nats.svc:4222', 'nats://nats-1.nats.svc:4222'],
      natsSecret: 'nats-creds',
      natsStream: 'KUBETX_ORDERS',
      redisUrl: 'rediss://redis-master.redis.svc:6380/2',
      redisSecret: 'redis-auth',
      redisPrefix: 'kubetx',
      redisShards: 128,
      subjectPrefix: 'kubetx',
      publishTimeoutMs: 2000,
      failureThreshold: 3,
      failureWindowMs: 10_000,
      recoverAfterMs: 10_000,
      probeMs: 1000,
      routeConfigMap: 'kubetx-broker-route',
    });
    // The route ConfigMap and the Secrets are read in --leader-election-namespace: the release namespace.
    expect(flags.leaderElectionNamespace).toBe('kubetx-system');
    expect((operatorContainer(r).args ?? []).filter((a) => !isBrokerArg(a))).toEqual(operatorContainer(off).args);

    // Every other value reaches its flag.
    const custom = renderChart({
      release: 'tx',
      namespace: 'ops',
      values: {
        broker: {
          ...brokerOn,
          redis: { url: 'redis://redis.redis.svc:6379/0', prefix: 'tx.q', shards: 1024 },
          nats: { url: 'nats://nats.nats.svc:4222' },
          subjectPrefix: 'shop.tx',
          publishTimeout: '750ms',
          failureThreshold: 1000,
          failureWindow: '1m30s',
          recoverAfter: '2m',
          probeInterval: '250ms',
          routeConfigMap: 'tx-route',
        },
      },
    });
    expect(flagsOf(custom, 'ops').broker).toEqual({
      natsUrls: ['nats://nats.nats.svc:4222'],
      natsSecret: undefined,
      natsStream: undefined,
      redisUrl: 'redis://redis.redis.svc:6379/0',
      redisSecret: undefined,
      redisPrefix: 'tx.q',
      redisShards: 1024,
      subjectPrefix: 'shop.tx',
      publishTimeoutMs: 750,
      failureThreshold: 1000,
      failureWindowMs: 90_000,
      recoverAfterMs: 120_000,
      probeMs: 250,
      routeConfigMap: 'tx-route',
    });
    // No Secret or stream: no flag for them (an empty --nats-secret= would be a Secret named "").
    expect(brokerArgs(custom).filter((a) => /^--(nats-secret|redis-secret|nats-stream)/.test(a))).toEqual([]);

    // One replica without leader election passes no --leader-election-namespace: POD_NAMESPACE (the pod's own) is used.
    const single = renderChart({ release: 'kubetx', namespace: 'ops', values: { broker: brokerOn, replicaCount: 1, leaderElection: { enabled: false } } });
    expect((operatorContainer(single).args ?? []).some((a) => a.startsWith('--leader-election-namespace'))).toBe(false);
    expect(operatorContainer(single).env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(flagsOf(single, 'ops')).toMatchObject({ leaderElectionNamespace: 'ops', broker: { routeConfigMap: 'kubetx-broker-route' } });
    // Sharded replicas: the same broker settings, the same namespace.
    const sharded = renderChart({ release: 'kubetx', namespace: 'ops', values: { broker: brokerOn, sharding: { enabled: true }, replicaCount: 3 } });
    expect(flagsOf(sharded, 'ops')).toMatchObject({ leaderElectionNamespace: 'ops', shards: 16, broker: flags.broker });
  });

  it('broker.enabled: a Role in the release namespace with exactly the broker rules, bound to the ServiceAccount; the ClusterRole unchanged', () => {
    const r = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { broker: brokerOn } });
    const flags = flagsOf(r, 'kubetx-system').broker!;
    expect(rolesOf(r)).toEqual([
      'Role/kubetx-system/kubetx-broker',
      'Role/kubetx-system/kubetx-leader-election',
      'RoleBinding/kubetx-system/kubetx-broker',
      'RoleBinding/kubetx-system/kubetx-leader-election',
    ]);
    const role = r.one<{ rules: Rule[] }>('Role', 'kubetx-broker');
    // The names in the Role are the ones the operator is told to use.
    const want = permissions(brokerRules(flags.routeConfigMap, [flags.natsSecret!, flags.redisSecret!]));
    expect([...permissions(role.rules)].sort()).toEqual([...want].sort());
    expect([...want].sort()).toEqual([
      '/configmaps:create',
      '/configmaps:get@kubetx-broker-route',
      '/configmaps:update@kubetx-broker-route',
      '/secrets:get@nats-creds',
      '/secrets:get@redis-auth',
      'events.k8s.io/events:create',
    ]);
    const binding = r.one<{ roleRef: k8s.V1RoleRef; subjects: k8s.RbacV1Subject[] }>('RoleBinding', 'kubetx-broker');
    expect(binding.metadata.namespace).toBe('kubetx-system');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubetx-broker' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kubetx', namespace: 'kubetx-system' }]);
    const clusterRole = permissions(r.one<{ rules: Rule[] }>('ClusterRole', 'kubetx').rules);
    const operator = permissions(expectedOperatorRules({ readSecrets: false }));
    expect(difference(clusterRole, operator)).toEqual([]);
    expect(difference(operator, clusterRole)).toEqual([]);

    // No Secret named: no Secret rule at all; one named: that one only. A renamed route ConfigMap moves its rule.
    const rulesWith = (nats: Record<string, string>, redis: Record<string, string>, routeConfigMap?: string) =>
      [...permissions(renderChart({ release: 'kubetx', namespace: 'x', values: { broker: { ...brokerOn, nats, redis, ...(routeConfigMap ? { routeConfigMap } : {}) } } }).one<{ rules: Rule[] }>('Role', 'kubetx-broker').rules)].sort();
    expect(rulesWith({ url: brokerOn.nats.url }, { url: brokerOn.redis.url })).toEqual([...permissions(brokerRules('kubetx-broker-route', []))].sort());
    expect(rulesWith({ url: brokerOn.nats.url, secret: '' }, { url: brokerOn.redis.url, secret: 'redis-auth' })).toEqual([...permissions(brokerRules('kubetx-broker-route', ['redis-auth']))].sort());
    expect(rulesWith({ url: brokerOn.nats.url, secret: 'nats-creds' }, { url: brokerOn.redis.url }, 'tx-route')).toEqual([...permissions(brokerRules('tx-route', ['nats-creds']))].sort());

    // With watchNamespaces the broker Role stays in the release namespace; sharded, it sits next to the shard Role.
    const watched = renderChart({ release: 'kubetx', namespace: 'kubetx-system', values: { broker: brokerOn, watchNamespaces: ['shop'] } });
    expect(rolesOf(watched).filter((n) => n.includes('broker'))).toEqual(['Role/kubetx-system/kubetx-broker', 'RoleBinding/kubetx-system/kubetx-broker']);
    const sharded = renderChart({ release: 'tx', namespace: 'ops', values: { broker: brokerOn, sharding: { enabled: true } } });
    expect(rolesOf(sharded)).toEqual(['Role/ops/tx-kubetx-broker', 'Role/ops/tx-kubetx-shards', 'RoleBinding/ops/tx-kubetx-broker', 'RoleBinding/ops/tx-kubetx-shards']);
    // rbac.create=false: no broker Role either.
    expect(renderChart({ release: 'kubetx', namespace: 'x', values: { broker: brokerOn, rbac: { create: false } } }).all('Role')).toEqual([]);
  });

  // Each bad value fails the render, and the message names it.
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['broker.enabled without any URL', { broker: { enabled: true } }, /broker.enabled needs broker.nats.url and broker.redis.url/],
    ['broker.enabled without broker.redis.url', { broker: { enabled: true, nats: { url: 'nats://n:4222' } } }, /broker.enabled needs broker.nats.url and broker.redis.url/],
    ['broker.enabled without broker.nats.url', { broker: { enabled: true, redis: { url: 'redis://r:6379' } } }, /broker.enabled needs broker.nats.url and broker.redis.url/],
    ['broker.redis.shards: 0', { broker: { ...brokerOn, redis: { ...brokerOn.redis, shards: 0 } } }, /at '\/broker\/redis\/shards': minimum: got 0, want 1/],
    ['broker.redis.shards: 2000', { broker: { redis: { shards: 2000 } } }, /at '\/broker\/redis\/shards': maximum: got 2,000, want 1,024/],
    ['broker.subjectPrefix with a * wildcard', { broker: { ...brokerOn, subjectPrefix: 'kubetx.*' } }, /at '\/broker\/subjectPrefix': 'kubetx\.\*' does not match pattern/],
    ['broker.subjectPrefix with a > wildcard', { broker: { subjectPrefix: 'kubetx.>' } }, /at '\/broker\/subjectPrefix': 'kubetx\.>' does not match pattern/],
    ['broker.subjectPrefix ending in a dot', { broker: { subjectPrefix: 'kubetx.' } }, /at '\/broker\/subjectPrefix': 'kubetx\.' does not match pattern/],
    ['broker.nats.stream with a dot', { broker: { ...brokerOn, nats: { ...brokerOn.nats, stream: 'ORDERS.v2' } } }, /at '\/broker\/nats\/stream': 'ORDERS\.v2' does not match pattern/],
    ['broker.redis.prefix with a space', { broker: { redis: { prefix: 'kube tx' } } }, /at '\/broker\/redis\/prefix': 'kube tx' does not match pattern/],
    ['broker.failureThreshold: 0', { broker: { failureThreshold: 0 } }, /at '\/broker\/failureThreshold': minimum: got 0, want 1/],
    ['broker.routeConfigMap: ""', { broker: { routeConfigMap: '' } }, /at '\/broker\/routeConfigMap': minLength: got 0, want 1/],
    ['broker.enabled: "yes"', { broker: { enabled: 'yes' } }, /at '\/broker\/enabled': got string, want boolean/],
    ['broker.publishTimeout: "soon"', { broker: { publishTimeout: 'soon' } }, /at '\/broker\/publishTimeout'/],
    ['broker.nats.secret: "Bad_Name"', { broker: { nats: { secret: 'Bad_Name' } } }, /at '\/broker\/nats\/secret': 'Bad_Name' does not match pattern/],
    ['broker.nats.url: "http://nats"', { broker: { nats: { url: 'http://nats' } } }, /at '\/broker\/nats\/url': 'http:\/\/nats' does not match pattern/],
    ['broker.redis.url: "nats://r"', { broker: { redis: { url: 'nats://r' } } }, /at '\/broker\/redis\/url': 'nats:\/\/r' does not match pattern/],
    ['a misspelt broker key', { broker: { natsUrl: 'nats://n:4222' } }, /at '\/broker': additional properties 'natsUrl' not allowed/],
    ['a misspelt broker.nats key', { broker: { nats: { urls: 'nats://n:4222' } } }, /at '\/broker\/nats': additional properties 'urls' not allowed/],
  ])('rejects %s, naming the value', (_, values, message) => {
    const r = templateChart({ release: 'kubetx', namespace: 'x', values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

describe('chart broker on the real API server: the broker Role', () => {
  const admin = kubeConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const logger = pino({ level: 'silent' });
  let releaseNs: string;
  let otherNs: string;
  let sa: k8s.KubeConfig;
  let baseline: k8s.KubeConfig;
  let routeSwitch: RouteSwitch | undefined;
  const route = 'kubetx-broker-route';

  beforeAll(async () => {
    releaseNs = await freshNamespace(admin, 'kubetx-broker');
    otherNs = await freshNamespace(admin, 'broker-other');
    const release = `kb-${suffix()}`;
    const r = renderChart({ release, namespace: releaseNs, values: { ...tenantSide, broker: brokerOn } });
    // The broker Role and its binding alone (no ClusterRole, no Lease Role): what follows is what they grant.
    const objs = r.objects.filter((o) => o.kind === 'ServiceAccount' || ((o.kind === 'Role' || o.kind === 'RoleBinding') && o.metadata.name === `${release}-kubetx-broker`));
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([`Role/${release}-kubetx-broker`, `RoleBinding/${release}-kubetx-broker`, `ServiceAccount/${release}-kubetx`]);
    applyServerSide(kubeconfigPath(), yamlOf(objs));
    for (const [name, data] of [
      ['nats-creds', { token: 'nats-token' }],
      ['redis-auth', { username: 'kubetx', password: 'redis-pass' }],
      ['unrelated', { password: 'not yours' }],
    ] as const) {
      await core.createNamespacedSecret({ namespace: releaseNs, body: { metadata: { name }, stringData: data } });
    }
    await core.createNamespacedConfigMap({ namespace: releaseNs, body: { metadata: { name: 'unrelated' }, data: { k: 'v' } } });
    await core.createNamespacedConfigMap({ namespace: otherNs, body: { metadata: { name: route }, data: { route: 'nats' } } });
    await core.createNamespacedSecret({ namespace: otherNs, body: { metadata: { name: 'nats-creds' }, stringData: { token: 'theirs' } } });
    sa = loadKubeconfig((await serviceAccountKubeconfig(admin, releaseNs, `${release}-kubetx`)).path);
    const nobody = `nobody-${suffix()}`;
    await core.createNamespacedServiceAccount({ namespace: releaseNs, body: { metadata: { name: nobody } } });
    baseline = loadKubeconfig((await serviceAccountKubeconfig(admin, releaseNs, nobody)).path);
  });

  afterAll(() => routeSwitch?.stop());

  it('the ServiceAccount runs the operator\'s route switch (creates, reads and flips the route ConfigMap), records its route Event, and reads the named Secrets', async () => {
    // The operator's own code, as the ServiceAccount: the first start creates the ConfigMap (read 404 → create).
    routeSwitch = new RouteSwitch({ kubeConfig: sa, namespace: releaseNs, name: route, identity: 'kubetx-0', pollMs: 60_000, logger });
    expect((await routeSwitch.start()).route).toBe('nats');
    // A failover replaces it (with the resourceVersion it read), and the flip's Event is written.
    const failed = await routeSwitch.flip('redis', { reason: 'PublishFailing', message: 'chart-broker test', expect: 'nats' });
    expect(failed).toMatchObject({ flipped: true, state: { route: 'redis', changedBy: 'kubetx-0' } });
    const warnings: string[] = [];
    const record = routeEventRecorder({ kubeConfig: sa, namespace: releaseNs, configMap: route, identity: 'kubetx-0', logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }) });
    record('nats', 'redis', failed.state);
    const events = admin.makeApiClient(k8s.EventsV1Api);
    // Written, or refused (the recorder logs a refusal as a warning): whichever comes first.
    const event = await eventually('the BrokerFailover Event', async () =>
      warnings.length ? null : (await events.listNamespacedEvent({ namespace: releaseNs })).items.find((e) => e.reason === 'BrokerFailover'),
    30_000);
    expect(warnings).toEqual([]);
    expect(event).toMatchObject({ type: 'Warning', regarding: { kind: 'ConfigMap', name: route, namespace: releaseNs } });
    // Read back by the admin: the ServiceAccount's writes landed.
    expect((await core.readNamespacedConfigMap({ name: route, namespace: releaseNs })).data).toMatchObject({ route: 'redis', reason: 'PublishFailing' });
    // Recovery: another replace.
    expect((await routeSwitch.flip('nats', { reason: 'BrokerHealthy', expect: 'redis' })).flipped).toBe(true);

    // The named Secrets, as connect.ts reads them.
    const saCore = sa.makeApiClient(k8s.CoreV1Api);
    expect(Buffer.from((await saCore.readNamespacedSecret({ name: 'nats-creds', namespace: releaseNs })).data!.token!, 'base64').toString()).toBe('nats-token');
    expect((await saCore.readNamespacedSecret({ name: 'redis-auth', namespace: releaseNs })).data).toHaveProperty('password');
  });

  it('and cannot read another Secret, change another ConfigMap, list, patch or delete, nor touch ConfigMaps, Secrets or Events in another namespace', async () => {
    const saCore = sa.makeApiClient(k8s.CoreV1Api);
    const forbidden = { code: 403 };
    // At home: other Secrets and ConfigMaps, lists, and verbs the operator does not use.
    await expect(saCore.readNamespacedSecret({ name: 'unrelated', namespace: releaseNs })).rejects.toMatchObject(forbidden);
    await expect(saCore.listNamespacedSecret({ namespace: releaseNs })).rejects.toMatchObject(forbidden);
    await expect(saCore.readNamespacedConfigMap({ name: 'unrelated', namespace: releaseNs })).rejects.toMatchObject(forbidden);
    const unrelated = await core.readNamespacedConfigMap({ name: 'unrelated', namespace: releaseNs });
    await expect(saCore.replaceNamespacedConfigMap({ name: 'unrelated', namespace: releaseNs, body: { ...unrelated, data: { k: 'changed' } } })).rejects.toMatchObject(forbidden);
    await expect(saCore.deleteNamespacedConfigMap({ name: 'unrelated', namespace: releaseNs })).rejects.toMatchObject(forbidden);
    await expect(saCore.listNamespacedConfigMap({ namespace: releaseNs })).rejects.toMatchObject(forbidden);
    await expect(saCore.deleteNamespacedConfigMap({ name: route, namespace: releaseNs })).rejects.toMatchObject(forbidden);
    await expect(saCore.patchNamespacedConfigMap({ name: route, namespace: releaseNs, body: [{ op: 'replace', path: '/data/route', value: 'redis' }] })).rejects.toMatchObject(forbidden);
    expect((await core.readNamespacedConfigMap({ name: 'unrelated', namespace: releaseNs })).data).toEqual({ k: 'v' });

    // Another namespace: not even the ConfigMap and Secret of the same names.
    await expect(saCore.readNamespacedConfigMap({ name: route, namespace: otherNs })).rejects.toMatchObject(forbidden);
    const theirs = await core.readNamespacedConfigMap({ name: route, namespace: otherNs });
    await expect(saCore.replaceNamespacedConfigMap({ name: route, namespace: otherNs, body: { ...theirs, data: { route: 'redis' } } })).rejects.toMatchObject(forbidden);
    await expect(saCore.createNamespacedConfigMap({ namespace: otherNs, body: { metadata: { name: `x-${suffix()}` } } })).rejects.toMatchObject(forbidden);
    await expect(saCore.readNamespacedSecret({ name: 'nats-creds', namespace: otherNs })).rejects.toMatchObject(forbidden);
    const other = new RouteSwitch({ kubeConfig: sa, namespace: otherNs, name: `kubetx-broker-route-${suffix()}`, identity: 'kubetx-0', logger });
    await expect(other.refresh()).rejects.toMatchObject(forbidden);
    await expect(
      sa.makeApiClient(k8s.EventsV1Api).createNamespacedEvent({
        namespace: otherNs,
        body: { metadata: { name: `${route}.${suffix()}` }, eventTime: new k8s.V1MicroTime(Date.now()), reportingController: 'kubetx.io/operator', reportingInstance: 'kubetx-0', action: 'x', reason: 'BrokerFailover', type: 'Warning' },
      }),
    ).rejects.toMatchObject(forbidden);

    // The API server's view, minus what any account has: exactly the broker rules at home, nothing elsewhere.
    const effective = async (kc: k8s.KubeConfig, namespace: string) => {
      const r = await kc.makeApiClient(k8s.AuthorizationV1Api).createSelfSubjectRulesReview({ body: { spec: { namespace } } });
      expect(r.status?.incomplete, r.status?.evaluationError).toBe(false);
      return permissions(r.status?.resourceRules ?? []);
    };
    for (const [ns, want] of [
      [releaseNs, permissions(brokerRules(route, ['nats-creds', 'redis-auth']))],
      [otherNs, new Set<string>()],
    ] as const) {
      const got = new Set(difference(await effective(sa, ns), await effective(baseline, ns)));
      expect(difference(got, want), `extra in ${ns}`).toEqual([]);
      expect(difference(want, got), `missing in ${ns}`).toEqual([]);
    }
  });
});
