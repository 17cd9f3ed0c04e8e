/**
 * The DistributedTransactions the benchmark creates. They look like the
 * payment example's (an order id, a SKU, a quantity per branch) so the object
 * and status sizes are those of a real transaction.
 */
import type { BranchSpec, DistributedTransaction, Mode, RetryPolicy } from '../../src/api/types.js';
import { API_VERSION, GROUP, PLURAL, VERSION } from '../../src/api/types.js';

export const txPath = (ns: string, name?: string) =>
  `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}${name ? `/${name}` : ''}`;

const names = ['order', 'inventory', 'credit', 'warehouse'];
const operations = ['pay', 'reduceStock', 'addCredit', 'saleDelivery'];

export interface TxOptions {
  mode?: Mode;
  branches: number;
  /** Participant addresses; branch i goes to addresses[i % length]. */
  addresses: string[];
  /** Overrides the address of the last branch (a dead endpoint for the scale test's pending transactions). */
  lastAddress?: string;
  timeout?: string;
  retry?: RetryPolicy;
  /** Saga: a linear chain (each branch dependsOn the previous one). */
  linear?: boolean;
  orderId?: number;
}

export function transaction(name: string, namespace: string, o: TxOptions): DistributedTransaction {
  const mode = o.mode ?? 'TCC';
  const orderId = o.orderId ?? 1000;
  const branches: BranchSpec[] = Array.from({ length: o.branches }, (_, i) => {
    const base = names[i % names.length]!;
    const name = o.branches <= names.length ? base : `${base}-${i}`;
    const address = i === o.branches - 1 && o.lastAddress ? o.lastAddress : o.addresses[i % o.addresses.length]!;
    const b: BranchSpec = {
      name,
      endpoint: { address },
      operation: operations[i % operations.length],
      payload: { orderId, sku: 'A-1', qty: 2, userId: 7 },
      callTimeout: '5s',
    };
    if (mode === 'Saga' && o.linear && i > 0) b.dependsOn = [o.branches <= names.length ? names[i - 1]! : `${names[(i - 1) % names.length]}-${i - 1}`];
    return b;
  });
  return {
    apiVersion: API_VERSION,
    kind: 'DistributedTransaction',
    metadata: { name, namespace } as DistributedTransaction['metadata'],
    spec: {
      mode,
      ...(mode === 'Notify' ? {} : { timeout: o.timeout ?? '120s' }),
      retry: o.retry ?? { initialInterval: '200ms', maxInterval: '2s', multiplier: 2, maxAttempts: 0 },
      branches,
    },
  };
}

/** The phase a successful run of each mode ends in. */
export const successPhase: Record<Mode, string> = { TCC: 'Committed', Saga: 'Completed', Notify: 'Delivered', Message: 'Delivered' };

export const terminalPhases = new Set(['Committed', 'Aborted', 'Failed', 'Completed', 'Compensated', 'Delivered', 'RolledBack', 'Exhausted']);
