/**
 * Raw TTHeader over node:net for tests that play a hostile (or just hand-rolled) peer: frames
 * built byte by byte from the transport's own encoders, a socket that collects and parses what
 * the server answers, and the echo service the attacked servers run.
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Writer } from "meridian-rpc/runtime";
import { HeaderKeys, type Headers } from "meridian-rpc";
import { IntKey, MessageType, StrKey } from "../../transports/tcp/wire.js";
import {
  FrameHead,
  FrameSplitter,
  KitexMeta,
  beginFrame,
  endFrame,
  endHeader,
  frameLimits,
  parseErrorProto,
  parseFrame,
  parseKitexMeta,
  writeIntInfo,
  writeKitexMeta,
  writeStringInfo,
} from "../../transports/tcp/wire.js";
import { Ping } from "../../bench/codec/gen/feed.js";

/** Limits wide enough to build any frame a peer could send (the server's own limits decide). */
const WIDE = frameLimits({ maxFrameSize: 0xffffffff, maxHeaderCount: 0xffff, maxHeaderBytes: 0x3fffc });

/** A request frame as a client would send it; every part can be given, however large or odd. */
export function requestFrame(o: {
  seq: number;
  method?: string;
  service?: string;
  headers?: Headers;
  timeoutMs?: number;
  message?: Partial<Ping>;
  /** Raw payload bytes after the Kitex header, instead of an encoded Ping. */
  body?: Uint8Array;
  messageType?: number;
}): Buffer {
  const w = new Writer(1024);
  const mark = beginFrame(w, o.seq);
  let count = writeStringInfo(w, o.headers, StrKey.service, o.service ?? "bench.Echo");
  if (o.timeoutMs !== undefined) {
    count += writeIntInfo(w, [[IntKey.RPCTimeout, String(o.timeoutMs)]]);
  }
  endHeader(w, mark, count, WIDE);
  writeKitexMeta(w, o.messageType ?? MessageType.Call, o.method ?? "Echo", o.seq);
  if (o.body !== undefined) {
    w.ensure(o.body.length);
    w.buf.set(o.body, w.pos);
    w.pos += o.body.length;
  } else Ping.encodeTo(Ping.create(o.message ?? { region: "cn-north", seq: 0n }), w);
  endFrame(w, mark, WIDE);
  return Buffer.from(w.finish());
}

/** One frame the server sent, parsed. */
export interface ReplyFrame {
  seq: number;
  headers: Headers;
  reset: boolean;
  messageType: number;
  method: string;
  /** The Ping of a Reply, or the ErrorProto message of an Exception. */
  ping?: Ping;
  error?: { typeId: number; message: string };
  size: number;
}

/** A raw connection to a server: writes what it is told, parses every frame it gets back. */
export class RawPeer {
  readonly frames: ReplyFrame[] = [];
  closed = false;
  error: Error | undefined;
  private readonly splitter: FrameSplitter;
  private readonly head = new FrameHead();
  private readonly meta = new KitexMeta();

  private constructor(readonly socket: Socket) {
    this.splitter = new FrameSplitter(0xffffffff, (buf, start, end) => this.onFrame(buf, start, end));
    socket.on("data", (chunk: Buffer) => this.splitter.push(chunk));
    socket.on("error", (e) => (this.error = e));
    socket.on("close", () => (this.closed = true));
  }

  /** Connects to `address` (host:port). */
  static async open(address: string): Promise<RawPeer> {
    const i = address.lastIndexOf(":");
    const socket = connect(Number(address.slice(i + 1)), address.slice(0, i));
    const peer = new RawPeer(socket);
    await once(socket, "connect");
    return peer;
  }

  write(bytes: Uint8Array): boolean {
    return this.socket.write(bytes);
  }

  /** Waits for the frame answering `seq`; fails after `ms` or once the connection closed without it. */
  async reply(seq: number, ms = 10_000): Promise<ReplyFrame> {
    const end = Date.now() + ms;
    for (;;) {
      const f = this.frames.find((x) => x.seq === seq);
      if (f !== undefined) return f;
      if (this.closed) throw new Error(`the connection closed before the reply to ${seq}${this.error ? `: ${this.error.message}` : ""}`);
      if (Date.now() > end) throw new Error(`no reply to ${seq} within ${ms} ms`);
      await sleep(5);
    }
  }

  /** Waits until the server closed the connection; fails after `ms`. */
  async closedWithin(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > end) throw new Error(`the server did not close the connection within ${ms} ms`);
      await sleep(10);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onFrame(buf: Buffer, start: number, end: number): void {
    const head = parseFrame(buf, start, end, WIDE, this.head);
    const meta = parseKitexMeta(buf, head.payloadStart, end, this.meta);
    const f: ReplyFrame = {
      seq: head.seqId,
      headers: head.headers,
      reset: head.reset,
      messageType: meta.messageType,
      method: meta.method,
      size: end - start,
    };
    if (meta.messageType === MessageType.Exception) f.error = parseErrorProto(buf, meta.bodyStart, end);
    else if (meta.messageType === MessageType.Reply && head.seqId !== 0) f.ping = Ping.decode(buf.subarray(meta.bodyStart, end));
    this.frames.push(f);
  }
}

/** The status code of a reply frame (0 when it has none). */
export function statusOf(f: ReplyFrame): number {
  return Number(f.headers[HeaderKeys.status] ?? "0");
}
