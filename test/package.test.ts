/**
 * The package's own facts agree with each other: the version written in package.json is the one
 * the library reports, every entry point in `exports` names a built file (run after the build,
 * as `npm test` does), the packing rules ship the built playground, and installing the development
 * dependencies runs no install script nobody reviewed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../src/version.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>;
  scripts: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

test('src/version.ts says the version of package.json', () => {
  assert.equal(VERSION, pkg.version);
});

test('every export condition and the bin name an existing file', () => {
  const missing: string[] = [];
  for (const [entry, target] of Object.entries(pkg.exports)) {
    const paths = typeof target === 'string' ? [target] : Object.values(target);
    for (const p of paths) if (!existsSync(join(root, p))) missing.push(`${entry} → ${p}`);
  }
  for (const p of Object.values(pkg.bin)) if (!existsSync(join(root, p))) missing.push(`bin → ${p}`);
  assert.deepEqual(missing, []);
});

test('the built core and its declarations name no .ts module', () => {
  const js = readFileSync(join(root, 'dist/index.js'), 'utf8');
  const dts = readFileSync(join(root, 'dist/index.d.ts'), 'utf8');
  assert.doesNotMatch(js, /from '\.[^']*\.ts'/);
  assert.doesNotMatch(dts, /from '\.[^']*\.ts'/);
});

test('the tarball ships the built playground (dist/web), and prepack builds it', () => {
  // npm itself says what `files` selects, on a copy of package.json beside a stand-in build
  // (the real dist/web exists only after `npm run build:web`)
  const dir = mkdtempSync(join(tmpdir(), 'recur-pack-'));
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, scripts: {} }, null, 2));
    const site = ['dist/web/index.html', 'dist/web/assets/index-Bx1.js', 'dist/web/assets/worker-Cq2.js', 'dist/web/assets/recur-simd-D3.wasm', 'dist/web/data/names.json'];
    for (const f of ['dist/index.js', 'bin/recur.mjs', ...site]) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), 'x');
    }
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `npm pack --dry-run failed:\n${r.stdout}\n${r.stderr}`);
    const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    assert.deepEqual(site.filter((f) => !files.includes(f)), [], 'files of dist/web left out of the tarball');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // `npm pack` and `npm publish` run prepack: the library build, then the playground's
  const steps = pkg.scripts.prepack!.split('&&').map((x) => x.trim());
  assert.deepEqual(steps, ['node scripts/build.mjs', 'npm run build:web']);
  assert.match(pkg.scripts['build:web']!, /vite build --config web\/vite\.config\.ts/);
});

test('every installed dependency with an install script is reviewed in allowScripts; onnxruntime-node is denied', () => {
  // npm 11 runs a dependency's install script only as package.json's allowScripts says (an
  // unreviewed one runs with a warning today). onnxruntime-node's would download CUDA binaries from
  // outside the npm registry, which a fresh machine cannot reach: `npm install` would fail. Its CPU
  // build ships in the npm package, which is all the differential tests use.
  const allow = pkg.allowScripts ?? {};
  assert.equal(allow['onnxruntime-node'], false);
  const unreviewed: string[] = [];
  const seen = new Set<string>();
  const visit = (modules: string): void => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      const dirs = entry.startsWith('@') ? readdirSync(join(modules, entry)).map((s) => join(modules, entry, s)) : [join(modules, entry)];
      for (const dir of dirs) {
        const file = join(dir, 'package.json');
        if (!existsSync(file)) continue;
        const dep = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; scripts?: Record<string, string> };
        const scripts = dep.scripts ?? {};
        if (dep.name && !seen.has(dep.name) && ['preinstall', 'install', 'postinstall'].some((k) => scripts[k])) {
          seen.add(dep.name);
          if (!(dep.name in allow)) unreviewed.push(dep.name);
        }
        visit(join(dir, 'node_modules'));
      }
    }
  };
  visit(join(root, 'node_modules'));
  assert.ok(seen.has('onnxruntime-node'), 'onnxruntime-node (a development dependency) is installed');
  assert.deepEqual(unreviewed, [], 'dependencies whose install scripts allowScripts does not cover');
});
