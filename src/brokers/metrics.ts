/**
 * The broker metrics, named as the operator's (src/controller/metrics.ts) and
 * created at start, initialised to zero for the label values known up front:
 *
 * - kubetx_broker_publish_total{route,result}: publishes by route and result
 *   (ok, duplicate, unavailable, rejected).
 * - kubetx_broker_route{route}: 1 for the route in use, 0 for the other.
 * - kubetx_broker_flips_total{from,to,reason}: flips this replica made.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Route } from './route-switch.js';

export type PublishResult = 'ok' | 'duplicate' | 'unavailable' | 'rejected';

const ROUTES: Route[] = ['nats', 'redis'];
const RESULTS: PublishResult[] = ['ok', 'duplicate', 'unavailable', 'rejected'];

export class BrokerMetrics {
  readonly publishTotal: Counter<'route' | 'result'>;
  readonly route: Gauge<'route'>;
  readonly flipsTotal: Counter<'from' | 'to' | 'reason'>;

  constructor(registry: Registry) {
    this.publishTotal = new Counter({ name: 'kubetx_broker_publish_total', help: 'Broker publishes by route (nats, redis) and result (ok, duplicate, unavailable, rejected).', labelNames: ['route', 'result'], registers: [registry] });
    this.route = new Gauge({ name: 'kubetx_broker_route', help: '1 for the route committed messages take now (nats or redis), 0 for the other.', labelNames: ['route'], registers: [registry] });
    this.flipsTotal = new Counter({ name: 'kubetx_broker_flips_total', help: 'Route flips this replica made, by from, to and reason (NatsUnavailable, NatsRecovered).', labelNames: ['from', 'to', 'reason'], registers: [registry] });
    for (const route of ROUTES) for (const result of RESULTS) this.publishTotal.inc({ route, result }, 0);
    this.flipsTotal.inc({ from: 'nats', to: 'redis', reason: 'NatsUnavailable' }, 0);
    this.flipsTotal.inc({ from: 'redis', to: 'nats', reason: 'NatsRecovered' }, 0);
  }

  setRoute(current: Route): void {
    for (const r of ROUTES) this.route.set({ route: r }, r === current ? 1 : 0);
  }
}
