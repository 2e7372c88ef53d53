import { createRequire } from "node:module";

/** The version of meridian-rpc, written into the provenance header of generated files. */
export const VERSION: string = (createRequire(import.meta.url)("meridian-rpc/package.json") as { version: string }).version;
