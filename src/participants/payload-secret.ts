/**
 * `payloadFrom.secretKeyRef`: a payload kept in a Secret instead of the
 * transaction, for what must not sit in etcd in plaintext twice (spec and
 * kubectl's last-applied copy) or show in `kubectl get -o yaml`: card
 * numbers, tokens. Read at call time from Secrets labelled
 * `kubetx.io/payload: "true"` in the transaction's namespace; the value must
 * be a JSON object and is sent as the payload bytes. Missing, unlabelled, no
 * such key and not JSON all give one message, which never contains the value.
 */
import type { DistributedTransaction } from '../api/types.js';
import type { LabelledSecretCache } from './labelled-secrets.js';

export const PAYLOAD_SECRET_LABEL = 'kubetx.io/payload';

export interface SecretKeyRef {
  name: string;
  key: string;
}

export type PayloadSecrets = (namespace: string, ref: SecretKeyRef) => Buffer;

export function payloadSecrets(cache: LabelledSecretCache): PayloadSecrets {
  return (namespace, ref) => {
    const unusable = () =>
      new Error(`payloadFrom: key "${ref.key}" of Secret "${ref.name}" cannot be used: it must exist in namespace "${namespace}", carry the label ${PAYLOAD_SECRET_LABEL}=true, and hold a JSON object under that key`);
    const data = cache.get(namespace, ref.name)?.data?.[ref.key];
    if (data === undefined) throw unusable();
    const bytes = Buffer.from(data, 'base64');
    try {
      const v: unknown = JSON.parse(bytes.toString('utf8'));
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    } catch {
      throw unusable();
    }
    return bytes;
  };
}

/** The payload bytes of a branch (undefined branch: the transaction's own, for CheckPrepared): inline JSON or from a Secret. */
export function payloadBytes(tx: DistributedTransaction, branchIndex: number | undefined, secrets: PayloadSecrets | undefined): Buffer {
  const branch = branchIndex === undefined ? undefined : tx.spec.branches[branchIndex];
  const own = branch && (branch.payload !== undefined || branch.payloadFrom !== undefined);
  const inline = own ? branch.payload : tx.spec.payload;
  const from = own ? branch.payloadFrom : tx.spec.payloadFrom;
  if (from) {
    if (!secrets) throw new Error('payloadFrom needs an operator that reads payload Secrets (--read-payload-secrets; chart value payloadSecrets.read)');
    return secrets(tx.metadata.namespace, from.secretKeyRef);
  }
  return inline === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(inline));
}
