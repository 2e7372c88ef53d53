/**
 * check-layers - scripts/check-layers.mjs over small repositories in the temp folder: it fails
 * on each kind of violation of the dependency rule, prints where and why, and lets the
 * allowlist hold known ones (and only those).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const SCRIPT = resolve(fileURLToPath(new URL("../../scripts/check-layers.mjs", import.meta.url)));
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** A repository with `files` (path -> content) and a package.json with two entries. */
function repo(files: Record<string, string>, dependencies: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), "meridian-layers-"));
  roots.push(root);
  const manifest = {
    name: "meridian-rpc",
    type: "module",
    dependencies,
    exports: {
      ".": { "meridian-source": "./runtime/api.ts", default: "./dist/runtime/api.js" },
      "./transport": { "meridian-source": "./runtime/transport.ts", default: "./dist/runtime/transport.js" },
    },
  };
  writeFileSync(join(root, "package.json"), JSON.stringify(manifest));
  const base: Record<string, string> = {
    "runtime/codec/writer.ts": "export class Writer {}\n",
    "runtime/rpc/errors.ts": 'import { Writer } from "../codec/writer.js";\nexport class RpcError { w = new Writer(); }\n',
    "runtime/rpc/transport.ts": "export interface ClientTransport { close(): Promise<void> }\n",
    "runtime/api.ts": 'export { RpcError } from "./rpc/errors.js";\n',
    "runtime/transport.ts": 'export type { ClientTransport } from "./rpc/transport.js";\n',
    "transports/tcp/client.ts": 'import { RpcError } from "../../runtime/api.js";\nimport type { ClientTransport } from "../../runtime/transport.js";\nexport const x: ClientTransport | RpcError | undefined = undefined;\n',
    "test/tcp.test.ts": 'import { RpcError } from "meridian-rpc";\nimport { Writer } from "../runtime/codec/writer.js";\nexport { RpcError, Writer };\n',
  };
  for (const [path, content] of Object.entries({ ...base, ...files })) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

function check(root: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, "--root", root, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("check-layers", () => {
  it("check-layers - a tree that keeps the rule passes (tests may import anything)", () => {
    const r = check(repo({}));
    expect(r.out).toContain("no new violation");
    expect(r.status).toBe(0);
  });

  it("check-layers - an upward import, a transport past the runtime's entries, another transport, a cycle and an undeclared package each fail, with file, line and rule", () => {
    const root = repo({
      "runtime/codec/reader.ts": 'import { RpcError } from "../rpc/errors.js";\nexport const r = RpcError;\n',
      "transports/nats/client.ts": 'import { Writer } from "../../runtime/codec/writer.js";\nimport { x } from "../tcp/client.js";\nimport { connect } from "some-nats-client";\nexport { Writer, x, connect };\n',
      "runtime/rpc/a.ts": 'import type { B } from "./b.js";\nexport interface A { b?: B }\n',
      "runtime/rpc/b.ts": 'import type { A } from "./a.js";\nexport interface B { a?: A }\n',
      "runtime/rpc/uses-test.ts": 'import "../../test/tcp.test.js";\n',
    });
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.out).toContain("runtime/codec/reader.ts:1 -> runtime/rpc/errors.ts: runtime/codec imports nothing of ours");
    expect(r.out).toContain("transports/nats/client.ts:1 -> runtime/codec/writer.ts: a transport reaches the runtime through its entries only");
    expect(r.out).toContain("transports/nats/client.ts:2 -> transports/tcp/client.ts: a transport never imports another transport");
    expect(r.out).toContain("transports/nats/client.ts:3 imports some-nats-client, which is not in package.json dependencies or peerDependencies");
    expect(r.out).toContain("cycle: runtime/rpc/a.ts -> runtime/rpc/b.ts -> runtime/rpc/a.ts");
    expect(r.out).toContain("runtime/rpc/uses-test.ts:1 -> test/tcp.test.ts: runtime imports a development file");
  });

  it("check-layers - the allowlist holds known violations (whatever their line), a new one still fails, and fixed ones are reported", () => {
    const root = repo({ "runtime/codec/reader.ts": 'import { RpcError } from "../rpc/errors.js";\nexport const r = RpcError;\n' }, { "some-nats-client": "1" });
    expect(check(root, "--update-allowlist").status).toBe(0);
    const allowed = check(root);
    expect(allowed.status).toBe(0);
    expect(allowed.out).toContain("1 known violation(s)");
    // The known violation moves down a line: still allowed. A new one fails.
    writeFileSync(join(root, "runtime/codec/reader.ts"), '\nimport { RpcError } from "../rpc/errors.js";\nexport const r = RpcError;\n');
    writeFileSync(join(root, "runtime/codec/view.ts"), 'import { RpcError } from "../api.js";\nexport const v = RpcError;\n');
    const fresh = check(root);
    expect(fresh.status).toBe(1);
    expect(fresh.out).toContain("runtime/codec/view.ts:1 -> runtime/api.ts");
    // Both fixed: passes, and says the allowlist line can go.
    writeFileSync(join(root, "runtime/codec/reader.ts"), "export const r = 1;\n");
    rmSync(join(root, "runtime/codec/view.ts"));
    const fixed = check(root);
    expect(fixed.status).toBe(0);
    expect(fixed.out).toContain("allowlist line(s) no longer happen");
  });
});
