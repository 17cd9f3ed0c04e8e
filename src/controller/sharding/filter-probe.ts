/**
 * Does the API server filter by shardSelector (kube-apiserver with
 * --feature-gates=ShardedListAndWatch=true, KEP-5866)? A server that honours
 * the selector echoes it in the list's `metadata.shardInfo`; one without the
 * gate ignores the parameter and echoes nothing. Custom-resource lists on
 * v1.37.2 never echo it (their list metadata has no shardInfo even when they
 * are filtered), so the probe lists the Leases the replica reads anyway —
 * built-in objects, which do echo — and sends the selector of the whole space.
 */
import * as k8s from '@kubernetes/client-node';
import { shardSelector } from './hash-range.js';
import { withShardSelector } from './shard-query.js';

export async function serverFiltersShards(kc: k8s.KubeConfig, leaseNamespace: string): Promise<boolean> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const list = (await api.listNamespacedCustomObject(
    { group: 'coordination.k8s.io', version: 'v1', namespace: leaseNamespace, plural: 'leases', limit: 1 },
    withShardSelector(shardSelector([0], 1)),
  )) as { metadata?: { shardInfo?: { selector?: string } } };
  return Boolean(list.metadata?.shardInfo?.selector);
}
