// The upstream helper of reliable messages: the SQLite outbox, PreparedMessage
// against a fake Kubernetes API, and the check-back server over real gRPC.
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkPreparedFromOutbox,
  MessageRolledBack,
  serveParticipant,
  type Participant,
} from '../../sdk/typescript/src/index.js';
import { SqliteOutbox } from '../../sdk/typescript/src/sqlite.js';
import { prepareMessage, type MessageApi, type MessageTransaction } from '../../sdk/typescript/src/message.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import { CheckPreparedRequest, CheckPreparedResponse, CheckPreparedResponse_State, MessageSourceService } from '../../src/gen/kubetx/v1/participant.js';

const key = { uid: 'uid-1', namespace: 'shop', name: 'order-1' };

function freshDb() {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)');
  return db;
}

describe('SqliteOutbox', () => {
  it('runLocal commits the business change and the outbox row together; resolve → COMMITTED', async () => {
    const db = freshDb();
    const outbox = new SqliteOutbox(db);
    const r = await outbox.runLocal(key, (d) => d.prepare(`INSERT INTO orders VALUES (1, 'CREATED')`).run().changes);
    expect(r).toBe(1);
    expect(await outbox.state('uid-1')).toBe('committed');
    expect(await outbox.resolve(key)).toBe('COMMITTED');
    expect(await outbox.resolve(key)).toBe('COMMITTED');
    expect(db.prepare('SELECT namespace, name, state FROM kubetx_prepared_messages').all()).toEqual([{ namespace: 'shop', name: 'order-1', state: 'committed' }]);
  });

  it('a failed local transaction leaves no row: resolve → ROLLED_BACK (and claims it)', async () => {
    const db = freshDb();
    const outbox = new SqliteOutbox(db);
    await expect(
      outbox.runLocal(key, (d) => {
        d.prepare(`INSERT INTO orders VALUES (1, 'CREATED')`).run();
        throw new Error('out of stock');
      }),
    ).rejects.toThrow('out of stock');
    expect(db.prepare('SELECT count(*) AS n FROM orders').get()).toEqual({ n: 0 });
    expect(await outbox.state('uid-1')).toBeUndefined();
    expect(await outbox.resolve(key)).toBe('ROLLED_BACK');
    expect(await outbox.state('uid-1')).toBe('rolled_back');
  });

  it('a check-back first claims the message: a later runLocal runs nothing and throws MessageRolledBack', async () => {
    const db = freshDb();
    const outbox = new SqliteOutbox(db);
    expect(await outbox.resolve(key)).toBe('ROLLED_BACK');
    let ran = false;
    await expect(outbox.runLocal(key, () => (ran = true))).rejects.toBeInstanceOf(MessageRolledBack);
    expect(ran).toBe(false);
    expect(await outbox.resolve(key)).toBe('ROLLED_BACK');
  });

  it('refuses an async local function (rolled back) and a second runLocal', async () => {
    const db = freshDb();
    const outbox = new SqliteOutbox(db);
    await expect(outbox.runLocal(key, async () => 1)).rejects.toThrow(/must be synchronous/);
    expect(await outbox.state('uid-1')).toBeUndefined();
    await outbox.runLocal(key, () => 1);
    await expect(outbox.runLocal(key, () => 1)).rejects.toThrow(/already committed/);
  });

  it('cleanup deletes old rows only', async () => {
    let now = 1_000_000;
    const outbox = new SqliteOutbox(freshDb(), { now: () => now });
    await outbox.runLocal(key, () => 1);
    now += 10_000;
    await outbox.runLocal({ ...key, uid: 'uid-2' }, () => 1);
    expect(outbox.cleanup(5_000)).toBe(1);
    expect(await outbox.state('uid-1')).toBeUndefined();
    expect(await outbox.state('uid-2')).toBe('committed');
  });
});

/** A fake CustomObjectsApi holding one object, with the CRD's set-once rule for spec.message.decision. */
function fakeApi(opts: { failPatches?: number; status?: DistributedTransaction['status'] } = {}) {
  let obj: DistributedTransaction | undefined;
  let failPatches = opts.failPatches ?? 0;
  const patches: unknown[] = [];
  const api = {
    createNamespacedCustomObject: async (req: { body: DistributedTransaction }) => {
      obj = structuredClone(req.body);
      obj.metadata = { ...obj.metadata, uid: 'uid-created', generation: 1 } as DistributedTransaction['metadata'];
      if (opts.status) obj.status = opts.status;
      return structuredClone(obj);
    },
    patchNamespacedCustomObject: async (req: { body: { spec: { message: { decision: string } } } }) => {
      patches.push(req.body);
      if (failPatches-- > 0) throw Object.assign(new Error('connection reset'), { code: 503 });
      const d = req.body.spec.message.decision as 'Commit';
      if (obj!.spec.message!.decision) throw Object.assign(new Error('spec.message.decision may be set once'), { code: 422 });
      obj!.spec.message!.decision = d;
      return structuredClone(obj!);
    },
    getNamespacedCustomObject: async () => structuredClone(obj!),
  };
  return { api: api as unknown as MessageApi, patches, current: () => obj };
}

const orderMessage = (): MessageTransaction => ({
  metadata: { name: 'order-1', namespace: 'shop' },
  spec: {
    branches: [{ name: 'inventory', endpoint: { service: { name: 'inventory', port: 50051 } } }],
    message: { source: { endpoint: { service: { name: 'order', port: 50051 } }, operation: 'createOrder' } },
  },
});

describe('prepareMessage / PreparedMessage', () => {
  it('creates the transaction (mode Message, no decision) before anything local, then runLocal + commit', async () => {
    const db = freshDb();
    const outbox = new SqliteOutbox(db);
    const fake = fakeApi();
    const msg = await prepareMessage(undefined, orderMessage(), { outbox, api: fake.api });
    expect(fake.current()).toMatchObject({ apiVersion: 'kubetx.io/v1alpha1', kind: 'DistributedTransaction', spec: { mode: 'Message' } });
    expect(fake.current()!.spec.message!.decision).toBeUndefined();
    expect(msg.uid).toBe('uid-created');
    await expect(msg.commit()).rejects.toThrow(/runLocal has not committed/);

    await msg.runLocal((d) => d.prepare(`INSERT INTO orders VALUES (1, 'CREATED')`).run());
    expect(await outbox.state('uid-created')).toBe('committed');
    await expect(msg.rollback()).rejects.toThrow(/not allowed after the local transaction committed/);
    const tx = await msg.commit();
    expect(tx.spec.message!.decision).toBe('Commit');
    expect(fake.patches).toEqual([{ spec: { message: { decision: 'Commit' } } }]);
  });

  it('execute: a failing local transaction → Rollback decision, error rethrown, nothing in the outbox', async () => {
    const outbox = new SqliteOutbox(freshDb());
    const fake = fakeApi();
    const msg = await prepareMessage(undefined, orderMessage(), { outbox, api: fake.api });
    await expect(
      msg.execute(() => {
        throw new Error('credit limit');
      }),
    ).rejects.toThrow('credit limit');
    expect(fake.current()!.spec.message!.decision).toBe('Rollback');
    expect(await outbox.state('uid-created')).toBeUndefined();
  });

  it('commit retries transient API failures and accepts its own earlier decision', async () => {
    const outbox = new SqliteOutbox(freshDb());
    const fake = fakeApi({ failPatches: 2 });
    const msg = await prepareMessage(undefined, orderMessage(), { outbox, api: fake.api, decisionRetryMs: 1 });
    await msg.execute(() => 1);
    expect(fake.patches).toHaveLength(3);
    expect(fake.current()!.spec.message!.decision).toBe('Commit');
  });

  it('commit reports a message the operator already rolled back', async () => {
    const outbox = new SqliteOutbox(freshDb());
    const fake = fakeApi({ status: { phase: 'RolledBack', decision: 'Rollback', message: 'no decision and no definite check-back answer' } });
    const msg = await prepareMessage(undefined, orderMessage(), { outbox, api: fake.api });
    await msg.runLocal(() => 1);
    await expect(msg.commit()).rejects.toBeInstanceOf(MessageRolledBack);
  });

  it('refuses a transaction with a decision already set, another mode, or no source', async () => {
    const outbox = new SqliteOutbox(freshDb());
    const { api } = fakeApi();
    const withDecision = orderMessage();
    withDecision.spec.message.decision = 'Commit';
    await expect(prepareMessage(undefined, withDecision, { outbox, api })).rejects.toThrow(/decision must be unset/);
    const noSource = orderMessage();
    (noSource.spec.message as { source?: unknown }).source = undefined;
    await expect(prepareMessage(undefined, noSource, { outbox, api })).rejects.toThrow(/source.endpoint is required/);
    const tcc = orderMessage() as unknown as { spec: { mode: string } };
    tcc.spec.mode = 'TCC';
    await expect(prepareMessage(undefined, tcc as unknown as MessageTransaction, { outbox, api })).rejects.toThrow(/must be Message/);
  });
});

describe('checkPreparedFromOutbox over gRPC', () => {
  let server: Participant | undefined;
  afterEach(async () => {
    await server?.shutdown(0);
    server = undefined;
  });

  it('answers COMMITTED for a committed row and ROLLED_BACK for an absent one', async () => {
    const outbox = new SqliteOutbox(freshDb());
    await outbox.runLocal(key, () => 1);
    server = await serveParticipant({ address: '127.0.0.1:0', source: checkPreparedFromOutbox(outbox), logger: pino({ level: 'silent' }) });
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const ask = (uid: string) =>
      new Promise<CheckPreparedResponse_State>((resolve, reject) => {
        client.makeUnaryRequest(
          MessageSourceService.checkPrepared.path,
          (v: CheckPreparedRequest) => Buffer.from(CheckPreparedRequest.encode(v).finish()),
          (b: Buffer) => CheckPreparedResponse.decode(b),
          { transactionUid: uid, namespace: 'shop', name: 'order-x', operation: 'createOrder', payload: Buffer.alloc(0) },
          new grpc.Metadata(),
          { deadline: Date.now() + 5_000 },
          (err, res) => (err ? reject(err) : resolve(res!.state)),
        );
      });
    try {
      expect(await ask('uid-1')).toBe(CheckPreparedResponse_State.STATE_COMMITTED);
      expect(await ask('uid-unknown')).toBe(CheckPreparedResponse_State.STATE_ROLLED_BACK);
      expect(await outbox.state('uid-unknown')).toBe('rolled_back');
      await expect(ask('')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      client.close();
    }
  });
});
