// The payment example (seed 000): four real TCC + Saga participants over gRPC, ledgers checked against the seed's numbers.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { SagaParticipantClient, type BranchRequest, type BranchResponse, type TccParticipantClient } from '../../src/gen/kubetx/v1/participant.js';
import { dbPathIn, openServiceDb, SERVICES, type ServiceName } from '../../examples/payment/db.js';
import { clearFaults, listFaults, parseFaultSpec, setFault } from '../../examples/payment/faults.js';
import { readLedger, readLedgers, type CreditLedger, type InventoryLedger, type OrderLedger, type WarehouseLedger } from '../../examples/payment/ledger.js';
import { startAll, startService, type RunningService } from '../../examples/payment/server.js';
import { call, callErr, callOk, request, tccClient, type CallError, type TccMethod } from './sdk-test-client.js';

interface ManifestBranch {
  name: ServiceName;
  endpoint: { service?: { name: string; port: number }; address?: string };
  operation: string;
  payload: Record<string, unknown>;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  spec: { mode: string; branches: ManifestBranch[] };
}
const manifestDir = join(import.meta.dirname, '../../examples/payment/manifests');
const loadManifest = (rel: string) => parseYaml(readFileSync(join(manifestDir, rel), 'utf8')) as Manifest;

const success = loadManifest('local/pay-order-success.yaml');
const refused = loadManifest('local/pay-order-refused.yaml');

let dir: string;
let services: Record<ServiceName, RunningService>;
let clients: Record<ServiceName, TccParticipantClient>;
let sagaClients: Record<ServiceName, SagaParticipantClient>;
const exits: number[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kubetx-payment-'));
  services = await startAll({
    dbDir: dir,
    basePort: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    faultOptions: { exit: (code) => void exits.push(code), hangMs: 5000 },
  });
  clients = Object.fromEntries(SERVICES.map((s) => [s, tccClient(services[s].port)])) as Record<ServiceName, TccParticipantClient>;
  sagaClients = Object.fromEntries(
    SERVICES.map((s) => [s, new SagaParticipantClient(`127.0.0.1:${services[s].port}`, grpc.credentials.createInsecure())]),
  ) as Record<ServiceName, SagaParticipantClient>;
});

afterAll(async () => {
  for (const c of [...Object.values(clients ?? {}), ...Object.values(sagaClients ?? {})]) c.close();
  await Promise.all(Object.values(services ?? {}).map((s) => s.stop(200)));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  for (const s of SERVICES) clearFaults(dbPathIn(dir, s));
});

/** The request the operator would send for a manifest branch. */
function branchRequest(m: Manifest, branch: ServiceName, uid: string, result?: Buffer) {
  const b = m.spec.branches.find((x) => x.name === branch)!;
  return request({
    transactionUid: uid,
    namespace: m.metadata.namespace,
    name: m.metadata.name,
    branch: b.name,
    operation: b.operation,
    payload: b.payload,
    ...(result ? { result } : {}),
  });
}

type SagaMethod = 'execute' | 'compensate';

/** A Saga call to one service: the response, or the error status. */
function saga(s: ServiceName, method: SagaMethod, req: BranchRequest): Promise<{ ok: true; r: BranchResponse } | { ok: false; e: CallError }> {
  return new Promise((resolve) => {
    sagaClients[s][method](req, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, r) =>
      resolve(err ? { ok: false, e: { code: err.code, details: err.details } } : { ok: true, r }),
    );
  });
}
async function sagaOk(s: ServiceName, method: SagaMethod, req: BranchRequest): Promise<BranchResponse> {
  const x = await saga(s, method, req);
  if (!x.ok) throw new Error(`${s} ${method} failed: ${grpc.status[x.e.code]} ${x.e.details}`);
  return x.r;
}
async function sagaErr(s: ServiceName, method: SagaMethod, req: BranchRequest): Promise<CallError> {
  const x = await saga(s, method, req);
  if (x.ok) throw new Error(`${s} ${method} unexpectedly succeeded: ${x.r.message}`);
  return x.e;
}

/** The success manifest's branches for another order (and qty). */
function forOrder(orderId: number, qty = 2): Manifest {
  const branches = success.spec.branches.map((b) => ({ ...b, payload: { ...b.payload, orderId, ...('qty' in b.payload ? { qty } : {}) } }));
  return { ...success, spec: { ...success.spec, mode: 'Saga', branches } };
}

const addOrders = (...ids: number[]) => {
  const ins = services.order.db.prepare(`INSERT OR IGNORE INTO orders (id, user_id, status, updated_at) VALUES (?, 7, 'UNPAID', ?)`);
  for (const id of ids) ins.run(id, Date.now());
};

const ledgers = () => {
  const l = readLedgers(dir);
  return { order: l.order!, inventory: l.inventory!, credit: l.credit!, warehouse: l.warehouse! };
};
const stock = () => ledgers().inventory.items['A-1'];
const account = () => ledgers().credit.accounts['7'];
/** Business state only (no barrier rows). */
const business = () => {
  const { order, inventory, credit, warehouse } = ledgers();
  return { orders: order.orders, items: inventory.items, reservations: inventory.reservations, accounts: credit.accounts, notes: warehouse.deliveryNotes };
};

describe('manifests', () => {
  it.each(['pay-order-success.yaml', 'pay-order-refused.yaml', 'local/pay-order-success.yaml', 'local/pay-order-refused.yaml'])(
    '%s is a TCC DistributedTransaction over the four services',
    (file) => {
      const m = loadManifest(file);
      expect(m.apiVersion).toBe('kubetx.io/v1alpha1');
      expect(m.kind).toBe('DistributedTransaction');
      expect(m.spec.mode).toBe('TCC');
      expect(m.spec.branches.map((b) => b.name)).toEqual(['order', 'inventory', 'credit', 'warehouse']);
      for (const [i, b] of m.spec.branches.entries()) {
        const port = 50051 + i;
        if (file.startsWith('local/')) expect(b.endpoint).toEqual({ address: `127.0.0.1:${port}` });
        else expect(b.endpoint).toEqual({ service: { name: b.name, port } });
      }
    },
  );
});

describe('payment services', () => {
  it('start from the seed numbers', () => {
    const l = ledgers();
    expect(l.order.orders['1001']).toEqual({ userId: 7, status: 'UNPAID' });
    expect(l.inventory.items['A-1']).toEqual({ stock: 100, frozen: 0, sold: 0 });
    expect(l.credit.accounts['7']).toEqual({ credit: 1190, prepareAddCredit: 0 });
    expect(l.warehouse.deliveryNotes).toEqual([]);
  });

  it('pay order 1001: Try freezes, Confirm commits, repeats change nothing', async () => {
    const uid = 'uid-pay-1001';
    const results = {} as Record<ServiceName, Buffer>;
    for (const s of SERVICES) results[s] = (await callOk(clients[s], 'try', branchRequest(success, s, uid))).data;

    let l = ledgers();
    expect(l.order.orders['1001']!.status).toBe('UPDATING');
    expect(l.inventory.items['A-1']).toEqual({ stock: 98, frozen: 2, sold: 0 });
    expect(l.credit.accounts['7']).toEqual({ credit: 1190, prepareAddCredit: 10 });
    expect(l.warehouse.deliveryNotes).toHaveLength(1);
    expect(l.warehouse.deliveryNotes[0]).toMatchObject({ orderId: 1001, state: 'UNKNOWN' });
    const { reservationId } = JSON.parse(results.inventory.toString()) as { reservationId: string };
    expect(l.inventory.reservations).toEqual([{ id: reservationId, orderId: 1001, sku: 'A-1', qty: 2, state: 'RESERVED' }]);

    // A repeated Try (lost answer) returns the same reservation and freezes nothing more.
    const again = await callOk(clients.inventory, 'try', branchRequest(success, 'inventory', uid));
    expect(again.data.toString()).toBe(results.inventory.toString());
    expect(stock()).toEqual({ stock: 98, frozen: 2, sold: 0 });

    for (const s of SERVICES) await callOk(clients[s], 'confirm', branchRequest(success, s, uid, results[s]));
    for (const s of SERVICES) await callOk(clients[s], 'confirm', branchRequest(success, s, uid, results[s])); // repeats

    l = ledgers();
    expect(l.order.orders['1001']!.status).toBe('PAID');
    expect(l.inventory.items['A-1']).toEqual({ stock: 98, frozen: 0, sold: 2 });
    expect(l.inventory.reservations[0]!.state).toBe('SOLD');
    expect(l.credit.accounts['7']).toEqual({ credit: 1200, prepareAddCredit: 0 });
    expect(l.warehouse.deliveryNotes[0]!.state).toBe('CREATED');

    // Paying the same order again is refused by the order service.
    const err = await callErr(clients.order, 'try', branchRequest(success, 'order', 'uid-pay-1001-again'));
    expect(err.code).toBe(grpc.status.ABORTED);
    expect(err.details).toMatch(/order 1001 is PAID, not UNPAID/);
  });

  it('pay order 1002 for 1000 items: inventory refuses, Cancel everywhere restores the ledgers', async () => {
    const uid = 'uid-pay-1002';
    const before = business();
    const results: Partial<Record<ServiceName, Buffer>> = {};
    for (const s of ['order', 'credit', 'warehouse'] as const) results[s] = (await callOk(clients[s], 'try', branchRequest(refused, s, uid))).data;
    const err = await callErr(clients.inventory, 'try', branchRequest(refused, 'inventory', uid));
    expect(err.code).toBe(grpc.status.ABORTED);
    expect(err.details).toMatch(/^insufficient stock/);
    expect(account()).toEqual({ credit: before.accounts['7']!.credit, prepareAddCredit: 10 });

    for (const s of SERVICES) await callOk(clients[s], 'cancel', branchRequest(refused, s, uid, results[s]));

    const l = ledgers();
    expect(l.order.orders['1002']!.status).toBe('CANCELED');
    expect(l.inventory.items).toEqual(before.items); // null compensation: nothing had been frozen
    expect(l.credit.accounts).toEqual(before.accounts);
    expect(l.warehouse.deliveryNotes.at(-1)).toMatchObject({ orderId: 1002, state: 'CANCELED' });
    const rows = l.inventory.barrier.filter((r) => r.uid === uid).map((r) => `${r.method}:${r.origin}`);
    expect(rows.sort()).toEqual(['Cancel:call', 'Try:blocker']);
  });

  it('Cancel before Try leaves nothing, and the late Try is refused', async () => {
    const uid = 'uid-cancel-first';
    const m = { ...success, spec: { ...success.spec, branches: success.spec.branches.map((b) => ({ ...b, payload: { ...b.payload, orderId: 1003 } })) } };
    const before = business();
    for (const s of SERVICES) {
      const r = await callOk(clients[s], 'cancel', branchRequest(m, s, uid));
      expect(r.message).toMatch(/null compensation/);
    }
    expect(business()).toEqual(before);
    for (const s of SERVICES) {
      const err = await callErr(clients[s], 'try', branchRequest(m, s, uid));
      expect(err.code).toBe(grpc.status.ABORTED);
      expect(err.details).toMatch(/anti-hanging/);
    }
    expect(business()).toEqual(before);
    expect(ledgers().order.orders['1003']!.status).toBe('UNPAID');
  });

  it('readLedger tells the services apart by file', () => {
    expect((readLedger(dbPathIn(dir, 'order')) as OrderLedger).service).toBe('order');
    expect((readLedger(dbPathIn(dir, 'inventory')) as InventoryLedger).service).toBe('inventory');
    expect((readLedger(dbPathIn(dir, 'credit')) as CreditLedger).service).toBe('credit');
    expect((readLedger(dbPathIn(dir, 'warehouse')) as WarehouseLedger).service).toBe('warehouse');
  });
});

describe('saga handlers (same services, SagaParticipant)', () => {
  const rowsOf = (s: ServiceName, uid: string) =>
    ledgers()[s].barrier.filter((r) => r.uid === uid).map((r) => `${r.method}:${r.origin}`).sort();

  it('pay order 2001: Execute applies at once, repeats change nothing, Compensate undoes it exactly', async () => {
    addOrders(2001);
    const m = forOrder(2001);
    const uid = 'uid-saga-2001';
    const before = ledgers();
    const results = {} as Record<ServiceName, Buffer>;
    for (const s of SERVICES) results[s] = (await sagaOk(s, 'execute', branchRequest(m, s, uid))).data;

    let l = ledgers();
    const item0 = before.inventory.items['A-1']!;
    const acc0 = before.credit.accounts['7']!;
    expect(l.order.orders['2001']!.status).toBe('PAID');
    expect(l.inventory.items['A-1']).toEqual({ stock: item0.stock - 2, frozen: item0.frozen, sold: item0.sold + 2 });
    const { reservationId } = JSON.parse(results.inventory.toString()) as { reservationId: string };
    expect(l.inventory.reservations.filter((r) => r.orderId === 2001)).toEqual([{ id: reservationId, orderId: 2001, sku: 'A-1', qty: 2, state: 'SOLD' }]);
    expect(l.credit.accounts['7']).toEqual({ credit: acc0.credit + 10, prepareAddCredit: acc0.prepareAddCredit });
    const { deliveryNoteId } = JSON.parse(results.warehouse.toString()) as { deliveryNoteId: string };
    expect(l.warehouse.deliveryNotes.find((n) => n.id === deliveryNoteId)).toMatchObject({ orderId: 2001, state: 'CREATED' });

    // Repeated Executes (lost answers) are answered by the barrier with the same data.
    for (const s of SERVICES) expect((await sagaOk(s, 'execute', branchRequest(m, s, uid))).data).toEqual(results[s]);
    expect(ledgers().inventory.items).toEqual(l.inventory.items);
    expect(ledgers().credit.accounts).toEqual(l.credit.accounts);

    // Compensate in the Saga's reverse order, twice.
    for (const s of [...SERVICES].reverse()) await sagaOk(s, 'compensate', branchRequest(m, s, uid, results[s]));
    for (const s of SERVICES) await sagaOk(s, 'compensate', branchRequest(m, s, uid, results[s]));

    l = ledgers();
    expect(l.order.orders['2001']!.status).toBe('CANCELED');
    expect(l.inventory.items).toEqual(before.inventory.items);
    expect(l.inventory.reservations.find((r) => r.id === reservationId)!.state).toBe('RELEASED');
    expect(l.credit.accounts).toEqual(before.credit.accounts);
    expect(l.warehouse.deliveryNotes.find((n) => n.id === deliveryNoteId)!.state).toBe('CANCELED');
    for (const s of SERVICES) expect(rowsOf(s, uid)).toEqual(['Compensate:call', 'Execute:call']);
  });

  it('Execute refuses like Try (insufficient stock, order not UNPAID) and changes nothing', async () => {
    addOrders(2002);
    const before = ledgers();
    const inv = await sagaErr('inventory', 'execute', branchRequest(forOrder(2002, 1_000_000), 'inventory', 'uid-saga-2002'));
    expect(inv.code).toBe(grpc.status.ABORTED);
    expect(inv.details).toMatch(/^insufficient stock/);
    const ord = await sagaErr('order', 'execute', branchRequest(forOrder(1001), 'order', 'uid-saga-1001'));
    expect(ord.code).toBe(grpc.status.ABORTED);
    expect(ord.details).toMatch(/order 1001 is PAID, not UNPAID/);
    expect(ledgers().inventory.items).toEqual(before.inventory.items);
    expect(ledgers().order.orders).toEqual(before.order.orders);
    // A Compensate of the refused branch (the operator's Execute timed out) is a null compensation.
    const c = await sagaOk('inventory', 'compensate', branchRequest(forOrder(2002, 1_000_000), 'inventory', 'uid-saga-2002'));
    expect(c.message).toMatch(/null compensation/);
    expect(rowsOf('inventory', 'uid-saga-2002')).toEqual(['Compensate:call', 'Execute:blocker']);
    expect(ledgers().inventory.items).toEqual(before.inventory.items);
  });

  it('Compensate before Execute leaves nothing, and the late Execute is refused', async () => {
    addOrders(2003);
    const m = forOrder(2003);
    const uid = 'uid-saga-2003';
    const before = business();
    for (const s of SERVICES) expect((await sagaOk(s, 'compensate', branchRequest(m, s, uid))).message).toMatch(/null compensation/);
    for (const s of SERVICES) {
      const err = await sagaErr(s, 'execute', branchRequest(m, s, uid));
      expect(err.code).toBe(grpc.status.ABORTED);
      expect(err.details).toMatch(/anti-hanging/);
    }
    expect(business()).toEqual(before);
    expect(ledgers().order.orders['2003']!.status).toBe('UNPAID');
  });

  it('Compensate without the Execute data finds the effect by uid and branch', async () => {
    addOrders(2004);
    const m = forOrder(2004);
    const uid = 'uid-saga-2004';
    const before = ledgers();
    for (const s of ['inventory', 'warehouse'] as const) await sagaOk(s, 'execute', branchRequest(m, s, uid));
    for (const s of ['inventory', 'warehouse'] as const) await sagaOk(s, 'compensate', branchRequest(m, s, uid));
    const l = ledgers();
    expect(l.inventory.items).toEqual(before.inventory.items);
    expect(l.inventory.reservations.filter((r) => r.orderId === 2004).map((r) => r.state)).toEqual(['RELEASED']);
    expect(l.warehouse.deliveryNotes.filter((n) => n.orderId === 2004).map((n) => n.state)).toEqual(['CANCELED']);
  });

  it('a TCC and a Saga transaction on the same order keep their barrier rows apart', async () => {
    addOrders(2005);
    const m = forOrder(2005);
    const before = account();
    await callOk(clients.credit, 'try', branchRequest(m, 'credit', 'uid-mix-tcc'));
    await sagaOk('credit', 'execute', branchRequest(m, 'credit', 'uid-mix-saga'));
    expect(account()).toEqual({ credit: before!.credit + 10, prepareAddCredit: before!.prepareAddCredit + 10 });
    await callOk(clients.credit, 'cancel', branchRequest(m, 'credit', 'uid-mix-tcc'));
    await sagaOk('credit', 'compensate', branchRequest(m, 'credit', 'uid-mix-saga'));
    expect(account()).toEqual(before);
    expect(rowsOf('credit', 'uid-mix-tcc')).toEqual(['Cancel:call', 'Try:call']);
    expect(rowsOf('credit', 'uid-mix-saga')).toEqual(['Compensate:call', 'Execute:call']);
  });
});

describe('fault switches (flipped at runtime)', () => {
  const order1004 = (s: ServiceName, uid: string, result?: Buffer) => {
    const m = { ...success, spec: { ...success.spec, branches: success.spec.branches.map((b) => ({ ...b, payload: { ...b.payload, orderId: 1004 } })) } };
    return branchRequest(m, s, uid, result);
  };

  it('parses specs', () => {
    expect(parseFaultSpec('inventory.Try=refuse')).toEqual({ service: 'inventory', fault: { method: 'Try', mode: 'refuse' } });
    expect(parseFaultSpec('Confirm=fail:3')).toEqual({ fault: { method: 'Confirm', mode: 'fail', remaining: 3 } });
    expect(parseFaultSpec('credit.Cancel=crash@after')).toEqual({ service: 'credit', fault: { method: 'Cancel', mode: 'crash', after: true } });
    expect(() => parseFaultSpec('Try=refuse@after')).toThrow();
    expect(() => parseFaultSpec('bank.Try=refuse')).toThrow(/unknown service/);
    expect(() => parseFaultSpec('Try=explode')).toThrow();
    expect(parseFaultSpec('warehouse.Execute=refuse:1')).toEqual({ service: 'warehouse', fault: { method: 'Execute', mode: 'refuse', remaining: 1 } });
    expect(parseFaultSpec('Compensate=fail:2@after')).toEqual({ fault: { method: 'Compensate', mode: 'fail', remaining: 2, after: true } });
    expect(parseFaultSpec('order.Compensate=hang')).toEqual({ service: 'order', fault: { method: 'Compensate', mode: 'hang' } });
    expect(() => parseFaultSpec('Compensate=refuse')).toThrow(/cannot be refused/);
    expect(() => setFault(dbPathIn(dir, 'order'), { method: 'Compensate', mode: 'refuse' })).toThrow(/cannot be refused/);
    expect(() => parseFaultSpec('Deliver=fail')).toThrow(/bad fault spec/);
  });

  it('Execute refuse: ABORTED for a new call, skipped (not used up) for a retry whose Execute took effect', async () => {
    addOrders(2101, 2102);
    const db = dbPathIn(dir, 'credit');
    const before = account();
    // The first Execute commits, then its answer is lost.
    setFault(db, { method: 'Execute', mode: 'fail', after: true, remaining: 1 });
    expect((await sagaErr('credit', 'execute', branchRequest(forOrder(2101), 'credit', 'uid-sf1'))).code).toBe(grpc.status.UNAVAILABLE);
    expect(account()!.credit).toBe(before!.credit + 10);
    setFault(db, { method: 'Execute', mode: 'refuse', remaining: 1 });
    // Its retry is not refused: that would claim nothing was done, and a refused Saga branch is never compensated.
    await sagaOk('credit', 'execute', branchRequest(forOrder(2101), 'credit', 'uid-sf1'));
    expect(listFaults(db)).toEqual([{ method: 'Execute', mode: 'refuse', remaining: 1 }]);
    expect(await sagaErr('credit', 'execute', branchRequest(forOrder(2102), 'credit', 'uid-sf2'))).toEqual({
      code: grpc.status.ABORTED,
      details: 'injected refusal of Execute',
    });
    expect(listFaults(db)).toEqual([]);
    expect(account()!.credit).toBe(before!.credit + 10);
    await sagaOk('credit', 'compensate', branchRequest(forOrder(2101), 'credit', 'uid-sf1'));
    expect(account()).toEqual(before);
  });

  it('Compensate fail N / crash before commit: retried until it goes through once', async () => {
    addOrders(2103);
    const m = forOrder(2103);
    const db = dbPathIn(dir, 'inventory');
    const before = stock();
    const r = await sagaOk('inventory', 'execute', branchRequest(m, 'inventory', 'uid-sf3'));
    setFault(db, { method: 'Compensate', mode: 'fail', remaining: 2 });
    for (let i = 0; i < 2; i++) expect((await sagaErr('inventory', 'compensate', branchRequest(m, 'inventory', 'uid-sf3', r.data))).code).toBe(grpc.status.UNAVAILABLE);
    setFault(db, { method: 'Compensate', mode: 'crash', remaining: 1 });
    exits.length = 0;
    expect((await sagaErr('inventory', 'compensate', branchRequest(m, 'inventory', 'uid-sf3', r.data))).code).toBe(grpc.status.UNAVAILABLE);
    expect(exits).toEqual([1]);
    expect(stock()!.sold).toBe(before!.sold + 2);
    await sagaOk('inventory', 'compensate', branchRequest(m, 'inventory', 'uid-sf3', r.data));
    await sagaOk('inventory', 'compensate', branchRequest(m, 'inventory', 'uid-sf3', r.data));
    expect(stock()).toEqual(before);
  });

  it('a faults table from before Saga support is upgraded with its switches kept', () => {
    const pdir = mkdtempSync(join(tmpdir(), 'kubetx-payment-old-'));
    const path = join(pdir, 'credit.db');
    try {
      const sdb = openServiceDb('credit', path);
      sdb.db.exec(`DROP TABLE faults; CREATE TABLE faults (
        method TEXT PRIMARY KEY CHECK (method IN ('Try', 'Confirm', 'Cancel')),
        mode TEXT NOT NULL CHECK (mode IN ('refuse', 'fail', 'hang', 'crash')),
        remaining INTEGER, after INTEGER NOT NULL DEFAULT 0, message TEXT)`);
      sdb.db.prepare(`INSERT INTO faults (method, mode, remaining) VALUES ('Confirm', 'fail', 3)`).run();
      sdb.db.close();
      setFault(path, { method: 'Execute', mode: 'refuse' });
      expect(listFaults(path)).toEqual([
        { method: 'Confirm', mode: 'fail', remaining: 3 },
        { method: 'Execute', mode: 'refuse' },
      ]);
    } finally {
      rmSync(pdir, { recursive: true, force: true });
    }
  });

  it('refuse: Try answers ABORTED until cleared', async () => {
    const db = dbPathIn(dir, 'credit');
    setFault(db, { method: 'Try', mode: 'refuse', message: 'credit service closed' });
    const before = account();
    expect(await callErr(clients.credit, 'try', order1004('credit', 'uid-f1'))).toEqual({ code: grpc.status.ABORTED, details: 'credit service closed' });
    expect((await callErr(clients.credit, 'try', order1004('credit', 'uid-f1'))).code).toBe(grpc.status.ABORTED);
    expect(account()).toEqual(before);
    clearFaults(db, 'Try');
    await callOk(clients.credit, 'try', order1004('credit', 'uid-f1'));
    await callOk(clients.credit, 'cancel', order1004('credit', 'uid-f1'));
    expect(account()).toEqual(before);
  });

  it('fail N: the first N calls answer UNAVAILABLE, then the call goes through once', async () => {
    const db = dbPathIn(dir, 'warehouse');
    const t = await callOk(clients.warehouse, 'try', order1004('warehouse', 'uid-f2'));
    setFault(db, { method: 'Confirm', mode: 'fail', remaining: 2 });
    expect(listFaults(db)).toEqual([{ method: 'Confirm', mode: 'fail', remaining: 2 }]);
    for (let i = 0; i < 2; i++) {
      const err = await callErr(clients.warehouse, 'confirm', order1004('warehouse', 'uid-f2', t.data));
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.details).toMatch(/injected failure/);
    }
    expect(listFaults(db)).toEqual([]);
    await callOk(clients.warehouse, 'confirm', order1004('warehouse', 'uid-f2', t.data));
    const { deliveryNoteId } = JSON.parse(t.data.toString()) as { deliveryNoteId: string };
    expect(ledgers().warehouse.deliveryNotes.find((n) => n.id === deliveryNoteId)?.state).toBe('CREATED');
  });

  it('hang: no answer before the deadline, nothing changes', async () => {
    setFault(dbPathIn(dir, 'inventory'), { method: 'Try', mode: 'hang', remaining: 1 });
    const before = stock();
    const err = await callErr(clients.inventory, 'try', order1004('inventory', 'uid-f3'), 300);
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(stock()).toEqual(before);
    // The retry (fault used up) reserves once.
    const t = await callOk(clients.inventory, 'try', order1004('inventory', 'uid-f3'));
    expect(stock()).toEqual({ ...before, stock: before!.stock - 2, frozen: before!.frozen + 2 });
    await callOk(clients.inventory, 'cancel', order1004('inventory', 'uid-f3', t.data));
    expect(stock()).toEqual(before);
  });

  it('crash before commit: the process exits (here: a stub) and nothing is recorded', async () => {
    setFault(dbPathIn(dir, 'credit'), { method: 'Try', mode: 'crash', remaining: 1 });
    const before = account();
    exits.length = 0;
    expect((await callErr(clients.credit, 'try', order1004('credit', 'uid-f4'))).code).toBe(grpc.status.UNAVAILABLE);
    expect(exits).toEqual([1]);
    expect(account()).toEqual(before);
  });

  it('crash after commit: the effect is there, the retry is answered by the barrier', async () => {
    setFault(dbPathIn(dir, 'inventory'), { method: 'Try', mode: 'crash', after: true, remaining: 1 });
    const before = stock();
    exits.length = 0;
    expect((await callErr(clients.inventory, 'try', order1004('inventory', 'uid-f5'))).code).toBe(grpc.status.UNAVAILABLE);
    expect(exits).toEqual([1]);
    expect(stock()!.frozen).toBe(before!.frozen + 2);
    const retry = await callOk(clients.inventory, 'try', order1004('inventory', 'uid-f5'));
    expect(JSON.parse(retry.data.toString())).toHaveProperty('reservationId');
    expect(stock()!.frozen).toBe(before!.frozen + 2);
    // A Cancel whose operator never saw the Try's data (empty result) still finds the reservation.
    await callOk(clients.inventory, 'cancel', order1004('inventory', 'uid-f5'));
    expect(stock()).toEqual(before);
  });
});

describe('server.ts as a process', () => {
  /** Starts `server.ts --service inventory` and resolves with its port once ready. */
  function startProcess(dbPath: string, extra: string[] = []) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'examples/payment/server.ts', '--service', 'inventory', '--host', '127.0.0.1', '--port', '0', '--db', dbPath, ...extra],
      { cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const port = new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'payment service ready' && j.port) resolve(j.port);
        } catch {
          /* not JSON */
        }
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      void exited.then((code) => reject(new Error(`server exited ${code} before ready: ${stderr}`)));
    });
    return { child, port, exited };
  }

  it('a crash fault kills the process; after a restart the Try goes through exactly once; SIGTERM exits 0', async () => {
    const pdir = mkdtempSync(join(tmpdir(), 'kubetx-payment-proc-'));
    const dbPath = join(pdir, 'inventory.db');
    try {
      const first = startProcess(dbPath, ['--fault', 'Try=crash:1']);
      const c1 = tccClient(await first.port);
      const req = branchRequest(success, 'inventory', 'uid-proc');
      const r = await call(c1, 'try' as TccMethod, req);
      expect(r.ok).toBe(false);
      expect(await first.exited).toBe(1);
      c1.close();
      expect((readLedger(dbPath) as InventoryLedger).items['A-1']).toEqual({ stock: 100, frozen: 0, sold: 0 });

      const second = startProcess(dbPath);
      const c2 = tccClient(await second.port);
      await callOk(c2, 'try', req);
      await callOk(c2, 'try', req);
      expect((readLedger(dbPath) as InventoryLedger).items['A-1']).toEqual({ stock: 98, frozen: 2, sold: 0 });
      c2.close();
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      rmSync(pdir, { recursive: true, force: true });
    }
  }, 30_000);

  it('a service refuses another service’s database file', async () => {
    const pdir = mkdtempSync(join(tmpdir(), 'kubetx-payment-own-'));
    try {
      const s = await startService({ service: 'credit', dbPath: join(pdir, 'x.db'), address: '127.0.0.1:0', logger: pino({ level: 'silent' }) });
      await s.stop(0);
      await expect(startService({ service: 'order', dbPath: join(pdir, 'x.db'), address: '127.0.0.1:0', logger: pino({ level: 'silent' }) })).rejects.toThrow(
        /belongs to the credit service/,
      );
    } finally {
      rmSync(pdir, { recursive: true, force: true });
    }
  });
});
