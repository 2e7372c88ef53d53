/**
 * Admission control over the real TCP transport: a call whose caller has given up by the time
 * the server could run it never reaches its handler (the client stamps when it sent each call, and
 * the server counts the wait before it read it against the deadline), and a standing queue is shed
 * with RESOURCE_EXHAUSTED that a client may retry elsewhere.
 */
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Code, RpcError, createClient, createServer, type CallContext, type ServerOptions, HeaderKeys } from "meridian-rpc";
import { Writer } from "meridian-rpc/runtime";
import { TcpClientTransport, TcpServerTransport, DEFAULT_FRAME_LIMITS } from "meridian-rpc/transports/tcp";
import { IntKey, MessageType, StrKey } from "../../transports/tcp/wire.js";
import {
  FrameHead,
  FrameSplitter,
  beginFrame,
  endFrame,
  endHeader,
  parseFrame,
  writeIntInfo,
  writeKitexMeta,
  writeStringInfo,
} from "../../transports/tcp/wire.js";
import { EchoRequest, EchoService } from "../rpc/gen/echo.js";
import { tsxChild } from "../support/processes.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined);
});

/** Busy-waits `ms` of CPU, as a handler that computes would. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

async function start(handle: (req: EchoRequest, ctx: CallContext) => void, options: Partial<ServerOptions> = {}) {
  const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1" }), metrics: false, logger: { error: () => {} }, ...options });
  server.register(EchoService, {
    echo: (req, ctx) => {
      handle(req, ctx);
      return { text: req.text };
    },
  });
  const { address } = await server.listen();
  cleanup.push(() => server.close({ graceMs: 0 }));
  return address;
}

/** A raw connection that sends Echo requests with the given SentAt stamp and timeout, and reads each answer's headers. */
async function rawClient(address: string) {
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  const socket = connect({ host: "127.0.0.1", port });
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  cleanup.push(async () => void socket.destroy());
  const answers: Record<string, string>[] = [];
  let waiting: (() => void) | undefined;
  const splitter = new FrameSplitter(DEFAULT_FRAME_LIMITS.maxFrameSize, (buf, s, e) => {
    answers.push({ ...parseFrame(buf, s, e, DEFAULT_FRAME_LIMITS, new FrameHead()).headers });
    waiting?.();
  });
  socket.on("data", (chunk: Buffer) => splitter.push(chunk));
  let seq = 0;
  return async (sentAt: number, timeoutMs: number, text: string): Promise<Record<string, string>> => {
    const w = new Writer(256);
    const mark = beginFrame(w, ++seq);
    const n = writeStringInfo(w, {}, StrKey.service, EchoService.typeName) + writeIntInfo(w, [[IntKey.RPCTimeout, String(timeoutMs)], [IntKey.SentAt, String(sentAt)]]);
    endHeader(w, mark, n, DEFAULT_FRAME_LIMITS);
    writeKitexMeta(w, MessageType.Call, "Echo", seq);
    EchoRequest.encodeTo(EchoRequest.create({ text }), w);
    endFrame(w, mark, DEFAULT_FRAME_LIMITS);
    const before = answers.length;
    const answered = new Promise<void>((resolve) => (waiting = () => answers.length > before && resolve()));
    socket.write(w.finish());
    await answered;
    return answers[before]!;
  };
}

describe("tcp admission", () => {
  it("tcp admission - a call whose caller has given up while it waited to be read never reaches its handler; one with time left runs with what is left", async () => {
    const ran: { text: string; left: number }[] = [];
    const address = await start((req, ctx) => ran.push({ text: req.text, left: ctx.deadline! - Date.now() }));
    const send = await rawClient(address);
    // The first call on the connection sets the baseline: it did not queue.
    expect((await send(Date.now(), 5000, "fresh"))[HeaderKeys.status]).toBeUndefined();
    const stale = await send(Date.now() - 5000, 1000, "stale");
    expect(stale[HeaderKeys.status]).toBe(String(Code.DEADLINE_EXCEEDED));
    expect(stale[HeaderKeys.message]).toMatch(/deadline passed before its handler could start \(it waited \d+ ms\)/);
    expect(Number(stale[HeaderKeys.queueDelay])).toBeGreaterThanOrEqual(4900);
    // Read 20 ms after it was sent (under the 25 ms interval): a burst, not a standing queue, so it
    // runs, with what is left.
    const late = await send(Date.now() - 20, 1000, "late");
    expect(late[HeaderKeys.status]).toBeUndefined();
    expect(ran.map((r) => r.text)).toEqual(["fresh", "late"]);
    expect(ran[1]!.left).toBeLessThan(990); // about 1000 - 20, less the baseline latency
    expect(ran[1]!.left).toBeGreaterThan(0);
  });

  it("tcp admission - a standing queue is shed with RESOURCE_EXHAUSTED (notSent, with the delay as a hint); every call is answered", async () => {
    let ran = 0;
    const address = await start(() => {
      ran++;
      spin(2);
    });
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    // A 2 s timeout: calls may wait 100 ms (a twentieth) in a standing queue, 500 ms in a burst;
    // the 400 calls of 2 ms make a queue of 800 ms.
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 2000 });
    const n = 400;
    const outcomes = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        client.echo({ text: `c${i}` }).then(
          () => "ok" as const,
          (e: unknown) => e as RpcError,
        ),
      ),
    );
    const shed = outcomes.filter((o): o is RpcError => o !== "ok");
    expect(shed.length).toBeGreaterThan(0);
    for (const e of shed) {
      expect(e.code).toBe(Code.RESOURCE_EXHAUSTED);
      expect(e.notSent).toBe(true);
      expect(Number(e.headers[HeaderKeys.queueDelay])).toBeGreaterThan(5);
    }
    expect(ran).toBe(n - shed.length);
  });

  /**
   * A fresh server (default admission) whose handler waits `waitMs` on a timer, as one waiting on
   * I/O would, and a client of it whose calls have `timeoutMs`: `burst(n, text)` sends n calls at
   * once on one connection and gives what failed (messages) and how long the burst took.
   */
  async function waitingServer(waitMs: number, timeoutMs: number, maxConcurrentCalls?: number) {
    const stats = { ran: 0 };
    const server = createServer({ transport: new TcpServerTransport({ host: "127.0.0.1", maxConcurrentCalls }), metrics: false, logger: { error: () => {} } });
    server.register(EchoService, {
      echo: async (req) => {
        stats.ran++;
        await sleep(waitMs);
        return { text: req.text };
      },
    });
    const { address } = await server.listen();
    cleanup.push(() => server.close({ graceMs: 0 }));
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs, requeue: false });
    const burst = async (n: number, text: string) => {
      const t0 = performance.now();
      const outcomes = await Promise.all(Array.from({ length: n }, () => client.echo({ text }).then(() => "ok", (e: unknown) => (e as RpcError).message)));
      return { failed: outcomes.filter((o) => o !== "ok"), ms: performance.now() - t0 };
    };
    return { stats, burst };
  }

  it("tcp admission - a burst of 1000 calls on one connection to a fresh server whose handlers wait on I/O is served whole", async () => {
    const { stats, burst } = await waitingServer(100, 20_000);
    // Past the first 256 (maxConcurrentCalls) the calls wait in the socket for the first ones to
    // end; the code of a fresh server is not yet optimized, so each start takes many times longer.
    const { failed } = await burst(1000, "c");
    expect(failed).toEqual([]);
    expect(stats.ran).toBe(1000);
  });

  /** Runs `file` (next to this one) with `args` in a process of its own, killed after the test; `json()` is the next JSON line it prints. */
  function child(file: string, args: string[] = []) {
    const c = tsxChild(new URL(file, import.meta.url), args);
    cleanup.push(async () => void c.proc.kill("SIGKILL"));
    return c;
  }

  it("tcp admission - a burst of 500 calls on each of eight connections to a fresh server in its own process is served whole", async () => {
    const { address } = await child("./admission-server.ts").json<{ address: string }>();
    const transport = new TcpClientTransport({ connectionsPerAddress: 8 });
    cleanup.push(() => transport.close());
    // 60 s timeouts: a queued call may wait a share of it, capped at 1 s (a cap of 100 ms shed
    // 150 of these calls, for waits of 108 ms, on a loaded machine). The run queue predicts no
    // waits at a server this fresh (fewer than 512 starts): its first, cold starts would have the
    // last of 4000 calls look 1.5 s away, though the queue drains within a second.
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 60_000, requeue: false });
    // Each read hands over all the calls it holds, past a connection's limit of 256: thousands
    // queue for their handlers' start at once (1024, the old maxQueued, refused most of them).
    const outcomes = await Promise.all(Array.from({ length: 4000 }, (_, i) => client.echo({ text: `c${i}` }).then(() => "ok", (e: unknown) => (e as RpcError).message)));
    expect(outcomes.filter((o) => o !== "ok")).toEqual([]);
  });

  it("tcp admission - a peer flooding at four times capacity with calls of a 30-day timeout does not slow a light client", async () => {
    // The timeout is the caller's to choose, and a call may wait a share of it: uncapped, this
    // flood was never shed, filled the queue, and the light client's calls (one every 20 ms)
    // waited behind it: 10 answered in 2 s, median 61 ms, p90 743 ms. Its calls now go ahead of
    // the flood's, and the flood's are shed: a peer far over its fair share gets no share of its
    // timeout in a standing queue.
    const { address } = await child("./admission-server.ts", ["spin"]).json<{ address: string }>();
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 1000, requeue: false });
    await client.echo({ text: "first" });
    const flood = child("./admission-flood.ts", [address, String(30 * 86_400_000), "4000", "2500"]);
    await sleep(300);
    const took: number[] = [];
    for (const end = performance.now() + 2000; performance.now() < end; await sleep(20)) {
      const t0 = performance.now();
      await client.echo({ text: "light" });
      took.push(performance.now() - t0);
    }
    const flooded = await flood.json<{ sent: number; ok: number; refused: number; other: number }>();
    expect(flooded.refused).toBeGreaterThan(flooded.sent / 4); // the flood was shed (uncapped: none of it)
    took.sort((a, b) => a - b);
    // Not a benchmark: coarse bounds that the old behaviour misses by far (a call every 20 ms
    // for 2 s is ~90 calls; uncapped, 10).
    expect(took.length).toBeGreaterThan(40);
    expect(took[Math.floor(took.length / 2)]).toBeLessThan(30);
  });

  it("tcp admission - the time a connection is not read for being at its limit of calls is not judged as queueing", async () => {
    // 300 calls of 300 ms through a limit of 64 at a time: the last wait about a second in the
    // socket, more than a quarter of their 3 s timeout (what a burst may wait), and are served.
    const { stats, burst } = await waitingServer(300, 3000, 64);
    // Requests of 2 KB, so that a read holds a few dozen: the server dispatches what it has read.
    const { failed, ms } = await burst(300, "x".repeat(2048));
    expect(failed).toEqual([]);
    expect(stats.ran).toBe(300);
    expect(ms).toBeGreaterThan(900); // at least three rounds: the limit held
  });

  it("tcp admission - with admission: false the same queue is served whole", async () => {
    let ran = 0;
    const address = await start(
      () => {
        ran++;
        spin(2);
      },
      { admission: false },
    );
    const transport = new TcpClientTransport();
    cleanup.push(() => transport.close());
    const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 20_000 });
    await Promise.all(Array.from({ length: 400 }, (_, i) => client.echo({ text: `c${i}` })));
    expect(ran).toBe(400);
  });

  it("tcp admission - with maxEventLoopDelayMs, calls read while the event loop runs late are shed (critical ones run) until it catches up; without it they run", async () => {
    /** Sends five normal calls and a critical one, then stalls this process's event loop (the server's too) 60 ms before the server can read them. */
    const stalled = async (admission: ServerOptions["admission"]) => {
      let ran = 0;
      const address = await start(() => ran++, { admission });
      const transport = new TcpClientTransport();
      cleanup.push(() => transport.close());
      const client = createClient(EchoService, { transport, endpoints: [{ address }], timeoutMs: 5000, requeue: false });
      await client.echo({ text: "warm" });
      ran = 0;
      const outcome = (p: Promise<unknown>) =>
        p.then(
          () => "ok",
          (e: unknown) => e as RpcError,
        );
      const calls = [...Array.from({ length: 5 }, () => outcome(client.echo({ text: "n" }))), outcome(client.echo({ text: "c" }, { headers: { "x-priority": "critical" } }))];
      spin(60);
      const outcomes = await Promise.all(calls);
      return { outcomes, ran: () => ran, client };
    };

    // intervalMs 200: the queue shedder lets calls wait that long, so what is shed here is the loop's delay.
    const bounded = await stalled({ intervalMs: 200, maxEventLoopDelayMs: 20 });
    const shed = bounded.outcomes.filter((o): o is RpcError => o !== "ok");
    expect(bounded.outcomes.at(-1)).toBe("ok");
    expect(shed.length).toBeGreaterThan(0);
    for (const e of shed) {
      expect(e.code).toBe(Code.RESOURCE_EXHAUSTED);
      expect(e.notSent).toBe(true);
      expect(e.message).toMatch(/its event loop runs \d+ ms late \(more than maxEventLoopDelayMs, 20 ms\)/);
      expect(Number(e.headers[HeaderKeys.queueDelay])).toBeGreaterThan(20);
    }
    expect(bounded.ran()).toBe(6 - shed.length);
    // Caught up (the worst delay is remembered for intervalMs): served again.
    await new Promise((r) => setTimeout(r, 300));
    expect((await bounded.client.echo({ text: "after" })).text).toBe("after");

    const unbounded = await stalled({ intervalMs: 200 });
    expect(unbounded.outcomes).toEqual(Array(6).fill("ok"));
    expect(unbounded.ran()).toBe(6);
  });

  it("tcp admission - maxEventLoopDelayMs must be a number > 0", () => {
    for (const bad of [0, -1, Number.NaN, Infinity]) {
      expect(() => createServer({ transport: new TcpServerTransport(), admission: { maxEventLoopDelayMs: bad } })).toThrow(/maxEventLoopDelayMs must be a number > 0/);
    }
  });
});
