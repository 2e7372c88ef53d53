/**
 * The generic-call case of the codec benchmark: what it costs to go without generated code.
 *
 * - "meridian dynamic": the codecs ProtoSchema compiles at run time from proto/feed.proto
 *   (runtime/generic), on the same messages as the generated "meridian" rows (int64 as bigint),
 *   with the same `encode`, `encodeTo` and `view` rows.
 * - "meridian generic JSON": a generic call's whole conversion, JSON in and out: encode is
 *   fromJson + encode, decode is decode + toJson (canonical protobuf JSON, what
 *   createGenericClient and `meridian call` do per message).
 *
 * run.ts adds these peers to the run, so their rows come with the ratios to protobufjs
 * (reflection: loadSync + lookupType), next to the generated codecs' rows. Only these and their
 * references: `npm run bench:codec -- --filter "meridian|protobufjs"` (add `--quick` for a
 * seconds-long run).
 */
import { fileURLToPath } from "node:url";
import { Writer } from "meridian-rpc/runtime";
import { ProtoSchema, type JsonValue } from "meridian-rpc/generic";
import { TYPE_NAMES, withBigInt, type Fixture } from "./data.js";
import { readTwo, type Peer, type Task } from "./peers.js";

const PROTO_DIR = fileURLToPath(new URL("./proto", import.meta.url));

/** The compiled-codec peer and the JSON peer, both from one schema loaded now. */
export function genericPeers(): Peer[] {
  const schema = ProtoSchema.load({ proto: [`${PROTO_DIR}/feed.proto`], includeDirs: [PROTO_DIR] });
  const writer = new Writer();

  const dynamic: Peer = {
    name: "meridian dynamic",
    int64: "bigint",
    note:
      "runtime/generic: codecs compiled at run time from proto/feed.proto by ProtoSchema (same bytes and " +
      "objects as the generated ones); encode, encodeTo (one Writer, reset() before each call), view",
    bind(fixture: Fixture) {
      const codec = schema.codec(TYPE_NAMES[fixture.kind]);
      const message = codec.create(withBigInt(fixture) as object);
      const bytes = Buffer.from(codec.encode(message));
      const read = readTwo(fixture.kind);
      const tasks: Task[] = [
        { op: "encode", label: "meridian dynamic", run: () => codec.encode(message) },
        {
          op: "encode",
          label: "meridian dynamic encodeTo",
          run: () => {
            writer.reset();
            codec.encodeTo(message, writer);
            return writer.finish();
          },
        },
        { op: "decode", label: "meridian dynamic", run: () => codec.decode(bytes) },
        { op: "view", label: "meridian dynamic", run: () => read(codec.view(bytes)) },
      ];
      return { library: "meridian dynamic", message, bytes, decode: (b) => codec.decode(b), tasks };
    },
  };

  const json: Peer = {
    name: "meridian generic JSON",
    int64: "bigint",
    note:
      "runtime/generic: a generic call's conversions: encode = fromJson + encode, decode = decode + toJson " +
      "(canonical protobuf JSON: int64 as strings, bytes as base64); view = decode + toJson, then the two reads",
    bind(fixture: Fixture) {
      const type = TYPE_NAMES[fixture.kind];
      const codec = schema.codec(type);
      const message: JsonValue = schema.toJson(type, codec.create(withBigInt(fixture) as object));
      const toBytes = (j: JsonValue): Uint8Array => codec.encode(schema.fromJson(type, j));
      const toJson = (b: Uint8Array): JsonValue => schema.toJson(type, codec.decode(b));
      const bytes = Buffer.from(toBytes(message));
      const read = readTwo(fixture.kind);
      const tasks: Task[] = [
        { op: "encode", label: "meridian generic JSON", run: () => toBytes(message) },
        { op: "decode", label: "meridian generic JSON", run: () => toJson(bytes) },
        { op: "view", label: "meridian generic JSON", run: () => read(toJson(bytes)) },
      ];
      return { library: "meridian generic JSON", message, bytes, decode: toJson, tasks };
    },
  };

  return [dynamic, json];
}
