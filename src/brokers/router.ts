/**
 * BrokerRouter: sends each committed message on the route the shared switch
 * names, fails over to Redis when NATS is unhealthy, and comes back when it
 * is healthy again and Redis is drained.
 *
 * Failover. `failureThreshold` consecutive NATS publishes failing
 * `unavailable` (a timeout counts) within `failureWindowMs` flip the switch
 * to redis, and the publish that tripped it is retried on Redis at once with
 * the same message id. A `rejected` failure never counts: it is this
 * message's fault or a configuration error, which failing over would hide.
 *
 * Recovery. While the route is redis, `nats.probe()` runs every `probeMs`.
 * After `recoverAfterMs` of continuous success, and once the Redis queues are
 * drained (every consumer group has consumed and acked every entry), the
 * router closes the Redis queues (a fence inside Redis that makes every
 * replica's XADD refuse), checks the drain again, and flips to nats. Closing
 * first is what keeps per-key order: no entry can reach Redis after the check,
 * so no message of a key goes to NATS while an earlier one still waits in
 * Redis. A publish refused by the fence re-reads the switch and goes to NATS.
 *
 * Order kept, per message key, for a caller that has at most one message per
 * key in flight (awaits each publish before the next of the same key): the
 * stored sequence is NATS, then Redis, then NATS again, each in publish
 * order; a message may be stored twice (a NATS timeout after the store, then
 * Redis) — consumers deduplicate by message id.
 *
 * Both down: publish throws an `unavailable` BrokerError within the
 * publishers' timeouts. Nothing is lost: the caller keeps the message
 * committed-but-undelivered and retries. A manual route (`manual: "true"`)
 * is never flipped by health checks: on a manual nats route NATS failures
 * are thrown to the caller; on a manual redis route the recovery waits.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { sleep } from '../controller/timers.js';
import { BrokerError } from './errors.js';
import type { BrokerMessage } from './message.js';
import { BrokerMetrics, type PublishResult } from './metrics.js';
import type { NatsAck, NatsPublisher } from './nats-publisher.js';
import { QUEUES_CLOSED, type RedisAck, type RedisQueues } from './redis-queues.js';
import type { Route, RouteState, RouteSwitch } from './route-switch.js';

export type PublishAck = NatsAck | RedisAck;

/** What the recovery loop last saw; for logs, `kubectl dtx broker status` and tests. */
export interface RouterStatus {
  route: Route;
  manual: boolean;
  /** Since when (ms since epoch) every NATS probe has succeeded; undefined while on nats or after a failed probe. */
  natsHealthySince?: number;
  /** The last probe: when, and whether NATS answered. */
  lastProbe?: { at: number; healthy: boolean };
  /** The last drain check: when, and the entries still waiting in Redis (undefined: Redis did not answer). */
  lastDrainCheck?: { at: number; pending: number | undefined };
}

export interface BrokerRouterOptions {
  /** What publishes to NATS and answers the recovery probe (a NatsPublisher, or connect.ts's lazily connected one). */
  nats: Pick<NatsPublisher, 'publish' | 'probe'>;
  redis: RedisQueues;
  /** Started and stopped by the router. */
  routeSwitch: RouteSwitch;
  /** Written into the Redis fence token. */
  identity: string;
  /** Consecutive `unavailable` NATS publishes that flip to redis. @default 3 */
  failureThreshold?: number;
  /** The consecutive failures must fall within this window. @default 10000 */
  failureWindowMs?: number;
  /** How often NATS is probed while on redis. @default 1000 */
  probeMs?: number;
  /** How long NATS must stay healthy before switching back. @default 10000 */
  recoverAfterMs?: number;
  /** Consumer groups that must drain the Redis queues before switching back. @default every group found on each key */
  groups?: string[];
  /** How long a switch-back holds the queues closed waiting for the last entries to be acked. @default 1000 */
  closeWaitMs?: number;
  /** How long a publish refused by the fence keeps re-reading the switch before giving up (unavailable). @default 5000 */
  closedRetryMs?: number;
  registry?: Registry;
  /** A flip this replica made. */
  onFlip?: (from: Route, to: Route, reason: string) => void;
  /** Every route change seen, whoever made it. */
  onRouteChange?: (state: RouteState, previous: RouteState) => void;
  onPublish?: (route: Route, result: PublishResult, ms: number) => void;
  logger?: Logger;
}

export class BrokerRouter {
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly probeMs: number;
  private readonly recoverAfterMs: number;
  private readonly closeWaitMs: number;
  private readonly closedRetryMs: number;
  private readonly metrics?: BrokerMetrics;
  private failures: number[] = [];
  private flipping?: Promise<RouteState>;
  private refreshing?: Promise<RouteState>;
  private healthySince?: number;
  private lastProbe?: { at: number; healthy: boolean };
  private lastDrainCheck?: { at: number; pending: number | undefined };
  private probeTimer?: NodeJS.Timeout;
  private probing = false;
  private stopped = true;
  private unsubscribe?: () => void;

  constructor(private readonly opts: BrokerRouterOptions) {
    this.threshold = opts.failureThreshold ?? 3;
    this.windowMs = opts.failureWindowMs ?? 10_000;
    this.probeMs = opts.probeMs ?? 1000;
    this.recoverAfterMs = opts.recoverAfterMs ?? 10_000;
    this.closeWaitMs = opts.closeWaitMs ?? 1000;
    this.closedRetryMs = opts.closedRetryMs ?? 5000;
    if (opts.registry) this.metrics = new BrokerMetrics(opts.registry);
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.unsubscribe = this.opts.routeSwitch.onChange((state, previous) => {
      this.metrics?.setRoute(state.route);
      // A failover (by anyone) overrides a switch-back in progress: make sure Redis takes writes.
      if (previous.route === 'nats' && state.route === 'redis') void this.opts.redis.open().catch(() => undefined);
      if (state.route === 'nats') this.healthySince = undefined;
      this.opts.onRouteChange?.(state, previous);
    });
    const state = await this.opts.routeSwitch.start();
    this.metrics?.setRoute(state.route);
    this.scheduleProbe();
  }

  stop(): void {
    this.stopped = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.unsubscribe?.();
    this.opts.routeSwitch.stop();
  }

  get route(): Route {
    return this.opts.routeSwitch.current().route;
  }

  status(): RouterStatus {
    const s = this.opts.routeSwitch.current();
    return {
      route: s.route,
      manual: s.manual,
      ...(this.healthySince !== undefined ? { natsHealthySince: this.healthySince } : {}),
      ...(this.lastProbe ? { lastProbe: this.lastProbe } : {}),
      ...(this.lastDrainCheck ? { lastDrainCheck: this.lastDrainCheck } : {}),
    };
  }

  async publish(msg: BrokerMessage): Promise<PublishAck> {
    const closedDeadline = Date.now() + this.closedRetryMs;
    for (;;) {
      const state = this.opts.routeSwitch.current();
      if (state.route === 'nats') {
        const started = Date.now();
        try {
          const ack = await this.opts.nats.publish(msg);
          this.failures = [];
          this.count('nats', ack.duplicate ? 'duplicate' : 'ok', started);
          return ack;
        } catch (err) {
          const e = asBrokerError(err, 'nats');
          this.count('nats', e.kind, started);
          // The route moved while this publish waited (another publish tripped the failover): go to Redis now.
          if (e.kind === 'unavailable' && this.opts.routeSwitch.current().route === 'redis') continue;
          if (e.kind === 'rejected' || state.manual || !this.recordFailure()) throw e;
          const after = await this.failover(e).catch((flipErr: unknown) => {
            this.opts.logger?.warn({ err: String(flipErr) }, 'could not flip the broker route to redis');
            return undefined;
          });
          if (after?.route !== 'redis') throw e;
          continue; // the same message, at once, on Redis
        }
      }
      const started = Date.now();
      try {
        const ack = await this.opts.redis.publish(msg);
        this.count('redis', ack.duplicate ? 'duplicate' : 'ok', started);
        return ack;
      } catch (err) {
        const e = asBrokerError(err, 'redis');
        if (e.reason === QUEUES_CLOSED && Date.now() < closedDeadline) {
          // A switch-back is closing the queues: learn the new route (or wait for the fence to lift).
          const now = await this.refreshRoute().catch(() => state);
          if (now.route === 'redis') await sleep(50);
          continue;
        }
        this.count('redis', e.kind, started);
        throw e;
      }
    }
  }

  /** One ConfigMap read shared by every publish that waits on the fence at the same time. */
  private refreshRoute(): Promise<RouteState> {
    this.refreshing ??= this.opts.routeSwitch.refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private count(route: Route, result: PublishResult, started: number): void {
    this.metrics?.publishTotal.inc({ route, result });
    this.opts.onPublish?.(route, result, Date.now() - started);
  }

  /** Records an unavailable NATS publish; true when the streak trips the threshold. */
  private recordFailure(): boolean {
    const now = Date.now();
    this.failures = [...this.failures.filter((t) => now - t <= this.windowMs), now];
    return this.failures.length >= this.threshold;
  }

  private failover(cause: BrokerError): Promise<RouteState> {
    this.flipping ??= (async () => {
      const message = `${this.failures.length} consecutive NATS publishes failed (last: ${cause.reason}: ${cause.message})`.slice(0, 1024);
      const res = await this.opts.routeSwitch.flip('redis', { reason: 'NatsUnavailable', message, expect: 'nats' });
      if (res.flipped) {
        this.failures = [];
        await this.opts.redis.open().catch(() => undefined);
        this.flipped('nats', 'redis', 'NatsUnavailable');
      }
      return res.state;
    })().finally(() => {
      this.flipping = undefined;
    });
    return this.flipping;
  }

  private flipped(from: Route, to: Route, reason: string): void {
    this.metrics?.flipsTotal.inc({ from, to, reason });
    this.opts.logger?.warn({ from, to, reason }, 'broker route flipped');
    this.opts.onFlip?.(from, to, reason);
  }

  private scheduleProbe(): void {
    if (this.stopped) return;
    this.probeTimer = setTimeout(() => void this.probe().finally(() => this.scheduleProbe()), this.probeMs);
    this.probeTimer.unref();
  }

  /** One recovery step while on redis. */
  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const state = this.opts.routeSwitch.current();
      if (state.route !== 'redis') {
        this.healthySince = undefined;
        return;
      }
      const healthy = await this.opts.nats.probe().then(() => true, () => false);
      this.lastProbe = { at: Date.now(), healthy };
      if (!healthy) {
        this.healthySince = undefined;
        return;
      }
      this.healthySince ??= this.lastProbe.at;
      if (state.manual || Date.now() - this.healthySince < this.recoverAfterMs) return;
      // Cheap check first, without holding the queues closed.
      const pending = await this.opts.redis.pendingTotal(this.opts.groups).catch(() => undefined);
      this.lastDrainCheck = { at: Date.now(), pending };
      if (pending !== 0) return;
      await this.switchBack();
    } finally {
      this.probing = false;
    }
  }

  private async switchBack(): Promise<void> {
    const { redis, routeSwitch } = this.opts;
    const token = `${this.opts.identity}/${randomUUID()}`;
    if (!(await redis.close(token, this.closeWaitMs + 5000).catch(() => false))) return; // Redis down, or another replica is at it
    let flippedBack = false;
    try {
      const deadline = Date.now() + this.closeWaitMs;
      let drained = await redis.drained(this.opts.groups).catch(() => false);
      while (!drained && Date.now() < deadline) {
        await sleep(50);
        drained = await redis.drained(this.opts.groups).catch(() => false);
      }
      if (!drained) return;
      const res = await routeSwitch.flip('nats', {
        reason: 'NatsRecovered',
        message: `NATS healthy for ${Date.now() - (this.healthySince ?? Date.now())} ms and the Redis queues drained`,
        expect: 'redis',
      });
      flippedBack = res.state.route === 'nats';
      if (res.flipped) this.flipped('redis', 'nats', 'NatsRecovered');
    } catch (err) {
      this.opts.logger?.warn({ err: String(err) }, 'switch-back to NATS failed; staying on redis');
    } finally {
      // After a switch-back the fence stays until it expires, keeping replicas that have not yet seen the flip off Redis.
      if (!flippedBack) await redis.reopen(token).catch(() => undefined);
    }
  }
}

function asBrokerError(err: unknown, via: 'nats' | 'redis'): BrokerError {
  return err instanceof BrokerError ? err : new BrokerError('unavailable', via, 'Unknown', err instanceof Error ? err.message : String(err), { cause: err });
}
