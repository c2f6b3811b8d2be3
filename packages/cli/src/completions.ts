// biome-ignore-all lint/suspicious/noTemplateCurlyInString: shell script text, where ${...} is the shell's
/**
 * `serene completions bash|zsh|fish`: shell completion scripts made from the program itself, so
 * that a command added to the registry completes without touching this file. Package names come
 * from the cache `serene list` writes (`$XDG_CACHE_HOME/serene-package-completions.txt`), as the
 * original's; what an argument completes to is declared in {@link ARGUMENT_COMPLETIONS}.
 */
import type { Command } from 'commander';
import { UsageError } from './client.js';
import { INFO_SUBCOMMANDS, SETTING_KEYS } from './info.js';
import { type CliIo, EXIT_OK } from './io.js';

/** The shells `serene completions` writes scripts for. */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/**
 * What the arguments of a command complete to, by its path (`server webhook`): package names (from
 * the cache), files, or fixed words. Commands not named here complete options only.
 */
export const ARGUMENT_COMPLETIONS: Record<string, 'packages' | 'files' | readonly string[]> = {
  info: 'packages',
  build: 'packages',
  remove: 'packages',
  'server webhook': 'packages',
  review: 'packages',
  approve: 'packages',
  reject: 'packages',
  'repo add': 'files',
  'repo remove': 'files',
  'repo sign': 'files',
  completions: SHELLS,
};

/** One command of the tree, as the scripts need it. */
interface Node {
  /** its words after `serene` (`repo add`) */
  path: string;
  description: string;
  options: { flags: string[]; description: string; value: boolean }[];
  children: Node[];
}

/** Every node of the tree, deepest first (so that `repo add` is matched before `repo`). */
function flatten(node: Node): Node[] {
  return [...node.children.flatMap(flatten), node].sort(
    (a, b) => b.path.split(' ').length - a.path.split(' ').length || (a.path < b.path ? -1 : 1),
  );
}

/** The completion script of `shell` for `program`. */
export function completionScript(program: Command, shell: Shell): string {
  const root = treeOf(program);
  switch (shell) {
    case 'bash':
      return bashScript(root);
    case 'zsh':
      return zshScript(root);
    case 'fish':
      return fishScript(root);
  }
}

function treeOf(program: Command): Node {
  const children = (command: Command, prefix: string): Node[] =>
    command.commands
      .filter((child) => !(child as unknown as { _hidden?: boolean })._hidden)
      .map((child) => {
        const path = prefix ? `${prefix} ${child.name()}` : child.name();
        return { ...describe(child, path), children: children(child, path) };
      });
  return { ...describe(program, ''), children: children(program, '') };
}

function describe(command: Command, path: string): Omit<Node, 'children'> {
  return {
    path,
    description: command.description(),
    options: command.options
      .filter((option) => !option.hidden)
      .map((option) => ({
        flags: [option.short, option.long].filter((flag): flag is string => flag !== undefined),
        description: option.description,
        value: option.required || option.optional,
      })),
  };
}

/** A word list for a shell, single-quoted. */
function quoted(words: readonly string[]): string {
  return `'${words.join(' ').replaceAll("'", "'\\''")}'`;
}

const CACHE = '"${XDG_CACHE_HOME:-$HOME/.cache}/serene-package-completions.txt"';

// --- bash ---

function bashScript(root: Node): string {
  const nodes = flatten(root);
  // options that take a value, per command path: their value is not a positional word
  const valued = nodes.flatMap((node) =>
    node.options.filter((option) => option.value).map((option) => ({ path: node.path, flags: option.flags })),
  );
  const lines: string[] = [
    '# bash completion for serene (made by `serene completions bash`)',
    '# install: serene completions bash > ~/.local/share/bash-completion/completions/serene',
    '_serene() {',
    '    local cur=${COMP_WORDS[COMP_CWORD]}',
    '    local -a words=()',
    '    local i w skip=0 path',
    '    for ((i = 1; i < COMP_CWORD; i++)); do',
    '        w=${COMP_WORDS[i]}',
    '        if ((skip)); then skip=0; continue; fi',
    '        path="${words[*]}"',
    '        case "$path:$w" in',
    ...valued.map(
      ({ path, flags }) =>
        `            ${flags.map((flag) => `${JSON.stringify(`${path}:${flag}`)}`).join('|')}) skip=1; continue ;;`,
    ),
    '        esac',
    '        [[ $w == -* ]] && continue',
    '        words+=("$w")',
    '    done',
    '    path="${words[*]}"',
    '    local options="" commands="" arguments=""',
    '    case "$path" in',
  ];
  for (const node of nodes) {
    const options = [...node.options.flatMap((option) => option.flags), '-h', '--help'];
    const commands = node.children.map((child) => child.path.split(' ').pop()!);
    const kind = ARGUMENT_COMPLETIONS[node.path];
    const pattern =
      node.path === ''
        ? '""'
        : commands.length > 0 || node.path === 'info'
          ? JSON.stringify(node.path)
          : `${JSON.stringify(node.path)}|${JSON.stringify(`${node.path} `)}*`;
    lines.push(`        ${pattern})`);
    lines.push(`            options=${quoted(options)}`);
    if (commands.length > 0) lines.push(`            commands=${quoted(commands)}`);
    if (node.path === 'info') {
      // info <name> [build|logs|pkgbuild|set ...]: the name first, then its subcommands
      lines.push('            arguments=packages ;;');
      lines.push('        "info "*)');
      lines.push('            case "${words[2]}" in');
      lines.push(
        `                "") options='-a --all -h --help'; commands=${quoted(INFO_SUBCOMMANDS.map((sub) => sub.name))} ;;`,
      );
      for (const sub of INFO_SUBCOMMANDS) {
        const subOptions = [...sub.options.flatMap((option) => option.flags), '-h', '--help'];
        if (sub.name === 'set') {
          lines.push(
            `                set) options=${quoted(subOptions)}; [[ -z "\${words[3]}" ]] && commands=${quoted(SETTING_KEYS)}; [[ -n "\${words[3]}" && -z "\${words[4]}" ]] && commands='true false' ;;`,
          );
        } else {
          lines.push(`                ${sub.name}) options=${quoted(subOptions)} ;;`);
        }
      }
      lines.push('            esac ;;');
      continue;
    }
    if (kind === 'packages') lines.push('            arguments=packages ;;');
    else if (kind === 'files') lines.push('            arguments=files ;;');
    else if (kind) lines.push(`            commands=${quoted(kind)} ;;`);
    else lines.push('            ;;');
  }
  lines.push(
    '    esac',
    '    if [[ $cur == -* ]]; then',
    '        COMPREPLY=($(compgen -W "$options" -- "$cur"))',
    '    elif [[ -n $commands ]]; then',
    '        COMPREPLY=($(compgen -W "$commands" -- "$cur"))',
    '    elif [[ $arguments == packages ]]; then',
    `        local cache=${CACHE}`,
    '        [[ -r $cache ]] && COMPREPLY=($(compgen -W "$(<"$cache")" -- "$cur"))',
    '    elif [[ $arguments == files ]]; then',
    '        compopt -o filenames 2>/dev/null',
    '        COMPREPLY=($(compgen -f -- "$cur"))',
    '    fi',
    '    return 0',
    '}',
    'complete -F _serene serene',
    '',
  );
  return lines.join('\n');
}

// --- zsh ---

/**
 * zsh runs the bash script through its `bashcompinit` (zsh's own emulation of bash's `complete`
 * and `compgen`): one completion logic for both shells.
 */
function zshScript(root: Node): string {
  return [
    '#compdef serene',
    '# zsh completion for serene (made by `serene completions zsh`)',
    '# install: serene completions zsh > "${fpath[1]}/_serene", or source it from ~/.zshrc',
    'autoload -U +X bashcompinit && bashcompinit',
    bashScript(root),
  ].join('\n');
}

// --- fish ---

function fishScript(root: Node): string {
  const nodes = flatten(root);
  const valued = nodes.flatMap((node) =>
    node.options
      .filter((option) => option.value)
      .flatMap((option) => option.flags.map((flag) => `${node.path}:${flag}`)),
  );
  const fishQuote = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const regex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // the words typed so far that are not options (nor an option's value), joined by spaces
  const lines = [
    '# fish completion for serene (made by `serene completions fish`)',
    '# install: serene completions fish > ~/.config/fish/completions/serene.fish',
    'function __serene_path',
    '    set -l words',
    '    set -l skip 0',
    '    for w in (commandline -opc)[2..-1]',
    '        if test $skip = 1; set skip 0; continue; end',
    "        set -l sofar (string join ' ' $words)",
    `        if contains -- "$sofar:$w" ${valued.map(fishQuote).join(' ')}; set skip 1; continue; end`,
    '        string match -q -- "-*" $w; and continue',
    '        set -a words $w',
    '    end',
    "    string join ' ' $words",
    'end',
    'function __serene_at',
    '    set -l path (__serene_path)',
    '    string match -q -r -- $argv[1] "$path"',
    'end',
    'function __serene_packages',
    '    set -l cache $XDG_CACHE_HOME',
    '    test -n "$cache"; or set cache $HOME/.cache',
    "    test -r $cache/serene-package-completions.txt; and string split ' ' < $cache/serene-package-completions.txt",
    'end',
    'complete -c serene -f',
  ];
  const at = (pattern: string) => `-n ${fishQuote(`__serene_at ${fishQuote(pattern)}`)}`;
  const flagsOf = (flags: readonly string[]) =>
    flags.map((flag) => (flag.startsWith('--') ? `-l ${flag.slice(2)}` : `-s ${flag.slice(1)}`)).join(' ');
  for (const node of [...nodes].reverse()) {
    const exact = `^${regex(node.path)}$`;
    const within = node.path === '' ? '^' : `^${regex(node.path)}( |$)`;
    for (const child of node.children) {
      const name = child.path.split(' ').pop()!;
      lines.push(`complete -c serene ${at(exact)} -a ${name} -d ${fishQuote(child.description)}`);
    }
    for (const option of node.options) {
      const scope = node.path === '' ? at('^$') : at(within);
      lines.push(
        `complete -c serene ${scope} ${flagsOf(option.flags)}${option.value ? ' -r' : ''} -d ${fishQuote(option.description)}`,
      );
    }
    const kind = ARGUMENT_COMPLETIONS[node.path];
    if (node.path === 'info') {
      lines.push(`complete -c serene ${at(exact)} -a '(__serene_packages)'`);
      for (const entry of INFO_SUBCOMMANDS) {
        lines.push(`complete -c serene ${at('^info [^ ]+$')} -a ${entry.name}`);
        for (const option of entry.options) {
          lines.push(
            `complete -c serene ${at(`^info [^ ]+ ${entry.name}( |$)`)} ${flagsOf(option.flags)} -d ${fishQuote(option.description)}`,
          );
        }
      }
      lines.push(`complete -c serene ${at('^info [^ ]+ set$')} -a ${fishQuote(SETTING_KEYS.join(' '))}`);
      lines.push(`complete -c serene ${at('^info [^ ]+ set [^ ]+$')} -a 'true false'`);
    } else if (kind === 'packages') {
      lines.push(`complete -c serene ${at(within)} -a '(__serene_packages)'`);
    } else if (kind === 'files') {
      lines.push(`complete -c serene ${at(within)} -F`);
    } else if (kind) {
      lines.push(`complete -c serene ${at(exact)} -a ${fishQuote(kind.join(' '))}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

// --- the command ---

/** `serene completions <shell>`: prints the script. */
export function printCompletions(program: Command, shell: string, io: CliIo): number {
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(`unknown shell '${shell}'; known are ${SHELLS.join(', ')}`);
  }
  io.stdout(completionScript(program, shell as Shell));
  return EXIT_OK;
}

/** Registers `completions` on `program` (after every other command, so that it sees them all). */
export function registerCompletionsCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
  report: (error: unknown) => number,
): void {
  program
    .command('completions')
    .description('print the shell completion script for bash, zsh or fish')
    .argument('<shell>', SHELLS.join(', '))
    .addHelpText(
      'after',
      `
Install with:
  bash: serene completions bash > ~/.local/share/bash-completion/completions/serene
  zsh:  serene completions zsh > "\${fpath[1]}/_serene"   (or source it from ~/.zshrc)
  fish: serene completions fish > ~/.config/fish/completions/serene.fish
Package names come from the list \`serene list\` last printed.`,
    )
    .action((shell: string) => {
      try {
        setExitCode(printCompletions(program, shell, io));
      } catch (error) {
        setExitCode(report(error));
      }
    });
}
