/**
 * The tokens of a Thrift IDL file: identifiers (dots allowed, as in `shared.Base`), integer and
 * double constants, string literals in either quote, punctuation; comments (`//`, `#`, `/* *\/`)
 * skipped, and a `/** *\/` doc comment carried on the token that follows it.
 */
import { IdlError } from "../errors.js";
import type { SourceLocation } from "../model.js";

/** One token. `text` is the source text; `value` the decoded literal for strings and numbers. */
export type Token =
  | { readonly kind: "id"; readonly text: string; readonly loc: SourceLocation; readonly doc: string | undefined }
  | { readonly kind: "int"; readonly text: string; readonly value: bigint; readonly loc: SourceLocation; readonly doc: string | undefined }
  | { readonly kind: "double"; readonly text: string; readonly value: number; readonly loc: SourceLocation; readonly doc: string | undefined }
  | { readonly kind: "string"; readonly text: string; readonly value: string; readonly loc: SourceLocation; readonly doc: string | undefined }
  | { readonly kind: "punct"; readonly text: string; readonly loc: SourceLocation; readonly doc: string | undefined }
  | { readonly kind: "eof"; readonly text: ""; readonly loc: SourceLocation; readonly doc: string | undefined };

const PUNCT = new Set(["{", "}", "[", "]", "(", ")", "<", ">", ",", ";", ":", "=", "*", "&"]);
const ESCAPES: Readonly<Record<string, string>> = { n: "\n", r: "\r", t: "\t", "\\": "\\", '"': '"', "'": "'" };

const isDigit = (c: string): boolean => c >= "0" && c <= "9";
const isIdStart = (c: string): boolean => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isIdPart = (c: string): boolean => isIdStart(c) || isDigit(c) || c === ".";

/** The text of a doc comment without its `/**`, `*\/` and leading ` * `, trimmed. */
function docText(raw: string): string | undefined {
  const lines = raw
    .slice(3, -2)
    .split("\n")
    .map((l) => l.replace(/^\s*\*? ?/, "").trimEnd());
  while (lines.length > 0 && lines[0]!.trim() === "") lines.shift();
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  return lines.length === 0 ? undefined : lines.join("\n");
}

/** Splits `source` (the text of `file`) into tokens, ending with one `eof`. Throws IdlError. */
export function tokenize(file: string, source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let doc: string | undefined;
  const here = (at: number): SourceLocation => ({ file, line, column: at - lineStart + 1 });
  const fail = (at: number, detail: string): never => {
    throw new IdlError(file, line, at - lineStart + 1, detail);
  };
  /** Moves past source[from, to), counting the lines it crosses. */
  const advance = (to: number): void => {
    for (let k = i; k < to; k++) {
      if (source.charCodeAt(k) === 10) {
        line++;
        lineStart = k + 1;
      }
    }
    i = to;
  };
  while (i < source.length) {
    const c = source[i]!;
    if (c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\f" || c === "\uFEFF") {
      advance(i + 1);
      continue;
    }
    if (c === "#" || (c === "/" && source[i + 1] === "/")) {
      const end = source.indexOf("\n", i);
      advance(end < 0 ? source.length : end);
      continue;
    }
    if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      if (end < 0) fail(i, "a /* comment is not closed");
      const raw = source.slice(i, end + 2);
      if (raw.startsWith("/**") && raw.length > 4) doc = docText(raw);
      advance(end + 2);
      continue;
    }
    const loc = here(i);
    const take = doc;
    doc = undefined;
    if (c === '"' || c === "'") {
      let value = "";
      let k = i + 1;
      for (;;) {
        if (k >= source.length) fail(i, "a string literal is not closed");
        const d = source[k]!;
        if (d === c) break;
        if (d === "\\") {
          const e = ESCAPES[source[k + 1] ?? ""];
          if (e === undefined) fail(k, `unknown escape \\${source[k + 1] ?? ""} in a string literal`);
          value += e;
          k += 2;
          continue;
        }
        value += d;
        k++;
      }
      tokens.push({ kind: "string", text: source.slice(i, k + 1), value, loc, doc: take });
      advance(k + 1);
      continue;
    }
    if (isDigit(c) || ((c === "+" || c === "-" || c === ".") && (isDigit(source[i + 1] ?? "") || (c !== "." && source[i + 1] === ".")))) {
      const m = /^[+-]?(0x[0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)/.exec(source.slice(i, i + 400));
      if (m === null) fail(i, "a malformed number");
      const text = m![0];
      if (isIdPart(source[i + text.length] ?? "")) fail(i, `a malformed number: ${text}${source[i + text.length]}`);
      if (/^[+-]?(0x[0-9a-fA-F]+|\d+)$/.test(text)) {
        const neg = text.startsWith("-");
        const digits = text.replace(/^[+-]/, "");
        const value = BigInt(digits);
        tokens.push({ kind: "int", text, value: neg ? -value : value, loc, doc: take });
      } else {
        tokens.push({ kind: "double", text, value: Number(text), loc, doc: take });
      }
      advance(i + text.length);
      continue;
    }
    if (isIdStart(c)) {
      let k = i + 1;
      while (k < source.length && isIdPart(source[k]!)) k++;
      const text = source.slice(i, k);
      if (text.endsWith(".") || text.includes("..")) fail(i, `"${text}" is not a valid identifier`);
      tokens.push({ kind: "id", text, loc, doc: take });
      advance(k);
      continue;
    }
    if (PUNCT.has(c)) {
      tokens.push({ kind: "punct", text: c, loc, doc: take });
      advance(i + 1);
      continue;
    }
    fail(i, `unexpected character ${JSON.stringify(c)}`);
  }
  tokens.push({ kind: "eof", text: "", loc: here(i), doc });
  return tokens;
}
