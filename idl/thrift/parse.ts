/**
 * The Thrift IDL parser: tokens (lexer.ts) to a ThriftDocument (ast.ts), by recursive descent
 * over Apache Thrift's grammar (headers, then definitions; every list separator optional;
 * annotations after types, fields, functions, enum values and definitions). Names are not
 * resolved here: link.ts does that across includes. Errors are IdlErrors located at the token.
 */
import { IdlError } from "../errors.js";
import type { SourceLocation } from "../model.js";
import type {
  Annotations,
  ConstValue,
  Requiredness,
  ThriftBaseType,
  ThriftDefinition,
  ThriftDocument,
  ThriftEnumValue,
  ThriftField,
  ThriftFunction,
  ThriftType,
} from "./ast.js";
import { tokenize, type Token } from "./lexer.js";

const BASE_TYPES = new Set<string>(["bool", "byte", "i8", "i16", "i32", "i64", "double", "string", "binary", "uuid"]);

/**
 * Words a type's name may not be: the IDL's own keywords. (Apache Thrift also refuses the
 * keywords of its target languages; that is a generator's concern, and our emitter escapes what
 * TypeScript reserves.)
 */
const KEYWORDS = new Set<string>([
  "include", "cpp_include", "namespace", "const", "typedef", "enum", "senum", "struct", "union", "exception",
  "service", "extends", "required", "optional", "oneway", "void", "throws", "list", "set", "map", "cpp_type",
  "true", "false", "slist", "xsd_all", "xsd_optional", "xsd_nillable", "xsd_attrs",
]);

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

/** Parses the text of one .thrift file. Throws IdlError at the first error. */
export function parseThrift(file: string, source: string): ThriftDocument {
  return new Parser(file, tokenize(file, source)).document();
}

class Parser {
  private pos = 0;

  constructor(
    private readonly file: string,
    private readonly tokens: readonly Token[],
  ) {}

  document(): ThriftDocument {
    const includes: { path: string; loc: SourceLocation }[] = [];
    const namespaces: Record<string, string> = {};
    const definitions: ThriftDefinition[] = [];
    const fileDoc = this.peek().doc;
    let docUsed = false;
    for (;;) {
      const t = this.peek();
      if (t.kind === "eof") break;
      if (this.isWord("include")) {
        this.next();
        const path = this.expectString("the path of the included file");
        includes.push({ path: path.value, loc: path.loc });
      } else if (this.isWord("cpp_include")) {
        this.next();
        this.expectString("the C++ header to include");
      } else if (this.isWord("namespace")) {
        this.next();
        const scope = this.peek();
        if (scope.kind === "punct" && scope.text === "*") this.next();
        else this.expectId("a namespace scope (a language, or *)");
        const name = this.expectId("the namespace");
        namespaces[scope.text] = name.text;
        this.annotations();
      } else {
        const def = this.definition();
        if (def.doc !== undefined && def.doc === fileDoc) docUsed = true;
        definitions.push(def);
      }
      this.separator();
    }
    return { file: this.file, includes, namespaces, definitions, doc: docUsed ? undefined : fileDoc };
  }

  private definition(): ThriftDefinition {
    const t = this.peek();
    const doc = t.doc;
    if (t.kind !== "id") throw this.error(t, `expected a definition (struct, union, exception, enum, typedef, const or service), found ${describe(t)}`);
    switch (t.text) {
      case "const": {
        this.next();
        const type = this.type();
        const name = this.name("the constant's name");
        this.expectPunct("=");
        const value = this.constValue();
        return { kind: "const", name: name.text, type, value, annotations: {}, doc, loc: name.loc };
      }
      case "typedef": {
        this.next();
        const type = this.type();
        const name = this.name("the typedef's name", true);
        return { kind: "typedef", name: name.text, type, annotations: this.annotations(), doc, loc: name.loc };
      }
      case "enum":
        return this.enumDefinition(doc);
      case "senum":
        throw this.error(t, "senum is deprecated and not supported; use an enum or a set<string>");
      case "struct":
      case "union":
      case "exception": {
        this.next();
        const name = this.name(`the ${t.text}'s name`, true);
        if (this.isWord("xsd_all")) this.next();
        this.expectPunct("{");
        const fields = this.fields("}", t.text);
        return { kind: t.text, name: name.text, fields, annotations: this.annotations(), doc, loc: name.loc };
      }
      case "service": {
        this.next();
        const name = this.name("the service's name", true);
        let base: Token | undefined;
        if (this.isWord("extends")) {
          this.next();
          base = this.expectId("the service it extends");
        }
        this.expectPunct("{");
        const functions: ThriftFunction[] = [];
        while (!this.closes("}")) {
          functions.push(this.function());
          this.separator();
        }
        this.next();
        return { kind: "service", name: name.text, extends: base?.text, extendsLoc: base?.loc, functions, annotations: this.annotations(), doc, loc: name.loc };
      }
      default:
        throw this.error(t, `expected a definition (struct, union, exception, enum, typedef, const or service), found ${describe(t)}`);
    }
  }

  private enumDefinition(doc: string | undefined): ThriftDefinition {
    this.next();
    const name = this.name("the enum's name", true);
    this.expectPunct("{");
    const values: ThriftEnumValue[] = [];
    let next = 0n;
    while (!this.closes("}")) {
      const v = this.name("an enum value's name");
      let value = next;
      if (this.isPunct("=")) {
        this.next();
        const n = this.peek();
        if (n.kind !== "int") throw this.error(n, `the value of ${v.text} must be an integer, found ${describe(n)}`);
        this.next();
        value = n.value;
      }
      if (value < INT32_MIN || value > INT32_MAX) throw this.error(v, `${name.text}.${v.text} = ${value} is out of the i32 range`);
      values.push({ name: v.text, value: Number(value), annotations: this.annotations(), doc: v.doc, loc: v.loc });
      next = value + 1n;
      this.separator();
    }
    this.next();
    return { kind: "enum", name: name.text, values, annotations: this.annotations(), doc, loc: name.loc };
  }

  /** Fields up to the closing `close`, which it consumes. Ids left out count down from -1. */
  private fields(close: string, what: string): ThriftField[] {
    const fields: ThriftField[] = [];
    let implicit = -1;
    while (!this.closes(close)) {
      const start = this.peek();
      let id: number;
      if (start.kind === "int" && this.peek(1).kind === "punct" && this.peek(1).text === ":") {
        if (start.value < 1n || start.value > 32767n) throw this.error(start, `a field id must be in 1..32767, found ${start.value}`);
        id = Number(start.value);
        this.next();
        this.next();
      } else {
        id = implicit--;
      }
      let requiredness: Requiredness = "default";
      if (this.isWord("required") || this.isWord("optional")) requiredness = this.next().text as Requiredness;
      const type = this.type();
      if (this.isPunct("&")) this.next(); // a C++ reference marker: no meaning on the wire
      const name = this.name(`a field name in ${what}`);
      let defaultValue: ConstValue | undefined;
      if (this.isPunct("=")) {
        this.next();
        defaultValue = this.constValue();
      }
      while (this.isWord("xsd_optional") || this.isWord("xsd_nillable")) this.next();
      if (this.isWord("xsd_attrs")) {
        this.next();
        this.expectPunct("{");
        this.fields("}", "xsd_attrs");
      }
      fields.push({ id, requiredness, type, name: name.text, defaultValue, annotations: this.annotations(), doc: start.doc, loc: name.loc });
      this.separator();
    }
    this.next();
    return fields;
  }

  private function(): ThriftFunction {
    const start = this.peek();
    let oneway = false;
    if (this.isWord("oneway")) {
      this.next();
      oneway = true;
    }
    let returns: ThriftType | undefined;
    if (this.isWord("void")) this.next();
    else returns = this.type();
    const name = this.name("the function's name");
    this.expectPunct("(");
    const params = this.fields(")", `the parameters of ${name.text}`);
    let throws: ThriftField[] = [];
    if (this.isWord("throws")) {
      this.next();
      this.expectPunct("(");
      throws = this.fields(")", `the exceptions of ${name.text}`);
    }
    return { name: name.text, oneway, returns, params, throws, annotations: this.annotations(), doc: start.doc, loc: name.loc };
  }

  /** A field type: a base type, list/set/map, or a name. */
  private type(): ThriftType {
    const t = this.expectId("a type");
    if (BASE_TYPES.has(t.text)) return { kind: "base", name: t.text as ThriftBaseType, annotations: this.annotations() };
    if (t.text === "list" || t.text === "set" || t.text === "map") {
      if (t.text !== "list") this.cppType();
      this.expectPunct("<");
      const first = this.type();
      if (t.text === "map") {
        this.expectPunct(",");
        const value = this.type();
        this.expectPunct(">");
        return { kind: "map", key: first, value, annotations: this.annotations() };
      }
      this.expectPunct(">");
      if (t.text === "list") this.cppType();
      return { kind: t.text, element: first, annotations: this.annotations() };
    }
    if (t.text === "slist") throw this.error(t, "slist is deprecated and not supported; use string");
    if (KEYWORDS.has(t.text)) throw this.error(t, `expected a type, found the keyword ${t.text}`);
    return { kind: "named", name: t.text, loc: t.loc, annotations: this.annotations() };
  }

  private cppType(): void {
    if (!this.isWord("cpp_type")) return;
    this.next();
    this.expectString("the C++ type");
  }

  private constValue(): ConstValue {
    const t = this.next();
    switch (t.kind) {
      case "int":
      case "double":
      case "string":
        return { kind: t.kind, value: t.value, loc: t.loc } as ConstValue;
      case "id":
        return { kind: "identifier", name: t.text, loc: t.loc };
      case "punct":
        if (t.text === "[") {
          const items: ConstValue[] = [];
          while (!this.closes("]")) {
            items.push(this.constValue());
            this.separator();
          }
          this.next();
          return { kind: "list", items, loc: t.loc };
        }
        if (t.text === "{") {
          const entries: [ConstValue, ConstValue][] = [];
          while (!this.closes("}")) {
            const key = this.constValue();
            this.expectPunct(":");
            entries.push([key, this.constValue()]);
            this.separator();
          }
          this.next();
          return { kind: "map", entries, loc: t.loc };
        }
    }
    throw this.error(t, `expected a constant value, found ${describe(t)}`);
  }

  /** `( key = "value", key2, ... )` if present: a key without a value means "1", as in Apache Thrift. */
  private annotations(): Annotations {
    if (!this.isPunct("(")) return {};
    this.next();
    const out: Record<string, string> = {};
    while (!this.closes(")")) {
      const key = this.expectId("an annotation name");
      let value = "1";
      if (this.isPunct("=")) {
        this.next();
        value = this.expectString(`the value of annotation ${key.text}`).value;
      }
      out[key.text] = value;
      this.separator();
    }
    this.next();
    return out;
  }

  private separator(): void {
    if (this.isPunct(",") || this.isPunct(";")) this.next();
  }

  /**
   * A name being declared. A type's name (`typeName`) may not be a keyword or a base type; other
   * names (fields, functions, constants, enum values) may be any identifier, since where they
   * stand nothing else could (Apache Thrift reads `1: list<string> list` and `1: i8 i8` too).
   */
  private name(what: string, typeName = false): Token {
    const t = this.expectId(what);
    if (typeName && (KEYWORDS.has(t.text) || BASE_TYPES.has(t.text))) throw this.error(t, `${t.text} is a Thrift keyword and cannot be used as ${what}`);
    if (t.text.includes(".")) throw this.error(t, `${what} cannot contain a dot: ${t.text}`);
    return t;
  }

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.pos + ahead, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== "eof") this.pos++;
    return t;
  }

  private isWord(word: string): boolean {
    const t = this.peek();
    return t.kind === "id" && t.text === word;
  }

  private isPunct(p: string): boolean {
    const t = this.peek();
    return t.kind === "punct" && t.text === p;
  }

  /** Whether the list being read ends here (at `close`); the end of the file is an error. */
  private closes(close: string): boolean {
    const t = this.peek();
    if (t.kind === "eof") throw this.error(t, `unexpected end of the file: expected ${close}`);
    return t.kind === "punct" && t.text === close;
  }

  private expectPunct(p: string): Token {
    const t = this.next();
    if (t.kind !== "punct" || t.text !== p) throw this.error(t, `expected ${p}, found ${describe(t)}`);
    return t;
  }

  private expectId(what: string): Token & { kind: "id" } {
    const t = this.next();
    if (t.kind !== "id") throw this.error(t, `expected ${what}, found ${describe(t)}`);
    return t;
  }

  private expectString(what: string): Token & { kind: "string" } {
    const t = this.next();
    if (t.kind !== "string") throw this.error(t, `expected ${what} (a string literal), found ${describe(t)}`);
    return t;
  }

  private error(t: Token, detail: string): IdlError {
    return new IdlError(this.file, t.loc.line, t.loc.column, detail);
  }
}

function describe(t: Token): string {
  if (t.kind === "eof") return "the end of the file";
  if (t.kind === "string") return `the string ${t.text}`;
  return `"${t.text}"`;
}
