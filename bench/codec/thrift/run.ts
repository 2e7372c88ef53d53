/**
 * The Thrift codec benchmark: Meridian's schema-driven Thrift Binary and Compact codecs against
 * Apache Thrift's JavaScript library (the `thrift` package, with the code its compiler generates
 * from feed.thrift) on the feed and page fixtures, in the same run.
 *
 *   npm run bench:thrift [-- --time <ms per task>] [-- --rounds <n>] [-- --quick]
 *
 * Before timing anything it checks that both libraries write the same bytes for the same message
 * and that each decodes the other's bytes back to its own message, and stops if not. Prints the
 * tables on stdout and writes bench/results/thrift.json.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual, parseArgs } from "node:util";
import { encodeShared, type ThriftStructValue } from "meridian-rpc/runtime";
import { thriftReader, thriftWriter, type ThriftProtocolName } from "../../../runtime/codec/thrift/protocol.js";
import { decodeStruct, encodeStruct } from "../../../runtime/codec/thrift/struct.js";
import { loadThriftFiles } from "../../../idl/thrift/link.js";
import { ThriftSchemas } from "../../../idl/thrift/schema.js";
import { fixtures, type FeedData, type Fixture, type Size } from "../data.js";
import { CALLS_PER_SAMPLE, loadAverageAtStart, machineMeta, packageVersion, ROUND_USAGE, roundOptions, runRounds, type Entry } from "../harness.js";
import { addRatios, formatResults } from "../report.js";
import type { Result } from "../result.js";
import { apache, apacheMessage, generated, meridianMessage, type ApacheStruct } from "./messages.js";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const PROTOCOLS: readonly ThriftProtocolName[] = ["binary", "compact"];
/** What the checks establish before anything is timed. */
const CHECKED = "for feed and page, over Binary and Compact: the same bytes as Apache Thrift, and each library decodes the other's bytes to its own message";

const USAGE = `usage: bench/codec/thrift/run.ts [--time <ms>] [--rounds <n>] [--quick]
${ROUND_USAGE}`;

// --- The two libraries, each bound to one fixture and one protocol ----------------------------

/** One library's codec of bench.FeedResponse over one protocol, with the fixture in its representation. */
interface Side {
  /** Row label: library and protocol, "meridian binary". */
  readonly label: string;
  readonly library: "meridian" | "thrift";
  readonly message: unknown;
  encode(message: unknown): Uint8Array;
  decode(bytes: Buffer): unknown;
}

const FEED_SCHEMA = new ThriftSchemas(loadThriftFiles([`${HERE}feed.thrift`], { includeDirs: [HERE] })).struct("FeedResponse", "feed.thrift");

/**
 * Meridian: encodeStruct/decodeStruct by the schema of feed.thrift; encode bump-allocates from
 * the shared pooled slab (bytes safe to keep, as generated `encode()` does); decode is eager,
 * binary fields are views into the input.
 */
function meridianSide(protocol: ThriftProtocolName, feed: FeedData<bigint>): Side {
  return {
    label: `meridian ${protocol}`,
    library: "meridian",
    message: meridianMessage(feed),
    encode: (m) => encodeShared((w) => encodeStruct(thriftWriter(protocol, w), FEED_SCHEMA, m as ThriftStructValue)),
    decode: (bytes) => decodeStruct(thriftReader(protocol, bytes), FEED_SCHEMA),
  };
}

/**
 * Apache: the generated FeedResponse's write/read over one reused TBufferedTransport each way.
 * Encode flushes into a new Buffer (what the transport hands its callback); decode points the
 * transport's input buffer at the bytes, as TBufferedTransport.receiver does without its copy.
 */
function apacheSide(protocol: ThriftProtocolName, feed: FeedData<number>): Side {
  const Protocol = protocol === "binary" ? apache.TBinaryProtocol : apache.TCompactProtocol;
  let flushed: Buffer = Buffer.alloc(0);
  const out = new apache.TBufferedTransport(undefined, (message) => (flushed = message));
  const writer = new Protocol(out);
  const input = new apache.TBufferedTransport();
  const reader = new Protocol(input);
  return {
    label: `apache ${protocol}`,
    library: "thrift",
    message: apacheMessage(feed),
    encode: (m) => {
      (m as ApacheStruct).write(writer);
      out.flush();
      return flushed;
    },
    decode: (bytes) => {
      input.inBuf = bytes;
      input.readCursor = 0;
      input.writeCursor = bytes.length;
      const m = new generated.FeedResponse();
      m.read(reader);
      return m;
    },
  };
}

// --- Checks -----------------------------------------------------------------------------------

/** A value with class instances as plain objects and byte arrays as plain Uint8Arrays, for comparing. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Uint8Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [plain(k), plain(x)]));
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/**
 * Checks one fixture over one protocol: Meridian's bytes equal Apache's, and each library decodes
 * the other's bytes back to its own message. Returns the encoded size; throws on any difference,
 * since timing codecs that disagree would measure nothing.
 */
function check(size: Size, meridian: Side, theirs: Side): number {
  const a = Buffer.from(meridian.encode(meridian.message));
  const b = Buffer.from(theirs.encode(theirs.message));
  const what = `${size} ${meridian.label} against ${theirs.label}`;
  if (!a.equals(b)) {
    let at = 0;
    while (at < a.length && a[at] === b[at]) at++;
    throw new Error(`${what}: the bytes differ (${a.length} B and ${b.length} B, first at byte ${at})`);
  }
  if (!isDeepStrictEqual(plain(theirs.decode(a)), plain(theirs.message))) throw new Error(`${what}: Apache's decode of Meridian's bytes is not the message`);
  if (!isDeepStrictEqual(plain(meridian.decode(b)), plain(meridian.message))) throw new Error(`${what}: Meridian's decode of Apache's bytes is not the message`);
  return a.length;
}

// --- The run ----------------------------------------------------------------------------------

function options() {
  const { values } = parseArgs({
    options: { time: { type: "string" }, rounds: { type: "string" }, quick: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  return roundOptions(values, USAGE);
}

function main(): void {
  const opts = options();
  const started = performance.now();
  const load = loadAverageAtStart();
  const feeds = fixtures().filter((f): f is Extract<Fixture, { kind: "feed" }> => f.kind === "feed");

  const wireBytes: Record<string, Record<string, number>> = {};
  const entries: Entry[] = [];
  for (const f of feeds) {
    wireBytes[f.size] = {};
    const pairs = PROTOCOLS.map((protocol) => [meridianSide(protocol, f.bigint), apacheSide(protocol, f.data)] as const);
    PROTOCOLS.forEach((protocol, i) => (wireBytes[f.size]![protocol] = check(f.size, ...pairs[i]!)));
    for (const op of ["encode", "decode"] as const) {
      for (const side of pairs.flat()) {
        const bytes = Buffer.from(side.encode(side.message));
        const run = op === "encode" ? () => side.encode(side.message) : () => side.decode(bytes);
        entries.push({ name: `${f.size} ${op} ${side.label}`, size: f.size, op, label: side.label, library: side.library, run });
      }
    }
  }
  console.log(`checked: ${CHECKED}`);

  const { results, timerOverheadMs } = runRounds(entries, opts);
  const byProtocol = (protocol: ThriftProtocolName): Result[] => results.filter((r) => r.label.endsWith(` ${protocol}`));
  for (const protocol of PROTOCOLS) addRatios(byProtocol(protocol), `apache ${protocol}`);
  const seconds = (performance.now() - started) / 1000;

  for (const protocol of PROTOCOLS) {
    const describe = (size: Size): string => {
      const f = feeds.find((x) => x.size === size)!;
      return `== ${size}, Thrift ${protocol}: ${f.what}, ${wireBytes[size]![protocol]} B; ${CALLS_PER_SAMPLE[size]} calls per sample`;
    };
    console.log(`\n${formatResults(byProtocol(protocol), `apache ${protocol}`, describe)}`);
  }
  console.log(
    `\nops/s = 1 / mean latency; p99 = 99th percentile of the samples (a sample is the mean of the calls per sample); ` +
      `both from the median of ${opts.rounds} round(s). "vs apache": Meridian's ops/s ÷ Apache's (above 1 is faster) ` +
      `and p99 ÷ Apache's (below 1 is a shorter tail), each the median of the ratios within each round.`,
  );

  const report = {
    meta: {
      ...machineMeta(load, opts.quick),
      options: { ...opts, callsPerSample: CALLS_PER_SAMPLE },
      timerOverheadNs: timerOverheadMs * 1e6,
      seconds,
      versions: { thrift: packageVersion("thrift"), tinybench: packageVersion("tinybench"), generatedBy: "Thrift compiler 0.17.0" },
      representations: {
        meridian: "i64 bigint, binary Uint8Array (decoded: a view into the input), map Map; encode into the shared pooled slab",
        thrift: "generated classes; i64 node-int64 Int64, binary Buffer (decoded: a copy), map object; one TBufferedTransport each way",
      },
    },
    wireBytes,
    checks: CHECKED,
    results,
  };
  writeFileSync(`${ROOT}bench/results/thrift.json`, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote bench/results/thrift.json (${seconds.toFixed(0)} s)`);
}

main();
