/** kubectl dtx show NAME: phase, decision, branches, each branch's last calls and decoded result, recent Events. */
import * as k8s from '@kubernetes/client-node';
import { getTx, type Ctx, type Verb } from '../context.js';
import { formatShow } from '../output.js';
import { needName } from './args.js';

export const show: Verb = {
  usage: 'show NAME [-n NAMESPACE]',
  async run(ctx) {
    const name = needName(ctx, 'show');
    const tx = await getTx(ctx, name);
    ctx.out(formatShow(tx, await eventsOf(ctx, name)));
    return 0;
  },
};

/** The Events about a transaction (events.k8s.io, where the operator records them). */
export async function eventsOf(ctx: Ctx, name: string): Promise<k8s.EventsV1Event[]> {
  const events = await ctx.kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ctx.namespace, fieldSelector: `regarding.name=${name}` });
  return events.items;
}
