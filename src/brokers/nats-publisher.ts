/**
 * Publishes a message to NATS JetStream with its dedup id (`Nats-Msg-Id`), so
 * a republish inside the stream's duplicate window is answered with the first
 * ack and `duplicate: true` instead of storing a second copy.
 *
 * Failures are classified (errors.ts):
 * - unavailable: a timeout (no ack in `timeoutMs`), the connection being down
 *   or closed, JetStream answering 5xx (e.g. 10008 temporarily unavailable),
 *   or no responders while JetStream itself does not answer either.
 * - rejected: no responders while JetStream answers its API (the server is
 *   up but no stream captures the subject: a configuration error that failing
 *   over would hide, and that recovery would bring back), JetStream API 4xx
 *   errors (expected stream mismatch, message too large), permission
 *   violations, invalid subjects.
 *
 * While the client is disconnected a publish fails at once (`Disconnected`)
 * instead of waiting in the client's reconnect buffer: a buffered publish that
 * is flushed minutes later, after the message went to Redis, would land in
 * NATS out of order.
 */
import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import {
  AuthorizationError,
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  headers,
  InvalidSubjectError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  type NatsConnection,
} from '@nats-io/transport-node';
import { BrokerError, withTimeout } from './errors.js';
import { HEADER_KEY, HEADER_TRANSACTION, messageProblem, type BrokerMessage } from './message.js';

export interface NatsAck {
  via: 'nats';
  stream: string;
  seq: number;
  duplicate: boolean;
}

export interface NatsPublisherOptions {
  connection: NatsConnection;
  /** How long to wait for JetStream's ack. @default 2000 */
  timeoutMs?: number;
  /** The stream that must capture the subjects (JetStream checks it: `expect.streamName`); also what `probe()` asks about. */
  stream?: string;
}

export class NatsPublisher {
  private readonly js: JetStreamClient;
  private jsm?: Promise<JetStreamManager>;
  private readonly timeoutMs: number;
  private connected = true;

  constructor(private readonly opts: NatsPublisherOptions) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.js = jetstream(opts.connection, { timeout: this.timeoutMs });
    void this.watchStatus().catch(() => {
      this.connected = true; // no status events: fall back to the publish timeout
    });
  }

  async publish(msg: BrokerMessage): Promise<NatsAck> {
    const problem = messageProblem(msg);
    if (problem) throw new BrokerError('rejected', 'nats', 'InvalidMessage', problem);
    if (this.opts.connection.isClosed()) throw new BrokerError('unavailable', 'nats', 'ConnectionClosed', 'the NATS connection is closed');
    if (!this.connected) throw new BrokerError('unavailable', 'nats', 'Disconnected', 'not connected to NATS (reconnecting)');
    const h = headers();
    h.set(HEADER_KEY, msg.key);
    h.set(HEADER_TRANSACTION, msg.transaction);
    try {
      const ack = await this.js.publish(msg.subject, msg.data, {
        msgID: msg.id, // the Nats-Msg-Id header (message.ts HEADER_MSG_ID)
        headers: h,
        timeout: this.timeoutMs,
        ...((msg.stream ?? this.opts.stream) ? { expect: { streamName: msg.stream ?? this.opts.stream } } : {}),
      });
      return { via: 'nats', stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      throw await this.classify(err, msg.subject);
    }
  }

  /**
   * Resolves when JetStream answers an API call (info of `stream` if set, else
   * the account info); rejects with a BrokerError otherwise. The router's
   * recovery probe.
   */
  async probe(): Promise<void> {
    if (this.opts.connection.isClosed()) throw new BrokerError('unavailable', 'nats', 'ConnectionClosed', 'the NATS connection is closed');
    if (!this.connected) throw new BrokerError('unavailable', 'nats', 'Disconnected', 'not connected to NATS (reconnecting)');
    try {
      const jsm = await this.manager();
      await withTimeout(
        this.opts.stream ? jsm.streams.info(this.opts.stream).then(() => undefined) : jsm.getAccountInfo().then(() => undefined),
        this.timeoutMs,
        () => new TimeoutError(),
      );
    } catch (err) {
      // A missing stream classifies as rejected; for the probe either way means "not usable".
      throw err instanceof BrokerError ? err : await this.classify(err, undefined);
    }
  }

  private manager(): Promise<JetStreamManager> {
    this.jsm ??= jetstreamManager(this.opts.connection, { timeout: this.timeoutMs, checkAPI: false }).catch((err: unknown) => {
      this.jsm = undefined;
      throw err;
    });
    return this.jsm;
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.opts.connection.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnecting' || s.type === 'staleConnection') this.connected = false;
      else if (s.type === 'reconnect') this.connected = true;
      else if (s.type === 'close') this.connected = false;
    }
  }

  private async classify(err: unknown, subject: string | undefined): Promise<BrokerError> {
    const text = err instanceof Error ? err.message : String(err);
    if (err instanceof TimeoutError) return new BrokerError('unavailable', 'nats', 'Timeout', `no JetStream ack within ${this.timeoutMs} ms`, { cause: err });
    if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError || err instanceof ConnectionError) {
      return new BrokerError('unavailable', 'nats', 'ConnectionClosed', text, { cause: err });
    }
    if (isNoResponders(err)) {
      if (subject === undefined) return new BrokerError('unavailable', 'nats', 'NoResponders', 'JetStream does not answer', { cause: err });
      // No responders: either JetStream is down (unavailable) or it is up and no stream listens on the subject (rejected).
      const apiAnswers = await this.manager()
        .then((jsm) => withTimeout(jsm.getAccountInfo(), this.timeoutMs, () => new TimeoutError()))
        .then(() => true, () => false);
      return apiAnswers
        ? new BrokerError('rejected', 'nats', 'NoStream', `no JetStream stream captures subject "${subject}"`, { cause: err })
        : new BrokerError('unavailable', 'nats', 'NoResponders', 'JetStream does not answer', { cause: err });
    }
    if (err instanceof Error && err.cause instanceof JetStreamApiError) {
      // JetStreamNotEnabled wrapping 10039: the account has no JetStream at all.
      return new BrokerError('rejected', 'nats', 'JetStreamNotEnabled', text, { cause: err });
    }
    if (err instanceof JetStreamApiError) {
      const api = err.apiError();
      return api.code >= 500
        ? new BrokerError('unavailable', 'nats', 'JetStreamUnavailable', `JetStream ${api.code}/${api.err_code}: ${api.description}`, { cause: err })
        : new BrokerError('rejected', 'nats', api.err_code === 10059 ? 'NoStream' : 'JetStreamRejected', `JetStream ${api.code}/${api.err_code}: ${api.description}`, { cause: err });
    }
    if (err instanceof PermissionViolationError || err instanceof AuthorizationError) return new BrokerError('rejected', 'nats', 'PermissionDenied', text, { cause: err });
    if (err instanceof InvalidSubjectError) return new BrokerError('rejected', 'nats', 'InvalidMessage', text, { cause: err });
    if (err instanceof RequestError) return new BrokerError('unavailable', 'nats', 'RequestFailed', text, { cause: err });
    // Unknown: treat as an outage; the message stays undelivered and is retried, never dropped.
    return new BrokerError('unavailable', 'nats', 'Unknown', text, { cause: err });
  }
}

/** No responders on the subject: the client's JetStreamNotEnabled wraps the RequestError whose cause says so. */
function isNoResponders(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) return true;
  }
  return false;
}
