/**
 * One field manager for every write a KubeConfig's API clients make.
 *
 * Why: client-node sends no fieldManager unless a call passes one, and the API
 * server then records the writer in metadata.managedFields as "node-fetch" (the
 * HTTP library's User-Agent). Leases, Events and the broker route ConfigMap
 * were written that way, so `kubectl get -o yaml --show-managed-fields` could
 * not tell the operator's writes from anyone else's, and a server-side apply by
 * another tool would see a conflict with an unnamed manager. A call that names
 * its own manager keeps it.
 */
import type * as k8s from '@kubernetes/client-node';

/** The methods that take a fieldManager (create, update, patch). */
const WRITES = new Set(['POST', 'PUT', 'PATCH']);

/** client-node's RequestContext, the part of it this needs. */
interface Request {
  getHttpMethod(): string;
  getUrl(): string;
  setQueryParam(name: string, value: string): void;
}

/** Makes every POST/PUT/PATCH of `kc`'s API clients carry `fieldManager=<name>` unless it names one. */
export function defaultFieldManager(kc: k8s.KubeConfig, name: string): void {
  const target = kc as unknown as { applySecurityAuthentication(context: Request): Promise<void> };
  const original = target.applySecurityAuthentication.bind(kc);
  // makeApiClient gives every API client `kc` as its default auth method, so this runs once per request.
  target.applySecurityAuthentication = async (context) => {
    if (WRITES.has(String(context.getHttpMethod()).toUpperCase()) && !new URL(context.getUrl()).searchParams.has('fieldManager')) {
      context.setQueryParam('fieldManager', name);
    }
    return original(context);
  };
}
