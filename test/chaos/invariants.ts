/**
 * Invariants checked after a chaos run, from the participants' own ledgers and
 * the DistributedTransaction objects (TCC and Saga payments of the payment
 * example). Each check returns human-readable violations; an empty list means
 * the run was correct.
 */
import type { BarrierEntry, InventoryLedger, Ledgers, WarehouseLedger } from '../../examples/payment/ledger.js';
import { SEED } from '../../examples/payment/db.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import type { Seen } from './history.js';

export interface PaymentTx {
  name: string;
  orderId: number;
  qty: number;
  credit: number;
  /** @default "TCC" */
  mode?: 'TCC' | 'Saga';
}

export interface PaymentCheckInput {
  before: Ledgers;
  after: Ledgers;
  created: PaymentTx[];
  objects: DistributedTransaction[];
}

/** committed: TCC Committed / Saga Completed; aborted: TCC Aborted / Saga Compensated. */
export interface ModeCounts {
  committed: number;
  aborted: number;
}

export interface PaymentSummary extends ModeCounts {
  other: number;
  byMode: Record<'TCC' | 'Saga', ModeCounts>;
  violations: string[];
}

/** What a transaction left in the four ledgers, for one order and one uid. */
interface Trace {
  order: string | undefined;
  reservations: InventoryLedger['reservations'];
  notes: WarehouseLedger['deliveryNotes'];
  /** Barrier rows of origin 'call' per service. */
  calls: Record<string, BarrierEntry[]>;
}

function traceOf(after: Ledgers, t: PaymentTx, uid: string): Trace {
  const calls: Record<string, BarrierEntry[]> = {};
  for (const [svc, ledger] of Object.entries(after) as Array<[string, { barrier: BarrierEntry[] } | undefined]>) {
    calls[svc] = (ledger?.barrier ?? []).filter((b) => b.uid === uid && b.origin === 'call');
  }
  return {
    order: after.order!.orders[String(t.orderId)]?.status,
    reservations: after.inventory!.reservations.filter((r) => r.orderId === t.orderId),
    notes: after.warehouse!.deliveryNotes.filter((n) => n.orderId === t.orderId),
    calls,
  };
}

const count = (rows: BarrierEntry[], m: string) => rows.filter((r) => r.method === m).length;

/** TCC: all confirmed, or none confirmed and everything released; no Confirm/Cancel applied twice. */
function checkTccTx(t: PaymentTx, o: DistributedTransaction, tr: Trace, v: string[]): void {
  const phase = o.status?.phase;
  if (phase === 'Committed') {
    if (o.status?.decision !== 'Confirm') v.push(`${t.name}: Committed with decision ${o.status?.decision}`);
    if (tr.order !== 'PAID') v.push(`${t.name}: Committed but order ${t.orderId} is ${tr.order}`);
    if (tr.reservations.length !== 1 || tr.reservations[0]!.state !== 'SOLD') v.push(`${t.name}: Committed but reservations ${JSON.stringify(tr.reservations)}`);
    if (tr.notes.length !== 1 || tr.notes[0]!.state !== 'CREATED') v.push(`${t.name}: Committed but delivery notes ${JSON.stringify(tr.notes)}`);
  } else {
    if (o.status?.decision !== 'Cancel') v.push(`${t.name}: Aborted with decision ${o.status?.decision}`);
    if (tr.order !== 'CANCELED' && tr.order !== 'UNPAID') v.push(`${t.name}: Aborted but order ${t.orderId} is ${tr.order}`);
    if (tr.reservations.some((r) => r.state !== 'RELEASED')) v.push(`${t.name}: Aborted but reservations ${JSON.stringify(tr.reservations)}`);
    if (tr.notes.some((n) => n.state === 'CREATED')) v.push(`${t.name}: Aborted but delivery notes ${JSON.stringify(tr.notes)}`);
  }
  for (const [svc, rows] of Object.entries(tr.calls)) {
    if (count(rows, 'Confirm') > 1 || count(rows, 'Cancel') > 1) v.push(`${t.name}: ${svc} has repeated Confirm/Cancel barrier rows`);
    if (count(rows, 'Confirm') > 0 && count(rows, 'Cancel') > 0) v.push(`${t.name}: ${svc} was both confirmed and cancelled`);
    if (phase === 'Committed' && count(rows, 'Confirm') !== 1) v.push(`${t.name}: Committed but ${svc} has ${count(rows, 'Confirm')} Confirm rows`);
    if (phase === 'Aborted' && count(rows, 'Confirm') !== 0) v.push(`${t.name}: Aborted but ${svc} was confirmed`);
    if (count(rows, 'Execute') + count(rows, 'Compensate') > 0) v.push(`${t.name}: TCC transaction has Saga barrier rows at ${svc}`);
  }
}

/**
 * Saga: Completed ⇒ every branch executed once and none compensated;
 * Compensated ⇒ every Execute that took effect was compensated, and the
 * ledgers show nothing of it.
 */
function checkSagaTx(t: PaymentTx, o: DistributedTransaction, tr: Trace, v: string[]): void {
  const phase = o.status?.phase;
  if (phase === 'Completed') {
    if (o.status?.decision !== undefined) v.push(`${t.name}: Completed with decision ${o.status.decision}`);
    if (tr.order !== 'PAID') v.push(`${t.name}: Completed but order ${t.orderId} is ${tr.order}`);
    if (tr.reservations.length !== 1 || tr.reservations[0]!.state !== 'SOLD') v.push(`${t.name}: Completed but reservations ${JSON.stringify(tr.reservations)}`);
    if (tr.notes.length !== 1 || tr.notes[0]!.state !== 'CREATED') v.push(`${t.name}: Completed but delivery notes ${JSON.stringify(tr.notes)}`);
  } else {
    if (o.status?.decision !== 'Compensate') v.push(`${t.name}: Compensated with decision ${o.status?.decision}`);
    if (tr.order !== 'CANCELED' && tr.order !== 'UNPAID') v.push(`${t.name}: Compensated but order ${t.orderId} is ${tr.order}`);
    if (tr.reservations.some((r) => r.state !== 'RELEASED')) v.push(`${t.name}: Compensated but reservations ${JSON.stringify(tr.reservations)}`);
    if (tr.notes.some((n) => n.state !== 'CANCELED')) v.push(`${t.name}: Compensated but delivery notes ${JSON.stringify(tr.notes)}`);
  }
  for (const [svc, rows] of Object.entries(tr.calls)) {
    const ex = count(rows, 'Execute');
    const comp = count(rows, 'Compensate');
    if (ex > 1 || comp > 1) v.push(`${t.name}: ${svc} has ${ex} Execute and ${comp} Compensate barrier rows`);
    if (phase === 'Completed' && (ex !== 1 || comp !== 0)) v.push(`${t.name}: Completed but ${svc} has ${ex} Execute and ${comp} Compensate rows`);
    if (phase === 'Compensated' && ex > 0 && comp === 0) v.push(`${t.name}: Compensated but ${svc} executed and was never compensated`);
    if (count(rows, 'Try') + count(rows, 'Confirm') + count(rows, 'Cancel') > 0) v.push(`${t.name}: Saga transaction has TCC barrier rows at ${svc}`);
  }
}

const FINAL: Record<'TCC' | 'Saga', { committed: string; aborted: string }> = {
  TCC: { committed: 'Committed', aborted: 'Aborted' },
  Saga: { committed: 'Completed', aborted: 'Compensated' },
};

/** The payment transactions (TCC and Saga) against the ledgers, and the conservation of stock and credit. */
export function checkPayments(input: PaymentCheckInput): PaymentSummary {
  const v: string[] = [];
  const byName = new Map(input.objects.map((o) => [o.metadata.name, o]));
  const byMode: PaymentSummary['byMode'] = { TCC: { committed: 0, aborted: 0 }, Saga: { committed: 0, aborted: 0 } };
  let other = 0;
  let soldExpected = 0;
  let creditExpected = 0;

  for (const t of input.created) {
    const mode = t.mode ?? 'TCC';
    const o = byName.get(t.name);
    if (!o) {
      v.push(`${t.name}: lost (created, no longer exists)`);
      continue;
    }
    if (o.spec.mode !== mode) v.push(`${t.name}: created as ${mode}, object says ${o.spec.mode}`);
    const phase = o.status?.phase ?? '(none)';
    const final = FINAL[mode];
    if (phase !== final.committed && phase !== final.aborted) {
      other++;
      // Failed is terminal, but only a spent retry budget may lead there; these runs retry without limit.
      const unlimited = (o.spec.retry?.maxAttempts ?? 0) === 0 ? ' although retries are unlimited (maxAttempts 0)' : '';
      const what = phase === 'Failed' ? `Failed${unlimited}` : `not terminal: phase ${phase}`;
      v.push(`${t.name}: ${what}, decision ${o.status?.decision ?? '-'}, message ${o.status?.message ?? ''}`);
      continue;
    }
    if (phase === final.committed) {
      byMode[mode].committed++;
      soldExpected += t.qty;
      creditExpected += t.credit;
    } else {
      byMode[mode].aborted++;
    }
    const tr = traceOf(input.after, t, o.metadata.uid);
    if (mode === 'TCC') checkTccTx(t, o, tr, v);
    else checkSagaTx(t, o, tr, v);
  }

  // Conservation.
  const inv = input.after.inventory!;
  const item0 = input.before.inventory!.items[SEED.sku]!;
  const item = inv.items[SEED.sku]!;
  if (item.stock + item.frozen + item.sold !== item0.stock + item0.frozen + item0.sold) {
    v.push(`inventory: stock+frozen+sold ${item.stock}+${item.frozen}+${item.sold} != ${item0.stock + item0.frozen + item0.sold}`);
  }
  if (item.frozen !== 0) v.push(`inventory: frozen ${item.frozen} at the end`);
  if (item.sold - item0.sold !== soldExpected) v.push(`inventory: sold grew by ${item.sold - item0.sold}, expected ${soldExpected}`);
  const acc0 = input.before.credit!.accounts[String(SEED.userId)]!;
  const acc = input.after.credit!.accounts[String(SEED.userId)]!;
  if (acc.credit - acc0.credit !== creditExpected) v.push(`credit: grew by ${acc.credit - acc0.credit}, expected ${creditExpected}`);
  if (acc.prepareAddCredit !== 0) v.push(`credit: prepareAddCredit ${acc.prepareAddCredit} at the end`);
  if (inv.reservations.some((r) => r.state === 'RESERVED')) v.push('inventory: reservations still RESERVED');
  if (Object.values(input.after.order!.orders).some((o) => o.status === 'UPDATING')) v.push('order: orders still UPDATING');

  return {
    committed: byMode.TCC.committed + byMode.Saga.committed,
    aborted: byMode.TCC.aborted + byMode.Saga.aborted,
    other,
    byMode,
    violations: v,
  };
}

const RANK: Record<string, number> = {
  Pending: 0,
  Trying: 1,
  Confirming: 2,
  Cancelling: 2,
  Committed: 3,
  Aborted: 3,
  // Saga
  Executing: 1,
  Compensating: 2,
  Completed: 3,
  Compensated: 3,
  Failed: 3,
};

/** The decision never changes once set, the phase only moves forward, Confirming never meets Cancelling, Completed never meets Compensated. */
export function checkHistories(history: Map<string, Seen[]>, names?: string[]): string[] {
  const v: string[] = [];
  for (const name of names ?? [...history.keys()]) {
    const h = history.get(name) ?? [];
    let decision: string | undefined;
    let rank = -1;
    let phase: string | undefined;
    for (const s of h) {
      if (s.decision) {
        if (decision && s.decision !== decision) v.push(`${name}: decision changed ${decision} → ${s.decision} (rv ${s.rv})`);
        decision ??= s.decision;
      } else if (decision) v.push(`${name}: decision ${decision} was removed (rv ${s.rv})`);
      if (s.phase) {
        const r = RANK[s.phase] ?? -1;
        if (r < rank) v.push(`${name}: phase went back ${phase} → ${s.phase} (rv ${s.rv})`);
        if (r === rank && r >= 2 && s.phase !== phase) v.push(`${name}: phase switched ${phase} → ${s.phase} (rv ${s.rv})`);
        if (r >= rank) {
          rank = r;
          phase = s.phase;
        }
      }
    }
  }
  return v;
}
