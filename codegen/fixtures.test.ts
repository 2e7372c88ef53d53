import { afterAll, describe, expect, it } from "vitest";
import { GENERATED_HEADER, REPO_ROOT, diffGenerated, filesUnder, generateAll, ownedDirs, targets, writeAll } from "./regen.js";
import { removeTestDirs, testWorkDir } from "./test-harness.js";

afterAll(removeTestDirs);

const fresh = generateAll();

describe("fixtures - committed generated code", () => {
  it("fixtures - regenerating produces no diff (run `npm run gen:fixtures` after changing the generator or a .proto)", () => {
    const diff = diffGenerated(REPO_ROOT, fresh);
    expect(diff.stale, "stale or missing generated files").toEqual([]);
    expect(diff.extra, "files in generated directories that the generator does not produce").toEqual([]);
    expect(diff.unowned, "generated files no entry of TARGETS in codegen/regen.ts produces: add their directory there").toEqual([]);
  });

  it("fixtures - every target produces files, examples' gen/ directories included", () => {
    for (const t of targets()) expect([...fresh.keys()].some((f) => f.startsWith(`${t.out}/`)), t.out).toBe(true);
    for (const dir of ["runtime/registry/embedded/gen", "test/registry/gen", "test/rpc/gen", "test/codec/gen", "test/codec/gen-number"]) {
      expect(ownedDirs()).toContain(dir);
    }
    const tmp = testWorkDir("regen");
    writeAll(tmp, new Map([["examples/demo/proto/demo.proto", 'syntax = "proto3";\n']]));
    expect(targets(tmp).some((t) => t.out.startsWith("examples/"))).toBe(false); // no gen/ yet: not generated
    writeAll(tmp, new Map([["examples/demo/gen/demo.ts", ""]]));
    expect(targets(tmp).filter((t) => t.out.startsWith("examples/"))).toEqual([{ out: "examples/demo/gen", include: "examples/demo/proto", int64: "bigint" }]);
  });

  it("fixtures - a stale, missing, extra or unowned generated file is reported", () => {
    const tmp = testWorkDir("regen");
    writeAll(tmp, fresh);
    expect(diffGenerated(tmp, fresh)).toEqual({ stale: [], extra: [], unowned: [] });
    const files = new Map(fresh);
    files.set("test/rpc/gen/echo.ts", `${fresh.get("test/rpc/gen/echo.ts")}// edited\n`);
    files.delete("test/registry/gen/accounts.ts");
    files.set("runtime/registry/embedded/gen/old.ts", "export {};\n");
    files.set("examples/demo/gen/demo.ts", `${GENERATED_HEADER}0.0.0 from demo.proto. DO NOT EDIT.\n`);
    writeAll(tmp, files);
    expect(diffGenerated(tmp, fresh)).toEqual({
      stale: ["test/registry/gen/accounts.ts", "test/rpc/gen/echo.ts"],
      extra: ["runtime/registry/embedded/gen/old.ts"],
      unowned: ["examples/demo/gen/demo.ts"],
    });
    expect(diffGenerated(tmp, fresh, ["test/rpc/gen"])).toEqual({ stale: ["test/rpc/gen/echo.ts"], extra: [], unowned: [] });
  });

  it("fixtures - regen writes each owned directory afresh", () => {
    const tmp = testWorkDir("regen");
    writeAll(tmp, new Map([["test/rpc/gen/old.ts", "export {};\n"]]));
    writeAll(tmp, fresh);
    expect(filesUnder(tmp, "test/rpc/gen")).toEqual(["test/rpc/gen/echo.ts"]);
  });
});
