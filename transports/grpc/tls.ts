import { ChannelCredentials, ServerCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { ConfigError, type ClientTls, type Pem, type ServerTls } from "../../runtime/api.js";

/** TLS of a gRPC client: the options every Meridian transport with TLS takes (runtime's ClientTls). */
export type GrpcClientTls = ClientTls;

/** TLS of a gRPC server: the options every Meridian transport with TLS takes (runtime's ServerTls). */
export type GrpcServerTls = ServerTls;

export type { Pem };

function bytes(p: Pem | undefined): Buffer | null {
  return p === undefined ? null : typeof p === "string" ? Buffer.from(p) : p;
}

/**
 * The channel credentials and extra channel options of a client: `credentials` as given,
 * otherwise TLS from `tls`, otherwise plaintext.
 */
export function clientCredentials(options: { tls?: GrpcClientTls; credentials?: ChannelCredentials }): {
  credentials: ChannelCredentials;
  channelOptions: ChannelOptions;
} {
  const { tls, credentials } = options;
  if (tls !== undefined && credentials !== undefined) {
    throw new ConfigError("CONFLICTING_OPTIONS", "GrpcClientTransport: set either tls or credentials, not both");
  }
  if (credentials !== undefined) return { credentials, channelOptions: {} };
  if (tls === undefined) return { credentials: ChannelCredentials.createInsecure(), channelOptions: {} };
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError("INVALID_OPTION", "GrpcClientTransport: tls.cert and tls.key go together (a client certificate needs its key)");
  }
  const channelOptions: ChannelOptions =
    tls.serverName === undefined ? {} : { "grpc.ssl_target_name_override": tls.serverName, "grpc.default_authority": tls.serverName };
  return { credentials: ChannelCredentials.createSsl(bytes(tls.ca), bytes(tls.key), bytes(tls.cert)), channelOptions };
}

/** The server credentials of a server: `credentials` as given, otherwise TLS from `tls`, otherwise plaintext. */
export function serverCredentials(options: { tls?: GrpcServerTls; credentials?: ServerCredentials }): ServerCredentials {
  const { tls, credentials } = options;
  if (tls !== undefined && credentials !== undefined) {
    throw new ConfigError("CONFLICTING_OPTIONS", "GrpcServerTransport: set either tls or credentials, not both");
  }
  if (credentials !== undefined) return credentials;
  if (tls === undefined) return ServerCredentials.createInsecure();
  if (tls.requireClientCert === true && tls.ca === undefined) {
    throw new ConfigError("INVALID_OPTION", "GrpcServerTransport: tls.requireClientCert needs tls.ca, the CA that signs client certificates");
  }
  return ServerCredentials.createSsl(bytes(tls.ca), [{ cert_chain: bytes(tls.cert)!, private_key: bytes(tls.key)! }], tls.requireClientCert ?? false);
}
