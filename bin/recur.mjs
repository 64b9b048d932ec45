#!/usr/bin/env node
// The `recur` command. The library is written in TypeScript and runs from its sources, so this
// launcher registers the tsx loader first, then runs src/cli/main.ts (found relative to this
// file, so it works from any working directory and through npx). The caller's own tsconfig.json
// is not consulted: the sources need no compiler options.
import { register } from 'tsx/esm/api';

register({ tsconfig: false });
const { main } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
