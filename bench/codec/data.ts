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

/** bench.Ref, bench.Point and bench.Stamp: the small sub-messages of a batch record. */
export interface RefData {
  ns: string;
  id: number;
}
export interface PointData {
  x: number;
  y: number;
}
export interface StampData<L = number> {
  seconds: L;
  nanos: number;
}

/** bench.Record, with 64-bit integers as `L`. */
export interface RecordData<L = number> {
  id: L;
  delta: L;
  checksum: L;
  kind: string;
  name: string;
  owner: RefData;
  at: PointData;
  updated: StampData<L>;
  attrs: { [key: string]: string };
  active: boolean;
}

/** bench.RecordBatch, with 64-bit integers as `L`. */
export interface BatchData<L = number> {
  records: RecordData<L>[];
  source: string;
  sentAt: L;
}

/** bench.Numeric, with 64-bit integers as `L`. */
export interface NumericData<L = number> {
  s32: number;
  s64: L;
  f32: number;
  f64: L;
  sf32: number;
  sf64: L;
  d: number;
  f: number;
  u64: L;
  s32s: number[];
  s64s: L[];
  f32s: number[];
  f64s: L[];
  sf64s: L[];
  ds: number[];
  fs: number[];
  i64s: L[];
}

/** bench.Maps, with 64-bit integers as `L` (map keys are strings, as in every peer). */
export interface MapsData<L = number> {
  labels: { [key: string]: string };
  counters: { [key: string]: L };
  points: { [key: string]: PointData };
  weights: { [key: string]: number };
}

/** bench.Text. */
export interface TextData {
  title: string;
  body: string;
  paragraphs: string[];
  lang: string;
}

/** bench.Node, with 64-bit integers as `L`. */
export interface NodeData<L = number> {
  name: string;
  level: number;
  children: NodeData<L>[];
  weight: L;
}

/** bench.LogEntry (the level is the enum's number). */
export interface LogEntryData {
  traceId: string;
  spanId: string;
  level: number;
  line: number;
  deltas: number[];
  flags: boolean[];
  fields: { [key: number]: string };
  user?: string;
  retries?: number;
  payload: Uint8Array;
}

/** bench.LogBatch, with 64-bit integers as `L`. */
export interface LogData<L = number> {
  entries: LogEntryData[];
  host: string;
  sentAt: L;
}

/** The shapes of the benchmark: what each fixture's message is, keyed by its kind. */
interface Shapes<L> {
  ping: PingData<L>;
  feed: FeedData<L>;
  batch: BatchData<L>;
  numeric: NumericData<L>;
  maps: MapsData<L>;
  text: TextData;
  nested: NodeData<L>;
  log: LogData<L>;
}

/** Which message of feed.proto a fixture is. */
export type MessageKind = keyof Shapes<number>;

/**
 * Names of the fixtures: they are the "size" axis of every report. ping, feed and page are the
 * sizes of issue 2; the others are the shapes of issue 13, one message each.
 */
export type Size = "ping" | "feed" | "page" | Exclude<MessageKind, "ping" | "feed">;

/**
 * One message of the benchmark, in the neutral form (64-bit integers as numbers, all below
 * 2^53) and with its 64-bit integers as bigint (Meridian's default, protobuf-es). Both are built
 * from the same seed, so they are the same message.
 */
export type Fixture = {
  [K in MessageKind]: {
    readonly size: Size;
    readonly kind: K;
    /** What the message is, for the report's headings. */
    readonly what: string;
    readonly data: Shapes<number>[K];
    readonly bigint: Shapes<bigint>[K];
  };
}[MessageKind];

/** Fully qualified protobuf names of the fixture kinds. */
export const TYPE_NAMES: Readonly<Record<MessageKind, string>> = {
  ping: "bench.Ping",
  feed: "bench.FeedResponse",
  batch: "bench.RecordBatch",
  numeric: "bench.Numeric",
  maps: "bench.Maps",
  text: "bench.Text",
  nested: "bench.Node",
  log: "bench.LogBatch",
};

/** The two top-level fields the "view" operation reads, per kind. */
export const VIEW_FIELDS: Readonly<Record<MessageKind, readonly [string, string]>> = {
  ping: ["region", "seq"],
  feed: ["cursor", "serverTime"],
  batch: ["source", "sentAt"],
  numeric: ["s64", "d"],
  maps: ["labels", "weights"],
  text: ["title", "lang"],
  nested: ["name", "weight"],
  log: ["host", "sentAt"],
};

/** How a builder writes a 64-bit integer: as a number or as a bigint. */
type Long<L> = (n: number) => L;
const asNumber: Long<number> = (n) => n;
const asBigInt: Long<bigint> = (n) => BigInt(n);

/** A fixture from its builder, called twice with the same seed: numbers, then bigints. */
function fixture<K extends MessageKind>(
  size: Size,
  kind: K,
  what: string,
  build: <L>(long: Long<L>) => Shapes<L>[K],
): Fixture {
  return { size, kind, what, data: build(asNumber), bigint: build(asBigInt) } as Fixture;
}

/** The fixtures of a run: the sizes of issue 2, smallest first, then the shapes of issue 13. */
export function fixtures(): Fixture[] {
  return [
    fixture("ping", "ping", "Ping", (long) => ({ region: "cn-north", seq: long(123456789), consistency: "linearizable" })),
    fixture("feed", "feed", "FeedResponse of 20 videos", (long) => feed(20, 0x5eed0001, long)),
    fixture("page", "feed", "FeedResponse of 300 videos", (long) => feed(300, 0x5eed0002, long)),
    fixture("batch", "batch", "RecordBatch of 50 records (3 sub-messages, sint64, fixed64, 2-entry map each)", (long) =>
      batch(50, 0x5eed0003, long),
    ),
    fixture("numeric", "numeric", "Numeric: every fixed and zigzag type, singular and 64 packed of each", (long) =>
      numeric(64, 0x5eed0004, long),
    ),
    fixture("maps", "maps", "Maps: 24 string, 24 int64, 16 message, 16 double entries", (long) => maps(0x5eed0005, long)),
    fixture("text", "text", "Text: about 9 KB of mostly non-ASCII strings", () => text(0x5eed0006)),
    fixture("nested", "nested", "Node: a tree 32 levels deep, a leaf beside each level", (long) => nested(32, 0x5eed0007, long)),
    fixture("log", "log", "LogBatch of 100 entries (enum, optionals, unique ids, negative int32s, bools, int32-keyed map, bytes)", (long) =>
      log(100, 0x5eed0008, long),
    ),
  ];
}

/** The fixture's message with its 64-bit integers as bigint (Meridian's default, protobuf-es). */
export function withBigInt(f: Fixture): object {
  return f.bigint;
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

/** A random source and its helpers, the same for the same seed. */
function random(seed: number) {
  const rnd = seededRandom(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const words = (pool: readonly string[], n: number, sep: string): string =>
    Array.from({ length: n }, () => pick(pool)).join(sep);
  /** An integer in [-n, n). */
  const signed = (n: number): number => int(2 * n) - n;
  return { rnd, int, pick, words, signed };
}

/** A FeedResponse of `count` videos, the same for the same seed. */
function feed<L>(count: number, seed: number, long: Long<L>): FeedData<L> {
  const { rnd, int, pick, words } = random(seed);
  const serverTime = 1764086400000 + int(86_400_000); // a moment of 2025-11-25, in epoch ms

  const items: VideoData<L>[] = [];
  for (let i = 0; i < count; i++) {
    const id = 7_100_000_000_000_000 + int(2 ** 30) * 1000 + int(1000); // below 2^53
    const labels: { [key: string]: string } = {};
    for (const [k, vs] of LABELS.slice(0, 2 + int(2))) labels[k] = pick(vs);
    items.push({
      id: long(id),
      title: i % 2 === 0 ? words(HAN_WORDS, 3 + int(4), "") : words(ASCII_WORDS, 3 + int(4), " "),
      url: `https://v.example.com/${id.toString(36)}/play.m3u8`,
      durationMs: 5_000 + int(600_000),
      score: rnd() * 100,
      hd: rnd() < 0.7,
      author: {
        id: long(100_000_000_000 + int(2 ** 30) * 100),
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
  return { items, cursor, serverTime: long(serverTime) };
}

const KINDS = ["click", "view", "buy", "share", "like"];
const ZONES = ["cn-north-1a", "cn-east-2b", "us-west-1c", "eu-central-1a"];

/** A RecordBatch of `count` records (the shape issue 13 measured at 1.50x), the same for the same seed. */
function batch<L>(count: number, seed: number, long: Long<L>): BatchData<L> {
  const { rnd, int, pick, signed } = random(seed);
  const sentAt = 1764086400000 + int(86_400_000);
  const records: RecordData<L>[] = [];
  for (let i = 0; i < count; i++) {
    records.push({
      id: long(1_700_000_000_000_000 + int(2 ** 30) * 1000 + i),
      // Mostly small deltas, some beyond 32 bits: both zigzag paths.
      delta: long(i % 4 === 0 ? signed(2 ** 40) : signed(5000)),
      checksum: long(int(2 ** 21) * 2 ** 31 + int(2 ** 31)),
      kind: pick(KINDS),
      name: `user_${int(100_000)}`,
      owner: { ns: "acct", id: int(10_000_000) },
      at: { x: signed(100_000), y: signed(100_000) },
      updated: { seconds: long(1764086400 + int(86_400)), nanos: int(1_000_000_000) },
      attrs: { env: rnd() < 0.8 ? "prod" : "staging", zone: pick(ZONES) },
      active: rnd() < 0.9,
    });
  }
  return { records, source: "ingest-7", sentAt: long(sentAt) };
}

/** A Numeric message with `n` values in each repeated field, the same for the same seed. */
function numeric<L>(n: number, seed: number, long: Long<L>): NumericData<L> {
  const { rnd, int, signed } = random(seed);
  const list = <T>(f: () => T): T[] => Array.from({ length: n }, f);
  // Below 2^53 in magnitude, so the neutral form holds them exactly.
  const big = (): number => int(2 ** 21) * 2 ** 31 + int(2 ** 31);
  return {
    s32: -123_456,
    s64: long(-(2 ** 40) - 12_345),
    f32: 0xdeadbeef,
    f64: long(2 ** 50 + 777),
    sf32: -7,
    sf64: long(-(2 ** 45) - 3),
    d: Math.PI,
    f: Math.fround(1.5),
    u64: long(2 ** 52 + 99),
    s32s: list(() => signed(2_000_000)),
    s64s: list(() => long(int(3) === 0 ? signed(1000) : signed(2 ** 44))),
    f32s: list(() => int(2 ** 32)),
    f64s: list(() => long(big())),
    sf64s: list(() => long(int(2) === 0 ? -big() : big())),
    ds: list(() => (rnd() - 0.5) * 1e6),
    fs: list(() => Math.fround((rnd() - 0.5) * 1000)),
    i64s: list(() => long(int(4) === 0 ? -int(1_000_000) : int(2 ** 40))),
  };
}

/** A Maps message, the same for the same seed. */
function maps<L>(seed: number, long: Long<L>): MapsData<L> {
  const { rnd, int, pick, words, signed } = random(seed);
  const m: MapsData<L> = { labels: {}, counters: {}, points: {}, weights: {} };
  for (let i = 0; i < 24; i++) m.labels[`label.${words(ASCII_WORDS, 2, "-")}.${i}`] = words(ASCII_WORDS, 1 + int(3), " ");
  for (let i = 0; i < 24; i++) m.counters[`${pick(KINDS)}_${i}`] = long(int(2 ** 40));
  for (let i = 0; i < 16; i++) m.points[String(1000 + int(1_000_000))] = { x: signed(1 << 20), y: signed(1 << 20) };
  for (let i = 0; i < 16; i++) m.weights[`w${i}`] = rnd();
  return m;
}

const CYRILLIC_WORDS = ["привет", "мир", "сообщение", "данные", "быстро", "сеть", "регион", "запрос"];
const EMOJI = ["🚀", "✨", "🎉", "👍", "🔥", "😀"];

/** A Text message of long, mostly non-ASCII strings (Han, Cyrillic, emoji), the same for the same seed. */
function text(seed: number): TextData {
  const { int, pick, words } = random(seed);
  const sentence = (): string =>
    int(3) === 0 ? `${words(CYRILLIC_WORDS, 4 + int(6), " ")} ${pick(EMOJI)}. ` : `${words(HAN_WORDS, 6 + int(10), "")}${pick(EMOJI)}。`;
  const paragraph = (sentences: number): string => Array.from({ length: sentences }, sentence).join("");
  return {
    title: words(HAN_WORDS, 12, ""),
    body: paragraph(60),
    paragraphs: Array.from({ length: 8 }, () => paragraph(4)),
    lang: "zh-CN",
  };
}

/** A tree whose spine is `depth` levels deep, with a leaf beside each level, the same for the same seed. */
function nested<L>(depth: number, seed: number, long: Long<L>): NodeData<L> {
  const { signed } = random(seed);
  let node: NodeData<L> = { name: `level-${depth}`, level: depth, children: [], weight: long(signed(2 ** 40)) };
  for (let level = depth - 1; level >= 0; level--) {
    const leaf: NodeData<L> = { name: `leaf-${level}`, level: level + 1, children: [], weight: long(signed(1000)) };
    node = { name: `level-${level}`, level, children: [leaf, node], weight: long(signed(2 ** 40)) };
  }
  return node;
}

const HEX = "0123456789abcdef";
const LOG_KEYS = ["user", "route", "status", "bytes", "peer", "method"];

/** A LogBatch of `count` entries, the same for the same seed. */
function log<L>(count: number, seed: number, long: Long<L>): LogData<L> {
  const { rnd, int, pick, signed } = random(seed);
  const hex = (n: number): string => Array.from({ length: n }, () => HEX[int(16)]).join("");
  const entries: LogEntryData[] = [];
  for (let i = 0; i < count; i++) {
    const fields: { [key: number]: string } = {};
    for (let k = 0, n = 1 + int(4); k < n; k++) fields[int(6)] = `${pick(LOG_KEYS)}=${hex(4 + int(6))}`;
    const e: LogEntryData = {
      traceId: hex(16),
      spanId: hex(8),
      level: 1 + int(4),
      line: int(2000),
      // About half negative: an int32 field, as deltas often are, not sint32.
      deltas: Array.from({ length: 2 + int(5) }, () => signed(100_000)),
      flags: Array.from({ length: 4 }, () => rnd() < 0.5),
      fields,
      payload: Uint8Array.from({ length: 8 + int(24) }, () => int(256)),
    };
    if (rnd() < 0.5) e.user = `u${int(1_000_000)}`;
    if (rnd() < 0.3) e.retries = int(4);
    entries.push(e);
  }
  return { entries, host: "api-7f9c", sentAt: long(1764086400000 + int(86_400_000)) };
}
