/**
 * Broker delivery for Message and Notify branches (issue 21): the committed
 * message goes to NATS JetStream, or, while NATS is unhealthy, to Redis
 * streams sharded by message key, on the route a shared ConfigMap switch
 * names. One file per job:
 *
 * - message.ts: the wire format shared with consumers (ids, headers, keys).
 * - nats-publisher.ts: JetStream publish with dedup id, errors classified.
 * - redis-queues.ts: the sharded Redis fallback, dedup script, drain check, fence.
 * - route-switch.ts: the ConfigMap switch (read, flip with preconditions, poll).
 * - router.ts: health, failover, recovery; publish on the current route.
 * - metrics.ts: kubetx_broker_* metrics.
 * - errors.ts: BrokerError (unavailable vs rejected).
 */
export * from './errors.js';
export * from './message.js';
export * from './metrics.js';
export * from './nats-publisher.js';
export * from './redis-queues.js';
export * from './route-switch.js';
export * from './router.js';
