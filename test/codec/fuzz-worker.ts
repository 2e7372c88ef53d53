/**
 * The fuzz loop of fuzz.test.ts, run in a worker thread so that a decode that never returns is
 * caught by the test's watchdog instead of hanging the suite. Before each input the worker writes
 * it to shared memory, so the watchdog can report the input a hang is stuck on.
 *
 * For every message type: random bytes, and valid encodings mutated by bit flips, truncation,
 * insertion, deletion and length corruption, go through decode() and through a view with every
 * getter read. The only exception allowed is a well-formed DecodeError. Inputs that decode must
 * re-encode to bytes that decode to the same value, and read the same through the view.
 */
import { isDeepStrictEqual } from "node:util";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import fc from "fast-check";
import { Reader } from "meridian-rpc/runtime";
import {
  allMessageTypes,
  expectedView,
  GEN_DIRS,
  hex,
  type Int64Mode,
  isWellFormedDecodeError,
  loadCodecs,
  loadSchema,
  materializeView,
  normMeridian,
  sampleArb,
  typeName,
} from "./helpers.js";
import { seededRandom } from "../../tools/random/index.js";

/** What the test passes to the worker. */
export interface FuzzJob {
  readonly mode: Int64Mode;
  readonly seed: number;
  /** Inputs per message type, split between random bytes and mutations. */
  readonly perType: number;
  /** Shared memory: [0] input counter, [1] input length, then the input bytes from byte 8. */
  readonly shared: SharedArrayBuffer;
}

/** A broken rule: what was fed, and what happened. */
export interface FuzzFailure {
  readonly type: string;
  readonly api: "decode" | "view" | "re-encode";
  readonly input: string;
  readonly error: string;
}

/** What the worker posts back when done. */
export interface FuzzResult {
  readonly inputs: number;
  readonly decoded: number;
  readonly rejected: number;
  readonly failures: FuzzFailure[];
}

/** Positions of the length prefixes of the top-level length-delimited fields of `b`. */
function lengthPrefixes(b: Uint8Array): number[] {
  const out: number[] = [];
  try {
    const r = new Reader(b);
    while (r.pos < r.end) {
      const t = r.tag();
      if ((t & 7) === 2) out.push(r.pos);
      r.skip(t);
    }
  } catch {
    // A prefix of positions is enough.
  }
  return out;
}

/** One random mutation of a valid encoding. */
function mutate(b: Uint8Array, rnd: () => number): Uint8Array {
  const pick = (n: number): number => Math.floor(rnd() * n);
  const out = Uint8Array.from(b);
  switch (pick(6)) {
    case 0: {
      // Flip one to four bits.
      if (out.length === 0) return Uint8Array.of(pick(256));
      for (let i = 1 + pick(4); i > 0; i--) out[pick(out.length)]! ^= 1 << pick(8);
      return out;
    }
    case 1:
      return out.subarray(0, pick(out.length + 1));
    case 2: {
      // Insert one to eight random bytes.
      const at = pick(out.length + 1);
      const ins = Array.from({ length: 1 + pick(8) }, () => pick(256));
      return Uint8Array.from([...out.subarray(0, at), ...ins, ...out.subarray(at)]);
    }
    case 3: {
      // Delete a run of bytes.
      if (out.length === 0) return out;
      const at = pick(out.length);
      return Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1 + pick(8))]);
    }
    case 4: {
      // Corrupt a length prefix: off by a little, or huge.
      const prefixes = lengthPrefixes(out);
      if (prefixes.length === 0) return mutate(b, rnd);
      const at = prefixes[pick(prefixes.length)]!;
      const choices = [0x00, 0x01, 0x7f, 0x80, 0xff, (out[at]! + 1) & 0xff, (out[at]! - 1) & 0xff];
      out[at] = choices[pick(choices.length)]!;
      return out;
    }
    default: {
      // Overwrite a byte with a value that often means something: a group tag, a wire type 6/7,
      // a continuation bit.
      if (out.length === 0) return Uint8Array.of(0x0b);
      const values = [0x0b, 0x0c, 0x0e, 0x0f, 0x80, 0xff, 0x00, 0x04];
      out[pick(out.length)] = values[pick(values.length)]!;
      return out;
    }
  }
}

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${"code" in e ? ` (code ${String(e.code)}, offset ${String((e as { offset?: unknown }).offset)})` : ""}`;
  return String(e);
}

async function run(job: FuzzJob): Promise<FuzzResult> {
  const root = loadSchema();
  const registry = await loadCodecs(GEN_DIRS[job.mode]);
  const header = new Int32Array(job.shared, 0, 2);
  const body = new Uint8Array(job.shared, 8);
  const rnd = seededRandom(job.seed);
  const failures: FuzzFailure[] = [];
  let inputs = 0;
  let decoded = 0;
  let rejected = 0;

  for (const type of allMessageTypes(root)) {
    const codec = registry.get(typeName(type));
    if (codec === undefined) continue;
    const valid = fc.sample(sampleArb(type, { mode: job.mode, maxDepth: 2, unknownFields: true }), { numRuns: Math.ceil(job.perType / 4), seed: job.seed });
    const cases: Uint8Array[] = [];
    for (const s of valid) {
      const enc = Uint8Array.from(codec.encode(s.meridian));
      for (let k = 0; k < 3; k++) cases.push(mutate(enc, rnd));
    }
    for (const b of fc.sample(fc.uint8Array({ maxLength: 64 }), { numRuns: job.perType - cases.length, seed: job.seed + 1 })) cases.push(b);

    for (const input of cases) {
      inputs++;
      const n = Math.min(input.length, body.length);
      body.set(input.subarray(0, n));
      Atomics.store(header, 1, input.length);
      Atomics.store(header, 0, inputs);
      const fail = (api: FuzzFailure["api"], e: unknown): void => {
        if (failures.length < 20) failures.push({ type: typeName(type), api, input: hex(input), error: describeError(e) });
      };

      let msg: Record<string, unknown> | undefined;
      try {
        msg = codec.decode(input) as Record<string, unknown>;
        decoded++;
      } catch (e) {
        rejected++;
        if (!isWellFormedDecodeError(e, input.length)) fail("decode", e);
      }
      let view: Record<string, unknown> | undefined;
      try {
        view = materializeView(type, codec.view(input) as Record<string, unknown>);
      } catch (e) {
        if (!isWellFormedDecodeError(e, input.length)) fail("view", e);
      }
      if (msg === undefined) continue;
      try {
        const again = codec.decode(Uint8Array.from(codec.encode(msg)));
        if (!isDeepStrictEqual(normMeridian(again), normMeridian(msg))) fail("re-encode", new Error("decode(encode(decoded)) differs from decoded"));
        if (view !== undefined && !isDeepStrictEqual(normMeridian(view), normMeridian(expectedView(type, msg, job.mode), true))) {
          fail("view", new Error("view getters differ from the decoded message"));
        }
      } catch (e) {
        fail("re-encode", e);
      }
    }
  }
  return { inputs, decoded, rejected, failures };
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  run(workerData as FuzzJob).then(
    (result) => port.postMessage({ ok: true, result }),
    (e: unknown) => port.postMessage({ ok: false, error: describeError(e) }),
  );
}
