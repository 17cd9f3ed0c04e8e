/** SagaParticipant rules: Execute debits, Compensate credits back; each exactly once. */
import { AMOUNT, expectRefused, expectSameAnswer, fail, OPENING, TOO_MUCH, MAX_DATA_BYTES, type Rule } from '../kit.js';
import { raceRounds } from './race.js';
import { noSecondPhaseRefusal } from './second-phase.js';

const untouched = { balance: OPENING, held: 0 };
const debited = { balance: OPENING - AMOUNT, held: 0 };

export const sagaRules: Rule[] = [
  {
    id: 'saga.repeat-execute',
    group: 'saga',
    checks: 'Execute, then the same Execute again (attempt 2): same message and data; the balance is debited once',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const first = await kit.ok('Execute', t);
      const again = await kit.ok('Execute', t, { attempt: 2 });
      expectSameAnswer(first, again, 'Execute repeated');
      await kit.expectAccount(t.account, debited, 'Execute twice');
      return 'a repeated Execute answered the same and debited once';
    },
  },
  {
    id: 'saga.repeat-compensate',
    group: 'saga',
    checks: 'Execute, Compensate, Compensate again (attempt 2): same answer; the balance is back where it started',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const done = await kit.ok('Execute', t);
      const first = await kit.ok('Compensate', t, { result: Buffer.from(done.data) });
      const again = await kit.ok('Compensate', t, { attempt: 2, result: Buffer.from(done.data) });
      expectSameAnswer(first, again, 'Compensate repeated');
      await kit.expectAccount(t.account, untouched, 'Execute + Compensate twice');
      return 'a repeated Compensate answered the same and credited back once';
    },
  },
  {
    id: 'saga.null-compensate',
    group: 'saga',
    checks: 'Compensate with no Execute before it: OK, and the account is unchanged',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      await kit.ok('Compensate', t);
      await kit.expectAccount(t.account, untouched, 'a Compensate without Execute');
      return 'Compensate before any Execute answered OK and changed nothing';
    },
  },
  {
    id: 'saga.anti-hanging',
    group: 'saga',
    checks: 'Compensate, then the late Execute of the same uid: refused (ABORTED or FAILED_PRECONDITION), nothing debited',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      await kit.ok('Compensate', t);
      const late = await kit.call('Execute', t);
      await kit.expectAccount(t.account, untouched, `a Compensate and then its late Execute (which answered ${late.code === 0 ? 'OK' : late.details || late.code})`);
      expectRefused(late, 'the Execute arriving after its Compensate');
      return 'the Execute after its Compensate was refused and debited nothing';
    },
  },
  {
    id: 'saga.execute-compensate-race',
    group: 'saga',
    checks: 'Execute and Compensate of one uid at once on two connections, for --race-rounds uids (Compensate retried until OK): balance unchanged',
    run: (kit) => raceRounds(kit, 'Execute', 'Compensate'),
  },
  {
    id: 'saga.result-roundtrip',
    group: 'saga',
    checks: "Execute's data (≤ 4 KiB, the same on a repeat) handed to Compensate as `result`: OK and effective",
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const done = await kit.ok('Execute', t);
      if (done.data.length > MAX_DATA_BYTES) fail(`Execute returned ${done.data.length} bytes of data, over 4 KiB`);
      const again = await kit.ok('Execute', t, { attempt: 2 });
      expectSameAnswer(done, again, 'Execute repeated');
      await kit.ok('Compensate', t, { result: Buffer.from(done.data) });
      await kit.expectAccount(t.account, untouched, "Execute + Compensate with the Execute's data as result");
      return done.data.length > 0
        ? `Execute returned ${done.data.length} bytes of data, the same on a repeat; Compensate worked with it as result`
        : 'Execute returned no data; Compensate worked with an empty result';
    },
  },
  {
    id: 'saga.refusal-code',
    group: 'saga',
    checks: 'Execute for more than the balance: ABORTED or FAILED_PRECONDITION (not OK, not another code), nothing debited',
    run: async (kit) => {
      const t = kit.txn(await kit.account(), TOO_MUCH);
      const r = await kit.call('Execute', t);
      await kit.expectAccount(t.account, untouched, `an Execute over the balance (answered ${r.code === 0 ? 'OK' : r.details || r.code})`);
      expectRefused(r, `Execute of ${TOO_MUCH} from a balance of ${OPENING}`);
      return 'Execute over the balance was refused with a refusal code and changed nothing';
    },
  },
  {
    id: 'saga.no-refusal-in-second-phase',
    group: 'saga',
    checks: 'over all rules above: no Compensate answered ABORTED/FAILED_PRECONDITION',
    run: async (kit) => noSecondPhaseRefusal(kit, ['Compensate']),
  },
];
