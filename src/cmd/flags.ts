/**
 * The operator's command-line flags. Every flag has a default suitable for a
 * cluster install; the Helm chart exposes them as values. Unknown or
 * ill-formed flags are an error naming the flag, never ignored.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { CALL_HISTORY_LEVELS, DEFAULT_CALL_HISTORY, parseDuration, type CallHistory, type CheckTimeoutAction } from '../engine/index.js';
import { parseCidr, splitHostPort, type Cidr } from '../participants/address-policy.js';
import { EVENT_LEVELS, type EventLevel } from '../controller/event-level.js';
import { QUEUE_DEFAULTS } from '../controller/rate-limiter.js';
import { brokerOptions, brokerUsage, parseBrokerFlags, type BrokerFlags } from './broker-flags.js';

export interface OperatorFlags {
  kubeconfig?: string;
  workers: number;
  namespaces: string[];
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  allowRawAddresses: boolean;
  allowCrossNamespace: boolean;
  /** --allow-address-cidr: ranges opened in the address rules (e.g. loopback for a local test cluster). */
  allowAddressCidrs: Cidr[];
  /** --allow-address: exact host:port pairs opened, the operator's own ports included. */
  allowAddresses: Set<string>;
  /** --dial-address-map: EndpointSlice IP → the IP dialled instead. */
  dialAddressMap: Map<string, string>;
  readTlsSecrets: boolean;
  readPayloadSecrets: boolean;
  clusterDomain: string;
  serviceOverrides: Map<string, string>;
  defaultTtlMs?: number;
  defaultCallTimeoutMs: number;
  maxCallTimeoutMs: number;
  livenessStallMs: number;
  logLevel: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  /** --shards: 0 = no sharding; else shards over the uid hash space, each owned through its own Lease (docs/scaling.md). */
  shards: number;
  /** --shard-filter: auto (probe the API server), server (shardSelector) or client (watch all, filter here). */
  shardFilter: 'auto' | 'server' | 'client';
  /** --shard-lease-prefix: Leases <prefix>-<i> and <prefix>-replica-<identity> in --leader-election-namespace. */
  shardLeasePrefix: string;
  leaseMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  resyncMs: number;
  /** --stall-after-attempts / --stall-after: when a transaction whose calls keep failing gets Stalled=True. */
  stallAfterAttempts: number;
  /** --events: which Events are recorded. */
  events: EventLevel;
  /** --call-history: which answers status.branches[].history records. */
  callHistory: CallHistory;
  stallAfterMs: number;
  identity: string;
  /** 0 = unlimited. */
  maxCallsPerEndpoint: number;
  /** 0 = unlimited. */
  maxForwardTransactions: number;
  /** --queue-qps: the work queue's overall token bucket over rate-limited requeues; 0 = none. */
  queueQps: number;
  /** --queue-burst: that bucket's size. */
  queueBurst: number;
  /** What a Message transaction does when CheckPrepared never answers within its timeout. */
  messageCheckTimeoutAction: CheckTimeoutAction;
  /** --tracing: export spans by OTLP (also on with OTEL_TRACES_EXPORTER=otlp; see src/tracing/tracing.ts). */
  tracing: boolean;
  /** --nats-url and the other broker flags (broker-flags.ts); undefined = broker delivery off. */
  broker?: BrokerFlags;
}

export const usage = `kubetx operator

  --kubeconfig PATH                 kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)
  --workers N                       concurrent reconciles (default 16)
  --namespaces a,b                  watch only these namespaces (default: all)
  --metrics-bind-address ADDR       Prometheus /metrics (default :8080; "0" disables)
  --health-probe-bind-address ADDR  /healthz and /readyz (default :8081; "0" disables)
  --allow-raw-addresses             allow branch endpoint.address (default false)
  --allow-cross-namespace           allow endpoint.service.namespace other than the transaction's (default false)
  --allow-address-cidr CIDR         dial addresses in CIDR although they are loopback/link-local/metadata (repeatable; default none)
  --allow-address HOST:PORT         dial exactly this address, even one of the operator's own ports (repeatable; default none)
  --dial-address-map FROM=TO        dial IP TO where an EndpointSlice lists IP FROM (repeatable; for running outside the cluster network)
  --read-tls-secrets                watch Secrets labelled kubetx.io/tls=true for endpoint.tls client material (default false)
  --read-payload-secrets            watch Secrets labelled kubetx.io/payload=true for payloadFrom.secretKeyRef (default false)
  --cluster-domain DOMAIN           cluster DNS domain; Services are NAME.NS.svc.DOMAIN (default cluster.local)
  --service-override NAME.NS=HOST:PORT  reach a Service at another address (repeatable; for running outside the cluster)
  --default-ttl-after-finished DUR  delete finished transactions after DUR when they set no ttlAfterFinished (default: keep)
  --default-call-timeout DUR        deadline of one participant call when a branch sets none (default 5s)
  --max-call-timeout DUR            cap on any branch's callTimeout; the wait for an endpoint slot counts in it, at most half (default 60s)
  --liveness-stall-timeout DUR      /healthz fails when work is queued and every worker has been in one reconcile this long (default 2m)
  --log-level LEVEL                 trace|debug|info|warn|error (default info)
  --leader-elect                    run leader election (default false; the Helm chart turns it on)
  --leader-election-namespace NS    namespace of the Lease (default: $POD_NAMESPACE or default)
  --leader-election-id NAME         Lease name (default kubetx-operator)
  --shards N                        share the work between replicas: N shards of the uid hash space, each owned
                                    through its own Lease (1..256; default 0 = off; replaces --leader-elect)
  --shard-filter MODE               auto (default: server when the API server honours shardSelector, else client),
                                    server (watch only owned shards, KEP-5866) or client (watch everything, filter here)
  --shard-lease-prefix NAME         shard Leases are NAME-<i>, membership Leases NAME-replica-<identity>, in the
                                    --leader-election-namespace (default kubetx-shard)
  --lease-duration DUR              (default 15s)
  --renew-deadline DUR              (default 10s)
  --retry-period DUR                (default 2s)
  --resync-period DUR               re-list and requeue everything this often (default 5m)
  --max-calls-per-endpoint N        participant calls in flight per endpoint; more wait in FIFO order (default 32; 0 = unlimited)
  --max-forward-transactions N      TCC/Saga transactions in their forward phase at once; new ones wait Pending (default 0 = unlimited)
  --queue-qps N                     rate-limited requeues (failed reconciles, lost write races) at most N/s overall
                                    on top of the per-key backoff; first adds and timed requeues are never limited (default 50; 0 = no limit)
  --queue-burst N                   ... after a burst of N at once (default 100)
  --message-check-timeout-action A  Message with no answer from CheckPrepared within spec.timeout: Rollback (default) or Fail (a human decides)
  --events LEVEL                    which Events to record: warnings (default: failures, rollbacks, escalations,
                                    refusals, answers to people), changes (also each transaction's Normal outcome),
                                    all (also the Normal decisions). The status is the audit trail either way
  --call-history LEVEL              which answers status.branches[].history records: failures (default: from a branch's
                                    first answer that was not ok on; a branch whose calls all succeeded has none) or all
  --stall-after-attempts N          condition Stalled=True once a branch failed N calls in a row in a phase that must succeed (default 5)
  --stall-after DUR                 ... or once a branch has been failing this long after the phase began (default 10m)
  --tracing                         export OpenTelemetry spans by OTLP/HTTP, configured by the OTEL_* variables
                                    (default false; OTEL_TRACES_EXPORTER=otlp also turns it on, OTEL_SDK_DISABLED=true off)
${brokerUsage}`;

export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorFlags {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      kubeconfig: { type: 'string' },
      workers: { type: 'string', default: '16' },
      namespaces: { type: 'string', default: '' },
      'metrics-bind-address': { type: 'string', default: ':8080' },
      'health-probe-bind-address': { type: 'string', default: ':8081' },
      'allow-raw-addresses': { type: 'boolean', default: false },
      'allow-cross-namespace': { type: 'boolean', default: false },
      'read-tls-secrets': { type: 'boolean', default: false },
      'read-payload-secrets': { type: 'boolean', default: false },
      'allow-address-cidr': { type: 'string', multiple: true, default: [] },
      'allow-address': { type: 'string', multiple: true, default: [] },
      'dial-address-map': { type: 'string', multiple: true, default: [] },
      'cluster-domain': { type: 'string', default: 'cluster.local' },
      'service-override': { type: 'string', multiple: true, default: [] },
      'default-ttl-after-finished': { type: 'string' },
      'default-call-timeout': { type: 'string', default: '5s' },
      'max-call-timeout': { type: 'string', default: '60s' },
      'liveness-stall-timeout': { type: 'string', default: '2m' },
      'log-level': { type: 'string', default: 'info' },
      'leader-elect': { type: 'boolean', default: false },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string', default: 'kubetx-operator' },
      shards: { type: 'string', default: '0' },
      'shard-filter': { type: 'string', default: 'auto' },
      'shard-lease-prefix': { type: 'string', default: 'kubetx-shard' },
      'lease-duration': { type: 'string', default: '15s' },
      'renew-deadline': { type: 'string', default: '10s' },
      'retry-period': { type: 'string', default: '2s' },
      'resync-period': { type: 'string', default: '5m' },
      'max-calls-per-endpoint': { type: 'string', default: '32' },
      'max-forward-transactions': { type: 'string', default: '0' },
      'queue-qps': { type: 'string', default: String(QUEUE_DEFAULTS.qps) },
      'queue-burst': { type: 'string', default: String(QUEUE_DEFAULTS.burst) },
      'message-check-timeout-action': { type: 'string', default: 'Rollback' },
      'stall-after-attempts': { type: 'string', default: '5' },
      events: { type: 'string', default: 'warnings' },
      'call-history': { type: 'string', default: DEFAULT_CALL_HISTORY },
      'stall-after': { type: 'string', default: '10m' },
      tracing: { type: 'boolean', default: false },
      ...brokerOptions,
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) throw new UsageRequested();
  const duration = (flag: string, v: string) => {
    try {
      return parseDuration(v);
    } catch (err) {
      throw new Error(`--${flag}: ${(err as Error).message}`);
    }
  };
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024) throw new Error(`--workers: want an integer 1..1024, got "${values.workers}"`);
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(values['log-level'])) {
    throw new Error(`--log-level: unknown level "${values['log-level']}"`);
  }
  const count = (flag: 'max-calls-per-endpoint' | 'max-forward-transactions') => {
    const v = values[flag];
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw new Error(`--${flag}: want an integer >= 0 (0 = unlimited), got "${v}"`);
    return n;
  };
  const queueQps = /^\d+(\.\d+)?(e[+-]?\d+)?$/i.test(values['queue-qps']) ? Number(values['queue-qps']) : NaN;
  if (!Number.isFinite(queueQps)) throw new Error(`--queue-qps: want a number >= 0 (0 = no limit), got "${values['queue-qps']}"`);
  const queueBurst = /^\d+$/.test(values['queue-burst']) ? Number(values['queue-burst']) : NaN;
  if (!Number.isSafeInteger(queueBurst) || queueBurst < 1) throw new Error(`--queue-burst: want an integer >= 1, got "${values['queue-burst']}"`);
  const checkTimeout = values['message-check-timeout-action'];
  if (checkTimeout !== 'Rollback' && checkTimeout !== 'Fail') {
    throw new Error(`--message-check-timeout-action: want Rollback or Fail, got "${checkTimeout}"`);
  }
  const stallAttempts = /^\d+$/.test(values['stall-after-attempts']) ? Number(values['stall-after-attempts']) : NaN;
  if (!Number.isSafeInteger(stallAttempts) || stallAttempts < 1) throw new Error(`--stall-after-attempts: want an integer >= 1, got "${values['stall-after-attempts']}"`);
  if (!(EVENT_LEVELS as readonly string[]).includes(values.events)) throw new Error(`--events: want ${EVENT_LEVELS.join(', ')}, got "${values.events}"`);
  if (!(CALL_HISTORY_LEVELS as readonly string[]).includes(values['call-history'])) {
    throw new Error(`--call-history: want ${CALL_HISTORY_LEVELS.join(' or ')}, got "${values['call-history']}"`);
  }
  const shards = /^\d+$/.test(values.shards) ? Number(values.shards) : NaN;
  if (!Number.isInteger(shards) || shards > 256) throw new Error(`--shards: want an integer 0..256 (0 = no sharding), got "${values.shards}"`);
  if (shards > 0 && values['leader-elect']) throw new Error('--shards and --leader-elect exclude each other: with --shards every replica works, on the shards it holds the Lease of');
  const shardFilter = values['shard-filter'];
  if (shardFilter !== 'auto' && shardFilter !== 'server' && shardFilter !== 'client') throw new Error(`--shard-filter: want auto, server or client, got "${shardFilter}"`);
  // A label value (kubetx.io/shard-set) and the start of Lease names.
  if (!/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/.test(values['shard-lease-prefix'])) {
    throw new Error(`--shard-lease-prefix: want a DNS label of at most 40 characters, got "${values['shard-lease-prefix']}"`);
  }
  const serviceOverrides = new Map<string, string>();
  for (const o of values['service-override']) {
    const m = /^([a-z0-9-]+\.[a-z0-9-]+)=(.+:\d+)$/.exec(o);
    if (!m) throw new Error(`--service-override: want NAME.NAMESPACE=HOST:PORT, got "${o}"`);
    serviceOverrides.set(m[1]!, m[2]!);
  }
  const flags: OperatorFlags = {
    kubeconfig: values.kubeconfig,
    workers,
    namespaces: values.namespaces.split(',').map((s) => s.trim()).filter(Boolean),
    metricsBindAddress: values['metrics-bind-address'],
    healthProbeBindAddress: values['health-probe-bind-address'],
    allowRawAddresses: values['allow-raw-addresses'],
    allowCrossNamespace: values['allow-cross-namespace'],
    readTlsSecrets: values['read-tls-secrets'],
    readPayloadSecrets: values['read-payload-secrets'],
    allowAddressCidrs: values['allow-address-cidr'].map((c) => {
      try {
        return parseCidr(c);
      } catch (err) {
        throw new Error(`--allow-address-cidr: ${(err as Error).message}`);
      }
    }),
    dialAddressMap: new Map(
      values['dial-address-map'].map((m): [string, string] => {
        const [from, to] = m.split('=');
        if (!from || !to || !isIP(from) || !isIP(to)) throw new Error(`--dial-address-map: want FROM_IP=TO_IP, got "${m}"`);
        return [from, to];
      }),
    ),
    allowAddresses: new Set(
      values['allow-address'].map((a) => {
        const hp = splitHostPort(a);
        if (!hp) throw new Error(`--allow-address: want HOST:PORT or [IPv6]:PORT, got "${a}"`);
        return a;
      }),
    ),
    clusterDomain: values['cluster-domain'].replace(/^svc\./, ''),
    serviceOverrides,
    defaultTtlMs: values['default-ttl-after-finished'] ? duration('default-ttl-after-finished', values['default-ttl-after-finished']) : undefined,
    defaultCallTimeoutMs: duration('default-call-timeout', values['default-call-timeout']),
    maxCallTimeoutMs: duration('max-call-timeout', values['max-call-timeout']),
    livenessStallMs: duration('liveness-stall-timeout', values['liveness-stall-timeout']),
    logLevel: values['log-level'],
    leaderElect: values['leader-elect'],
    leaderElectionNamespace: values['leader-election-namespace'] ?? env.POD_NAMESPACE ?? 'default',
    leaderElectionId: values['leader-election-id'],
    shards,
    shardFilter,
    shardLeasePrefix: values['shard-lease-prefix'],
    leaseMs: duration('lease-duration', values['lease-duration']),
    renewDeadlineMs: duration('renew-deadline', values['renew-deadline']),
    retryPeriodMs: duration('retry-period', values['retry-period']),
    resyncMs: duration('resync-period', values['resync-period']),
    identity: env.POD_NAME ?? `${env.HOSTNAME ?? 'kubetx'}-${process.pid}`,
    maxCallsPerEndpoint: count('max-calls-per-endpoint'),
    maxForwardTransactions: count('max-forward-transactions'),
    queueQps,
    queueBurst,
    messageCheckTimeoutAction: checkTimeout,
    stallAfterAttempts: stallAttempts,
    events: values.events as EventLevel,
    callHistory: values['call-history'] as CallHistory,
    stallAfterMs: duration('stall-after', values['stall-after']),
    tracing: values.tracing,
    broker: parseBrokerFlags(values, duration),
  };
  if (flags.defaultCallTimeoutMs > flags.maxCallTimeoutMs) {
    throw new Error(`--default-call-timeout (${values['default-call-timeout']}) must not exceed --max-call-timeout (${values['max-call-timeout']})`);
  }
  if (!(flags.retryPeriodMs < flags.renewDeadlineMs && flags.renewDeadlineMs < flags.leaseMs)) {
    throw new Error('--retry-period < --renew-deadline < --lease-duration must hold');
  }
  return flags;
}

export class UsageRequested extends Error {
  constructor() {
    super('usage requested');
  }
}
