/**
 * Small helpers shared by the state machines: bounded text and RFC 3339 times.
 * Why bounded: participant messages end up in status and Events, and status
 * must stay well under etcd's object size limit however chatty a participant is.
 */

export const MAX_TEXT = 1024;

export function truncate(text: string, max: number = MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Any value as bounded text (participant messages are untrusted). */
export function boundedText(value: unknown, fallback: string): string {
  const text = typeof value === 'string' && value !== '' ? value : fallback;
  return truncate(text);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** ms since epoch of an RFC 3339 string, or undefined if it is missing or unparsable. */
export function parseTime(value: unknown): number | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** `value` when it is a readable timestamp (a status from an older or broken writer may hold anything), else undefined. */
export function validTime(value: unknown): string | undefined {
  return parseTime(value) === undefined ? undefined : (value as string);
}
