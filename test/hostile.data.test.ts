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

test('normalisation statistics that overflow are an error naming the column, never a model that cannot be loaded', async () => {
  const { fitNormStats, checkNormStats, DataError } = await import('../src/data/loaders.ts');
  const { getTaskSpec } = await import('../src/models/registry.ts');
  const { writeFileSync } = await import('node:fs');
  const rows = Array.from({ length: 40 }, (_, i) => [i, (i % 2 ? 1 : -1) * 1.5e300]);
  assert.throws(() => fitNormStats(rows, ['t', 'huge']), (e: Error) => e instanceof DataError && /column 'huge' has values too large to normalise/.test(e.message) && /1\.50e\+300/.test(e.message));
  assert.throws(() => fitNormStats([[1.7e308], [1.7e308]], ['big']), /column 'big'.*mean overflows to Infinity/);
  assert.throws(() => checkNormStats({ columns: ['a'], mean: [0], std: [Infinity] }), /column 'a' needs a finite mean and a positive std/);
  const csv = join(dir, 'huge.csv');
  writeFileSync(csv, `t,huge\n${rows.map((r) => r.join(',')).join('\n')}\n`);
  assert.throws(() => getTaskSpec('forecast').build({ data: csv, seqLen: 4, context: 4 }), /column 'huge' has values too large to normalise/);
});

test('recur eval: a label the model never saw is an error naming it, not another class or a backend error', async () => {
  const { trainCommand, evalCommand } = await import('../src/cli/train-commands.ts');
  const { writeFileSync } = await import('node:fs');
  const jsonl = (labels: string[]): string => Array.from({ length: 60 }, (_, i) => JSON.stringify({ input: `message number ${i} about ${['cheap', 'lunch', 'pills'][i % 3]}`, target: labels[i % labels.length] })).join('\n');
  const trainFile = join(dir, 'two.jsonl');
  writeFileSync(trainFile, jsonl(['ham', 'spam']));
  const run = join(dir, 'spam-run');
  const deps = { stdout: () => {}, stderr: () => {}, progress: false as const };
  const small = ['--set', 'embeddingDim=4', '--set', 'hiddenSize=4', '--set', 'minCount=1'];
  assert.equal(await trainCommand(['classify-spam', '--set', `data=${trainFile}`, ...small, '--max-steps', '1', '--run-dir', run], deps), 0);
  const model = join(run, 'model.safetensors');
  // the same data still evaluates
  const out: string[] = [];
  assert.equal(await evalCommand(['classify-spam', '--model', model, '--json'], { ...deps, stdout: (t: string) => void out.push(t) }), 0);
  assert.ok(JSON.parse(out.join('')).metrics.accuracy >= 0);
  // a third label (was: a BackendError from the loss) and a label in place of a known one (was: read as the other class)
  for (const [labels, unknown] of [[['ham', 'spam', 'eggs'], 'eggs'], [['bacon', 'spam'], 'bacon']] as const) {
    const f = join(dir, `${unknown}.jsonl`);
    writeFileSync(f, jsonl([...labels]));
    await assert.rejects(evalCommand(['classify-spam', '--model', model, '--set', `data=${f}`], deps), (e: Error) =>
      e.name === 'CliError' && e.message.includes(`"${unknown}" that the model never saw`) && /its labels: "ham", "spam"/.test(e.message));
  }
});

test('--encoding latin1 reads a Latin-1 data file that strict UTF-8 refuses, naming the file', async () => {
  const { trainCommand } = await import('../src/cli/train-commands.ts');
  const { writeFileSync } = await import('node:fs');
  const f = join(dir, 'latin1-corpus.txt');
  writeFileSync(f, Buffer.from('Ça a été un café très animé. '.repeat(40), 'latin1'));
  const deps = { stdout: () => {}, stderr: () => {}, progress: false as const };
  const args = ['charlm', '--set', `data=${f}`, '--set', 'embeddingDim=4', '--set', 'hiddenSize=4', '--set', 'seqLen=8', '--set', 'evalBatchSize=2', '--max-steps', '1'];
  await assert.rejects(trainCommand([...args, '--run-dir', join(dir, 'enc-a')], deps), (e: Error) => e.message.includes(f) && /not valid UTF-8/.test(e.message) && /latin1/.test(e.message));
  assert.equal(await trainCommand([...args, '--encoding', 'latin1', '--run-dir', join(dir, 'enc-b')], deps), 0);
  await assert.rejects(trainCommand(['classify-names', '--encoding', 'latin1', '--run-dir', join(dir, 'enc-c')], deps), /task 'classify-names' reads no data file/);
  // recur predict reads standard input strictly too (it was decoded with U+FFFD in place of bad bytes)
  const bin = join(import.meta.dirname, '..', 'bin', 'recur.mjs');
  const model = join(dir, 'enc-b', 'model.safetensors');
  const input = Buffer.from('Ça\n', 'latin1');
  const bad = spawnSync(process.execPath, [bin, 'predict', 'charlm', '--model', model], { input, encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /standard input: not valid UTF-8/);
  const good = spawnSync(process.execPath, [bin, 'predict', 'charlm', '--model', model, '--encoding', 'latin1'], { input, encoding: 'utf8' });
  assert.equal(good.status, 0, good.stderr);
  assert.equal(good.stdout.trim().split('\n').length, 1);
});
