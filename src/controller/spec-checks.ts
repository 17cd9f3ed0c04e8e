/**
 * What the operator refuses to act on that the CRD's schema and CEL cannot
 * see: endpoints its policy forbids (raw addresses, other namespaces), broker
 * branches it cannot serve (no broker configured, or a subject that the
 * prefix and namespace make too long), and
 * payloads CEL cannot measure — one over 64 KiB, all of a transaction's
 * together over 256 KiB, or one nested deeper than 32 levels. Such a
 * transaction fails before any participant is called. The payload figures come
 * from cache-transform.ts, measured before the cache dropped the payloads.
 */
import type { DistributedTransaction, Endpoint } from '../api/types.js';
import { MESSAGE_SOURCE_FIELD } from '../participants/caller.js';
import { brokerSubject, type BrokerDeliveryDeps } from '../participants/broker-delivery.js';
import { subjectProblem } from '../brokers/message.js';
import { EndpointPolicyError, resolveEndpoint, type EndpointPolicy } from '../participants/endpoint.js';
import { MAX_PAYLOAD_DEPTH, payloadSummary } from './cache-transform.js';

export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** All payloads of one transaction together (64 branches × 64 KiB would be 4 MiB per object in every replica's memory). */
export const MAX_TOTAL_PAYLOAD_BYTES = 256 * 1024;

export interface SpecViolation {
  /** Condition reason and Event reason. */
  reason: 'InvalidEndpoint' | 'PayloadTooLarge' | 'PayloadTooDeep' | 'InvalidBroker' | 'BrokerNotConfigured';
  field: string;
  message: string;
}

/** What the check can see of Services (the resolver's cache): an ExternalName one is refused before any call. */
export interface ServiceView {
  refusal(namespace: string, name: string): string | undefined;
}

/** `broker`: the operator's broker delivery, undefined when it runs without one. */
export function findSpecViolation(tx: DistributedTransaction, policy: EndpointPolicy, services?: ServiceView, broker?: Pick<BrokerDeliveryDeps, 'subjectPrefix'>): SpecViolation | undefined {
  const branches = Array.isArray(tx.spec?.branches) ? tx.spec.branches : [];
  const brokerProblem = findBrokerViolation(tx, broker);
  if (brokerProblem) return brokerProblem;
  const endpoints: Array<[string, Endpoint]> = [];
  branches.forEach((b, i) => {
    if (!b.broker) endpoints.push([`spec.branches[${i}].endpoint`, b.endpoint ?? {}]);
  });
  const source = tx.spec?.mode === 'Message' ? tx.spec.message?.source?.endpoint : undefined;
  if (source) endpoints.push([MESSAGE_SOURCE_FIELD, source]);
  for (const [field, endpoint] of endpoints) {
    try {
      const r = resolveEndpoint(endpoint, tx.metadata.namespace, field, policy);
      const why = r.service && services?.refusal(r.service.namespace, r.service.name);
      if (why) return { reason: 'InvalidEndpoint', field: `${field}.service`, message: `${field}.service: ${why}` };
    } catch (err) {
      if (err instanceof EndpointPolicyError) return { reason: 'InvalidEndpoint', field: err.field, message: err.message };
      throw err;
    }
  }
  const summary = payloadSummary(tx);
  for (const f of summary.fields) {
    if (f.depth > MAX_PAYLOAD_DEPTH) {
      return { reason: 'PayloadTooDeep', field: f.field, message: `${f.field}: nested deeper than the ${MAX_PAYLOAD_DEPTH} levels allowed` };
    }
    if ((f.bytes ?? 0) > MAX_PAYLOAD_BYTES) {
      return { reason: 'PayloadTooLarge', field: f.field, message: `${f.field}: ${f.bytes} bytes of JSON, more than the ${MAX_PAYLOAD_BYTES} allowed` };
    }
  }
  if (summary.totalBytes > MAX_TOTAL_PAYLOAD_BYTES) {
    return {
      reason: 'PayloadTooLarge',
      field: 'spec',
      message: `spec: the payloads total ${summary.totalBytes} bytes of JSON, more than the ${MAX_TOTAL_PAYLOAD_BYTES} allowed for one transaction`,
    };
  }
  return undefined;
}

/** Broker branches: only in Message and Notify mode, never beside an endpoint, only on an operator with a broker, and a subject NATS accepts. */
function findBrokerViolation(tx: DistributedTransaction, broker: Pick<BrokerDeliveryDeps, 'subjectPrefix'> | undefined): SpecViolation | undefined {
  const branches = Array.isArray(tx.spec?.branches) ? tx.spec.branches : [];
  for (const [i, b] of branches.entries()) {
    if (!b?.broker) continue;
    const field = `spec.branches[${i}].broker`;
    if (tx.spec.mode !== 'Message' && tx.spec.mode !== 'Notify') {
      return { reason: 'InvalidBroker', field, message: `${field}: broker branches are for Message and Notify (spec.mode is ${tx.spec.mode}); a ${tx.spec.mode} branch needs an endpoint` };
    }
    if (b.endpoint) return { reason: 'InvalidBroker', field, message: `${field}: set exactly one of endpoint or broker` };
    if (!broker) {
      return { reason: 'BrokerNotConfigured', field, message: `${field}: this operator has no broker configured (it runs without --nats-url; chart value broker.nats.url)` };
    }
    const problem = typeof b.broker.subject === 'string' ? subjectProblem(brokerSubject(broker.subjectPrefix, tx.metadata.namespace, b.broker.subject)) : 'subject is missing';
    if (problem) return { reason: 'InvalidBroker', field: `${field}.subject`, message: `${field}.subject: ${problem}` };
  }
  return undefined;
}
