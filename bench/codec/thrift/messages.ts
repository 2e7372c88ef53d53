/**
 * The feed fixtures of bench/codec/data.ts as each Thrift library holds them, and the parts of
 * Apache Thrift's untyped CommonJS library and generated code (gen-apache, see gen.sh) the
 * benchmarks use: the codec benchmark (run.ts) and the RPC benchmark's Thrift peers
 * (bench/rpc/thrift-peer.ts).
 */
import { createRequire } from "node:module";
import type { ThriftStructValue } from "meridian-rpc/runtime";
import type { FeedData } from "../data.js";

/** A TBinaryProtocol or TCompactProtocol, opaque to the benchmark. */
export type ApacheProtocol = object;

/** A struct of Apache's generated code: it writes and reads itself through a protocol. */
export interface ApacheStruct {
  write(output: ApacheProtocol): void;
  read(input: ApacheProtocol): void;
}

/** TBufferedTransport: collects writes until flush(); reads from `inBuf` between the cursors. */
export interface ApacheTransport {
  inBuf: Buffer;
  readCursor: number;
  writeCursor: number;
  flush(): void;
}

/** The `thrift` package's exports the benchmark uses. */
export interface ApacheThrift {
  TBufferedTransport: new (buffer?: Buffer, onFlush?: (message: Buffer) => void) => ApacheTransport;
  TBinaryProtocol: new (transport: ApacheTransport) => ApacheProtocol;
  TCompactProtocol: new (transport: ApacheTransport) => ApacheProtocol;
  /** node-int64's Int64: how Apache's library represents i64 (readI64 returns one). */
  Int64: new (value: number) => object;
}

/** A generated struct class; its constructor copies the fields it is given. */
export type ApacheStructClass = new (fields?: object) => ApacheStruct;

const require = createRequire(import.meta.url);
export const apache = require("thrift") as ApacheThrift;
export const generated = require("./gen-apache/feed_types.js") as Record<"FeedResponse" | "Video" | "User" | "Ping", ApacheStructClass>;

/** The fixture as Meridian's Thrift value: i64 bigint, binary Uint8Array, map Map. */
export function meridianMessage(feed: FeedData<bigint>): ThriftStructValue {
  return {
    items: feed.items.map((v) => ({
      id: v.id,
      title: v.title,
      url: v.url,
      duration_ms: v.durationMs,
      score: v.score,
      hd: v.hd,
      author: { id: v.author.id, name: v.author.name, region: v.author.region, tags: v.author.tags },
      stats: v.stats,
      labels: new Map(Object.entries(v.labels)),
      cover: v.cover,
    })),
    cursor: feed.cursor,
    server_time: feed.serverTime,
  };
}

/** The fixture as Apache's generated classes: i64 Int64 (what its decode returns), binary Buffer, map object. */
export function apacheMessage(feed: FeedData<number>): ApacheStruct {
  return new generated.FeedResponse({
    items: feed.items.map(
      (v) =>
        new generated.Video({
          id: new apache.Int64(v.id),
          title: v.title,
          url: v.url,
          duration_ms: v.durationMs,
          score: v.score,
          hd: v.hd,
          author: new generated.User({ id: new apache.Int64(v.author.id), name: v.author.name, region: v.author.region, tags: v.author.tags }),
          stats: v.stats,
          labels: v.labels,
          cover: Buffer.from(v.cover),
        }),
    ),
    cursor: feed.cursor,
    server_time: new apache.Int64(feed.serverTime),
  });
}

