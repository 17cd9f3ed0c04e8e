/**
 * Runs the reliable-message example's three services in one process:
 *
 *   npx tsx examples/message/server.ts --base-port 50061 --host 127.0.0.1 --db-dir /tmp/msg
 *     order (check-back server) :50061, inventory :50062, credit :50063
 *
 * KUBETX_CONFORMANCE_HOOK=1 (test deployments only) also serves the conformance
 * kit's hook: on the order port, and for credit on base-port + 3 (conformance-hook.ts).
 *
 * SIGTERM/SIGINT stop them. Logs are JSON (pino), one line per call.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { addConformanceHook, serveConformanceHook } from '../../sdk/typescript/src/index.js';
import { creditConformanceHook, orderConformanceHook } from './conformance-hook.js';
import { startOrderService, startReceiver } from './services.js';

const { values } = parseArgs({
  options: {
    'base-port': { type: 'string', default: '50061' },
    host: { type: 'string', default: '0.0.0.0' },
    'db-dir': { type: 'string', default: '/tmp/kubetx-message' },
  },
});
const base = Number(values['base-port']);
const dir = values['db-dir']!;
mkdirSync(dir, { recursive: true });
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
const at = (offset: number) => `${values.host}:${base === 0 ? 0 : base + offset}`;
const order = await startOrderService({ dbPath: join(dir, 'order.db'), address: at(0), logger });
const inventory = await startReceiver({ name: 'inventory', dbPath: join(dir, 'inventory.db'), address: at(1), logger });
const credit = await startReceiver({ name: 'credit', dbPath: join(dir, 'credit.db'), address: at(2), logger });
let creditHook: Awaited<ReturnType<typeof serveConformanceHook>> | undefined;
if (process.env.KUBETX_CONFORMANCE_HOOK === '1') {
  addConformanceHook(order.participant.server, orderConformanceHook(order));
  creditHook = await serveConformanceHook(at(3), creditConformanceHook(credit.db));
  logger.warn({ order: order.port, credit: creditHook.port }, 'conformance hook served: for test deployments only');
}
logger.info({ order: order.port, inventory: inventory.port, credit: credit.port }, 'message example services ready');
const stop = async () => {
  await creditHook?.stop();
  await Promise.all([order.stop(2_000), inventory.stop(2_000), credit.stop(2_000)]);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
