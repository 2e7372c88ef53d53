/**
 * The libraries of the codec benchmark, each driven the way its users drive it, and bound to the
 * fixtures in their own representation of the messages.
 */
import { existsSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { Packr, pack, unpack } from "msgpackr";
import protobuf from "protobufjs";
import { Writer, type MessageCodec } from "meridian-rpc/runtime";
import { TYPE_NAMES, VIEW_FIELDS, withBigInt, type Fixture, type MessageKind } from "./data.js";
import * as es from "./es/feed_pb.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The operations of the benchmark. */
export type Op = "encode" | "decode" | "view";

/** Every operation, in report order. */
export const OPS: readonly Op[] = ["encode", "decode", "view"];

/** One timed call of the benchmark: does its operation once on the bound fixture. */
export interface Task {
  readonly op: Op;
  /** The row's label: the library, and the variant when a library has several for one op. */
  readonly label: string;
  readonly run: () => unknown;
}

/** A library bound to one fixture: its representation, its bytes, and its timed calls. */
export interface Subject {
  readonly library: string;
  /** The fixture in the library's own representation. */
  readonly message: unknown;
  /** The library's encoding of `message`, copied into a Buffer (what a socket hands a decoder). */
  readonly bytes: Buffer;
  /** Decodes eagerly; the round-trip check compares the result with `message`. */
  decode(bytes: Buffer): unknown;
  readonly tasks: readonly Task[];
}

/** A library of the benchmark, as the run sees it. */
export interface Peer {
  /** Row label, for example "protobufjs". */
  readonly name: string;
  /** How it represents int64/uint64. */
  readonly int64: "number" | "bigint";
  /** A line for the report on how it is configured (representation choices, options). */
  readonly note: string;
  bind(fixture: Fixture): Subject;
}

/** How a peer encodes and decodes one message type. */
interface Codec {
  encode(message: unknown): Uint8Array;
  decode(bytes: Buffer): unknown;
  /** A second encode row: Meridian's encodeTo into a reused Writer. */
  encodeTo?(message: unknown): Uint8Array;
  /** A lazy view (Meridian); peers without one decode in full for the "view" operation. */
  view?(bytes: Buffer): unknown;
}

/** A library as this file describes it: its codec per message kind, its representation of a fixture. */
interface Library {
  readonly name: string;
  readonly int64: Peer["int64"];
  readonly note: string;
  codec(kind: MessageKind): Codec;
  represent(fixture: Fixture): unknown;
}

let blackhole: unknown;

/** The function reading the two fields of the "view" operation of `kind`, so no engine can skip the reads. */
export function readTwo(kind: MessageKind): (m: unknown) => unknown {
  const [first, second] = VIEW_FIELDS[kind];
  return (m) => {
    const o = m as Record<string, unknown>;
    blackhole = o[first];
    return o[second];
  };
}

/** The name a generated module exports a kind's message under: its protobuf name without the package. */
export function exportName(kind: MessageKind): string {
  return TYPE_NAMES[kind].slice(TYPE_NAMES[kind].lastIndexOf(".") + 1);
}

/** The field the last "view" call read first; reading it keeps those reads observable to the engine. */
export function sideEffect(): unknown {
  return blackhole;
}

function peer(lib: Library): Peer {
  return {
    name: lib.name,
    int64: lib.int64,
    note: lib.note,
    bind(fixture) {
      const codec = lib.codec(fixture.kind);
      const message = lib.represent(fixture);
      const bytes = Buffer.from(codec.encode(message));
      const read = readTwo(fixture.kind);
      const tasks: Task[] = [{ op: "encode", label: lib.name, run: () => codec.encode(message) }];
      const { encodeTo, view } = codec;
      if (encodeTo) tasks.push({ op: "encode", label: `${lib.name} encodeTo`, run: () => encodeTo(message) });
      tasks.push({ op: "decode", label: lib.name, run: () => codec.decode(bytes) });
      tasks.push({
        op: "view",
        label: lib.name,
        run: view ? () => read(view(bytes)) : () => read(codec.decode(bytes)),
      });
      return { library: lib.name, message, bytes, decode: (b) => codec.decode(b), tasks };
    },
  };
}

// --- Meridian -------------------------------------------------------------------------------

/** The part of a generated feed.ts module the benchmark uses: a codec per message, by name. */
type MeridianFeedModule = Record<string, MessageCodec<object>>;

/**
 * A peer of Meridian's generated codecs of feed.proto in `file` (bench/codec/gen/feed.ts: int64 as
 * bigint; gen-number/feed.ts: `--int64 number`), or undefined when that file does not exist yet.
 */
export async function meridianPeer(file: string, int64: "bigint" | "number"): Promise<Peer | undefined> {
  if (!existsSync(file)) return undefined;
  const mod = (await import(pathToFileURL(file).href)) as MeridianFeedModule;
  const codecs = Object.fromEntries(Object.keys(TYPE_NAMES).map((k) => [k, mod[exportName(k as MessageKind)]!])) as Record<
    MessageKind,
    MessageCodec<object>
  >;
  const writer = new Writer();
  return peer({
    name: int64 === "bigint" ? "meridian" : "meridian/number",
    int64,
    note:
      `${relative(ROOT, file)}; encode: pooled slab; encodeTo: one Writer, reset() before each call; ` +
      `view: view(bytes) then the two getters`,
    codec: (kind) => {
      const c = codecs[kind];
      return {
        encode: (m) => c.encode(m as object),
        decode: (b) => c.decode(b),
        encodeTo: (m) => {
          writer.reset();
          c.encodeTo(m as object, writer);
          return writer.finish();
        },
        view: (b) => c.view(b),
      };
    },
    represent: (f) => codecs[f.kind].create((int64 === "bigint" ? withBigInt(f) : f.data) as object),
  });
}

// --- protobufjs -----------------------------------------------------------------------------

/**
 * How the protobufjs peer gets numbers for int64: protobufjs picks up the `long` package when it
 * is installed (it is, as its own dependency) and then decodes 64-bit fields to Long objects.
 * Clearing util.Long and calling configure() makes its reader decode them with
 * LongBits#toNumber; it must happen before loadSync, because field defaults are resolved from
 * util.Long at load time. Verified on protobufjs 8 by the round-trip check (numbers, not Longs).
 */
const PROTOBUFJS_INT64 = "protobuf.util.Long = null; protobuf.configure() before loadSync";

function protobufjs(): Library {
  (protobuf.util as { Long: unknown }).Long = null;
  protobuf.configure();
  const root = protobuf.loadSync(fileURLToPath(new URL("./proto/feed.proto", import.meta.url)));
  const types = Object.fromEntries(Object.entries(TYPE_NAMES).map(([k, name]) => [k, root.lookupType(name)])) as Record<
    MessageKind,
    protobuf.Type
  >;
  return {
    name: "protobufjs",
    int64: "number",
    note: `reflection (loadSync, lookupType, encode().finish(), decode); int64 as number: ${PROTOBUFJS_INT64}`,
    codec: (kind) => {
      const t = types[kind];
      return { encode: (m) => t.encode(m as protobuf.Message).finish(), decode: (b) => t.decode(b) };
    },
    represent: (f) => types[f.kind].fromObject(f.data),
  };
}

// --- protobuf-es ----------------------------------------------------------------------------

function protobufEs(): Library {
  const byName = es as unknown as Record<string, DescMessage>;
  const schemas = Object.fromEntries(Object.keys(TYPE_NAMES).map((k) => [k, byName[`${exportName(k as MessageKind)}Schema`]!])) as Record<
    MessageKind,
    DescMessage
  >;
  return {
    name: "protobuf-es",
    int64: "bigint",
    note:
      "@bufbuild/protobuf v2 create/toBinary/fromBinary, code from protoc-gen-es (gen-peers.sh); int64 as " +
      "bigint: v2 has no number representation ([jstype = JS_NUMBER] gives bigint, only JS_STRING changes it)",
    codec: (kind) => {
      const s = schemas[kind];
      return { encode: (m) => toBinary(s, m as never), decode: (b) => fromBinary(s, b) };
    },
    represent: (f) => create(schemas[f.kind], withBigInt(f) as never),
  };
}

// --- msgpackr and JSON ----------------------------------------------------------------------

function msgpackr(): Library {
  return {
    name: "msgpackr",
    int64: "number",
    note: "pack/unpack (maps); bytes as bin",
    codec: () => ({ encode: (m) => pack(m), decode: (b) => unpack(b) }),
    represent: (f) => f.data,
  };
}

function msgpackrRecords(): Library {
  const packr = new Packr({ useRecords: true });
  return {
    name: "msgpackr records",
    int64: "number",
    note: "new Packr({ useRecords: true }): records (structures) shared by pack and unpack; bytes as bin",
    codec: () => ({ encode: (m) => packr.pack(m), decode: (b) => packr.unpack(b) }),
    represent: (f) => f.data,
  };
}

function json(): Library {
  return {
    name: "JSON",
    int64: "number",
    note:
      "Buffer.from(JSON.stringify(m)) / JSON.parse(buf.toString()); bytes fields are base64 strings in its " +
      "representation (as in the proto3 JSON mapping), converted once outside the timed code",
    codec: () => ({
      encode: (m) => Buffer.from(JSON.stringify(m)),
      decode: (b) => JSON.parse(b.toString()) as unknown,
    }),
    represent: (f) => {
      const base64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
      if (f.kind === "feed") return { ...f.data, items: f.data.items.map((v) => ({ ...v, cover: base64(v.cover) })) };
      if (f.kind === "log") return { ...f.data, entries: f.data.entries.map((e) => ({ ...e, payload: base64(e.payload) })) };
      return f.data;
    },
  };
}

/** The baseline every ratio is taken against. */
export const BASELINE = "protobufjs";

/**
 * Every peer of a run, Meridian first. Meridian's gen-number row is absent (and named in
 * `missing`) until the generator has written bench/codec/gen-number/feed.ts.
 */
export async function loadPeers(): Promise<{ peers: Peer[]; missing: string[] }> {
  const missing: string[] = [];
  const found: Peer[] = [];
  for (const [dir, int64] of [["gen", "bigint"], ["gen-number", "number"]] as const) {
    const file = fileURLToPath(new URL(`./${dir}/feed.ts`, import.meta.url));
    const p = await meridianPeer(file, int64);
    if (p) found.push(p);
    else missing.push(relative(ROOT, file));
  }
  const others = [protobufjs(), protobufEs(), msgpackr(), msgpackrRecords(), json()].map(peer);
  return { peers: [...found, ...others], missing };
}
