/**
 * kubetx-conformance: checks a participant, in any language, against the
 * participant contract (proto/kubetx/v1/participant.proto) over gRPC, using
 * the ConformanceHook it serves in test deployments to read its own data.
 * See docs/participants.md, "Checking a participant: the conformance kit".
 *
 * Exit code: 0 every rule passed, 1 a rule failed, 2 bad flags or target unusable.
 */
import { pathToFileURL } from 'node:url';
import { HelpRequested, parseFlags, USAGE, UsageError } from './flags.js';
import { jsonReport, summaryLine, verdictLine } from './report.js';
import { runConformance, Unreachable } from './runner.js';

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const processIo: CliIo = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

/** Runs the kit for `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  let options;
  try {
    options = parseFlags(argv);
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.out(`${USAGE}\n`);
      return 0;
    }
    if (err instanceof UsageError) {
      io.err(`kubetx-conformance: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const report = await runConformance(options, options.json ? {} : { onVerdict: (v) => io.out(`${verdictLine(v)}\n`) });
    io.out(options.json ? jsonReport(report) : `${summaryLine(report)}\n`);
    return report.ok ? 0 : 1;
  } catch (err) {
    if (err instanceof Unreachable) {
      io.err(`kubetx-conformance: ${err.message}\n`);
      return 2;
    }
    io.err(`kubetx-conformance: ${(err as Error).stack ?? String(err)}\n`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
