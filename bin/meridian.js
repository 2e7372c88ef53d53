#!/usr/bin/env node
// The `meridian` command (`meridian gen ...`): see codegen/cli.ts. Runs the built code in dist/
// (`npm run build`); during development run codegen/cli.ts through tsx instead.
import { main } from "../dist/codegen/cli.js";

process.exitCode = await main(process.argv.slice(2));
