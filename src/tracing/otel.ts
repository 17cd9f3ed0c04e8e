/**
 * The OpenTelemetry side of tracing.ts, imported only when tracing is on.
 * Spans go through a BatchSpanProcessor to the OTLP/HTTP protobuf exporter,
 * which reads the standard OTEL_EXPORTER_OTLP_* variables itself; the
 * sampler follows OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG; the resource
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
 *
 * The provider is the operator's own, not registered globally: every span
 * gets its parent passed explicitly, so no context manager is needed.
 */
import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, createTraceState, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type IdGenerator,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { DistributedTransaction, TransactionStatus } from '../api/types.js';
import type { Call } from '../engine/types.js';
import type { CallObservation } from '../participants/caller.js';
import { methodPath } from '../participants/method-path.js';
import { terminalPhases } from '../controller/phases.js';
import type { CallSpan, TracingSettings, TransactionTracing } from './tracing.js';
import {
  TRACEPARENT_ANNOTATION,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  creatorContext,
  formatTraceparent,
  phaseSpanId,
  traceIdOfUid,
  transactionSpanId,
  type ParentContext,
} from './trace-context.js';

/** The forward phase's name per mode (it is not always persisted: a TCC's first write is its decision). */
const forwardPhase: Record<string, string> = { TCC: 'Trying', Saga: 'Executing', Message: 'Prepared', Notify: 'Notifying' };
/** The phase carrying out each decision. */
const decidedPhase: Record<string, string> = { Confirm: 'Confirming', Cancel: 'Cancelling', Compensate: 'Compensating', Deliver: 'Delivering', Rollback: 'RollingBack' };
const FORWARD = 'forward';

/**
 * Random ids, except for the span started inside `withIds`: the transaction's
 * and phases' spans get the ids every reconcile derives (startSpan is
 * synchronous, so nothing else can take them).
 */
class DerivedIds implements IdGenerator {
  private next: { traceId?: string; spanId?: string } = {};
  generateTraceId(): string {
    const id = this.next.traceId;
    this.next.traceId = undefined;
    return id ?? randomBytes(16).toString('hex');
  }
  generateSpanId(): string {
    const id = this.next.spanId;
    this.next.spanId = undefined;
    return id ?? randomBytes(8).toString('hex');
  }
  withIds<T>(ids: { traceId?: string; spanId: string }, start: () => T): T {
    this.next = { ...ids };
    try {
      return start();
    } finally {
      this.next = {};
    }
  }
}

/** OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, as the specification defines them (default parentbased_always_on). */
export function samplerFromEnv(env: NodeJS.ProcessEnv, warn: (msg: string) => void): Sampler {
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase() || 'parentbased_always_on';
  const rawArg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = () => {
    const r = rawArg ? Number(rawArg) : 1;
    if (!Number.isFinite(r) || r < 0 || r > 1) {
      warn(`OTEL_TRACES_SAMPLER_ARG=${rawArg} is not a ratio in [0, 1]; using 1`);
      return 1;
    }
    return r;
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      warn(`OTEL_TRACES_SAMPLER=${name} is not supported; using parentbased_always_on`);
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** Where a transaction's spans hang: its trace, its creator (if any), whether it is sampled. */
interface TxTrace {
  traceId: string;
  creator?: ParentContext;
  /** The creator's span as a remote parent, or the root. */
  parent: Context;
  sampled: boolean;
}

const attributesOf = (tx: DistributedTransaction): Attributes => ({
  'kubetx.transaction.namespace': tx.metadata.namespace,
  'kubetx.transaction.name': tx.metadata.name,
  'kubetx.transaction.uid': tx.metadata.uid,
  'kubetx.transaction.mode': tx.spec.mode,
});

const timeOf = (iso: string | undefined): Date | undefined => {
  const t = Date.parse(iso ?? '');
  return Number.isNaN(t) ? undefined : new Date(t);
};

export class OtelTracing implements TransactionTracing {
  readonly enabled = true;
  /** uids whose invalid annotation was logged already (bounded: a log line per transaction, not per call). */
  private readonly warned = new Set<string>();

  private constructor(
    private readonly provider: BasicTracerProvider,
    private readonly tracer: Tracer,
    private readonly ids: DerivedIds,
    private readonly sampler: Sampler,
    private readonly logger: Logger,
  ) {}

  static start(settings: TracingSettings, logger: Logger, env: NodeJS.ProcessEnv): OtelTracing {
    const log = logger.child({ component: 'tracing' });
    const sampler = samplerFromEnv(env, (msg) => log.warn(msg));
    const ids = new DerivedIds();
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (envDetector) win over the default name.
    const resource = defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }))
      .merge(detectResources({ detectors: [envDetector] }));
    const provider = new BasicTracerProvider({
      resource,
      sampler,
      idGenerator: ids,
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    });
    const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://localhost:4318';
    log.info({ endpoint, serviceName: settings.serviceName, sampler: sampler.toString() }, 'tracing on: exporting spans by OTLP/HTTP');
    return new OtelTracing(provider, provider.getTracer('kubetx'), ids, sampler, log);
  }

  startCall(tx: DistributedTransaction, call: Call, phase: string | undefined, decision: string | undefined): CallSpan {
    const t = this.traceOf(tx);
    const stage = decision ?? FORWARD;
    const path = methodPath(call.method);
    const service = path.split('/')[1] ?? path;
    const span = this.tracer.startSpan(
      path.slice(1),
      {
        kind: SpanKind.CLIENT,
        attributes: {
          ...attributesOf(tx),
          'rpc.system': 'grpc',
          'rpc.service': service,
          'rpc.method': call.method,
          'kubetx.branch': call.branch,
          'kubetx.method': call.method,
          'kubetx.attempt': call.attempt,
          ...(phase ? { 'kubetx.phase': phase } : {}),
        },
      },
      trace.setSpanContext(ROOT_CONTEXT, this.spanContext(t, phaseSpanId(tx.metadata.uid, stage))),
    );
    const sc = span.spanContext();
    const headers: Record<string, string> = { [TRACEPARENT_HEADER]: formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags) };
    if (t.creator?.traceState) headers[TRACESTATE_HEADER] = t.creator.traceState;
    return {
      headers,
      end: (o: CallObservation) => {
        span.setAttribute('kubetx.outcome', o.kind);
        const code = (GrpcStatus as unknown as Record<string, number>)[o.code];
        if (typeof code === 'number') span.setAttribute('rpc.grpc.status_code', code);
        if (o.kind !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: o.code });
        span.end();
      },
    };
  }

  written(before: DistributedTransaction, after: TransactionStatus): void {
    const prev = before.status;
    const decided = !!after.decision && !prev?.decision;
    const finished = !!after.phase && terminalPhases.has(after.phase) && !terminalPhases.has(prev?.phase ?? '');
    if (!decided && !finished) return;
    const t = this.traceOf(before);
    const uid = before.metadata.uid;
    const start = timeOf(after.startTime) ?? timeOf(before.metadata.creationTimestamp) ?? new Date();
    const decisionAt = timeOf(after.decisionTime);
    const completion = timeOf(after.completionTime) ?? new Date();
    const txCtx = trace.setSpanContext(ROOT_CONTEXT, this.spanContext(t, transactionSpanId(uid)));
    const phaseSpan = (stage: string, name: string, from: Date, to: Date, attrs: Attributes) =>
      this.emit({ spanId: phaseSpanId(uid, stage) }, `kubetx.phase ${name}`, SpanKind.INTERNAL, txCtx, from, to, { ...attributesOf(before), 'kubetx.phase': name, ...attrs });
    if (decided) phaseSpan(FORWARD, forwardPhase[before.spec.mode] ?? 'Forward', start, decisionAt ?? completion, { 'kubetx.decision': after.decision! });
    if (!finished) return;
    if (after.decision) phaseSpan(after.decision, decidedPhase[after.decision] ?? after.decision, decisionAt ?? start, completion, { 'kubetx.decision': after.decision, 'kubetx.outcome': after.phase! });
    else phaseSpan(FORWARD, forwardPhase[before.spec.mode] ?? 'Forward', start, completion, { 'kubetx.outcome': after.phase! });
    const created = timeOf(before.metadata.creationTimestamp) ?? start;
    this.emit(
      { traceId: t.creator ? undefined : t.traceId, spanId: transactionSpanId(uid) },
      `kubetx.transaction ${before.spec.mode}`,
      SpanKind.CONSUMER,
      t.parent,
      created < start ? created : start,
      completion,
      { ...attributesOf(before), 'kubetx.outcome': after.phase!, ...(after.decision ? { 'kubetx.decision': after.decision } : {}) },
      after.phase === 'Failed' || after.phase === 'Aborted' || after.phase === 'Compensated' || after.phase === 'RolledBack' || after.phase === 'Exhausted',
    );
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }

  private emit(ids: { traceId?: string; spanId: string }, name: string, kind: SpanKind, parent: Context, start: Date, end: Date, attributes: Attributes, error = false): void {
    const span: Span = this.ids.withIds(ids, () => this.tracer.startSpan(name, { kind, startTime: start, attributes }, parent));
    if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: String(attributes['kubetx.outcome'] ?? '') });
    span.end(end < start ? start : end);
  }

  private spanContext(t: TxTrace, spanId: string): SpanContext {
    const sc: SpanContext = { traceId: t.traceId, spanId, traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true };
    if (t.creator?.traceState) sc.traceState = createTraceState(t.creator.traceState);
    return sc;
  }

  private traceOf(tx: DistributedTransaction): TxTrace {
    const c = creatorContext(tx.metadata.annotations);
    if (c && !c.ok) this.warnOnce(tx, c.reason);
    const creator = c?.ok ? c.value : undefined;
    const traceId = creator?.traceId ?? traceIdOfUid(tx.metadata.uid);
    const parent = creator
      ? trace.setSpanContext(ROOT_CONTEXT, {
          traceId: creator.traceId,
          spanId: creator.spanId,
          traceFlags: creator.flags,
          isRemote: true,
          ...(creator.traceState ? { traceState: createTraceState(creator.traceState) } : {}),
        })
      : ROOT_CONTEXT;
    // The decision the SDK takes for the transaction's span, taken here for every span under it
    // (deterministic: the configured samplers decide from the parent's flags and the trace id).
    const sampled = this.sampler.shouldSample(parent, traceId, `kubetx.transaction ${tx.spec.mode}`, SpanKind.CONSUMER, {}, []).decision === SamplingDecision.RECORD_AND_SAMPLED;
    return { traceId, creator, parent, sampled };
  }

  private warnOnce(tx: DistributedTransaction, reason: string): void {
    if (this.warned.has(tx.metadata.uid)) return;
    if (this.warned.size >= 10_000) this.warned.clear();
    this.warned.add(tx.metadata.uid);
    this.logger.warn({ namespace: tx.metadata.namespace, transaction: tx.metadata.name, uid: tx.metadata.uid, annotation: TRACEPARENT_ANNOTATION, reason }, 'invalid trace context annotation ignored: the transaction starts its own trace');
  }
}
