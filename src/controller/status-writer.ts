/**
 * The one code path that writes a transaction's status: a PUT of the status
 * subresource carrying the resourceVersion we decided from. The API server
 * refuses it with 409 if anything changed the object since — another replica,
 * a human, or our own earlier write not yet seen by the informer — and the
 * caller re-reads and decides again. That precondition is what keeps two
 * operators (or a stale cache) from recording two different decisions.
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction, type TransactionStatus } from '../api/types.js';
import { slimForCache } from './cache-transform.js';

/** Who wrote it, in metadata.managedFields (client-node would say "node-fetch"). */
export const FIELD_MANAGER = 'kubetx-operator';

export type WriteResult = { kind: 'ok'; tx: DistributedTransaction } | { kind: 'conflict' } | { kind: 'gone' };

export interface StatusStore {
  writeStatus(tx: DistributedTransaction, status: TransactionStatus): Promise<WriteResult>;
  /** A live read, bypassing the informer cache (after a conflict). */
  get(namespace: string, name: string): Promise<DistributedTransaction | undefined>;
  delete(tx: DistributedTransaction): Promise<void>;
  /** Sets metadata.finalizers, with the object's resourceVersion as precondition (409 → conflict). */
  setFinalizers(tx: DistributedTransaction, finalizers: string[]): Promise<WriteResult>;
}

export class ApiStatusStore implements StatusStore {
  private readonly api: k8s.CustomObjectsApi;

  constructor(kc: k8s.KubeConfig, private readonly onWrite?: (result: 'ok' | 'conflict' | 'error') => void) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async writeStatus(tx: DistributedTransaction, status: TransactionStatus): Promise<WriteResult> {
    try {
      const updated = (await this.api.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace: tx.metadata.namespace,
        plural: PLURAL,
        name: tx.metadata.name,
        fieldManager: FIELD_MANAGER,
        // The status subresource takes only status from the body; the rest is
        // the precondition (uid, resourceVersion) and identification.
        body: {
          apiVersion: tx.apiVersion,
          kind: tx.kind,
          metadata: { name: tx.metadata.name, namespace: tx.metadata.namespace, uid: tx.metadata.uid, resourceVersion: tx.metadata.resourceVersion },
          status,
        },
      })) as DistributedTransaction;
      this.onWrite?.('ok');
      // The manager keeps this copy until its cache catches up: slim, like the cache's.
      return { kind: 'ok', tx: slimForCache(updated) };
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 409) {
        this.onWrite?.('conflict');
        return { kind: 'conflict' };
      }
      if (code === 404) return { kind: 'gone' };
      this.onWrite?.('error');
      throw new Error(`writing status of ${tx.metadata.namespace}/${tx.metadata.name}: ${errorText(err)}`);
    }
  }

  async get(namespace: string, name: string): Promise<DistributedTransaction | undefined> {
    try {
      return slimForCache((await this.api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as DistributedTransaction);
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw new Error(`reading ${namespace}/${name}: ${errorText(err)}`);
    }
  }

  async setFinalizers(tx: DistributedTransaction, finalizers: string[]): Promise<WriteResult> {
    try {
      const updated = (await this.api.patchNamespacedCustomObject(
        {
          group: GROUP, version: VERSION, namespace: tx.metadata.namespace, plural: PLURAL, name: tx.metadata.name, fieldManager: FIELD_MANAGER,
          // A merge patch replaces the whole list: the resourceVersion makes it a compare-and-swap.
          body: { metadata: { resourceVersion: tx.metadata.resourceVersion, finalizers } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )) as DistributedTransaction;
      return { kind: 'ok', tx: slimForCache(updated) };
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 409) return { kind: 'conflict' };
      if (code === 404) return { kind: 'gone' };
      throw new Error(`setting finalizers of ${tx.metadata.namespace}/${tx.metadata.name}: ${errorText(err)}`);
    }
  }

  async delete(tx: DistributedTransaction): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: tx.metadata.namespace, plural: PLURAL, name: tx.metadata.name,
        body: { preconditions: { uid: tx.metadata.uid, resourceVersion: tx.metadata.resourceVersion } },
      });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404 || code === 409) return;
      throw new Error(`deleting ${tx.metadata.namespace}/${tx.metadata.name}: ${errorText(err)}`);
    }
  }
}

/** client-node's ApiException carries the server's Status in `body`; keep only its message. */
export function errorText(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e.body === 'string') {
    try {
      const status = JSON.parse(e.body) as { message?: string };
      if (status.message) return `${e.code ?? ''} ${status.message}`.trim();
    } catch {
      /* not JSON */
    }
  }
  return String(e.message ?? err).split('\n')[0]!.slice(0, 512);
}
