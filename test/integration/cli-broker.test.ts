/**
 * kubectl dtx broker status|failover|recover against the real API server, run
 * as a child process the way a user runs it: the route ConfigMap before it
 * exists (status does not create it), a manual failover that a RouteSwitch on
 * the same ConfigMap sees and that refuses automatic flips, idempotent
 * repeats, recover --auto (manual flag cleared, route kept), recover (nats
 * now, manual, with the per-key order warning), -o json, usage errors,
 * forbidden users, completion.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RouteSwitch } from '../../src/brokers/route-switch.js';
import { serviceAccountKubeconfig } from '../support/chart.js';
import { runEntry } from '../support/cli.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';

const CM = 'kubetx-broker-route';

let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let ns: string;
let rs: RouteSwitch | undefined;

const exec = (entry: string, args: string[], kubeconfig = kubeconfigPath()) => runEntry(entry, args, kubeconfig);
const dtx = (...args: string[]) => exec('src/cli/kubectl-dtx.ts', args);
const broker = (...args: string[]) => dtx('broker', ...args, '-n', ns);
const configMap = () => core.readNamespacedConfigMap({ name: CM, namespace: ns });

beforeAll(async () => {
  kc = kubeConfig();
  core = kc.makeApiClient(k8s.CoreV1Api);
  ns = await freshNamespace(kc, 'cli-broker');
});

afterAll(() => rs?.stop());

// The cases build on each other, in order: one route ConfigMap in `ns`.
describe('kubectl dtx broker', () => {
  it('status before the ConfigMap exists: broker delivery has not run yet, route nats, nothing created', async () => {
    const r = await broker('status');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Broker delivery has not run yet: no ConfigMap ${ns}/${CM}\\. The route is nats by default`));
    const json = await broker('status', '-o', 'json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ namespace: ns, configMap: CM, exists: false, route: 'nats', manual: false, reason: null, message: null, since: null, changedBy: null });
    await expect(configMap()).rejects.toMatchObject({ code: 404 });
  });

  it('failover: redis, manual, seen by a RouteSwitch on the same ConfigMap, which then refuses automatic flips', async () => {
    const r = await broker('failover', '--reason', 'NATS cluster upgrade');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/route nats \(default, no ConfigMap yet\) → redis, automatic → manual \(ManualFailover, by .+\)/);
    const data = (await configMap()).data ?? {};
    expect(data).toMatchObject({ route: 'redis', manual: 'true', reason: 'ManualFailover', message: 'NATS cluster upgrade' });
    expect(data.changedBy).toBeTruthy();
    expect(Date.parse(data.since ?? '')).not.toBeNaN();

    rs = new RouteSwitch({ kubeConfig: kc, namespace: ns, name: CM, identity: 'kubetx-test-0', pollMs: 100 });
    const seen = await rs.start();
    expect(seen).toMatchObject({ route: 'redis', manual: true, reason: 'ManualFailover', changedBy: data.changedBy });
    // What the router's recovery would do once NATS is healthy: refused while manual.
    const auto = await rs.flip('nats', { reason: 'NatsRecovered', expect: 'redis' });
    expect(auto).toMatchObject({ flipped: false, refused: 'Manual' });
    expect((await configMap()).data?.route).toBe('redis');
  });

  it('failover again: already redis (manual), nothing written, exit 0', async () => {
    const before = (await configMap()).metadata?.resourceVersion;
    const r = await broker('failover');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`The broker route ${ns}/${CM} is already redis and manual \\(redis for \\d+s; last changed by .+, ManualFailover\\): nothing changed\\.`));
    expect((await configMap()).metadata?.resourceVersion).toBe(before);
  });

  it('status: a table of route, manual, reason, since, changedBy and message', async () => {
    const r = await broker('status');
    expect(r.code, r.stderr).toBe(0);
    const [head, row, ...rest] = r.stdout.trimEnd().split('\n');
    expect(head).toMatch(/^ROUTE\s+MANUAL\s+REASON\s+SINCE\s+CHANGED BY\s+MESSAGE$/);
    expect(row).toMatch(/^redis\s+true\s+ManualFailover\s+\d+s\s+\S+\s+NATS cluster upgrade$/);
    expect(rest).toEqual([]);
    const yaml = await broker('status', '-o', 'yaml');
    expect(yaml.code, yaml.stderr).toBe(0);
    expect(k8s.loadYaml(yaml.stdout)).toMatchObject({ exists: true, route: 'redis', manual: true });
  });

  it('recover --auto: clears the manual flag only, the route stays redis for the operator to bring back', async () => {
    const bad = await broker('recover', '--auto', '--reason', 'x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--reason is not recorded/);

    const r = await broker('recover', '--auto');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/manual → automatic, route stays redis\. The operator switches back to nats once NATS has been healthy/);
    expect(r.stderr).toBe('');
    const data = (await configMap()).data ?? {};
    expect(data).toMatchObject({ route: 'redis', reason: 'ManualCleared' });
    expect(data.manual).toBeUndefined();
    await eventually('the RouteSwitch to see the manual flag cleared', async () => (rs!.current().manual ? undefined : true));
    expect(rs!.current().route).toBe('redis');

    const again = await broker('recover', '--auto');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/is redis and already automatic: nothing changed/);
  });

  it('recover: nats now, manual, with the per-key order warning; again: nothing changed', async () => {
    const r = await broker('recover', '--reason', 'Redis is empty, checked by hand', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      namespace: ns,
      configMap: CM,
      exists: true,
      route: 'nats',
      manual: true,
      reason: 'ManualRecover',
      message: 'Redis is empty, checked by hand',
      changed: true,
      previous: { route: 'redis', manual: false },
    });
    expect(r.stderr).toMatch(/per-key order can break/);
    expect(r.stderr).toMatch(/kubectl dtx broker recover --auto/);
    expect(r.stderr).toMatch(/pinned to nats \(manual\)/);
    expect((await configMap()).data).toMatchObject({ route: 'nats', manual: 'true', reason: 'ManualRecover' });
    await eventually('the RouteSwitch to see nats', async () => (rs!.current().route === 'nats' && rs!.current().manual ? true : undefined));
    // An automatic failover (what the router does on NATS failures) is refused while manual.
    expect(await rs!.flip('redis', { reason: 'NatsUnavailable', expect: 'nats' })).toMatchObject({ flipped: false, refused: 'Manual' });

    const again = await broker('recover');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/is already nats and manual \(nats for .*ManualRecover\): nothing changed/);
    expect(again.stderr).toBe('');

    const status = await broker('status', '-o', 'json');
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ exists: true, route: 'nats', manual: true, reason: 'ManualRecover' });
  });

  it('--route-configmap names another ConfigMap', async () => {
    const other = await broker('status', '--route-configmap', 'my-route');
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toMatch(new RegExp(`no ConfigMap ${ns}/my-route`));
    const r = await broker('failover', '--route-configmap', 'my-route', '-o', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ configMap: 'my-route', route: 'redis', manual: true, changed: true, previous: { exists: false } });
    expect((await core.readNamespacedConfigMap({ name: 'my-route', namespace: ns })).data).toMatchObject({ route: 'redis', manual: 'true' });
    expect((await configMap()).data?.route).toBe('nats');
  });

  it('usage errors: unknown or missing subcommand, --auto elsewhere, bad -o: exit 2 with the usage', async () => {
    for (const args of [['frobnicate'], [], ['status', 'extra'], ['failover', '--auto'], ['status', '-o', 'wide']]) {
      const r = await broker(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/usage: kubectl dtx broker status/);
      expect(r.stderr).toMatch(/kubectl dtx broker recover --auto/);
    }
    expect((await broker('frobnicate')).stderr).toMatch(/^error: broker: unknown subcommand "frobnicate" \(status, failover, recover\)/);
    const help = await dtx('--help');
    expect(help.stdout).toMatch(/kubectl dtx broker recover \[--reason TEXT\]\s+\(forces nats now: breaks per-key order/);
  });

  it('forbidden: the error as kubectl prints it, then the configmaps permissions needed and missing', async () => {
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'route-reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'route-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'route-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
      },
    });
    const nobody = (await serviceAccountKubeconfig(kc, ns, 'nobody')).path;
    const reader = (await serviceAccountKubeconfig(kc, ns, 'reader')).path;
    const as = (path: string, ...args: string[]) => exec('src/cli/kubectl-dtx.ts', ['broker', ...args, '-n', ns], path);

    const denied = await as(nobody, 'status');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(new RegExp(`^Error from server \\(Forbidden\\): configmaps "${CM}" is forbidden: User "system:serviceaccount:${ns}:nobody" cannot get resource "configmaps"`));
    expect(denied.stderr).toMatch(new RegExp(`error: kubectl dtx broker status needs get on configmaps "${CM}" in namespace ${ns}; missing: get`));

    await eventually('the Role to apply', async () => ((await as(reader, 'status')).code === 0 ? true : undefined));
    const before = (await configMap()).metadata?.resourceVersion;
    const r = await as(reader, 'failover');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error from server \(Forbidden\): configmaps "kubetx-broker-route" is forbidden: .* cannot update resource "configmaps"/);
    expect(r.stderr).toMatch(new RegExp(`needs get, update and create on configmaps "${CM}" in namespace ${ns} \\(create only while it does not exist yet\\); missing: update and create`));
    const auto = await as(reader, 'recover', '--auto');
    expect(auto.code).toBe(1);
    expect(auto.stderr).toMatch(/broker recover --auto needs get and update on configmaps .*; missing: update/);
    expect((await configMap()).metadata?.resourceVersion).toBe(before);
  });

  it('completion: the subcommands after broker', async () => {
    const r = await exec('src/cli/kubectl_complete-dtx.ts', ['broker', '-n', ns, '']);
    expect(r.stdout).toBe('status\nfailover\nrecover\n:4\n');
    expect((await exec('src/cli/kubectl_complete-dtx.ts', ['br'])).stdout).toBe('broker\n:4\n');
    expect((await exec('src/cli/kubectl_complete-dtx.ts', ['broker', 'status', ''])).stdout).toBe(':4\n');
    const bash = await dtx('completion', 'bash');
    expect(bash.stdout).toContain('broker) COMPREPLY=($(compgen -W "status failover recover" -- "$cur"))');
  });
});
