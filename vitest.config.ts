import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["meridian-source"] },
  ssr: { resolve: { conditions: ["meridian-source"] } },
  test: {
    include: ["test/**/*.test.ts", "codegen/**/*.test.ts", "runtime/**/*.test.ts", "transports/**/*.test.ts", "tools/**/*.test.ts"],
    testTimeout: 30_000,
    pool: "forks",
  },
});
