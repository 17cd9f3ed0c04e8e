/**
 * The two human interventions, as annotations on the transaction (the same
 * ones `kubectl dtx retry|abort` sets; src/engine/intervention.ts reads them
 * and the operator acknowledges them in status.retryAcknowledged /
 * status.abortAcknowledged). A merge patch with the caller's own credentials:
 * RBAC decides, and its refusal is passed on unchanged.
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../api/types.js';
import { ABORT_ANNOTATION, RETRY_ANNOTATION } from '../engine/intervention.js';

/** Who the dashboard's writes are from, in metadata.managedFields. */
export const DASHBOARD_FIELD_MANAGER = 'kubetx-dashboard';

export interface TxRef {
  namespace: string;
  name: string;
}

function annotate(api: k8s.CustomObjectsApi, ref: TxRef, annotations: Record<string, string>): Promise<DistributedTransaction> {
  return api.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, plural: PLURAL, namespace: ref.namespace, name: ref.name, fieldManager: DASHBOARD_FIELD_MANAGER, body: { metadata: { annotations } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  ) as Promise<DistributedTransaction>;
}

/** Failing calls become due now and their attempt budget is reset; a new value each time (an ISO time) is a new request. */
export function requestRetry(api: k8s.CustomObjectsApi, ref: TxRef, now = new Date()): Promise<DistributedTransaction> {
  return annotate(api, ref, { [RETRY_ANNOTATION]: now.toISOString() });
}

/** Roll back a transaction that has not decided yet; the operator refuses (in status and Events) once it has. */
export function requestAbort(api: k8s.CustomObjectsApi, ref: TxRef, reason: string): Promise<DistributedTransaction> {
  return annotate(api, ref, { [ABORT_ANNOTATION]: reason });
}

export { ABORT_ANNOTATION, RETRY_ANNOTATION };
