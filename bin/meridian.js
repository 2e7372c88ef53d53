#!/usr/bin/env node
// The `meridian` command (gen, call, list, registry ...): see cli/main.ts. Runs the built code in
// dist/ (`npm run build`); during development run cli/main.ts through tsx instead.
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
