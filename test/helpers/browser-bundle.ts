/**
 * The browser tests' page bundle: one entry, bundled by esbuild as browser ESM into `outdir` as
 * bundle.js (plus chunks). Node-only code (checkpoint and metrics files) is reached from the public
 * entry only through dynamic imports: it is split into chunks the page never loads, with the node:
 * modules left external — except those a plugin resolves (the node:test/assert shims).
 */
import { fileURLToPath } from 'node:url';

import { build, type Plugin } from 'esbuild';

export async function bundleForBrowser(entry: URL, outdir: string, plugins: Plugin[] = []): Promise<void> {
  await build({
    entryPoints: { bundle: fileURLToPath(entry) },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    splitting: true,
    external: ['node:*'],
    plugins,
    logLevel: 'silent',
  });
}
