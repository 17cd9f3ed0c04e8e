/** The operator's logger: JSON lines (pino), one child per transaction carrying namespace, transaction and uid. */
import { pino, type Logger } from 'pino';

export function makeLogger(level: string): Logger {
  return pino({
    level,
    base: { component: 'kubetx-operator' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Payloads and participant data never reach the logs; these keys are the
    // ones that could carry them if someone logged a whole object by mistake.
    redact: { paths: ['payload', '*.payload', 'result', '*.result', 'data', '*.data'], censor: '[redacted]' },
  });
}
