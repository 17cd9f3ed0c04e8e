#!/usr/bin/env node
/**
 * `kubectl dtx dashboard` (and the chart's in-cluster dashboard, which runs
 * this file with --read-only --address 0.0.0.0): flags, kubeconfig, then
 * server.ts until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { defaultFieldManager } from '../controller/field-manager.js';
import { DASHBOARD_FIELD_MANAGER } from './actions.js';
import { startDashboard } from './server.js';

export const dashboardUsage = `usage: kubectl dtx dashboard [--port 2746] [--address 127.0.0.1] [--read-only] [-n NAMESPACE]
options: --kubeconfig PATH, --context NAME
Serves a web UI that uses your kubeconfig's credentials; open the URL it prints (it carries a per-process token).`;

/** Resolves once the server is closed by a signal. */
export async function runDashboard(argv: string[], out: (s: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      port: { type: 'string', default: '2746' },
      address: { type: 'string', default: '127.0.0.1' },
      'read-only': { type: 'boolean', default: false },
      namespace: { type: 'string', short: 'n' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(dashboardUsage);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    out(`--port must be a port number, not "${values.port}"\n${dashboardUsage}`);
    return 2;
  }
  const kc = new k8s.KubeConfig();
  // loadFromDefault: $KUBECONFIG, ~/.kube/config, or the in-cluster ServiceAccount.
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  if (values.context) kc.setCurrentContext(values.context);
  defaultFieldManager(kc, DASHBOARD_FIELD_MANAGER);
  const dashboard = await startDashboard({
    kc,
    port,
    address: values.address,
    readOnly: values['read-only'],
    ...(values.namespace ? { namespace: values.namespace } : {}),
  });
  out(`kubetx dashboard${values['read-only'] ? ' (read-only)' : ''} for context ${kc.getCurrentContext() || '(in-cluster)'}: ${dashboard.url}`);
  await new Promise<void>((resolve) => {
    const stop = () => void dashboard.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  runDashboard(process.argv.slice(2), (s) => process.stdout.write(`${s}\n`)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`kubetx dashboard: ${(err as Error).message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
