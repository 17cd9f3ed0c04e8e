/** TccParticipant rules: Try holds, Confirm applies, Cancel releases; each exactly once. */
import { AMOUNT, expectRefused, expectSameAnswer, fail, OPENING, TOO_MUCH, MAX_DATA_BYTES, type Rule } from '../kit.js';
import { raceRounds } from './race.js';
import { noSecondPhaseRefusal } from './second-phase.js';

const held = { balance: OPENING, held: AMOUNT };
const untouched = { balance: OPENING, held: 0 };
const applied = { balance: OPENING - AMOUNT, held: 0 };

export const tccRules: Rule[] = [
  {
    id: 'tcc.repeat-try',
    group: 'tcc',
    checks: 'Try, then the same Try again (attempt 2): both OK with the same message and data; the amount is held once',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const first = await kit.ok('Try', t);
      const again = await kit.ok('Try', t, { attempt: 2 });
      expectSameAnswer(first, again, 'Try repeated');
      await kit.expectAccount(t.account, held, 'Try twice');
      return 'a repeated Try answered the same and held the amount once';
    },
  },
  {
    id: 'tcc.repeat-confirm',
    group: 'tcc',
    checks: 'Try, Confirm, Confirm again (attempt 2): same answer; the amount leaves the balance once, held back to 0',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const tried = await kit.ok('Try', t);
      const first = await kit.ok('Confirm', t, { result: Buffer.from(tried.data) });
      const again = await kit.ok('Confirm', t, { attempt: 2, result: Buffer.from(tried.data) });
      expectSameAnswer(first, again, 'Confirm repeated');
      await kit.expectAccount(t.account, applied, 'Try + Confirm twice');
      return 'a repeated Confirm answered the same and applied once';
    },
  },
  {
    id: 'tcc.repeat-cancel',
    group: 'tcc',
    checks: 'Try, Cancel, Cancel again (attempt 2): same answer; the hold is released once, the balance unchanged',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const tried = await kit.ok('Try', t);
      const first = await kit.ok('Cancel', t, { result: Buffer.from(tried.data) });
      const again = await kit.ok('Cancel', t, { attempt: 2, result: Buffer.from(tried.data) });
      expectSameAnswer(first, again, 'Cancel repeated');
      await kit.expectAccount(t.account, untouched, 'Try + Cancel twice');
      return 'a repeated Cancel answered the same and released once';
    },
  },
  {
    id: 'tcc.null-cancel',
    group: 'tcc',
    checks: 'Cancel with no Try before it: OK, and the account is unchanged',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      await kit.ok('Cancel', t);
      await kit.expectAccount(t.account, untouched, 'a Cancel without Try');
      return 'Cancel before any Try answered OK and changed nothing';
    },
  },
  {
    id: 'tcc.anti-hanging',
    group: 'tcc',
    checks: 'Cancel, then the late Try of the same uid: refused (ABORTED or FAILED_PRECONDITION), nothing held',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      await kit.ok('Cancel', t);
      const late = await kit.call('Try', t);
      await kit.expectAccount(t.account, untouched, `a Cancel and then its late Try (which answered ${late.code === 0 ? 'OK' : late.details || late.code})`);
      expectRefused(late, 'the Try arriving after its Cancel');
      return 'the Try after its Cancel was refused and held nothing';
    },
  },
  {
    id: 'tcc.try-cancel-race',
    group: 'tcc',
    checks: 'Try and Cancel of one uid at once on two connections, for --race-rounds uids (Cancel retried until OK): held 0, balance unchanged',
    run: (kit) => raceRounds(kit, 'Try', 'Cancel'),
  },
  {
    id: 'tcc.result-roundtrip',
    group: 'tcc',
    checks: "Try's data (≤ 4 KiB, the same on a repeat) handed to Confirm and to Cancel as `result`: both OK and effective",
    run: async (kit) => {
      const c = kit.txn(await kit.account());
      const tried = await kit.ok('Try', c);
      if (tried.data.length > MAX_DATA_BYTES) fail(`Try returned ${tried.data.length} bytes of data, over 4 KiB`);
      const again = await kit.ok('Try', c, { attempt: 2 });
      expectSameAnswer(tried, again, 'Try repeated');
      await kit.ok('Confirm', c, { result: Buffer.from(tried.data) });
      await kit.expectAccount(c.account, applied, 'Try + Confirm with the Try\'s data as result');
      const x = kit.txn(await kit.account());
      const tried2 = await kit.ok('Try', x);
      await kit.ok('Cancel', x, { result: Buffer.from(tried2.data) });
      await kit.expectAccount(x.account, untouched, 'Try + Cancel with the Try\'s data as result');
      return tried.data.length > 0
        ? `Try returned ${tried.data.length} bytes of data, the same on a repeat; Confirm and Cancel worked with it as result`
        : 'Try returned no data; Confirm and Cancel worked with an empty result';
    },
  },
  {
    id: 'tcc.refusal-code',
    group: 'tcc',
    checks: 'Try for more than the available balance: ABORTED or FAILED_PRECONDITION (not OK, not another code), nothing held',
    run: async (kit) => {
      const t = kit.txn(await kit.account(), TOO_MUCH);
      const r = await kit.call('Try', t);
      await kit.expectAccount(t.account, untouched, `a Try over the balance (answered ${r.code === 0 ? 'OK' : r.details || r.code})`);
      expectRefused(r, `Try of ${TOO_MUCH} from a balance of ${OPENING}`);
      return `Try over the balance was refused with a refusal code and changed nothing`;
    },
  },
  {
    id: 'tcc.cancel-after-refusal',
    group: 'tcc',
    checks: 'Try refused (over the balance), then its Cancel: OK, and the account is unchanged',
    run: async (kit) => {
      const t = kit.txn(await kit.account(), TOO_MUCH);
      const r = await kit.call('Try', t);
      if (r.code === 0) fail(`Try of ${TOO_MUCH} from a balance of ${OPENING} answered OK; cannot check its Cancel`);
      await kit.ok('Cancel', t);
      await kit.expectAccount(t.account, untouched, 'a refused Try and its Cancel');
      return 'the Cancel after a refused Try answered OK and changed nothing';
    },
  },
  {
    id: 'tcc.confirm-applies',
    group: 'tcc',
    checks: 'Try holds exactly the amount (balance unchanged); Confirm takes it out of the balance and held goes back to 0',
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const tried = await kit.ok('Try', t);
      await kit.expectAccount(t.account, held, 'Try');
      await kit.ok('Confirm', t, { result: Buffer.from(tried.data) });
      await kit.expectAccount(t.account, applied, 'Try + Confirm');
      return `Try held ${AMOUNT}, Confirm moved exactly ${AMOUNT} out of the balance`;
    },
  },
  {
    id: 'tcc.no-refusal-in-second-phase',
    group: 'tcc',
    checks: 'over all rules above: no Confirm or Cancel answered ABORTED/FAILED_PRECONDITION (they must eventually succeed)',
    run: async (kit) => noSecondPhaseRefusal(kit, ['Confirm', 'Cancel']),
  },
];
