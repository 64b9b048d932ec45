#!/usr/bin/env node
// The `recur` command: runs the compiled CLI (dist/, which the published package ships; in a clone
// `npm run build` makes it, and `npm run demo` / `npm test` build it when it is missing or stale).
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes('dist')) throw e;
  console.error('recur: the compiled CLI (dist/cli/main.js) is missing; in a clone of the repository run `npm run build` first');
  process.exit(1);
}
process.exitCode = await cli.main(process.argv.slice(2));
