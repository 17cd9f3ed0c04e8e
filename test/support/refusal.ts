/** What the API server said when it refused a request the test expects it to refuse. */
import { expect } from 'vitest';

/**
 * Awaits a request that must be refused; returns the HTTP status and the API
 * server's message (`fallback` when its body has none).
 */
export async function refusal(request: Promise<unknown>, fallback?: string): Promise<{ code: number | undefined; message: string }> {
  let err: { code?: number; body?: unknown } | undefined;
  try {
    await request;
  } catch (e) {
    err = e as typeof err;
  }
  expect(err, 'the API server accepted it').toBeDefined();
  const body = typeof err!.body === 'string' ? (JSON.parse(err!.body) as { message?: string }) : (err!.body as { message?: string });
  return { code: err!.code, message: body?.message ?? fallback ?? String(err) };
}
