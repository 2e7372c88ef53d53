/**
 * Meridian's gRPC transport, on @grpc/grpc-js: unary and streaming calls over HTTP/2 with
 * Meridian's generated codecs as the serializers, interoperating with any gRPC peer built from
 * the same .proto. See docs/grpc.md.
 */
export { GrpcClientTransport, MAX_GRPC_TIMEOUT_MS, clientDefinition, type GrpcClientOptions, type ClientMethodDefinition } from "./client.js";
export { DEFAULT_GRPC_MAX_CONCURRENT_STREAMS, GrpcServerTransport, type GrpcServerOptions } from "./server.js";
export { clientCredentials, serverCredentials, type GrpcClientTls, type GrpcServerTls, type Pem } from "./tls.js";
export { fromMetadata, grpcPath, headerName, metadataKey, statusError, toMetadata } from "./wire.js";
