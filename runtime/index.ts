/**
 * Meridian's runtime: what generated code and transports need at run time.
 */
export * from "./codec/index.js";
export * from "./rpc/index.js";
