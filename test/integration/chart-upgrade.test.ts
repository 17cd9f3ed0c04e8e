/**
 * The chart's CRD across a release's life, with the testenv helm against a
 * control plane of this file's own (the CRD is cluster-wide: changing the
 * shared control plane's would change it under every other test file):
 *
 *   helm install → the CRD is the release's (labels, helm.sh/resource-policy:
 *   keep) → a transaction is created → the CRD changes in a copy of the chart
 *   (a new optional field, a new description) → helm upgrade → the API server
 *   serves the new schema (the field is kept, not pruned) and the transaction
 *   is still there → helm uninstall → the CRD and both transactions stay.
 *
 * Before templates/crds.yaml the CRD sat in Helm's crds/ directory, which
 * `helm upgrade` never touches: the second step failed.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { chartDir, helm, kubectl, type Run } from '../support/chart.js';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { eventually } from '../support/env.js';

const CRD = 'distributedtransactions.kubetx.io';
const release = 'kubetx';
const releaseNs = 'kubetx-system';
const tenantNs = 'shop';

let cp: ControlPlane;
let kc: k8s.KubeConfig;
let txs: ReturnType<typeof transactionsOf>;

/** Create, get and list of transactions (test/support/payment.ts has the same, with the payment example's imports). */
function transactionsOf(config: k8s.KubeConfig) {
  const api = config.makeApiClient(k8s.CustomObjectsApi);
  const base = { group: GROUP, version: VERSION, plural: PLURAL };
  return {
    create: (t: DistributedTransaction) => api.createNamespacedCustomObject({ ...base, namespace: t.metadata.namespace, body: t }) as Promise<DistributedTransaction>,
    get: (namespace: string, name: string) => api.getNamespacedCustomObject({ ...base, namespace, name }) as Promise<DistributedTransaction>,
    list: async (namespace: string) => ((await api.listNamespacedCustomObject({ ...base, namespace })) as { items: DistributedTransaction[] }).items,
  };
}

interface Crd {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; uid?: string };
  spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: Schema } }> };
  status?: { conditions?: Array<{ type: string; status: string }> };
}
interface Schema {
  description?: string;
  properties?: Record<string, Schema>;
  [k: string]: unknown;
}

/** The CRD as the API server serves it, read with kubectl (client-node's models would drop x-kubernetes-* keys). */
function readCrd(): Crd | undefined {
  const r = kubectl(cp.kubeconfigPath, ['get', 'crd', CRD, '-o', 'json']);
  if (r.status !== 0) {
    if (/NotFound/.test(r.stderr)) return undefined;
    throw new Error(`kubectl get crd: ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as Crd;
}

function helmOk(args: string[]): Run {
  const r = helm([...args, '--kubeconfig', cp.kubeconfigPath]);
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** A copy of the chart whose CRD has one more optional spec field and a new description. */
function changedChart(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'kubetx-chart-')), 'kubetx');
  cpSync(chartDir, dir, { recursive: true });
  const crdDir = join(dir, 'files/crds');
  const file = readdirSync(crdDir).find((f) => f.startsWith('kubetx.io_distributedtransactions'))!;
  const crd = parse(readFileSync(join(crdDir, file), 'utf8')) as Crd;
  const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
  schema.description = 'DistributedTransaction, as changed by chart-upgrade.test.ts.';
  schema.properties!.spec!.properties!.upgradeProbe = { type: 'string', maxLength: 32, description: 'A field only the upgraded chart has.' };
  writeFileSync(join(crdDir, file), stringify(crd));
  const chartYaml = join(dir, 'Chart.yaml');
  writeFileSync(chartYaml, readFileSync(chartYaml, 'utf8').replace(/^version: .*$/m, 'version: 0.1.1-upgrade-test'));
  return dir;
}

function tx(name: string, extra: Record<string, unknown> = {}): DistributedTransaction {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'DistributedTransaction',
    metadata: { name, namespace: tenantNs } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout: '30s',
      branches: [{ name: 'order', endpoint: { service: { name: 'order', port: 50051 } } }],
      ...extra,
    } as DistributedTransaction['spec'],
  };
}

beforeAll(async () => {
  cp = await startControlPlane();
  kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  txs = transactionsOf(kc);
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: tenantNs } } });
}, 180_000);

afterAll(async () => {
  await cp?.stop();
});

describe('chart CRD: install, upgrade, uninstall (own control plane)', () => {
  let installedUid: string | undefined;

  it('helm install creates the CRD as part of the release, marked keep', async () => {
    helmOk(['install', release, chartDir, '--namespace', releaseNs, '--create-namespace']);
    const crd = readCrd()!;
    expect(crd.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'Helm', 'app.kubernetes.io/part-of': 'kubetx' });
    expect(crd.metadata.annotations).toMatchObject({ 'helm.sh/resource-policy': 'keep', 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': releaseNs });
    expect(crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!.properties!.upgradeProbe).toBeUndefined();
    installedUid = crd.metadata.uid;
    const wait = kubectl(cp.kubeconfigPath, ['wait', '--for=condition=Established', '--timeout=60s', `crd/${CRD}`]);
    expect(wait.status, wait.stderr).toBe(0);
    // A new resource's watch cache answers 429 for a moment after Established.
    await eventually('a transaction created', async () => {
      await txs.create(tx('before-upgrade')).catch((err: { code?: number }) => {
        if (err.code !== 409) throw err;
      });
      return true;
    }, 60_000);
    // The old schema prunes a field it does not know.
    await txs.create(tx('probe-old', { upgradeProbe: 'dropped' }));
    expect((await txs.get(tenantNs, 'probe-old')).spec).not.toHaveProperty('upgradeProbe');
  });

  it('helm upgrade with a changed CRD: the API server serves the new schema; the transaction is kept', async () => {
    const r = helmOk(['upgrade', release, changedChart(), '--namespace', releaseNs]);
    expect(r.stdout).toMatch(/has been upgraded/);
    const crd = readCrd()!;
    expect(crd.metadata.uid, 'the same CRD object, updated in place').toBe(installedUid);
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
    expect(schema.description).toBe('DistributedTransaction, as changed by chart-upgrade.test.ts.');
    expect(schema.properties!.spec!.properties!.upgradeProbe).toMatchObject({ type: 'string', maxLength: 32 });
    // Served: a create with the new field keeps it (the schema no longer prunes it).
    const created = await eventually('the new field to be served', async () => {
      const name = `probe-new-${Date.now()}`;
      await txs.create(tx(name, { upgradeProbe: 'kept' }));
      const got = await txs.get(tenantNs, name);
      return (got.spec as unknown as Record<string, unknown>).upgradeProbe === 'kept' ? got : undefined;
    }, 30_000);
    expect((created.spec as unknown as Record<string, unknown>).upgradeProbe).toBe('kept');
    expect((await txs.get(tenantNs, 'before-upgrade')).metadata.uid).toBeDefined();
  });

  it('helm uninstall keeps the CRD (resource-policy keep) and every transaction', async () => {
    const before = (await txs.list(tenantNs)).map((t) => t.metadata.name).sort();
    expect(before).toEqual(expect.arrayContaining(['before-upgrade', 'probe-old']));
    const r = helmOk(['uninstall', release, '--namespace', releaseNs]);
    expect(r.stdout + r.stderr).toMatch(/kept due to the resource policy:\s*\[CustomResourceDefinition\] distributedtransactions\.kubetx\.io/);
    // The release's other objects are gone ...
    const sa = kubectl(cp.kubeconfigPath, ['get', 'serviceaccount', 'kubetx', '-n', releaseNs]);
    expect(sa.stderr).toMatch(/NotFound/);
    // ... the CRD and the transactions are not.
    const crd = readCrd();
    expect(crd?.metadata.uid).toBe(installedUid);
    expect(crd?.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!.properties!.upgradeProbe).toBeDefined();
    expect((await txs.list(tenantNs)).map((t) => t.metadata.name).sort()).toEqual(before);
  });
});
