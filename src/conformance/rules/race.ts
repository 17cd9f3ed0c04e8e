/**
 * The race rules' common part: for --race-rounds fresh transactions, the
 * forward call (Try/Execute) and its compensation (Cancel/Compensate) of the
 * same uid fired at once on two different connections, --concurrency calls
 * in flight; then the compensation repeated until OK, as the operator would.
 * Every account must end as it started.
 */
import { codeName, type BranchMethod } from '../client.js';
import { fail, OPENING, pool, type Kit } from '../kit.js';

export async function raceRounds(kit: Kit, forward: BranchMethod, undo: BranchMethod): Promise<string> {
  const rounds = kit.options.raceRounds;
  const channels = kit.channels;
  const bad: string[] = [];
  let forwardOk = 0;
  await pool(
    Array.from({ length: rounds }, (_, i) => i),
    Math.max(1, Math.floor(kit.options.concurrency / 2)),
    async (i) => {
      const account = await kit.account();
      const t = kit.txn(account);
      const a = channels[(2 * i) % channels.length]!;
      const b = channels[(2 * i + 1) % channels.length]!;
      // Every other round the compensation is sent first, so both orders (and the overlap) are exercised.
      const [f, u] =
        i % 2 === 0
          ? await Promise.all([kit.call(forward, t, { channel: a }), kit.call(undo, t, { channel: b })])
          : await Promise.all([kit.call(undo, t, { channel: b }), kit.call(forward, t, { channel: a })]).then(([x, y]) => [y, x] as const);
      if (f.code === 0) forwardOk++;
      if (u.code !== 0) await kit.untilOk(undo, t, { channel: b, firstAttempt: 2 });
      const got = await kit.read(account);
      if (got.balance !== OPENING || got.held !== 0) {
        bad.push(`${t.uid}: balance=${got.balance} held=${got.held} (${forward} answered ${codeName(f.code)}, ${undo} ${codeName(u.code)})`);
      }
    },
  );
  if (bad.length > 0) {
    fail(`${bad.length} of ${rounds} racing ${forward}/${undo} pairs left the account changed, want balance=${OPENING} held=0; first: ${bad[0]}`);
  }
  return `${rounds} ${forward}/${undo} pairs raced on separate connections (${forward} answered OK in ${forwardOk}, was refused or failed in ${rounds - forwardOk}), every account unchanged`;
}
