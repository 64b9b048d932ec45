#!/usr/bin/env node
// The `recur` command: runs the compiled CLI (dist/, built by `npm run build`, which `npm install`
// in a clone runs through `prepare`, and which the published package ships).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
