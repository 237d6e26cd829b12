#!/usr/bin/env node
// The clerk-sync command. The sources are TypeScript: tsx runs them on the Node this repository pins.
import { register } from "tsx/esm/api"

register()
await import("../src/cli.ts")
