/**
 * Client TLS material for a participant endpoint, from a Secret in the
 * transaction's namespace (keys ca.crt, tls.crt, tls.key as in
 * kubernetes.io/tls Secrets). The Secret's resourceVersion keys the channel,
 * so a rotated certificate gets a new channel.
 */
import type * as k8s from '@kubernetes/client-node';
import type { TlsMaterial } from './pool.js';

export async function loadTlsSecret(core: k8s.CoreV1Api, namespace: string, name: string): Promise<{ material: TlsMaterial; version: string }> {
  const secret = await core.readNamespacedSecret({ name, namespace });
  const get = (key: string) => (secret.data?.[key] ? Buffer.from(secret.data[key]!, 'base64') : undefined);
  return { material: { ca: get('ca.crt'), cert: get('tls.crt'), key: get('tls.key') }, version: secret.metadata?.resourceVersion ?? '' };
}
