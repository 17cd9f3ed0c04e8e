/**
 * Turns a branch endpoint into a gRPC target, enforcing the operator's
 * endpoint policy: a tenant must not be able to make the operator call
 * arbitrary hosts, so by default only Services in the transaction's own
 * namespace are allowed and raw addresses are refused.
 */
import { isIP } from 'node:net';
import type { Endpoint } from '../api/types.js';
import { addressRefusal, defaultAddressRules, splitHostPort, type AddressRules } from './address-policy.js';

export interface EndpointPolicy {
  /** Allow `service.namespace` other than the transaction's. @default false */
  allowCrossNamespace: boolean;
  /** Allow `address: host:port`. @default false */
  allowRawAddresses: boolean;
  /** DNS suffix of Services. @default "svc.cluster.local" */
  clusterDomainSuffix: string;
  /**
   * Overrides for running the operator outside the cluster (local demo):
   * "name.namespace" → "host:port".
   */
  serviceOverrides: Map<string, string>;
  /** Addresses refused unless opened explicitly (loopback, metadata, the operator's own ports). */
  addressRules?: AddressRules;
}

export const defaultEndpointPolicy: EndpointPolicy = {
  allowCrossNamespace: false,
  allowRawAddresses: false,
  clusterDomainSuffix: 'svc.cluster.local',
  serviceOverrides: new Map(),
  addressRules: defaultAddressRules(),
};

export interface ResolvedEndpoint {
  /** What to dial when nothing else is known: the override, the raw address, or the Service's DNS name. */
  target: string;
  tlsSecretName?: string;
  serverName?: string;
  /** The Service to resolve through the API (absent for raw addresses and overrides, which the operator's admin set). */
  service?: { namespace: string; name: string; port: number };
}

/** A spec the operator refuses to act on: the transaction fails without calling anyone. */
export class EndpointPolicyError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'EndpointPolicyError';
  }
}

export function resolveEndpoint(endpoint: Endpoint, txNamespace: string, field: string, policy: EndpointPolicy): ResolvedEndpoint {
  const tls = endpoint.tls ? { tlsSecretName: endpoint.tls.secretName, serverName: endpoint.tls.serverName } : {};
  if (endpoint.address !== undefined) {
    if (!policy.allowRawAddresses) {
      throw new EndpointPolicyError(`${field}.address`, 'raw addresses are not allowed by this operator (use endpoint.service, or run the operator with --allow-raw-addresses)');
    }
    const hp = splitHostPort(endpoint.address);
    // A literal IP is judged now, before any call; a hostname is judged on every DNS answer at call time.
    if (hp && isIP(hp.host.replace(/^\[|\]$/g, ''))) {
      const why = addressRefusal(hp.host, hp.port, policy.addressRules ?? defaultAddressRules());
      if (why) throw new EndpointPolicyError(`${field}.address`, why);
    }
    return { target: endpoint.address, ...tls };
  }
  const svc = endpoint.service;
  if (!svc) throw new EndpointPolicyError(field, 'one of service or address is required');
  const ns = svc.namespace ?? txNamespace;
  if (ns !== txNamespace && !policy.allowCrossNamespace) {
    throw new EndpointPolicyError(`${field}.service.namespace`, `Service in namespace "${ns}" is not allowed: only the transaction's own namespace "${txNamespace}" (run the operator with --allow-cross-namespace to change this)`);
  }
  const override = policy.serviceOverrides.get(`${svc.name}.${ns}`);
  if (override) return { target: override, ...tls };
  return { target: `${svc.name}.${ns}.${policy.clusterDomainSuffix}:${svc.port}`, ...tls, service: { namespace: ns, name: svc.name, port: svc.port } };
}
