/**
 * The upstream side of a reliable message (`mode: Message`): the service whose
 * local transaction decides whether the message is sent.
 *
 *   const msg = await prepareMessage(kc, { metadata: { name: `order-${id}`, namespace: 'shop' }, spec: {...} }, { outbox });
 *   await msg.runLocal((db) => db.prepare('INSERT INTO orders ...').run(...));   // + the outbox row, one local transaction
 *   await msg.commit();                                                            // spec.message.decision = Commit
 *   // or, all three with rollback on failure: await msg.execute((db) => ...)
 *
 * And its check-back server:
 *
 *   await serveParticipant({ address, source: checkPreparedFromOutbox(outbox) });
 *
 * Order of events, and why each is safe if the process dies right after it:
 *  1. prepareMessage creates the DistributedTransaction (phase Prepared). Dies
 *     here → no local row; the operator's check-back gets ROLLED_BACK → RolledBack.
 *  2. runLocal runs the business change AND inserts the outbox row
 *     (kubetx_prepared_messages: uid, namespace, name, state 'committed') in ONE
 *     local transaction. Dies before its commit → as in 1. Dies after → the row
 *     is there; check-back gets COMMITTED → delivered.
 *  3. commit() sets spec.message.decision: Commit (a merge patch; the field may
 *     be set once). The message is delivered without waiting for checkAfter.
 *
 * The check-back rule ("absent row = rolled back") is made race-free by a
 * claim: when the row is absent, the check-back inserts it with state
 * 'rolled_back' (in its own short local transaction), so a local transaction
 * still running can no longer commit — its own insert of the row conflicts and
 * runLocal fails with MessageRolledBack, rolling the business change back.
 * Whichever of the two inserts the row first decides; the answer never
 * contradicts what the upstream's database holds. (With a checkAfter longer
 * than your local transactions, this race practically never happens.)
 *
 * This module (`@kubetx/participant/message`) needs @kubernetes/client-node
 * (an optional peer dependency of the SDK: install it to use prepareMessage).
 *
 * Delivery is at-least-once: receivers must be idempotent (the SDK's barrier
 * deduplicates Deliver on (uid, branch)).
 */
import * as k8s from '@kubernetes/client-node';
import {
  API_VERSION,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type DistributedTransaction,
  type MessageSpec,
  type TransactionSpec,
} from './api-types.js';
import { MessageRolledBack, type MessageKey, type MessageOutbox } from './outbox.js';

// The outbox contract is in the main entry point too; re-exported so one import serves the upstream.
export { MessageRolledBack, checkPreparedFromOutbox, DEFAULT_OUTBOX_TABLE, DEFAULT_OUTBOX_RETENTION_MS, type MessageKey, type MessageOutbox, type OutboxState } from './outbox.js';
export type { DistributedTransaction, MessageSpec, TransactionSpec } from './api-types.js';

/** What prepareMessage needs of the Kubernetes API (a CustomObjectsApi; injectable for tests). */
export type MessageApi = Pick<k8s.CustomObjectsApi, 'createNamespacedCustomObject' | 'patchNamespacedCustomObject' | 'getNamespacedCustomObject'>;

/** The transaction to create: mode is set to Message, spec.message.decision must be unset. */
export interface MessageTransaction {
  metadata: { name?: string; generateName?: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Omit<TransactionSpec, 'mode' | 'message'> & { mode?: 'Message'; message: MessageSpec };
}

export interface PrepareMessageOptions<Conn> {
  outbox: MessageOutbox<Conn>;
  /** @default a CustomObjectsApi from `kc` */
  api?: MessageApi;
  /** Attempts at setting the decision when the API server fails transiently. @default 5 */
  decisionAttempts?: number;
  /** First pause between those attempts, doubled each time. @default 200 */
  decisionRetryMs?: number;
}

type LocalState = 'prepared' | 'running' | 'local-committed' | 'local-failed' | 'committed' | 'rolled-back';

/** Creates the DistributedTransaction (phase Prepared) before the local transaction runs. */
export async function prepareMessage<Conn>(
  kc: k8s.KubeConfig | undefined,
  tx: MessageTransaction,
  options: PrepareMessageOptions<Conn>,
): Promise<PreparedMessage<Conn>> {
  if (tx.spec.mode !== undefined && tx.spec.mode !== 'Message') throw new TypeError(`prepareMessage: spec.mode must be Message, got ${tx.spec.mode}`);
  if (!tx.spec.message?.source?.endpoint) throw new TypeError('prepareMessage: spec.message.source.endpoint is required (the check-back server)');
  if (tx.spec.message.decision) throw new TypeError('prepareMessage: spec.message.decision must be unset; commit() or rollback() sets it');
  const api = options.api ?? kc?.makeApiClient(k8s.CustomObjectsApi);
  if (!api) throw new TypeError('prepareMessage: give a KubeConfig or options.api');
  const body = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: tx.metadata,
    spec: { ...tx.spec, mode: 'Message' as const, message: { ...tx.spec.message } },
  };
  delete (body.spec.message as { decision?: unknown }).decision;
  const created = (await api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: tx.metadata.namespace,
    body,
  })) as DistributedTransaction;
  return new PreparedMessage(created, api, options);
}

export class PreparedMessage<Conn> {
  readonly key: MessageKey;
  private state: LocalState = 'prepared';

  constructor(
    /** The object as created (its metadata.uid keys the outbox row). */
    readonly tx: DistributedTransaction,
    private readonly api: MessageApi,
    private readonly options: PrepareMessageOptions<Conn>,
  ) {
    this.key = { uid: tx.metadata.uid, namespace: tx.metadata.namespace, name: tx.metadata.name };
  }

  get uid(): string {
    return this.key.uid;
  }

  get name(): string {
    return this.key.name;
  }

  /**
   * Runs the local transaction: `fn`'s writes and the outbox row commit
   * together. For SqliteOutbox `fn` must be synchronous. Once only.
   */
  async runLocal<T>(fn: (conn: Conn) => T | Promise<T>): Promise<T> {
    if (this.state !== 'prepared') throw new Error(`runLocal: already called (state ${this.state})`);
    this.state = 'running';
    try {
      const result = await this.options.outbox.runLocal(this.key, fn);
      this.state = 'local-committed';
      return result;
    } catch (err) {
      this.state = 'local-failed';
      throw err;
    }
  }

  /**
   * Sets spec.message.decision to Commit, after runLocal succeeded. If this
   * fails (or the process dies first) nothing is lost: the operator's
   * check-back finds the outbox row. Throws MessageRolledBack if the operator
   * has already rolled the message back (check-back timed out with the source
   * unreachable): the local change is committed but the message will not be
   * delivered — a human must reconcile.
   */
  async commit(): Promise<DistributedTransaction> {
    if (this.state !== 'local-committed') throw new Error(`commit: runLocal has not committed (state ${this.state})`);
    const tx = await this.decide('Commit');
    this.state = 'committed';
    if (tx.status?.decision === 'Rollback' || tx.status?.phase === 'RolledBack') {
      throw new MessageRolledBack(
        `message ${this.key.namespace}/${this.key.name} was rolled back by the operator (${tx.status?.message ?? 'no reason recorded'}) although the local transaction committed`,
      );
    }
    return tx;
  }

  /** Sets spec.message.decision to Rollback. Refused after runLocal committed (the message would be lost). */
  async rollback(): Promise<DistributedTransaction> {
    if (this.state === 'local-committed' || this.state === 'committed' || this.state === 'running') {
      throw new Error(`rollback: not allowed after the local transaction ${this.state === 'running' ? 'started' : 'committed'}`);
    }
    const tx = await this.decide('Rollback');
    this.state = 'rolled-back';
    return tx;
  }

  /** runLocal(fn) then commit(); if runLocal fails, rollback() (best effort) and rethrow. */
  async execute<T>(fn: (conn: Conn) => T | Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await this.runLocal(fn);
    } catch (err) {
      // If this patch fails too, the check-back answers ROLLED_BACK anyway.
      await this.rollback().catch(() => undefined);
      throw err;
    }
    await this.commit();
    return result;
  }

  private async decide(decision: 'Commit' | 'Rollback'): Promise<DistributedTransaction> {
    const ref = { group: GROUP, version: VERSION, plural: PLURAL, namespace: this.key.namespace, name: this.key.name };
    const attempts = Math.max(1, this.options.decisionAttempts ?? 5);
    let pause = this.options.decisionRetryMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.api.patchNamespacedCustomObject(
          { ...ref, body: { spec: { message: { decision } } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )) as DistributedTransaction;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 422 || code === 409) {
          // Refused (the decision is set once): fine if it is already ours, e.g. a retry after a lost response.
          const current = (await this.api.getNamespacedCustomObject(ref)) as DistributedTransaction;
          if (current.spec.message?.decision === decision) return current;
          throw new Error(`setting spec.message.decision to ${decision} refused: it is ${JSON.stringify(current.spec.message?.decision ?? '')}: ${errorText(err)}`);
        }
        if (code === 404) throw new Error(`message ${this.key.namespace}/${this.key.name} no longer exists`);
        if (attempt >= attempts) throw new Error(`setting spec.message.decision to ${decision} failed ${attempt} times: ${errorText(err)}`);
        await new Promise((r) => setTimeout(r, pause));
        pause *= 2;
      }
    }
  }
}

function errorText(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  const body = typeof e.body === 'string' ? e.body : e.body ? JSON.stringify(e.body) : '';
  return (body || e.message || String(err)).slice(0, 512);
}
