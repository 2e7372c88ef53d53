/**
 * Kitex's TTHeader with a Thrift Binary payload, byte for byte, as its documentation lays it out
 * (cloudwego.io, "TTHeader": LENGTH, magic 0x1000, flags, sequence id, header size in 4-byte
 * words, protocol id 0 for Thrift Binary, transform count, info blocks, padding; then the strict
 * Binary message), and what the server does with malformed Thrift frames of every kind.
 */
import { connect, type Socket } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "meridian-rpc";
import { DEFAULT_FRAME_LIMITS, FrameError, TcpServerTransport, type Framing } from "meridian-rpc/transports/tcp";
import { DecodeError, Writer, type PayloadProtocol } from "meridian-rpc/runtime";
import { writeThriftEnvelope } from "meridian-rpc/transport";
import { FrameHead, FrameSplitter, endFrame, parseFrame } from "../../transports/tcp/wire.js";
import { beginThriftFrame, parseEnvelope, thriftProtocolOf } from "../../transports/tcp/thrift.js";
import { InteropService, interopHandlers } from "../support/thrift-interop.js";

/** Bytes from lines of hex digits, each followed by `// what they are`. */
const hex = (lines: string): Buffer =>
  Buffer.from(
    lines
      .split("\n")
      .map((l) => l.replace(/\/\/.*$/, ""))
      .join("")
      .replace(/\s+/g, ""),
    "hex",
  );

/** add(a = 2, b = 40) as Kitex sends it: RPCTimeout 500 ms in the int key/values, sequence id 1. */
const KITEX_ADD_CALL = hex(`
  00000038                   // LENGTH: 56 bytes follow
  1000 0000                  // magic, flags
  00000001                   // sequence id
  0003                       // header size: 3 words (12 bytes)
  00 00                      // protocol id 0 (Thrift Binary), no transforms
  10 0001 000c 0003 353030   // int key/values: 1 pair, key 12 (RPCTimeout) = "500"
  80010001 00000003 616464   // strict Binary: version 1 | CALL, name "add"
  00000001                   // sequence id
  08 0001 00000002           // field 1 i32 a = 2
  0a 0002 0000000000000028   // field 2 i64 b = 40
  00                         // stop
`);

/** The reply: no headers (the protocol id and transform count padded to a word), REPLY "add", success = 42. */
const KITEX_ADD_REPLY = hex(`
  00000029                   // LENGTH: 41 bytes follow
  1000 0000                  // magic, flags
  00000001                   // sequence id
  0001                       // header size: 1 word
  00 00 0000                 // Thrift Binary, no transforms, padding
  80010002 00000003 616464   // REPLY "add"
  00000001                   // sequence id
  0a 0000 000000000000002a   // field 0 (success) i64 = 42
  00                         // stop
`);

const { handlers } = interopHandlers();
const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, logger: { error: () => {} } });
server.register(InteropService, handlers);
let port = 0;
beforeAll(async () => {
  const { address } = await server.listen();
  port = Number(address.slice(address.lastIndexOf(":") + 1));
});
afterAll(() => server.close({ graceMs: 0 }));

/** Sends `bytes` on a fresh connection; resolves with the first frame back, or "closed" when the server hangs up first. */
async function exchange(bytes: Buffer): Promise<Buffer | "closed"> {
  const socket: Socket = connect({ host: "127.0.0.1", port });
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  try {
    return await new Promise<Buffer | "closed">((resolve) => {
      const splitter = new FrameSplitter(DEFAULT_FRAME_LIMITS.maxFrameSize, (buf, s, e) => resolve(Buffer.from(buf.subarray(s, e))));
      socket.on("data", (d) => splitter.push(d));
      socket.once("close", () => resolve("closed"));
      socket.once("error", () => resolve("closed"));
      socket.write(bytes);
    });
  } finally {
    socket.destroy();
  }
}

describe("thrift golden bytes - Kitex TTHeader with Thrift Binary", () => {
  it("parses Kitex's call: header, RPCTimeout, envelope", () => {
    const head = parseFrame(KITEX_ADD_CALL, 0, KITEX_ADD_CALL.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect(head).toMatchObject({ framing: "ttheader", seqId: 1, protocolId: 0, timeoutMs: 500, payloadStart: 26 });
    expect(parseEnvelope(KITEX_ADD_CALL, head.payloadStart, head.end, thriftProtocolOf(head.protocolId)!)).toMatchObject({ name: "add", type: 1, seqId: 1, bodyStart: 41 });
  });

  it("answers it with exactly Kitex's reply bytes", async () => {
    const reply = await exchange(KITEX_ADD_CALL);
    expect(reply === "closed" ? reply : reply.toString("hex")).toBe(KITEX_ADD_REPLY.toString("hex"));
  });
});

describe("thrift over tcp - hostile frames", () => {
  const valid = KITEX_ADD_CALL;

  /** add(a = 2, b = 40) as Meridian's client frames it in `framing` and `protocol`, with two headers. */
  const frameOf = (framing: Framing, protocol: PayloadProtocol): Buffer => {
    const w = new Writer(256);
    const mark = beginThriftFrame(w, framing, protocol, 9, { "x-region-id": "eu", "x-consistency-level": "eventual" }, DEFAULT_FRAME_LIMITS, ["isn", "interop.InteropService"]);
    writeThriftEnvelope(w, protocol, 1, "add", 9);
    InteropService.methods.add.input.encodeTo({ a: 2, b: 40n }, w, protocol);
    endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    return Buffer.from(w.finish());
  };
  const FRAMES: [string, Buffer][] = [
    ["Kitex TTHeader, Binary", valid],
    ["Apache THeader, Compact", frameOf("theader", "thrift-compact")],
    ["Apache THeader, Binary", frameOf("theader", "thrift-binary")],
    ["framed, Compact", frameOf("framed", "thrift-compact")],
  ];

  it.each(FRAMES)("parses any mutation of a Thrift frame (%s) into a frame, or a FrameError or DecodeError, never anything else", (_, frame) => {
    const head = parseFrame(frame, 0, frame.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect(parseEnvelope(frame, head.payloadStart, head.end, thriftProtocolOf(head.protocolId)!)).toMatchObject({ name: "add", type: 1 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(frame.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const bytes = Buffer.from(frame);
        for (const [at, b] of edits) bytes[at] = b;
        try {
          const head = parseFrame(bytes, 0, bytes.length, DEFAULT_FRAME_LIMITS, new FrameHead());
          const protocol = thriftProtocolOf(head.protocolId);
          if (protocol === undefined) return;
          const env = parseEnvelope(bytes, head.payloadStart, head.end, protocol);
          InteropService.methods.add.input.decode(bytes.subarray(env.bodyStart, head.end), protocol);
        } catch (e) {
          if (!(e instanceof FrameError) && !(e instanceof DecodeError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses unframed Thrift with a clear error before buffering it", () => {
    const splitter = new FrameSplitter(DEFAULT_FRAME_LIMITS.maxFrameSize, () => undefined);
    const unframed = valid.subarray(26); // the bare Binary message, as TBufferedTransport sends it
    expect(() => splitter.push(Buffer.from(unframed))).toThrow(/unframed Thrift .* is not supported/);
    expect(() => new FrameSplitter(DEFAULT_FRAME_LIMITS.maxFrameSize, () => undefined).push(hex("82 21 01 03 616464 00"))).toThrow(/unframed Thrift/);
  });

  it("closes the connection on a frame that is not Thrift, and keeps serving others", async () => {
    const garbage = Buffer.from(valid);
    garbage.writeUInt32BE(0x80010009, 26); // message type 9
    expect(await exchange(garbage)).toBe("closed");
    const framedJunk = hex("00000009 82 21 01 ffffffff0f 00"); // a framed Compact call whose name's length runs past the frame
    expect(await exchange(framedJunk)).toBe("closed");
    expect(await exchange(KITEX_ADD_CALL)).not.toBe("closed");
  });

  it("answers a request struct that does not decode with a TApplicationException, not a crash", async () => {
    const bad = Buffer.from(valid);
    bad[41] = 0x0b; // field 1 claims to be a string: its length runs past the frame
    const reply = await exchange(bad);
    expect(reply).not.toBe("closed");
    const head = parseFrame(reply as Buffer, 0, (reply as Buffer).length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect(parseEnvelope(reply as Buffer, head.payloadStart, head.end, "thrift-binary")).toMatchObject({ name: "add", type: 3 });
    expect(head.headers["rpc-status"]).toBe("3");
  });
});
