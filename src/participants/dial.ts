/**
 * From a branch's endpoint to a gRPC client and the slot key it waits on.
 *
 *   endpoint.service  → the Service's ready EndpointSlice addresses (through
 *                       the API, never DNS; service-resolver.ts), one per call
 *                       in turn; each address judged by the address rules.
 *   endpoint.address  → a literal IP judged by the rules; a hostname resolved
 *                       now, every answer judged, and the checked IP dialled
 *                       (a second lookup cannot return something else).
 *   --service-override → as given: the operator's admin set it.
 *
 * The endpoint limiter's slot is per Service (or per raw address), so
 * --max-calls-per-endpoint still bounds the calls to one participant however
 * many pods it has.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Client } from '@grpc/grpc-js';
import type { Endpoint } from '../api/types.js';
import { addressRefusal, defaultAddressRules, splitHostPort } from './address-policy.js';
import { resolveEndpoint, type EndpointPolicy } from './endpoint.js';
import type { ChannelPool, TlsMaterial } from './pool.js';
import type { ServiceResolver } from './service-resolver.js';

export interface DialDeps {
  pool: ChannelPool;
  policy: EndpointPolicy;
  loadTls?: (namespace: string, name: string) => Promise<{ material: TlsMaterial; version: string }>;
  /** Services through the API; without it (tests of the caller alone) a Service is dialled by its DNS name. */
  services?: ServiceResolver;
  /** DNS for raw hostnames. @default node:dns lookup, every address */
  lookupHost?: (host: string) => Promise<string[]>;
  /**
   * --dial-address-map FROM=TO: dial TO where an EndpointSlice says FROM (an
   * operator running outside the cluster network, as in the tests). The
   * address rules judge the address actually dialled.
   */
  addressMap?: Map<string, string>;
}

export interface Dialled {
  client: Client;
  /** The endpoint limiter's key. */
  slot: string;
}

const lookupAll = async (host: string) => (await lookup(host, { all: true })).map((a) => a.address);

export async function dial(deps: DialDeps, endpoint: Endpoint, namespace: string, field: string): Promise<Dialled> {
  const resolved = resolveEndpoint(endpoint, namespace, field, deps.policy);
  const rules = deps.policy.addressRules ?? defaultAddressRules();
  let target = resolved.target;
  let slot = resolved.target;
  let authority: string | undefined;
  if (resolved.service && deps.services) {
    const { namespace: ns, name, port } = resolved.service;
    slot = `svc:${ns}/${name}:${port}`;
    const ready = deps.services.readyTargets(ns, name, port).map((t) => {
      const hp = splitHostPort(t)!;
      const to = deps.addressMap?.get(hp.host.replace(/^\[|\]$/g, ''));
      return to ? (to.includes(':') ? `[${to}]:${hp.port}` : `${to}:${hp.port}`) : t;
    });
    const allowed = ready.filter((t) => {
      const hp = splitHostPort(t)!;
      return addressRefusal(hp.host.replace(/^\[|\]$/g, ''), hp.port, rules) === undefined;
    });
    if (allowed.length === 0) {
      const hp = splitHostPort(ready[0]!)!;
      throw new Error(`${field}.service: Service ${ns}/${name}: ${addressRefusal(hp.host.replace(/^\[|\]$/g, ''), hp.port, rules)}`);
    }
    target = deps.services.pick(slot, allowed);
    // TLS verification and :authority use the Service's name, not the pod's IP.
    authority = resolved.target.replace(/:\d+$/, '');
  } else if (endpoint.address !== undefined) {
    const hp = splitHostPort(endpoint.address);
    if (!hp) throw new Error(`${field}.address: "${endpoint.address}" is not host:port`);
    if (!isIP(hp.host.replace(/^\[|\]$/g, ''))) {
      const answers = await (deps.lookupHost ?? lookupAll)(hp.host);
      if (answers.length === 0) throw new Error(`${field}.address: ${hp.host} has no address`);
      for (const ip of answers) {
        const why = addressRefusal(ip, hp.port, rules);
        if (why) throw new Error(`${field}.address: ${hp.host} resolves to ${why}`);
      }
      target = answers[0]!.includes(':') ? `[${answers[0]}]:${hp.port}` : `${answers[0]}:${hp.port}`;
      authority = hp.host;
    }
  }
  let tls;
  if (resolved.tlsSecretName) {
    if (!deps.loadTls) throw new Error('endpoint.tls needs an operator that reads TLS Secrets (--read-tls-secrets; chart value tls.readSecrets)');
    const s = await deps.loadTls(namespace, resolved.tlsSecretName);
    tls = { material: s.material, serverName: resolved.serverName ?? authority, secretVersion: s.version };
  }
  return { client: deps.pool.get(target, tls, authority), slot };
}
