/**
 * kubectl dtx completion bash|zsh|fish: a script completing verbs, flags and
 * transaction names (from `kubectl dtx list -o name`). Names are those of
 * the namespace given with -n on the line, else the context's.
 */
import { UsageError, type Verb } from '../context.js';

/** Filled in by verbs.ts (the registry imports this file). */
export const completionWords = { verbs: [] as string[], flags: [] as string[], valueFlags: [] as string[] };

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

const NAME_VERBS = ['get', 'show', 'retry', 'abort'];

function bash(): string {
  const { verbs, flags } = completionWords;
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
  local verb="" w
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in -*) ;; *) if [ -z "$verb" ]; then verb="$w"; fi ;; esac
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "${flags.join(' ')}" -- "$cur"))
  elif [ -z "$verb" ]; then
    COMPREPLY=($(compgen -W "${verbs.join(' ')}" -- "$cur"))
  elif [ "$verb" = completion ]; then
    COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur"))
  else
    case "$verb" in
      ${NAME_VERBS.join('|')}) COMPREPLY=($(compgen -W "$(_kubectl_dtx_names)" -- "$cur")) ;;
    esac
  fi
}
complete -F _kubectl_dtx kubectl-dtx kubectl_complete-dtx`;
}

function zsh(): string {
  const { verbs, flags } = completionWords;
  return `#compdef kubectl-dtx
# kubectl dtx completion for zsh: source <(kubectl dtx completion zsh)
_kubectl_dtx() {
  local -a verbs flags names
  verbs=(${verbs.join(' ')})
  flags=(${flags.join(' ')})
  local ns=""
  local i
  for ((i = 2; i < CURRENT; i++)); do
    if [[ "\${words[i]}" == -n || "\${words[i]}" == --namespace ]]; then ns="--namespace=\${words[i+1]}"; fi
  done
  if [[ "\${words[CURRENT]}" == -* ]]; then
    compadd -- $flags
  elif (( CURRENT == 2 )); then
    compadd -- $verbs
  elif [[ "\${words[2]}" == completion ]]; then
    compadd -- bash zsh fish
  elif [[ " ${NAME_VERBS.join(' ')} " == *" \${words[2]} "* ]]; then
    names=(\${(f)"$(kubectl-dtx list -o name $ns 2>/dev/null | sed 's|^distributedtransaction.kubetx.io/||')"})
    compadd -- $names
  fi
}
compdef _kubectl_dtx kubectl-dtx`;
}

function fish(): string {
  const { verbs, flags } = completionWords;
  const lines = [
    '# kubectl dtx completion for fish: kubectl dtx completion fish | source',
    'function __kubectl_dtx_names',
    "    kubectl-dtx list -o name 2>/dev/null | string replace 'distributedtransaction.kubetx.io/' ''",
    'end',
    `complete -c kubectl-dtx -f -n "not __fish_seen_subcommand_from ${verbs.join(' ')}" -a "${verbs.join(' ')}"`,
    `complete -c kubectl-dtx -f -n "__fish_seen_subcommand_from ${NAME_VERBS.join(' ')}" -a "(__kubectl_dtx_names)"`,
    'complete -c kubectl-dtx -f -n "__fish_seen_subcommand_from completion" -a "bash zsh fish"',
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
  if (verb === 'completion') return Promise.resolve(pick(['bash', 'zsh', 'fish']));
  if (NAME_VERBS.includes(verb)) return names().then(pick, () => []);
  return Promise.resolve([]);
}
