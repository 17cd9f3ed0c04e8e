/**
 * The operator's least-privilege RBAC, in one place: what the Helm chart must
 * grant (no more, no less), derived from the API calls in src/. The chart test
 * compares the rendered ClusterRole/Roles and the API server's own view of the
 * ServiceAccount's permissions against these lists.
 *
 *   src/controller/manager.ts + informer.ts  list, watch distributedtransactions (cluster-wide, or per namespace)
 *   src/controller/status-writer.ts          get distributedtransactions (live read after a 409)
 *                                            update distributedtransactions/status (the only write; PUT with resourceVersion)
 *                                            delete distributedtransactions (ttlAfterFinished)
 *                                            patch distributedtransactions (the kubetx.io/finalizer, src/controller/deletion.ts)
 *   src/controller/events.ts                 create, patch events.k8s.io events
 *   src/participants/service-resolver.ts     list, watch services and discovery.k8s.io endpointslices
 *   src/participants/tls-secret.ts           list, watch secrets labelled kubetx.io/tls=true (endpoint.tls only; chart value tls.readSecrets)
 *   src/controller/leader.ts                 create leases; get, update the one Lease (release namespace)
 *
 * Deliberately absent: get on distributedtransactions/status (the operator
 * never reads the subresource), patch anywhere except events and finalizers, get on
 * secrets (they are watched by label), core ("") events, delete on leases (release() empties the holder
 * with an update instead).
 */
import type * as k8s from '@kubernetes/client-node';

export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Transactions, their status and Events: a ClusterRole, or a Role in each watched namespace. */
export const operatorRules: readonly Rule[] = [
  { apiGroups: ['kubetx.io'], resources: ['distributedtransactions'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
  { apiGroups: ['kubetx.io'], resources: ['distributedtransactions/status'], verbs: ['update'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
];

/** Added to operatorRules when the chart's tls.readSecrets is true. */
export const tlsSecretRules: readonly Rule[] = [{ apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] }];

/** The Lease, in the release namespace: create cannot be restricted by name; get and update are. */
export function leaderElectionRules(leaseName: string): Rule[] {
  return [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [leaseName], verbs: ['get', 'update'] },
  ];
}

export function expectedOperatorRules(opts: { readSecrets: boolean }): Rule[] {
  return [...operatorRules, ...(opts.readSecrets ? tlsSecretRules : [])];
}

/** One permission: "group/resource:verb" or "group/resource:verb@name" (core group shown as ""). */
export type Permission = string;

/** Expands rules into single permissions, so two spellings of the same grant compare equal. */
export function permissions(rules: ReadonlyArray<Rule | k8s.V1PolicyRule | k8s.V1ResourceRule>): Set<Permission> {
  const out = new Set<Permission>();
  for (const r of rules) {
    const names = r.resourceNames?.length ? r.resourceNames : [undefined];
    for (const g of r.apiGroups ?? [''])
      for (const res of r.resources ?? [])
        for (const v of r.verbs)
          for (const n of names) out.add(`${g}/${res}:${v}${n === undefined ? '' : `@${n}`}`);
  }
  return out;
}

/** Permissions in `a` and not in `b`, sorted. */
export function difference(a: Set<Permission>, b: Set<Permission>): Permission[] {
  return [...a].filter((p) => !b.has(p)).sort();
}
