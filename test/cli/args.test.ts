/** The one argument reader of `meridian` (cli/args.ts) and the shape of every command's help. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatGroupHelp, formatHelp, integer, oneOf, parseArgs, positive, UsageError, wantsHelp, type OptionSpec } from "../../cli/args.js";
import { COMMANDS, REGISTRY_GROUP } from "../../cli/commands.js";
import { main, MERIDIAN } from "../../cli/main.js";
import { REPO_ROOT } from "../../codegen/regen.js";

const OPTIONS: readonly OptionSpec[] = [
  { name: "--out", aliases: ["-o"], value: "<dir>", help: "output" },
  { name: "--proto_path", aliases: ["-I"], value: "<dir>", repeatable: true, help: "roots" },
  { name: "--header", aliases: ["-H"], value: "<k=v>", repeatable: true, help: "headers" },
  { name: "--json", help: "json" },
  { name: "--verbose", aliases: ["-v"], help: "verbose" },
];

/** The UsageError message parseArgs throws for `args`. */
function usageError(args: string[], options: readonly OptionSpec[] = OPTIONS): string {
  try {
    parseArgs(args, options);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no usage error for ${args.join(" ")}`);
}

describe("cli args - the reader", () => {
  it("cli args - `--x v` and `--x=v`, aliases, the last value of a single option wins", () => {
    const p = parseArgs(["--out", "a", "--out=b", "-o", "c"], OPTIONS);
    expect(p.value("--out")).toBe("c");
    expect(parseArgs(["--out=x=y"], OPTIONS).value("--out")).toBe("x=y");
    expect(parseArgs([], OPTIONS).value("--out")).toBeUndefined();
  });

  it("cli args - repeatable options collect every value in order, attached one-letter values too", () => {
    const p = parseArgs(["-I", "a", "--proto_path=b", "-Ic", "--proto_path", "d", "-Hx-a=1", "--header=x-b=2"], OPTIONS);
    expect(p.values("--proto_path")).toEqual(["a", "b", "c", "d"]);
    expect(p.values("--header")).toEqual(["x-a=1", "x-b=2"]);
    expect(p.values("--out")).toEqual([]);
  });

  it("cli args - booleans take no value", () => {
    const p = parseArgs(["--json", "-v"], OPTIONS);
    expect(p.flag("--json")).toBe(true);
    expect(p.flag("--verbose")).toBe(true);
    expect(parseArgs([], OPTIONS).flag("--json")).toBe(false);
    expect(usageError(["--json=yes"])).toBe("--json takes no value");
  });

  it("cli args - positionals: plain words, a lone -, negative numbers, everything after --", () => {
    const p = parseArgs(["a.proto", "--json", "-", "-5", "b", "--", "--out", "-v"], OPTIONS);
    expect(p.positional).toEqual(["a.proto", "-", "-5", "b", "--out", "-v"]);
    expect(p.value("--out")).toBeUndefined();
    expect(p.flag("--verbose")).toBe(false);
  });

  it("cli args - unknown options and missing values are usage errors", () => {
    expect(usageError(["--nope"])).toBe("unknown option --nope");
    expect(usageError(["--nope=1"])).toBe("unknown option --nope");
    expect(usageError(["-x"])).toBe("unknown option -x");
    expect(usageError(["--out"])).toBe("--out needs a value");
    // The next word is another option: the value was forgotten.
    expect(usageError(["--out", "--json"])).toBe("--out needs a value");
    expect(usageError(["-o", "--proto_path=a"])).toBe("-o needs a value");
  });

  it("cli args - a missing required option names itself and the reason", () => {
    const required: OptionSpec[] = [{ name: "--data", value: "<dir>", required: "the folder that keeps it", help: "data" }, { name: "--out", value: "<dir>", required: true, help: "out" }];
    expect(usageError(["--out", "o"], required)).toBe("--data <dir> is required: the folder that keeps it");
    expect(usageError(["--data", "d"], required)).toBe("--out <dir> is required");
  });

  it("cli args - value checks say what is allowed", () => {
    expect(oneOf("--int64", "number", ["bigint", "number", "string"])).toBe("number");
    expect(() => oneOf("--int64", "float", ["bigint", "number", "string"])).toThrow('--int64 must be bigint, number or string, not "float"');
    expect(integer("--lease-ms", "10", 1)).toBe(10);
    expect(() => integer("--lease-ms", "0", 1)).toThrow('--lease-ms must be an integer >= 1, not "0"');
    expect(() => integer("--lease-ms", "1.5", 1)).toThrow(UsageError);
    expect(() => integer("--lease-ms", "", 0)).toThrow(UsageError);
    expect(positive("--timeout", "2.5")).toBe(2.5);
    expect(() => positive("--timeout", "-1")).toThrow('--timeout must be a number > 0, not "-1"');
    expect(() => positive("--timeout", "Infinity")).toThrow(UsageError);
  });

  it("cli args - -h and --help ask for help, unless after --", () => {
    expect(wantsHelp(["a", "-h"])).toBe(true);
    expect(wantsHelp(["--help"])).toBe(true);
    expect(wantsHelp(["--", "--help"])).toBe(false);
    expect(wantsHelp(["--helpful"])).toBe(false);
  });
});

describe("cli help - one layout everywhere", () => {
  it("cli help - every command: usage line, description, every option with its notes, --help, exit status", () => {
    for (const spec of COMMANDS) {
      const text = formatHelp(spec);
      expect(text.startsWith(`usage: meridian ${spec.name} `)).toBe(true);
      expect(text).toContain("\n\nOptions:\n");
      expect(text).toContain("  -h, --help");
      expect(text).toMatch(/\n\nExit status: .*0/);
      for (const o of spec.options) {
        expect(text, `${spec.name} ${o.name}`).toContain(o.name);
        if (o.default !== undefined) expect(text.replace(/\s+/g, " "), `${spec.name} ${o.name}`).toContain(`default: ${o.default}`);
      }
      for (const line of text.split("\n")) if (!line.startsWith("usage:") && !line.startsWith("       meridian")) expect(line.length, line).toBeLessThanOrEqual(100);
    }
  });

  it("cli help - meridian --help and meridian <command> --help print the same help the specs give", async () => {
    const run = async (args: string[]) => {
      let stdout = "";
      let stderr = "";
      const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {} });
      return { code, stdout, stderr };
    };
    const top = await run(["--help"]);
    expect(top).toEqual({ code: 0, stdout: formatGroupHelp(MERIDIAN), stderr: "" });
    for (const spec of COMMANDS) expect(top.stdout).toContain(`meridian ${spec.name} ${spec.synopsis}`);
    for (const spec of COMMANDS) {
      expect(await run([...spec.name.split(" "), "--help"])).toEqual({ code: 0, stdout: formatHelp(spec), stderr: "" });
      expect((await run(["help", ...spec.name.split(" ")])).stdout).toBe(formatHelp(spec));
    }
    expect(await run(["registry", "--help"])).toEqual({ code: 0, stdout: formatGroupHelp(REGISTRY_GROUP), stderr: "" });
    // No command: the help, as a usage error.
    expect(await run([])).toEqual({ code: 2, stdout: "", stderr: formatGroupHelp(MERIDIAN) });
    expect(await run(["registry"])).toEqual({ code: 2, stdout: "", stderr: formatGroupHelp(REGISTRY_GROUP) });
  });

  it("cli help - docs/cli.md holds every command's help as the command prints it", () => {
    const doc = readFileSync(join(REPO_ROOT, "docs", "cli.md"), "utf8");
    for (const text of [formatGroupHelp(MERIDIAN), formatGroupHelp(REGISTRY_GROUP), ...COMMANDS.map(formatHelp)]) {
      expect(doc, `docs/cli.md is stale: paste in\n${text}`).toContain("```text\n" + text + "```");
    }
  });

  it("cli help - usage errors: the command, the problem, its usage line, exit status 2", async () => {
    let stderr = "";
    const io = { stdout: () => undefined, stderr: (t: string) => (stderr += t), env: {} };
    expect(await main(["list", "--proto", "a.proto", "--bogus"], io)).toBe(2);
    expect(stderr).toBe('meridian list: unknown option --bogus\nusage: meridian list --proto <file.proto>... [-I <dir>]... [package.Service]...\nRun "meridian list --help" for every option.\n');
    stderr = "";
    expect(await main(["registry", "lease"], io)).toBe(2);
    expect(stderr).toMatch(/^meridian registry: unknown registry command "lease" \(serve, status, primary or etcd-roles\)\n/);
    stderr = "";
    expect(main(["frobnicate"], io)).toBe(2);
    expect(stderr).toBe('meridian: unknown command "frobnicate" (gen, call, list, serve or registry)\nRun "meridian --help" for the commands.\n');
    stderr = "";
    // $MERIDIAN_REGISTRY comes from the io's environment.
    expect(await main(["registry", "status"], io)).toBe(2);
    expect(stderr).toContain("meridian registry status: --registry <url> is required (or set MERIDIAN_REGISTRY)");
  });
});
