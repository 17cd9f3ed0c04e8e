/** MessageReceiver rules: Deliver credits, exactly once however often and from wherever it comes. */
import { AMOUNT, expectSameAnswer, OPENING, fail, type Rule } from '../kit.js';
import { noSecondPhaseRefusal } from './second-phase.js';

/** Concurrent copies of one Deliver in the concurrent half of the rule. */
const CONCURRENT_COPIES = 8;

export const receiverRules: Rule[] = [
  {
    id: 'receiver.deliver-idempotent',
    group: 'receiver',
    checks: `Deliver, then again (attempt 2): same answer, credited once; then ${CONCURRENT_COPIES} copies of one Deliver at once over separate connections: credited once`,
    run: async (kit) => {
      const t = kit.txn(await kit.account());
      const first = await kit.ok('Deliver', t);
      const again = await kit.ok('Deliver', t, { attempt: 2 });
      expectSameAnswer(first, again, 'Deliver repeated');
      await kit.expectAccount(t.account, { balance: OPENING + AMOUNT, held: 0 }, 'Deliver twice');

      const c = kit.txn(await kit.account());
      const answers = await Promise.all(
        Array.from({ length: CONCURRENT_COPIES }, (_, i) => kit.call('Deliver', c, { attempt: i + 1, channel: kit.channels[i % kit.channels.length]! })),
      );
      // Any copy that failed is retried, as the operator would, before the account is read.
      for (const [i, a] of answers.entries()) if (a.code !== 0) await kit.untilOk('Deliver', c, { firstAttempt: CONCURRENT_COPIES + i + 1 });
      const got = await kit.read(c.account);
      if (got.balance !== OPENING + AMOUNT) {
        fail(`${CONCURRENT_COPIES} concurrent copies of one Deliver left balance=${got.balance}, want ${OPENING + AMOUNT} (credited ${(got.balance - OPENING) / AMOUNT} times)`);
      }
      return `Deliver repeated sequentially and ${CONCURRENT_COPIES}× concurrently credited once`;
    },
  },
  {
    id: 'receiver.no-refusal',
    group: 'receiver',
    checks: 'over the rules above: no Deliver answered ABORTED/FAILED_PRECONDITION (a decided message must be taken)',
    run: async (kit) => noSecondPhaseRefusal(kit, ['Deliver']),
  },
];
