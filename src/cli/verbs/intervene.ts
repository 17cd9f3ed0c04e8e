/**
 * kubectl dtx retry / abort: set the annotation (src/engine/intervention.ts),
 * then wait until the operator acknowledges it in status.retryAcknowledged /
 * status.abortAcknowledged, and tell whether it acted or refused. Refusals come
 * with a Warning Event (RetryRefused, AbortRefused) whose note is the reason.
 */
import * as k8s from '@kubernetes/client-node';
import type { DistributedTransaction } from '../../api/types.js';
import { ABORT_ANNOTATION, RETRY_ANNOTATION, ackValue } from '../../engine/intervention.js';
import { parseDuration } from '../../engine/duration.js';
import { CLI_FIELD_MANAGER, getTx, ref, UsageError, type Ctx, type Verb } from '../context.js';
import { EXIT } from '../errors.js';
import { eventTime } from '../output.js';
import { needName } from './args.js';
import { eventsOf } from './show.js';

const POLL_MS = 250;

export const retry: Verb = {
  usage: 'retry NAME [-n NAMESPACE] [--timeout 30s]',
  async run(ctx) {
    const name = needName(ctx, 'retry');
    const timeoutMs = timeoutOf(ctx);
    const value = ctx.now().toISOString();
    await annotate(ctx, name, RETRY_ANNOTATION, value);
    const who = `${ctx.namespace}/${name}`;
    ctx.out(`retry requested for ${who} (${RETRY_ANNOTATION}=${value}); waiting for the operator`);
    const tx = await acknowledged(ctx, name, (t) => t.status?.retryAcknowledged === ackValue(value), timeoutMs);
    if (!tx) return timedOut(ctx, who, timeoutMs);
    // Refused only when it failed before deciding (nothing to carry out).
    if (tx.status?.phase === 'Failed' && !tx.status.decision) {
      ctx.err(`error: retry refused by the operator: ${await refusal(ctx, name, 'RetryRefused', tx.status.message ?? 'transaction failed before deciding')}`);
      return EXIT.refused;
    }
    ctx.out(`retry acknowledged by the operator: phase ${tx.status?.phase ?? '?'}`);
    return EXIT.ok;
  },
};

export const abort: Verb = {
  usage: 'abort NAME --reason TEXT [-n NAMESPACE] [--timeout 30s]',
  async run(ctx) {
    const name = needName(ctx, 'abort');
    const reason = ctx.flags.reason;
    if (!reason) throw new UsageError('abort needs --reason TEXT (it is recorded in the transaction status and Events)');
    const timeoutMs = timeoutOf(ctx);
    const who = `${ctx.namespace}/${name}`;
    const before = await getTx(ctx, name);
    if (before.status?.abortAcknowledged === ackValue(reason)) {
      ctx.err(`error: an abort with this reason was already handled for ${who}; give a different --reason to ask again`);
      return EXIT.refused;
    }
    await annotate(ctx, name, ABORT_ANNOTATION, reason);
    ctx.out(`abort requested for ${who}; waiting for the operator`);
    const tx = await acknowledged(ctx, name, (t) => t.status?.abortAcknowledged === ackValue(reason), timeoutMs);
    if (!tx) return timedOut(ctx, who, timeoutMs);
    const s = tx.status ?? {};
    // Accepted: the mode decided to roll back with the user's reason as message (or is done rolling back).
    const accepted = typeof s.message === 'string' && s.message.includes('aborted by user:');
    if (!accepted) {
      const why = s.decision ? `transaction already decided ${s.decision}; abort has no effect` : `transaction is ${s.phase ?? 'not reconciled'}; abort has no effect`;
      ctx.err(`error: abort refused by the operator: ${await refusal(ctx, name, 'AbortRefused', why)}`);
      return EXIT.refused;
    }
    ctx.out(`abort accepted by the operator: decision ${s.decision ?? '?'}, phase ${s.phase ?? '?'}`);
    return EXIT.ok;
  },
};

function timeoutOf(ctx: Ctx): number {
  try {
    return parseDuration(ctx.flags.timeout ?? '30s');
  } catch (err) {
    throw new UsageError(`--timeout: ${(err as Error).message}`);
  }
}

async function annotate(ctx: Ctx, name: string, key: string, value: string): Promise<void> {
  await ctx.api.patchNamespacedCustomObject(
    { ...ref(ctx, name), fieldManager: CLI_FIELD_MANAGER, body: { metadata: { annotations: { [key]: value } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

/** The transaction once `done` holds, or undefined after timeoutMs. */
async function acknowledged(ctx: Ctx, name: string, done: (tx: DistributedTransaction) => boolean, timeoutMs: number): Promise<DistributedTransaction | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tx = await getTx(ctx, name);
    if (done(tx)) return tx;
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}

function timedOut(ctx: Ctx, who: string, timeoutMs: number): number {
  ctx.err(`error: timed out after ${timeoutMs / 1000}s waiting for the operator to acknowledge the request on ${who} (is the operator running and watching this namespace?)`);
  return EXIT.timeout;
}

/** The newest Event of that reason says why; `fallback` when it cannot be read (yet). */
async function refusal(ctx: Ctx, name: string, reason: string, fallback: string): Promise<string> {
  try {
    const notes = (await eventsOf(ctx, name))
      .filter((e) => e.reason === reason)
      .sort((a, b) => eventTime(a).localeCompare(eventTime(b)));
    return notes.at(-1)?.note ?? fallback;
  } catch {
    return fallback;
  }
}
