/**
 * kubectl dtx get NAME [-o json|yaml] [-w]. With -w it watches the transaction:
 * on a terminal the per-branch view is redrawn on each event; otherwise one
 * line per change. It ends when the transaction reaches a final phase (exit 0)
 * or on Ctrl-C (exit 130).
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../../api/types.js';
import { FINAL_PHASES, getTx, UsageError, type Ctx, type Verb } from '../context.js';
import { EXIT } from '../errors.js';
import { listTable, serialize, summary, watchLine } from '../output.js';
import { needName } from './args.js';

export const get: Verb = {
  usage: 'get NAME [-n NAMESPACE] [-o json|yaml] [-w]',
  async run(ctx) {
    const name = needName(ctx, 'get');
    const output = ctx.flags.output ?? '';
    if (!['', 'wide', 'json', 'yaml'].includes(output)) throw new UsageError(`get: unknown output format "${output}" (wide, json, yaml)`);
    const tx = await getTx(ctx, name);
    if (ctx.flags.watch) return watch(ctx, tx);
    if (output === 'json' || output === 'yaml') ctx.out(serialize(tx, output));
    else ctx.out(listTable([tx], { allNamespaces: false, wide: output === 'wide', now: ctx.now() }).join('\n'));
    return 0;
  },
};

async function watch(ctx: Ctx, first: DistributedTransaction): Promise<number> {
  let last = '';
  const render = (tx: DistributedTransaction) => {
    if (ctx.tty) {
      // Home, clear, redraw.
      ctx.out(`\u001b[H\u001b[2J${summary(tx).join('\n')}\n\n(watching; Ctrl-C to stop)`);
      return;
    }
    const line = watchLine(tx, ctx.now());
    const key = line.slice(line.indexOf(' ') + 1);
    if (key !== last) ctx.out(line);
    last = key;
  };
  render(first);
  if (FINAL_PHASES.has(first.status?.phase ?? '')) return 0;

  const path = `/apis/${GROUP}/${VERSION}/namespaces/${ctx.namespace}/${PLURAL}`;
  let stop: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (stop = resolve));
  let request: { abort(): void } | undefined;
  let resourceVersion = first.metadata.resourceVersion;
  let finished = false;
  const start = async (): Promise<void> => {
    request = await new k8s.Watch(ctx.kc).watch(
      path,
      { fieldSelector: `metadata.name=${first.metadata.name}`, ...(resourceVersion ? { resourceVersion } : {}) },
      (type: string, obj: DistributedTransaction) => {
        if (type === 'DELETED') {
          ctx.err(`distributedtransaction.kubetx.io/${first.metadata.name} deleted`);
          return stop(EXIT.error);
        }
        if (type !== 'ADDED' && type !== 'MODIFIED') return;
        resourceVersion = obj.metadata.resourceVersion;
        render(obj);
        if (FINAL_PHASES.has(obj.status?.phase ?? '')) stop(EXIT.ok);
      },
      (err: unknown) => {
        if (finished) return;
        // The server ends watches now and then: start again from where we were (a 410 Gone: from a fresh read).
        if ((err as { code?: number } | null)?.code === 410) resourceVersion = undefined;
        setTimeout(() => void start().catch(() => stop(EXIT.error)), 200);
      },
    );
  };
  await start();
  void ctx.interrupted.then(() => stop(EXIT.interrupted));
  const code = await done;
  finished = true;
  request?.abort();
  return code;
}
