#!/usr/bin/env node
// The protoc plugin (`protoc --plugin=protoc-gen-meridian=... --meridian_out=DIR`): see
// codegen/plugin.ts. Runs the built code in dist/ (`npm run build`).
import { pluginMain } from "../dist/codegen/plugin.js";

await pluginMain();
