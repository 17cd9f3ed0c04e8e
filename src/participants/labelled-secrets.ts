/**
 * A watch of the Secrets that carry one opt-in label, in the watched
 * namespaces. The label is the namespace owner's consent that the operator
 * may use the Secret for a transaction (TLS material, payloads); no other
 * Secret is ever read, and lookups are served from the watch (no GET per call).
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ResilientInformer } from '../controller/informer.js';

export class LabelledSecretCache {
  private readonly informers: ResilientInformer<k8s.V1Secret>[] = [];

  constructor(kc: k8s.KubeConfig, namespaces: string[], readonly label: string, logger: Logger) {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const labelSelector = `${label}=true`;
    for (const ns of namespaces.length > 0 ? namespaces : [undefined]) {
      this.informers.push(
        new ResilientInformer<k8s.V1Secret>({
          kubeConfig: kc,
          path: ns ? `/api/v1/namespaces/${ns}/secrets` : '/api/v1/secrets',
          labelSelector,
          list: () => (ns ? core.listNamespacedSecret({ namespace: ns, labelSelector }) : core.listSecretForAllNamespaces({ labelSelector })),
          onUpsert: () => undefined,
          onDelete: () => undefined,
          logger,
        }),
      );
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
    await Promise.all(this.informers.map((i) => i.waitForSync()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  /** The labelled Secret, or undefined (missing and unlabelled look the same). */
  get(namespace: string, name: string): k8s.V1Secret | undefined {
    const secret = this.informers.map((i) => i.get(name, namespace)).find(Boolean);
    return secret?.metadata?.labels?.[this.label] === 'true' ? secret : undefined;
  }
}
