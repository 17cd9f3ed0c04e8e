#!/usr/bin/env node
/**
 * The kubetx operator process: parse flags, (optionally) win the leader
 * election, then watch DistributedTransactions and reconcile them until
 * SIGTERM. On SIGTERM it stops taking work, lets in-flight reconciles finish
 * (each is bounded by its calls' deadlines), releases the Lease and exits.
 */
import * as k8s from '@kubernetes/client-node';
import { defaultFieldManager } from './controller/field-manager.js';
import { reuseConnections } from './controller/kube-agent.js';
import { observeRequests } from './controller/rest-client-metrics.js';
import { EventRecorder } from './controller/events.js';
import { withEventLevel } from './controller/event-level.js';
import { serveHttp } from './controller/http.js';
import { LeaderElector } from './controller/leader.js';
import { Manager } from './controller/manager.js';
import { OperatorMetrics } from './controller/metrics.js';
import { Reconciler } from './controller/reconciler.js';
import { CallTracker } from './controller/call-tracker.js';
import { livePayloads } from './controller/payload-source.js';
import { ApiStatusStore, FIELD_MANAGER, type StatusStore } from './controller/status-writer.js';
import { parseFlags, usage, UsageRequested, type OperatorFlags } from './cmd/flags.js';
import { makeStep, parseDuration } from './engine/index.js';
import { makeLogger } from './log.js';
import { ChannelPool } from './participants/pool.js';
import { EndpointLimiter } from './participants/endpoint-limiter.js';
import { ForwardAdmission } from './controller/admission.js';
import { TLS_SECRET_LABEL, TlsSecretCache } from './participants/tls-secret.js';
import { LabelledSecretCache } from './participants/labelled-secrets.js';
import { PAYLOAD_SECRET_LABEL, payloadSecrets } from './participants/payload-secret.js';
import { ServiceResolver } from './participants/service-resolver.js';
import type { AddressRules } from './participants/address-policy.js';
import { startTracing, tracingSettings } from './tracing/tracing.js';
import { ShardLeases } from './controller/sharding/shard-leases.js';
import { serverFiltersShards } from './controller/sharding/filter-probe.js';
import type { BrokerDeliveryRuntime } from './brokers/connect.js';
import { routeEventRecorder } from './brokers/route-events.js';
import { BrokerError } from './brokers/errors.js';
import { KeyLanes } from './participants/key-lanes.js';
import type { BrokerDeliveryDeps } from './participants/broker-delivery.js';

async function main(): Promise<void> {
  let flags: OperatorFlags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageRequested) {
      process.stdout.write(usage);
      process.exit(0);
    }
    process.stderr.write(`kubetx: ${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  const logger = makeLogger(flags.logLevel);
  const kc = new k8s.KubeConfig();
  if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  reuseConnections(kc);
  defaultFieldManager(kc, FIELD_MANAGER);

  const metrics = new OperatorMetrics();
  observeRequests(kc, metrics.restClient());
  const now = () => Date.now();
  const apiStore = new ApiStatusStore(kc, (result) => metrics.statusWrites.inc({ result }));
  let manager: Manager | undefined;
  // Tell the manager about our own writes so it does not reconcile from a cache that has not seen them yet.
  const store: StatusStore = {
    writeStatus: async (tx, status) => {
      const r = await apiStore.writeStatus(tx, status);
      if (r.kind === 'ok') manager?.noteWritten(tx, r.tx);
      return r;
    },
    get: (ns, name) => apiStore.get(ns, name),
    delete: (tx) => apiStore.delete(tx),
    setFinalizers: async (tx, finalizers) => {
      const r = await apiStore.setFinalizers(tx, finalizers);
      if (r.kind === 'ok') manager?.noteWritten(tx, r.tx);
      return r;
    },
  };
  const pool = new ChannelPool();
  const limiter = flags.maxCallsPerEndpoint > 0 ? new EndpointLimiter(flags.maxCallsPerEndpoint) : undefined;
  const admission = flags.maxForwardTransactions > 0 ? new ForwardAdmission(flags.maxForwardTransactions, () => manager?.cachedTransactions() ?? [], now) : undefined;
  metrics.flowControlSource = () => ({ transactions: admission?.waiting() ?? 0, calls: limiter?.totals().waiting ?? 0 });
  // The operator's own ports join the rules once its servers are bound (before any reconcile).
  const addressRules: AddressRules = { allowCidrs: flags.allowAddressCidrs, allowExact: flags.allowAddresses, ownPorts: new Set() };
  const services = new ServiceResolver(kc, flags.namespaces, logger);
  const tlsSecretCache = flags.readTlsSecrets ? new LabelledSecretCache(kc, flags.namespaces, TLS_SECRET_LABEL, logger) : undefined;
  const tlsSecrets = tlsSecretCache ? new TlsSecretCache(tlsSecretCache) : undefined;
  const payloadSecretCache = flags.readPayloadSecrets ? new LabelledSecretCache(kc, flags.namespaces, PAYLOAD_SECRET_LABEL, logger) : undefined;
  const calls = new CallTracker(now);
  // Off by default: then no OpenTelemetry module is even loaded.
  const tracing = await startTracing(tracingSettings(flags.tracing, process.env), logger);
  const recorder = new EventRecorder(kc, logger, flags.identity, now, { onResult: (result) => metrics.events.inc({ result }) });
  const events = withEventLevel(recorder, flags.events, () => metrics.events.inc({ result: 'skipped' }));
  // Broker delivery (--nats-url): started once this replica may work (after the election); until then a publish fails unavailable.
  let brokerRuntime: BrokerDeliveryRuntime | undefined;
  const broker: BrokerDeliveryDeps | undefined = flags.broker
    ? {
        subjectPrefix: flags.broker.subjectPrefix,
        lanes: new KeyLanes(),
        publisher: { publish: (m) => (brokerRuntime ? brokerRuntime.router.publish(m) : Promise.reject(new BrokerError('unavailable', 'nats', 'NotStarted', 'broker delivery has not started yet'))) },
      }
    : undefined;
  const reconciler = new Reconciler({
    calls,
    tracing,
    payloads: livePayloads(kc),
    store,
    caller: {
      pool,
      policy: {
        allowCrossNamespace: flags.allowCrossNamespace,
        allowRawAddresses: flags.allowRawAddresses,
        clusterDomainSuffix: `svc.${flags.clusterDomain}`,
        serviceOverrides: flags.serviceOverrides,
        addressRules,
      },
      services,
      addressMap: flags.dialAddressMap,
      payloadSecrets: payloadSecretCache ? payloadSecrets(payloadSecretCache) : undefined,
      loadTls: tlsSecrets ? async (ns, name) => tlsSecrets.load(ns, name) : undefined,
      now,
      defaultCallTimeoutMs: flags.defaultCallTimeoutMs,
      maxCallTimeoutMs: flags.maxCallTimeoutMs,
      parseDuration,
      limiter,
      broker,
    },
    events,
    metrics,
    logger,
    now,
    defaultTtlMs: flags.defaultTtlMs,
    admission,
    step: makeStep({
      message: { onCheckTimeout: flags.messageCheckTimeoutAction },
      stall: { afterAttempts: flags.stallAfterAttempts, afterMs: flags.stallAfterMs },
      callHistory: flags.callHistory,
    }),
  });
  const shardLeases = flags.shards > 0 ? await joinShards(flags, kc, logger, metrics, () => manager) : undefined;
  manager = new Manager({
    kubeConfig: kc, reconciler, calls, store: apiStore, metrics, logger, workers: flags.workers, namespaces: flags.namespaces, resyncMs: flags.resyncMs, queueQps: flags.queueQps, queueBurst: flags.queueBurst,
    sharding: shardLeases ? { shards: flags.shards, filter: shardLeases.filter, owns: (s) => shardLeases.leases.owns(s) } : undefined,
  });

  // Ready = able to do its job: a standby waiting for the lease is ready (as in
  // controller-runtime), else rolling updates and PodDisruptionBudgets stall on it.
  let ready = false;
  if (flags.metricsBindAddress !== '0') {
    metrics.inFlightSource = () => manager!.inFlightCounts();
    metrics.stalledSource = () => manager!.stalledCounts();
    const { port } = await serveHttp(flags.metricsBindAddress, { registry: metrics.registry });
    addressRules.ownPorts.add(port);
    logger.info({ port }, 'serving /metrics');
  }
  if (flags.healthProbeBindAddress !== '0') {
    const { port } = await serveHttp(flags.healthProbeBindAddress, { ready: () => ready, live: () => manager!.progressing(flags.livenessStallMs) });
    addressRules.ownPorts.add(port);
    logger.info({ port }, 'serving /healthz and /readyz');
  }

  const elector = flags.leaderElect
    ? new LeaderElector({
        kubeConfig: kc,
        namespace: flags.leaderElectionNamespace,
        name: flags.leaderElectionId,
        identity: flags.identity,
        leaseMs: flags.leaseMs,
        renewDeadlineMs: flags.renewDeadlineMs,
        retryMs: flags.retryPeriodMs,
        logger,
        onLeading: (leading) => {
          metrics.leader.set(leading ? 1 : 0);
          // Lost the lease: stop at once; another replica takes over from the persisted status.
          if (!leading) process.exit(1);
        },
      })
    : undefined;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    await manager?.stop().catch(() => undefined);
    await recorder.flush().catch(() => undefined);
    // The spans of what finished while stopping, and any still batched.
    await tracing.shutdown().catch(() => undefined);
    await elector?.release();
    await shardLeases?.leases.stop().catch(() => undefined);
    await brokerRuntime?.stop().catch(() => undefined);
    pool.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  if (elector) {
    ready = true;
    await elector.acquire();
    ready = false;
  } else metrics.leader.set(1);
  if (stopping) return;
  await Promise.all([tlsSecretCache?.start(), payloadSecretCache?.start(), services.start()]);
  if (flags.broker) {
    const namespace = flags.leaderElectionNamespace;
    // Loaded only when asked for: the NATS and Redis clients are ~23 MiB of RSS an operator without a broker never uses.
    const { startBrokerDelivery } = await import('./brokers/connect.js');
    brokerRuntime = await startBrokerDelivery({
      settings: flags.broker,
      kubeConfig: kc,
      namespace,
      identity: flags.identity,
      logger: logger.child({ component: 'broker' }),
      registry: metrics.registry,
      onFlip: routeEventRecorder({ kubeConfig: kc, namespace, configMap: flags.broker.routeConfigMap, identity: flags.identity, logger }),
    });
  }
  // The first round takes this replica's shards, so the manager starts with their watches.
  await shardLeases?.leases.start();
  await manager.start();
  ready = true;
}

/** --shards: which filter the API server allows, and the Leases that say which shards are this replica's. */
async function joinShards(flags: OperatorFlags, kc: k8s.KubeConfig, logger: ReturnType<typeof makeLogger>, metrics: OperatorMetrics, manager: () => Manager | undefined) {
  let filter: 'server' | 'client' = flags.shardFilter === 'client' ? 'client' : 'server';
  if (flags.shardFilter === 'auto') {
    filter = (await serverFiltersShards(kc, flags.leaderElectionNamespace).catch((err) => (logger.warn({ err: (err as Error).message }, 'shard filter probe failed'), false))) ? 'server' : 'client';
  }
  logger.info({ mode: filter, shards: flags.shards, requested: flags.shardFilter }, filter === 'server' ? 'shard filter: the API server sends only owned shards (shardSelector)' : 'shard filter: watching every transaction, filtering here (the API server does not honour shardSelector)');
  metrics.shardFilter.set({ mode: filter }, 1);
  metrics.shardFilter.set({ mode: filter === 'server' ? 'client' : 'server' }, 0);
  const leases = new ShardLeases({
    kubeConfig: kc,
    namespace: flags.leaderElectionNamespace,
    prefix: flags.shardLeasePrefix,
    shards: flags.shards,
    identity: flags.identity,
    leaseMs: flags.leaseMs,
    renewDeadlineMs: flags.renewDeadlineMs,
    retryMs: flags.retryPeriodMs,
    logger,
    metrics,
    onAcquired: (shard) => void manager()?.addShard(shard).catch((err) => logger.error({ shard, err: (err as Error).message }, 'could not start the shard watch')),
    onReleased: async (shard) => {
      await manager()?.removeShard(shard);
    },
  });
  return { filter, leases };
}

main().catch((err) => {
  process.stderr.write(`kubetx: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
