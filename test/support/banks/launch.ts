/**
 * The bank examples (examples/bank-<language>) as processes: one command line
 * per language (the same flags everywhere: --bank, --listen, --database-url,
 * --conformance-hook, --fault-rate, ...), started and waited for until it
 * answers; and the ConformanceHook a test opens and reads accounts through.
 *
 * How each language is run (the builds are cached by a hash of the sources):
 *   ts      node --import tsx examples/bank-ts/server.ts
 *   go      the binary of examples/bank-go (go-build.ts: go build)
 *   java    java -jar <bank-java.jar> (java-build.ts: hack/test-java.sh --build-only, Maven)
 *   python  <venv>/bin/python -m bank_python, in examples/bank-python (python-env.ts: the SDK's venv)
 * All of them take --listen 127.0.0.1:0 and log the bound address as the JSON
 * line "bank listening" (field `address`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ConformanceHookClient } from '../../../src/gen/kubetx/conformance/v1/hook.js';
import { freePorts } from '../control-plane.js';
import { eventually } from '../env.js';
import { goBuild } from '../go-build.js';
import { bankJavaJar } from '../java-build.js';
import { pythonEnv } from '../python-env.js';
import { repoRoot } from '../testenv-paths.js';
import { type LoggedProcess, spawnLogged } from './process.js';

export type Language = 'ts' | 'go' | 'java' | 'python';

/** How to run one language's bank: argv[0] and what comes before the bank's flags. */
export interface BankLauncher {
  language: Language;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Whether the bank takes --listen host:0 and logs the bound address as "bank listening". @default true */
  portZero?: boolean;
  /** How it was obtained (built, cached), for the test's log. */
  note: string;
}

/** A file each example must have, checked first for a clear message. */
const ENTRY_POINTS: Record<Language, string> = {
  ts: 'examples/bank-ts/server.ts',
  go: 'examples/bank-go/go.mod',
  java: 'examples/bank-java/pom.xml',
  python: 'examples/bank-python/bank_python/__main__.py',
};

/** Builds (or finds cached) and describes how to launch the bank of `language`. */
export async function bankLauncher(language: Language): Promise<BankLauncher> {
  const entry = ENTRY_POINTS[language];
  if (!existsSync(join(repoRoot, entry))) throw new Error(`${entry} is missing: the ${language} bank example (examples/bank-${language}) has to be written first`);
  const started = Date.now();
  const took = (what: string) => `${what} in ${Date.now() - started} ms`;
  switch (language) {
    case 'ts':
      return { language, command: process.execPath, args: ['--import', 'tsx', join(repoRoot, 'examples/bank-ts/server.ts')], cwd: repoRoot, note: 'tsx' };
    case 'go': {
      const built = await goBuild({ module: 'examples/bank-go', name: 'bank-go' });
      return { language, command: built.path, args: [], note: took(`${built.built ? 'built' : 'cached'} ${built.path}`) };
    }
    case 'java': {
      const jar = await bankJavaJar();
      return { language, command: 'java', args: ['-jar', jar.path], note: took(`${jar.built ? 'built' : 'cached'} ${jar.path}`) };
    }
    case 'python': {
      const env = await pythonEnv();
      return {
        language,
        command: env.python,
        args: ['-m', 'bank_python'],
        cwd: join(repoRoot, 'examples/bank-python'),
        env: { PYTHONUNBUFFERED: '1', ...env.env },
        note: took(`venv ${env.venv}`),
      };
    }
  }
}

export interface BankProcess extends LoggedProcess {
  name: string;
  language: Language;
  address: string;
}

export interface StartBankOptions {
  name: string;
  databaseUrl: string;
  /** @default 0 */
  faultRate?: number;
  faultSeed?: number;
  /** @default true */
  conformanceHook?: boolean;
  /** @default "2s" */
  shutdownGrace?: string;
  /** @default 30_000 */
  startTimeoutMs?: number;
}

/** Starts a bank; resolves once it listens and answers (a bank that exits or never listens is an error naming its output). */
export async function startBank(launcher: BankLauncher, o: StartBankOptions): Promise<BankProcess> {
  const portZero = launcher.portZero ?? true;
  const listen = portZero ? '127.0.0.1:0' : `127.0.0.1:${(await freePorts(1))[0]}`;
  const args = [
    ...launcher.args,
    '--bank', o.name,
    '--listen', listen,
    '--database-url', o.databaseUrl,
    ...(o.conformanceHook === false ? [] : ['--conformance-hook']),
    '--fault-rate', String(o.faultRate ?? 0),
    ...(o.faultSeed === undefined ? [] : ['--fault-seed', String(o.faultSeed)]),
    '--shutdown-grace', o.shutdownGrace ?? '2s',
  ];
  const tag = `${launcher.language}/${o.name}`;
  const proc = spawnLogged(launcher.command, args, { cwd: launcher.cwd, env: launcher.env, tag });
  const { child, lines } = proc;
  try {
    // It logs its address once it listens (after creating its schema and the barrier's table).
    const address = await eventually(
      `bank ${tag} listening`,
      async () => {
        if (proc.exited()) throw new Error(`bank ${tag} exited (${child.exitCode ?? child.signalCode}): ${proc.stderr().slice(-2000)} ${JSON.stringify(lines.slice(-3))}`);
        const line = lines.find((l) => l.msg === 'bank listening' || l.message === 'bank listening');
        if (!line) return undefined;
        return portZero ? (line.address as string | undefined) : listen;
      },
      o.startTimeoutMs ?? 30_000,
    );
    // Answering: the hook when served, else any call (UNIMPLEMENTED counts as an answer).
    const hook = hookClient(address);
    try {
      await eventually(
        `bank ${tag} answering`,
        () =>
          hook.readAccount({ account: 'none' }).catch((err: grpc.ServiceError) => {
            if (o.conformanceHook === false && err.code === grpc.status.UNIMPLEMENTED) return {};
            throw err;
          }),
        10_000,
      );
    } finally {
      hook.close();
    }
    return { ...proc, name: o.name, language: launcher.language, address };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** The lines in which banks logged a fault injected (field `when`: "before" or "after" the commit). */
export function faultLines(banks: BankProcess[]): Array<Record<string, unknown>> {
  return banks.flatMap((b) => b.lines.filter((l) => l.msg === 'fault injected'));
}

export function hookClient(address: string) {
  const client = new ConformanceHookClient(address, grpc.credentials.createInsecure());
  const call =
    <Req, Res>(method: (req: Req, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown) =>
    (req: Req) =>
      new Promise<Res>((resolve, reject) =>
        method.call(client, req, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e, r) => (e ? reject(e) : resolve(r))),
      );
  return {
    openAccount: call(client.openAccount),
    readAccount: call(client.readAccount),
    close: () => client.close(),
  };
}

/** Opens (or resets) accounts through a bank's ConformanceHook. */
export async function openAccounts(address: string, accounts: Record<string, number>): Promise<void> {
  const hook = hookClient(address);
  try {
    for (const [account, balance] of Object.entries(accounts)) await hook.openAccount({ account, balance });
  } finally {
    hook.close();
  }
}

/** One account as the bank's ConformanceHook reads it (found, balance, held). */
export async function readAccount(address: string, account: string) {
  const hook = hookClient(address);
  try {
    return await hook.readAccount({ account });
  } finally {
    hook.close();
  }
}
