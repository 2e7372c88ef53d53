/**
 * The Thrift interop service (test/thrift/interop/interop.thrift) on Meridian's side: its
 * descriptor loaded from the IDL at run time, handlers that behave as peer.py's do, a fully
 * populated `Everything`, the JSON form peer.py reads and prints (test/thrift/interop/README.md),
 * and the Python peer itself as a child process.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Code, RpcError, type CallContext } from "meridian-rpc";
import { loadThriftService } from "meridian-rpc/generic";

export const INTEROP_DIR = fileURLToPath(new URL("../thrift/interop/", import.meta.url));
export const PEER = `${INTEROP_DIR}peer.py`;
/** Debian's interpreter, which has python3-thrift (a pyenv python3 earlier on PATH may not). */
export const PYTHON = "/usr/bin/python3";

/** The service as `loadThriftService` describes it at run time (the generated one is gen-ts/interop.ts). */
const loaded = loadThriftService(`${INTEROP_DIR}interop.thrift`, "InteropService");
export const InteropService = loaded.service;
export const NotFound = loaded.exceptions.get("interop.NotFound")!;
export const Invalid = loaded.exceptions.get("interop.Invalid")!;

/** Whether the Python peer can run here; with CI=true the tests fail rather than skip without it. */
export function pythonThriftAvailable(): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import thrift, six"], { stdio: "ignore" }).status === 0;
}

/** A value of every field kind, as Meridian's codec reads and writes it. */
export function everything(): Record<string, unknown> {
  return {
    flag: true,
    tiny: -7,
    small: 32000,
    medium: -2_000_000_000,
    big: -9223372036854775808n,
    ratio: -0.5,
    text: "héllo, 世界 🌍",
    blob: new Uint8Array([0, 1, 2, 255]),
    numbers: [1, -1, 2147483647],
    tags: ["a", "b"],
    counts: new Map([
      ["x", 1n],
      ["y", 9007199254740993n],
    ]),
    pointsById: new Map([
      [-5, { x: 0, y: 0 }],
      [1, { x: 1, y: 2 }],
    ]),
    origin: { x: 3, y: 4 },
    chain: { label: "a", next: { label: "b", next: { label: "c" } } },
    color: 10,
    shape: { radius: 2.5 },
    id: "id-1",
    note: "a note",
    limit: 9,
    greeting: "hi",
    createdAt: 1733443200000n,
    path: [
      { x: 1, y: 1 },
      { x: 2, y: 2 },
    ],
    palette: [1, 2, 10],
    groups: new Map([["g", ["m", "n"]]]),
    extra: new Uint8Array([9]),
    defaultColor: 1,
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** `Everything` in peer.py's JSON form. */
export function everythingToJson(v: Record<string, unknown>): Json {
  const out: Record<string, Json> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toJson(x);
  return out;
}

function toJson(x: unknown): Json {
  if (typeof x === "bigint") return x.toString();
  if (typeof x === "number") return Number.isNaN(x) ? "NaN" : x === Infinity ? "Infinity" : x === -Infinity ? "-Infinity" : x;
  if (x instanceof Uint8Array) return Buffer.from(x).toString("base64");
  if (Array.isArray(x)) return x.map(toJson);
  if (x instanceof Map) {
    const entries = [...x.entries()];
    if (entries.every(([k]) => typeof k === "string")) return Object.fromEntries(entries.map(([k, val]) => [k, toJson(val)])) as Json;
    return entries.map(([k, val]) => [toJson(k), toJson(val)]);
  }
  if (typeof x === "object" && x !== null) return Object.fromEntries(Object.entries(x).map(([k, val]) => [k, toJson(val)])) as Json;
  return x as Json;
}

/** Handlers of the interop service that behave as peer.py's, recording what they saw. */
export function interopHandlers() {
  const seen = { headers: {} as Record<string, string>, deadlines: [] as (number | undefined)[], lastNotified: "" };
  const handlers = {
    ping: () => "pong",
    echo: ({ value }: Record<string, unknown>) => value,
    add: ({ a, b }: Record<string, unknown>) => BigInt(a as number) + (b as bigint),
    fail: ({ why, code }: Record<string, unknown>) => {
      if (code === 1) throw new NotFound({ message: why });
      if (code === 2) throw new Invalid({ reason: why, code });
      throw new RpcError(Code.FAILED_PRECONDITION, `undeclared: ${String(why)}`);
    },
    headers: (_: unknown, ctx: CallContext) => {
      seen.headers = { ...ctx.headers };
      ctx.responseHeaders["x-served-region"] = "ts";
      return new Map(Object.entries(ctx.headers));
    },
    notify: ({ event }: Record<string, unknown>) => {
      seen.lastNotified = event as string;
    },
    lastNotified: () => seen.lastNotified,
    sleep: async ({ ms }: Record<string, unknown>, ctx: CallContext) => {
      seen.deadlines.push(ctx.deadline);
      await new Promise((resolve) => setTimeout(resolve, ms as number));
    },
  };
  return { handlers, seen };
}

/** A running Python peer server; it exits when its stdin closes (this process ended) or on stop(). */
export interface PythonServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts `peer.py server` on an ephemeral 127.0.0.1 port. */
export async function startPythonServer(transport: "header" | "framed", protocol: "binary" | "compact"): Promise<PythonServer> {
  const child = spawn(PYTHON, [PEER, "server", "--transport", transport, "--protocol", protocol, "--port", "0"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`peer.py server did not start in 10 s: ${stderr}`)), 10_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`peer.py server exited with ${code}: ${stderr}`));
    });
  });
  return { port, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin!.end();
  });
}

/** Runs one `peer.py client` case against 127.0.0.1:`port` and returns what it printed. */
export async function pythonClient(
  port: number,
  transport: "header" | "framed",
  protocol: "binary" | "compact",
  name: string,
  arg?: Json,
): Promise<{ result?: Json; error?: { type: string; message: string; fields: Record<string, Json> }; responseHeaders?: Json }> {
  const args = [PEER, "client", "--port", String(port), "--transport", transport, "--protocol", protocol, "--case", name, "--timeout-ms", "10000"];
  if (arg !== undefined) args.push("--json", JSON.stringify(arg));
  const child = spawn(PYTHON, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  if (code !== 0) throw new Error(`peer.py client ${name} exited with ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").pop()!);
}
