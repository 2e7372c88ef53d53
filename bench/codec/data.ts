/**
 * Fixtures of the codec benchmark: deterministic messages of bench/codec/proto/feed.proto.
 *
 * Every run builds the same messages from a seeded PRNG, in one neutral form (64-bit integers as
 * numbers, all below 2^53). Each peer turns that form into its own representation once, outside
 * the timed code (peers.ts).
 */

import { seededRandom } from "../../tools/random/index.js";

/** bench.Ping, with 64-bit integers as `L` (number or bigint). */
export interface PingData<L = number> {
  region: string;
  seq: L;
  consistency: string;
}

/** bench.User, with 64-bit integers as `L`. */
export interface UserData<L = number> {
  id: L;
  name: string;
  region: string;
  tags: string[];
}

/** bench.Video, with 64-bit integers as `L`. */
export interface VideoData<L = number> {
  id: L;
  title: string;
  url: string;
  durationMs: number;
  score: number;
  hd: boolean;
  author: UserData<L>;
  stats: number[];
  labels: { [key: string]: string };
  cover: Uint8Array;
}

/** bench.FeedResponse, with 64-bit integers as `L`. */
export interface FeedData<L = number> {
  items: VideoData<L>[];
  cursor: string;
  serverTime: L;
}

/** Names of the fixtures, smallest first: they are the "size" axis of every report. */
export type Size = "ping" | "feed" | "page";

/** One message of the benchmark: a Ping, or a FeedResponse of some length. */
export type Fixture =
  | { readonly size: "ping"; readonly kind: "ping"; readonly data: PingData }
  | { readonly size: "feed" | "page"; readonly kind: "feed"; readonly data: FeedData };

/** Which message of feed.proto a fixture is. */
export type MessageKind = Fixture["kind"];

/** Fully qualified protobuf names of the fixture kinds. */
export const TYPE_NAMES: Readonly<Record<MessageKind, string>> = {
  ping: "bench.Ping",
  feed: "bench.FeedResponse",
};

/** The two fields the "view" operation reads, per kind, for the report's legend. */
export const VIEW_FIELDS: Readonly<Record<MessageKind, readonly [string, string]>> = {
  ping: ["region", "seq"],
  feed: ["cursor", "serverTime"],
};

/** The fixtures of a run, smallest first. */
export function fixtures(): Fixture[] {
  return [
    { size: "ping", kind: "ping", data: { region: "cn-north", seq: 123456789, consistency: "linearizable" } },
    { size: "feed", kind: "feed", data: feed(20, 0x5eed0001) },
    { size: "page", kind: "feed", data: feed(300, 0x5eed0002) },
  ];
}

/** The fixture's message with its 64-bit integers as bigint (Meridian's default, protobuf-es). */
export function withBigInt(f: Fixture): PingData<bigint> | FeedData<bigint> {
  if (f.kind === "ping") return { ...f.data, seq: BigInt(f.data.seq) };
  return {
    ...f.data,
    serverTime: BigInt(f.data.serverTime),
    items: f.data.items.map((v) => ({ ...v, id: BigInt(v.id), author: { ...v.author, id: BigInt(v.author.id) } })),
  };
}

const ASCII_WORDS = [
  "how", "to", "cook", "the", "perfect", "noodles", "in", "ten", "minutes", "street", "food", "tour",
  "night", "market", "review", "unboxing", "new", "phone", "camera", "test", "travel", "vlog", "city",
  "walk", "best", "budget", "setup", "coding", "live", "stream", "music", "cover", "guitar", "lesson",
];
const HAN_WORDS = [
  "如何", "三分钟", "学会", "红烧肉", "家常菜", "街头", "美食", "探店", "夜市", "开箱", "新手机", "测评",
  "旅行", "日常", "城市", "漫步", "最佳", "预算", "编程", "直播", "音乐", "翻唱", "吉他", "教程", "周末",
];
const NAMES = ["李明", "王芳", "张伟", "刘洋", "alice", "bob_the_builder", "chen.dev", "maria", "kenji"];
const REGIONS = ["cn-north", "cn-east", "cn-south", "us-west", "eu-central"];
const TAGS = ["creator", "verified", "food", "travel", "tech", "music", "partner", "new"];
const LABELS: [string, string[]][] = [
  ["lang", ["zh-CN", "en-US", "ja-JP"]],
  ["category", ["food", "travel", "tech", "music", "daily"]],
  ["source", ["ugc", "pgc", "live"]],
  ["audit", ["passed", "pending"]],
];

/** A FeedResponse of `count` videos, the same for the same seed. */
function feed(count: number, seed: number): FeedData {
  const rnd = seededRandom(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const words = (pool: readonly string[], n: number, sep: string): string =>
    Array.from({ length: n }, () => pick(pool)).join(sep);
  const serverTime = 1764086400000 + int(86_400_000); // a moment of 2025-11-25, in epoch ms

  const items: VideoData[] = [];
  for (let i = 0; i < count; i++) {
    const id = 7_100_000_000_000_000 + int(2 ** 30) * 1000 + int(1000); // below 2^53
    const labels: { [key: string]: string } = {};
    for (const [k, vs] of LABELS.slice(0, 2 + int(2))) labels[k] = pick(vs);
    items.push({
      id,
      title: i % 2 === 0 ? words(HAN_WORDS, 3 + int(4), "") : words(ASCII_WORDS, 3 + int(4), " "),
      url: `https://v.example.com/${id.toString(36)}/play.m3u8`,
      durationMs: 5_000 + int(600_000),
      score: rnd() * 100,
      hd: rnd() < 0.7,
      author: {
        id: 100_000_000_000 + int(2 ** 30) * 100,
        name: pick(NAMES),
        region: pick(REGIONS),
        tags: Array.from({ length: 1 + int(3) }, () => pick(TAGS)),
      },
      stats: [int(10_000_000), int(500_000), int(20_000), int(5_000), int(100_000)],
      labels,
      cover: Uint8Array.from({ length: 64 }, () => int(256)),
    });
  }
  const cursor = Buffer.from(JSON.stringify({ offset: count, at: serverTime })).toString("base64url");
  return { items, cursor, serverTime };
}
