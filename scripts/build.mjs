#!/usr/bin/env node
// The package build (`npm run build`, run by `prepack` — which npm also runs for a git install —
// and by `npm test`): src/ → dist/. `--if-stale` does nothing when dist/ is newer than every input
// (`npm run demo` in a clone uses it). There is no `prepare` script: npm ≥ 11 lists a dependency's
// `prepare` as an unapproved install script when the package comes from a tarball or git.
//  1. src/version.ts from package.json, so the version is written in one place;
//  2. the WebAssembly kernels (scripts/build-wasm.mjs, skipped when up to date);
//  3. tsc -p tsconfig.build.json: ESM JavaScript, declarations, source maps;
//  4. declarations: relative '.ts' specifiers rewritten to '.js' (tsc rewrites them in the
//     JavaScript but not in .d.ts files, and a consumer's TypeScript refuses '.ts' there);
//  5. the .wasm binaries copied beside the compiled loader (dist/backend/wasm/build/), where
//     `new URL('./build/…', import.meta.url)` finds them in Node and bundlers find them to copy.
// The browser playground (dist/web/) is built by `npm run build:web`, not here; `prepack` runs both.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));

if (process.argv.includes('--if-stale') && !stale()) {
  console.log('dist/ is up to date');
  process.exit(0);
}

/** Whether any input of the build (sources, wasm binaries, configs, package.json) is newer than dist/. */
function stale() {
  let built;
  try {
    built = statSync(join(root, 'dist/index.js')).mtimeMs;
  } catch {
    return true;
  }
  const inputs = [...walk(join(root, 'src')), join(root, 'package.json'), join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json'), fileURLToPath(import.meta.url)];
  return inputs.some((f) => statSync(f).mtimeMs > built);
}

const versionFile = join(root, 'src/version.ts');
const versionSrc = `// Generated from package.json by scripts/build.mjs; test/consumer.test.ts checks that they agree.\nexport const VERSION: string = '${pkg.version}';\n`;
if (readFileSync(versionFile, 'utf8') !== versionSrc) writeFileSync(versionFile, versionSrc);

execFileSync(process.execPath, [join(root, 'scripts/build-wasm.mjs'), '--if-stale'], { stdio: 'inherit' });

// dist/ is emptied except dist/web/: the playground is Vite's output (`npm run build:web`), which
// a library rebuild must not throw away.
for (const name of existsSync(join(root, 'dist')) ? readdirSync(join(root, 'dist')) : []) {
  if (name !== 'web') rmSync(join(root, 'dist', name), { recursive: true, force: true });
}
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

for (const f of walk(join(root, 'dist'))) {
  if (!f.endsWith('.d.ts') || f.startsWith(join(root, 'dist/web/'))) continue;
  const s = readFileSync(f, 'utf8');
  const t = s.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1$2.js$3');
  if (t !== s) writeFileSync(f, t);
}
cpSync(join(root, 'src/backend/wasm/build'), join(root, 'dist/backend/wasm/build'), { recursive: true });
console.log(`built dist/ (recurjs ${pkg.version})`);
