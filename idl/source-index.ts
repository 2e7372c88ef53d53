import type { SourceLocation } from "./model.js";

/**
 * Where things are in one .proto source: a second, lightweight pass over a file that protobufjs
 * has already parsed, recording what its AST does not keep: the line and column of every
 * declaration (for error messages), the leading comments of declarations attached by protoc's
 * rules (so `meridian gen` and `protoc --meridian_out` emit the same JSDoc), and the raw text of
 * `[default = ...]` values (protobufjs turns 64-bit defaults into imprecise numbers).
 *
 * It relies on the source being valid syntax (protobufjs says so first) and is permissive
 * otherwise: it never raises, it only records less.
 */

interface Token {
  readonly text: string;
  readonly kind: "ident" | "number" | "string" | "symbol";
  readonly line: number;
  readonly column: number;
  /** The leading comment attached to this token by protoc's rules, raw (without markers). */
  readonly leading: string | undefined;
}

/** A declaration's position and leading comment. */
export interface IndexedDecl {
  readonly name: string;
  readonly loc: SourceLocation;
  readonly comment: string | undefined;
}

/** A field as written. */
export interface IndexedField extends IndexedDecl {
  readonly number: number | undefined;
  readonly numberLoc: SourceLocation | undefined;
  readonly typeLoc: SourceLocation | undefined;
  /** Raw tokens of the `[default = ...]` value (strings with their quotes). */
  readonly defaultTokens: string[] | undefined;
}

/** A reserved number range or name as written. */
export interface IndexedReserved {
  readonly loc: SourceLocation;
  readonly from?: number;
  readonly to?: number;
  readonly name?: string;
}

/** A message (or group body) as written. */
export interface IndexedMessage extends IndexedDecl {
  readonly fields: IndexedField[];
  readonly oneofs: IndexedDecl[];
  readonly reserved: IndexedReserved[];
}

/** An enum value as written. */
export interface IndexedEnumValue extends IndexedDecl {
  readonly number: number | undefined;
  readonly numberLoc: SourceLocation | undefined;
}

/** An enum as written. */
export interface IndexedEnum extends IndexedDecl {
  readonly values: IndexedEnumValue[];
  readonly reserved: IndexedReserved[];
}

/** An RPC method as written. */
export interface IndexedMethod extends IndexedDecl {
  readonly inputLoc: SourceLocation | undefined;
  readonly outputLoc: SourceLocation | undefined;
}

/** A service as written. */
export interface IndexedService extends IndexedDecl {
  readonly methods: IndexedMethod[];
}

/** An import statement as written. */
export interface IndexedImport {
  readonly name: string;
  readonly kind: "normal" | "public" | "weak";
  readonly loc: SourceLocation;
}

/** Positions, comments and raw tokens of one .proto source. See the module comment. */
export class SourceIndex {
  syntax: { value: string; loc: SourceLocation } | undefined;
  edition: { value: string; loc: SourceLocation } | undefined;
  package: { name: string; loc: SourceLocation } | undefined;
  /** Leading comments of the syntax/edition and package statements, in that order. */
  fileComments: string[] = [];
  readonly imports: IndexedImport[] = [];
  /** Messages by path relative to the package (`Outer.Inner`); a later duplicate wins. */
  readonly messages = new Map<string, IndexedMessage>();
  /** Enums by path relative to the package. */
  readonly enums = new Map<string, IndexedEnum>();
  /** Services by name. */
  readonly services = new Map<string, IndexedService>();
  /** Top-level declarations in order (for duplicate-name errors). */
  readonly topLevel: IndexedDecl[] = [];

  constructor(readonly file: string) {}

  /** Builds the index of `source`, a file that parsed. */
  static build(file: string, source: string): SourceIndex {
    const index = new SourceIndex(file);
    new Walker(index, tokenize(source)).file();
    return index;
  }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer with protoc's comment attachment (google/protobuf/io/tokenizer.cc NextWithComments):
// a comment on the line of the previous token, or a block of comments after it followed by a
// blank line, trails the previous token; the block of comments directly above a token (no blank
// line between) leads it; a comment before `}` leads nothing.

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  let line = 1;
  let col = 1;
  const n = src.length;

  const ch = (k = 0): string => (pos + k < n ? src[pos + k]! : "");
  const advance = (): void => {
    if (src[pos] === "\n") {
      line++;
      col = 1;
    } else col++;
    pos++;
  };
  const skipSpaceNoNewline = (): void => {
    while (pos < n && (ch() === " " || ch() === "\t" || ch() === "\r" || ch() === "\v" || ch() === "\f")) advance();
  };
  // Content after "//", through the newline.
  const lineComment = (): string => {
    advance();
    advance();
    const start = pos;
    while (pos < n && ch() !== "\n") advance();
    if (pos < n) advance();
    return src.slice(start, pos);
  };
  // Content between "/*" and "*/"; on continuation lines, leading whitespace and one "*" dropped.
  const blockComment = (): string => {
    advance();
    advance();
    let out = "";
    let start = pos;
    for (;;) {
      if (pos >= n) {
        out += src.slice(start, pos);
        return out;
      }
      if (ch() === "*" && ch(1) === "/") {
        out += src.slice(start, pos);
        advance();
        advance();
        return out;
      }
      if (ch() === "\n") {
        advance();
        out += src.slice(start, pos);
        skipSpaceNoNewline();
        if (ch() === "*") {
          if (ch(1) === "/") {
            advance();
            advance();
            return out;
          }
          advance();
        }
        start = pos;
        continue;
      }
      advance();
    }
  };
  const commentStart = (): "line" | "block" | undefined => {
    if (ch() !== "/") return undefined;
    if (ch(1) === "/") return "line";
    if (ch(1) === "*") return "block";
    return undefined;
  };

  let prevLine = 0;
  let first = true;
  for (;;) {
    // Comments between the previous token and the next one.
    let buffer: string | undefined;
    let bufferIsBlock = false;
    const flush = (): void => {
      buffer = undefined;
      bufferIsBlock = false;
    };
    let sameLineToken = false;
    if (!first) {
      skipSpaceNoNewline();
      const c = commentStart();
      if (c === "line") {
        lineComment(); // trails the previous token
      } else if (c === "block") {
        blockComment();
        skipSpaceNoNewline();
        if (ch() === "\n") advance();
        else sameLineToken = true;
      } else if (ch() === "\n") {
        advance();
      } else {
        sameLineToken = true;
      }
    }
    if (!sameLineToken) {
      for (;;) {
        skipSpaceNoNewline();
        const c = commentStart();
        if (c === "line") {
          if (bufferIsBlock) flush();
          buffer = (buffer ?? "") + lineComment();
        } else if (c === "block") {
          flush();
          buffer = blockComment();
          bufferIsBlock = true;
          skipSpaceNoNewline();
          if (ch() === "\n") advance();
        } else if (ch() === "\n") {
          flush(); // a blank line detaches the comments above it
          advance();
        } else break;
      }
    }
    first = false;
    if (pos >= n) break;
    // The token.
    const tl = line;
    const tc = col;
    const c0 = ch();
    let text: string;
    let kind: Token["kind"];
    if (IDENT_START.test(c0)) {
      const s = pos;
      while (pos < n && IDENT_PART.test(ch())) advance();
      text = src.slice(s, pos);
      kind = "ident";
    } else if (/[0-9]/.test(c0) || (c0 === "." && /[0-9]/.test(ch(1)))) {
      const s = pos;
      while (pos < n) {
        const c = ch();
        if (/[A-Za-z0-9_.]/.test(c)) advance();
        else if ((c === "+" || c === "-") && /[eE]/.test(src[pos - 1]!) && !/^0[xX]/.test(src.slice(s, pos))) advance();
        else break;
      }
      text = src.slice(s, pos);
      kind = "number";
    } else if (c0 === '"' || c0 === "'") {
      const s = pos;
      advance();
      while (pos < n && ch() !== c0 && ch() !== "\n") {
        if (ch() === "\\") advance();
        advance();
      }
      if (ch() === c0) advance();
      text = src.slice(s, pos);
      kind = "string";
    } else {
      advance();
      text = c0;
      kind = "symbol";
    }
    let leading = buffer;
    if (text === "}" || text === "]" || text === ")" || tl === prevLine) leading = undefined;
    tokens.push({ text, kind, line: tl, column: tc, leading });
    prevLine = line;
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// The structural walk.

const LABELS = new Set(["optional", "required", "repeated"]);

class Walker {
  private i = 0;

  constructor(
    private readonly index: SourceIndex,
    private readonly tokens: Token[],
  ) {}

  private peek(k = 0): Token | undefined {
    return this.tokens[this.i + k];
  }

  private is(text: string, k = 0): boolean {
    return this.tokens[this.i + k]?.text === text;
  }

  private next(): Token | undefined {
    return this.tokens[this.i++];
  }

  private accept(text: string): boolean {
    if (this.is(text)) {
      this.i++;
      return true;
    }
    return false;
  }

  private loc(t: Token): SourceLocation {
    return { file: this.index.file, line: t.line, column: t.column };
  }

  /** Skips one statement through its `;` (balancing brackets); stops before an unbalanced `}`. */
  private skipStatement(): void {
    let depth = 0;
    while (this.i < this.tokens.length) {
      const t = this.peek()!.text;
      if (depth === 0 && t === "}") return;
      this.i++;
      if (t === "{" || t === "[" || t === "(") depth++;
      else if (t === "}" || t === "]" || t === ")") {
        depth--;
        if (depth === 0 && t === "}" && !this.is(";")) return; // a block statement
      } else if (t === ";" && depth === 0) return;
    }
  }

  /** Skips a `{ ... }` block if one starts here. */
  private skipBlock(): void {
    if (!this.is("{")) return;
    let depth = 0;
    while (this.i < this.tokens.length) {
      const t = this.next()!.text;
      if (t === "{") depth++;
      else if (t === "}" && --depth === 0) return;
    }
  }

  /** Reads a possibly qualified, possibly absolute type name. */
  private qualifiedName(): { text: string; loc: SourceLocation } | undefined {
    const first = this.peek();
    if (first === undefined) return undefined;
    let text = "";
    if (this.accept(".")) text = ".";
    const id = this.next();
    if (id === undefined) return undefined;
    text += id.text;
    while (this.is(".") && this.peek(1)?.kind === "ident") {
      this.i++;
      text += "." + this.next()!.text;
    }
    return { text, loc: this.loc(first) };
  }

  file(): void {
    const index = this.index;
    while (this.i < this.tokens.length) {
      const t = this.peek()!;
      switch (t.text) {
        case "syntax":
        case "edition": {
          this.next();
          this.accept("=");
          const s = this.next();
          if (s !== undefined) {
            const value = { value: unquote(s.text), loc: this.loc(t) };
            if (t.text === "syntax") index.syntax = value;
            else index.edition = value;
          }
          if (t.leading !== undefined) index.fileComments.push(t.leading);
          this.accept(";");
          break;
        }
        case "package": {
          this.next();
          const name = this.qualifiedName();
          if (name !== undefined) index.package = { name: name.text, loc: name.loc };
          if (t.leading !== undefined) index.fileComments.push(t.leading);
          this.accept(";");
          break;
        }
        case "import": {
          this.next();
          let kind: IndexedImport["kind"] = "normal";
          if (this.accept("public")) kind = "public";
          else if (this.accept("weak")) kind = "weak";
          else if (this.is("option")) {
            this.skipStatement();
            break;
          }
          let name = "";
          let loc: SourceLocation | undefined;
          while (this.peek()?.kind === "string") {
            const s = this.next()!;
            loc ??= this.loc(s);
            name += unquote(s.text);
          }
          if (loc !== undefined) index.imports.push({ name, kind, loc });
          this.accept(";");
          break;
        }
        default:
          if (!this.declaration("")) this.skipStatement();
      }
    }
  }

  /** Message, enum, service or extend at `scope` (a path, "" at file level). */
  private declaration(scope: string): boolean {
    const t = this.peek()!;
    if ((t.text === "export" || t.text === "local") && (this.is("message", 1) || this.is("enum", 1))) {
      this.next();
      return this.declaration(scope);
    }
    switch (t.text) {
      case "message": {
        this.next();
        const name = this.next();
        if (name === undefined) return true;
        const path = join(scope, name.text);
        const decl = { name: name.text, loc: this.loc(name), comment: t.leading };
        if (scope === "") this.index.topLevel.push(decl);
        this.messageBody(path, decl);
        return true;
      }
      case "enum": {
        this.next();
        const name = this.next();
        if (name === undefined) return true;
        const decl = { name: name.text, loc: this.loc(name), comment: t.leading };
        if (scope === "") this.index.topLevel.push(decl);
        this.enumBody(join(scope, name.text), decl);
        return true;
      }
      case "service": {
        this.next();
        const name = this.next();
        if (name === undefined) return true;
        const decl = { name: name.text, loc: this.loc(name), comment: t.leading };
        if (scope === "") this.index.topLevel.push(decl);
        this.serviceBody(decl);
        return true;
      }
      case "extend":
        // Extensions are not generated; their bodies are skipped.
        this.next();
        this.qualifiedName();
        this.skipBlock();
        return true;
      case "option":
        this.skipStatement();
        return true;
      case ";":
        this.next();
        return true;
    }
    return false;
  }

  private messageBody(path: string, decl: IndexedDecl): void {
    const msg: IndexedMessage = { ...decl, fields: [], oneofs: [], reserved: [] };
    this.index.messages.set(path, msg);
    if (!this.accept("{")) return;
    while (this.i < this.tokens.length && !this.is("}")) {
      const t = this.peek()!;
      if (t.text === "message" || t.text === "enum" || t.text === "extend" || t.text === "option" || t.text === ";") {
        this.declaration(path);
      } else if ((t.text === "export" || t.text === "local") && (this.is("message", 1) || this.is("enum", 1))) {
        this.declaration(path);
      } else if (t.text === "extensions") {
        this.skipStatement();
      } else if (t.text === "reserved") {
        this.next();
        this.reserved(msg.reserved);
      } else if (t.text === "oneof" && this.peek(1)?.kind === "ident" && this.is("{", 2)) {
        this.next();
        const name = this.next()!;
        msg.oneofs.push({ name: name.text, loc: this.loc(name), comment: t.leading });
        this.next();
        while (this.i < this.tokens.length && !this.is("}")) {
          if (this.is("option")) this.skipStatement();
          else if (this.is(";")) this.next();
          else this.field(path, msg);
        }
        this.accept("}");
      } else {
        this.field(path, msg);
      }
    }
    this.accept("}");
    this.accept(";");
  }

  private field(path: string, msg: IndexedMessage): void {
    const first = this.peek()!;
    const start = this.i;
    if (LABELS.has(first.text) && !this.is("=", 1) && !this.is("=", 2)) this.next();
    if (this.is("group") && this.peek(1)?.kind === "ident" && this.is("=", 2)) {
      this.next();
      const name = this.next()!;
      this.next();
      const num = this.number();
      const opts = this.inlineOptions();
      const loc = this.loc(name);
      msg.fields.push({
        name: name.text.toLowerCase(),
        loc,
        comment: first.leading,
        number: num?.value,
        numberLoc: num?.loc,
        typeLoc: loc,
        defaultTokens: opts,
      });
      this.messageBody(join(path, name.text), { name: name.text, loc, comment: first.leading });
      return;
    }
    let typeLoc: SourceLocation | undefined;
    if (this.is("map") && this.is("<", 1)) {
      typeLoc = this.loc(this.peek()!);
      this.next();
      this.next();
      this.qualifiedName();
      this.accept(",");
      this.qualifiedName();
      this.accept(">");
    } else {
      typeLoc = this.qualifiedName()?.loc;
    }
    const name = this.peek();
    if (name === undefined || name.kind !== "ident" || !this.is("=", 1)) {
      // Not a field after all: skip it rather than guess.
      this.i = start;
      this.skipStatement();
      return;
    }
    this.next();
    this.next();
    const num = this.number();
    const opts = this.inlineOptions();
    this.accept(";");
    msg.fields.push({
      name: name.text,
      loc: this.loc(name),
      comment: first.leading,
      number: num?.value,
      numberLoc: num?.loc,
      typeLoc,
      defaultTokens: opts,
    });
  }

  /** An integer (field or enum number), with an optional minus sign. */
  private number(): { value: number | undefined; loc: SourceLocation } | undefined {
    const t = this.peek();
    if (t === undefined) return undefined;
    let sign = 1;
    if (t.text === "-") {
      this.next();
      sign = -1;
    }
    const num = this.next();
    if (num === undefined) return undefined;
    const v = parseIntegerLiteral(num.text);
    return { value: v === undefined ? undefined : sign * v, loc: this.loc(t) };
  }

  /** Reads `[a = 1, (b).c = {...}]`; returns the raw tokens of a `default` option. */
  private inlineOptions(): string[] | undefined {
    if (!this.accept("[")) return undefined;
    let def: string[] | undefined;
    while (this.i < this.tokens.length && !this.is("]")) {
      // Option name: tokens up to "=".
      const nameParts: string[] = [];
      while (this.i < this.tokens.length && !this.is("=") && !this.is("]")) nameParts.push(this.next()!.text);
      if (!this.accept("=")) break;
      const value: string[] = [];
      if (this.is("{")) {
        this.skipBlock();
      } else {
        if (this.is("-")) value.push(this.next()!.text);
        if (this.peek()?.kind === "string") {
          while (this.peek()?.kind === "string") value.push(this.next()!.text);
        } else if (this.peek() !== undefined) value.push(this.next()!.text);
      }
      if (nameParts.length === 1 && nameParts[0] === "default") def = value;
      if (!this.accept(",")) break;
    }
    this.accept("]");
    return def;
  }

  private reserved(into: IndexedReserved[]): void {
    for (;;) {
      const t = this.peek();
      if (t === undefined) return;
      if (t.kind === "string") {
        this.next();
        into.push({ loc: this.loc(t), name: unquote(t.text) });
      } else if (t.kind === "ident" && !this.is("to", 1)) {
        this.next();
        into.push({ loc: this.loc(t), name: t.text });
      } else {
        const from = this.number();
        let to = from?.value;
        if (this.accept("to")) {
          if (this.is("max")) {
            this.next();
            to = Number.MAX_SAFE_INTEGER;
          } else to = this.number()?.value;
        }
        if (from?.value !== undefined && to !== undefined) into.push({ loc: from.loc, from: from.value, to });
      }
      if (!this.accept(",")) break;
    }
    this.skipStatement();
  }

  private enumBody(path: string, decl: IndexedDecl): void {
    const e: IndexedEnum = { ...decl, values: [], reserved: [] };
    this.index.enums.set(path, e);
    if (!this.accept("{")) return;
    while (this.i < this.tokens.length && !this.is("}")) {
      const t = this.peek()!;
      if (t.text === "option") this.skipStatement();
      else if (t.text === ";") this.next();
      else if (t.text === "reserved" && !this.is("=", 1)) {
        this.next();
        this.reserved(e.reserved);
      } else if (t.kind === "ident" && this.is("=", 1)) {
        this.next();
        this.next();
        const num = this.number();
        this.inlineOptions();
        this.accept(";");
        e.values.push({ name: t.text, loc: this.loc(t), comment: t.leading, number: num?.value, numberLoc: num?.loc });
      } else this.skipStatement();
    }
    this.accept("}");
    this.accept(";");
  }

  private serviceBody(decl: IndexedDecl): void {
    const s: IndexedService = { ...decl, methods: [] };
    this.index.services.set(decl.name, s);
    if (!this.accept("{")) return;
    while (this.i < this.tokens.length && !this.is("}")) {
      const t = this.peek()!;
      if (t.text === "rpc") {
        this.next();
        const name = this.next();
        this.accept("(");
        this.accept("stream");
        const input = this.qualifiedName();
        this.accept(")");
        this.accept("returns");
        this.accept("(");
        this.accept("stream");
        const output = this.qualifiedName();
        this.accept(")");
        if (this.is("{")) this.skipBlock();
        this.accept(";");
        if (name !== undefined) {
          s.methods.push({
            name: name.text,
            loc: this.loc(name),
            comment: t.leading,
            inputLoc: input?.loc,
            outputLoc: output?.loc,
          });
        }
      } else if (t.text === ";") this.next();
      else this.skipStatement();
    }
    this.accept("}");
    this.accept(";");
  }
}

function join(scope: string, name: string): string {
  return scope === "" ? name : `${scope}.${name}`;
}

function unquote(text: string): string {
  if (text.length >= 2 && (text[0] === '"' || text[0] === "'")) return text.slice(1, -1);
  return text;
}

/** Parses a decimal, hex (`0x`) or octal (`0...`) integer literal; undefined if it is not one. */
export function parseIntegerLiteral(text: string): number | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return parseInt(text.slice(2), 16);
  if (/^0[0-7]+$/.test(text)) return parseInt(text.slice(1), 8);
  if (/^(0|[1-9][0-9]*)$/.test(text)) return parseInt(text, 10);
  return undefined;
}

/** Parses an integer literal exactly, as a bigint (for 64-bit defaults). */
export function parseBigIntLiteral(text: string): bigint | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return BigInt(text);
  if (/^0[0-7]+$/.test(text)) return BigInt("0o" + text.slice(1));
  if (/^(0|[1-9][0-9]*)$/.test(text)) return BigInt(text);
  return undefined;
}

/**
 * Decodes the C-style escapes of a protobuf string literal body (`\n`, `\x41`, `\101`, `\u00e9`,
 * `\U0001F600`) into bytes: escapes give bytes (or UTF-8 for \u), other characters their UTF-8.
 */
export function unescapeBytes(body: string): Uint8Array {
  const out: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== "\\") {
      const cp = body.codePointAt(i)!;
      if (cp < 0x80) out.push(cp);
      else {
        const s = String.fromCodePoint(cp);
        out.push(...enc.encode(s));
        i += s.length - 1;
      }
      continue;
    }
    const e = body[++i];
    if (e === undefined) break;
    switch (e) {
      case "a":
        out.push(7);
        break;
      case "b":
        out.push(8);
        break;
      case "f":
        out.push(12);
        break;
      case "n":
        out.push(10);
        break;
      case "r":
        out.push(13);
        break;
      case "t":
        out.push(9);
        break;
      case "v":
        out.push(11);
        break;
      case "x":
      case "X": {
        const m = /^[0-9a-fA-F]{1,2}/.exec(body.slice(i + 1));
        if (m === null) out.push(e.charCodeAt(0));
        else {
          out.push(parseInt(m[0], 16));
          i += m[0].length;
        }
        break;
      }
      case "u":
      case "U": {
        const len = e === "u" ? 4 : 8;
        const m = new RegExp(`^[0-9a-fA-F]{${len}}`).exec(body.slice(i + 1));
        if (m === null) out.push(e.charCodeAt(0));
        else {
          out.push(...enc.encode(String.fromCodePoint(parseInt(m[0], 16))));
          i += len;
        }
        break;
      }
      default:
        if (e >= "0" && e <= "7") {
          const m = /^[0-7]{1,3}/.exec(body.slice(i))!;
          out.push(parseInt(m[0], 8) & 0xff);
          i += m[0].length - 1;
        } else out.push(e.charCodeAt(0));
    }
  }
  return new Uint8Array(out);
}
