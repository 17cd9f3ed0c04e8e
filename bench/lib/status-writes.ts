/**
 * Raw status writes, without the operator: objects created once, then one
 * writer per object writing its status in a loop with the object's
 * resourceVersion as precondition (the ceiling figure; the rules figure's
 * CRD variants).
 */
import type { DistributedTransaction, TransactionStatus } from '../../src/api/types.js';
import type { Api } from './kube.js';

export interface WriteTarget {
  name: string;
  uid: string;
  rv: string;
}

/** Creates `n` objects, one `create(i)` after the other. */
export async function createTargets(n: number, create: (i: number) => Promise<DistributedTransaction | undefined>): Promise<WriteTarget[]> {
  const targets: WriteTarget[] = [];
  for (let i = 0; i < n; i++) {
    const created = (await create(i))!;
    targets.push({ name: created.metadata.name, uid: created.metadata.uid, rv: created.metadata.resourceVersion! });
  }
  return targets;
}

export interface WriteLoop {
  api: Api;
  /** The collection path the targets were created under. */
  collection: string;
  apiVersion: string;
  namespace: string;
  targets: WriteTarget[];
  status: TransactionStatus;
  durationMs: number;
  /** Tags each write's status.message: a write that changes nothing is not written to etcd. */
  tag: string;
  /** PUT of the object (what the operator does) or a JSON merge patch of status + resourceVersion. @default 'put' */
  how?: 'put' | 'patch';
  onError?(status: number, body: string): void;
  /** Called after each successful write (for counting writes inside a window). */
  onOk?(): void;
}

/** Writes until durationMs has passed; a refused write re-reads the object's resourceVersion. */
export async function statusWriteLoop(o: WriteLoop): Promise<{ ok: number; conflicts: number; errors: number; ms: number }> {
  let ok = 0;
  let conflicts = 0;
  let errors = 0;
  let seq = 0;
  const t0 = performance.now();
  const stopAt = t0 + o.durationMs;
  await Promise.all(
    o.targets.map(async (t) => {
      const path = `${o.collection}/${t.name}`;
      while (performance.now() < stopAt) {
        const status = { ...o.status, message: `${o.tag} ${seq++}` };
        const r =
          o.how === 'patch'
            ? await o.api.raw('PATCH', `${path}/status`, { metadata: { resourceVersion: t.rv }, status }, 'application/merge-patch+json')
            : await o.api.raw('PUT', `${path}/status`, {
                apiVersion: o.apiVersion,
                kind: 'DistributedTransaction',
                metadata: { name: t.name, namespace: o.namespace, uid: t.uid, resourceVersion: t.rv },
                status,
              });
        if (r.status === 200) {
          ok++;
          o.onOk?.();
          t.rv = /"resourceVersion":"(\d+)"/.exec(r.body)![1]!;
          continue;
        }
        if (r.status === 409) conflicts++;
        else {
          errors++;
          o.onError?.(r.status, r.body);
        }
        t.rv = (await o.api.json<DistributedTransaction>('GET', path)).metadata.resourceVersion!;
      }
    }),
  );
  return { ok, conflicts, errors, ms: performance.now() - t0 };
}
