/**
 * grpc-interop: a Meridian server over gRPC, called by a plain @grpc/grpc-js client that knows
 * nothing of Meridian (it loads the same .proto with @grpc/proto-loader), then by a Meridian
 * client over the same transport.
 *
 *   npm run example:grpc-interop
 *
 * Meridian's gRPC transport serves grpc-js with Meridian's generated codecs as serializers, so the
 * bytes on the wire are plain protobuf and any gRPC peer built from the .proto can talk to it.
 * Headers travel as gRPC metadata (lower-cased), errors as gRPC statuses.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Code, RpcError, createClient, createServer } from "meridian-rpc";
import { GrpcClientTransport, GrpcServerTransport } from "meridian-rpc/transports/grpc";
import { Sky, Weather } from "./gen/weather.js";

// The Meridian server.
const server = createServer({ transport: new GrpcServerTransport({ services: [Weather], port: 0 }), region: "eu-west" });
server.register(Weather, {
  getForecast(req, ctx) {
    if (req.city === "") throw new RpcError(Code.INVALID_ARGUMENT, "city is required");
    console.log(`server: GetForecast(${req.city}, ${req.days} days), caller's region ${ctx.region ?? "not said"}`);
    const start = BigInt(Date.UTC(2030, 0, 1) / 1000);
    return {
      city: req.city,
      days: Array.from({ length: req.days }, (_, i) => ({
        date: start + BigInt(i * 86_400),
        highCelsius: 20 + i * 0.5,
        lowCelsius: 11 - i * 0.25,
        sky: [Sky.SUNNY, Sky.CLOUDY, Sky.RAINY][i % 3]!,
      })),
    };
  },
});
const { address } = await server.listen();
console.log(`server: Meridian over gRPC on ${address}`);

// A plain grpc-js client, from the .proto alone.
const definition = protoLoader.loadSync(fileURLToPath(new URL("./proto/weather.proto", import.meta.url)), {
  longs: String,
  enums: String,
  defaults: true,
});
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  meridian: { examples: { weather: { Weather: grpc.ServiceClientConstructor } } };
};
const plain = new pkg.meridian.examples.weather.Weather(address, grpc.credentials.createInsecure());

interface PlainForecast {
  city: string;
  days: { date: string; highCelsius: number; lowCelsius: number; sky: string }[];
}
const call = (request: object, metadata = new grpc.Metadata()) =>
  new Promise<{ forecast?: PlainForecast; error?: grpc.ServiceError; headers: grpc.Metadata }>((resolve) => {
    let headers = new grpc.Metadata();
    const c = plain.getForecast(request, metadata, (error: grpc.ServiceError | null, forecast: PlainForecast) =>
      resolve(error ? { error, headers } : { forecast, headers }),
    ) as grpc.ClientUnaryCall;
    c.on("metadata", (m) => (headers = m));
  });

const md = new grpc.Metadata();
md.set("x-region-id", "us-east");
const { forecast, headers } = await call({ city: "Lisbon", days: 3 }, md);
console.log(`grpc-js client: ${forecast!.city}, served in ${headers.get("x-served-region")[0]}`);
for (const d of forecast!.days) {
  console.log(`  ${new Date(Number(d.date) * 1000).toISOString().slice(0, 10)}  ${d.sky.padEnd(6)} ${d.lowCelsius}..${d.highCelsius} °C`);
}
const bad = await call({ city: "", days: 1 });
console.log(`grpc-js client: an empty city -> status ${grpc.status[bad.error!.code]} "${bad.error!.details}"`);
plain.close();

// A Meridian client over the same transport, for comparison: typed messages, bigint dates.
const transport = new GrpcClientTransport();
const weather = createClient(Weather, { transport, endpoints: [{ address }], region: "ap-south", timeoutMs: 2000 });
const typed = await weather.getForecast({ city: "Oslo", days: 2 });
console.log(`Meridian client: ${typed.city}, ${typed.days.length} days, first ${Sky[typed.days[0]!.sky]} on ${typed.days[0]!.date} (a bigint)`);

await transport.close();
await server.close({ graceMs: 1000 });
console.log("done");
