/**
 * Property tests: for every message type of test/protos, random messages (built generically from
 * protobufjs's reflection of the same .proto files) must encode byte for byte like protobufjs,
 * decode what protobufjs encodes, be decoded by protobufjs, round-trip, and read the same through
 * views as through eager decoding, and encode the same into a small slab after a prefix (slab
 * ends at every kind of write). Both generated variants run: int64 as bigint, and
 * `--int64 number` (with 64-bit values a double holds exactly).
 */
import fc from "fast-check";
import type protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { Writer, type AnyMessageCodec } from "meridian-rpc/runtime";
import {
  allMessageTypes,
  expectedView,
  GEN_DIRS,
  hex,
  type Int64Mode,
  loadCodecs,
  loadSchema,
  materializeView,
  normMeridian,
  normPbjs,
  type Sample,
  sampleArb,
  typeName,
} from "./helpers.js";

/** Runs per message type and variant; CODEC_RUNS scales it for a longer local soak. */
const RUNS = Number(process.env.CODEC_RUNS ?? 60);
const MAX_DEPTH = 3;

const root = loadSchema();
const types = allMessageTypes(root);

/** Checks one sample against every property; labels say which failed. */
function check(type: protobuf.Type, codec: AnyMessageCodec, s: Sample, mode: Int64Mode, slab: number, prefix: number): void {
  const theirs = type.encode(s.pbjs).finish();
  const ours = codec.encode(s.meridian);
  expect(hex(ours), "(a) encode is byte-identical to protobufjs").toBe(hex(theirs));

  // A small slab, after a prefix: the message crosses slab ends at every kind of write.
  const w = new Writer(slab);
  w.raw(new Uint8Array(prefix).fill(0xaa));
  codec.encodeTo(s.meridian, w);
  expect(hex(w.finish().subarray(prefix)), `(f) encodeTo a ${slab}-byte slab after ${prefix} bytes`).toBe(hex(theirs));

  const decoded = codec.decode(theirs) as Record<string, unknown>;
  expect(normMeridian(decoded), "(b) decode of protobufjs bytes").toEqual(normMeridian(s.meridian));

  const back = type.decode(ours) as unknown as Record<string, unknown>;
  expect(normPbjs(type, back), "(c) protobufjs decode of Meridian bytes").toEqual(normPbjs(type, s.pbjs));

  expect(hex(codec.encode(decoded)), "(d) encode(decode(x)) is x").toBe(hex(theirs));

  const view = materializeView(type, codec.view(theirs) as Record<string, unknown>);
  expect(normMeridian(view), "(e) view getters read what decode reads").toEqual(normMeridian(expectedView(type, decoded, mode), true));
}

for (const mode of ["bigint", "number"] as const) {
  const registry = await loadCodecs(GEN_DIRS[mode]);
  describe(`roundtrip (int64 ${mode})`, () => {
    for (const type of types) {
      const name = typeName(type);
      const codec = registry.get(name);
      // Well-known types are covered when the generator emits them as ordinary messages.
      const run = codec === undefined && name.startsWith("google.protobuf.") ? it.skip : it;
      run(`${name} - encode, decode and view agree with protobufjs`, () => {
        expect(codec, `generated codec of ${name}`).toBeDefined();
        fc.assert(
          fc.property(
            sampleArb(type, { mode, maxDepth: MAX_DEPTH, unknownFields: true }),
            fc.integer({ min: 1, max: 96 }),
            fc.integer({ min: 0, max: 96 }),
            (s, slab, prefix) => check(type, codec!, s, mode, slab, prefix),
          ),
          { numRuns: RUNS },
        );
      });
    }
  });
}
