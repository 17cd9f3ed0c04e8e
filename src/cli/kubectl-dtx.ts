#!/usr/bin/env node
/**
 * kubectl-dtx: the human's tools for DistributedTransactions, as a kubectl
 * plugin (put `kubectl-dtx` on PATH, then `kubectl dtx ...`). It uses only the
 * Kubernetes API, the same way a user with kubectl would: retry and abort are
 * annotations the operator acknowledges in status. Every verb and flag: docs/cli.md.
 *
 * This file parses the flags and dispatches to the verb (verbs.ts); each verb
 * lives in verbs/, the formatting in output.ts, the errors in errors.ts.
 */
import { parseArgs } from 'node:util';
import { makeCtx, UsageError, type Flags, type Io } from './context.js';
import { EXIT, formatError } from './errors.js';
import { FLAGS, verbs } from './verbs.js';

export function usage(): string {
  const lines = Object.values(verbs).map((v) => `  kubectl dtx ${v.usage}`);
  return `usage:\n${lines.join('\n')}\noptions: --kubeconfig PATH, --context NAME, -n NAMESPACE (see docs/cli.md)`;
}

/** Runs one command line; resolves to the exit code (0 ok, 1 error, 2 usage, 3 refused, 4 timed out, 130 interrupted). */
export async function run(argv: string[], out: (s: string) => void, io: Partial<Omit<Io, 'out'>> = {}): Promise<number> {
  const full: Io = { out, err: io.err ?? out, tty: io.tty ?? false, now: io.now ?? (() => new Date()), interrupted: io.interrupted ?? new Promise<void>(() => {}) };
  let flags: Flags;
  let positionals: string[];
  try {
    ({ values: flags, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: FLAGS }));
  } catch (err) {
    full.err(`error: ${(err as Error).message}\n${usage()}`);
    return EXIT.usage;
  }
  const [command, ...args] = positionals;
  if (flags.help || !command) {
    (flags.help ? out : full.err)(usage());
    return flags.help ? EXIT.ok : EXIT.usage;
  }
  const verb = Object.hasOwn(verbs, command) ? verbs[command] : undefined;
  if (!verb) {
    full.err(`error: unknown command "${command}"\n${usage()}`);
    return EXIT.usage;
  }
  try {
    return await verb.run(makeCtx(flags, args, full));
  } catch (err) {
    full.err(formatError(err));
    if (err instanceof UsageError) {
      full.err(`usage: kubectl dtx ${verb.usage}`);
      return EXIT.usage;
    }
    return EXIT.error;
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('kubectl-dtx');
if (isMain) {
  const interrupted = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  run(process.argv.slice(2), (s) => process.stdout.write(`${s}\n`), {
    err: (s) => process.stderr.write(`${s}\n`),
    tty: process.stdout.isTTY === true,
    interrupted,
  }).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`${formatError(err)}\n`);
      process.exit(EXIT.error);
    },
  );
}
