/**
 * Per-call objects stay in the young generation after a burst: V8 may decide, from one
 * collection that finds most objects of an object literal alive, to create every later object of
 * that literal in the old generation for the life of the process, which halved a server's speed
 * (docs/profile.md, "Sixth pass"). The runtime's per-call records and generated messages are
 * made by `new`, which V8 never pretenures. The fixture forces the condition in a child process
 * (V8 flags) and reports what it found.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const FIXTURE = fileURLToPath(new URL("./pretenuring-fixture.ts", import.meta.url));

function runFixture(): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ["--max-semi-space-size=1", "--expose-gc", "--allow-natives-syntax", "--conditions=meridian-source", "--import", "tsx", FIXTURE];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const guard = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the fixture did not exit: ${out}${err}`));
    }, 60_000);
    child.on("exit", (code) => {
      clearTimeout(guard);
      if (code === 0) resolve(out);
      else reject(new Error(`the fixture exited with ${code}: ${out}${err}`));
    });
  });
}

describe("pretenuring", () => {
  it("pretenuring - after bursts held across collections, every per-call object of client and server is still born young", async () => {
    const result = JSON.parse((await runFixture()).trim().split("\n").pop()!) as { old: Record<string, number>; controlPretenured: boolean };
    // The bursts did make V8 pretenure a literal that lives as long as a call...
    expect(result.controlPretenured).toBe(true);
    // ...and none of the runtime's objects, nor the messages, were made in the old generation.
    expect(result.old).toEqual({});
  }, 90_000);
});
