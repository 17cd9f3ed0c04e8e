/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) for transactions,
 * without OpenTelemetry: parsing the `kubetx.io/traceparent` annotation a
 * creator may set, and the span ids the operator derives from a transaction.
 *
 * Every id here is a pure function of the object: the trace id is the
 * annotation's (the transaction joins its creator's trace) or else the uid's
 * 16 bytes; the transaction's span and its phases' spans get ids hashed from
 * the uid. Any reconcile, after any restart, on any replica, computes the same
 * parents without storing anything, so tracing costs no status write.
 *
 * The annotation is tenant input: it is length-bounded, must match the W3C
 * version-00 format exactly, and an invalid one is ignored (the transaction
 * starts its own trace), never an error.
 */
import { createHash } from 'node:crypto';

/** Set by the creator: `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`. */
export const TRACEPARENT_ANNOTATION = 'kubetx.io/traceparent';
/** Optional, with it: the creator's vendor entries (W3C tracestate), passed on unchanged. */
export const TRACESTATE_ANNOTATION = 'kubetx.io/tracestate';

/** The gRPC metadata keys of every participant call made while tracing is on. */
export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';

export interface ParentContext {
  traceId: string;
  spanId: string;
  /** 8-bit trace flags; bit 0 = sampled. */
  flags: number;
  traceState?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const MAX_TRACESTATE = 512;
// A list of at most 32 key=value members (W3C §3.3.1, simple and multi-tenant keys).
const TRACESTATE_MEMBER = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/** A version-00 traceparent, exactly 55 characters; all-zero ids are invalid. */
export function parseTraceparent(value: string | undefined): Parsed<ParentContext> | undefined {
  if (value === undefined) return undefined;
  if (value.length !== 55) return { ok: false, reason: `want 55 characters (00-<trace id>-<span id>-<flags>), got ${Math.min(value.length, 100_000)}` };
  const m = TRACEPARENT.exec(value);
  if (!m) return { ok: false, reason: 'not a W3C traceparent (00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>)' };
  if (/^0+$/.test(m[1]!)) return { ok: false, reason: 'trace id is all zeros' };
  if (/^0+$/.test(m[2]!)) return { ok: false, reason: 'parent span id is all zeros' };
  return { ok: true, value: { traceId: m[1]!, spanId: m[2]!, flags: parseInt(m[3]!, 16) } };
}

/** A W3C tracestate of at most 512 characters and 32 members, or undefined when absent or invalid. */
export function parseTracestate(value: string | undefined): string | undefined {
  if (!value || value.length > MAX_TRACESTATE) return undefined;
  const members = value.split(',').map((m) => m.trim()).filter(Boolean);
  if (members.length === 0 || members.length > 32 || !members.every((m) => TRACESTATE_MEMBER.test(m))) return undefined;
  return members.join(',');
}

export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The creator's context from the annotations: undefined when there is none, a reason when it is invalid. */
export function creatorContext(annotations: Record<string, string> | undefined): Parsed<ParentContext> | undefined {
  const parsed = parseTraceparent(annotations?.[TRACEPARENT_ANNOTATION]);
  if (!parsed?.ok) return parsed;
  const traceState = parseTracestate(annotations?.[TRACESTATE_ANNOTATION]);
  return { ok: true, value: traceState ? { ...parsed.value, traceState } : parsed.value };
}

const hex = (s: string, bytes: number) => createHash('sha256').update(s).digest('hex').slice(0, bytes * 2);

/** The trace id of a transaction that joins no trace: its uid's 16 bytes (a hash when the uid is not a UUID). */
export function traceIdOfUid(uid: string): string {
  const h = uid.replace(/-/g, '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(h) && !/^0+$/.test(h) ? h : hex(`kubetx.io/trace:${uid}`, 16);
}

/** The transaction's own span: one per uid. */
export function transactionSpanId(uid: string): string {
  return nonZero(hex(`kubetx.io/transaction:${uid}`, 8));
}

/** A phase's span: the forward phase ("forward") or the phase carrying out a decision (its name). */
export function phaseSpanId(uid: string, stage: string): string {
  return nonZero(hex(`kubetx.io/phase:${uid}:${stage}`, 8));
}

const nonZero = (id: string) => (/^0+$/.test(id) ? `${id.slice(0, -1)}1` : id);
