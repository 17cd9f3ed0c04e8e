/**
 * Sharded active-active replicas (--shards, docs/scaling.md) on the shared
 * control plane, whose kube-apiserver runs with ShardedListAndWatch, so the
 * replicas use the server-side filter (shardSelector). Each test has its own
 * namespaces and Lease prefix; the replicas run with lease 4s, renew deadline
 * 3s, retry 500ms (test/support/sharded-replicas.ts).
 *
 * The suite both filters share (describeShardingSuite):
 *   - 3 replicas share 16 shards as 6/5/5, in the Leases and in their metrics;
 *   - 60 payments: each reconciled (decided and finished) only by the holder of
 *     its shard, committed once, ledgers consistent; with the server filter no
 *     replica's watch delivers an object outside its shards;
 *   - SIGKILL of one replica: its shards move within the lease duration plus a
 *     few retry periods, and its transactions (created before and after the
 *     kill) commit.
 * Here only:
 *   - a 4th replica joining while payments run: 4/4/4/4, every payment
 *     committed once, ledgers and status histories consistent;
 *   - handover fencing: a replica frozen (SIGSTOP) with Trys in flight loses
 *     its shards, the others finish its transactions, and once resumed it
 *     writes no stale status, then rejoins and gets its share back;
 *   - --shards 1 with one replica behaves as without sharding;
 *   - a replica frozen past its renew deadline (but not past the lease) is
 *     fenced, renews late, and resumes what arrived meanwhile (not at the resync).
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { DistributedTransaction } from '../../src/api/types.js';
import { shardOfUid } from '../../src/controller/sharding/hash-range.js';
import { HistoryRecorder } from '../chaos/history.js';
import { checkHistories, checkPayments } from '../chaos/invariants.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startHangingParticipant, type HangingParticipant } from '../support/hanging-participant.js';
import { runEntry } from '../support/cli.js';
import { counterValue } from '../support/operator.js';
import { startPayment, transactions, type PaymentServices } from '../support/payment.js';
import { OK, startScriptedParticipant, type ScriptedParticipant } from '../support/scripted-participant.js';
import { createPayments, describeShardingSuite, ShardedReplicas, untilAll } from '../support/sharded-replicas.js';

const local = () => inject('localControlPlane');

describeShardingSuite('server', () => ({ kc: kubeConfig(), kubeconfig: kubeconfigPath(), expectMode: local() ? 'server' : undefined }));

describe('sharded replicas, server filter: joining, fencing, one shard', () => {
  let set: ShardedReplicas | undefined;
  let pay: PaymentServices | undefined;
  let history: HistoryRecorder | undefined;
  let hang: HangingParticipant | undefined;
  let scripted: ScriptedParticipant | undefined;

  afterEach(async () => {
    history?.stop();
    await set?.stopAll();
    await pay?.stopAll();
    await hang?.stop();
    await scripted?.stop();
    set = pay = history = hang = scripted = undefined;
  });

  const replicas = async (tag: string, shards: number, ...ids: string[]) => {
    const kc = kubeConfig();
    const namespace = await freshNamespace(kc, `shard-${tag}`);
    const leaseNamespace = await freshNamespace(kc, `lease-${tag}`);
    set = new ShardedReplicas({ kubeconfig: kubeconfigPath(), kc, namespaces: [namespace], leaseNamespace, shards });
    await set.start(...ids);
    return { kc, namespace, set, balanced: await set.waitForBalance(), txs: transactions(kc) };
  };

  it('a 4th replica joining while payments run: the shards rebalance to 4/4/4/4 and every payment commits once', async () => {
    const { kc, namespace, set: s, balanced, txs } = await replicas('join', 16, 'r1', 'r2', 'r3');
    expect(balanced.counts).toEqual({ r1: 6, r2: 5, r3: 5 });
    pay = await startPayment();
    history = new HistoryRecorder(kc, namespace);
    await history.start();
    const before = pay.ledgers();

    const created: Awaited<ReturnType<typeof createPayments>> = [];
    let nextOrder = 5000;
    const more = async (count: number) => {
      created.push(...(await createPayments(pay!, txs, { namespace, prefix: 'join', firstOrder: nextOrder, count })));
      nextOrder += count;
    };
    /** A steady stream: one payment every ~200 ms (pacing, not synchronisation). */
    const paced = async () => {
      await more(1);
      await new Promise((r) => setTimeout(r, 200));
    };
    await more(10);
    // r4 starts while the first payments run and more keep coming.
    const joining = s.start('r4');
    while (!s.replicas.has('r4') && created.length < 60) await paced();
    await joining;
    const rebalancing = s.waitForBalance(30_000);
    let rebalanced = false;
    void rebalancing.then(() => (rebalanced = true), () => undefined);
    while (!rebalanced && created.length < 70) await paced();
    const after = await rebalancing;
    expect(after.counts).toEqual({ r1: 4, r2: 4, r3: 4, r4: 4 });
    // Then until a few land in r4's shards (bounded by the stock: 1 unit each, 100 in all).
    const inR4 = () => created.filter((c) => s.ownerOf(c.uid, after.holders) === 'r4' && c.createdAt > after.at).length;
    while (inR4() < 3 && created.length < 95) await more(1);
    expect(inR4()).toBeGreaterThanOrEqual(3);

    const names = created.map((c) => c.tx.name);
    const objects = await untilAll(txs, namespace, names, ['Committed', 'Aborted', 'Failed']);
    expect(objects.map((o) => o.status?.phase)).toEqual(names.map(() => 'Committed'));
    for (const c of created) {
      await eventually(`${c.tx.name} finished in some replica's log`, async () => (s.loggedBy('transaction finished', c.tx.name).length > 0 ? true : undefined), 10_000);
      // Decided once and finished once, whoever held its shard at the time.
      expect(s.loggedBy('decision persisted', c.tx.name), c.tx.name).toHaveLength(1);
      expect(s.loggedBy('transaction finished', c.tx.name), c.tx.name).toHaveLength(1);
    }
    // Those created after the rebalance are r4's.
    for (const c of created.filter((x) => x.createdAt > after.at && s.ownerOf(x.uid, after.holders) === 'r4')) {
      expect(s.loggedBy('transaction finished', c.tx.name), c.tx.name).toEqual(['r4']);
    }
    // The shards r4 took were given back by the others, never taken from a live holder by force.
    for (const id of ['r1', 'r2', 'r3']) expect(counterValue(await s.op(id).metrics(), 'kubetx_shard_transitions_total', { change: 'lost' }), id).toBe(0);
    history.stop();
    expect(checkHistories(history.history, names)).toEqual([]);
    const check = checkPayments({ before, after: pay.ledgers(), created: created.map((c) => c.tx), objects });
    expect(check.violations).toEqual([]);
    expect(check.committed).toBe(created.length);
    console.log(`[sharding server] r4 joined: ${created.length} payments, ${inR4()} created in r4's shards after the rebalance`);
  }, 180_000);

  it('handover fencing: a frozen replica loses its shards, the others finish its transactions, and once resumed it writes no stale status', async () => {
    const { kc, namespace, set: s, balanced, txs } = await replicas('fence', 16, 'r1', 'r2', 'r3');
    const frozen = 'r3';
    pay = await startPayment();
    hang = await startHangingParticipant();
    history = new HistoryRecorder(kc, namespace);
    await history.start();
    const before = pay.ledgers();

    // A fifth branch, "gate", in front of the payment: its Try is held for the frozen replica's transactions
    // until that replica is resumed, and answered at once for everyone else (and for anyone after the freeze).
    const gate = { address: `127.0.0.1:${hang.port}` };
    const uidOf = new Map<string, string>();
    let frozenAt = Infinity;
    const held = (c: HangingParticipant['calls'][number]) => {
      const uid = uidOf.get(c.transaction);
      return uid === undefined || (s.ownerOf(uid, balanced.holders) === frozen && c.receivedAt < frozenAt);
    };
    let answering = true;
    const answerer = (async () => {
      while (answering) {
        for (const c of hang!.open()) if (!held(c)) c.answer();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const created = await createPayments(pay, txs, {
        namespace,
        prefix: 'fence',
        firstOrder: 6000,
        count: 24,
        extra: (tx: DistributedTransaction) => ({
          ...tx,
          spec: { ...tx.spec, branches: [{ name: 'gate', endpoint: gate, operation: 'gate', callTimeout: '2m' }, ...tx.spec.branches] },
        }),
      });
      for (const c of created) uidOf.set(c.tx.name, c.uid);
      const names = created.map((c) => c.tx.name);
      const frozenNames = created.filter((c) => s.ownerOf(c.uid, balanced.holders) === frozen).map((c) => c.tx.name);
      const others = names.filter((n) => !frozenNames.includes(n));
      expect(frozenNames.length, `transactions in ${frozen}'s shards`).toBeGreaterThan(0);
      await untilAll(txs, namespace, others, ['Committed'], 60_000);
      // Every one of the frozen replica's transactions has its gate Try held, undecided.
      await eventually(`${frozen}'s gate Trys held`, async () => (frozenNames.every((n) => hang!.open().some((c) => c.transaction === n)) ? true : undefined), 30_000);
      for (const t of await Promise.all(frozenNames.map((n) => txs.get(namespace, n)))) expect(t.status?.decision, t.metadata.name).toBeUndefined();
      const heldCalls = hang.open().filter((c) => frozenNames.includes(c.transaction));
      const beforeFreeze = await s.counters(frozen);
      const triesBefore = counterValue(await s.op(frozen).metrics(), 'kubetx_branch_calls_total', { method: 'Try' });
      const linesBefore = s.op(frozen).lines.length;

      frozenAt = Date.now();
      s.freeze(frozen);
      const handover = await s.waitUntilLiveHoldAll(s.timings.leaseMs + 20 * s.timings.retryMs);
      console.log(`[sharding server] SIGSTOP of ${frozen} → its shards held by r1/r2 after ${handover.at - frozenAt} ms`);
      // The others repeat the gate Try (answered now), decide and commit.
      const done = await untilAll(txs, namespace, frozenNames, ['Committed', 'Aborted', 'Failed'], 60_000);
      expect(done.map((t) => t.status?.phase)).toEqual(frozenNames.map(() => 'Committed'));
      for (const n of frozenNames) await eventually(`${n} finished by r1 or r2`, async () => (s.loggedBy('transaction finished', n).length ? true : undefined), 10_000);

      // Now the frozen replica's own Trys succeed, and it wakes up with them: the most tempting moment for a stale write.
      for (const c of heldCalls) c.answer();
      s.resume(frozen);
      await eventually(`${frozen} to take the answers of its ${heldCalls.length} held Trys`, async () => {
        const tries = counterValue(await s.op(frozen).metrics(), 'kubetx_branch_calls_total', { method: 'Try' });
        return tries >= triesBefore + heldCalls.length ? true : undefined;
      }, 20_000);
      const rejoined = await s.waitForBalance(30_000);
      expect(rejoined.counts).toEqual({ r1: 6, r2: 5, r3: 5 });
      const afterResume = await s.counters(frozen);
      const woke = s.op(frozen).lines.slice(linesBefore);
      console.log(`[sharding server] ${frozen} resumed: status writes ok ${beforeFreeze.writesOk} → ${afterResume.writesOk}, conflicts ${beforeFreeze.writesConflict} → ${afterResume.writesConflict}; lost ${woke.filter((l) => l.msg === 'lost shard').length} shards`);
      // No stale write took effect: none at all, or only ones the API server refused.
      expect(afterResume.writesOk).toBe(beforeFreeze.writesOk);
      expect(woke.filter((l) => l.msg === 'decision persisted' || l.msg === 'transaction finished')).toEqual([]);
      // It noticed it had lost each of its shards, then took its share again.
      const lost = new Set(woke.filter((l) => l.msg === 'lost shard').map((l) => l.shard as number));
      for (const [shard, h] of balanced.holders) if (h === frozen) expect(lost.has(shard), `lost shard ${shard}`).toBe(true);
      expect(await s.members()).toEqual(['r1', 'r2', 'r3']);

      for (const n of frozenNames) {
        expect(s.loggedBy('decision persisted', n), n).toHaveLength(1);
        expect(s.loggedBy('decision persisted', n), n).not.toContain(frozen);
        expect(s.loggedBy('transaction finished', n), n).toHaveLength(1);
      }
      history.stop();
      expect(checkHistories(history.history, names)).toEqual([]);
      const objects = await txs.list(namespace);
      expect(objects.filter((o) => names.includes(o.metadata.name)).map((o) => o.status?.phase)).toEqual(names.map(() => 'Committed'));
      const check = checkPayments({ before, after: pay.ledgers(), created: created.map((c) => c.tx), objects });
      expect(check.violations).toEqual([]);
    } finally {
      answering = false;
      await answerer;
    }
  }, 180_000);

  it('--shards 1 with one replica behaves as without sharding: it holds shard 0 and a transaction commits', async () => {
    const { namespace, set: s, balanced, txs } = await replicas('one', 1, 'solo');
    expect(balanced.counts).toEqual({ solo: 1 });
    expect(balanced.holders.get(0)).toBe('solo');
    const op = s.op('solo');
    if (local()) {
      const line = await op.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('shard filter:'), 5_000);
      expect(line.mode).toBe('server');
    }
    scripted = await startScriptedParticipant(() => OK, ['tcc']);
    const made = await txs.create({
      apiVersion: 'kubetx.io/v1alpha1',
      kind: 'DistributedTransaction',
      metadata: { name: 'single', namespace } as DistributedTransaction['metadata'],
      spec: { mode: 'TCC', timeout: '1m', branches: ['a', 'b'].map((b) => ({ name: b, endpoint: { address: scripted!.address } })) },
    });
    expect(shardOfUid(made.metadata.uid, 1)).toBe(0);
    const tx = await txs.untilPhase(namespace, 'single', ['Committed', 'Aborted', 'Failed'], 30_000);
    expect(tx.status?.phase).toBe('Committed');
    expect(scripted.seen('Confirm', 'single').map((c) => c.branch).sort()).toEqual(['a', 'b']);
    await op.waitForLog((l) => l.msg === 'transaction finished' && l.transaction === 'single', 10_000);
    const c = await s.counters('solo');
    expect(c.shardsOwned).toBe(1);
    expect(c.replicasSeen).toBe(1);
    expect(c.finished).toBe(1);
    expect(c.watchOwned).toBeGreaterThan(0);
    expect(c.watchNotOwned).toBe(0);
    // Two status writes, as without sharding (the decision and the outcome).
    expect(c.writesOk).toBe(2);
  }, 90_000);

  it('a shard renewed after its renew deadline resumes what arrived while it was fenced, without waiting for the resync', async () => {
    const kc = kubeConfig();
    const namespace = await freshNamespace(kc, 'shard-lapse');
    const leaseNamespace = await freshNamespace(kc, 'lease-lapse');
    // Nobody else to take the shards: the lease (8 s) outlives the freeze; the renew deadline (1.5 s) does not.
    set = new ShardedReplicas({ kubeconfig: kubeconfigPath(), kc, namespaces: [namespace], leaseNamespace, shards: 2, timings: { leaseMs: 8000, renewDeadlineMs: 1500, retryMs: 500 }, args: ['--resync-period', '30m'] });
    await set.start('solo');
    await set.waitForBalance();
    scripted = await startScriptedParticipant(() => OK, ['tcc']);
    const txs = transactions(kc);
    const op = set.op('solo');
    set.freeze('solo');
    // The stimulus, not a wait for something: a freeze longer than the renew deadline and shorter than the lease.
    const frozenAt = Date.now();
    await txs.create({
      apiVersion: 'kubetx.io/v1alpha1',
      kind: 'DistributedTransaction',
      metadata: { name: 'lapsed', namespace } as DistributedTransaction['metadata'],
      spec: { mode: 'TCC', timeout: '1m', branches: [{ name: 'a', endpoint: { address: scripted.address } }] },
    });
    await new Promise((r) => setTimeout(r, Math.max(0, 3000 - (Date.now() - frozenAt))));
    set.resume('solo');
    await op.waitForLog((l) => l.msg === 'shard renewed after its renew deadline: resuming its transactions', 20_000);
    // Dropped while fenced and never queued again, it would wait for the 30 min resync.
    const tx = await txs.untilPhase(namespace, 'lapsed', ['Committed', 'Aborted', 'Failed'], 30_000);
    expect(tx.status?.phase).toBe('Committed');
    const c = await set.counters('solo');
    expect(c.shardsOwned).toBe(2);
  }, 90_000);

  it('kubectl dtx shards shows who holds which shard, from the Leases', async () => {
    const { set: s, balanced } = await replicas('cli', 4, 'r1', 'r2');
    expect(balanced.counts).toEqual({ r1: 2, r2: 2 });
    const dtx = (...args: string[]) => runEntry('src/cli/kubectl-dtx.ts', args, kubeconfigPath(), 60_000);
    const leaseNs = s.leaseNamespace;
    const text = await dtx('shards', '-n', leaseNs, '--prefix', s.prefix);
    expect(text.code, text.stderr).toBe(0);
    const [shardTable, replicaTable] = text.stdout.trim().split('\n\n');
    const shardRows = shardTable!.split('\n').slice(1).map((l) => l.split(/\s+/));
    expect(shardRows.map((r) => [Number(r[0]), r[1]])).toEqual([0, 1, 2, 3].map((i) => [i, balanced.holders.get(i)]));
    expect(replicaTable!.split('\n')[0]).toMatch(/^REPLICA\s+SHARDS\s+RENEWED$/);
    expect(replicaTable!.split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([['r1', '2'], ['r2', '2']]);
    const json = JSON.parse((await dtx('shards', '-n', leaseNs, '--prefix', s.prefix, '-o', 'json')).stdout) as { shards: Array<{ shard: number; holder: string; shardCount: number }>; replicas: Array<{ identity: string; shards: number }> };
    expect(json.shards.map((x) => x.holder)).toEqual([0, 1, 2, 3].map((i) => balanced.holders.get(i)));
    expect(json.shards.every((x) => x.shardCount === 4)).toBe(true);
    expect(json.replicas).toEqual([expect.objectContaining({ identity: 'r1', shards: 2 }), expect.objectContaining({ identity: 'r2', shards: 2 })]);
    // A namespace without the set: a clear error, exit 1.
    const none = await dtx('shards', '-n', 'default', '--prefix', s.prefix);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/No shard Leases .* in default namespace/);
  }, 90_000);

  it('a replica stopped with SIGTERM hands its shards over at once, well before its Leases could expire', async () => {
    const { set: s, balanced } = await replicas('term', 16, 'r1', 'r2', 'r3');
    expect(balanced.counts).toEqual({ r1: 6, r2: 5, r3: 5 });
    const { leaseMs, retryMs } = s.timings;
    const stoppedAt = Date.now();
    await s.kill('r2', 'SIGTERM');
    const handover = await s.waitUntilLiveHoldAll(leaseMs + 20 * retryMs);
    const handoverMs = handover.at - stoppedAt;
    console.log(`[sharding server] SIGTERM of r2 (5 shards) → every shard held by a live replica after ${handoverMs} ms (lease ${leaseMs} ms, retry ${retryMs} ms)`);
    // Taken over from expiry it could not be sooner than lease - retry (3.5 s): released, it is a few retry periods.
    expect(handoverMs).toBeLessThan(leaseMs - retryMs);
    const after = await s.waitForBalance();
    expect(after.counts).toEqual({ r1: 8, r3: 8 });
    // Its membership Lease is gone, not left to expire.
    expect(await s.members()).toEqual(['r1', 'r3']);
    expect(s.op('r2').lines.some((l) => l.msg === 'left the shard set')).toBe(true);
  }, 90_000);
});
