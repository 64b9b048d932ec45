/**
 * The playground's build: Vite with root web/, output dist/web/ (relative base, so the folder can be
 * hosted anywhere), module workers, and the COOP/COEP headers on the dev and preview servers (they
 * make the page cross-origin isolated: SharedArrayBuffer, so the wasm backend can use threads).
 *
 * recur is used through its published entry points: each browser-safe entry of package.json
 * "exports" is aliased to the built file it names (dist/, made by `npm run build`), exactly what a
 * bundler resolves in a project that installed the package.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { name: string; exports: Record<string, { default?: string } | string> };

/** The entries the page may use: browser-safe ones only (recurjs/node reads files by path). */
const BROWSER_ENTRIES = ['.', './wasm', './models', './onnx', './data'];

const alias = BROWSER_ENTRIES.map((entry) => {
  const target = pkg.exports[entry];
  const file = typeof target === 'string' ? target : target.default!;
  const name = entry === '.' ? pkg.name : `${pkg.name}/${entry.slice(2)}`;
  // exact match only: 'recurjs' must not also catch 'recurjs/models'
  return { find: new RegExp(`^${name.replace('/', '\\/')}$`), replacement: `${root}${file.slice(2)}` };
});

/** Cross-origin isolation: what a host must send for the page to get threads. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  publicDir: 'public',
  resolve: { alias },
  worker: { format: 'es' },
  build: {
    outDir: `${root}dist/web`,
    emptyOutDir: true,
    target: 'es2022',
    // the wasm kernels stay files of their own (never inlined as base64)
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
  },
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
});
