#!/usr/bin/env node
/**
 * kubectl-dtx: the human's tools for DistributedTransactions, as a kubectl
 * plugin (put `kubectl-dtx` on PATH, then `kubectl dtx ...`). It uses only the
 * Kubernetes API, the same way a user with kubectl would: retry and abort are
 * annotations the operator acknowledges in status.
 *
 *   kubectl dtx show NAME [-n NS]            phase, decision, per-branch timeline, recent events
 *   kubectl dtx retry NAME [-n NS]           retry failed calls now and reset the attempt budget
 *   kubectl dtx abort NAME --reason TEXT     cancel a transaction that has not decided yet
 */
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type DistributedTransaction } from '../api/types.js';
import { ABORT_ANNOTATION, RETRY_ANNOTATION } from '../engine/intervention.js';

const usage = `usage:
  kubectl dtx show NAME [-n NAMESPACE]
  kubectl dtx retry NAME [-n NAMESPACE]
  kubectl dtx abort NAME --reason TEXT [-n NAMESPACE]
options: --kubeconfig PATH, --context NAME`;

export async function run(argv: string[], out: (s: string) => void, now = () => new Date()): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      reason: { type: 'string' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, name] = positionals;
  if (values.help || !command || !name) {
    out(usage);
    return values.help ? 0 : 2;
  }
  const kc = new k8s.KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  if (values.context) kc.setCurrentContext(values.context);
  const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const ref = { group: GROUP, version: VERSION, plural: PLURAL, namespace, name };
  const annotate = (annotations: Record<string, string>) =>
    api.patchNamespacedCustomObject({ ...ref, body: { metadata: { annotations } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));

  switch (command) {
    case 'show': {
      const tx = (await api.getNamespacedCustomObject(ref)) as DistributedTransaction;
      const events = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name}` });
      out(formatShow(tx, events.items));
      return 0;
    }
    case 'retry': {
      const value = now().toISOString();
      await annotate({ [RETRY_ANNOTATION]: value });
      out(`retry requested for ${namespace}/${name} (${RETRY_ANNOTATION}=${value}); the operator acknowledges it in status.retryAcknowledged`);
      return 0;
    }
    case 'abort': {
      if (!values.reason) {
        out('abort needs --reason TEXT (it is recorded in the transaction status and Events)');
        return 2;
      }
      await annotate({ [ABORT_ANNOTATION]: values.reason });
      out(`abort requested for ${namespace}/${name}; refused by the operator if the transaction has already decided`);
      return 0;
    }
    default:
      out(`unknown command "${command}"\n${usage}`);
      return 2;
  }
}

export function formatShow(tx: DistributedTransaction, events: k8s.EventsV1Event[]): string {
  const s = tx.status ?? {};
  const lines = [
    `Name:       ${tx.metadata.namespace}/${tx.metadata.name}`,
    `Mode:       ${tx.spec.mode}`,
    // No phase yet: the operator has not reconciled it (status is written by the operator only).
    `Phase:      ${s.phase ?? '(not reconciled yet)'}${s.decision ? `   (decision: ${s.decision} at ${s.decisionTime ?? '?'})` : ''}`,
    `Started:    ${s.startTime ?? tx.metadata.creationTimestamp ?? '?'}`,
    ...(s.completionTime ? [`Completed:  ${s.completionTime}`] : []),
    ...(s.progress ? [`Progress:   ${s.progress} branches done with this phase`] : []),
    ...(s.message ? [`Message:    ${s.message}`] : []),
    ...stalledLine(s.conditions),
    '',
    'Branches:',
  ];
  const rows = [['BRANCH', 'STATE', 'ATTEMPTS', 'LAST ATTEMPT', 'NEXT ATTEMPT', 'LAST ERROR']];
  for (const b of s.branches ?? []) {
    const attempts = b.totalAttempts !== undefined && b.totalAttempts !== b.attempts ? `${b.attempts} (${b.totalAttempts} in all)` : String(b.attempts);
    rows.push([b.name, b.state, attempts, b.lastAttemptTime ?? '-', b.nextAttemptTime ?? '-', b.lastError ?? '-']);
  }
  lines.push(...table(rows).map((r) => `  ${r}`));
  const sorted = [...events].sort((a, b) => String(a.eventTime ?? '').localeCompare(String(b.eventTime ?? '')));
  if (sorted.length) {
    lines.push('', 'Events:');
    for (const e of sorted) {
      const count = e.series?.count ? ` (x${e.series.count})` : '';
      lines.push(`  ${String(e.eventTime ?? '')}  ${e.type ?? ''}  ${e.reason ?? ''}${count}  ${e.note ?? ''}`);
    }
  }
  return lines.join('\n');
}

function stalledLine(conditions: NonNullable<DistributedTransaction['status']>['conditions']): string[] {
  const c = conditions?.find((x) => x.type === 'Stalled');
  return c?.status === 'True' ? [`Stalled:    since ${c.lastTransitionTime} (${c.reason}): ${c.message}`] : [];
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('kubectl-dtx');
if (isMain) {
  run(process.argv.slice(2), (s) => process.stdout.write(`${s}\n`)).then(
    (code) => process.exit(code),
    (err) => {
      const e = err as { code?: number; body?: string; message?: string };
      process.stderr.write(`kubectl-dtx: ${e.code ? `${e.code} ` : ''}${e.body ?? e.message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
