/**
 * The one argument reader and help printer of the `meridian` command. A command describes its
 * options once (a CommandSpec); parseArgs reads the words by it, and formatHelp prints it, so
 * what a command accepts and what its help lists cannot drift apart.
 *
 * The rules, for every command:
 * - `--name value` and `--name=value`; a one-letter alias also takes its value attached
 *   (`-Iproto`, `-Hk=v`).
 * - A repeatable option collects every value in order; any other option keeps its last value.
 * - A boolean flag takes no value (`--json`; `--json=yes` is a usage error).
 * - Positional arguments are the words that do not start with `-`, a lone `-` (stdin) and
 *   negative numbers; after `--` every word is positional.
 * - An unknown option, an option without its value, and a missing required option are usage
 *   errors (UsageError: exit status 2).
 */

/** Bad usage of a command: a message saying what is wrong; the command exits with status 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** One option of a command, as the reader accepts it and the help lists it. */
export interface OptionSpec {
  /** The long name with its dashes (`--out`): the name the command reads its value by. */
  readonly name: string;
  /** Other spellings (`-I`, `--proto_path`). */
  readonly aliases?: readonly string[];
  /** The placeholder of the option's value in help (`<dir>`); absent for a boolean flag. */
  readonly value?: string;
  /** Given more than once, every value counts (`-I a -I b`). */
  readonly repeatable?: boolean;
  /**
   * Missing it is a usage error: true, or the reason the message gives after the option
   * (`--out <dir> is required: <reason>`).
   */
  readonly required?: true | string;
  /** The value used when the option is absent, as the help shows it. */
  readonly default?: string;
  /** What the option does, one or more sentences (the help wraps it). */
  readonly help: string;
}

/** A positional argument, as the help lists it. */
export interface ArgumentSpec {
  readonly name: string;
  readonly help: string;
}

/** A command: its name, what it takes, and its help. */
export interface CommandSpec {
  /** The words after `meridian` that name it: `gen`, `registry serve`. */
  readonly name: string;
  /** The usage line after `meridian <name> `: its arguments and main options. */
  readonly synopsis: string;
  /** One line for the list of commands in `meridian --help`. */
  readonly summary: string;
  /** The paragraphs of `meridian <name> --help` under the usage line. */
  readonly description: string;
  readonly arguments?: readonly ArgumentSpec[];
  readonly options: readonly OptionSpec[];
  /** What each exit status means for this command. */
  readonly exitStatus: string;
}

/** The help option every command has; the dispatcher answers it before the command runs. */
export const HELP_OPTION: OptionSpec = { name: "--help", aliases: ["-h"], help: "print this help and exit" };

/** The words of a command line, read by its spec. */
export class ParsedArgs {
  constructor(
    /** The positional arguments, in order. */
    readonly positional: readonly string[],
    private readonly given: ReadonlyMap<string, readonly string[]>,
  ) {}

  /** The value of option `name` (its long name): the last one given, or undefined. */
  value(name: string): string | undefined {
    const all = this.given.get(name);
    return all === undefined ? undefined : all[all.length - 1];
  }

  /** Every value given to a repeatable option, in order. */
  values(name: string): readonly string[] {
    return this.given.get(name) ?? [];
  }

  /** Whether boolean flag `name` was given. */
  flag(name: string): boolean {
    return this.given.has(name);
  }
}

/** True when the words ask for help (`-h` or `--help` before any `--`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "-h" || a === "--help") return true;
  }
  return false;
}

function isPositional(word: string): boolean {
  return word === "-" || !word.startsWith("-") || /^-\d/.test(word);
}

/** The option name of a word: `--out` of `--out=dir`, the word itself otherwise. */
function nameOf(word: string): string {
  const eq = word.indexOf("=");
  return word.startsWith("--") && eq > 0 ? word.slice(0, eq) : word;
}

/** Reads `args` by `options`; throws UsageError for words the command does not take. */
export function parseArgs(args: readonly string[], options: readonly OptionSpec[]): ParsedArgs {
  const byName = new Map<string, OptionSpec>();
  for (const o of [...options, HELP_OPTION]) for (const n of [o.name, ...(o.aliases ?? [])]) byName.set(n, o);
  const positional: string[] = [];
  const given = new Map<string, string[]>();
  const put = (o: OptionSpec, v: string) => {
    const all = given.get(o.name);
    if (all === undefined || !o.repeatable) given.set(o.name, [v]);
    else all.push(v);
  };
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (word === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (isPositional(word)) {
      positional.push(word);
      continue;
    }
    const name = nameOf(word);
    const spec = byName.get(name);
    if (spec === undefined) {
      // A one-letter alias with its value attached: -Iproto, -Hx-trace=1.
      const short = byName.get(word.slice(0, 2));
      if (!word.startsWith("--") && short?.value !== undefined) {
        put(short, word.slice(2));
        continue;
      }
      throw new UsageError(`unknown option ${name}`);
    }
    if (spec.value === undefined) {
      if (name !== word) throw new UsageError(`${name} takes no value`);
      put(spec, "");
    } else if (name !== word) put(spec, word.slice(name.length + 1));
    else {
      const v = args[i + 1];
      // The next word is the value unless it is itself an option: `--out --int64 x` forgot the value.
      if (v === undefined || (!isPositional(v) && byName.has(nameOf(v)))) {
        throw new UsageError(`${name} needs a value`);
      }
      put(spec, v);
      i++;
    }
  }
  for (const o of options) {
    if (o.required !== undefined && !given.has(o.name)) {
      throw new UsageError(`${o.name}${o.value === undefined ? "" : ` ${o.value}`} is required${o.required === true ? "" : `: ${o.required}`}`);
    }
  }
  return new ParsedArgs(positional, given);
}

/** `v` when it is one of `choices`; a UsageError naming them otherwise. */
export function oneOf<const T extends string>(name: string, v: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(v)) return v as T;
  const list = choices.length === 1 ? choices[0]! : `${choices.slice(0, -1).join(", ")} or ${choices[choices.length - 1]!}`;
  throw new UsageError(`${name} must be ${list}, not "${v}"`);
}

/** `v` as an integer of at least `min`; a UsageError otherwise. */
export function integer(name: string, v: string, min: number): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, not "${v}"`);
  return n;
}

/** `v` as a number above zero (milliseconds, fractions allowed); a UsageError otherwise. */
export function positive(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !(n > 0) || !Number.isFinite(n)) throw new UsageError(`${name} must be a number > 0, not "${v}"`);
  return n;
}

/** Width the help is wrapped to, and where option descriptions start at most. */
const WIDTH = 100;
const MAX_LABEL = 28;

/** `text` wrapped to WIDTH, every line indented by `indent` spaces; `first` is the first line's prefix. */
function wrap(text: string, indent: number, first = " ".repeat(indent)): string {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = lines.length === 0 ? first : " ".repeat(indent);
    let empty = true;
    for (const w of paragraph.split(" ").filter((x) => x !== "")) {
      if (!empty && line.length + 1 + w.length > WIDTH) {
        lines.push(line);
        line = " ".repeat(indent) + w;
      } else line += (empty ? "" : " ") + w;
      empty = false;
    }
    lines.push(line.trimEnd());
  }
  return lines.join("\n");
}

/** `label` and its description as a two-column entry of a help list. */
function entry(label: string, text: string, column: number): string {
  const head = `  ${label}`;
  if (head.length + 2 > column) return `${head}\n${wrap(text, column)}`;
  return wrap(text, column, head.padEnd(column));
}

function optionLabel(o: OptionSpec): string {
  const names = [...(o.aliases ?? []).filter((a) => !a.startsWith("--")), o.name, ...(o.aliases ?? []).filter((a) => a.startsWith("--"))];
  return `${names.join(", ")}${o.value === undefined ? "" : ` ${o.value}`}`;
}

function optionText(o: OptionSpec): string {
  const notes = [o.required === undefined ? undefined : "required", o.repeatable ? "repeatable" : undefined, o.default === undefined ? undefined : `default: ${o.default}`].filter(
    (n) => n !== undefined,
  );
  return notes.length === 0 ? o.help : `${o.help} (${notes.join("; ")})`;
}

/** A titled two-column list, its descriptions aligned on one column. */
export function helpList(title: string, rows: readonly (readonly [string, string])[]): string {
  const column = Math.min(MAX_LABEL, Math.max(...rows.map(([l]) => l.length + 4)));
  return `${title}:\n${rows.map(([label, text]) => entry(label, text, column)).join("\n")}`;
}

/** The usage line(s) of `specs`: `usage: meridian <name> <synopsis>`, aligned. */
export function usageLines(specs: readonly Pick<CommandSpec, "name" | "synopsis">[]): string {
  return specs.map((s, i) => `${i === 0 ? "usage: " : "       "}meridian ${s.name}${s.synopsis === "" ? "" : ` ${s.synopsis}`}`).join("\n");
}

/** `meridian <command> --help`: usage, description, arguments, every option with its default, exit status. */
export function formatHelp(spec: CommandSpec): string {
  const parts = [usageLines([spec]), wrap(spec.description, 0)];
  if (spec.arguments !== undefined && spec.arguments.length > 0) parts.push(helpList("Arguments", spec.arguments.map((a) => [a.name, a.help])));
  parts.push(helpList("Options", [...spec.options, HELP_OPTION].map((o) => [optionLabel(o), optionText(o)])));
  parts.push(wrap(`Exit status: ${spec.exitStatus}`, 0));
  return `${parts.join("\n\n")}\n`;
}

/** What a usage error prints: the problem, the command's usage line, and where its help is. */
export function formatUsageError(spec: Pick<CommandSpec, "name" | "synopsis">, message: string): string {
  return `meridian ${spec.name}: ${message}\n${usageLines([spec])}\nRun "meridian ${spec.name} --help" for every option.\n`;
}

/** A group of commands as its help shows it: `meridian` itself, `meridian registry`. */
export interface CommandGroup {
  /** The words that name the group after `meridian` ("" for `meridian` itself). */
  readonly name: string;
  readonly description: string;
  readonly commands: readonly CommandSpec[];
  /** Options of the group itself, besides --help (`--version`). */
  readonly options: readonly OptionSpec[];
  readonly exitStatus: string;
}

/** `meridian --help`, `meridian registry --help`: every command's usage line, the command list, the options. */
export function formatGroupHelp(group: CommandGroup): string {
  const prefix = group.name === "" ? "" : `${group.name} `;
  const parts = [
    usageLines(group.commands),
    wrap(group.description, 0),
    helpList("Commands", group.commands.map((c) => [c.name.slice(prefix.length), c.summary])),
    helpList("Options", [...group.options, HELP_OPTION].map((o) => [optionLabel(o), optionText(o)])),
    wrap(`Run "meridian ${prefix}<command> --help" for a command's options.\nExit status: ${group.exitStatus}`, 0),
  ];
  return `${parts.join("\n\n")}\n`;
}
