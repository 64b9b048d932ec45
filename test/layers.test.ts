/**
 * The shape of the package, checked on the sources:
 * - every import points down the layers of ARCHITECTURE.md (a lower layer never imports a higher one);
 * - the browser-safe entry points bundle for a browser with nothing marked external, and no node:
 *   module is reached from them (recurjs/node and the CLI are the only places that may import one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

/** Lowest first; a file may import its own layer or any below it. */
const LAYERS: [string, number][] = [
  ['util/', 0], ['version.ts', 0],
  ['backend/', 1], ['tensor/', 2], ['autograd/', 3], ['cells/', 4], ['nn/', 5],
  ['train/', 6], ['infer/', 6], ['io/', 6],
  ['data/', 7], ['models/', 8], ['onnx/', 9], ['interop/', 9],
  ['cli/', 10], ['serve/', 10], ['index.ts', 11], ['node.ts', 11],
];

function layerOf(file: string): number {
  const rel = relative(src, file).split('\\').join('/');
  for (const [prefix, n] of LAYERS) if (rel === prefix || rel.startsWith(prefix)) return n;
  throw new Error(`no layer for ${rel}`);
}

const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => {
  const p = join(dir, n);
  if (statSync(p).isDirectory()) return n === 'assembly' ? [] : walk(p);
  return p.endsWith('.ts') ? [p] : [];
});

/** Relative imports of a file: static (import/export … from) and dynamic with a literal specifier; type-only ones flagged. */
function importsOf(file: string): { target: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  const out: { target: string; typeOnly: boolean }[] = [];
  const re = /(?:^|\n)\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;
  for (let m; (m = re.exec(text)); ) {
    const spec = m[3] ?? m[4];
    out.push({ target: resolve(dirname(file), spec), typeOnly: m[2] !== undefined });
  }
  return out;
}

test('every import points down the layers (backend → tensor → autograd → cells → nn → train/infer/io → data → models → onnx/interop → cli)', () => {
  const upward: string[] = [];
  for (const file of walk(src)) {
    for (const { target, typeOnly } of importsOf(file)) {
      if (typeOnly) continue; // a type-only import is erased: no module runs in the wrong order
      if (layerOf(target) > layerOf(file)) upward.push(`${relative(src, file)} → ${relative(src, target)}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('no node: import outside the CLI and the node-only modules reached from recurjs/node', () => {
  const NODE_ONLY = new Set(['io/atomic.ts', 'io/files.ts', 'train/checkpoint.ts', 'models/files.ts', 'interop/keras-file.ts', 'onnx/testcase.ts', 'train/data-parallel-node.ts', 'train/data-parallel-worker.ts']);
  const offenders: string[] = [];
  for (const file of walk(src)) {
    const rel = relative(src, file).split('\\').join('/');
    if (rel.startsWith('cli/') || rel.startsWith('serve/') || rel === 'node.ts' || NODE_ONLY.has(rel)) continue;
    if (/^\s*import[^'"\n]*['"]node:/m.test(readFileSync(file, 'utf8'))) offenders.push(rel);
  }
  assert.deepEqual(offenders, []);
});

for (const entry of ['index.ts', 'onnx/index.ts', 'interop/index.ts', 'models/index.ts', 'data/index.ts', 'backend/wasm/index.ts']) {
  test(`${entry} bundles for the browser with no externals and reaches no node: module`, async () => {
    const r = await build({
      entryPoints: [join(src, entry)], bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent',
      loader: { '.wasm': 'file' }, outdir: 'bundle',
    });
    const inputs = Object.keys(r.metafile.inputs);
    assert.ok(inputs.length > 1, 'the bundle has inputs');
    assert.deepEqual(inputs.filter((i) => i.startsWith('node:') || i.includes('/node_modules/@types/')), []);
    for (const i of inputs.filter((x) => x.startsWith('src/'))) {
      const rel = i.slice(4);
      assert.ok(!['node.ts', 'io/files.ts', 'io/atomic.ts', 'train/checkpoint.ts'].includes(rel), `${entry} reaches the node-only ${rel}`);
    }
  });
}
