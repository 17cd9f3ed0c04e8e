/**
 * The operator's broker delivery, from its flags: the NATS connection and
 * the Redis client (credentials and TLS from Secrets in the operator's own
 * namespace), the ConfigMap switch, and the BrokerRouter over them.
 *
 * Neither broker has to be up when the operator starts: NATS connects in the
 * background (until it has, a publish fails `unavailable`, which is what
 * fails over to Redis), and Redis commands fail fast while it is down
 * (`enableOfflineQueue: false`) and it reconnects by itself. Only the
 * Secrets must be readable: a missing Secret or key stops the start with an
 * error naming it, as a bad flag would.
 *
 * Secret keys: NATS — `token`, or `user` + `password`, or `creds` (a NATS
 * credentials file), and optionally `ca.crt`, `tls.crt` + `tls.key`; Redis —
 * `password` (and `username` for an ACL user), optionally `ca.crt` and
 * `tls.crt` + `tls.key` (with a rediss:// URL).
 */
import * as k8s from '@kubernetes/client-node';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { BrokerError } from './errors.js';
import type { BrokerMessage } from './message.js';
import { NatsPublisher, type NatsAck } from './nats-publisher.js';
import { RedisQueues } from './redis-queues.js';
import { RouteSwitch, type Route, type RouteState } from './route-switch.js';
import { BrokerRouter } from './router.js';

export interface BrokerSettings {
  natsUrls: string[];
  natsSecret?: string;
  /** Default expected stream for branches that name none. */
  natsStream?: string;
  redisUrl: string;
  redisSecret?: string;
  redisPrefix: string;
  redisShards: number;
  publishTimeoutMs: number;
  failureThreshold: number;
  failureWindowMs: number;
  recoverAfterMs: number;
  probeMs: number;
  routeConfigMap: string;
}

export interface BrokerDeliveryRuntime {
  router: BrokerRouter;
  stop(): Promise<void>;
}

export interface StartBrokerOptions {
  settings: BrokerSettings;
  kubeConfig: k8s.KubeConfig;
  /** The operator's namespace: the Secrets and the route ConfigMap live here. */
  namespace: string;
  identity: string;
  logger: Logger;
  registry?: Registry;
  /** A flip this replica made, with the state it wrote (for Events). */
  onFlip?: (from: Route, to: Route, state: RouteState) => void;
}

/** Reads the Secrets, creates the clients and starts the router (reading, or creating, the route ConfigMap). */
export async function startBrokerDelivery(o: StartBrokerOptions): Promise<BrokerDeliveryRuntime> {
  const { settings: s, logger } = o;
  const core = o.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const natsSecret = s.natsSecret ? await readSecret(core, o.namespace, s.natsSecret, '--nats-secret') : undefined;
  const redisSecret = s.redisSecret ? await readSecret(core, o.namespace, s.redisSecret, '--redis-secret') : undefined;

  const nats = new LazyNats(natsOptions(s, natsSecret), { timeoutMs: s.publishTimeoutMs, stream: s.natsStream }, logger);
  const redis = new Redis(s.redisUrl, redisOptions(s, redisSecret));
  let redisDown = false;
  redis.on('error', (err: Error) => {
    if (!redisDown) logger.warn({ err: err.message }, 'redis: connection error (retrying)');
    redisDown = true;
  });
  redis.on('ready', () => {
    if (redisDown) logger.info('redis: connected again');
    redisDown = false;
  });
  redis.connect().catch(() => undefined); // reconnects by itself; commands fail fast meanwhile

  const routeSwitch = new RouteSwitch({ kubeConfig: o.kubeConfig, namespace: o.namespace, name: s.routeConfigMap, identity: o.identity, logger });
  const router = new BrokerRouter({
    nats,
    redis: new RedisQueues({ redis, prefix: s.redisPrefix, shards: s.redisShards, timeoutMs: s.publishTimeoutMs }),
    routeSwitch,
    identity: o.identity,
    failureThreshold: s.failureThreshold,
    failureWindowMs: s.failureWindowMs,
    recoverAfterMs: s.recoverAfterMs,
    probeMs: s.probeMs,
    registry: o.registry,
    logger,
    onFlip: (from, to) => o.onFlip?.(from, to, routeSwitch.current()),
    onRouteChange: (state, previous) => logger.info({ from: previous.route, to: state.route, reason: state.reason, manual: state.manual, by: state.changedBy }, 'broker route changed'),
  });
  await router.start();
  logger.info({ route: router.route, nats: s.natsUrls, redisShards: s.redisShards, configMap: s.routeConfigMap }, 'broker delivery started');
  return {
    router,
    stop: async () => {
      router.stop();
      await nats.close();
      redis.disconnect();
    },
  };
}

async function readSecret(core: k8s.CoreV1Api, namespace: string, name: string, flag: string): Promise<Record<string, string>> {
  try {
    const secret = await core.readNamespacedSecret({ namespace, name });
    return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  } catch (err) {
    const code = (err as { code?: number }).code;
    const why = code === 404 ? 'not found' : code === 403 ? 'forbidden (the operator needs get on it: chart value broker.*.secret grants it)' : (err as Error).message;
    throw new Error(`${flag}: Secret ${namespace}/${name}: ${why}`);
  }
}

function natsOptions(s: BrokerSettings, secret: Record<string, string> | undefined): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: s.natsUrls,
    name: 'kubetx-operator',
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  };
  if (!secret) return opts;
  if (secret.creds) opts.authenticator = credsAuthenticator(new TextEncoder().encode(secret.creds));
  else if (secret.token) opts.token = secret.token;
  else if (secret.user) {
    if (!secret.password) throw new Error('--nats-secret: has "user" but no "password"');
    opts.user = secret.user;
    opts.pass = secret.password;
  }
  if (secret['ca.crt'] || secret['tls.crt']) {
    if (!!secret['tls.crt'] !== !!secret['tls.key']) throw new Error('--nats-secret: "tls.crt" and "tls.key" go together');
    opts.tls = {
      ...(secret['ca.crt'] ? { ca: secret['ca.crt'] } : {}),
      ...(secret['tls.crt'] ? { cert: secret['tls.crt'], key: secret['tls.key'] } : {}),
    };
  }
  return opts;
}

function redisOptions(s: BrokerSettings, secret: Record<string, string> | undefined): RedisOptions {
  const opts: RedisOptions = {
    lazyConnect: true,
    // Fail fast while Redis is down: the router must see the error, not a command waiting in a queue.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: s.publishTimeoutMs,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    connectionName: 'kubetx-operator',
  };
  if (secret?.password) opts.password = secret.password;
  if (secret?.username) opts.username = secret.username;
  if (secret?.['ca.crt'] || secret?.['tls.crt']) {
    if (!s.redisUrl.startsWith('rediss://')) throw new Error('--redis-secret: has TLS material (ca.crt, tls.crt) but --redis-url is not rediss://');
    if (!!secret['tls.crt'] !== !!secret['tls.key']) throw new Error('--redis-secret: "tls.crt" and "tls.key" go together');
    opts.tls = {
      ...(secret['ca.crt'] ? { ca: secret['ca.crt'] } : {}),
      ...(secret['tls.crt'] ? { cert: secret['tls.crt'], key: secret['tls.key'] } : {}),
    };
  }
  return opts;
}

/**
 * A NatsPublisher whose connection may not exist yet: connecting runs in the
 * background, and until it has succeeded every publish and probe fails
 * `unavailable` (NotConnected) — the router then fails over. A first connect
 * the server refuses (credentials, TLS) is tried again every RETRY_MS, logged
 * once per distinct error, so fixing the Secret's counterpart on the server
 * side needs no operator restart.
 */
class LazyNats {
  private static readonly RETRY_MS = 5000;
  private publisher?: NatsPublisher;
  private connection?: NatsConnection;
  private closed = false;
  private retry?: NodeJS.Timeout;
  private lastError?: string;

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly publisherOpts: { timeoutMs: number; stream?: string },
    private readonly logger: Logger,
  ) {
    this.connect();
  }

  private connect(): void {
    void connect(this.opts).then(
      (nc) => {
        if (this.closed) return void nc.close();
        this.connection = nc;
        this.publisher = new NatsPublisher({ connection: nc, ...this.publisherOpts });
        this.logger.info({ server: nc.getServer() }, 'nats: connected');
      },
      (err: unknown) => {
        const text = (err as Error).message;
        if (text !== this.lastError) this.logger.error({ err: text, retryInMs: LazyNats.RETRY_MS }, 'nats: cannot connect (delivery stays on the other route)');
        this.lastError = text;
        if (this.closed) return;
        this.retry = setTimeout(() => this.connect(), LazyNats.RETRY_MS);
        this.retry.unref();
      },
    );
  }

  publish(msg: BrokerMessage): Promise<NatsAck> {
    return this.publisher ? this.publisher.publish(msg) : Promise.reject(notConnected());
  }

  probe(): Promise<void> {
    return this.publisher ? this.publisher.probe() : Promise.reject(notConnected());
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    await this.connection?.close().catch(() => undefined);
  }
}

function notConnected(): BrokerError {
  return new BrokerError('unavailable', 'nats', 'NotConnected', 'not connected to NATS yet');
}

export type { Route };
