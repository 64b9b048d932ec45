/**
 * Hostile and careless data: corpora too large to spread into per-character arrays, labels a model
 * never saw, numbers whose statistics overflow, and text in the wrong encoding. Each test here failed
 * before the fix it guards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = mkdtempSync(join(tmpdir(), 'recur-hostile-data-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const src = (p: string): string => pathToFileURL(join(import.meta.dirname, '..', 'src', p)).href;

test('charlm: an 80 MB one-line corpus is read and tokenised under a 512 MB heap', () => {
  // One line, no newline: 80 MiB of a 27-letter cycle with a two-byte 'é' now and then (so the
  // decoder's code points are exercised, not only ASCII). Spreading it into an array of characters
  // (one string pointer per character, plus the array's growth copies) needs several times the heap.
  const path = join(dir, 'big.txt');
  const block = Buffer.from('abcdefghijklmnopqrstuvwxyz é'.repeat(1 << 15));
  const blocks = Math.ceil((80 << 20) / block.length);
  const fd = openSync(path, 'w');
  for (let i = 0; i < blocks; i++) writeSync(fd, block);
  closeSync(fd);
  const charsPerBlock = 28 * (1 << 15);
  const n = blocks * charsPerBlock;
  const script = `
    const { getTaskSpec } = await import(${JSON.stringify(src('models/registry.ts'))});
    const b = getTaskSpec('charlm').build({ data: ${JSON.stringify(path)}, embeddingDim: 4, hiddenSize: 8, seqLen: 16, batchSize: 4, stepsPerEpoch: 1, evalBatchSize: 4 });
    const loss = b.task.step(b.train.get(0, 0)).loss.item();
    const v = b.val.get(0, 0);
    console.log(JSON.stringify({ vocab: b.task.vocab.size, loss, valB: v.B, valBatches: b.val.numBatches, testBatches: b.test.numBatches, heapMB: process.memoryUsage().heapUsed / 2 ** 20 }));
  `;
  const r = spawnSync(process.execPath, ['--max-old-space-size=512', '--import', 'tsx', '--input-type=module', '--eval', script], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `the child failed (status ${r.status}, signal ${r.signal}):\n${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.vocab, 28 + 1, 'the 28 distinct characters plus the unknown token');
  assert.ok(Number.isFinite(out.loss));
  // the held-out 5% is read as 4 streams in chunks of 16
  const val = Math.floor(n * 0.95) - Math.floor(n * 0.9);
  assert.equal(out.valBatches, Math.ceil(Math.floor((val - 1) / 4) / 16));
  assert.ok(out.heapMB < 256, `heap ${out.heapMB} MB`);
});

test('loadCharCorpus: the same ids and vocabulary as splitting the decoded string, chunk boundaries anywhere', async () => {
  const { loadCharCorpus } = await import('../src/data/files.ts');
  const { CharVocab } = await import('../src/data/text.ts');
  const { writeFileSync } = await import('node:fs');
  // a BOM, CRLF line ends, two-, three- and four-byte characters, and characters only in the held-out tail
  const text = 'Zoë — 😀 line\r\n'.repeat(40) + 'tail ¤ ✓ 𝄞\r\n';
  const path = join(dir, 'mixed.txt');
  writeFileSync(path, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]));
  const norm = [...text.replace(/\r\n/g, '\n')];
  const a = Math.floor(norm.length * 0.9), b = Math.floor(norm.length * 0.95);
  const vocab = CharVocab.fromText(norm.slice(0, a).join(''), { unk: '\uFFFD' });
  for (const chunkBytes of [1, 2, 3, 7, 1 << 20]) {
    const c = loadCharCorpus(path, { unk: '\uFFFD', chunkBytes });
    assert.deepEqual(c.vocab.toJSON(), vocab.toJSON(), `chunkBytes ${chunkBytes}`);
    assert.equal(c.length, norm.length);
    assert.deepEqual([...c.train], [...vocab.encode(norm.slice(0, a).join(''))]);
    assert.deepEqual([...c.val], [...vocab.encode(norm.slice(a, b).join(''))]);
    assert.deepEqual([...c.test], [...vocab.encode(norm.slice(b).join(''))]);
  }
});

test('loadCharCorpus: invalid UTF-8, an empty file and a tiny text are errors naming the file; latin1 on request', async () => {
  const { loadCharCorpus } = await import('../src/data/files.ts');
  const { DataError } = await import('../src/data/loaders.ts');
  const { writeFileSync } = await import('node:fs');
  const bad = join(dir, 'latin1.txt');
  writeFileSync(bad, Buffer.from('caf\xe9 au lait, '.repeat(20), 'latin1'));
  assert.throws(() => loadCharCorpus(bad, { unk: '\uFFFD', chunkBytes: 64 }), (e: Error) => e instanceof DataError && e.message.includes(bad) && /not valid UTF-8/.test(e.message) && /latin1/.test(e.message));
  const c = loadCharCorpus(bad, { unk: '\uFFFD', encoding: 'latin1' });
  assert.ok(c.vocab.has('é'));
  const empty = join(dir, 'blank.txt');
  writeFileSync(empty, ' \n\n ');
  assert.throws(() => loadCharCorpus(empty), (e: Error) => e instanceof DataError && e.message.includes(empty) && /the file is empty/.test(e.message));
  const tiny = join(dir, 'tiny.txt');
  writeFileSync(tiny, 'abcde');
  assert.throws(() => loadCharCorpus(tiny), /has 5 characters, too few to split/);
});
