#!/usr/bin/env node
/**
 * kubectl_complete-dtx: kubectl's completion hook for the plugin (kubectl 1.26+
 * runs it, when on PATH, to complete `kubectl dtx ...`). It is given the words
 * typed after `dtx` (the last one being completed), prints the candidates one a
 * line and then ":4" (cobra's ShellCompDirectiveNoFileComp).
 */
import { parseArgs } from 'node:util';
import { listTx, makeCtx, type Flags } from './context.js';
import { completeWords } from './verbs/completion.js';
import { FLAGS } from './verbs.js';

export async function complete(words: string[]): Promise<string[]> {
  const args = words[0] === '__complete' ? words.slice(1) : words;
  const names = async () => {
    const { values } = parseArgs({ args: args.slice(0, -1), allowPositionals: true, strict: false, options: FLAGS });
    const ctx = makeCtx(values as Flags, [], { out: () => {}, err: () => {}, tty: false, now: () => new Date(), interrupted: new Promise(() => {}) });
    return (await listTx(ctx, false)).map((tx) => tx.metadata.name);
  };
  return [...(await completeWords(args.length ? args : [''], names)), ':4'];
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('kubectl_complete-dtx')) {
  complete(process.argv.slice(2)).then(
    (lines) => process.stdout.write(`${lines.join('\n')}\n`),
    () => process.stdout.write(':4\n'),
  );
}
