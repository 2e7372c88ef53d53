import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createLink, createSocksRouter, type Link } from "../../tools/linkproxy/index.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An echo server on 127.0.0.1 (optionally pausing reads for `pauseMs` first). */
async function echoServer(pauseMs = 0): Promise<{ port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
    if (pauseMs > 0) {
      socket.pause();
      setTimeout(() => socket.pipe(socket), pauseMs);
    } else socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

async function link(options: Parameters<typeof createLink>[0]): Promise<Link> {
  const l = await createLink(options);
  cleanups.push(() => l.close());
  return l;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" }, () => resolve(socket));
    socket.once("error", reject);
    cleanups.push(() => void socket.destroy());
  });
}

/** Reads exactly `n` bytes (or fails after `timeoutMs`). */
function read(socket: net.Socket, n: number, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => done(new Error(`read ${got} of ${n} bytes in ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) done();
    };
    const onClose = () => done(new Error(`connection closed after ${got} of ${n} bytes`));
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    };
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

function closed(socket: net.Socket, timeoutMs = 3000): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}



describe("linkproxy", () => {
  it("linkproxy - forwards both ways, each direction delayed by the one-way latency", async () => {
    const { port } = await echoServer();
    const l = await link({ target: `127.0.0.1:${port}`, latencyMs: 60 });
    const socket = await connect(l.port);
    const started = performance.now();
    socket.write("ping");
    expect((await read(socket, 4)).toString()).toBe("ping");
    // A round trip crosses the link twice; it can never be faster than that.
    expect(performance.now() - started).toBeGreaterThanOrEqual(115);
    l.setLatency(0);
    socket.write("pong");
    expect((await read(socket, 4)).toString()).toBe("pong");
    expect(l.stats).toMatchObject({ connections: 1, accepted: 1, forwardedBytes: 16, droppedBytes: 0 });
  });

  it("linkproxy - keeps byte order under jitter and carries large transfers intact under backpressure", async () => {
    const { port } = await echoServer(300);
    const l = await link({ target: `127.0.0.1:${port}`, latencyMs: 5, jitterMs: 30, maxQueuedBytes: 16 * 1024 });
    const socket = await connect(l.port);
    const payload = randomBytes(2 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 1000) socket.write(payload.subarray(i, i + 1000));
    const echoed = await read(socket, payload.length, 20_000);
    expect(createHash("sha256").update(echoed).digest("hex")).toBe(createHash("sha256").update(payload).digest("hex"));
  });

  it("linkproxy - blackhole drops data but keeps connections open; heal resets the ones that lost data", async () => {
    const { port } = await echoServer();
    const l = await link({ target: `127.0.0.1:${port}` });
    const busy = await connect(l.port);
    const idle = await connect(l.port);
    busy.write("a");
    expect((await read(busy, 1)).toString()).toBe("a");
    l.blackhole(true);
    expect(l.state).toBe("blackhole");
    busy.write("lost");
    await expect(read(busy, 1, 300)).rejects.toThrow(/read 0 of 1/);
    expect(busy.destroyed).toBe(false);
    // A connection made while cut looks open but goes nowhere.
    const during = await connect(l.port);
    during.write("x");
    await expect(read(during, 1, 200)).rejects.toThrow(/read 0 of 1/);
    l.heal();
    expect(await closed(busy)).toBe(true);
    expect(await closed(during)).toBe(true);
    // The idle connection lost nothing and carries on.
    idle.write("b");
    expect((await read(idle, 1)).toString()).toBe("b");
    const fresh = await connect(l.port);
    fresh.write("c");
    expect((await read(fresh, 1)).toString()).toBe("c");
    expect(l.stats.droppedBytes).toBeGreaterThanOrEqual(4);
  });

  it("linkproxy - drop resets every connection and refuses new ones until healed", async () => {
    const { port } = await echoServer();
    const l = await link({ target: `127.0.0.1:${port}` });
    const socket = await connect(l.port);
    socket.on("error", () => undefined);
    l.drop();
    expect(await closed(socket)).toBe(true);
    // Refused: reset during or right after the handshake.
    const refused = await connect(l.port).then(
      (s) => {
        s.on("error", () => undefined);
        return closed(s);
      },
      () => true,
    );
    expect(refused).toBe(true);
    l.heal();
    const again = await connect(l.port);
    again.write("ok");
    expect((await read(again, 2)).toString()).toBe("ok");
  });

  it("linkproxy - a SOCKS5 router sends each connection through the link of its destination", async () => {
    const a = await echoServer();
    const b = await echoServer();
    const toA = await link({ listen: false, target: `127.0.0.1:${a.port}` });
    const toB = await link({ listen: false, target: `127.0.0.1:${b.port}` });
    const router = await createSocksRouter({ route: (_host, port) => (port === 1001 ? toA : port === 1002 ? toB : undefined) });
    cleanups.push(() => router.close());
    const viaSocks = async (host: string, port: number): Promise<{ socket: net.Socket; reply: Buffer }> => {
      const socket = await connect(router.port);
      socket.write(Buffer.from([5, 1, 0]));
      expect([...(await read(socket, 2))]).toEqual([5, 0]);
      const name = Buffer.from(host);
      const request = Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]);
      // The first payload bytes may travel with the request.
      socket.write(Buffer.concat([request, Buffer.from("hi")]));
      return { socket, reply: await read(socket, 10) };
    };
    const first = await viaSocks("localhost.", 1001);
    expect(first.reply[1]).toBe(0);
    expect((await read(first.socket, 2)).toString()).toBe("hi");
    const second = await viaSocks("localhost.", 1002);
    expect((await read(second.socket, 2)).toString()).toBe("hi");
    expect([toA.stats.accepted, toB.stats.accepted]).toEqual([1, 1]);
    // Cutting one link leaves the other alone.
    toA.blackhole(true);
    first.socket.write("zz");
    await expect(read(first.socket, 2, 200)).rejects.toThrow();
    second.socket.write("yy");
    expect((await read(second.socket, 2)).toString()).toBe("yy");
    const refused = await viaSocks("localhost.", 9);
    expect(refused.reply[1]).toBe(2);
  });
});
