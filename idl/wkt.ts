/**
 * The well-known types Meridian ships: our own .proto definitions under idl/wkt, generated
 * into runtime/wkt and exported as "meridian-rpc/wkt". An import of one of these files always
 * resolves to the bundled copy, and generated code imports its types from WKT_MODULE.
 */
export const WKT_FILES: ReadonlySet<string> = new Set([
  "google/protobuf/any.proto",
  "google/protobuf/duration.proto",
  "google/protobuf/empty.proto",
  "google/protobuf/field_mask.proto",
  "google/protobuf/struct.proto",
  "google/protobuf/timestamp.proto",
  "google/protobuf/wrappers.proto",
]);

/** The module generated code imports well-known types from. */
export const WKT_MODULE = "meridian-rpc/wkt";
