/**
 * What the operator refuses to act on that the CRD's schema and CEL cannot
 * see: endpoints its policy forbids (raw addresses, other namespaces) and
 * payloads over 64 KiB (CEL cannot measure arbitrary JSON). Such a transaction
 * fails before any participant is called.
 */
import type { DistributedTransaction, Endpoint } from '../api/types.js';
import { MESSAGE_SOURCE_FIELD } from '../participants/caller.js';
import { EndpointPolicyError, resolveEndpoint, type EndpointPolicy } from '../participants/endpoint.js';

export const MAX_PAYLOAD_BYTES = 64 * 1024;

export interface SpecViolation {
  /** Condition reason and Event reason. */
  reason: 'InvalidEndpoint' | 'PayloadTooLarge';
  field: string;
  message: string;
}

export function findSpecViolation(tx: DistributedTransaction, policy: EndpointPolicy): SpecViolation | undefined {
  const branches = Array.isArray(tx.spec?.branches) ? tx.spec.branches : [];
  const endpoints: Array<[string, Endpoint]> = branches.map((b, i) => [`spec.branches[${i}].endpoint`, b.endpoint ?? {}]);
  const source = tx.spec?.mode === 'Message' ? tx.spec.message?.source?.endpoint : undefined;
  if (source) endpoints.push([MESSAGE_SOURCE_FIELD, source]);
  for (const [field, endpoint] of endpoints) {
    try {
      resolveEndpoint(endpoint, tx.metadata.namespace, field, policy);
    } catch (err) {
      if (err instanceof EndpointPolicyError) return { reason: 'InvalidEndpoint', field: err.field, message: err.message };
      throw err;
    }
  }
  const payloads: Array<[string, unknown]> = [['spec.payload', tx.spec?.payload], ...branches.map((b, i): [string, unknown] => [`spec.branches[${i}].payload`, b.payload])];
  for (const [field, payload] of payloads) {
    if (payload === undefined) continue;
    const bytes = Buffer.byteLength(JSON.stringify(payload));
    if (bytes > MAX_PAYLOAD_BYTES) {
      return { reason: 'PayloadTooLarge', field, message: `${field}: ${bytes} bytes of JSON, more than the ${MAX_PAYLOAD_BYTES} allowed` };
    }
  }
  return undefined;
}
