/**
 * Client TLS material for a participant endpoint, from a Secret in the
 * transaction's namespace (keys ca.crt, tls.crt, tls.key as in
 * kubernetes.io/tls Secrets). The Secret's resourceVersion keys the channel,
 * so a rotated certificate gets a new channel.
 *
 * Only Secrets labelled `kubetx.io/tls: "true"` are usable: a tenant who may
 * create transactions must not be able to make the operator present any
 * Secret of its namespace as client material. They are cached by a watch on
 * that label (no GET per call), and every reason a Secret cannot be used —
 * missing, unlabelled, no usable keys — gives one and the same message, so the
 * answer tells nothing about which Secrets exist.
 */
import type { LabelledSecretCache } from './labelled-secrets.js';
import type { TlsMaterial } from './pool.js';

export const TLS_SECRET_LABEL = 'kubetx.io/tls';

export class TlsSecretUnusable extends Error {
  constructor(namespace: string, name: string) {
    super(`Secret "${name}" cannot be used for endpoint.tls: it must exist in namespace "${namespace}", carry the label ${TLS_SECRET_LABEL}=true, and hold tls.crt with tls.key, and/or ca.crt`);
    this.name = 'TlsSecretUnusable';
  }
}

export class TlsSecretCache {
  constructor(private readonly secrets: LabelledSecretCache) {}

  /** The material of a labelled Secret, or TlsSecretUnusable — the same error whatever the reason. */
  load(namespace: string, name: string): { material: TlsMaterial; version: string } {
    const secret = this.secrets.get(namespace, name);
    if (!secret) throw new TlsSecretUnusable(namespace, name);
    const get = (key: string) => (secret.data?.[key] ? Buffer.from(secret.data[key]!, 'base64') : undefined);
    const material = { ca: get('ca.crt'), cert: get('tls.crt'), key: get('tls.key') };
    if (!material.ca && !(material.cert && material.key)) throw new TlsSecretUnusable(namespace, name);
    return { material, version: secret.metadata?.resourceVersion ?? '' };
  }
}
