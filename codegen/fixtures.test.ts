import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OWNED_DIRS, REPO_ROOT, generateAll, writeAll } from "./regen.js";
import { removeTestDirs, testWorkDir } from "./test-harness.js";

afterAll(removeTestDirs);

function filesUnder(root: string, dir: string): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p).split("\\").join("/"));
    }
  };
  walk(abs);
  return out.sort();
}

describe("fixtures - committed generated code", () => {
  it("fixtures - regenerating produces no diff (run `npm run gen:fixtures` after changing the generator)", () => {
    const tmp = testWorkDir("regen");
    writeAll(tmp, generateAll());
    const stale: string[] = [];
    for (const dir of OWNED_DIRS) {
      const fresh = filesUnder(tmp, dir);
      const committed = filesUnder(REPO_ROOT, dir);
      expect(committed, `files in ${dir}`).toEqual(fresh);
      for (const f of fresh) {
        if (readFileSync(join(tmp, f), "utf8") !== readFileSync(join(REPO_ROOT, f), "utf8")) stale.push(f);
      }
    }
    expect(stale).toEqual([]);
  });
});
