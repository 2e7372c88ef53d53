/**
 * Compiled codecs against generated ones: the emitter's run-time target (emit/compile.ts) against
 * its ts target, which print the same layout with different names, enum values as numbers,
 * codecs of other units, and the well-known types always bigint. For every message of every
 * .proto file that has committed generated code (codegen/testdata, test/protos, bench
 * feed.proto, the well-known types; every int64 representation generated), random messages must
 * encode to the same bytes, decode (and view) to the same objects, merged messages (encodings one
 * after another) too, and bad input must fail with the same DecodeError.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MessageModel } from "meridian-rpc/codegen";
import { DecodeError, type AnyMessageCodec } from "meridian-rpc";
import { ProtoSchema } from "meridian-rpc/generic";
import { declaredMessages, GENERATED_SETS, loadGenerated, materialize, messageArb, REPO, setFiles } from "./helpers.js";

/** Runs per message type; GENERIC_RUNS scales it for a longer local soak. */
const RUNS = Number(process.env.GENERIC_RUNS ?? 40);

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** What decoding `bytes` gives: the message, or the DecodeError's code, message and path. */
function outcome(codec: AnyMessageCodec, bytes: Uint8Array): unknown {
  try {
    return { ok: codec.decode(bytes) };
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return { error: e.code, message: e.message, path: e.fieldPath() };
  }
}

function viewOutcome(m: MessageModel, codec: AnyMessageCodec, bytes: Uint8Array): unknown {
  try {
    return { ok: materialize(m, codec.view(bytes)) };
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return { error: e.code, message: e.message };
  }
}

/** `bytes` damaged: a byte changed, a tail cut off, or bytes appended. */
const damage = (bytes: Uint8Array) =>
  fc.oneof(
    fc.record({ at: fc.nat(), to: fc.integer({ min: 0, max: 255 }) }).map(({ at, to }) => {
      const out = Uint8Array.from(bytes);
      if (out.length > 0) out[at % out.length] = to;
      return out;
    }),
    fc.nat().map((n) => bytes.subarray(0, bytes.length === 0 ? 0 : n % bytes.length)),
    fc.uint8Array({ minLength: 1, maxLength: 6 }).map((tail) => Uint8Array.from([...bytes, ...tail])),
  );

for (const set of GENERATED_SETS) {
  const schema = ProtoSchema.load({ proto: setFiles(set), includeDirs: [`${REPO}${set.includeDir}`], int64: set.int64 });
  const generated = await loadGenerated(set.genDir);
  const messages = declaredMessages(schema.files);

  describe(`generic codec - ${set.name}`, () => {
    it("generic codec - every message of the set has a generated codec to compare with", () => {
      const missing = messages.filter((m) => !generated.has(m.fullName)).map((m) => m.fullName);
      expect(missing).toEqual([]);
    });

    for (const m of messages) {
      const gen = generated.get(m.fullName);
      if (gen === undefined) continue;
      it(`generic codec - ${m.fullName}: same bytes, same objects, same views, same errors`, () => {
        const dyn = schema.codec(m);
        expect(dyn.typeName).toBe(gen.typeName);
        expect(dyn.create()).toEqual(gen.create());
        const arb = messageArb(m, { int64: set.int64, maxDepth: 3, unknownFields: true });
        fc.assert(
          fc.property(arb, (msg) => {
            const ours = dyn.encode(msg);
            const theirs = gen.encode(msg);
            expect(hex(ours), "encode").toBe(hex(theirs));
            const w = { d: hex(ours) };
            expect(dyn.decode(theirs), `decode of ${w.d}`).toEqual(gen.decode(theirs));
            expect(materialize(m, dyn.view(theirs)), "view").toEqual(materialize(m, gen.view(theirs)));
          }),
          { numRuns: RUNS },
        );
        // Concatenated encodings are one message merged (last scalar wins, lists append, messages
        // and oneof members merge): the non-canonical inputs decoders and views must agree on.
        fc.assert(
          fc.property(fc.array(arb, { minLength: 2, maxLength: 3 }), (msgs) => {
            const parts = msgs.map((x) => Uint8Array.from(gen.encode(x)));
            const merged = Uint8Array.from(parts.flatMap((b) => [...b]));
            expect(outcome(dyn, merged), "decode of merged messages").toEqual(outcome(gen, merged));
            expect(viewOutcome(m, dyn, merged), "view of merged messages").toEqual(viewOutcome(m, gen, merged));
          }),
          { numRuns: RUNS },
        );
        fc.assert(
          fc.property(
            arb.chain((msg) => damage(gen.encode(msg))),
            (bad) => {
              expect(outcome(dyn, bad), "decode of damaged input").toEqual(outcome(gen, bad));
              expect(viewOutcome(m, dyn, bad), "view of damaged input").toEqual(viewOutcome(m, gen, bad));
            },
          ),
          { numRuns: RUNS },
        );
      });
    }
  });
}
