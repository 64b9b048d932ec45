#!/usr/bin/env node
/**
 * Builds the wasm backend's kernel module from src/backend/wasm/assembly (AssemblyScript) into
 * src/backend/wasm/build/:
 *   recur-simd.wasm     SIMD128, bit-reproducible on every engine and CPU
 *   recur-relaxed.wasm  the same source with relaxed SIMD (fused multiply-add in the GEMM)
 *   manifest.json       hash of everything the output depends on (sources, flags, compiler version)
 *
 * Why build at install time rather than commit the .wasm: the compiler (assemblyscript + binaryen)
 * is plain JavaScript/wasm from the npm registry, pinned by package-lock.json, with no native
 * download, and builds both variants in a few seconds — so `npm install` / `npm ci` run this
 * through the `prepare` script and the binaries can never drift from their sources (a committed
 * binary can, silently). The outputs are git-ignored (src/backend/wasm/.gitignore) but packed into
 * the published tarball (src/backend/wasm/.npmignore overrides the .gitignore for npm), so users of
 * the package never need the compiler.
 *
 * Usage:
 *   node scripts/build-wasm.mjs             build (always)
 *   node scripts/build-wasm.mjs --if-stale  build only if the manifest does not match the sources
 *   node scripts/build-wasm.mjs --check     exit 1 if a build is needed, 0 if not (builds nothing)
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'src/backend/wasm/assembly');
const outDir = join(root, 'src/backend/wasm/build');
const entry = join(srcDir, 'index.ts');

/**
 * Flags shared by both variants. The memory is imported (the host owns and grows it) and shared
 * (worker threads instantiate the same module on it); the loader patches the shared flag off where
 * SharedArrayBuffer is unavailable. The stub runtime: the kernels allocate nothing themselves.
 */
const COMMON = [
  '-O3', '--noAssert', '--runtime', 'stub',
  '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536', '--noExportMemory',
  '--enable', 'simd', '--enable', 'threads',
  '--noColors',
];
const VARIANTS = {
  simd: [],
  relaxed: ['--enable', 'relaxed-simd'],
};

function ascVersion() {
  const require = createRequire(import.meta.url);
  return require('assemblyscript/package.json').version;
}

function sourceHash() {
  const h = createHash('sha256');
  h.update(`asc ${ascVersion()}\n${JSON.stringify(COMMON)}\n${JSON.stringify(VARIANTS)}\n`);
  for (const f of readdirSync(srcDir).filter((n) => n.endsWith('.ts')).sort()) {
    h.update(`${f}\n`);
    h.update(readFileSync(join(srcDir, f)));
  }
  return h.digest('hex');
}

function readManifest() {
  try {
    return JSON.parse(readFileSync(join(outDir, 'manifest.json'), 'utf8'));
  } catch {
    return null;
  }
}

export function isFresh() {
  const m = readManifest();
  return m !== null && m.sourceHash === sourceHash() && Object.keys(VARIANTS).every((v) => existsSync(join(outDir, `recur-${v}.wasm`)));
}

export async function build() {
  const { default: asc } = await import('assemblyscript/asc');
  mkdirSync(outDir, { recursive: true });
  const hash = sourceHash();
  const files = {};
  for (const [name, flags] of Object.entries(VARIANTS)) {
    const file = `recur-${name}.wasm`;
    const tmp = join(outDir, `.${file}.${process.pid}.tmp`);
    const { error, stderr } = await asc.main([entry, ...COMMON, ...flags, '--outFile', tmp]);
    if (error) {
      rmSync(tmp, { force: true });
      throw new Error(`asc failed for the ${name} variant: ${error.message}\n${stderr.toString()}`);
    }
    const bytes = readFileSync(tmp);
    renameSync(tmp, join(outDir, file)); // atomic: concurrent builds never expose a partial file
    files[name] = { file, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  const manifest = { sourceHash: hash, assemblyscript: ascVersion(), flags: COMMON, variants: files };
  const tmp = join(outDir, `.manifest.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, join(outDir, 'manifest.json'));
  return manifest;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  if (args.includes('--check')) {
    const fresh = isFresh();
    console.log(fresh ? 'wasm build is up to date' : 'wasm build is missing or stale: run `npm run build:wasm`');
    process.exit(fresh ? 0 : 1);
  }
  if (args.includes('--if-stale') && isFresh()) {
    console.log('wasm build is up to date');
  } else {
    const t0 = Date.now();
    const m = await build();
    const sizes = Object.values(m.variants).map((v) => `${v.file} ${(v.bytes / 1024).toFixed(1)} KiB`).join(', ');
    console.log(`built ${sizes} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}
