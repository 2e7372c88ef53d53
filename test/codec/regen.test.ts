/**
 * The generated code under test/codec/gen and test/codec/gen-number is committed; this fails when
 * regenerating it (test/codec/regen.sh) would change it, so fixtures never drift from the
 * generator (protobuf-es diffcheck).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GEN_DIRS, listFiles } from "./helpers.js";

const here = import.meta.dirname;
const fresh = mkdtempSync(join(tmpdir(), "meridian-regen-"));
afterAll(() => rmSync(fresh, { recursive: true, force: true }));

describe("regen", () => {
  it("regen - committed generated code matches a fresh run of the generator", () => {
    execFileSync("bash", [join(here, "regen.sh"), fresh], { stdio: "pipe" });
    for (const [variant, dir] of [["gen", GEN_DIRS.bigint], ["gen-number", GEN_DIRS.number]] as const) {
      const committed = listFiles(dir, ".ts");
      expect(listFiles(join(fresh, variant), ".ts"), `${variant}: files`).toEqual(committed);
      for (const f of committed) {
        const same = readFileSync(join(dir, f), "utf8") === readFileSync(join(fresh, variant, f), "utf8");
        expect(same, `${variant}/${f} is stale: run test/codec/regen.sh`).toBe(true);
      }
    }
  }, 60_000);
});
