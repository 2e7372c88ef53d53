/**
 * A seeded fuzzer of TTHeader frames: valid requests with odd parts (huge names, many headers,
 * bad payloads, odd timeouts), valid frames with bytes flipped, rewritten LENGTHs, truncations,
 * streaming frames of every type, header bombs, wrong protocols, and plain garbage. The same
 * seed gives the same frames (tools/random).
 */
import { Writer } from "meridian-rpc/runtime";
import {
  HeaderFlags,
  InfoId,
  MessageType,
  ProtocolId,
  StrKey,
  beginFrame,
  endFrame,
  endHeader,
  frameLimits,
  writeStreamInfo,
  writeStringInfo,
} from "../../transports/tcp/wire.js";
import { seededRandom } from "../../tools/random/index.js";
import { requestFrame } from "./wire.js";

const WIDE = frameLimits({ maxFrameSize: 0xffffffff, maxHeaderCount: 0xffff, maxHeaderBytes: 0x3fffc });

/** The kinds of frame the fuzzer makes, each with how often (relative weight). */
const KINDS = [
  ["request", 20],
  ["flipped", 15],
  ["length", 10],
  ["truncated", 8],
  ["garbage", 8],
  ["stream", 17],
  ["headerBomb", 6],
  ["wrongType", 8],
  ["hugeName", 1],
  ["hugeLength", 5],
] as const;

/** What kind of frame the fuzzer made. */
export type FuzzKind = (typeof KINDS)[number][0];

/** Makes fuzzed frames from `seed`. */
export class FrameFuzzer {
  private readonly rnd: () => number;
  private readonly total = KINDS.reduce((a, [, w]) => a + w, 0);

  constructor(seed: number) {
    this.rnd = seededRandom(seed);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  private text(n: number): string {
    const alphabet = "abcdefghijklmnopqrstuvwxyz._-/0123456789é区😀\u0000";
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  private bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A length that is usually small and sometimes large. */
  private size(small: number, large: number): number {
    return this.rnd() < 0.9 ? this.int(small) : this.int(large);
  }

  /** A request that parses, with odd parts. */
  request(): Buffer {
    const headers: Record<string, string> = {};
    const n = this.size(8, 200);
    for (let i = 0; i < n; i++) headers[this.text(1 + this.int(20))] = this.text(this.size(30, 3000));
    const method = this.rnd() < 0.5 ? this.pick(["Echo", "Feed", "echo", ""]) : this.text(this.size(40, 2000));
    const service = this.rnd() < 0.7 ? "bench.Echo" : this.text(this.size(20, 500));
    const timeoutMs = this.rnd() < 0.5 ? undefined : this.pick([0, 1, 50, 5000, 2 ** 31 - 1, this.int(1e6)]);
    const body = this.rnd() < 0.5 ? undefined : this.bytes(this.size(40, 4000));
    const seq = this.int(2 ** 32);
    return requestFrame({ seq, method, service, headers, timeoutMs, body, message: { region: this.text(10), seq: BigInt(this.int(30)) } });
  }

  /** One fuzzed frame (or a few bytes pretending to be one). */
  next(): { kind: FuzzKind; bytes: Buffer } {
    let r = this.int(this.total);
    let kind: FuzzKind = "request";
    for (const [k, w] of KINDS) {
      if (r < w) {
        kind = k;
        break;
      }
      r -= w;
    }
    return { kind, bytes: this.make(kind) };
  }

  private make(kind: FuzzKind): Buffer {
    switch (kind) {
      case "request":
        return this.request();
      case "flipped": {
        const f = this.request();
        const flips = 1 + this.int(8);
        for (let i = 0; i < flips; i++) f[this.int(f.length)] = this.int(256);
        return f;
      }
      case "length": {
        const f = this.request();
        f.writeUInt32BE(this.pick([0, 1, 13, 14, f.length - 5, f.length - 3, f.length + 100, this.int(2 ** 32)]) >>> 0, 0);
        return f;
      }
      case "truncated": {
        const f = this.request();
        return Buffer.concat([f.subarray(0, 1 + this.int(f.length - 1)), this.request()]);
      }
      case "garbage":
        return Buffer.from(this.bytes(1 + this.int(300)));
      case "stream":
        return this.streamFrame();
      case "headerBomb": {
        // Up to 64 KiB of header info packed with tiny pairs: far more than maxHeaderCount.
        const w = new Writer(70_000);
        const mark = beginFrame(w, this.int(1000));
        const count = 1000 + this.int(12_000);
        w.ensure(3);
        w.buf[w.pos] = InfoId.KeyValue;
        w.buf.writeUInt16BE(count & 0xffff, w.pos + 1);
        w.pos += 3;
        for (let i = 0; i < count && w.pos - w.start < 65_000; i++) {
          w.ensure(5);
          w.buf.writeUInt16BE(1, w.pos);
          w.buf[w.pos + 2] = 0x61 + (i % 26);
          w.buf.writeUInt16BE(0, w.pos + 3);
          w.pos += 5;
        }
        endHeader(w, mark, 0, WIDE);
        w.ensure(12);
        w.buf.writeUInt32BE(0x90010001, w.pos);
        w.buf.writeUInt32BE(0, w.pos + 4);
        w.buf.writeUInt32BE(1, w.pos + 8);
        w.pos += 12;
        endFrame(w, mark, WIDE);
        return Buffer.from(w.finish());
      }
      case "wrongType": {
        const f = requestFrame({ seq: this.int(1000), messageType: this.pick([MessageType.Reply, MessageType.Exception, MessageType.Oneway, 0, 9, 0xffff]) });
        if (this.rnd() < 0.3) f[14] = this.pick([ProtocolId.ThriftBinary, ProtocolId.ThriftCompact, ProtocolId.ProtobufStruct, 0xff]);
        else if (this.rnd() < 0.3) f[15] = 1 + this.int(4); // transforms
        return f;
      }
      case "hugeName":
        // Just under the 4 MiB default frame limit, with a method name filling it.
        return requestFrame({ seq: this.int(1000), method: "n".repeat(4 * 1024 * 1024 - 62) });
      case "hugeLength": {
        // A LENGTH at or near the limit and only part of the frame: the rest never comes (the
        // next frames are read as its bytes, until the server gives up on the connection).
        const b = Buffer.alloc(4 + this.int(2000));
        b.writeUInt32BE(this.pick([4 * 1024 * 1024 - 4, 4 * 1024 * 1024 - 3, 0xffffffff, 1 << 20]), 0);
        return b;
      }
    }
  }

  /** A TTHeader Streaming frame of a random type, stream id and contents. */
  private streamFrame(): Buffer {
    const w = new Writer(512);
    const sid = this.pick([1, 2, 3, this.int(2 ** 32)]);
    const mark = beginFrame(w, sid, HeaderFlags.Streaming, this.rnd() < 0.9 ? ProtocolId.ProtobufStruct : ProtocolId.ProtobufKitex);
    const type = this.int(8);
    const headers: Record<string, string> = {};
    if (this.rnd() < 0.3) headers[StrKey.credit] = String(this.pick([0, 1, 1e9, -5]));
    let count = writeStringInfo(w, headers, StrKey.service, this.rnd() < 0.7 ? "bench.Echo" : this.text(30));
    count += writeStreamInfo(w, type, type === 2 ? (this.rnd() < 0.5 ? "Echo" : this.text(this.size(30, 20_000))) : undefined, this.pick([0, 10, 100_000]));
    endHeader(w, mark, count, WIDE);
    const body = this.bytes(this.size(30, 2000));
    w.ensure(body.length);
    w.buf.set(body, w.pos);
    w.pos += body.length;
    endFrame(w, mark, WIDE);
    return Buffer.from(w.finish());
  }
}
