/**
 * `endpoint.service` resolved through the API, not through DNS.
 *
 * Through DNS, a tenant could create an ExternalName Service `order` in its
 * own namespace pointing at another namespace's Service (or at the API server,
 * or at the operator's own ports), name it in a transaction, and have the
 * operator call the victim. So the operator looks the Service up in its own
 * watch caches: it must exist in the namespace the policy allows, must not be
 * ExternalName, and the operator dials only the ready addresses of that
 * Service's EndpointSlices — each call to the next one, so calls spread over
 * the Service's pods instead of following one DNS answer.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ResilientInformer } from '../controller/informer.js';

export class ServiceResolveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceResolveError';
  }
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export class ServiceResolver {
  private readonly services: ResilientInformer<k8s.V1Service>[] = [];
  private readonly slices: ResilientInformer<k8s.V1EndpointSlice>[] = [];
  /** Round-robin position per Service port. */
  private readonly next = new Map<string, number>();

  constructor(kc: k8s.KubeConfig, namespaces: string[], logger: Logger) {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    for (const ns of namespaces.length > 0 ? namespaces : [undefined]) {
      const common = { kubeConfig: kc, onUpsert: () => undefined, onDelete: () => undefined, logger };
      this.services.push(
        new ResilientInformer<k8s.V1Service>({
          ...common,
          path: ns ? `/api/v1/namespaces/${ns}/services` : '/api/v1/services',
          list: () => (ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces()),
          transform: slimService,
        }),
      );
      this.slices.push(
        new ResilientInformer<k8s.V1EndpointSlice>({
          ...common,
          path: ns ? `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices` : '/apis/discovery.k8s.io/v1/endpointslices',
          list: () => (ns ? discovery.listNamespacedEndpointSlice({ namespace: ns }) : discovery.listEndpointSliceForAllNamespaces()),
          transform: slimSlice,
        }),
      );
    }
  }

  async start(): Promise<void> {
    const all = [...this.services, ...this.slices];
    await Promise.all(all.map((i) => i.start()));
    await Promise.all(all.map((i) => i.waitForSync()));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.services, ...this.slices].map((i) => i.stop()));
  }

  /** Why the Service can never be called (it is ExternalName), or undefined; a missing Service may still appear. */
  refusal(namespace: string, name: string): string | undefined {
    const svc = this.services.map((i) => i.get(name, namespace)).find(Boolean);
    return svc?.spec?.type === 'ExternalName' ? externalNameRefusal(namespace, name) : undefined;
  }

  /** Every ready address of the Service's port, as "ip:port" (IPv6 in brackets). */
  readyTargets(namespace: string, name: string, port: number): string[] {
    const ref = `Service ${namespace}/${name}`;
    const svc = this.services.map((i) => i.get(name, namespace)).find(Boolean);
    if (!svc) throw new ServiceResolveError(`${ref} not found`);
    if (svc.spec?.type === 'ExternalName') throw new ServiceResolveError(externalNameRefusal(namespace, name));
    const servicePort = (svc.spec?.ports ?? []).find((p) => p.port === port && (p.protocol ?? 'TCP') === 'TCP');
    if (!servicePort) throw new ServiceResolveError(`${ref} has no TCP port ${port}`);
    const targets: string[] = [];
    for (const inf of this.slices) {
      for (const slice of inf.list(namespace)) {
        if (slice.metadata?.labels?.[SERVICE_NAME_LABEL] !== name) continue;
        // The endpointslice controller resolved targetPort: the slice port carries the Service port's name.
        const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === (servicePort.name ?? '') && (p.protocol ?? 'TCP') === 'TCP');
        if (slicePort?.port === undefined) continue;
        for (const ep of slice.endpoints ?? []) {
          if (ep.conditions?.ready === false) continue;
          for (const a of ep.addresses ?? []) targets.push(a.includes(':') ? `[${a}]:${slicePort.port}` : `${a}:${slicePort.port}`);
        }
      }
    }
    if (targets.length === 0) throw new ServiceResolveError(`${ref} has no ready endpoints for port ${port}`);
    return targets.sort();
  }

  /** The next of `targets` for this Service port, in turn. */
  pick(key: string, targets: string[]): string {
    const i = (this.next.get(key) ?? 0) % targets.length;
    this.next.set(key, i + 1);
    if (this.next.size > 100_000) this.next.clear();
    return targets[i]!;
  }
}

const externalNameRefusal = (namespace: string, name: string) =>
  `Service ${namespace}/${name} is of type ExternalName, which kubetx refuses: its DNS name could send the call outside the namespace`;

/** What resolution needs of a Service; the rest stays out of memory. */
function slimService(s: k8s.V1Service): k8s.V1Service {
  const meta = s.metadata as k8s.V1ObjectMeta | undefined;
  if (meta) {
    delete meta.managedFields;
    delete meta.annotations;
  }
  if (s.spec) s.spec = { type: s.spec.type, ports: s.spec.ports, externalName: s.spec.externalName };
  delete s.status;
  return s;
}

function slimSlice(s: k8s.V1EndpointSlice): k8s.V1EndpointSlice {
  const meta = s.metadata as k8s.V1ObjectMeta | undefined;
  if (meta) {
    delete meta.managedFields;
    delete meta.annotations;
  }
  s.endpoints = (s.endpoints ?? []).map((e) => ({ addresses: e.addresses, conditions: { ready: e.conditions?.ready } }));
  return s;
}
