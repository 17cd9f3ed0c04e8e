/**
 * MessageSource rules: CheckPrepared answers from the upstream's own data,
 * and a check-back that found nothing fences out a late local commit (the
 * SDK's outbox claim), so the answer never contradicts the database.
 */
import * as grpc from '@grpc/grpc-js';
import { CheckPreparedResponse_State as State } from '../../gen/kubetx/v1/participant.js';
import { codeName } from '../client.js';
import { AMOUNT, fail, NAMESPACE, OPENING, sleep, stateName, type Kit, type Rule, type Txn } from '../kit.js';

const untouched = { balance: OPENING, held: 0 };

async function prepare(kit: Kit, t: Txn, commit: boolean) {
  return kit.conns.hook.prepareMessage({ transactionUid: t.uid, namespace: NAMESPACE, name: t.name, account: t.account, amount: t.amount, commit });
}

async function state(kit: Kit, t: Txn, what: string): Promise<State> {
  const r = await kit.checkPrepared(t);
  if (r.code !== grpc.status.OK) fail(`${what}: CheckPrepared answered ${codeName(r.code)}: ${r.details}`);
  return r.response!;
}

async function expectState(kit: Kit, t: Txn, want: State, what: string): Promise<void> {
  const got = await state(kit, t, what);
  if (got !== want) fail(`${what}: CheckPrepared answered ${stateName(got)}, want ${stateName(want)}`);
}

export const sourceRules: Rule[] = [
  {
    id: 'source.check-committed',
    group: 'source',
    checks: 'hook PrepareMessage(commit=true), then CheckPrepared twice: COMMITTED both times; the account debited once',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const p = await prepare(kit, t, true);
      if (p.code !== grpc.status.OK) fail(`hook PrepareMessage(commit=true) answered ${codeName(p.code)}: ${p.details}`);
      await expectState(kit, t, State.STATE_COMMITTED, 'after a committed local transaction');
      await expectState(kit, t, State.STATE_COMMITTED, 'asked again (the answer must be stable)');
      await kit.expectAccount(t.account, { balance: OPENING - AMOUNT, held: 0 }, 'a committed local transaction and two check-backs');
      return 'a committed message is COMMITTED, stably, and the account was debited once';
    },
  },
  {
    id: 'source.check-rolled-back',
    group: 'source',
    checks: 'hook PrepareMessage(commit=false), then CheckPrepared: ROLLED_BACK; the account unchanged',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const p = await prepare(kit, t, false);
      if (p.code !== grpc.status.OK) fail(`hook PrepareMessage(commit=false) answered ${codeName(p.code)}: ${p.details}`);
      await expectState(kit, t, State.STATE_ROLLED_BACK, 'after a rolled-back local transaction');
      await kit.expectAccount(t.account, untouched, 'a rolled-back local transaction');
      return 'a rolled-back message is ROLLED_BACK and the account unchanged';
    },
  },
  {
    id: 'source.check-claim',
    group: 'source',
    checks: 'CheckPrepared for a uid never prepared: ROLLED_BACK (UNKNOWN is asked again); then PrepareMessage(commit=true) for it: FAILED_PRECONDITION, account unchanged, still ROLLED_BACK',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      let s = await state(kit, t, 'a uid never prepared');
      for (let i = 0; s === State.STATE_UNKNOWN && i < 10; i++) {
        await sleep(100 * (i + 1));
        s = await state(kit, t, 'a uid never prepared, asked again');
      }
      if (s !== State.STATE_ROLLED_BACK) fail(`CheckPrepared for a uid never prepared answered ${stateName(s)}, want ROLLED_BACK`);
      const p = await prepare(kit, t, true);
      await kit.expectAccount(t.account, untouched, `a late PrepareMessage(commit=true) after ROLLED_BACK (answered ${codeName(p.code)})`);
      if (p.code !== grpc.status.FAILED_PRECONDITION) {
        fail(`a local transaction committing after CheckPrepared answered ROLLED_BACK answered ${codeName(p.code)}, want FAILED_PRECONDITION (the check-back must claim the message)`);
      }
      await expectState(kit, t, State.STATE_ROLLED_BACK, 'after the refused late prepare');
      return 'an unknown uid is ROLLED_BACK for good: a late local commit was fenced out';
    },
  },
];
