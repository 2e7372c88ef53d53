/**
 * streaming: server-streaming, client-streaming and bidi calls over TCP in one process.
 *
 *   npm run example:streaming
 *
 * A streaming handler is an async generator (responses out) and/or takes an async iterable
 * (requests in); a client method returns a ResponseStream to iterate with `for await`, and takes
 * an array or any (async) iterable of requests. Both sides are flow-controlled: a slow reader
 * slows the writer on the other side instead of buffering without bound.
 */
import { createClient, createServer } from "meridian-rpc";
import { TcpClientTransport, TcpServerTransport } from "meridian-rpc/transports/tcp";
import { Telemetry, type Reading } from "./gen/telemetry.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const temperature = (seq: number) => Math.round((21 + 12 * Math.sin(seq / 2)) * 10) / 10;

const server = createServer({ transport: new TcpServerTransport({ port: 0 }) });
server.register(Telemetry, {
  async *watch(req, ctx) {
    for (let seq = 1; seq <= req.count; seq++) {
      if (ctx.signal.aborted) return;
      yield { sensor: req.sensor, seq, celsius: temperature(seq) };
      await sleep(req.intervalMs);
    }
  },
  async upload(readings) {
    let n = 0;
    let sum = 0;
    let max = -Infinity;
    for await (const r of readings) {
      n++;
      sum += r.celsius;
      max = Math.max(max, r.celsius);
    }
    return { readings: n, meanCelsius: n === 0 ? 0 : Math.round((sum / n) * 10) / 10, maxCelsius: n === 0 ? 0 : max };
  },
  async *monitor(readings) {
    for await (const r of readings) {
      if (r.celsius > 30) yield { sensor: r.sensor, seq: r.seq, text: `${r.celsius} °C is over 30 °C` };
    }
  },
});
const { address } = await server.listen();
const transport = new TcpClientTransport();
const telemetry = createClient(Telemetry, { transport, endpoints: [{ address }], timeoutMs: 5000 });

console.log("1. server streaming: Watch(greenhouse, 5 readings)");
for await (const r of telemetry.watch({ sensor: "greenhouse", count: 5, intervalMs: 20 })) {
  console.log(`   #${r.seq} ${r.celsius} °C`);
}

console.log("2. client streaming: Upload(8 readings)");
async function* produce(sensor: string, count: number): AsyncGenerator<Partial<Reading>> {
  for (let seq = 1; seq <= count; seq++) {
    yield { sensor, seq, celsius: temperature(seq) };
    await sleep(5);
  }
}
const summary = await telemetry.upload(produce("cellar", 8));
console.log(`   ${summary.readings} readings, mean ${summary.meanCelsius} °C, max ${summary.maxCelsius} °C`);

console.log("3. bidi streaming: Monitor(readings) -> alerts, as the readings go in");
for await (const alert of telemetry.monitor(produce("attic", 10))) {
  console.log(`   alert for ${alert.sensor} #${alert.seq}: ${alert.text}`);
}

await transport.close();
await server.close({ graceMs: 1000 });
console.log("done");
