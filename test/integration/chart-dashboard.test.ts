/**
 * The chart's optional in-cluster dashboard (templates/dashboard.yaml): off by
 * default; when on, a Deployment running the dashboard entry point read-only,
 * a Service, and its own ServiceAccount whose RBAC is get/list/watch on
 * transactions and Events — no write verb anywhere.
 */
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { applyServerSide, loadKubeconfig, renderChart, serviceAccountKubeconfig, templateChart, type Rendered } from '../support/chart.js';
import { freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { permissions, type Rule } from '../support/rbac.js';

const readOnly = new Set([
  'kubetx.io/distributedtransactions:get',
  'kubetx.io/distributedtransactions:list',
  'kubetx.io/distributedtransactions:watch',
  'events.k8s.io/events:get',
  'events.k8s.io/events:list',
  'events.k8s.io/events:watch',
]);

const dashboardObjects = (r: Rendered) => r.objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'dashboard');

describe('chart: dashboard', () => {
  it('renders nothing by default', () => {
    const r = renderChart({ release: 'kx', namespace: 'kubetx-system' });
    expect(dashboardObjects(r)).toEqual([]);
  });

  it('enabled: a read-only Deployment, a Service, its own ServiceAccount bound to a read-only ClusterRole', () => {
    const r = renderChart({ release: 'kx', namespace: 'kubetx-system', values: { dashboard: { enabled: true } } });
    const kinds = dashboardObjects(r).map((o) => o.kind).sort();
    expect(kinds).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Service', 'ServiceAccount']);
    const role = r.one<{ rules: Rule[] }>('ClusterRole', 'kx-kubetx-dashboard');
    expect(permissions(role.rules)).toEqual(readOnly);
    const binding = r.one<{ roleRef: k8s.V1RoleRef; subjects: k8s.RbacV1Subject[] }>('ClusterRoleBinding', 'kx-kubetx-dashboard');
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'kx-kubetx-dashboard' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kx-kubetx-dashboard', namespace: 'kubetx-system' }]);

    const d = r.one<{ spec: k8s.V1DeploymentSpec }>('Deployment', 'kx-kubetx-dashboard');
    const pod = d.spec.template.spec!;
    expect(pod.serviceAccountName).toBe('kx-kubetx-dashboard');
    const c = pod.containers[0]!;
    expect(c.command).toEqual(['node', 'dist/src/dashboard/main.js']);
    expect(c.args).toEqual(expect.arrayContaining(['--read-only', '--address=0.0.0.0', '--port=2746']));
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
    // Its pods are not the operator's: the operator's Deployment, Service and PDB select component=operator.
    expect(d.spec.selector.matchLabels?.['app.kubernetes.io/component']).toBe('dashboard');
    const svc = r.one<{ spec: k8s.V1ServiceSpec }>('Service', 'kx-kubetx-dashboard');
    expect(svc.spec.selector).toEqual(d.spec.selector.matchLabels);
    expect(svc.spec.type).toBe('ClusterIP');

    // The ServiceAccount is bound nowhere else: no other (Cluster)RoleBinding names it.
    const others = r.objects.filter((o) => /RoleBinding$/.test(o.kind) && o.metadata.name !== 'kx-kubetx-dashboard');
    for (const b of others) {
      const subjects = (b as unknown as { subjects?: k8s.RbacV1Subject[] }).subjects ?? [];
      expect(subjects.map((s) => s.name)).not.toContain('kx-kubetx-dashboard');
    }
  });

  it('dashboard.namespace: a Role in that namespace and --namespace, no ClusterRole', () => {
    const r = renderChart({ release: 'kx', namespace: 'kubetx-system', values: { dashboard: { enabled: true, namespace: 'shop' } } });
    const kinds = dashboardObjects(r).map((o) => o.kind).sort();
    expect(kinds).toEqual(['Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
    const role = r.one<{ rules: Rule[] }>('Role', 'kx-kubetx-dashboard');
    expect(role.metadata.namespace).toBe('shop');
    expect(permissions(role.rules)).toEqual(readOnly);
    const c = r.one<{ spec: k8s.V1DeploymentSpec }>('Deployment', 'kx-kubetx-dashboard').spec.template.spec!.containers[0]!;
    expect(c.args).toContain('--namespace=shop');
  });

  it('the schema refuses unknown dashboard values', () => {
    const r = templateChart({ release: 'kx', namespace: 'kubetx-system', values: { dashboard: { enabled: true, readOnly: false } } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/readOnly|additional/i);
  });

  it('on the API server, the dashboard ServiceAccount may read transactions and Events and do nothing else', async () => {
    const kc = kubeConfig();
    const ns = await freshNamespace(kc, 'dash-rbac');
    const r = renderChart({ release: 'kx', namespace: ns, values: { dashboard: { enabled: true, namespace: ns } } });
    const rbac = dashboardObjects(r).filter((o) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind));
    applyServerSide(kubeconfigPath(), rbac.map((o) => `---\n${stringify(o)}`).join(''));
    const { path } = await serviceAccountKubeconfig(kc, ns, 'kx-kubetx-dashboard');
    const reviews = loadKubeconfig(path).makeApiClient(k8s.AuthorizationV1Api);
    const can = async (group: string, resource: string, verb: string) =>
      (await reviews.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { group, resource, verb, namespace: ns } } } })).status?.allowed === true;
    for (const verb of ['get', 'list', 'watch']) {
      expect(await can('kubetx.io', 'distributedtransactions', verb), verb).toBe(true);
      expect(await can('events.k8s.io', 'events', verb), verb).toBe(true);
    }
    for (const verb of ['create', 'update', 'patch', 'delete']) {
      expect(await can('kubetx.io', 'distributedtransactions', verb), verb).toBe(false);
      expect(await can('events.k8s.io', 'events', verb), verb).toBe(false);
    }
    expect(await can('kubetx.io', 'distributedtransactions/status', 'update')).toBe(false);
    expect(await can('', 'secrets', 'list')).toBe(false);
  });
});
