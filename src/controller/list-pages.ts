/**
 * A list in pages (`limit` + `continue`), each page's items slimmed as it
 * arrives, so listing every transaction at start holds at most one page of
 * full objects at once instead of the whole collection in one response. A
 * continue token that expired (410 Gone: the snapshot was compacted) restarts
 * the list, as client-go's pager falls back to a full list.
 */
import type * as k8s from '@kubernetes/client-node';

export type PageFn<T extends k8s.KubernetesObject> = (continueToken: string | undefined) => Promise<k8s.KubernetesListObject<T>>;

/** How many times an expired continue token restarts the whole list before the error is passed on. */
const MAX_RESTARTS = 3;

export async function listInPages<T extends k8s.KubernetesObject>(page: PageFn<T>, slim: (item: T) => T = (i) => i): Promise<k8s.KubernetesListObject<T>> {
  for (let restart = 0; ; restart++) {
    const items: T[] = [];
    let cont: string | undefined;
    let last: k8s.KubernetesListObject<T> | undefined;
    try {
      do {
        last = await page(cont);
        for (const item of last.items) items.push(slim(item));
        // Typed lists carry `_continue` (client-node's name); custom objects come back as raw JSON: `continue`.
        const meta = last.metadata as (k8s.V1ListMeta & { continue?: string }) | undefined;
        cont = meta?._continue || meta?.continue || undefined;
      } while (cont);
    } catch (err) {
      if ((err as { code?: number }).code === 410 && cont !== undefined && restart < MAX_RESTARTS) continue;
      throw err;
    }
    // The last page's resourceVersion is the snapshot's: the watch starts from there.
    const { continue: _c, _continue: _tc, ...meta } = (last!.metadata ?? {}) as k8s.V1ListMeta & { continue?: string };
    return { ...last!, items, metadata: meta };
  }
}
