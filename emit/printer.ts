/**
 * A small code printer that tracks imports from the symbols it prints (after protobuf-es's
 * protoplugin): emitters print lines made of strings and symbols, and the import block is
 * derived from the symbols actually printed, so imports never drift from the code that uses
 * them. An imported name that clashes with a name declared in the file, or with another import,
 * is aliased (`Reader as Reader$1`) and every use prints the alias.
 *
 * The same lines print as TypeScript or as JavaScript: the parts only TypeScript has (type
 * annotations, `implements`, non-null assertions, ...) are wrapped in typed(), which a file
 * without types leaves out, together with the imports only they use.
 */

/** A name exported by another module, printed as its local (possibly aliased) name. */
export interface ImportSymbol {
  readonly kind: "import";
  readonly name: string;
  /** Module specifier: a package path (`meridian-rpc/runtime`) or a relative `./x.js`. */
  readonly from: string;
  /** Used in type positions only (`import { type X }`) unless also printed as a value. */
  readonly typeOnly: boolean;
}

/**
 * A list printed on one line when it fits in the line width, else one item per line:
 * `object` as `{ a, b }` / `{\n  a,\n  b,\n}`, `union` as `A | B` / `\n  | A\n  | B`.
 */
export interface SoftList {
  readonly kind: "list";
  readonly style: "object" | "union";
  readonly items: readonly Printable[];
}

/** Parts printed only in a file with types (TypeScript): annotations, `implements`, `!`. */
export interface TypedPart {
  readonly kind: "typed";
  readonly items: readonly Printable[];
}

/** What a line is made of. */
export type Printable = string | number | ImportSymbol | SoftList | TypedPart | readonly Printable[];

/** Maximum line width before soft lists break. */
export const LINE_WIDTH = 120;

/** A value import of `name` from `from`. */
export function importValue(name: string, from: string): ImportSymbol {
  return { kind: "import", name, from, typeOnly: false };
}

/** A type-only use of `name` from `from`. */
export function importType(name: string, from: string): ImportSymbol {
  return { kind: "import", name, from, typeOnly: true };
}

/** An object literal or type, `{ a, b }`, broken over lines when too long. */
export function softObject(items: readonly Printable[]): SoftList {
  return { kind: "list", style: "object", items };
}

/** A union type, `A | B`, broken over lines (`| A`) when too long. */
export function softUnion(items: readonly Printable[]): SoftList {
  return { kind: "list", style: "union", items };
}

/** Parts that only TypeScript has (`typed(": ", type)`); a JavaScript file prints nothing for them. */
export function typed(...items: Printable[]): TypedPart {
  return { kind: "typed", items };
}

interface Line {
  readonly indent: number;
  readonly parts: readonly Printable[];
}

const INDENT = "  ";

/** One generated file being printed: TypeScript, or JavaScript when it has no types. */
export class GeneratedFile {
  private readonly preamble: string[] = [];
  private readonly lines: Line[] = [];
  private readonly locals = new Set<string>();
  private level = 0;

  constructor(
    /** Output path relative to the output directory (`foo/bar.ts`). */
    readonly name: string,
    /** Whether typed() parts are printed: true for TypeScript, false for JavaScript. */
    readonly types: boolean = true,
  ) {}

  /** Adds a line above the import block (provenance header, lint directives, file docs). */
  preambleLine(line: string): void {
    this.preamble.push(line);
  }

  /** Declares a top-level name of this file, so imports clashing with it are aliased. */
  declareLocal(name: string): void {
    this.locals.add(name);
  }

  /**
   * Prints one line at the current indentation. Either a tagged template
   * (`f.print\`x = ${sym};\``) or parts; no parts prints a blank line.
   */
  print(first?: TemplateStringsArray | Printable, ...rest: Printable[]): void {
    if (first === undefined) {
      this.lines.push({ indent: 0, parts: [] });
      return;
    }
    if (isTemplate(first)) {
      const parts: Printable[] = [];
      first.forEach((s, i) => {
        if (s !== "") parts.push(s);
        if (i < rest.length) parts.push(rest[i]!);
      });
      this.lines.push({ indent: this.level, parts });
      return;
    }
    this.lines.push({ indent: this.level, parts: [first, ...rest] });
  }

  /** Prints `open`, the body indented one level, then `close`. */
  block(open: Printable, body: () => void, close = "}"): void {
    this.print(open);
    this.indented(body);
    this.print(close);
  }

  /** Runs `body` one indentation level deeper. */
  indented(body: () => void): void {
    this.level++;
    try {
      body();
    } finally {
      this.level--;
    }
  }

  /** Prints a JSDoc comment of `text` (nothing when undefined or empty); `*\/` is escaped. */
  jsDoc(text: string | undefined): void {
    if (text === undefined) return;
    const lines = text.split("\n").map((l) => l.replace(/\*\//g, "*\\/"));
    if (lines.length === 0 || (lines.length === 1 && lines[0] === "")) return;
    if (lines.length === 1 && !lines[0]!.startsWith("@")) {
      this.print(`/** ${lines[0]} */`);
      return;
    }
    this.print("/**");
    for (const l of lines) this.print(l === "" ? " *" : ` * ${l}`);
    this.print(" */");
  }

  /** The file's text: preamble, import block, body. */
  render(): string {
    const aliases = this.resolveImports();
    const body = this.lines.map((l) => renderLine(l, aliases, this.types)).join("\n");
    let text = this.preamble.length === 0 ? "" : this.preamble.join("\n") + "\n";
    const imports = this.importBlock(aliases);
    if (imports !== "") text += imports + "\n\n";
    text += body.replace(/^\n+/, "");
    return text.endsWith("\n") ? text : text + "\n";
  }

  private usedImports(): Map<string, { sym: ImportSymbol; value: boolean }> {
    const used = new Map<string, { sym: ImportSymbol; value: boolean }>();
    const walk = (p: Printable): void => {
      if (typeof p === "string" || typeof p === "number") return;
      if (isList(p)) {
        for (const i of p.items) walk(i);
        return;
      }
      if (isTyped(p)) {
        if (this.types) for (const i of p.items) walk(i);
        return;
      }
      if (isImport(p)) {
        const key = `${p.from}\0${p.name}`;
        const prev = used.get(key);
        if (prev === undefined) used.set(key, { sym: p, value: !p.typeOnly });
        else if (!p.typeOnly) prev.value = true;
        return;
      }
      for (const x of p as readonly Printable[]) walk(x);
    };
    for (const l of this.lines) for (const p of l.parts) walk(p);
    return used;
  }

  private resolveImports(): Aliases {
    const used = this.usedImports();
    const taken = new Set(this.locals);
    const aliases: Aliases = new Map();
    for (const [key, { sym, value }] of used) {
      let local = sym.name;
      for (let i = 1; taken.has(local); i++) local = `${sym.name}$${i}`;
      taken.add(local);
      aliases.set(key, { sym, local, value });
    }
    return aliases;
  }

  private importBlock(aliases: Aliases): string {
    const byModule = new Map<string, { name: string; local: string; value: boolean }[]>();
    for (const { sym, local, value } of aliases.values()) {
      let list = byModule.get(sym.from);
      if (list === undefined) byModule.set(sym.from, (list = []));
      list.push({ name: sym.name, local, value });
    }
    const modules = [...byModule.keys()].sort((a, b) => {
      const ra = a.startsWith(".") ? 1 : 0;
      const rb = b.startsWith(".") ? 1 : 0;
      return ra - rb || compareNames(a, b);
    });
    const out: string[] = [];
    for (const from of modules) {
      const list = byModule.get(from)!;
      const allTypes = list.every((x) => !x.value);
      list.sort((a, b) => Number(b.value) - Number(a.value) || compareNames(a.name, b.name));
      const items = list.map((x) => {
        const spec = x.local === x.name ? x.name : `${x.name} as ${x.local}`;
        return allTypes || x.value ? spec : `type ${spec}`;
      });
      const head = allTypes ? "import type " : "import ";
      const flat = `${head}{ ${items.join(", ")} } from "${from}";`;
      if (flat.length <= LINE_WIDTH) out.push(flat);
      else out.push(`${head}{\n${items.map((i) => `${INDENT}${i},`).join("\n")}\n} from "${from}";`);
    }
    return out.join("\n");
  }
}

type Aliases = Map<string, { sym: ImportSymbol; local: string; value: boolean }>;

function compareNames(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  if (la !== lb) return la < lb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function isTemplate(p: unknown): p is TemplateStringsArray {
  return Array.isArray(p) && Object.prototype.hasOwnProperty.call(p, "raw");
}

function isImport(p: Printable): p is ImportSymbol {
  return typeof p === "object" && !Array.isArray(p) && (p as ImportSymbol).kind === "import";
}

function isList(p: Printable): p is SoftList {
  return typeof p === "object" && !Array.isArray(p) && (p as SoftList).kind === "list";
}

function isTyped(p: Printable): p is TypedPart {
  return typeof p === "object" && !Array.isArray(p) && (p as TypedPart).kind === "typed";
}

function flat(p: Printable, aliases: Aliases, types: boolean): string {
  if (typeof p === "string") return p;
  if (typeof p === "number") return String(p);
  if (isImport(p)) return aliases.get(`${p.from}\0${p.name}`)!.local;
  if (isTyped(p)) return types ? p.items.map((x) => flat(x, aliases, types)).join("") : "";
  if (isList(p)) {
    const items = p.items.map((i) => flat(i, aliases, types));
    if (p.style === "union") return items.join(" | ");
    return items.length === 0 ? "{}" : `{ ${items.join(", ")} }`;
  }
  return (p as readonly Printable[]).map((x) => flat(x, aliases, types)).join("");
}

/** A line's parts with its top-level typed() parts opened (so their soft lists can break) or dropped. */
function lineParts(parts: readonly Printable[], types: boolean): Printable[] {
  const out: Printable[] = [];
  for (const p of parts) {
    if (isTyped(p)) {
      if (types) out.push(...lineParts(p.items, types));
    } else out.push(p);
  }
  return out;
}

function renderLine(line: Line, aliases: Aliases, types: boolean): string {
  if (line.parts.length === 0) return "";
  const parts = lineParts(line.parts, types);
  const pad = INDENT.repeat(line.indent);
  const text = pad + parts.map((p) => flat(p, aliases, types)).join("");
  if (text.length <= LINE_WIDTH) return text;
  // Too long: break the first soft list on the line, keeping the rest flat.
  let before = pad;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (typeof p === "object" && isList(p) && p.items.length > 0) {
      const after = parts
        .slice(i + 1)
        .map((x) => flat(x, aliases, types))
        .join("");
      const inner = pad + INDENT;
      const items = p.items.map((x) => flat(x, aliases, types));
      if (p.style === "union") {
        return `${before.replace(/\s+$/, "")}\n${items.map((x) => `${inner}| ${x}`).join("\n")}${after}`;
      }
      return `${before}{\n${items.map((x) => `${inner}${x},`).join("\n")}\n${pad}}${after}`;
    }
    before += flat(p, aliases, types);
  }
  return text;
}
