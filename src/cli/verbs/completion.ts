/**
 * kubectl dtx completion bash|zsh|fish: a script completing verbs, flags,
 * subcommands (the shells after `completion`; status, failover, recover after
 * `broker`) and transaction names (from `kubectl dtx list -o name`). Names are
 * those of the namespace given with -n on the line, else the context's.
 * Flag values (-n NS, --reason TEXT, ...) are skipped when counting words.
 */
import { UsageError, type Verb } from '../context.js';

/** Filled in by verbs.ts (the registry imports this file). */
export const completionWords = { verbs: [] as string[], flags: [] as string[], valueFlags: [] as string[], subcommands: {} as Record<string, string[]> };

export const completion: Verb = {
  usage: 'completion bash|zsh|fish',
  async run(ctx) {
    const shell = ctx.args[0];
    const script = shell === 'bash' ? bash() : shell === 'zsh' ? zsh() : shell === 'fish' ? fish() : undefined;
    if (!script) throw new UsageError(`completion: shell must be bash, zsh or fish${shell ? ` (got "${shell}")` : ''}`);
    ctx.out(script);
    return 0;
  },
};

/** Verbs whose one argument is a transaction name. */
const NAME_VERBS = ['get', 'show', 'retry', 'abort'];

/** Shell `case` arms completing the word after the verb: its subcommands, or transaction names. */
const caseArms = (indent: string, names: string, add: (words: string) => string) =>
  [
    ...Object.entries(completionWords.subcommands).map(([verb, subs]) => `${indent}${verb}) ${add(subs.join(' '))} ;;`),
    `${indent}${NAME_VERBS.join('|')}) ${names} ;;`,
  ].join('\n');

function bash(): string {
  const { verbs, flags, valueFlags } = completionWords;
  return `# kubectl dtx completion for bash: source <(kubectl dtx completion bash)
_kubectl_dtx_names() {
  local ns=""
  local i
  for ((i = 1; i < \${#COMP_WORDS[@]}; i++)); do
    case "\${COMP_WORDS[i]}" in
      -n|--namespace) ns="--namespace=\${COMP_WORDS[i+1]}" ;;
    esac
  done
  kubectl-dtx list -o name $ns 2>/dev/null | sed 's|^distributedtransaction.kubetx.io/||'
}
_kubectl_dtx() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local -a pos=()
  local i w skip=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$w" in
      ${valueFlags.join('|')}) skip=1 ;;
      -*) ;;
      *) pos+=("$w") ;;
    esac
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "${flags.join(' ')}" -- "$cur"))
  elif [ \${#pos[@]} -eq 0 ]; then
    COMPREPLY=($(compgen -W "${verbs.join(' ')}" -- "$cur"))
  elif [ \${#pos[@]} -eq 1 ]; then
    case "\${pos[0]}" in
${caseArms('      ', 'COMPREPLY=($(compgen -W "$(_kubectl_dtx_names)" -- "$cur"))', (w) => `COMPREPLY=($(compgen -W "${w}" -- "$cur"))`)}
    esac
  fi
}
complete -F _kubectl_dtx kubectl-dtx kubectl_complete-dtx`;
}

function zsh(): string {
  const { verbs, flags, valueFlags } = completionWords;
  return `#compdef kubectl-dtx
# kubectl dtx completion for zsh: source <(kubectl dtx completion zsh)
_kubectl_dtx() {
  local -a verbs flags names pos
  verbs=(${verbs.join(' ')})
  flags=(${flags.join(' ')})
  local ns=""
  local i skip=0
  for ((i = 2; i < CURRENT; i++)); do
    if (( skip )); then skip=0; continue; fi
    case "\${words[i]}" in
      -n|--namespace) ns="--namespace=\${words[i+1]}"; skip=1 ;;
      ${valueFlags.join('|')}) skip=1 ;;
      -*) ;;
      *) pos+=("\${words[i]}") ;;
    esac
  done
  if [[ "\${words[CURRENT]}" == -* ]]; then
    compadd -- $flags
  elif (( \${#pos} == 0 )); then
    compadd -- $verbs
  elif (( \${#pos} == 1 )); then
    case "\${pos[1]}" in
${caseArms('      ', `names=(\${(f)"$(kubectl-dtx list -o name $ns 2>/dev/null | sed 's|^distributedtransaction.kubetx.io/||')"}); compadd -- $names`, (w) => `compadd -- ${w}`)}
    esac
  fi
}
compdef _kubectl_dtx kubectl-dtx`;
}

function fish(): string {
  const { verbs, flags, subcommands } = completionWords;
  const lines = [
    '# kubectl dtx completion for fish: kubectl dtx completion fish | source',
    'function __kubectl_dtx_names',
    "    kubectl-dtx list -o name 2>/dev/null | string replace 'distributedtransaction.kubetx.io/' ''",
    'end',
    `complete -c kubectl-dtx -f -n "not __fish_seen_subcommand_from ${verbs.join(' ')}" -a "${verbs.join(' ')}"`,
    `complete -c kubectl-dtx -f -n "__fish_seen_subcommand_from ${NAME_VERBS.join(' ')}" -a "(__kubectl_dtx_names)"`,
    ...Object.entries(subcommands).map(([verb, subs]) => `complete -c kubectl-dtx -f -n "__fish_seen_subcommand_from ${verb}; and not __fish_seen_subcommand_from ${subs.join(' ')}" -a "${subs.join(' ')}"`),
    ...flags.map((f) => {
      const long = f.replace(/^--/, '');
      return f.startsWith('--') ? `complete -c kubectl-dtx -l ${long}` : `complete -c kubectl-dtx -o ${f.replace(/^-/, '')}`;
    }),
  ];
  return lines.join('\n');
}

/**
 * kubectl's plugin completion protocol (kubectl_complete-dtx): called with
 * the words typed so far, the last one being completed; prints candidates,
 * one a line, then ":4" (cobra's "no file completion").
 */
export function completeWords(words: string[], names: () => Promise<string[]>): Promise<string[]> {
  const { verbs, flags } = completionWords;
  const cur = words.at(-1) ?? '';
  const before: string[] = [];
  const typed = words.slice(0, -1);
  for (let i = 0; i < typed.length; i++) {
    const w = typed[i]!;
    if (completionWords.valueFlags.includes(w)) i++; // its value follows
    else if (!w.startsWith('-')) before.push(w);
  }
  const pick = (xs: string[]) => xs.filter((x) => x.startsWith(cur));
  if (cur.startsWith('-')) return Promise.resolve(pick(flags));
  const verb = before[0];
  if (!verb) return Promise.resolve(pick(verbs));
  if (before.length > 1) return Promise.resolve([]); // every verb takes at most one word after it
  const subs = Object.hasOwn(completionWords.subcommands, verb) ? completionWords.subcommands[verb]! : undefined;
  if (subs) return Promise.resolve(pick(subs));
  if (NAME_VERBS.includes(verb)) return names().then(pick, () => []);
  return Promise.resolve([]);
}
