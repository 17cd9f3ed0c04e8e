/**
 * Traces of transactions (OpenTelemetry, exported by OTLP/HTTP protobuf).
 * Off by default; when off the reconciler holds `disabledTracing` and no
 * OpenTelemetry module is loaded at all — the SDK is imported only by
 * `startTracing`, when --tracing or OTEL_TRACES_EXPORTER=otlp asks for it.
 *
 * What a trace holds, and why it is shaped so (docs/tracing.md):
 *
 *   creator's span (kubetx.io/traceparent)            optional
 *   └─ kubetx.transaction <mode>       CONSUMER  creation → completion
 *      ├─ kubetx.phase <forward phase> INTERNAL  startTime → decisionTime (or completion)
 *      │  └─ <service>/<method>        CLIENT    one participant call → SERVER span in the participant
 *      └─ kubetx.phase <decided phase> INTERNAL  decisionTime → completionTime
 *         └─ <service>/<method>        CLIENT
 *
 * A transaction outlives reconciles, processes and replicas, so no span of it
 * is held in memory. The transaction's and the phases' span ids are derived
 * from its uid (trace-context.ts), so every call span names its parent
 * whichever process makes it; the phase and transaction spans themselves are
 * exported by the reconcile that persists their end (the decision, the final
 * phase), with their start and end taken from the persisted times. A crash
 * between that write and the export loses those spans, not the calls' spans;
 * nothing here ever costs a status write.
 */
import type { Logger } from 'pino';
import type { DistributedTransaction, TransactionStatus } from '../api/types.js';
import type { Call } from '../engine/types.js';
import type { CallObservation } from '../participants/caller.js';

/** The span of one participant call, started just before the call is made. */
export interface CallSpan {
  /** gRPC metadata for the call: traceparent (and tracestate), always, sampled or not. */
  readonly headers: Readonly<Record<string, string>>;
  end(outcome: CallObservation): void;
}

export interface TransactionTracing {
  readonly enabled: boolean;
  /** A CLIENT span for `call`, made while the transaction is in `phase` (with `decision` taken, if any); undefined when off. */
  startCall(tx: DistributedTransaction, call: Call, phase: string | undefined, decision: string | undefined): CallSpan | undefined;
  /** This operator wrote `after` over `before.status`: exports the spans of the phases (and the transaction) that write ended. */
  written(before: DistributedTransaction, after: TransactionStatus): void;
  /** Exports what is buffered (SIGTERM). */
  shutdown(): Promise<void>;
}

export const disabledTracing: TransactionTracing = {
  enabled: false,
  startCall: () => undefined,
  written: () => undefined,
  shutdown: async () => undefined,
};

export interface TracingSettings {
  enabled: boolean;
  /** OTEL_SERVICE_NAME, else "kubetx". */
  serviceName: string;
}

/**
 * Tracing is on with --tracing or OTEL_TRACES_EXPORTER=otlp, and off whatever
 * else says so when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
 */
export function tracingSettings(flag: boolean, env: NodeJS.ProcessEnv): TracingSettings {
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || (exporters.length > 0 && exporters.every((e) => e === 'none'));
  return { enabled: !disabled && (flag || exporters.includes('otlp')), serviceName: env.OTEL_SERVICE_NAME?.trim() || 'kubetx' };
}

/** Loads the OpenTelemetry SDK and the OTLP exporter (only now) and returns the operator's tracing. */
export async function startTracing(settings: TracingSettings, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<TransactionTracing> {
  if (!settings.enabled) return disabledTracing;
  const { OtelTracing } = await import('./otel.js');
  return OtelTracing.start(settings, logger, env);
}
