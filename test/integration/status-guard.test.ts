/**
 * The chart's tenant roles and status guard on the real control plane: a
 * tenant whose Role grants resources ["*"] on kubetx.io (so the status
 * subresource too) cannot write a transaction's status — the
 * ValidatingAdmissionPolicy refuses it, naming the rule — while the
 * operator's ServiceAccount can; and a user bound to the chart's edit role can
 * create a transaction but not write its status.
 *
 * The policy is cluster-wide; so as not to touch the other test files sharing
 * this control plane, the test binds it to its own namespace only
 * (spec.matchResources), which is the one change made to the rendered objects.
 * The test control plane runs no kube-controller-manager, so ClusterRole
 * aggregation (into the built-in edit) never happens here: the test checks the
 * aggregation labels and binds <fullname>-edit directly.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyServerSide, loadKubeconfig, renderChart, serviceAccountKubeconfig, type K8sObject } from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { refusal } from '../support/refusal.js';

const group = 'kubetx.io';
const version = 'v1alpha1';
const plural = 'distributedtransactions';
const release = `guard-${randomBytes(3).toString('hex')}`;
const fullname = `${release}-kubetx`;

const admin = kubeConfig();
const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
const core = admin.makeApiClient(k8s.CoreV1Api);
let operatorNs: string;
let tenantNs: string;
let applied: K8sObject[] = [];

function tx(name: string): object {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: tenantNs },
    spec: { mode: 'TCC', branches: [{ name: 'a', endpoint: { service: { name: 'a', port: 50051 } } }] },
  };
}

/** A forged status: Committed while the branch is still Trying. */
const forged = { phase: 'Committed', decision: 'Confirm', branches: [{ name: 'a', state: 'Trying', attempts: 1 }] };
const honest = { phase: 'Trying', branches: [{ name: 'a', state: 'Trying', attempts: 1 }] };

function writeStatus(kc: k8s.KubeConfig, name: string, status: object) {
  return kc.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObjectStatus(
    { group, version, namespace: tenantNs, plural, name, body: { status } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

async function saClient(name: string, roleRef: k8s.V1RoleRef, rules?: k8s.V1PolicyRule[]): Promise<k8s.KubeConfig> {
  await core.createNamespacedServiceAccount({ namespace: tenantNs, body: { metadata: { name } } });
  if (rules) await rbac.createNamespacedRole({ namespace: tenantNs, body: { metadata: { name }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace: tenantNs,
    body: { metadata: { name }, roleRef, subjects: [{ kind: 'ServiceAccount', name, namespace: tenantNs }] },
  });
  return loadKubeconfig((await serviceAccountKubeconfig(admin, tenantNs, name)).path);
}

beforeAll(async () => {
  operatorNs = await freshNamespace(admin, 'guard-op');
  tenantNs = await freshNamespace(admin, 'guard-tenant');
  const r = renderChart({ release, namespace: operatorNs });
  const binding = r.one<{ spec: Record<string, unknown> }>('ValidatingAdmissionPolicyBinding', `${fullname}-status-guard`);
  binding.spec.matchResources = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': tenantNs } } };
  applied = [r.one('ServiceAccount'), ...r.all('ClusterRole').filter((o) => o.metadata.name !== fullname), r.one('ValidatingAdmissionPolicy', `${fullname}-status-guard`), binding];
  applyServerSide(kubeconfigPath(), applied.map((o) => stringify(o)).join('---\n'));
}, 60_000);

afterAll(async () => {
  const adm = admin.makeApiClient(k8s.AdmissionregistrationV1Api);
  await adm.deleteValidatingAdmissionPolicyBinding({ name: `${fullname}-status-guard` }).catch(() => undefined);
  await adm.deleteValidatingAdmissionPolicy({ name: `${fullname}-status-guard` }).catch(() => undefined);
  for (const suffix of ['view', 'edit']) await rbac.deleteClusterRole({ name: `${fullname}-${suffix}` }).catch(() => undefined);
});

describe('chart: tenant roles', () => {
  it('renders <fullname>-view and -edit aggregated into view/edit/admin, neither granting distributedtransactions/status', () => {
    const roles = renderChart({ release, namespace: 'x' }).all<{ rules: k8s.V1PolicyRule[] }>('ClusterRole');
    const view = roles.find((o) => o.metadata.name === `${fullname}-view`)!;
    const edit = roles.find((o) => o.metadata.name === `${fullname}-edit`)!;
    expect(view.metadata.labels).toMatchObject({ 'rbac.authorization.k8s.io/aggregate-to-view': 'true' });
    expect(edit.metadata.labels).toMatchObject({ 'rbac.authorization.k8s.io/aggregate-to-edit': 'true', 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' });
    expect(edit.rules.flatMap((x) => x.verbs)).toEqual(expect.arrayContaining(['create', 'update', 'patch', 'delete']));
    for (const role of [view, edit]) expect(role.rules.flatMap((x) => x.resources)).toEqual(['distributedtransactions']);
    const off = renderChart({ release, namespace: 'x', values: { tenantRoles: { enabled: false }, statusGuard: { enabled: false } } });
    expect(off.objects.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy')).map((o) => o.metadata.name)).toEqual([`${fullname}-spec-guard`, `${fullname}-spec-guard`]);
    expect(off.all('ClusterRole').map((o) => o.metadata.name)).toEqual([fullname]);
  });
});

describe('status guard (ValidatingAdmissionPolicy) on the real API server', () => {
  it('refuses a status write by a tenant whose Role grants resources ["*"]; the operator ServiceAccount may write it', async () => {
    const tenant = await saClient('tenant', { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant' }, [
      { apiGroups: [group], resources: ['*'], verbs: ['*'] },
    ]);
    const tenantApi = tenant.makeApiClient(k8s.CustomObjectsApi);
    await tenantApi.createNamespacedCustomObject({ group, version, namespace: tenantNs, plural, body: tx('forgery') });
    // The policy takes effect once the API server's admission informer has seen it: wait on the refusal itself.
    const refused = await eventually('the status guard to refuse the tenant', async () => {
      try {
        await writeStatus(tenant, 'forgery', honest);
        return undefined;
      } catch (err) {
        return err as { code?: number; body?: unknown };
      }
    });
    expect(refused.code, JSON.stringify(refused.body)).toBe(403);
    const message = (typeof refused.body === 'string' ? JSON.parse(refused.body) : refused.body).message as string;
    expect(message).toContain(`${fullname}-status-guard`);
    expect(message).toContain(`system:serviceaccount:${operatorNs}:${fullname}`);
    expect(message).toContain(`system:serviceaccount:${tenantNs}:tenant`);
    // The forged Committed is refused too (by the guard here; by the CRD's status rules where the guard is off).
    // Schema validation (the CRD's status rules, 422) runs before validating admission (the guard, 403): either refuses it.
    expect([403, 422]).toContain((await refusal(writeStatus(tenant, 'forgery', forged))).code);

    // The operator's ServiceAccount (given status rights by a test Role; the chart's ClusterRole is not installed here).
    await rbac.createNamespacedRole({
      namespace: tenantNs,
      body: { metadata: { name: 'operator-status' }, rules: [{ apiGroups: [group], resources: ['distributedtransactions/status'], verbs: ['patch', 'update'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: tenantNs,
      body: {
        metadata: { name: 'operator-status' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'operator-status' },
        subjects: [{ kind: 'ServiceAccount', name: fullname, namespace: operatorNs }],
      },
    });
    const operator = loadKubeconfig((await serviceAccountKubeconfig(admin, operatorNs, fullname)).path);
    const written = await eventually('the operator SA to write status', async () => (await writeStatus(operator, 'forgery', honest).catch(() => undefined)) as { status?: { phase?: string } } | undefined);
    expect(written.status?.phase).toBe('Trying');
  });

  it('a ServiceAccount bound to <fullname>-edit creates a transaction but cannot write its status', async () => {
    const editor = await saClient('editor', { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${fullname}-edit` });
    const api = editor.makeApiClient(k8s.CustomObjectsApi);
    await eventually('the edit role to allow create', () => api.createNamespacedCustomObject({ group, version, namespace: tenantNs, plural, body: tx('edited') }));
    const r = await refusal(writeStatus(editor, 'edited', honest));
    expect(r.code).toBe(403);
    expect(r.message).toContain('distributedtransactions/status');
  });
});
