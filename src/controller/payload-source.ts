/**
 * The payloads a participant call needs, for a transaction whose cached copy
 * has none (cache-transform.ts drops payloads over a few KiB from memory):
 * one live read of the object per batch of calls, never on a worker (the calls
 * run in the CallTracker). Payloads are immutable (CEL on the spec), so any
 * version of the object with the same uid has the right ones.
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../api/types.js';
import { payloadsStripped } from './cache-transform.js';
import { errorText } from './status-writer.js';

export type PayloadSource = (tx: DistributedTransaction) => Promise<DistributedTransaction>;

export class PayloadReadError extends Error {}

/** A PayloadSource reading the live object through the API. */
export function livePayloads(kc: k8s.KubeConfig): PayloadSource {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  return async (tx) => {
    if (!payloadsStripped(tx)) return tx;
    const { namespace, name, uid } = tx.metadata;
    let live: DistributedTransaction;
    try {
      live = (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as DistributedTransaction;
    } catch (err) {
      throw new PayloadReadError(`reading the payloads of ${namespace}/${name}: ${errorText(err)}`);
    }
    if (live.metadata.uid !== uid) throw new PayloadReadError(`${namespace}/${name} was replaced by another object while its calls were due`);
    // Only the payloads are taken from the live object: the rest stays what the engine decided from.
    const branches = tx.spec.branches.map((b) => ({ ...b, payload: live.spec.branches.find((l) => l.name === b.name)?.payload }));
    return { ...tx, spec: { ...tx.spec, payload: live.spec.payload, branches } };
  };
}
