/**
 * The JSON mapping against a conformant peer: @bufbuild/protobuf (protobuf-es) reading the same
 * .proto files through protoc's descriptors. For random messages of every type, toJson must
 * print what protobuf-es prints for the same bytes (or both refuse), and fromJson must read both
 * printings back to the message. Needs protoc (as the plugin tests do).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileRegistry, fromBinary, fromJson as esFromJson, toJson as esToJson, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ProtoSchema } from "meridian-rpc/generic";
import { declaredMessages, messageArb, REPO } from "./helpers.js";

const RUNS = Number(process.env.GENERIC_RUNS ?? 40);

const protoc = (() => {
  try {
    execFileSync("protoc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

const tmp = mkdtempSync(join(tmpdir(), "meridian-json-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** protoc's descriptors of `files` (with their imports) as a protobuf-es registry. */
function esRegistry(includeDir: string, files: readonly string[]) {
  const out = join(tmp, `${files.join("_").replace(/\W/g, "_")}.pb`);
  execFileSync("protoc", ["--include_imports", `--descriptor_set_out=${out}`, `-I${includeDir}`, "-I/usr/include", ...files], { cwd: includeDir });
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
}

/** JSON equality where numbers that are the same float32 count as equal (0.1 and 0.10000000149011612). */
function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b) || a === b || Math.fround(a) === Math.fround(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

type Outcome = { json: unknown } | { error: string };

function attempt(f: () => unknown): Outcome {
  try {
    return { json: f() };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const SETS = [
  { includeDir: "codegen/testdata", files: ["proto3_all.proto", "proto2_all.proto", "wkt_use.proto", "keywords.proto"] },
  { includeDir: "test/protos", files: ["scalars.proto", "catalog.proto", "legacy.proto", "wkt.proto"] },
  { includeDir: "bench/codec/proto", files: ["feed.proto"] },
];

const suite = protoc ? describe : describe.skip;
if (!protoc) console.warn("skipping the JSON conformance tests: protoc is not installed");

for (const set of SETS) {
  suite(`generic json - conformance with protobuf-es: ${set.includeDir}`, () => {
    const dir = join(REPO, set.includeDir);
    const schema = ProtoSchema.load({ proto: set.files.map((f) => join(dir, f)), includeDirs: [dir] });
    const registry = protoc ? esRegistry(dir, set.files) : undefined;
    for (const m of declaredMessages(schema.files)) {
      it(`generic json - ${m.fullName}: toJson prints what protobuf-es prints; fromJson reads both back`, () => {
        const desc = registry!.getMessage(m.fullName) as DescMessage;
        expect(desc, `protobuf-es knows ${m.fullName}`).toBeDefined();
        const codec = schema.codec(m);
        fc.assert(
          fc.property(
            fc.oneof(
              messageArb(m, { int64: "bigint", maxDepth: 3, unknownFields: false, validWkt: true }).map((v) => ({ v, valid: true })),
              messageArb(m, { int64: "bigint", maxDepth: 3, unknownFields: false }).map((v) => ({ v, valid: false })),
            ),
            ({ v: sample, valid }) => {
              const bytes = codec.encode(sample);
              const msg = codec.decode(bytes);
              const ours = attempt(() => schema.toJson(m, msg));
              const theirs = attempt(() => esToJson(desc, fromBinary(desc, bytes), { registry }));
              if ("error" in ours || "error" in theirs) {
                expect("error" in ours, `both refuse: ours ${JSON.stringify(ours)}, protobuf-es ${JSON.stringify(theirs)}`).toBe("error" in theirs);
                return;
              }
              const show = `\nours:   ${JSON.stringify(ours.json)}\ntheirs: ${JSON.stringify(theirs.json)}`;
              expect(sameJson(ours.json, theirs.json), `toJson${show}`).toBe(true);
              // fromJson reads both printings back to what prints the same.
              expect(sameJson(schema.toJson(m, schema.fromJson(m, ours.json)), ours.json), `fromJson of ours${show}`).toBe(true);
              expect(sameJson(schema.toJson(m, schema.fromJson(m, theirs.json)), ours.json), `fromJson of theirs${show}`).toBe(true);
              // protobuf-es reads ours.
              const esBack = esFromJson(desc, ours.json as never, { registry });
              expect(sameJson(esToJson(desc, esBack, { registry }), theirs.json), `protobuf-es reads ours${show}`).toBe(true);
              // Values JSON holds exactly come back as the same message.
              if (valid) expect(codec.decode(codec.encode(schema.fromJson(m, ours.json)))).toEqual(msg);
            },
          ),
          { numRuns: RUNS },
        );
      });
    }
  });
}
