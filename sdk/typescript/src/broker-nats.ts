/**
 * The JetStream path of `subscribe`: a durable pull consumer (created if
 * missing: explicit ack, deliver all, `ackWaitMs`), fetched in batches no
 * larger than the dispatcher has room for. Envelope: headers `Nats-Msg-Id`
 * (the message id), `Kubetx-Key`, `Kubetx-Transaction`; data = JSON bytes.
 *
 * While a message waits in its lane or runs, a WPI ("working") is sent every
 * third of ack_wait so JetStream does not redeliver it meanwhile. A handler
 * error NAKs it with `nakDelayMs`; a confirmed ack (ackAck) counts as acked.
 * Connection problems and a stream that does not exist yet are retried with
 * backoff, so this path may start before the broker is up.
 */
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { backoff, onAbort, pause, type Delivery, type Sink, type Source } from './broker-internal.js';

export interface NatsSubscribeOptions {
  /** Server URL(s), e.g. "nats://nats.messaging:4222". Give this or `connection`. */
  servers?: string | string[];
  /** A connection of your own (TLS, credentials); `stop()` leaves it open. */
  connection?: NatsConnection;
  /** The stream kubetx publishes to (the branch's broker `stream`). */
  stream: string;
  /** The durable pull consumer; created if missing. One per consuming service. */
  durable: string;
  /**
   * filter_subject of the consumer this creates, and the Redis subject when
   * `redis.subject` is unset. @default the whole stream
   */
  subject?: string;
  /** ack_wait of the consumer this creates (an existing consumer keeps its own). @default 30000 */
  ackWaitMs?: number;
  /** Delay before JetStream redelivers a message whose handler failed. @default 1000 */
  nakDelayMs?: number;
  /** How long one pull request waits for messages; at least 1000. @default 1000 */
  expiresMs?: number;
}

export function natsSource(options: NatsSubscribeOptions, sink: Sink, stopping: AbortSignal): Source {
  const { stream, durable } = options;
  if (!stream || !durable) throw new TypeError('subscribe: nats.stream and nats.durable are required');
  if (!options.connection && !options.servers) throw new TypeError('subscribe: give nats.servers or nats.connection');
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const nakDelayMs = options.nakDelayMs ?? 1_000;
  const expiresMs = options.expiresMs ?? 1_000;
  if (!(ackWaitMs > 0)) throw new RangeError('subscribe: nats.ackWaitMs must be positive');
  if (!(nakDelayMs >= 0)) throw new RangeError('subscribe: nats.nakDelayMs must not be negative');
  if (!(expiresMs >= 1_000)) throw new RangeError('subscribe: nats.expiresMs must be at least 1000');
  const log = sink.logger.child({ path: 'nats', stream, durable });
  let own: NatsConnection | undefined;

  const run = async () => {
    const [{ connect }, js] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
    let nc = options.connection;
    if (!nc) {
      const connecting = connect({ servers: options.servers!, waitOnFirstConnect: true, maxReconnectAttempts: -1, name: `kubetx-subscribe/${durable}` });
      const first = await Promise.race([connecting, new Promise<undefined>((r) => onAbort(stopping, () => r(undefined)))]);
      if (!first) {
        void connecting.then((c) => c.close()).catch(() => undefined);
        return;
      }
      nc = own = first;
    }

    const retry = backoff();
    let heartbeatMs = ackWaitMs / 3;
    const setup = async (): Promise<Consumer> => {
      const jsm = await js.jetstreamManager(nc);
      let info;
      try {
        info = await jsm.consumers.info(stream, durable);
      } catch (err) {
        if (!(err instanceof js.JetStreamApiError && err.code === js.JetStreamApiCodes.ConsumerNotFound)) throw err;
        info = await jsm.consumers.add(stream, {
          durable_name: durable,
          ack_policy: js.AckPolicy.Explicit,
          deliver_policy: js.DeliverPolicy.All,
          ack_wait: ackWaitMs * 1e6,
          ...(options.subject ? { filter_subject: options.subject } : {}),
        });
        log.info({ ackWaitMs, subject: options.subject }, 'created the durable consumer');
      }
      if (options.subject && info.config.filter_subject && info.config.filter_subject !== options.subject) {
        log.warn({ subject: options.subject, filterSubject: info.config.filter_subject }, 'the existing durable consumer filters another subject; using it as it is');
      }
      if (info.config.ack_wait) heartbeatMs = info.config.ack_wait / 1e6 / 3;
      const consumer = await js.jetstream(nc).consumers.get(stream, durable);
      sink.ready('nats');
      return consumer;
    };

    // After any failure the consumer is looked up again (and re-created if it
    // is gone, e.g. a server restarted without its store).
    let consumer: Consumer | undefined;
    while (!stopping.aborted) {
      try {
        consumer ??= await setup();
        await sink.waitForRoom('nats', stopping);
        if (stopping.aborted) break;
        const batch = await consumer.fetch({ max_messages: sink.room('nats'), expires: expiresMs });
        for await (const m of batch) sink.dispatch(delivery(m, heartbeatMs));
        retry.reset();
      } catch (err) {
        if (stopping.aborted) break;
        log.warn({ err }, consumer ? 'fetching from JetStream failed; retrying' : 'setting up the JetStream consumer failed; retrying');
        consumer = undefined;
        await pause(retry.next(), stopping);
      }
    }
  };

  const delivery = (m: JsMsg, heartbeatMs: number): Delivery => {
    const timer = setInterval(() => m.working(), Math.max(heartbeatMs, 100));
    timer.unref();
    const settle = () => clearInterval(timer);
    const h = m.headers;
    return {
      path: 'nats',
      id: h?.get('Nats-Msg-Id') || undefined,
      key: h?.has('Kubetx-Key') ? h.get('Kubetx-Key') : undefined,
      transaction: h?.get('Kubetx-Transaction') || undefined,
      subject: m.subject,
      data: Buffer.from(m.data),
      redelivered: m.redelivered,
      async ack() {
        settle();
        if (!(await m.ackAck())) throw new Error('JetStream did not confirm the ack');
      },
      retry() {
        settle();
        m.nak(nakDelayMs);
      },
      async reject(reason) {
        settle();
        m.term(reason);
      },
    };
  };

  const finished = run().catch((err: unknown) => log.error({ err }, 'the JetStream path stopped on an unexpected error'));
  return {
    finished,
    async close() {
      if (own && !own.isClosed()) await own.close();
    },
  };
}
