/**
 * The package's own facts agree with each other: the version written in package.json is the one
 * the library reports, and every entry point in `exports` names a built file (run after the build,
 * as `npm test` does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../src/version.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>;
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
