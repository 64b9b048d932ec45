#!/usr/bin/env node
// The package build (`npm run build`, run by `prepare` and `prepack`): src/ → dist/.
//  1. src/version.ts from package.json, so the version is written in one place;
//  2. the WebAssembly kernels (scripts/build-wasm.mjs, skipped when up to date);
//  3. tsc -p tsconfig.build.json: ESM JavaScript, declarations, source maps;
//  4. declarations: relative '.ts' specifiers rewritten to '.js' (tsc rewrites them in the
//     JavaScript but not in .d.ts files, and a consumer's TypeScript refuses '.ts' there);
//  5. the .wasm binaries copied beside the compiled loader (dist/backend/wasm/build/), where
//     `new URL('./build/…', import.meta.url)` finds them in Node and bundlers find them to copy.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const versionFile = join(root, 'src/version.ts');
const versionSrc = `// Generated from package.json by scripts/build.mjs; test/package.test.ts checks that they agree.\nexport const VERSION = '${pkg.version}';\n`;
if (readFileSync(versionFile, 'utf8') !== versionSrc) writeFileSync(versionFile, versionSrc);

execFileSync(process.execPath, [join(root, 'scripts/build-wasm.mjs'), '--if-stale'], { stdio: 'inherit' });

rmSync(join(root, 'dist'), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
for (const f of walk(join(root, 'dist'))) {
  if (!f.endsWith('.d.ts')) continue;
  const s = readFileSync(f, 'utf8');
  const t = s.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1$2.js$3');
  if (t !== s) writeFileSync(f, t);
}
cpSync(join(root, 'src/backend/wasm/build'), join(root, 'dist/backend/wasm/build'), { recursive: true });
console.log(`built dist/ (recurjs ${pkg.version})`);
