/**
 * parseFrame reuses the headers of a connection's last string info block while its bytes repeat
 * (FrameHead.lastBlock). A head that has parsed other frames before must read every frame as a
 * fresh head does: the same headers, service, reset flag and timeouts, and the same error for a
 * damaged frame, whatever came before it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Writer } from "meridian-rpc/runtime";
import type { Headers } from "meridian-rpc";
import {
  FrameHead,
  IntKey,
  StrKey,
  beginFrame,
  endFrame,
  endHeader,
  frameLimits,
  MAX_REUSED_BLOCK,
  parseFrame,
  writeIntInfo,
  writeStringInfo,
  MessageType,
  writeKitexMeta,
} from "../../transports/tcp/wire.js";

const LIMITS = frameLimits({ maxHeaderCount: 3 });
const WIDE = frameLimits({ maxHeaderCount: 0xffff });

function frame(headers: Headers, service: string, timeoutMs: number | undefined): Uint8Array {
  const w = new Writer(256);
  const mark = beginFrame(w, 1);
  let n = writeStringInfo(w, headers, StrKey.service, service);
  if (timeoutMs !== undefined) n += writeIntInfo(w, [[IntKey.RPCTimeout, String(timeoutMs)]]);
  endHeader(w, mark, n, WIDE);
  writeKitexMeta(w, MessageType.Call, "Echo", 1);
  endFrame(w, mark, WIDE);
  return w.finish().slice();
}

/** What parsing a frame gives: the parts a caller reads, or the error. */
function outcome(bytes: Uint8Array, head: FrameHead): unknown {
  try {
    const h = parseFrame(bytes, 0, bytes.length, LIMITS, head);
    return { headers: { ...h.headers }, service: h.service, reset: h.reset, timeoutMs: h.timeoutMs, payloadStart: h.payloadStart };
  } catch (e) {
    return { error: String(e), code: (e as { code?: string }).code };
  }
}

// A few values, so that sequences repeat blocks often.
const key = fc.constantFrom("x-region-id", "x-consistency-level", "traceparent", "crrst", "k");
const value = fc.constantFrom("cn-north", "eventual", "", "00-abc-01", "é");
const frameArb = fc.record({
  headers: fc.dictionary(key, value, { maxKeys: 4 }),
  service: fc.constantFrom("bench.Echo", "", "a.B"),
  timeoutMs: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: undefined }),
  /** Damage: cut the frame at this share of its length, or flip a byte there. */
  damage: fc.option(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), kind: fc.constantFrom("cut", "flip") }), { nil: undefined }),
});

describe("tcp frame head", () => {
  it("frame head - a head reused across frames parses each one as a fresh head does, damaged frames included", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 40 }), (frames) => {
        const shared = new FrameHead();
        for (const f of frames) {
          let bytes = frame(f.headers, f.service, f.timeoutMs);
          if (f.damage !== undefined) {
            const at = Math.min(bytes.length - 1, Math.floor(f.damage.at * bytes.length));
            if (f.damage.kind === "cut") bytes = bytes.slice(0, at);
            else {
              bytes = bytes.slice();
              bytes[at] = bytes[at]! ^ 0xff;
            }
          }
          expect(outcome(bytes, shared)).toEqual(outcome(bytes, new FrameHead()));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("frame head - headers handed out are the frame's own: changing them does not change the next frame's", () => {
    const head = new FrameHead();
    const bytes = frame({ "x-region-id": "cn-north" }, "bench.Echo", 100);
    for (let i = 0; i < 3; i++) {
      const headers = parseFrame(bytes, 0, bytes.length, LIMITS, head).headers;
      expect(headers).toEqual({ "x-region-id": "cn-north" });
      headers["x-region-id"] = "changed";
      headers.extra = "1";
    }
  });

  it("frame head - a string block over MAX_REUSED_BLOCK bytes is not kept (a connection holds at most that of a peer's headers)", () => {
    const head = new FrameHead();
    const wide = frameLimits({ maxHeaderCount: 8, maxHeaderBytes: 0x3fffc });
    const small = frame({ a: "x" }, "bench.Echo", undefined);
    parseFrame(small, 0, small.length, wide, head);
    expect(head.lastBlock!.length).toBeLessThanOrEqual(MAX_REUSED_BLOCK);
    const big = frame({ a: "x".repeat(60_000) }, "bench.Echo", undefined);
    for (let i = 0; i < 3; i++) expect(parseFrame(big, 0, big.length, wide, head).headers.a).toHaveLength(60_000);
    expect(head.lastBlock!.length).toBeLessThanOrEqual(MAX_REUSED_BLOCK);
  });

  it("frame head - the kept block is a copy: it does not hold the socket chunk the frame came in", () => {
    const head = new FrameHead();
    const bytes = frame({ "x-region-id": "cn-north" }, "bench.Echo", 100);
    const chunk = Buffer.alloc(64 * 1024); // a socket read: one ArrayBuffer of its own
    chunk.set(bytes, 1001);
    parseFrame(chunk, 1001, 1001 + bytes.length, LIMITS, head);
    expect(head.lastBlock!.buffer.byteLength).toBeLessThanOrEqual(MAX_REUSED_BLOCK);
    expect(head.lastBlock!.buffer).not.toBe(chunk.buffer);
  });

  it("frame head - a block that differs from the kept one in any byte is read afresh, at any offset and length", () => {
    // Values of every length mod 4, changed at every position, in frames at odd offsets of one
    // chunk (as frames sit in a socket read), so that the comparison's words and its tail both count.
    for (const base of ["cn-north", "cn-north1", "cn-north12", "cn-north123"]) {
      const head = new FrameHead();
      const chunk = Buffer.alloc(8192);
      let at = 3;
      const parse = (value: string): Headers => {
        const bytes = frame({ "x-region-id": value }, "bench.Echo", undefined);
        chunk.set(bytes, at);
        const headers = parseFrame(chunk, at, at + bytes.length, LIMITS, head).headers;
        at = at + bytes.length + 1 > chunk.length - 200 ? 3 : at + bytes.length + 1;
        return headers;
      };
      for (let i = 0; i < base.length; i++) {
        const changed = base.slice(0, i) + String.fromCharCode(base.charCodeAt(i) ^ 1) + base.slice(i + 1);
        expect(parse(base)).toEqual({ "x-region-id": base });
        expect(parse(base)).toEqual({ "x-region-id": base });
        expect(parse(changed)).toEqual({ "x-region-id": changed });
      }
    }
  });

  it("frame head - blocks that change every frame are read right, also when the last one comes back", () => {
    const head = new FrameHead();
    for (let i = 0; i < 300; i++) {
      const headers: Headers = i % 97 === 0 ? { a: "same" } : { a: "same", traceparent: `t-${i}` };
      const bytes = frame(headers, "bench.Echo", undefined);
      expect(parseFrame(bytes, 0, bytes.length, LIMITS, head).headers).toEqual(headers);
    }
  });
});
