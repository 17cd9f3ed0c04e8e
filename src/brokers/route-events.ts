/**
 * An Event (events.k8s.io/v1) about a broker route flip, regarding the route
 * ConfigMap, so `kubectl get events -n <operator namespace>` and
 * `kubectl dtx broker status` show when and why delivery moved. Written by the
 * replica that flipped; a failure to record it is logged, never fatal.
 */
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Route, RouteState } from './route-switch.js';

export interface RouteEventOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  configMap: string;
  identity: string;
  logger: Logger;
}

/** BrokerFailover (Warning) for nats → redis, BrokerRecovered (Normal) for redis → nats. */
export function routeEventRecorder(o: RouteEventOptions): (from: Route, to: Route, state: RouteState) => void {
  const api = o.kubeConfig.makeApiClient(k8s.EventsV1Api);
  return (from, to, state) => {
    const now = Date.now();
    const failover = to === 'redis';
    const reason = failover ? 'BrokerFailover' : 'BrokerRecovered';
    const note = `broker route ${from} → ${to} (${state.reason}${state.manual ? ', manual' : ''}): ${state.message}`.slice(0, 1024);
    void api
      .createNamespacedEvent({
        namespace: o.namespace,
        body: {
          // Named as client-go names Events (<object>.<unique hex>); generateName's suffix would follow a trailing '.', which names may not end in.
          metadata: { name: `${o.configMap}.${now.toString(16)}${randomBytes(2).toString('hex')}`, namespace: o.namespace },
          eventTime: new k8s.V1MicroTime(now),
          reportingController: 'kubetx.io/operator',
          reportingInstance: o.identity,
          action: state.reason || reason,
          reason,
          type: failover ? 'Warning' : 'Normal',
          note,
          regarding: { apiVersion: 'v1', kind: 'ConfigMap', name: o.configMap, namespace: o.namespace },
        },
      })
      .catch((err: unknown) => o.logger.warn({ reason, err: String(err) }, 'could not record the broker route event'));
  };
}
