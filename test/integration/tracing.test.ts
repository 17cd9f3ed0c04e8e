/**
 * Traces end to end: the operator exports by OTLP/HTTP protobuf to a receiver
 * in this test (a node:http server decoding ExportTraceServiceRequest with a
 * small hand-written protobuf reader), and participants served by the TS SDK
 * in this process, with an OpenTelemetry SDK registered here, export their
 * SERVER spans to the same receiver. Checked: creator → transaction → phase →
 * CLIENT call → SERVER call, by ids; the attributes; an invalid annotation
 * (a new trace and a log line); and with tracing off (the default) no span
 * and no traceparent metadata at all.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveParticipant, type BranchContext, type Participant } from '../../sdk/typescript/src/index.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { transactions } from '../support/payment.js';

interface RSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
}
const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, CONSUMER: 5 };

// --- a minimal OTLP/HTTP protobuf receiver -------------------------------------------------
function* fields(buf: Uint8Array): Generator<[number, WireType, BinaryReader]> {
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    yield [no, wt, r];
  }
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
function anyValue(buf: Uint8Array): string | number | boolean {
  for (const [no, wt, r] of fields(buf)) {
    if (no === 1) return r.string();
    if (no === 2) return r.bool();
    if (no === 3) return Number(r.int64());
    if (no === 4) return r.double();
    r.skip(wt);
  }
  return '';
}
function keyValue(buf: Uint8Array): [string, string | number | boolean] {
  let key = '';
  let value: string | number | boolean = '';
  for (const [no, wt, r] of fields(buf)) {
    if (no === 1) key = r.string();
    else if (no === 2) value = anyValue(r.bytes());
    else r.skip(wt);
  }
  return [key, value];
}
function decodeExport(body: Uint8Array): RSpan[] {
  const out: RSpan[] = [];
  for (const [no, wt, r] of fields(body)) {
    if (no !== 1) { r.skip(wt); continue; }
    let service = '';
    const spans: Omit<RSpan, 'service'>[] = [];
    for (const [rno, rwt, rr] of fields(r.bytes())) {
      if (rno === 1) {
        for (const [ano, awt, ar] of fields(rr.bytes())) {
          if (ano !== 1) { ar.skip(awt); continue; }
          const [k, v] = keyValue(ar.bytes());
          if (k === 'service.name') service = String(v);
        }
      } else if (rno === 2) {
        for (const [sno, swt, sr] of fields(rr.bytes())) {
          if (sno !== 2) { sr.skip(swt); continue; }
          const s = { traceId: '', spanId: '', parentSpanId: '', name: '', kind: 0, attributes: {} as RSpan['attributes'] };
          for (const [fno, fwt, fr] of fields(sr.bytes())) {
            if (fno === 1) s.traceId = hex(fr.bytes());
            else if (fno === 2) s.spanId = hex(fr.bytes());
            else if (fno === 4) s.parentSpanId = hex(fr.bytes());
            else if (fno === 5) s.name = fr.string();
            else if (fno === 6) s.kind = fr.int32();
            else if (fno === 9) {
              const [k, v] = keyValue(fr.bytes());
              s.attributes[k] = v;
            } else fr.skip(fwt);
          }
          spans.push(s);
        }
      } else rr.skip(rwt);
    }
    for (const s of spans) out.push({ service, ...s });
  }
  return out;
}

let receiver: Server;
let receiverUrl: string;
const received: RSpan[] = [];
const contentTypes = new Set<string>();

// --- participants in this process, traced by an SDK registered here -------------------------
interface Seen { uid: string; method: string; traceparent: string | undefined; activeSpanId: string | undefined }
const seen: Seen[] = [];
let provider: BasicTracerProvider;
let tracer: Tracer;
let participants: Participant[] = [];

const record = (ctx: BranchContext) => {
  seen.push({ uid: ctx.uid, method: ctx.method, traceparent: ctx.traceparent, activeSpanId: trace.getActiveSpan()?.spanContext().spanId });
  return { message: 'ok' };
};

let kc: k8s.KubeConfig;
let ns: string;
let txs: ReturnType<typeof transactions>;
let operator: OperatorProcess | undefined;

function tcc(name: string, annotations?: Record<string, string>): DistributedTransaction {
  return {
    apiVersion: 'kubetx.io/v1alpha1',
    kind: 'DistributedTransaction',
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) } as DistributedTransaction['metadata'],
    spec: {
      mode: 'TCC',
      timeout: '30s',
      branches: participants.map((p, i) => ({ name: `b${i}`, endpoint: { address: `127.0.0.1:${p.port}` }, callTimeout: '5s' })),
    },
  };
}

const otelEnv = () => ({
  OTEL_TRACES_EXPORTER: 'otlp',
  OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
  OTEL_BSP_SCHEDULE_DELAY: '200',
  OTEL_SERVICE_NAME: 'kubetx-under-test',
});

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      contentTypes.add(String(req.headers['content-type']));
      if (req.method === 'POST' && req.url === '/v1/traces' && req.headers['content-type'] === 'application/x-protobuf') {
        received.push(...decodeExport(Buffer.concat(chunks)));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } else res.writeHead(415).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'participant' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${receiverUrl}/v1/traces` }))],
  });
  trace.setGlobalTracerProvider(provider);
  tracer = trace.getTracer('creator');

  participants = await Promise.all(
    [0, 1].map(() => serveParticipant({ address: '127.0.0.1:0', logger: silent, tcc: { try: record, confirm: record, cancel: record } })),
  );
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'tracing');
  txs = transactions(kc);
});

afterAll(async () => {
  await operator?.kill();
  await Promise.all(participants.map((p) => p.shutdown(1000)));
  await provider?.shutdown();
  trace.disable();
  context.disable();
  await new Promise((r) => receiver?.close(r));
});

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child() { return silent; } } as never;
const byUid = (uid: string) => received.filter((s) => s.attributes['kubetx.transaction.uid'] === uid);

describe('tracing on (OTEL_TRACES_EXPORTER=otlp)', () => {
  beforeAll(async () => {
    operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns], env: otelEnv() });
  });
  afterAll(async () => {
    await operator?.kill();
    operator = undefined;
  });

  it('creator → transaction → phases → CLIENT calls → SERVER calls, one trace, linked by ids', async () => {
    const creator = tracer.startSpan('create order');
    const c = creator.spanContext();
    const traceparent = `00-${c.traceId}-${c.spanId}-01`;
    creator.end();
    const created = await txs.create(tcc('traced', { 'kubetx.io/traceparent': traceparent }));
    const tx = await txs.untilPhase(ns, 'traced', ['Committed']);
    const uid = tx.metadata.uid;
    expect(created.metadata.uid).toBe(uid);

    const spans = await eventually('the transaction span and 4 SERVER spans', async () => {
      const mine = byUid(uid);
      return mine.some((s) => s.name === 'kubetx.transaction TCC') && mine.filter((s) => s.kind === KIND.SERVER).length >= 4 ? mine : undefined;
    }, 30_000);
    expect([...contentTypes]).toEqual(['application/x-protobuf']);
    expect(received.find((s) => s.spanId === c.spanId)?.name).toBe('create order');
    // Everything in the creator's trace.
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([c.traceId]));

    const op = spans.filter((s) => s.service === 'kubetx-under-test');
    const txSpan = op.filter((s) => s.name === 'kubetx.transaction TCC');
    expect(txSpan).toHaveLength(1);
    expect(txSpan[0]).toMatchObject({ kind: KIND.CONSUMER, parentSpanId: c.spanId });
    expect(txSpan[0]!.attributes).toMatchObject({ 'kubetx.transaction.namespace': ns, 'kubetx.transaction.name': 'traced', 'kubetx.outcome': 'Committed', 'kubetx.decision': 'Confirm' });

    const phases = Object.fromEntries(op.filter((s) => s.name.startsWith('kubetx.phase ')).map((s) => [s.name, s]));
    expect(Object.keys(phases).sort()).toEqual(['kubetx.phase Confirming', 'kubetx.phase Trying']);
    for (const p of Object.values(phases)) expect(p).toMatchObject({ kind: KIND.INTERNAL, parentSpanId: txSpan[0]!.spanId });

    const clients = op.filter((s) => s.kind === KIND.CLIENT);
    expect(clients.map((s) => `${s.attributes['kubetx.branch']}.${s.name}`).sort()).toEqual([
      'b0.kubetx.v1.TccParticipant/Confirm', 'b0.kubetx.v1.TccParticipant/Try', 'b1.kubetx.v1.TccParticipant/Confirm', 'b1.kubetx.v1.TccParticipant/Try',
    ].sort());
    for (const cl of clients) {
      const phase = cl.attributes['rpc.method'] === 'Try' ? phases['kubetx.phase Trying']! : phases['kubetx.phase Confirming']!;
      expect(cl.parentSpanId).toBe(phase.spanId);
      expect(cl.attributes).toMatchObject({
        'rpc.system': 'grpc',
        'rpc.service': 'kubetx.v1.TccParticipant',
        'kubetx.transaction.namespace': ns,
        'kubetx.transaction.name': 'traced',
        'kubetx.transaction.uid': uid,
        'kubetx.attempt': 1,
        'kubetx.outcome': 'ok',
        'rpc.grpc.status_code': 0,
      });
      expect(cl.attributes['kubetx.method']).toBe(cl.attributes['rpc.method']);
    }

    const servers = spans.filter((s) => s.kind === KIND.SERVER);
    expect(servers.every((s) => s.service === 'participant')).toBe(true);
    for (const sv of servers) {
      const parent = clients.find((cl) => cl.spanId === sv.parentSpanId);
      expect(parent, `SERVER ${sv.name} has a CLIENT parent`).toBeDefined();
      expect(sv.name).toBe(parent!.name);
      expect(sv.attributes).toMatchObject({ 'kubetx.branch': parent!.attributes['kubetx.branch'], 'kubetx.outcome': 'executed', 'rpc.grpc.status_code': 0 });
    }
    // The handler ran with its SERVER span active, and saw the header on ctx.
    const calls = seen.filter((s) => s.uid === uid);
    expect(calls).toHaveLength(4);
    for (const call of calls) {
      expect(call.traceparent).toMatch(new RegExp(`^00-${c.traceId}-[0-9a-f]{16}-01$`));
      const server = servers.find((s) => s.spanId === call.activeSpanId);
      expect(server?.parentSpanId).toBe(call.traceparent!.split('-')[2]);
    }
  });

  it('an invalid or oversized traceparent annotation is ignored: a trace of its own, a log line', async () => {
    for (const [name, value] of [['bad-format', '00-not-a-trace-context'], ['oversized', `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01${'x'.repeat(8000)}`]] as const) {
      await txs.create(tcc(name, { 'kubetx.io/traceparent': value }));
      const tx = await txs.untilPhase(ns, name, ['Committed']);
      const uid = tx.metadata.uid;
      await operator!.waitForLog((l) => l.msg === 'invalid trace context annotation ignored: the transaction starts its own trace' && l.uid === uid, 10_000);
      const root = await eventually(`${name}: transaction span`, async () => byUid(uid).find((s) => s.name === 'kubetx.transaction TCC'), 30_000);
      // Its own trace: the uid's 16 bytes, no parent.
      expect(root.traceId).toBe(uid.replace(/-/g, ''));
      expect(root.parentSpanId).toBe('');
      await eventually(`${name}: SERVER spans`, async () => (byUid(uid).filter((s) => s.kind === KIND.SERVER).length >= 4 ? true : undefined), 30_000);
      expect(new Set(byUid(uid).map((s) => s.traceId))).toEqual(new Set([root.traceId]));
    }
  });
});

describe('tracing off (the default)', () => {
  it('exports nothing and sends no traceparent', async () => {
    operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
    try {
      const before = received.filter((s) => s.service !== 'participant').length;
      const c = tracer.startSpan('create order').spanContext();
      await txs.create(tcc('untraced', { 'kubetx.io/traceparent': `00-${c.traceId}-${c.spanId}-01` }));
      const tx = await txs.untilPhase(ns, 'untraced', ['Committed']);
      const calls = seen.filter((s) => s.uid === tx.metadata.uid);
      expect(calls).toHaveLength(4);
      expect(calls.map((s) => s.traceparent)).toEqual([undefined, undefined, undefined, undefined]);
      // The participant's own SERVER spans still exist (its SDK is on), each a root of its own trace.
      await eventually('participant spans', async () => (byUid(tx.metadata.uid).length >= 4 ? true : undefined), 10_000);
      expect(byUid(tx.metadata.uid).every((s) => s.service === 'participant' && s.parentSpanId === '' && s.traceId !== c.traceId)).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      expect(received.filter((s) => s.service !== 'participant').length).toBe(before);
      expect(operator.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('tracing on'))).toBe(false);
    } finally {
      await operator.kill();
      operator = undefined;
    }
  });
});
