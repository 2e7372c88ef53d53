/**
 * The generated code under test/codec/gen and test/codec/gen-number is committed; this fails when
 * regenerating it (`npm run gen:fixtures`, codegen/regen.ts) would change it, so fixtures never
 * drift from the generator (protobuf-es diffcheck). codegen/fixtures.test.ts checks every other
 * generated directory the same way.
 */
import { describe, expect, it } from "vitest";
import { diffGenerated, generateAll, REPO_ROOT } from "../../codegen/regen.js";

describe("regen", () => {
  it("regen - committed generated code matches a fresh run of the generator", () => {
    const diff = diffGenerated(REPO_ROOT, generateAll(), ["test/codec/gen", "test/codec/gen-number"]);
    expect(diff.stale, "stale: run `npm run gen:fixtures`").toEqual([]);
    expect(diff.extra, "not generated: remove them or run `npm run gen:fixtures`").toEqual([]);
  }, 60_000);
});
