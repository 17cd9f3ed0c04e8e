/**
 * The operator's broker flags (docs/message-and-notify.md, "Broker
 * delivery"): parsed apart from the rest of flags.ts because they form one
 * feature, off unless --nats-url is given.
 */
import type { BrokerSettings } from '../brokers/connect.js';
import { DEFAULT_REDIS_PREFIX, DEFAULT_REDIS_SHARDS, subjectProblem } from '../brokers/message.js';
import { DEFAULT_ROUTE_CONFIGMAP } from '../brokers/route-switch.js';
import { DEFAULT_SUBJECT_PREFIX } from '../participants/broker-delivery.js';

export interface BrokerFlags extends BrokerSettings {
  /** Subjects are `<subjectPrefix>.<namespace>.<branch subject>`. */
  subjectPrefix: string;
}

export const brokerUsage = `  --nats-url URL[,URL]              deliver Message/Notify branches with spec.branches[].broker to NATS JetStream
                                    (default: off; broker branches are then refused, reason BrokerNotConfigured)
  --nats-secret NAME                Secret (operator namespace): token | user+password | creds; ca.crt, tls.crt+tls.key
  --nats-stream NAME                the JetStream stream that must store messages of branches naming none (default: any)
  --redis-url URL                   the Redis fallback (redis:// or rediss://; required with --nats-url; not Redis Cluster)
  --redis-secret NAME               Secret (operator namespace): password (username); ca.crt, tls.crt+tls.key with rediss://
  --broker-subject-prefix P         subjects are P.<namespace>.<subject> (default ${DEFAULT_SUBJECT_PREFIX})
  --broker-redis-prefix P           Redis keys are P:<subject>:<shard> (default ${DEFAULT_REDIS_PREFIX})
  --broker-redis-shards N           Redis streams per subject, chosen by hashing the message key (default ${DEFAULT_REDIS_SHARDS}; 1..1024)
  --broker-publish-timeout DUR      wait for a broker's ack this long (default 2s)
  --broker-failure-threshold N      consecutive NATS publishes failing unavailable that fail over to Redis (default 3)
  --broker-failure-window DUR       ... within this window (default 10s)
  --broker-recover-after DUR        NATS healthy this long (and Redis drained) before switching back (default 10s)
  --broker-probe-interval DUR       probe NATS this often while on Redis (default 1s)
  --broker-route-configmap NAME     the shared switch, in --leader-election-namespace (default ${DEFAULT_ROUTE_CONFIGMAP})
`;

export const brokerOptions = {
  'nats-url': { type: 'string' },
  'nats-secret': { type: 'string' },
  'nats-stream': { type: 'string' },
  'redis-url': { type: 'string' },
  'redis-secret': { type: 'string' },
  'broker-subject-prefix': { type: 'string', default: DEFAULT_SUBJECT_PREFIX },
  'broker-redis-prefix': { type: 'string', default: DEFAULT_REDIS_PREFIX },
  'broker-redis-shards': { type: 'string', default: String(DEFAULT_REDIS_SHARDS) },
  'broker-publish-timeout': { type: 'string', default: '2s' },
  'broker-failure-threshold': { type: 'string', default: '3' },
  'broker-failure-window': { type: 'string', default: '10s' },
  'broker-recover-after': { type: 'string', default: '10s' },
  'broker-probe-interval': { type: 'string', default: '1s' },
  'broker-route-configmap': { type: 'string', default: DEFAULT_ROUTE_CONFIGMAP },
} as const;

type WithDefault = { [K in keyof typeof brokerOptions]: (typeof brokerOptions)[K] extends { default: string } ? K : never }[keyof typeof brokerOptions];
type Values = { [K in WithDefault]: string } & { [K in Exclude<keyof typeof brokerOptions, WithDefault>]?: string };

const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** undefined when broker delivery is off (no --nats-url); throws with the flag's name on a bad value. */
export function parseBrokerFlags(values: Values, duration: (flag: string, v: string) => number): BrokerFlags | undefined {
  const natsUrl = values['nats-url'];
  if (!natsUrl) {
    const stray = (['redis-url', 'nats-secret', 'redis-secret', 'nats-stream'] as const).find((f) => values[f] !== undefined);
    if (stray) throw new Error(`--${stray} needs --nats-url (broker delivery is off without it)`);
    return undefined;
  }
  const natsUrls = natsUrl.split(',').map((u) => u.trim()).filter(Boolean);
  for (const u of natsUrls) if (!/^(nats|tls|wss?):\/\/[^\s/]+/.test(u) && !/^[^\s/:]+:\d+$/.test(u)) throw new Error(`--nats-url: want nats://host:port (comma-separated), got "${u}"`);
  const redisUrl = values['redis-url'];
  if (!redisUrl) throw new Error('--redis-url is required with --nats-url: Redis is where delivery fails over to while NATS is unhealthy');
  if (!/^rediss?:\/\/[^\s]+$/.test(redisUrl)) throw new Error(`--redis-url: want redis://host:port[/db] or rediss://…, got "${redisUrl}"`);
  for (const f of ['nats-secret', 'redis-secret'] as const) {
    const v = values[f];
    if (v !== undefined && !SECRET_NAME.test(v)) throw new Error(`--${f}: want a Secret name, got "${v}"`);
  }
  if (values['nats-stream'] !== undefined && !STREAM_NAME.test(values['nats-stream'])) throw new Error(`--nats-stream: want a stream name ([A-Za-z0-9_-], at most 64), got "${values['nats-stream']}"`);
  const subjectPrefix = values['broker-subject-prefix'];
  const prefixProblem = subjectProblem(subjectPrefix);
  if (prefixProblem) throw new Error(`--broker-subject-prefix: ${prefixProblem}`);
  if (subjectPrefix.length > 40) throw new Error('--broker-subject-prefix: at most 40 characters');
  const redisPrefix = values['broker-redis-prefix'];
  if (!/^[A-Za-z0-9_.-]{1,40}$/.test(redisPrefix)) throw new Error(`--broker-redis-prefix: want 1..40 of [A-Za-z0-9_.-], got "${redisPrefix}"`);
  const integer = (flag: 'broker-redis-shards' | 'broker-failure-threshold', max: number) => {
    const n = /^\d+$/.test(values[flag]) ? Number(values[flag]) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${flag}: want an integer 1..${max}, got "${values[flag]}"`);
    return n;
  };
  const routeConfigMap = values['broker-route-configmap'];
  if (!SECRET_NAME.test(routeConfigMap)) throw new Error(`--broker-route-configmap: want a ConfigMap name, got "${routeConfigMap}"`);
  return {
    natsUrls,
    natsSecret: values['nats-secret'],
    natsStream: values['nats-stream'],
    redisUrl,
    redisSecret: values['redis-secret'],
    redisPrefix,
    redisShards: integer('broker-redis-shards', 1024),
    publishTimeoutMs: duration('broker-publish-timeout', values['broker-publish-timeout']),
    failureThreshold: integer('broker-failure-threshold', 1000),
    failureWindowMs: duration('broker-failure-window', values['broker-failure-window']),
    recoverAfterMs: duration('broker-recover-after', values['broker-recover-after']),
    probeMs: duration('broker-probe-interval', values['broker-probe-interval']),
    routeConfigMap,
    subjectPrefix,
  };
}
