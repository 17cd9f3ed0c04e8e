/**
 * Who wrote what, in metadata.managedFields: every write of the operator (its
 * Leases and Events as much as its status writes) is recorded as
 * "kubetx-operator", not as client-node's HTTP library ("node-fetch"), and a
 * call that names its own manager keeps it (src/controller/field-manager.ts).
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, VERSION, type DistributedTransaction } from '../../src/api/types.js';
import { defaultFieldManager } from '../../src/controller/field-manager.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

let ns: string;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  ns = await freshNamespace(kubeConfig(), 'fieldmgr');
});

afterAll(async () => {
  await operator?.kill('SIGKILL');
});

const managers = (o: { metadata?: { managedFields?: Array<{ manager?: string }> } }) => (o.metadata?.managedFields ?? []).map((m) => m.manager);

describe('field manager', () => {
  it('a wrapped KubeConfig names its manager on create, update and patch; an explicit one wins', async () => {
    const kc = kubeConfig();
    defaultFieldManager(kc, 'kubetx-test');
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const name = `cm-${randomBytes(3).toString('hex')}`;
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name }, data: { a: '1' } } });
    expect(managers(await core.readNamespacedConfigMap({ name, namespace: ns }))).toEqual(['kubetx-test']);

    const read = await core.readNamespacedConfigMap({ name, namespace: ns });
    await core.replaceNamespacedConfigMap({ name, namespace: ns, body: { ...read, data: { a: '1', b: '2' } } });
    await core.patchNamespacedConfigMap(
      { name, namespace: ns, fieldManager: 'someone-else', body: { data: { c: '3' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const after = await core.readNamespacedConfigMap({ name, namespace: ns });
    expect(new Set(managers(after))).toEqual(new Set(['kubetx-test', 'someone-else']));
    // Reads and deletes are untouched (a DELETE takes no fieldManager).
    await core.deleteNamespacedConfigMap({ name, namespace: ns });

    // Without the wrapper, the API server records client-node's HTTP library: what the operator's Leases and Events said before.
    const plain = kubeConfig().makeApiClient(k8s.CoreV1Api);
    await plain.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `${name}-plain` } } });
    expect(managers(await plain.readNamespacedConfigMap({ name: `${name}-plain`, namespace: ns }))).not.toContain('kubetx-test');
  });

  it("the operator's Lease and Events are the operator's in managedFields", async () => {
    const leaseName = `kubetx-fm-${randomBytes(2).toString('hex')}`;
    operator = await startOperator({
      kubeconfig: kubeconfigPath(),
      namespaces: [ns],
      args: ['--leader-elect', '--leader-election-namespace', ns, '--leader-election-id', leaseName],
      env: { POD_NAME: 'kubetx-fm', POD_NAMESPACE: ns },
    });
    await operator.waitForLog((l) => l.msg === 'controller started', 30_000);
    const kc = kubeConfig();
    // A branch whose participant refuses every connection: a CallFailed Warning Event (written whatever --events says).
    await transactions(kc).create({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DistributedTransaction',
      metadata: { name: 'refused', namespace: ns } as DistributedTransaction['metadata'],
      spec: { mode: 'TCC', timeout: '1h', retry: { initialInterval: '100ms', maxInterval: '200ms' }, branches: [{ name: 'a', endpoint: { address: '127.0.0.1:1' } }] },
    });
    const events = kc.makeApiClient(k8s.EventsV1Api);
    const event = await eventually('a CallFailed Event', async () =>
      (await events.listNamespacedEvent({ namespace: ns })).items.find((e) => e.regarding?.name === 'refused' && e.reason === 'CallFailed'), 60_000);
    expect(managers(event)).toEqual(['kubetx-operator']);
    const lease = await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: leaseName, namespace: ns });
    expect(lease.spec?.holderIdentity).toBe('kubetx-fm');
    expect(new Set(managers(lease))).toEqual(new Set(['kubetx-operator']));
  });
});
