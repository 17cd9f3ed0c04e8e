/** The kit's output: one `PASS|FAIL <rule-id> <reason>` line per rule and a summary, or a JSON report. */
import type { KitReport, RuleVerdict } from './runner.js';

export function verdictLine(v: RuleVerdict): string {
  return `${v.pass ? 'PASS' : 'FAIL'} ${v.id} ${v.reason}`;
}

export function summaryLine(r: KitReport): string {
  const secs = (r.durationMs / 1000).toFixed(1);
  return r.ok
    ? `ok: all ${r.rules.length} rules passed (${r.services.join(',')} on ${r.target}, ${secs}s)`
    : `FAILED: ${r.failed} of ${r.rules.length} rules failed (${r.services.join(',')} on ${r.target}, ${secs}s): ${r.rules
        .filter((v) => !v.pass)
        .map((v) => v.id)
        .join(', ')}`;
}

export function textReport(r: KitReport): string {
  return [...r.rules.map(verdictLine), summaryLine(r)].join('\n') + '\n';
}

/** The machine-readable form (`--json`): the KitReport itself, schema-versioned. */
export function jsonReport(r: KitReport): string {
  return JSON.stringify({ kind: 'kubetx-conformance-report', version: 1, ...r }, null, 2) + '\n';
}
