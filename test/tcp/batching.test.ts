/**
 * How a FrameConnection hands a tick's frames to the socket (batching "tick"): one write at the
 * end of a short tick, and early writes in a long one, after 16 frames, then 64 more, 256 more, so
 * that the peer starts on the first frames while the rest are encoded. Real sockets on
 * loopback; every frame must arrive whole and in order whatever the writes were.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FrameConnection, connectionOptions } from "../../transports/tcp/connection.js";

const FRAME_BODY = 20;

interface Pair {
  sender: FrameConnection;
  /** Frames in each `write()` the sender's socket got, in order. */
  writes: number[];
  /** Every frame's number as the receiving end read it. */
  received: number[];
}

const open: { server: Server; sockets: Socket[] }[] = [];

afterEach(async () => {
  for (const { server, sockets } of open.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

async function pair(batching: "tick" | "none" = "tick"): Promise<Pair> {
  const received: number[] = [];
  const options = connectionOptions({ batching });
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const client = connect({ host: "127.0.0.1", port });
  await new Promise<void>((r, j) => client.once("connect", r).once("error", j));
  const serverSide = await accepted;
  open.push({ server, sockets: [client, serverSide] });
  new FrameConnection(serverSide, options, {
    onFrame: (buf, start) => received.push(buf.readUInt32BE(start + 4)),
    onClose: () => {},
  });
  const sender = new FrameConnection(client, options, { onFrame: () => {}, onClose: () => {} });
  const writes: number[] = [];
  const write = client.write.bind(client) as (chunk: Uint8Array, cb?: () => void) => boolean;
  (client as unknown as { write: typeof write }).write = (chunk, cb) => {
    writes.push(chunk.length / (FRAME_BODY + 4));
    return write(chunk, cb);
  };
  return { sender, writes, received };
}

/** Encodes frame number `n` (a LENGTH and a body that starts with n) and reports it written. */
function send(c: FrameConnection, n: number): void {
  const w = c.writer;
  w.ensure(FRAME_BODY + 4);
  w.buf.writeUInt32BE(FRAME_BODY, w.pos);
  w.buf.fill(0, w.pos + 4, w.pos + 4 + FRAME_BODY);
  w.buf.writeUInt32BE(n, w.pos + 4);
  w.pos += FRAME_BODY + 4;
  c.frameWritten();
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
}

describe("tcp connection - batching", () => {
  it("tcp - a tick of fewer than 16 frames is one write", async () => {
    const p = await pair();
    for (let i = 0; i < 15; i++) send(p.sender, i);
    expect(p.writes).toEqual([]);
    await tick();
    expect(p.writes).toEqual([15]);
    await until(() => p.received.length === 15);
    expect(p.received).toEqual(Array.from({ length: 15 }, (_, i) => i));
  });

  it("tcp - a long tick writes after 16 frames, 64 more, 256 more, and the rest at its end; the next tick starts over", async () => {
    const p = await pair();
    for (let i = 0; i < 400; i++) send(p.sender, i);
    // Written before the tick ended: the peer can start on them.
    expect(p.writes).toEqual([16, 64, 256]);
    await tick();
    expect(p.writes).toEqual([16, 64, 256, 64]);
    for (let i = 400; i < 420; i++) send(p.sender, i);
    expect(p.writes).toEqual([16, 64, 256, 64, 16]);
    await tick();
    expect(p.writes).toEqual([16, 64, 256, 64, 16, 4]);
    await until(() => p.received.length === 420);
    expect(p.received).toEqual(Array.from({ length: 420 }, (_, i) => i));
  });

  it("tcp - batching none writes every frame at once", async () => {
    const p = await pair("none");
    for (let i = 0; i < 10; i++) send(p.sender, i);
    expect(p.writes).toEqual(Array(10).fill(1));
    await until(() => p.received.length === 10);
    expect(p.received).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });
});
