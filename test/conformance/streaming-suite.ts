/**
 * Streaming through createClient / createServer, the same behaviours on every transport:
 * test/conformance/conformance.test.ts runs it on memory, TCP, gRPC and NATS. Each test registers
 * the handlers it needs on a fresh server.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  BizError,
  Code,
  Metainfo,
  RpcError,
  type CallContext,
  type CallStats,
  type Client,
  type ClientOptions,
  type Handlers,
  type Middleware,
  type Server,
  type ServerOptions,
} from "meridian-rpc";
import { EchoService, StreamService, type EchoRequest } from "../rpc/gen/echo.js";
import { sleep } from "meridian-rpc/transport";
import { rejection } from "../support/rejection.js";

/** A transport under test: servers and clients on it, closed by `close()`. */
export interface StreamBed {
  /** Its name in test titles. */
  readonly name: string;
  /** The receive window of a stream, in messages (what flow control bounds in-flight messages by). */
  readonly window: number;
  /** Starts a server of StreamService (and EchoService) with these handlers. */
  server(handlers: Partial<Handlers<typeof StreamService>>, options?: Partial<ServerOptions>): Promise<{ server: Server; address: string }>;
  /** A client of StreamService calling `address`. */
  client(address: string, options?: Partial<ClientOptions>): Client<typeof StreamService>;
  /** A client of EchoService calling `address` (on the same transport as the last `client`). */
  echoClient(address: string, options?: Partial<ClientOptions>): Client<typeof EchoService>;
  close(): Promise<void>;
}

/** The echo handlers every bed's server also serves (unary calls next to streams). */
export const echoUnary: Partial<Handlers<typeof EchoService>> = {
  echo: (req) => ({ text: req.text }),
  get: async (req, ctx) => {
    if (req.delayMs > 0) await sleep(req.delayMs, ctx.signal);
    return { text: req.text };
  },
};

/** Resolves when `check` holds, polling every 5 ms; fails after `ms`. */
export async function eventually(check: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Collects a stream's messages, and the error it ends with (if any). */
export async function drain<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; error: RpcError | undefined }> {
  const items: T[] = [];
  try {
    for await (const m of stream) items.push(m);
    return { items, error: undefined };
  } catch (e) {
    expect(e).toBeInstanceOf(RpcError);
    return { items, error: e as RpcError };
  }
}

/** A promise and the function that resolves it. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

async function* texts(...t: string[]): AsyncGenerator<Partial<EchoRequest>> {
  for (const text of t) yield { text };
}

/** Registers the streaming suite for `bed`. */
export function streamingSuite(bed: StreamBed): void {
  const n = bed.name;
  afterEach(() => bed.close());

  describe(`${n} streaming - the three kinds`, () => {
    it(`${n} streaming - server-streaming: messages in order, headers with the first, trailers and backward metainfo at the end`, async () => {
      let seen: CallContext | undefined;
      const { address } = await bed.server(
        {
          async *ticks(req, ctx) {
            seen = ctx;
            ctx.responseHeaders["x-early"] = "1";
            for (let i = 1; i <= 5; i++) yield { text: req.text, count: i };
            ctx.metainfo.setBackward("done", "yes");
          },
        },
        { region: "eu" },
      );
      const metainfo = new Metainfo().setTransient("user", "u1").setPersistent("trace", "t1");
      let onHeaders: Record<string, string> | undefined;
      const stream = bed.client(address, { region: "cn" }).ticks({ text: "a" }, { metainfo, timeoutMs: 5000, onHeaders: (h) => (onHeaders = h) });
      const { items, error } = await drain(stream);
      expect(error).toBeUndefined();
      expect(items.map((m) => `${m.text}${m.count}`)).toEqual(["a1", "a2", "a3", "a4", "a5"]);
      expect(await stream.headers).toMatchObject({ "x-early": "1", "x-served-region": "eu" });
      expect(await stream.trailers).toMatchObject({ RPC_BACKWARD_done: "yes" });
      expect(metainfo.getBackward("done")).toBe("yes");
      expect(onHeaders).toMatchObject({ "x-early": "1", RPC_BACKWARD_done: "yes" });
      expect(seen?.region).toBe("cn");
      expect(seen?.metainfo.getTransient("user")).toBe("u1");
      expect(seen?.metainfo.getPersistent("trace")).toBe("t1");
      expect(seen!.deadline! - Date.now()).toBeGreaterThan(3000);
    });

    it(`${n} streaming - client-streaming: an array or an async generator of requests, one response`, async () => {
      const { address } = await bed.server({
        async collect(requests, ctx) {
          const got: string[] = [];
          for await (const r of requests) got.push(r.text);
          ctx.responseHeaders["x-count"] = String(got.length);
          return { text: got.join(","), count: got.length };
        },
      });
      const client = bed.client(address);
      let headers: Record<string, string> = {};
      expect(await client.collect([{ text: "a" }, { text: "b" }], { onHeaders: (h) => (headers = h) })).toMatchObject({ text: "a,b", count: 2 });
      expect(headers["x-count"]).toBe("2");
      expect(await client.collect(texts("x", "y", "z"))).toMatchObject({ text: "x,y,z", count: 3 });
      expect(await client.collect([])).toMatchObject({ text: "", count: 0 });
    });

    it(`${n} streaming - bidi: replies interleave with requests (ping-pong)`, async () => {
      const { address } = await bed.server({
        async *chat(requests) {
          for await (const r of requests) yield { text: r.text.toUpperCase() };
        },
      });
      // Each request is sent only after the reply to the previous one arrived.
      let next: (() => void) | undefined;
      async function* requests(): AsyncGenerator<Partial<EchoRequest>> {
        for (const t of ["a", "b", "c"]) {
          yield { text: t };
          await new Promise<void>((r) => (next = r));
        }
      }
      const got: string[] = [];
      for await (const m of bed.client(address).chat(requests())) {
        got.push(m.text);
        next?.();
      }
      expect(got).toEqual(["A", "B", "C"]);
    });

    it(`${n} streaming - a server that finishes before reading every request ends the call OK and closes the request stream`, async () => {
      const { address } = await bed.server({
        async *chat(requests) {
          let n = 0;
          for await (const r of requests) {
            yield { text: r.text };
            if (++n === 2) return;
          }
        },
        async collect(requests) {
          for await (const r of requests) return { text: r.text };
          return {};
        },
      });
      let closed = 0;
      let pulled = 0;
      async function* endless(): AsyncGenerator<Partial<EchoRequest>> {
        try {
          for (let i = 0; ; i++) {
            pulled++;
            yield { text: `m${i}` };
          }
        } finally {
          closed++;
        }
      }
      const client = bed.client(address);
      const { items, error } = await drain(client.chat(endless()));
      expect(error).toBeUndefined();
      expect(items.map((m) => m.text)).toEqual(["m0", "m1"]);
      expect((await client.collect(endless())).text).toBe("m0");
      await eventually(() => closed === 2, 3000, "both request streams to be closed");
      // The requests stopped with the call: at most what flow control let through, not forever.
      expect(pulled).toBeLessThan(4 * bed.window);
    });

    it(`${n} streaming - a stream that ends without messages gives its headers and trailers`, async () => {
      const { address } = await bed.server({
        // eslint-disable-next-line require-yield
        async *ticks(_req, ctx) {
          ctx.responseHeaders["x-empty"] = "yes";
        },
      });
      const stream = bed.client(address).ticks({});
      expect((await drain(stream)).items).toEqual([]);
      expect(await stream.headers).toMatchObject({ "x-empty": "yes" });
    });

    it(`${n} streaming - many concurrent streams of every kind and unary calls together`, async () => {
      const { address } = await bed.server({
        async *ticks(req) {
          for (let i = 0; i < 20; i++) yield { text: req.text, count: i };
        },
        async collect(requests) {
          let n = 0;
          for await (const _ of requests) n++;
          return { count: n };
        },
        async *chat(requests) {
          for await (const r of requests) yield { text: r.text };
        },
      });
      const client = bed.client(address);
      const echo = bed.echoClient(address);
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < 30; i++) {
        jobs.push(
          (async () => {
            const { items } = await drain(client.ticks({ text: `s${i}` }));
            expect(items.map((m) => m.count)).toEqual(Array.from({ length: 20 }, (_, k) => k));
            expect(items.every((m) => m.text === `s${i}`)).toBe(true);
          })(),
          (async () => {
            const res = await client.collect(Array.from({ length: 10 + i }, () => ({ text: "x" })));
            expect(res.count).toBe(10 + i);
          })(),
          (async () => {
            const { items } = await drain(client.chat(texts(`b${i}`, `c${i}`)));
            expect(items.map((m) => m.text)).toEqual([`b${i}`, `c${i}`]);
          })(),
          (async () => {
            expect((await echo.echo({ text: `u${i}` })).text).toBe(`u${i}`);
          })(),
        );
      }
      await Promise.all(jobs);
    });
  });

  describe(`${n} streaming - flow control`, () => {
    it(`${n} streaming - backpressure: a slow consumer holds the producer within the window`, async () => {
      let produced = 0;
      const { address } = await bed.server({
        async *ticks() {
          for (let i = 0; i < 200; i++) {
            produced++;
            yield { count: i };
          }
        },
      });
      let consumed = 0;
      let most = 0;
      for await (const m of bed.client(address).ticks({})) {
        expect(m.count).toBe(consumed);
        consumed++;
        if (consumed <= 10 || consumed % 50 === 0) await new Promise((r) => setTimeout(r, 20));
        most = Math.max(most, produced - consumed);
      }
      // The producer ran ahead of the consumer by at most the window (plus the message the
      // server's pump holds and the one the client's iterator peeked at).
      expect(most).toBeLessThanOrEqual(bed.window + 2);
      expect(most).toBeGreaterThanOrEqual(bed.window - 1);
      expect(consumed).toBe(200);
    });

    it(`${n} streaming - backpressure: a handler that reads slowly holds back the client's request stream`, async () => {
      let sent = 0;
      let read = 0;
      let most = 0;
      const { address } = await bed.server({
        async collect(requests) {
          for await (const _ of requests) {
            read++;
            most = Math.max(most, sent - read);
            if (read % 20 === 0) await new Promise((r) => setTimeout(r, 20));
          }
          return { count: read };
        },
      });
      async function* many(): AsyncGenerator<Partial<EchoRequest>> {
        for (let i = 0; i < 150; i++) {
          sent++;
          yield { text: "r" };
        }
      }
      expect((await bed.client(address).collect(many())).count).toBe(150);
      expect(most).toBeLessThanOrEqual(bed.window + 2);
    });
  });

  describe(`${n} streaming - cancellation`, () => {
    it(`${n} streaming - the client breaks out of the loop: the server's signal aborts and its generator's finally runs`, async () => {
      const aborted = gate();
      const cleaned = gate();
      let reason: unknown;
      const { address } = await bed.server({
        async *ticks(_req, ctx) {
          ctx.signal.addEventListener("abort", () => {
            reason = ctx.signal.reason;
            aborted.open();
          });
          try {
            for (let i = 0; ; i++) {
              yield { count: i };
              await sleep(5, ctx.cancellation);
            }
          } finally {
            cleaned.open();
          }
        },
      });
      let got = 0;
      for await (const m of bed.client(address).ticks({})) {
        got = m.count;
        if (m.count === 3) break;
      }
      expect(got).toBe(3);
      await aborted.wait;
      await cleaned.wait;
      expect((reason as RpcError).code).toBe(Code.CANCELLED);
    });

    it(`${n} streaming - cancel() and an AbortSignal end the iteration with CANCELLED and abort the server`, async () => {
      let serverAborts = 0;
      const { address } = await bed.server({
        async *ticks(_req, ctx) {
          ctx.signal.addEventListener("abort", () => serverAborts++);
          for (let i = 0; ; i++) {
            yield { count: i };
            await sleep(5, ctx.cancellation);
          }
        },
      });
      const client = bed.client(address);
      const s = client.ticks({});
      const it = s[Symbol.asyncIterator]();
      await it.next();
      s.cancel();
      const e1 = await rejection(it.next());
      expect(e1.code).toBe(Code.CANCELLED);
      expect((await s.trailers)["rpc-status"]).toBe(String(Code.CANCELLED));

      const ac = new AbortController();
      const s2 = client.ticks({}, { signal: ac.signal });
      const got: number[] = [];
      const e2 = await rejection(
        (async () => {
          for await (const m of s2) {
            got.push(m.count);
            if (m.count === 2) ac.abort();
          }
        })(),
      );
      expect(e2.code).toBe(Code.CANCELLED);
      expect(got).toEqual([0, 1, 2]);
      await eventually(() => serverAborts === 2, 3000, "both server calls to abort");
    });

    it(`${n} streaming - a request stream that throws cancels the call, and the handler sees it`, async () => {
      const handlerError = gate();
      let seen: RpcError | undefined;
      const { address } = await bed.server({
        async collect(requests) {
          try {
            for await (const _ of requests);
          } catch (e) {
            seen = e as RpcError;
            handlerError.open();
            throw e;
          }
          return {};
        },
      });
      async function* broken(): AsyncGenerator<Partial<EchoRequest>> {
        yield { text: "a" };
        await new Promise((r) => setTimeout(r, 20));
        throw new Error("disk on fire");
      }
      const err = await rejection(bed.client(address).collect(broken()));
      expect(err.code).toBe(Code.CANCELLED);
      expect(err.message).toContain("disk on fire");
      await handlerError.wait;
      expect(seen?.code).toBe(Code.CANCELLED);
    });
  });

  describe(`${n} streaming - errors and deadlines`, () => {
    it(`${n} streaming - the server fails mid-stream: the messages before, then its status, headers and metainfo`, async () => {
      const { address } = await bed.server(
        {
          async *ticks(_req, ctx) {
            ctx.responseHeaders["x-h"] = "1";
            yield { count: 1 };
            yield { count: 2 };
            ctx.metainfo.setBackward("where", "mid");
            throw new RpcError(Code.FAILED_PRECONDITION, "out of ticks");
          },
        },
        { region: "eu" },
      );
      const metainfo = new Metainfo();
      const stream = bed.client(address).ticks({}, { metainfo });
      const { items, error } = await drain(stream);
      expect(items.map((m) => m.count)).toEqual([1, 2]);
      expect(error).toMatchObject({ code: Code.FAILED_PRECONDITION, message: "out of ticks" });
      expect(error!.headers).toMatchObject({ "rpc-status": String(Code.FAILED_PRECONDITION), RPC_BACKWARD_where: "mid" });
      expect(await stream.headers).toMatchObject({ "x-h": "1", "x-served-region": "eu" });
      expect(await stream.trailers).toMatchObject({ "rpc-status": String(Code.FAILED_PRECONDITION) });
      expect(metainfo.getBackward("where")).toBe("mid");
    });

    it(`${n} streaming - a business error mid-stream arrives as a BizError; one before any message rejects the call`, async () => {
      const { address } = await bed.server({
        async *ticks(req) {
          if (req.text === "now") throw new BizError(4001, "no ticks for you", { hint: "later" });
          yield { count: 1 };
          throw new BizError(4002, "enough");
        },
        async collect() {
          throw new BizError(4003, "refused", { why: "quota" });
        },
      });
      const client = bed.client(address);
      const mid = await drain(client.ticks({}));
      expect(mid.items).toHaveLength(1);
      expect(mid.error).toBeInstanceOf(BizError);
      expect(mid.error).toMatchObject({ bizCode: 4002, bizMessage: "enough" });
      const now = await drain(client.ticks({ text: "now" }));
      expect(now.error).toMatchObject({ bizCode: 4001, extra: { hint: "later" } });
      const cs = await rejection(client.collect([{ text: "a" }]));
      expect(cs).toBeInstanceOf(BizError);
      expect(cs).toMatchObject({ bizCode: 4003, extra: { why: "quota" } });
    });

    it(`${n} streaming - a handler bug mid-stream is INTERNAL without details, and logged`, async () => {
      const logged: string[] = [];
      const { address } = await bed.server(
        {
          async *chat(requests) {
            for await (const r of requests) {
              if (r.text === "boom") throw new TypeError("secret stack detail");
              yield { text: r.text };
            }
          },
        },
        { logger: { error: (m) => logged.push(m) } },
      );
      const { items, error } = await drain(bed.client(address).chat(texts("a", "boom", "c")));
      expect(items.map((m) => m.text)).toEqual(["a"]);
      expect(error).toMatchObject({ code: Code.INTERNAL, message: "internal error" });
      expect(logged.some((m) => m.includes("Chat"))).toBe(true);
    });

    it(`${n} streaming - the deadline passes mid-stream: DEADLINE_EXCEEDED on the client, the server's signal aborts`, async () => {
      const aborted = gate();
      let reason: RpcError | undefined;
      const { address } = await bed.server({
        async *ticks(_req, ctx) {
          ctx.signal.addEventListener("abort", () => {
            reason = ctx.signal.reason as RpcError;
            aborted.open();
          });
          for (let i = 0; ; i++) {
            yield { count: i };
            await sleep(20, ctx.cancellation);
          }
        },
      });
      const t0 = Date.now();
      const { items, error } = await drain(bed.client(address).ticks({}, { timeoutMs: 150 }));
      expect(error?.code).toBe(Code.DEADLINE_EXCEEDED);
      expect(items.length).toBeGreaterThan(0);
      expect(Date.now() - t0).toBeLessThan(2000);
      await aborted.wait;
      expect([Code.DEADLINE_EXCEEDED, Code.CANCELLED]).toContain(reason?.code);
    });

    it(`${n} streaming - a client-streaming call past its deadline rejects DEADLINE_EXCEEDED`, async () => {
      const { address } = await bed.server({
        async collect(requests) {
          for await (const _ of requests);
          return {};
        },
      });
      async function* slow(): AsyncGenerator<Partial<EchoRequest>> {
        for (;;) {
          yield { text: "." };
          await new Promise((r) => setTimeout(r, 30));
        }
      }
      const err = await rejection(bed.client(address).collect(slow(), { timeoutMs: 120 }));
      expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    });

    it(`${n} streaming - a method without a handler is UNIMPLEMENTED, before any message`, async () => {
      const { address } = await bed.server({});
      const { items, error } = await drain(bed.client(address).ticks({}));
      expect(items).toEqual([]);
      expect(error?.code).toBe(Code.UNIMPLEMENTED);
      expect((await rejection(bed.client(address).collect([]))).code).toBe(Code.UNIMPLEMENTED);
    });
  });

  describe(`${n} streaming - middleware`, () => {
    it(`${n} streaming - stats hooks and middleware see a stream's end, on both sides`, async () => {
      const serverStats: CallStats[] = [];
      const clientStats: CallStats[] = [];
      const order: string[] = [];
      const log: Middleware = (next) => async (req) => {
        order.push(`${req.ctx.side} ${req.method.name} start`);
        const res = await next(req);
        order.push(`${req.ctx.side} ${req.method.name} open`);
        return res;
      };
      const { address } = await bed.server(
        {
          async *ticks(_req, ctx) {
            for (let i = 0; i < 3; i++) {
              yield { count: i };
              await sleep(20, ctx.cancellation);
            }
          },
          async *chat() {
            yield { text: "x" };
            throw new RpcError(Code.ABORTED, "stop");
          },
        },
        { stats: [{ finish: (_c, s) => serverStats.push(s) }], middleware: [log] },
      );
      const client = bed.client(address, { stats: [{ finish: (_c, s) => clientStats.push(s) }], middleware: [log] });
      await drain(client.ticks({}));
      await drain(client.chat(texts("a")));
      await eventually(() => serverStats.length === 2 && clientStats.length === 2, 3000, "stats of both calls");
      for (const stats of [serverStats, clientStats]) {
        const ticks = stats.find((s) => s.method === "Ticks")!;
        expect(ticks.code).toBe(Code.OK);
        expect(ticks.durationMs).toBeGreaterThanOrEqual(40); // the stream's duration, not its opening
        expect(stats.find((s) => s.method === "Chat")?.code).toBe(Code.ABORTED);
      }
      expect(order.slice(0, 4)).toEqual(["client Ticks start", "server Ticks start", "server Ticks open", "client Ticks open"]);
    });

    it(`${n} streaming - the server's metrics count streams by how they ended`, async () => {
      const { server, address } = await bed.server({
        async *ticks(req) {
          yield { count: 1 };
          if (req.text === "fail") throw new RpcError(Code.NOT_FOUND, "gone");
        },
      });
      const client = bed.client(address);
      await drain(client.ticks({}));
      await drain(client.ticks({ text: "fail" }));
      await eventually(() => server.metrics().calls === 2, 3000, "both calls counted");
      expect(server.metrics().methods["rpctest.StreamService/Ticks"]).toMatchObject({ calls: 2, errors: { NOT_FOUND: 1 } });
    });

    it(`${n} streaming - the limiter holds a stream's place until it ends`, async () => {
      const release = gate();
      const { address } = await bed.server(
        {
          async *ticks(_req, ctx) {
            yield { count: 0 };
            await Promise.race([release.wait, sleep(5000, ctx.cancellation)]);
          },
        },
        { limiter: { maxConcurrency: 1 } },
      );
      const client = bed.client(address);
      const first = client.ticks({});
      const it = first[Symbol.asyncIterator]();
      expect((await it.next()).value).toMatchObject({ count: 0 });
      const refused = await drain(client.ticks({}));
      expect(refused.error?.code).toBe(Code.RESOURCE_EXHAUSTED);
      release.open();
      expect((await it.next()).done).toBe(true);
      expect((await drain(client.ticks({}))).error).toBeUndefined();
    });

    it(`${n} streaming - retry: a server-streaming call retried before any message, never after one`, async () => {
      let calls = 0;
      const { address } = await bed.server({
        async *ticks() {
          calls++;
          if (calls === 1) throw new RpcError(Code.UNAVAILABLE, "warming up");
          yield { count: calls };
          if (calls === 2) throw new RpcError(Code.UNAVAILABLE, "went away mid-stream");
        },
      });
      const client = bed.client(address, { retry: { maxAttempts: 3, initialBackoffMs: 1 } });
      const { items, error } = await drain(client.ticks({}));
      // Attempt 1 failed before any message and was retried; attempt 2 failed after one: not retried.
      expect(calls).toBe(2);
      expect(items.map((m) => m.count)).toEqual([2]);
      expect(error?.code).toBe(Code.UNAVAILABLE);
    });

    it(`${n} streaming - a call made by a streaming handler inherits its deadline and metainfo`, async () => {
      let inner: CallContext | undefined;
      const { address } = await bed.server({
        async *ticks(_req, ctx) {
          inner = ctx;
          yield { count: 0 };
        },
        async *chat(requests, ctx) {
          for await (const r of requests) {
            // A nested call from inside the stream: inherits through AsyncLocalStorage.
            const got = await drain(bed.client(address).ticks({}, { parent: ctx }));
            yield { text: `${r.text}:${got.items.length}` };
          }
        },
      });
      const metainfo = new Metainfo().setPersistent("tenant", "t9");
      const { items } = await drain(bed.client(address).chat(texts("a"), { timeoutMs: 3000, metainfo }));
      expect(items.map((m) => m.text)).toEqual(["a:1"]);
      expect(inner?.metainfo.getPersistent("tenant")).toBe("t9");
      expect(inner!.deadline! - Date.now()).toBeLessThanOrEqual(3000);
    });
  });

  describe(`${n} streaming - shutdown`, () => {
    it(`${n} streaming - graceful close lets a stream in flight finish, and refuses new ones`, async () => {
      const go = gate();
      const { server, address } = await bed.server({
        async *ticks(_req, ctx) {
          yield { count: 1 };
          await Promise.race([go.wait, sleep(5000, ctx.cancellation)]);
          yield { count: 2 };
        },
      });
      const client = bed.client(address);
      const stream = client.ticks({});
      const it = stream[Symbol.asyncIterator]();
      expect((await it.next()).value).toMatchObject({ count: 1 });
      const closed = server.close({ graceMs: 3000 });
      await new Promise((r) => setTimeout(r, 30));
      go.open();
      expect((await it.next()).value).toMatchObject({ count: 2 });
      expect((await it.next()).done).toBe(true);
      await closed;
      const after = await drain(client.ticks({}));
      expect(after.error?.code).toBe(Code.UNAVAILABLE);
    });

    it(`${n} streaming - a stream still running when the grace period ends is cut off with UNAVAILABLE`, async () => {
      const aborted = gate();
      const { server, address } = await bed.server({
        async *ticks(_req, ctx) {
          ctx.signal.addEventListener("abort", () => aborted.open());
          yield { count: 1 };
          await sleep(10_000, ctx.cancellation);
        },
      });
      const stream = bed.client(address).ticks({});
      const it = stream[Symbol.asyncIterator]();
      await it.next();
      const t0 = Date.now();
      await server.close({ graceMs: 100 });
      expect(Date.now() - t0).toBeLessThan(3000);
      expect((await rejection(it.next())).code).toBe(Code.UNAVAILABLE);
      await aborted.wait;
    });
  });
}
