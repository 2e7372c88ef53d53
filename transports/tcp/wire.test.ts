import { describe, expect, it } from "vitest";
import { Writer } from "../../runtime/index.js";
import {
  DEFAULT_FRAME_LIMITS,
  FrameError,
  FrameHead,
  FrameSplitter,
  HeaderFlags,
  MAX_ECHOED_TEXT,
  boundStatus,
  boundText,
  IntKey,
  KitexMeta,
  MessageType,
  ProtocolId,
  StrKey,
  StreamFrameType,
  StringInfoCache,
  beginFrame,
  endFrame,
  endHeader,
  frameLimits,
  parseErrorProto,
  parseFrame,
  parseKitexMeta,
  writeErrorProto,
  writeIntInfo,
  writeKitexMeta,
  writeStreamInfo,
  writeStringInfo,
  writeRequestInfo,
} from "./wire.js";

/** Bytes from a readable listing: numbers are bytes, strings are their ASCII/UTF-8 bytes. */
function bytes(...parts: (number | string)[]): Buffer {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else out.push(...Buffer.from(p, "utf8"));
  }
  return Buffer.from(out);
}

// A request frame written out by hand from the TTHeader and Kitex protobuf layouts:
// seq 7, strings {isn: "a.B", k: "v"}, ints {RPCTimeout(12): "100"}, method Echo, Ping{region: "x"}.
const REQUEST = bytes(
  0x00, 0x00, 0x00, 0x3d, //  LENGTH = 61 (65 bytes in all)
  0x10, 0x00, //              magic
  0x00, 0x00, //              flags
  0x00, 0x00, 0x00, 0x07, //  sequence id 7
  0x00, 0x08, //              header size: 8 words = 32 bytes
  0x03, //                    protocol id: Kitex protobuf
  0x00, //                    no transforms
  0x01, 0x00, 0x02, //        string key/values, 2 pairs
  0x00, 0x03, "isn", 0x00, 0x03, "a.B",
  0x00, 0x01, "k", 0x00, 0x01, "v",
  0x10, 0x00, 0x01, //        int key/values, 1 pair
  0x00, 0x0c, 0x00, 0x03, "100", // RPCTimeout = "100"
  0x00, //                    padding: 31 -> 32 bytes
  0x90, 0x01, 0x00, 0x01, //  Kitex protobuf magic, message type Call
  0x00, 0x00, 0x00, 0x04, "Echo",
  0x00, 0x00, 0x00, 0x07, //  sequence id again
  0x0a, 0x01, "x", //         Ping { region: "x" }
);

// The error reply to it: strings {rpc-status: "5", rpc-message: "gone"}, an Exception carrying
// Kitex's ErrorProto { TypeID: 6, Message: "gone" }.
const ERROR_REPLY = bytes(
  0x00, 0x00, 0x00, 0x4a, //  LENGTH = 74 (78 bytes in all)
  0x10, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x07,
  0x00, 0x0a, //              40 bytes of header info
  0x03, 0x00,
  0x01, 0x00, 0x02,
  0x00, 0x0a, "rpc-status", 0x00, 0x01, "5",
  0x00, 0x0b, "rpc-message", 0x00, 0x04, "gone",
  0x00, //                    padding: 39 -> 40
  0x90, 0x01, 0x00, 0x03, //  Exception
  0x00, 0x00, 0x00, 0x04, "Echo",
  0x00, 0x00, 0x00, 0x07,
  0x08, 0x06, 0x12, 0x04, "gone",
);

// The server's shutdown notice: sequence id 0, {crrst: "1"}, an empty Reply.
const NOTICE = bytes(
  0x00, 0x00, 0x00, 0x26, //  LENGTH = 38 (42 bytes in all)
  0x10, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x04, //              16 bytes of header info
  0x03, 0x00,
  0x01, 0x00, 0x01,
  0x00, 0x05, "crrst", 0x00, 0x01, "1",
  0x00, //                    padding: 15 -> 16
  0x90, 0x01, 0x00, 0x02,
  0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00,
);

function encode(build: (w: Writer) => void): Buffer {
  const w = new Writer(64);
  build(w);
  return Buffer.from(w.finish());
}

describe("tcp framing - golden bytes", () => {
  it("tcp framing - a request's int block (RPCTimeout, then Meridian's SentAt) is the generic int block, and parses back", () => {
    const request = (info: (w: Writer) => number) =>
      encode((w) => {
        const mark = beginFrame(w, 7);
        const n = writeStringInfo(w, { k: "v" }, "isn", "a.B") + info(w);
        endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
        writeKitexMeta(w, MessageType.Call, "Echo", 7);
        w.uint32(10);
        w.string("x");
        endFrame(w, mark, DEFAULT_FRAME_LIMITS);
      });
    const sentAt = 1_767_225_600_123;
    const got = request((w) => writeRequestInfo(w, 100, sentAt));
    expect(got.toString("hex")).toBe(request((w) => writeIntInfo(w, [[IntKey.RPCTimeout, "100"], [IntKey.SentAt, String(sentAt)]])).toString("hex"));
    const head = parseFrame(got, 0, got.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect([head.timeoutMs, head.sentAt]).toEqual([100, sentAt]);
    const untimed = request((w) => writeRequestInfo(w, -1, sentAt));
    const h2 = parseFrame(untimed, 0, untimed.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect([h2.timeoutMs, h2.sentAt]).toEqual([-1, sentAt]);
    expect(parseFrame(REQUEST, 0, REQUEST.length, DEFAULT_FRAME_LIMITS, new FrameHead()).sentAt).toBe(-1);
  });

  it("tcp framing - SentAt sent again within the same millisecond is copied, and is still the same bytes", () => {
    // Each block is written after other bytes, into a slab that must grow while SentAt is
    // written, which moves what was written before it (Writer#grow).
    const block = (info: (w: Writer) => number): string => {
      const w = new Writer(64);
      w.raw(new Uint8Array(40));
      w.finish();
      info(w);
      return Buffer.from(w.finish()).toString("hex");
    };
    const values = [1_767_225_600_123, 1_767_225_600_123, 1_767_225_600_124, 7, 7, 0, 1_767_225_600_124, 2 ** 31, 2 ** 31 - 1, 2 ** 31 - 1];
    for (const v of values) {
      expect(block((w) => writeRequestInfo(w, -1, v)), String(v)).toBe(block((w) => writeIntInfo(w, [[IntKey.SentAt, String(v)]])));
      expect(block((w) => writeRequestInfo(w, 2500, v)), String(v)).toBe(block((w) => writeIntInfo(w, [[IntKey.RPCTimeout, "2500"], [IntKey.SentAt, String(v)]])));
    }
  });

  it("writes int keys through the generic int block the same way", () => {
    const got = encode((w) => {
      const mark = beginFrame(w, 7);
      const n = writeStringInfo(w, { k: "v" }, "isn", "a.B") + writeIntInfo(w, [[12, "100"]]);
      endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
      writeKitexMeta(w, MessageType.Call, "Echo", 7);
      w.raw(bytes(0x0a, 0x01, "x"));
      endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    });
    expect(got.equals(REQUEST)).toBe(true);
  });

  it("decodes the hand-written request", () => {
    const head = parseFrame(REQUEST, 0, REQUEST.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect(head.seqId).toBe(7);
    expect(head.flags).toBe(0);
    expect(head.protocolId).toBe(3);
    expect(head.service).toBe("a.B");
    expect(head.headers).toEqual({ k: "v" });
    expect(head.intInfo).toBeUndefined(); // RPCTimeout is read as a number: timeoutMs
    expect(head.timeoutMs).toBe(100);
    expect(head.reset).toBe(false);
    expect(head.payloadStart).toBe(46);
    const meta = parseKitexMeta(REQUEST, head.payloadStart, head.end, new KitexMeta());
    expect(meta).toMatchObject({ messageType: MessageType.Call, method: "Echo", seqId: 7, bodyStart: 62 });
    expect(REQUEST.subarray(meta.bodyStart).toString("hex")).toBe("0a0178");
  });

  it("encodes and decodes an error reply with Kitex's ErrorProto", () => {
    const got = encode((w) => {
      const mark = beginFrame(w, 7);
      const n = writeStringInfo(w, { "rpc-status": "5", "rpc-message": "gone" });
      endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
      writeKitexMeta(w, MessageType.Exception, "Echo", 7);
      writeErrorProto(w, 6, "gone");
      endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    });
    expect(got.toString("hex")).toBe(ERROR_REPLY.toString("hex"));
    const head = parseFrame(ERROR_REPLY, 0, ERROR_REPLY.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect(head.headers).toEqual({ "rpc-status": "5", "rpc-message": "gone" });
    expect(head.intInfo).toBeUndefined();
    const meta = parseKitexMeta(ERROR_REPLY, head.payloadStart, head.end, new KitexMeta());
    expect(meta.messageType).toBe(MessageType.Exception);
    expect(parseErrorProto(ERROR_REPLY, meta.bodyStart, ERROR_REPLY.length)).toEqual({ typeId: 6, message: "gone" });
  });

  it("encodes and decodes the shutdown notice", () => {
    const got = encode((w) => {
      const mark = beginFrame(w, 0);
      const n = writeStringInfo(w, undefined, "crrst", "1");
      endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
      writeKitexMeta(w, MessageType.Reply, "", 0);
      endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    });
    expect(got.toString("hex")).toBe(NOTICE.toString("hex"));
    const head = parseFrame(NOTICE, 0, NOTICE.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect(head.seqId).toBe(0);
    expect(head.reset).toBe(true);
    expect(head.headers).toEqual({});
  });

  it("leaves an empty string block out and keeps UTF-8 keys and values", () => {
    const got = encode((w) => {
      const mark = beginFrame(w, 1);
      const n = writeStringInfo(w, {});
      endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
      endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    });
    // protocol id, 0 transforms, 2 bytes of padding: one word of header info, no payload
    expect(got.toString("hex")).toBe("0000000e" + "1000" + "0000" + "00000001" + "0001" + "03000000");
    const utf8 = encode((w) => {
      const mark = beginFrame(w, 1);
      const n = writeStringInfo(w, { "rpc_persist_用户": "李明", long: "x".repeat(300) });
      endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
      writeKitexMeta(w, MessageType.Call, "Echo", 1);
      endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    });
    const head = parseFrame(utf8, 0, utf8.length, DEFAULT_FRAME_LIMITS, new FrameHead());
    expect(head.headers).toEqual({ "rpc_persist_用户": "李明", long: "x".repeat(300) });
  });
});

describe("tcp framing - string block cache", () => {
  it("tcp framing - a connection's string block cache writes what writeStringInfo writes, kept or not", () => {
    const region = { "x-region-id": "cn-north", "x-consistency-level": "eventual" };
    const calls: [Record<string, string> | undefined, string?, string?][] = [
      [region, StrKey.service, "bench.Echo"],
      [{ ...region }, StrKey.service, "bench.Echo"], // the same strings in a new object: copied
      [{ ...region, "x-region-id": "cn-east" }, StrKey.service, "bench.Echo"],
      [{ ...region, "x-region-id": "cn-east" }, StrKey.service, "bench.Echo"],
      [{ "x-consistency-level": "eventual", "x-region-id": "cn-east" }, StrKey.service, "bench.Echo"], // another order
      [region, StrKey.service, "other.Service"],
      [region], // no pair
      [{ ...region, [StrKey.service]: "owned keys are left out" }],
      [{}], // an empty block is left out
      [undefined],
      [undefined, StrKey.reset, "1"],
      [{ "rpc_persist_用户": "李明" }],
      [{ "rpc_persist_用户": "李明" }],
      [{ long: "x".repeat(600) }], // too long to keep
      [{ long: "x".repeat(600) }],
      [region, StrKey.service, "bench.Echo"],
    ];
    const cache = new StringInfoCache();
    const cached = new Writer(16); // small: the writer moves to bigger slabs on the way
    const plain = new Writer(16);
    for (const [headers, k, v] of calls) {
      const a = cache.write(cached, headers, k, v);
      const b = writeStringInfo(plain, headers, k, v);
      expect(a).toBe(b);
      expect(Buffer.from(cached.finish()).toString("hex")).toBe(Buffer.from(plain.finish()).toString("hex"));
    }
  });
});

describe("tcp framing - malformed frames", () => {
  const parse = (buf: Buffer, limits = DEFAULT_FRAME_LIMITS): FrameHead => parseFrame(buf, 0, buf.length, limits, new FrameHead());
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      if (e instanceof FrameError) return e.code;
      throw e;
    }
    return undefined;
  };
  const patched = (at: number, ...b: number[]): Buffer => {
    const copy = Buffer.from(REQUEST);
    for (let i = 0; i < b.length; i++) copy[at + i] = b[i]!;
    return copy;
  };

  it("rejects a bad magic", () => expect(code(() => parse(patched(4, 0x12, 0x34)))).toBe("BAD_MAGIC"));
  it("rejects a header size past the frame", () => expect(code(() => parse(patched(12, 0x00, 0x40)))).toBe("BAD_HEADER_SIZE"));
  it("rejects a zero header size", () => expect(code(() => parse(patched(12, 0x00, 0x00)))).toBe("BAD_HEADER_SIZE"));
  it("rejects an unknown info id", () => expect(code(() => parse(patched(16, 0x07)))).toBe("BAD_INFO_ID"));
  it("rejects a string pair running past the header", () => expect(code(() => parse(patched(19, 0x00, 0x40)))).toBe("TRUNCATED_HEADER"));
  it("rejects a key/value count past the header", () => expect(code(() => parse(patched(17, 0x00, 0x09)))).toBe("TRUNCATED_HEADER"));
  it("rejects other protocols", () => expect(code(() => parse(patched(14, 0x05)))).toBe("UNSUPPORTED_PROTOCOL"));
  it("rejects transforms", () => expect(code(() => parse(patched(15, 0x01)))).toBe("UNSUPPORTED_TRANSFORM"));
  it("rejects too many headers", () =>
    expect(code(() => parse(REQUEST, frameLimits({ maxHeaderCount: 2 })))).toBe("TOO_MANY_HEADERS"));
  it("rejects headers over the size limit", () =>
    expect(code(() => parse(REQUEST, frameLimits({ maxHeaderBytes: 16 })))).toBe("HEADERS_TOO_LARGE"));
  it("rejects a payload that is not Kitex protobuf", () => {
    const bad = patched(46, 0x80, 0x01);
    const head = parse(bad);
    expect(code(() => parseKitexMeta(bad, head.payloadStart, head.end, new KitexMeta()))).toBe("BAD_PAYLOAD");
    const long = patched(50, 0x00, 0x00, 0x10, 0x00);
    expect(code(() => parseKitexMeta(long, head.payloadStart, head.end, new KitexMeta()))).toBe("BAD_PAYLOAD");
  });

  it("refuses to encode too many or too large headers", () => {
    const w = new Writer(64);
    const many: Record<string, string> = {};
    for (let i = 0; i < 5; i++) many[`k${i}`] = "v";
    const mark = beginFrame(w, 1);
    const n = writeStringInfo(w, many);
    expect(code(() => endHeader(w, mark, n, frameLimits({ maxHeaderCount: 4 })))).toBe("TOO_MANY_HEADERS");
    expect(code(() => endHeader(w, mark, n, frameLimits({ maxHeaderBytes: 8 })))).toBe("HEADERS_TOO_LARGE");
    expect(code(() => writeStringInfo(new Writer(64), { big: "x".repeat(70_000) }))).toBe("HEADERS_TOO_LARGE");
  });

  it("refuses to finish a frame over the size limit", () => {
    const w = new Writer(64);
    const mark = beginFrame(w, 1);
    endHeader(w, mark, 0, DEFAULT_FRAME_LIMITS);
    w.raw(new Uint8Array(100));
    expect(code(() => endFrame(w, mark, frameLimits({ maxFrameSize: 64 })))).toBe("FRAME_TOO_LARGE");
  });
});

describe("tcp framing - splitting a stream", () => {
  function collect(maxFrameSize = 1 << 20): { frames: { buf: Buffer; start: number; end: number }[]; splitter: FrameSplitter } {
    const frames: { buf: Buffer; start: number; end: number }[] = [];
    return { frames, splitter: new FrameSplitter(maxFrameSize, (buf, start, end) => frames.push({ buf, start, end })) };
  }

  it("hands out frames inside one chunk in place, without copying", () => {
    const chunk = Buffer.concat([REQUEST, NOTICE, ERROR_REPLY]);
    const { frames, splitter } = collect();
    splitter.push(chunk);
    expect(frames.map((f) => [f.start, f.end])).toEqual([
      [0, 65],
      [65, 107],
      [107, 185],
    ]);
    for (const f of frames) expect(f.buf).toBe(chunk);
    expect(splitter.buffered).toBe(0);
  });

  it("assembles frames split across chunks, at every split point", () => {
    const stream = Buffer.concat([REQUEST, NOTICE, ERROR_REPLY]);
    for (let cut = 1; cut < stream.length; cut++) {
      const { frames, splitter } = collect();
      splitter.push(stream.subarray(0, cut));
      splitter.push(stream.subarray(cut));
      const got = Buffer.concat(frames.map((f) => f.buf.subarray(f.start, f.end)));
      expect(got.equals(stream)).toBe(true);
      expect(frames).toHaveLength(3);
    }
  });

  it("assembles a stream fed one byte at a time into fresh buffers", () => {
    const stream = Buffer.concat([REQUEST, REQUEST]);
    const { frames, splitter } = collect();
    for (let i = 0; i < stream.length; i++) splitter.push(stream.subarray(i, i + 1));
    expect(frames).toHaveLength(2);
    expect(frames[0]!.buf).not.toBe(frames[1]!.buf);
    for (const f of frames) expect(f.buf.subarray(f.start, f.end).equals(REQUEST)).toBe(true);
  });

  it("rejects an oversize LENGTH as soon as it is read, before buffering the frame", () => {
    const { frames, splitter } = collect(1024);
    const head = Buffer.from([0x00, 0x10, 0x00, 0x00, 0x10, 0x00]); // LENGTH = 1 MiB
    expect(() => splitter.push(head)).toThrow(/exceeds the limit of 1024 bytes/);
    expect(frames).toHaveLength(0);
  });

  it("rejects a LENGTH too short for a TTHeader", () => {
    const { splitter } = collect();
    expect(() => splitter.push(Buffer.from([0, 0, 0, 2, 0x10, 0]))).toThrow(FrameError);
  });

  /** A frame announcing `size` bytes in all: LENGTH, then filler. */
  function announced(size: number): Buffer {
    const f = Buffer.alloc(size, 0x61);
    f.writeUInt32BE(size - 4, 0);
    return f;
  }

  it("grows a partial frame's buffer with the bytes received, not the LENGTH announced, and reports it", () => {
    const grown: number[] = [];
    let held = 0;
    let starts = 0;
    const frames: Buffer[] = [];
    const watcher = {
      grow: (bytes: number, first: boolean) => ((held += bytes), grown.push(bytes), (starts += first ? 1 : 0), true),
      release: (bytes: number) => void (held -= bytes),
    };
    const splitter = new FrameSplitter(4 << 20, (buf, start, end) => frames.push(buf.subarray(start, end)), watcher);
    const frame = announced(4 << 20);
    splitter.push(frame.subarray(0, 10));
    expect(splitter.held).toBe(64); // a 4 MiB announcement costs 64 bytes
    splitter.push(frame.subarray(10, 100_000));
    expect(splitter.held).toBe(131_072); // doubled to what the bytes in need
    for (let at = 100_000; at < frame.length; at += 65_536) splitter.push(frame.subarray(at, Math.min(frame.length, at + 65_536)));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.length).toBe(4 << 20); // handed out in a buffer of exactly its size
    expect(frames[0]!.equals(frame)).toBe(true);
    expect(starts).toBe(1);
    expect(held).toBe(0);
    expect(grown.reduce((a, b) => a + b, 0)).toBe(4 << 20);
  });

  it("starts the clock of a partial frame on its first bytes, even before LENGTH is complete", () => {
    const firsts: number[] = [];
    const splitter = new FrameSplitter(1 << 20, () => undefined, { grow: (b, first) => (first && firsts.push(b), true), release: () => undefined });
    splitter.push(REQUEST.subarray(0, 2));
    expect(firsts).toEqual([0]);
    splitter.push(REQUEST.subarray(2));
    expect(splitter.buffered).toBe(0);
  });

  it("throws OVER_BUDGET when the watcher refuses the growth", () => {
    const splitter = new FrameSplitter(4 << 20, () => undefined, { grow: (bytes) => bytes < 10_000, release: () => undefined });
    const frame = announced(1 << 20);
    splitter.push(frame.subarray(0, 100));
    let err: unknown;
    try {
      splitter.push(frame.subarray(100, 50_000));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).code).toBe("OVER_BUDGET");
  });
});

describe("tcp framing - bounding echoed text", () => {
  it("cuts long text to MAX_ECHOED_TEXT and says how much was cut; short text is the same string", () => {
    const short = "method Echo of bench.Echo is not implemented";
    expect(boundText(short)).toBe(short);
    const long = boundText("x".repeat(4 << 20));
    expect(long.length).toBeLessThanOrEqual(MAX_ECHOED_TEXT);
    const [, kept, left] = /^(x+)\.\.\. \((\d+) more characters\)$/.exec(long)!;
    expect(kept!.length + Number(left)).toBe(4 << 20);
    const pair = boundText("😀".repeat(MAX_ECHOED_TEXT));
    expect(pair.length).toBeLessThanOrEqual(MAX_ECHOED_TEXT);
    expect(/^(😀)+\.\.\. /u.test(pair)).toBe(true); // no half surrogate pair
    const h = { "rpc-status": "12", "rpc-message": "m".repeat(10_000), other: "kept" };
    expect(boundStatus(h)).toEqual({ "rpc-status": "12", "rpc-message": boundText(h["rpc-message"]), other: "kept" });
    const small = { "rpc-status": "0" };
    expect(boundStatus(small)).toBe(small);
  });
});

// TTHeader Streaming: a data frame of stream 5 carrying Ping { region: "x" }, and the window frame
// granting that stream's peer 16 more messages.
const STREAM_DATA = bytes(
  0x00, 0x00, 0x00, 0x19, //  LENGTH = 25 (29 bytes in all)
  0x10, 0x00, //              magic
  0x00, 0x02, //              flags: Streaming
  0x00, 0x00, 0x00, 0x05, //  stream id 5
  0x00, 0x03, //              header size: 3 words = 12 bytes
  0x11, //                    protocol id: protobuf struct (bare message)
  0x00, //                    no transforms
  0x10, 0x00, 0x01, //        int key/values, 1 pair
  0x00, 0x1b, 0x00, 0x01, "3", // FrameType(27) = "3" (data)
  0x00, 0x00, //              padding: 10 -> 12 bytes
  0x0a, 0x01, "x", //         Ping { region: "x" }, no Kitex payload header
);
const STREAM_WINDOW = bytes(
  0x00, 0x00, 0x00, 0x2a, //  LENGTH = 42 (46 bytes in all)
  0x10, 0x00, 0x00, 0x02,
  0x00, 0x00, 0x00, 0x05,
  0x00, 0x08, //              32 bytes of header info
  0x11, 0x00,
  0x01, 0x00, 0x01, //        string key/values, 1 pair
  0x00, 0x0a, "mrd-credit", 0x00, 0x02, "16",
  0x10, 0x00, 0x01,
  0x00, 0x1b, 0x00, 0x01, "6", // FrameType = "6" (window)
  0x00, 0x00, 0x00, //        padding: 29 -> 32
);

describe("tcp framing - streaming frames", () => {
  const limits = DEFAULT_FRAME_LIMITS;

  it("tcp framing - encodes a stream's data and window frames exactly as written out by hand", () => {
    const w = new Writer(256);
    let mark = beginFrame(w, 5, HeaderFlags.Streaming, ProtocolId.ProtobufStruct);
    endHeader(w, mark, writeStreamInfo(w, StreamFrameType.Data), limits);
    w.raw(bytes(0x0a, 0x01, "x"));
    endFrame(w, mark, limits);
    expect(Buffer.from(w.finish())).toEqual(STREAM_DATA);
    mark = beginFrame(w, 5, HeaderFlags.Streaming, ProtocolId.ProtobufStruct);
    const count = writeStringInfo(w, undefined, StrKey.credit, "16") + writeStreamInfo(w, StreamFrameType.Window);
    endHeader(w, mark, count, limits);
    endFrame(w, mark, limits);
    expect(Buffer.from(w.finish())).toEqual(STREAM_WINDOW);
  });

  it("tcp framing - decodes the frame type, the stream id and a stream's opening keys", () => {
    const head = parseFrame(STREAM_DATA, 0, STREAM_DATA.length, limits, new FrameHead());
    expect(head).toMatchObject({ seqId: 5, flags: HeaderFlags.Streaming, protocolId: 0x11, frameType: StreamFrameType.Data, payloadStart: 26 });
    const w = new Writer(256);
    const mark = beginFrame(w, 9, HeaderFlags.Streaming, ProtocolId.ProtobufStruct);
    const count = writeStringInfo(w, { "x-region-id": "eu" }, StrKey.service, "feed.Feed") + writeStreamInfo(w, StreamFrameType.Header, "List", 1500);
    endHeader(w, mark, count, limits);
    endFrame(w, mark, limits);
    const open = w.finish();
    const h = parseFrame(open, 0, open.length, limits, new FrameHead());
    expect(h).toMatchObject({ seqId: 9, frameType: StreamFrameType.Header, service: "feed.Feed", timeoutMs: 1500, headers: { "x-region-id": "eu" } });
    expect(h.intInfo?.[IntKey.ToMethod]).toBe("List");
    expect(h.intInfo?.[IntKey.StreamTimeout]).toBeUndefined(); // read as a number: timeoutMs
  });

  it("tcp framing - a streaming frame must carry protocol 0x11 and a unary frame 0x03", () => {
    const wrong = Buffer.from(STREAM_DATA);
    wrong[14] = ProtocolId.ProtobufKitex;
    expect(() => parseFrame(wrong, 0, wrong.length, limits, new FrameHead())).toThrow(/protobuf struct/);
  });
});
