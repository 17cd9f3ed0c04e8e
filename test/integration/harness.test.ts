/**
 * Proves the test harness is a real API server: a CRD with a status
 * subresource is served, objects are seen through an informer (list + watch),
 * and a status write with a stale resourceVersion is refused with 409.
 */
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { ResilientInformer } from '../../src/controller/informer.js';
import { eventually, freshNamespace, kubeConfig } from '../support/env.js';

const group = 'kubetx.io';
const version = 'v1alpha1';
const plural = 'distributedtransactions';

describe('test control plane', () => {
  it('reports the kube-apiserver version it runs', () => {
    process.stderr.write(`[harness] kube-apiserver ${inject('serverVersion')}\n`);
    expect(inject('serverVersion')).toMatch(/^v1\.\d+\.\d+/);
  });

  it('serves the DistributedTransaction CRD: informer sees creates, stale status writes get 409', async () => {
    const kc = kubeConfig();
    const ns = await freshNamespace(kc, 'harness');
    const api = kc.makeApiClient(k8s.CustomObjectsApi);

    const seen: string[] = [];
    const informer = new ResilientInformer<k8s.KubernetesObject>({
      kubeConfig: kc,
      path: `/apis/${group}/${version}/namespaces/${ns}/${plural}`,
      list: () => api.listNamespacedCustomObject({ group, version, namespace: ns, plural }),
      onUpsert: (obj) => seen.push(obj.metadata!.name!),
      onDelete: () => undefined,
      logger: pino({ level: 'warn' }),
    });
    await informer.start();
    await informer.waitForSync();
    try {
      const body = {
        apiVersion: `${group}/${version}`,
        kind: 'DistributedTransaction',
        metadata: { name: 'probe', namespace: ns },
        spec: {
          mode: 'TCC',
          branches: [{ name: 'a', endpoint: { service: { name: 'svc', port: 50051 } } }],
        },
      };
      const created = await api.createNamespacedCustomObject({ group, version, namespace: ns, plural, body });
      await eventually('the informer to see the object', async () => (seen.includes('probe') ? true : undefined));

      const rv0 = created.metadata.resourceVersion as string;
      const first = await api.replaceNamespacedCustomObjectStatus({
        group, version, namespace: ns, plural, name: 'probe',
        body: { ...created, status: { phase: 'Trying' } },
      });
      expect(first.status.phase).toBe('Trying');
      expect(first.metadata.resourceVersion).not.toBe(rv0);

      // The same write again, with the resourceVersion we started from: stale.
      const stale = api.replaceNamespacedCustomObjectStatus({
        group, version, namespace: ns, plural, name: 'probe',
        body: { ...created, metadata: { ...created.metadata, resourceVersion: rv0 }, status: { phase: 'Confirming' } },
      });
      await expect(stale).rejects.toMatchObject({ code: 409 });

      const now = await api.getNamespacedCustomObject({ group, version, namespace: ns, plural, name: 'probe' });
      expect(now.status.phase).toBe('Trying');
      // The status subresource ignores spec changes, the main resource ignores status changes.
      expect(now.metadata.generation).toBe(1);
    } finally {
      await informer.stop();
    }
  });
});
