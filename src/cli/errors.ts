/** Failures as kubectl prints them, and the exit codes (docs/cli.md). */
import { UsageError } from './context.js';

export const EXIT = { ok: 0, error: 1, usage: 2, refused: 3, timeout: 4, interrupted: 130 } as const;

/**
 * An error from the API server as kubectl shows it, from the Status body:
 *   Error from server (NotFound): distributedtransactions.kubetx.io "x" not found
 * Anything else (no server reached, a bad kubeconfig): "error: <message>".
 */
export function formatError(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  if (typeof e?.code === 'number' && e.body !== undefined) {
    const status = parseBody(e.body);
    const reason = typeof status?.reason === 'string' && status.reason !== '' ? status.reason : `HTTP ${e.code}`;
    const message = typeof status?.message === 'string' ? status.message : typeof e.body === 'string' ? e.body : JSON.stringify(e.body);
    return `Error from server (${reason}): ${message}`;
  }
  if (err instanceof UsageError) return `error: ${err.message}`;
  const message = err instanceof Error ? err.message : typeof e?.message === 'string' ? e.message : String(err);
  return `error: ${message}`;
}

function parseBody(body: unknown): { reason?: unknown; message?: unknown } | undefined {
  if (body && typeof body === 'object') return body as { reason?: unknown; message?: unknown };
  if (typeof body !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? (parsed as { reason?: unknown; message?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}
