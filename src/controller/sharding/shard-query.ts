/**
 * client-node 1.4 has no `shardSelector` parameter (KEP-5866 is newer than
 * its generated API): this request option adds it to a list request's URL.
 * Watches take it in their path instead (informer.ts builds that URL).
 */
import * as k8s from '@kubernetes/client-node';

export function withShardSelector(selector: string): k8s.ConfigurationOptions {
  const middleware: k8s.ObservableMiddleware = {
    pre: (ctx: k8s.RequestContext) => {
      const url = new URL(ctx.getUrl());
      url.searchParams.set('shardSelector', selector);
      ctx.setUrl(url.toString());
      return new k8s.Observable(Promise.resolve(ctx));
    },
    post: (res: k8s.ResponseContext) => new k8s.Observable(Promise.resolve(res)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}
