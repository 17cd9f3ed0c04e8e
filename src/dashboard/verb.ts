/**
 * `kubectl dtx dashboard`: the verb for the kubectl plugin's table
 * (src/cli/verbs.ts). Serves server.ts with the plugin's kubeconfig until
 * Ctrl-C. Without -n it watches the whole cluster; with -n, one namespace.
 */
import type { Verb } from '../cli/context.js';
import { startDashboard } from './server.js';

interface DashboardFlags {
  port?: string;
  address?: string;
  'read-only'?: boolean;
}

/** Flags only this verb reads (parseArgs options, merged into the plugin's FLAGS). */
export const DASHBOARD_FLAGS = {
  port: { type: 'string' },
  address: { type: 'string' },
  'read-only': { type: 'boolean' },
} as const;

export const dashboard: Verb = {
  usage: 'dashboard [--port 2746] [--address 127.0.0.1] [--read-only] [-n NAMESPACE]',
  async run(ctx) {
    const f = ctx.flags as typeof ctx.flags & DashboardFlags;
    const port = Number(f.port ?? 2746);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      ctx.err(`--port must be a port number, not "${f.port}"`);
      return 2;
    }
    const d = await startDashboard({
      kc: ctx.kc,
      port,
      address: f.address ?? '127.0.0.1',
      readOnly: f['read-only'] ?? false,
      ...(ctx.flags.namespace ? { namespace: ctx.flags.namespace } : {}),
    });
    ctx.out(`kubetx dashboard${f['read-only'] ? ' (read-only)' : ''} for context ${ctx.kc.getCurrentContext()}: open ${d.url}\n(Ctrl-C stops it)`);
    await ctx.interrupted;
    await d.close();
    return 0;
  },
};
