/**
 * status.branches changed from a list map keyed by name to an atomic list (so that server-side
 * apply's managedFields record it as one field, not every leaf of every branch: the API server's
 * CPU per status write, bench/RESULTS.md "rules"). A cluster upgrading the CRD has objects whose
 * managedFields still name branches by key; this checks, on the real API server, that the
 * operator's next status write (a PUT of /status with the resourceVersion read) is accepted after
 * the upgrade, keeps the status it wrote, and leaves the compact managedFields.
 *
 * A scratch API group, so the shared CRD the other files use is not touched.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { applyServerSide } from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { repoRoot } from '../support/testenv-paths.js';

const group = 'listupgrade.kubetx.test';
const version = 'v1alpha1';
const plural = 'distributedtransactions';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Crd = any;

function crdDocument(shape: 'map (before)' | 'as shipped'): string {
  const crd: Crd = parse(readFileSync(join(repoRoot, 'crds/kubetx.io_distributedtransactions.yaml'), 'utf8'));
  crd.metadata = { name: `${plural}.${group}` };
  crd.spec.group = group;
  const list = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties.branches;
  expect(list['x-kubernetes-list-type']).toBe('atomic');
  if (shape === 'map (before)') {
    list['x-kubernetes-list-type'] = 'map';
    list['x-kubernetes-list-map-keys'] = ['name'];
  }
  return stringify(crd);
}

const kc = kubeConfig();
const objects = kc.makeApiClient(k8s.CustomObjectsApi);
const crds = kc.makeApiClient(k8s.ApiextensionsV1Api);

interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string; managedFields?: Array<{ manager?: string; subresource?: string; fieldsV1?: unknown }> };
  status?: { phase?: string; message?: string; branches?: Array<{ name: string; state: string; attempts: number }> };
}

const statusOf = (tag: string) => ({
  phase: 'Trying',
  message: tag,
  branches: ['order', 'inventory'].map((name) => ({ name, state: 'Trying', attempts: 1 })),
});

/** The status part of managedFields, as the API server stored it. */
const statusFields = (o: Obj) => JSON.stringify(o.metadata.managedFields?.find((m) => m.subresource === 'status')?.fieldsV1 ?? {});

describe('CRD upgrade: status.branches from list map to atomic', () => {
  afterAll(async () => {
    await crds.deleteCustomResourceDefinition({ name: `${plural}.${group}` }).catch(() => undefined);
  });

  it('status writes go on across the upgrade and managedFields become one entry', async () => {
    applyServerSide(kubeconfigPath(), crdDocument('map (before)'));
    const namespace = await freshNamespace(kc, 'list-upgrade');
    const base = { group, version, namespace, plural };
    const body = {
      apiVersion: `${group}/${version}`,
      kind: 'DistributedTransaction',
      metadata: { name: 'pay-1', namespace },
      spec: { mode: 'TCC', branches: ['order', 'inventory'].map((name, i) => ({ name, endpoint: { service: { name, port: 50051 + i } } })) },
    };
    // A new group is served a moment after it is Established.
    let created = await eventually('the scratch CRD to serve creates', async () => (await objects.createNamespacedCustomObject({ ...base, body })) as Obj, 20_000);
    const put = async (o: Obj, tag: string) =>
      (await objects.replaceNamespacedCustomObjectStatus({ ...base, name: 'pay-1', body: { ...body, metadata: { ...body.metadata, resourceVersion: o.metadata.resourceVersion }, status: statusOf(tag) } })) as Obj;

    created = await put(created, 'before');
    expect(statusFields(created)).toContain('k:{\\"name\\":\\"order\\"}');

    applyServerSide(kubeconfigPath(), crdDocument('as shipped'));
    // The API server swaps the CRD's handler asynchronously: write until a write is handled by the new schema.
    let n = 0;
    const after = await eventually('a status write under the atomic schema', async () => {
      const current = (await objects.getNamespacedCustomObject({ ...base, name: 'pay-1' })) as Obj;
      const written = await put(current, `after ${n++}`);
      return statusFields(written).includes('k:{') ? undefined : written;
    });
    expect(after.status?.branches?.map((b) => b.name)).toEqual(['order', 'inventory']);
    expect(after.status?.message).toMatch(/^after \d+$/);
    expect(statusFields(after)).toContain('"f:branches":{}');
    // Spec and status survive a read back, and the next write (the operator's outcome write) is accepted too.
    const last = await put((await objects.getNamespacedCustomObject({ ...base, name: 'pay-1' })) as Obj, 'outcome');
    expect(last.status?.message).toBe('outcome');
    expect(last.status?.branches).toHaveLength(2);
  });
});
