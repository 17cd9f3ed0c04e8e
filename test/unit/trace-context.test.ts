import { describe, expect, it } from 'vitest';
import {
  TRACEPARENT_ANNOTATION,
  TRACESTATE_ANNOTATION,
  creatorContext,
  formatTraceparent,
  parseTraceparent,
  parseTracestate,
  phaseSpanId,
  traceIdOfUid,
  transactionSpanId,
} from '../../src/tracing/trace-context.js';
import { disabledTracing, startTracing, tracingSettings } from '../../src/tracing/tracing.js';

const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceparent annotation', () => {
  it('accepts a W3C version-00 value', () => {
    expect(parseTraceparent(valid)).toEqual({ ok: true, value: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1 } });
    expect(formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1)).toBe(valid);
  });
  it.each([
    ['uppercase', valid.toUpperCase()],
    ['version ff', valid.replace(/^00/, 'ff')],
    ['version 01 with more fields', `${valid.replace(/^00/, '01')}-extra`],
    ['zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['zero span id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['oversized', valid + 'x'.repeat(100_000)],
    ['short', '00-abc-def-01'],
    ['whitespace', ` ${valid.slice(1)}`],
  ])('refuses %s', (_, v) => {
    expect(parseTraceparent(v)?.ok).toBe(false);
  });
  it('bounds the reason it gives for a huge value', () => {
    const r = parseTraceparent('x'.repeat(1_000_000));
    expect(r?.ok === false && r.reason.length).toBeLessThan(200);
  });
  it('tracestate: kept when valid, dropped otherwise', () => {
    expect(parseTracestate('rojo=00f067aa0ba902b7, congo=t61rcWkgMzE')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(parseTracestate('a=1,'.repeat(40))).toBeUndefined();
    expect(parseTracestate('x'.repeat(600))).toBeUndefined();
    expect(parseTracestate('BAD KEY=1')).toBeUndefined();
    expect(creatorContext({ [TRACEPARENT_ANNOTATION]: valid, [TRACESTATE_ANNOTATION]: 'vendor=v1' })).toMatchObject({ ok: true, value: { traceState: 'vendor=v1' } });
    expect(creatorContext({})).toBeUndefined();
  });
});

describe('derived ids', () => {
  const uid = '0b7e4f3a-2c1d-4e5f-8a9b-1c2d3e4f5a6b';
  it('the trace id is the uid, span ids are stable hashes', () => {
    expect(traceIdOfUid(uid)).toBe('0b7e4f3a2c1d4e5f8a9b1c2d3e4f5a6b');
    expect(traceIdOfUid('not-a-uuid')).toMatch(/^[0-9a-f]{32}$/);
    expect(transactionSpanId(uid)).toMatch(/^[0-9a-f]{16}$/);
    expect(transactionSpanId(uid)).toBe(transactionSpanId(uid));
    expect(phaseSpanId(uid, 'forward')).not.toBe(phaseSpanId(uid, 'Confirm'));
    expect(phaseSpanId(uid, 'forward')).not.toBe(transactionSpanId(uid));
  });
});

describe('tracingSettings', () => {
  it('off by default; --tracing or OTEL_TRACES_EXPORTER=otlp turn it on; OTEL_SDK_DISABLED and none turn it off', async () => {
    expect(tracingSettings(false, {})).toEqual({ enabled: false, serviceName: 'kubetx' });
    expect(tracingSettings(true, {}).enabled).toBe(true);
    expect(tracingSettings(false, { OTEL_TRACES_EXPORTER: 'otlp' }).enabled).toBe(true);
    expect(tracingSettings(true, { OTEL_TRACES_EXPORTER: 'none' }).enabled).toBe(false);
    expect(tracingSettings(true, { OTEL_SDK_DISABLED: 'true' }).enabled).toBe(false);
    expect(tracingSettings(true, { OTEL_SERVICE_NAME: 'ops' }).serviceName).toBe('ops');
    expect(await startTracing(tracingSettings(false, {}), undefined as never)).toBe(disabledTracing);
  });
});
