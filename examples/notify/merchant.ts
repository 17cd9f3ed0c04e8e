/**
 * The best-effort notification example's receiver (seed 003): a merchant's
 * "payment result" endpoint, notified by kubetx with `mode: Notify`.
 *
 *   npx tsx examples/notify/merchant.ts --port 50081 --db /tmp/merchant.db [--conformance-hook]
 *
 * It implements MessageReceiver/Deliver on the kubetx SDK and records each
 * notification once (the SQLite barrier deduplicates repeats of the same
 * transaction uid and branch), in `notifications(uid, order_id, result, received_at)`.
 * Like any best-effort receiver it must be idempotent, and it can always ask
 * for the result itself: the DistributedTransaction stays queryable
 * (`kubectl get dtx NAME -o jsonpath='{.status.phase}'`).
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { addConformanceHook, serveParticipant, type Middleware, type Participant } from '../../sdk/typescript/src/index.js';
import { SqliteBarrier } from '../../sdk/typescript/src/sqlite.js';
import { merchantConformanceHook } from './conformance-hook.js';

export interface Merchant {
  port: number;
  db: Database.Database;
  participant: Participant;
  /** Deliver calls that reached the server (including failed ones). */
  calls(): number;
  /** Notifications recorded for a transaction uid (0 or 1). */
  received(uid: string): number;
  stop(graceMs?: number): Promise<void>;
}

export interface MerchantOptions {
  dbPath: string;
  /** host:port; "127.0.0.1:0" picks a free port. */
  address: string;
  logger?: Logger;
  /** Answer every Deliver with an error (a merchant whose endpoint is broken). @default false */
  alwaysFail?: boolean;
  handleSignals?: boolean;
  /** Serve the conformance kit's hook (conformance-hook.ts; test deployments only). @default env KUBETX_CONFORMANCE_HOOK=1 */
  conformanceHook?: boolean;
}

export function openMerchantDb(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS notifications (
    uid TEXT PRIMARY KEY, order_id INTEGER, result TEXT, received_at INTEGER NOT NULL)`);
  return db;
}

export async function startMerchant(opts: MerchantOptions): Promise<Merchant> {
  const db = openMerchantDb(opts.dbPath);
  const hook = (opts.conformanceHook ?? process.env.KUBETX_CONFORMANCE_HOOK === '1') ? merchantConformanceHook(db) : undefined;
  let calls = 0;
  const middleware: Middleware<Database.Database> = async (_ctx, next) => {
    calls++;
    if (opts.alwaysFail) throw new Error('merchant endpoint broken (example fault)');
    return next();
  };
  const participant = await serveParticipant<Database.Database>({
    address: opts.address,
    barrier: new SqliteBarrier(db),
    middleware,
    handleSignals: opts.handleSignals ?? false,
    logger: (opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' })).child({ service: 'merchant' }),
    receiver: {
      deliver: (ctx) => {
        const p = (ctx.payload ?? {}) as { orderId?: number; result?: string };
        ctx.tx
          .prepare(`INSERT INTO notifications (uid, order_id, result, received_at) VALUES (?, ?, ?, ?)`)
          .run(ctx.uid, p.orderId ?? null, p.result ?? null, Date.now());
        hook?.deliver(ctx.tx, ctx.payload);
        return { message: `merchant: order ${p.orderId ?? '?'} ${p.result ?? ''} recorded` };
      },
    },
  });
  if (hook) addConformanceHook(participant.server, hook.handlers);
  const receivedStmt = db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM notifications WHERE uid = ?`);
  return {
    port: participant.port,
    db,
    participant,
    calls: () => calls,
    received: (uid) => receivedStmt.get(uid)!.n,
    stop: async (graceMs = 0) => {
      await participant.shutdown(graceMs);
      db.close();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '50081' },
      host: { type: 'string', default: '0.0.0.0' },
      db: { type: 'string', default: 'merchant.db' },
      'always-fail': { type: 'boolean', default: false },
      'conformance-hook': { type: 'boolean', default: false },
    },
  });
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const m = await startMerchant({
    dbPath: values.db!,
    address: `${values.host}:${values.port}`,
    logger,
    alwaysFail: values['always-fail'],
    ...(values['conformance-hook'] ? { conformanceHook: true } : {}),
    handleSignals: true,
  });
  logger.info({ port: m.port }, 'merchant ready');
}
