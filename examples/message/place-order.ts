/**
 * The upstream's side, from the command line: creates an order in the order
 * service's database and the DistributedTransaction that tells inventory and
 * credit, the reliable way (prepareMessage → local transaction + outbox row →
 * commit). Uses your kubeconfig, like kubectl.
 *
 *   npx tsx examples/message/place-order.ts --namespace shop --order 1001 \
 *       --db /tmp/kubetx-message/order.db --host 127.0.0.1 --base-port 50061
 *   … --crash before-decision      local commit, then "crash": the check-back delivers it
 *   … --crash before-local-commit  "crash" first: the check-back rolls it back
 *   … --fail-local "credit limit"  the local transaction fails: rolled back at once
 *
 * Endpoints are raw addresses (host:base-port+0/1/2), so the operator must run
 * with --allow-raw-addresses; in a cluster use Services instead (see manifests/).
 */
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { SqliteOutbox } from '../../sdk/typescript/src/sqlite.js';
import { openOrderDb, placeOrder, type OrderService } from './services.js';

const { values } = parseArgs({
  options: {
    namespace: { type: 'string', short: 'n', default: 'default' },
    order: { type: 'string', default: '1001' },
    db: { type: 'string', default: '/tmp/kubetx-message/order.db' },
    host: { type: 'string', default: '127.0.0.1' },
    'base-port': { type: 'string', default: '50061' },
    'check-after': { type: 'string', default: '10s' },
    crash: { type: 'string' },
    'fail-local': { type: 'string' },
  },
});
const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const base = Number(values['base-port']);
const at = (offset: number) => ({ address: `${values.host}:${base + offset}` });
// The order service's database (the check-back server reads the same file).
const db = openOrderDb(values.db!);
const order = { db, outbox: new SqliteOutbox(db) } as OrderService;
const orderId = Number(values.order);
const { outcome, message } = await placeOrder(kc, order, {
  name: `order-${orderId}`,
  namespace: values.namespace!,
  orderId,
  checkAfter: values['check-after']!,
  endpoints: { order: at(0), inventory: at(1), credit: at(2) },
  ...(values.crash ? { crash: values.crash as 'before-decision' | 'before-local-commit' } : {}),
  ...(values['fail-local'] ? { failLocal: values['fail-local'] } : {}),
});
console.log(`${values.namespace}/${message.name} (uid ${message.uid}): ${outcome}`);
console.log(`watch it: kubectl get dtx ${message.name} -n ${values.namespace} -w`);
db.close();
