/**
 * Invariants checked after a chaos run, from the participants' own ledgers and
 * the DistributedTransaction objects. Each check returns human-readable
 * violations; an empty list means the run was correct.
 */
import type { BarrierEntry, Ledgers } from '../../examples/payment/ledger.js';
import { SEED } from '../../examples/payment/db.js';
import type { DistributedTransaction } from '../../src/api/types.js';
import type { Seen } from './history.js';

export interface PaymentTx {
  name: string;
  orderId: number;
  qty: number;
  credit: number;
}

export interface TccCheckInput {
  before: Ledgers;
  after: Ledgers;
  created: PaymentTx[];
  objects: DistributedTransaction[];
}

export interface TccSummary {
  committed: number;
  aborted: number;
  other: number;
  violations: string[];
}

const TERMINAL = new Set(['Committed', 'Aborted']);

export function checkTcc(input: TccCheckInput): TccSummary {
  const v: string[] = [];
  const byName = new Map(input.objects.map((o) => [o.metadata.name, o]));
  const order = input.after.order!;
  const inv = input.after.inventory!;
  const credit = input.after.credit!;
  const wh = input.after.warehouse!;
  let committed = 0;
  let aborted = 0;
  let other = 0;
  let soldExpected = 0;
  let creditExpected = 0;

  for (const t of input.created) {
    const o = byName.get(t.name);
    if (!o) {
      v.push(`${t.name}: lost (created, no longer exists)`);
      continue;
    }
    const phase = o.status?.phase ?? '(none)';
    if (!TERMINAL.has(phase)) {
      other++;
      v.push(`${t.name}: not terminal: phase ${phase}, decision ${o.status?.decision ?? '-'}, message ${o.status?.message ?? ''}`);
      continue;
    }
    const st = order.orders[String(t.orderId)]?.status;
    const res = inv.reservations.filter((r) => r.orderId === t.orderId);
    const notes = wh.deliveryNotes.filter((n) => n.orderId === t.orderId);
    if (phase === 'Committed') {
      committed++;
      soldExpected += t.qty;
      creditExpected += t.credit;
      if (o.status?.decision !== 'Confirm') v.push(`${t.name}: Committed with decision ${o.status?.decision}`);
      if (st !== 'PAID') v.push(`${t.name}: Committed but order ${t.orderId} is ${st}`);
      if (res.length !== 1 || res[0]!.state !== 'SOLD') v.push(`${t.name}: Committed but reservations ${JSON.stringify(res)}`);
      if (notes.length !== 1 || notes[0]!.state !== 'CREATED') v.push(`${t.name}: Committed but delivery notes ${JSON.stringify(notes)}`);
    } else {
      aborted++;
      if (o.status?.decision !== 'Cancel') v.push(`${t.name}: Aborted with decision ${o.status?.decision}`);
      if (st !== 'CANCELED' && st !== 'UNPAID') v.push(`${t.name}: Aborted but order ${t.orderId} is ${st}`);
      if (res.some((r) => r.state !== 'RELEASED')) v.push(`${t.name}: Aborted but reservations ${JSON.stringify(res)}`);
      if (notes.some((n) => n.state === 'CREATED')) v.push(`${t.name}: Aborted but delivery notes ${JSON.stringify(notes)}`);
    }
    // No effect applied twice, no branch both confirmed and cancelled.
    const uid = o.metadata.uid;
    for (const [svc, ledger] of Object.entries(input.after) as Array<[string, { barrier: BarrierEntry[] } | undefined]>) {
      const rows = (ledger?.barrier ?? []).filter((b) => b.uid === uid && b.origin === 'call');
      const count = (m: string) => rows.filter((r) => r.method === m).length;
      if (count('Confirm') > 1 || count('Cancel') > 1) v.push(`${t.name}: ${svc} has repeated Confirm/Cancel barrier rows`);
      if (count('Confirm') > 0 && count('Cancel') > 0) v.push(`${t.name}: ${svc} was both confirmed and cancelled`);
      if (phase === 'Committed' && count('Confirm') !== 1) v.push(`${t.name}: Committed but ${svc} has ${count('Confirm')} Confirm rows`);
      if (phase === 'Aborted' && count('Confirm') !== 0) v.push(`${t.name}: Aborted but ${svc} was confirmed`);
    }
  }

  // Conservation.
  const item0 = input.before.inventory!.items[SEED.sku]!;
  const item = inv.items[SEED.sku]!;
  if (item.stock + item.frozen + item.sold !== item0.stock + item0.frozen + item0.sold) {
    v.push(`inventory: stock+frozen+sold ${item.stock}+${item.frozen}+${item.sold} != ${item0.stock + item0.frozen + item0.sold}`);
  }
  if (item.frozen !== 0) v.push(`inventory: frozen ${item.frozen} at the end`);
  if (item.sold - item0.sold !== soldExpected) v.push(`inventory: sold grew by ${item.sold - item0.sold}, expected ${soldExpected}`);
  const acc0 = input.before.credit!.accounts[String(SEED.userId)]!;
  const acc = credit.accounts[String(SEED.userId)]!;
  if (acc.credit - acc0.credit !== creditExpected) v.push(`credit: grew by ${acc.credit - acc0.credit}, expected ${creditExpected}`);
  if (acc.prepareAddCredit !== 0) v.push(`credit: prepareAddCredit ${acc.prepareAddCredit} at the end`);
  if (inv.reservations.some((r) => r.state === 'RESERVED')) v.push('inventory: reservations still RESERVED');
  if (Object.values(order.orders).some((o) => o.status === 'UPDATING')) v.push('order: orders still UPDATING');

  return { committed, aborted, other, violations: v };
}

const RANK: Record<string, number> = {
  Pending: 0,
  Trying: 1,
  Confirming: 2,
  Cancelling: 2,
  Committed: 3,
  Aborted: 3,
  Failed: 3,
};

/** The decision never changes once set, the phase only moves forward, Confirming never meets Cancelling. */
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
