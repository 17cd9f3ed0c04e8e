import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CheckPreparedResponse_State,
  MessageReceiverClient,
  MessageSourceClient,
  SagaParticipantClient,
  type BranchResponse,
} from '../../src/gen/kubetx/v1/participant.js';
import {
  MAX_DATA_BYTES,
  InvalidPayload,
  Refused,
  serveParticipant,
  type BranchContext,
  type Participant,
  type ServeOptions,
} from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';
import { call, callErr, callOk, request, tccClient } from './sdk-test-client.js';

function captureLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

const silent = pino({ level: 'silent' });
const started: Participant[] = [];
const clients: grpc.Client[] = [];
const dbs: Database.Database[] = [];

async function serve<Tx = undefined>(opts: Omit<ServeOptions<Tx>, 'address'>): Promise<Participant> {
  const p = await serveParticipant<Tx>({ address: '127.0.0.1:0', logger: silent, ...opts });
  started.push(p);
  return p;
}
function client(port: number) {
  const c = tccClient(port);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(started.splice(0).map((p) => p.shutdown(100)));
  for (const d of dbs.splice(0)) d.close();
});

const ok = () => ({});

describe('serveParticipant', () => {
  it('binds a free port and hands the handler a typed context', async () => {
    let seen: BranchContext | undefined;
    let payload: unknown;
    const p = await serve({
      tcc: {
        try: (ctx) => {
          seen = ctx;
          payload = ctx.payload;
          return { message: 'reserved', data: { reservationId: 'r-1' } };
        },
        confirm: ok,
        cancel: ok,
      },
    });
    expect(p.port).toBeGreaterThan(0);
    const res = await callOk(
      client(p.port),
      'try',
      request({ transactionUid: 'u-9', branch: 'inventory', operation: 'reduceStock', attempt: 3, payload: { sku: 'A-1', qty: 2 }, result: Buffer.from('prev') }),
    );
    expect(res.message).toBe('reserved');
    expect(JSON.parse(res.data.toString())).toEqual({ reservationId: 'r-1' });
    expect(seen).toMatchObject({
      uid: 'u-9',
      namespace: 'shop',
      name: 'pay-order-1001',
      branch: 'inventory',
      operation: 'reduceStock',
      method: 'Try',
      attempt: 3,
      tx: undefined,
    });
    expect(payload).toEqual({ sku: 'A-1', qty: 2 });
    expect(seen!.rawPayload.toString()).toBe('{"sku":"A-1","qty":2}');
    expect(seen!.result.toString()).toBe('prev');
    expect(seen!.deadline).toBeInstanceOf(Date);
  });

  it('accepts void, strings and bytes as answers; empty payload is undefined', async () => {
    let payload: unknown = 'unset';
    const p = await serve({
      tcc: {
        try: () => ({ data: 'plain text' }),
        confirm: (ctx) => {
          payload = ctx.payload;
        },
        cancel: async () => ({ message: 'bytes', data: new Uint8Array([1, 2, 3]) }),
      },
    });
    const c = client(p.port);
    expect((await callOk(c, 'try', request({}))).data.toString()).toBe('plain text');
    const conf = await callOk(c, 'confirm', request({}));
    expect(conf).toEqual({ message: '', data: Buffer.alloc(0) });
    expect(payload).toBeUndefined();
    expect([...(await callOk(c, 'cancel', request({}))).data]).toEqual([1, 2, 3]);
  });

  it('maps Refused to ABORTED (or FAILED_PRECONDITION) and other errors to UNAVAILABLE', async () => {
    const p = await serve({
      tcc: {
        try: () => {
          throw new Refused('insufficient stock');
        },
        confirm: () => {
          throw new Refused('no such reservation', { code: 'FAILED_PRECONDITION' });
        },
        cancel: async () => {
          throw new Error('database is locked');
        },
      },
    });
    const c = client(p.port);
    expect(await callErr(c, 'try', request({}))).toEqual({ code: grpc.status.ABORTED, details: 'insufficient stock' });
    expect(await callErr(c, 'confirm', request({}))).toEqual({ code: grpc.status.FAILED_PRECONDITION, details: 'no such reservation' });
    expect(await callErr(c, 'cancel', request({}))).toEqual({ code: grpc.status.UNAVAILABLE, details: 'database is locked' });
  });

  it('answers INVALID_ARGUMENT for an invalid JSON payload when the handler reads it, and for InvalidPayload', async () => {
    const p = await serve({
      tcc: {
        try: (ctx) => ({ message: String(ctx.payload) }),
        confirm: () => {
          throw new InvalidPayload('payload.amount must be a positive integer');
        },
        cancel: (ctx) => ({ message: String(ctx.rawPayload.length) }),
      },
    });
    const c = client(p.port);
    expect(await callErr(c, 'confirm', request({}))).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'payload.amount must be a positive integer' });
    const err = await callErr(c, 'try', request({ payload: Buffer.from('{nope') }));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/payload is not valid JSON/);
    expect((await callOk(c, 'cancel', request({ payload: Buffer.from('{nope') }))).message).toBe('5');
  });

  it('rejects data over 4 KiB with INTERNAL and a clear message; 4 KiB exactly is fine', async () => {
    const p = await serve({
      tcc: { try: () => ({ data: Buffer.alloc(MAX_DATA_BYTES + 1) }), confirm: () => ({ data: Buffer.alloc(MAX_DATA_BYTES) }), cancel: ok },
    });
    const c = client(p.port);
    const err = await callErr(c, 'try', request({}));
    expect(err.code).toBe(grpc.status.INTERNAL);
    expect(err.details).toMatch(/4097 bytes, over the 4096-byte limit/);
    expect((await callOk(c, 'confirm', request({}))).data.length).toBe(4096);
  });

  it('with a barrier: the handler gets the DB, repeats replay, null compensation and anti-hanging over gRPC', async () => {
    const db = new Database(':memory:');
    dbs.push(db);
    db.exec(`CREATE TABLE holds (uid TEXT PRIMARY KEY)`);
    const barrier = new SqliteBarrier(db);
    let tries = 0;
    let big = true;
    const p = await serve({
      barrier,
      tcc: {
        try: (ctx) => {
          tries++;
          ctx.tx.prepare(`INSERT INTO holds VALUES (?)`).run(ctx.uid);
          return { data: big && ctx.uid === 'big' ? 'x'.repeat(5000) : { hold: ctx.uid, n: tries } };
        },
        confirm: ok,
        cancel: (ctx) => {
          ctx.tx.prepare(`DELETE FROM holds WHERE uid = ?`).run(ctx.uid);
        },
      },
    });
    const c = client(p.port);
    const a = await callOk(c, 'try', request({ transactionUid: 't1' }));
    const b = await callOk(c, 'try', request({ transactionUid: 't1', attempt: 2 }));
    expect(b.data.toString()).toBe(a.data.toString());
    expect(tries).toBe(1);

    const nc = await callOk(c, 'cancel', request({ transactionUid: 't2' }));
    expect(nc.message).toMatch(/null compensation/);
    const late = await callErr(c, 'try', request({ transactionUid: 't2' }));
    expect(late.code).toBe(grpc.status.ABORTED);
    expect(late.details).toMatch(/anti-hanging/);
    expect(tries).toBe(1);

    // Oversized data is rejected inside the barrier transaction: nothing recorded, the retry runs again.
    expect((await callErr(c, 'try', request({ transactionUid: 'big' }))).code).toBe(grpc.status.INTERNAL);
    expect(db.prepare(`SELECT count(*) AS n FROM holds WHERE uid = 'big'`).get()).toEqual({ n: 0 });
    big = false;
    await callOk(c, 'try', request({ transactionUid: 'big' }));
    expect(db.prepare(`SELECT count(*) AS n FROM holds WHERE uid = 'big'`).get()).toEqual({ n: 1 });

    // Confirm with no Try: protocol violation.
    expect((await callErr(c, 'confirm', request({ transactionUid: 't3' }))).code).toBe(grpc.status.FAILED_PRECONDITION);
    // No uid: refused before any handler.
    expect((await callErr(c, 'try', request({ transactionUid: '' }))).code).toBe(grpc.status.FAILED_PRECONDITION);
  });

  it('runs middleware around the barrier', async () => {
    const order: string[] = [];
    const p = await serve({
      tcc: { try: () => void order.push('handler'), confirm: ok, cancel: ok },
      middleware: async (ctx, next) => {
        order.push(`before ${ctx.method}`);
        const r = await next();
        order.push(`after ${r.outcome}`);
        return { ...r, message: 'wrapped' };
      },
    });
    expect((await callOk(client(p.port), 'try', request({}))).message).toBe('wrapped');
    expect(order).toEqual(['before Try', 'handler', 'after executed']);
  });

  it('logs one line per call with identity and outcome, never the payload', async () => {
    const { logger, lines } = captureLogger();
    const p = await serve({
      logger,
      tcc: {
        try: () => ({ data: 'ok' }),
        confirm: () => {
          throw new Refused('nope');
        },
        cancel: () => {
          throw new Error('boom');
        },
      },
    });
    const c = client(p.port);
    const secret = { card: 'SECRET-4111-1111' };
    await call(c, 'try', request({ transactionUid: 'u1', branch: 'credit', attempt: 2, payload: secret }));
    await call(c, 'confirm', request({ transactionUid: 'u1', branch: 'credit', payload: secret }));
    await call(c, 'cancel', request({ transactionUid: 'u1', branch: 'credit', payload: secret }));
    const calls = lines.filter((l) => l.uid === 'u1');
    expect(calls).toHaveLength(3);
    expect(calls[0]).toMatchObject({ uid: 'u1', namespace: 'shop', name: 'pay-order-1001', branch: 'credit', method: 'Try', attempt: 2, outcome: 'executed' });
    expect(calls[1]).toMatchObject({ method: 'Confirm', outcome: 'refused', code: 'ABORTED', reason: 'nope' });
    expect(calls[2]).toMatchObject({ method: 'Cancel', outcome: 'error', code: 'UNAVAILABLE' });
    expect(JSON.stringify(lines)).not.toContain('SECRET');
  });

  it('serves Saga, MessageReceiver and MessageSource too', async () => {
    const p = await serve({
      saga: { execute: (ctx) => ({ message: `exec ${ctx.method}` }), compensate: ok },
      receiver: { deliver: (ctx) => ({ message: `got ${(ctx.payload as { n: number }).n}` }) },
      source: { checkPrepared: (ctx) => ((ctx.payload as { ok: boolean }).ok ? 'COMMITTED' : 'ROLLED_BACK') },
    });
    const addr = `127.0.0.1:${p.port}`;
    const creds = grpc.credentials.createInsecure();
    const saga = new SagaParticipantClient(addr, creds);
    const recv = new MessageReceiverClient(addr, creds);
    const src = new MessageSourceClient(addr, creds);
    clients.push(saga, recv, src);
    const unary = <T>(fn: (cb: (e: grpc.ServiceError | null, r: T) => void) => void) =>
      new Promise<T>((res, rej) => fn((e, r) => (e ? rej(e) : res(r))));
    const ex = await unary<BranchResponse>((cb) => saga.execute(request({}), cb));
    expect(ex.message).toBe('exec Execute');
    const d = await unary<BranchResponse>((cb) => recv.deliver(request({ payload: { n: 5 } }), cb));
    expect(d.message).toBe('got 5');
    const cp = await unary<{ state: CheckPreparedResponse_State }>((cb) =>
      src.checkPrepared({ transactionUid: 'u', namespace: 'n', name: 'x', operation: 'o', payload: Buffer.from('{"ok":true}') }, cb),
    );
    expect(cp.state).toBe(CheckPreparedResponse_State.STATE_COMMITTED);
  });

  it('needs at least one service', async () => {
    await expect(serveParticipant({ address: '127.0.0.1:0', logger: silent })).rejects.toThrow(/at least one/);
  });

  it('aborts ctx.signal when the caller’s deadline passes', async () => {
    let aborted!: () => void;
    const wasAborted = new Promise<void>((r) => (aborted = r));
    const p = await serve({
      tcc: {
        try: (ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              aborted();
              resolve({});
            });
          }),
        confirm: ok,
        cancel: ok,
      },
    });
    const err = await callErr(client(p.port), 'try', request({}), 200);
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await wasAborted;
  });

  it('graceful shutdown drains an in-flight call and then refuses new ones', async () => {
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const p = await serveParticipant({
      address: '127.0.0.1:0',
      logger: silent,
      tcc: {
        try: async () => {
          entered();
          await gate;
          return { message: 'finished' };
        },
        confirm: ok,
        cancel: ok,
      },
    });
    const c = client(p.port);
    const inflight = call(c, 'try', request({}));
    await inHandler;
    let stopped = false;
    const done = p.shutdown(5000).then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(stopped).toBe(false); // still draining
    release();
    const r = await inflight;
    expect(r.ok && r.response.message).toBe('finished');
    await done;
    const after = await callErr(client(p.port), 'try', request({}), 1000);
    expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(after.code);
  });

  it('forces shutdown after the grace period and aborts the stuck handler', async () => {
    let signal: AbortSignal | undefined;
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    const p = await serveParticipant({
      address: '127.0.0.1:0',
      logger: silent,
      tcc: {
        try: (ctx) => {
          signal = ctx.signal;
          entered();
          return new Promise(() => undefined); // never answers
        },
        confirm: ok,
        cancel: ok,
      },
    });
    const inflight = call(client(p.port), 'try', request({}), 10_000);
    await inHandler;
    const t0 = Date.now();
    await p.shutdown(150);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(signal?.aborted).toBe(true);
    const r = await inflight;
    expect(r.ok).toBe(false);
  });

  it('handleSignals: SIGTERM drains, then exits 0', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      const before = process.listenerCount('SIGTERM');
      const p = await serveParticipant({ address: '127.0.0.1:0', logger: silent, handleSignals: true, tcc: { try: ok, confirm: ok, cancel: ok } });
      expect(process.listenerCount('SIGTERM')).toBe(before + 1);
      process.emit('SIGTERM', 'SIGTERM');
      await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(0));
      expect(process.listenerCount('SIGTERM')).toBe(before);
      await p.shutdown(); // idempotent
    } finally {
      exit.mockRestore();
    }
  });
});

