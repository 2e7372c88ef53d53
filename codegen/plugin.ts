import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { filesFromDescriptors } from "./descriptor.js";
import { generate, type GenerateTarget } from "./index.js";
import { IdlError } from "../idl/errors.js";
import type { Int64Mode } from "../idl/model.js";
import {
  CodeGeneratorRequest,
  CodeGeneratorResponse,
  CodeGeneratorResponse_Feature,
} from "./plugin/gen/google/protobuf/compiler/plugin.js";

/**
 * protoc-gen-meridian: answers one CodeGeneratorRequest with the same files `meridian gen`
 * writes (comments come from the request's source_code_info). Parameters, comma separated:
 * `int64=bigint|number|string`, `target=ts|js|dts` (several joined by `+`, as protoc-gen-es
 * takes them: `target=js+dts`; default ts). Errors in the IDL are returned in the response's `error`, which
 * protoc prints before failing.
 */
export function runPlugin(request: Uint8Array): Uint8Array {
  const req = CodeGeneratorRequest.decode(request);
  const res = CodeGeneratorResponse.create({
    supportedFeatures: BigInt(CodeGeneratorResponse_Feature.FEATURE_PROTO3_OPTIONAL),
  });
  try {
    const { int64, targets } = parseParameter(req.parameter ?? "");
    const files = filesFromDescriptors(req.protoFile, req.fileToGenerate);
    const outputs = generate(files, { int64, targets });
    res.file = outputs.map((o) => ({ name: o.name, content: o.content }));
  } catch (e) {
    if (!(e instanceof IdlError || e instanceof ParameterError)) throw e;
    res.error = e.message;
    res.file = [];
  }
  return CodeGeneratorResponse.encode(res);
}

class ParameterError extends Error {}

const TARGETS: readonly string[] = ["ts", "js", "dts"] satisfies GenerateTarget[];

function parseParameter(parameter: string): { int64: Int64Mode; targets: GenerateTarget[] } {
  let int64: Int64Mode = "bigint";
  let targets: GenerateTarget[] = ["ts"];
  for (const part of parameter.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const [key, value] = p.split("=", 2) as [string, string | undefined];
    if (key === "int64" && (value === "bigint" || value === "number" || value === "string")) int64 = value;
    else if (key === "target" && value !== undefined && value.split("+").every((t) => TARGETS.includes(t))) {
      targets = [...new Set(value.split("+") as GenerateTarget[])];
    } else throw new ParameterError(`protoc-gen-meridian: unknown parameter "${p}" (expected int64=bigint|number|string or target=ts|js|dts, several joined by +)`);
  }
  return { int64, targets };
}

/** Reads the request from stdin, writes the response to stdout. */
export async function pluginMain(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  process.stdout.write(runPlugin(Buffer.concat(chunks)));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await pluginMain();
}
