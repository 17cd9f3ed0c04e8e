/**
 * Trace context on the participant side. The operator sends W3C trace
 * context in every call's gRPC metadata (`traceparent`, and `tracestate`
 * when the transaction's creator gave one) whenever its tracing is on.
 *
 *   - The handler sees the validated header as `ctx.traceparent` (to log it, or
 *     hand it to any tracer), OpenTelemetry or not.
 *   - When the application has an OpenTelemetry SDK registered (the global
 *     tracer provider of `@opentelemetry/api` is not the no-op one), each call
 *     runs in a SERVER span, child of the operator's CLIENT span, active for
 *     the handler and the middleware.
 *
 * `@opentelemetry/api` is an optional peer dependency: it is imported
 * dynamically once, and without it nothing here loads or runs. Nothing of it
 * appears in this package's declarations.
 */
import type * as grpc from '@grpc/grpc-js';

type OtelApi = typeof import('@opentelemetry/api');

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The call's `traceparent` metadata when it is a valid W3C version-00 value, else undefined. */
export function traceparentOf(metadata: grpc.Metadata): string | undefined {
  const v = metadata.get('traceparent')[0];
  if (typeof v !== 'string' || v.length !== 55) return undefined;
  const m = TRACEPARENT.exec(v);
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return v;
}

let api: OtelApi | undefined;
let loading: Promise<void> | undefined;

/** Imports @opentelemetry/api if the application has it; resolves either way. */
export function loadTracing(): Promise<void> {
  loading ??= import('@opentelemetry/api').then(
    (m) => {
      // ESM or the CommonJS build seen through ESM.
      api = ((m as { trace?: unknown }).trace ? m : (m as unknown as { default: OtelApi }).default) as OtelApi;
    },
    () => undefined,
  );
  return loading;
}

export interface ServerSpanInfo {
  /** "kubetx.v1.TccParticipant/Try". */
  path: string;
  method: string;
  attributes: Record<string, string | number>;
}

/** What a call reports to its span when it ends. */
export interface SpanEnd {
  outcome: string;
  code: number;
  error?: boolean;
}

/**
 * Runs `work` inside a SERVER span when an OpenTelemetry SDK is registered
 * (parent: the call's traceparent), and as is otherwise.
 */
export function withServerSpan<T>(traceparent: string | undefined, metadata: grpc.Metadata, info: ServerSpanInfo, work: () => Promise<T>, endOf: (r: { ok: true; value: T } | { ok: false; error: unknown }) => SpanEnd): Promise<T> {
  const otel = api;
  if (!otel || !sdkRegistered(otel)) return work();
  let parent = otel.ROOT_CONTEXT;
  if (traceparent) {
    const [, traceId, spanId, flags] = traceparent.split('-');
    const state = metadata.get('tracestate')[0];
    parent = otel.trace.setSpanContext(parent, {
      traceId: traceId!,
      spanId: spanId!,
      traceFlags: parseInt(flags!, 16),
      isRemote: true,
      ...(typeof state === 'string' && state.length <= 512 ? { traceState: otel.createTraceState(state) } : {}),
    });
  }
  const span = otel.trace.getTracer('@kubetx/participant').startSpan(
    info.path,
    { kind: otel.SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': info.path.split('/')[0] ?? info.path, 'rpc.method': info.method, ...info.attributes } },
    parent,
  );
  const finish = (e: SpanEnd) => {
    span.setAttribute('kubetx.outcome', e.outcome);
    span.setAttribute('rpc.grpc.status_code', e.code);
    if (e.error) span.setStatus({ code: otel.SpanStatusCode.ERROR });
    span.end();
  };
  return otel.context.with(otel.trace.setSpan(parent, span), work).then(
    (value) => {
      finish(endOf({ ok: true, value }));
      return value;
    },
    (error: unknown) => {
      finish(endOf({ ok: false, error }));
      throw error;
    },
  );
}

let noopProvider: unknown;

/** Is a real tracer provider registered (not the API's no-op)? Checked per call: an app may register one after serving. */
function sdkRegistered(otel: OtelApi): boolean {
  const global = otel.trace.getTracerProvider() as { getDelegate?: () => unknown };
  const delegate = typeof global.getDelegate === 'function' ? global.getDelegate() : global;
  noopProvider ??= new otel.ProxyTracerProvider().getDelegate();
  return delegate !== noopProvider;
}
