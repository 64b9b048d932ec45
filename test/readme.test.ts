/**
 * The README's code runs as written: every ```js and ```ts block is written to a file in a fresh
 * temporary project whose node_modules/recurjs links to this repository — so 'recurjs' and its
 * subpaths resolve through package.json `exports` to the built dist/, as in a user's project — and
 * run with node (```ts blocks through tsx, which strips the types). A block preceded by
 * `<!-- readme-test: skip (reason) -->` is left out (browser code, or code needing a file the README
 * does not make); the reason is required. Needs dist/ (npm test builds it first).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

interface Block { lang: 'js' | 'ts'; line: number; code: string; skip: string | null }

/** The ```js / ```ts blocks, each with the skip reason of a marker comment right before it. */
export function readmeBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(js|ts|javascript|typescript)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    let j = start - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const marker = j >= 0 ? /^<!--\s*readme-test:\s*skip\s*(?:\((.+)\))?\s*-->$/.exec(lines[j]!.trim()) : null;
    if (marker && !marker[1]) throw new Error(`README.md line ${j + 1}: a readme-test skip marker needs a reason in parentheses`);
    blocks.push({ lang: open[1]!.startsWith('t') ? 'ts' : 'js', line: start + 1, code: body.join('\n'), skip: marker?.[1] ?? null });
  }
  return blocks;
}

const tmp = mkdtempSync(join(tmpdir(), 'recur-readme-'));
mkdirSync(join(tmp, 'node_modules'));
symlinkSync(root, join(tmp, 'node_modules/recurjs'), 'dir');
// the WebGPU block runs in Node through the `webgpu` package, as a user's project would install it
symlinkSync(join(root, 'node_modules/webgpu'), join(tmp, 'node_modules/webgpu'), 'dir');
writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'readme-consumer', private: true, type: 'module' }));
const tsx = import.meta.resolve('tsx');
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('README code blocks', () => {
  const blocks = readmeBlocks(readme);
  test('the README has runnable blocks, and few skipped ones', () => {
    assert.ok(blocks.filter((b) => !b.skip).length >= 3, 'fewer than 3 runnable code blocks');
    assert.ok(blocks.filter((b) => b.skip).length <= 2, 'more than 2 blocks skipped: keep skips for code that cannot run here');
  });
  test('the marker parser: a skip needs a reason, and applies only to the next block', () => {
    const b = readmeBlocks('<!-- readme-test: skip (browser) -->\n```js\na\n```\n\n```ts\nb\n```\n');
    assert.deepEqual(b.map((x) => [x.lang, x.code, x.skip]), [['js', 'a', 'browser'], ['ts', 'b', null]]);
    assert.throws(() => readmeBlocks('<!-- readme-test: skip -->\n```js\na\n```\n'), /needs a reason/);
  });
  for (const b of blocks) {
    test(`README.md line ${b.line} (${b.lang})`, { skip: b.skip ?? false, timeout: 120_000 }, () => {
      const dir = mkdtempSync(join(tmp, `block-${b.line}-`));
      const file = join(dir, `block.${b.lang === 'ts' ? 'mts' : 'mjs'}`);
      writeFileSync(file, b.code);
      const args = b.lang === 'ts' ? ['--import', tsx, file] : [file];
      const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 110_000 });
      assert.equal(r.status, 0, `README.md line ${b.line}: the block failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    });
  }
});
