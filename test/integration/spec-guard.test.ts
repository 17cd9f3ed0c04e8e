/**
 * The chart's spec guard (templates/spec-guard.yaml) on a control plane of its
 * own, installed as the chart installs it: the CRD without its spec transition
 * rules, and the ValidatingAdmissionPolicy that carries them on UPDATE of the
 * main resource only.
 *
 * - Rendering: the CRD is crds/'s less exactly the transition rules of spec
 *   and spec.message, and the policy has one validation per removed rule, with
 *   its message; with specGuard.enabled=false the CRD is crds/'s unchanged.
 * - Every update the bad-input catalogue refuses (test/bad-input, `expect:
 *   apiserver-update`) is refused here too, HTTP 422, naming the field, with
 *   the stored object untouched; the valid edits before it (setting
 *   spec.message.decision once) pass.
 * - The point of it: status writes are outside the policy's match (a
 *   tripwire policy with the same match refuses every main-resource update in
 *   its namespace and no status write), and metadata-only updates (labels,
 *   finalizers) pass the guard.
 *
 * Its own control plane because the shared one has crds/ installed, with the
 * rules this CRD leaves out.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ofKind, refusedOnUpdate, type Obj } from '../support/bad-input.js';
import { applyServerSide, loadKubeconfig, renderChart, type K8sObject } from '../support/chart.js';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually, freshNamespace } from '../support/env.js';
import { refusal } from '../support/refusal.js';
import { repoRoot } from '../support/testenv-paths.js';

const group = 'kubetx.io';
const version = 'v1alpha1';
const plural = 'distributedtransactions';
const release = `spec-${randomBytes(3).toString('hex')}`;
const policyName = `${release}-kubetx-spec-guard`;

interface Rule {
  rule: string;
  message?: string;
  optionalOldSelf?: boolean;
}
interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  'x-kubernetes-validations'?: Rule[];
}
interface Crd {
  spec: { versions: Array<{ schema: { openAPIV3Schema: SchemaNode } }> };
}
interface Policy {
  spec: { matchConstraints: { resourceRules: Array<{ resources: string[]; operations: string[] }> }; validations: Array<{ expression: string; message: string; reason: string }> };
}

const render = (values: Record<string, unknown> = {}) => renderChart({ release, namespace: 'kubetx-system', values });
const shipped = parse(readFileSync(join(repoRoot, 'crds/kubetx.io_distributedtransactions.yaml'), 'utf8')) as Crd;
const specOf = (crd: Crd) => crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
const rulesOf = (node: SchemaNode | undefined) => node?.['x-kubernetes-validations'] ?? [];
/** A rule that compares with the stored object (not a create-only `oldSelf.hasValue() || …`). */
const isTransition = (r: Rule) => r.rule.includes('oldSelf') && !r.optionalOldSelf;

/** Every rule in the schema, with the path of the node that carries it. */
function allRules(node: SchemaNode, path = ''): Array<{ path: string; rule: Rule }> {
  const out = rulesOf(node).map((rule) => ({ path, rule }));
  for (const [k, v] of Object.entries(node.properties ?? {})) out.push(...allRules(v, `${path}.${k}`));
  if (node.items) out.push(...allRules(node.items, `${path}[]`));
  if (typeof node.additionalProperties === 'object') out.push(...allRules(node.additionalProperties, `${path}{}`));
  return out;
}

describe('spec guard: what the chart renders', () => {
  it('the CRD is crds/ less the transition rules of spec and spec.message; the policy carries each, same message, same order', () => {
    const r = render();
    const crd = r.one<Crd>('CustomResourceDefinition');
    const policy = r.one<Policy>('ValidatingAdmissionPolicy', policyName);
    const removed = [...rulesOf(specOf(shipped)), ...rulesOf(specOf(shipped).properties!.message)].filter(isTransition);
    expect(removed.length, 'crds/ has spec transition rules').toBeGreaterThanOrEqual(10);
    expect(policy.spec.validations.map((v) => v.message)).toEqual(removed.map((x) => x.message));
    for (const v of policy.spec.validations) expect(v.reason, v.message).toBe('Invalid');

    // What is left: every other rule of crds/, in place; no transition rule on the spec.
    // (helm writes properties in key order: compare sorted.)
    const byPlace = (a: { path: string; rule: Rule }, b: { path: string; rule: Rule }) => (a.path + a.rule.rule).localeCompare(b.path + b.rule.rule);
    const left = allRules(crd.spec.versions[0]!.schema.openAPIV3Schema).sort(byPlace);
    const before = allRules(shipped.spec.versions[0]!.schema.openAPIV3Schema).sort(byPlace);
    expect(left).toEqual(before.filter((x) => !(['.spec', '.spec.message'].includes(x.path) && isTransition(x.rule))));
    expect(left.filter((x) => x.path.startsWith('.spec') && isTransition(x.rule))).toEqual([]);
    // The status's write-once rules stay in the CRD: status writes are what they guard.
    expect(left.filter((x) => x.path === '.status' && isTransition(x.rule)).length).toBe(2);

    // Main resource only: a rule on distributedtransactions/status would undo the point of it.
    expect(policy.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: [group], apiVersions: ['*'], operations: ['UPDATE'], resources: [plural] }]);
    expect(r.one('ValidatingAdmissionPolicyBinding', policyName).spec).toEqual({ policyName, validationActions: ['Deny'] });
  });

  it('specGuard.enabled=false: no policy, and the CRD keeps every rule of crds/', () => {
    const r = render({ specGuard: { enabled: false } });
    expect(r.objects.filter((o) => o.metadata.name === policyName)).toEqual([]);
    expect(r.one<Crd>('CustomResourceDefinition').spec).toEqual(shipped.spec);
  });
});

describe('spec guard: on a real API server', () => {
  let cp: ControlPlane;
  let kc: k8s.KubeConfig;
  let api: k8s.CustomObjectsApi;

  const tx = (namespace: string, name: string): Obj => ({
    apiVersion: `${group}/${version}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace },
    spec: { mode: 'TCC', timeout: '30s', branches: [{ name: 'a', endpoint: { service: { name: 'a', port: 50051 } } }] },
  });
  const get = (namespace: string, name: string) => api.getNamespacedCustomObject({ group, version, namespace, plural, name }) as Promise<Obj>;
  const replace = (body: Obj) => api.replaceNamespacedCustomObject({ group, version, namespace: body.metadata.namespace, plural, name: body.metadata.name, body }) as Promise<Obj>;

  beforeAll(async () => {
    cp = await startControlPlane();
    kc = loadKubeconfig(cp.kubeconfigPath);
    api = kc.makeApiClient(k8s.CustomObjectsApi);
    const r = render();
    const objs: K8sObject[] = [r.one('CustomResourceDefinition'), r.one('ValidatingAdmissionPolicy', policyName), r.one('ValidatingAdmissionPolicyBinding', policyName)];
    applyServerSide(cp.kubeconfigPath, objs.map((o) => stringify(o)).join('---\n'));
    // Set-up: the CRD served and the policy in force. (Its type-check status is written by
    // kube-controller-manager, which this control plane does not run: a misspelt field shows
    // instead as a refused valid update below, failurePolicy Fail.)
    const ns = await freshNamespace(kc, 'spec-guard-ready');
    await eventually('the CRD served', () => api.createNamespacedCustomObject({ group, version, namespace: ns, plural, body: tx(ns, 'probe') }).catch(() => undefined));
    await eventually('the policy in force', async () => {
      const current = await get(ns, 'probe');
      const refused = await replace({ ...current, spec: { ...current.spec, mode: 'Saga' } }).then(
        () => false,
        (e: { code?: number }) => e.code === 422,
      );
      if (!refused) await replace({ ...(await get(ns, 'probe')), spec: current.spec });
      return refused || undefined;
    });
  }, 180_000);

  afterAll(async () => {
    await cp?.stop();
  });

  it.each(ofKind('apiserver-update'))('$file: refused as by crds/ ($title)', (c) => refusedOnUpdate(kc, c));

  it('status writes are outside its match: a tripwire policy with the same match, bound to one namespace, refuses every main-resource update there and no status write', async () => {
    // The API server counts only refusals in its admission metrics, so the proof is a policy that refuses whatever it is asked about.
    const ns = await freshNamespace(kc, 'spec-guard-match');
    const rendered = render().one<Policy & K8sObject>('ValidatingAdmissionPolicy', policyName);
    const tripwire = `${policyName}-tripwire`;
    applyServerSide(
      cp.kubeconfigPath,
      [
        { ...rendered, metadata: { name: tripwire }, spec: { ...rendered.spec, variables: undefined, validations: [{ expression: 'false', message: 'tripwire' }] } },
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingAdmissionPolicyBinding',
          metadata: { name: tripwire },
          spec: { policyName: tripwire, validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } } },
        },
      ]
        .map((o) => stringify(o))
        .join('---\n'),
    );
    await api.createNamespacedCustomObject({ group, version, namespace: ns, plural, body: tx(ns, 'matched') });
    const label = async (value: string) => {
      const current = await get(ns, 'matched');
      return replace({ ...current, metadata: { ...current.metadata, labels: { try: value } } });
    };
    const refused = await eventually('the tripwire in force', () => label(`${Date.now()}`).then(() => undefined, (e: { code?: number; body?: unknown }) => e));
    expect(refused.code).toBe(422);
    expect(JSON.stringify(refused.body)).toContain('tripwire');
    for (let i = 0; i < 5; i++) {
      const current = await get(ns, 'matched');
      const written = (await api.replaceNamespacedCustomObjectStatus({
        group,
        version,
        namespace: ns,
        plural,
        name: 'matched',
        body: { ...current, status: { phase: 'Trying', message: `write ${i}`, branches: [{ name: 'a', state: 'Trying', attempts: i + 1 }] } },
      })) as Obj;
      expect(written.status.message).toBe(`write ${i}`);
    }
  });

  it('metadata-only updates (a label, a finalizer added and removed, as at deletion) pass it; a spec edit is refused naming the policy', async () => {
    const ns = await freshNamespace(kc, 'spec-guard-meta');
    await api.createNamespacedCustomObject({ group, version, namespace: ns, plural, body: tx(ns, 'meta') });
    let current = await get(ns, 'meta');
    current = await replace({ ...current, metadata: { ...current.metadata, labels: { team: 'a' }, finalizers: ['kubetx.io/finalizer'] } });
    current = await replace({ ...current, metadata: { ...current.metadata, finalizers: [] } });
    expect(current.metadata.labels).toEqual({ team: 'a' });
    expect(current.metadata.finalizers ?? []).toEqual([]);

    const { code, message } = await refusal(replace({ ...current, spec: { ...current.spec, timeout: '31s' } }));
    expect(code, message).toBe(422);
    expect(message).toContain('spec.timeout is immutable after creation');
    expect(message).toContain(policyName);
    expect((await get(ns, 'meta')).spec.timeout).toBe('30s');
  });
});
