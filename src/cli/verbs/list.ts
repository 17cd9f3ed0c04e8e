/** kubectl dtx list [-A | -n NS] [-l SELECTOR] [--phase P[,P]] [-o wide|json|yaml|name] */
import { listTx, UsageError, type Verb } from '../context.js';
import { listTable, resourceName, serialize } from '../output.js';

export const list: Verb = {
  usage: 'list [-A | -n NAMESPACE] [-l SELECTOR] [--phase P[,P...]] [-o wide|json|yaml|name]',
  async run(ctx) {
    const output = ctx.flags.output ?? '';
    if (!['', 'wide', 'json', 'yaml', 'name'].includes(output)) throw new UsageError(`list: unknown output format "${output}" (wide, json, yaml, name)`);
    const all = ctx.flags['all-namespaces'] === true;
    const phases = ctx.flags.phase ? new Set(ctx.flags.phase.split(',').map((p) => p.trim()).filter(Boolean)) : undefined;
    const items = (await listTx(ctx, all))
      .filter((tx) => !phases || phases.has(tx.status?.phase ?? 'Pending'))
      .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
    if (output === 'json' || output === 'yaml') {
      ctx.out(serialize({ apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } }, output));
    } else if (output === 'name') {
      for (const tx of items) ctx.out(resourceName(tx));
    } else if (items.length === 0) {
      ctx.err(all ? 'No resources found' : `No resources found in ${ctx.namespace} namespace.`);
    } else {
      ctx.out(listTable(items, { allNamespaces: all, wide: output === 'wide', now: ctx.now() }).join('\n'));
    }
    return 0;
  },
};
