/** Pure formatting: tables, ages, decoded results, the show and watch views. Unit-tested in test/unit/cli-output.test.ts. */
import * as k8s from '@kubernetes/client-node';
import type { DistributedTransaction, TransactionStatus } from '../api/types.js';

/** Columns padded to the widest cell, two spaces apart, the last one not padded (kubectl's table). */
export function table(rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd());
}

/** kubectl's short age: 45s, 12m, 5h, 3d (with the next unit below 2 of the larger one: 90s, 3h5m). */
export function age(from: string | undefined, now: Date): string {
  const t = from ? Date.parse(from) : NaN;
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

export function shorten(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ');
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

/** A branch's Try/Execute data for humans: JSON pretty-printed when it parses, else printable text, else the base64 as stored. */
export function decodeResult(b64: string): { kind: 'json' | 'text' | 'base64'; text: string } {
  const buf = Buffer.from(b64, 'base64');
  const text = buf.toString('utf8');
  const printable = Buffer.from(text, 'utf8').equals(buf) && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text);
  if (printable) {
    try {
      return { kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2) };
    } catch {
      return { kind: 'text', text };
    }
  }
  return { kind: 'base64', text: b64 };
}

const branchCount = (tx: DistributedTransaction) => tx.status?.progress ?? `0/${Array.isArray(tx.spec?.branches) ? tx.spec.branches.length : 0}`;

/** The list table: NAME MODE PHASE BRANCHES AGE MESSAGE, NAMESPACE first with -A, DECISION and STALLED with -o wide. */
export function listTable(items: DistributedTransaction[], opts: { allNamespaces: boolean; wide: boolean; now: Date }): string[] {
  const head = [...(opts.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'MODE', 'PHASE', 'BRANCHES', 'AGE', ...(opts.wide ? ['DECISION', 'STALLED'] : []), 'MESSAGE'];
  const rows = items.map((tx) => {
    const s = tx.status ?? {};
    const stalled = s.conditions?.find((c) => c.type === 'Stalled')?.status === 'True' ? 'True' : 'False';
    return [
      ...(opts.allNamespaces ? [tx.metadata.namespace] : []),
      tx.metadata.name,
      tx.spec?.mode ?? '',
      s.phase ?? '<pending>',
      branchCount(tx),
      age(tx.metadata.creationTimestamp, opts.now),
      ...(opts.wide ? [s.decision ?? '<none>', stalled] : []),
      opts.wide ? (s.message ?? '') : shorten(s.message ?? '', 60),
    ];
  });
  return table([head, ...rows]);
}

/** `-o name`, as kubectl prints it. */
export const resourceName = (tx: DistributedTransaction) => `distributedtransaction.kubetx.io/${tx.metadata.name}`;

export function serialize(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : k8s.dumpYaml(value).trimEnd();
}

/** The per-branch view (get -w on a terminal, and the top of show). */
export function summary(tx: DistributedTransaction): string[] {
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
    ...stalledLine(s),
    '',
    'Branches:',
  ];
  const rows = [['BRANCH', 'STATE', 'ATTEMPTS', 'LAST ATTEMPT', 'NEXT ATTEMPT', 'LAST ERROR']];
  for (const b of s.branches ?? []) {
    const attempts = b.totalAttempts !== undefined && b.totalAttempts !== b.attempts ? `${b.attempts} (${b.totalAttempts} in all)` : String(b.attempts);
    rows.push([b.name, b.state, attempts, b.lastAttemptTime ?? '-', b.nextAttemptTime ?? '-', b.lastError ?? '-']);
  }
  lines.push(...table(rows).map((r) => `  ${r}`));
  return lines;
}

/** show: the summary, each branch's call history and decoded result, and the Events. */
export function formatShow(tx: DistributedTransaction, events: k8s.EventsV1Event[]): string {
  const lines = summary(tx);
  const branches = tx.status?.branches ?? [];
  const history = [['BRANCH', 'METHOD', 'ATTEMPT', 'TIME', 'OUTCOME', 'CODE', 'MESSAGE']];
  for (const b of branches) for (const h of b.history ?? []) history.push([b.name, h.method, String(h.attempt), h.time, h.outcome, h.code ?? '-', h.message ?? '-']);
  if (history.length > 1) lines.push('', 'Calls (last 10 per branch):', ...table(history).map((r) => `  ${r}`));
  // Under the operator's default --call-history failures a clean run records no calls: say so rather than show nothing.
  else if (branches.some((b) => b.attempts > 0)) lines.push('', 'Calls: none recorded (with the operator\'s default --call-history failures, a branch keeps its calls from its first failed answer on)');
  const delivered = branches.filter((b) => b.delivery);
  if (delivered.length) {
    // Broker branches: where each message was stored, as the broker acknowledged it.
    const rows = [['BRANCH', 'ROUTE', 'STREAM', 'SEQUENCE', 'DUPLICATE']];
    for (const b of delivered) rows.push([b.name, b.delivery!.route, b.delivery!.stream, b.delivery!.sequence, b.delivery!.duplicate ? 'yes' : 'no']);
    lines.push('', 'Broker deliveries:', ...table(rows).map((r) => `  ${r}`));
  }
  const results = branches.filter((b) => typeof b.result === 'string');
  if (results.length) {
    lines.push('', 'Results:');
    for (const b of results) {
      const d = decodeResult(b.result!);
      const body = d.text.split('\n');
      if (body.length === 1) lines.push(`  ${b.name} (${d.kind}): ${body[0]}`);
      else lines.push(`  ${b.name} (${d.kind}):`, ...body.map((l) => `    ${l}`));
    }
  }
  const sorted = [...events].sort((a, b) => String(eventTime(a)).localeCompare(String(eventTime(b))));
  if (sorted.length) {
    lines.push('', 'Events:');
    for (const e of sorted) {
      const count = e.series?.count ? ` (x${e.series.count})` : '';
      lines.push(`  ${eventTime(e)}  ${e.type ?? ''}  ${e.reason ?? ''}${count}  ${e.note ?? ''}`);
    }
  }
  return lines.join('\n');
}

export function eventTime(e: k8s.EventsV1Event): string {
  const t = e.series?.lastObservedTime ?? e.eventTime ?? e.deprecatedLastTimestamp;
  return t instanceof Date ? t.toISOString() : String(t ?? '');
}

function stalledLine(s: TransactionStatus): string[] {
  const c = s.conditions?.find((x) => x.type === 'Stalled');
  return c?.status === 'True' ? [`Stalled:    since ${c.lastTransitionTime} (${c.reason}): ${c.message}`] : [];
}

/** get -w without a terminal: one line per change, e.g. "2026-01-02T03:04:05.000Z default/pay-1 Trying 1/4 order=Prepared credit=Trying". */
export function watchLine(tx: DistributedTransaction, now: Date): string {
  const s = tx.status ?? {};
  const branches = (s.branches ?? []).map((b) => `${b.name}=${b.state}`).join(' ');
  return `${now.toISOString()} ${tx.metadata.namespace}/${tx.metadata.name} ${s.phase ?? '<pending>'} ${branchCount(tx)}${branches ? ` ${branches}` : ''}`;
}
