/**
 * The character n-gram logistic-regression baseline (models/ngram.ts, task 'ngram-names'): its
 * features on a name checked by hand, save → load with the same predictions and checked tensors,
 * bad options and bad files rejected by name, and a short run on the packaged names beating chance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNgram, charNgrams, loadNgram, ngramTensorShapes, NgramTask, type NgramConfig } from '../src/models/ngram.ts';
import { getTaskSpec, taskNameOf, TaskRegistryError } from '../src/models/registry.ts';
import { saveTask } from '../src/models/files.ts';
import { loadModelFile } from '../src/io/files.ts';
import { Vocab } from '../src/data/vocab.ts';
import { Trainer } from '../src/train/trainer.ts';
import { classificationMetrics } from '../src/models/metrics.ts';

const dir = mkdtempSync(join(tmpdir(), 'recur-ngram-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const quiet = { logEvery: 1_000_000 };

test('character n-grams of a name, checked by hand: markers, orders, repeats, case', () => {
  // ^anna$ : 1-grams a n n a (markers alone are not features); 2-grams ^a an nn na a$;
  // 3-grams ^an ann nna na$
  assert.deepEqual(charNgrams('Anna', 1, 3, true), ['a', 'n', 'n', 'a', '^a', 'an', 'nn', 'na', 'a$', '^an', 'ann', 'nna', 'na$']);
  assert.deepEqual(charNgrams('Anna', 2, 2, false), ['^A', 'An', 'nn', 'na', 'a$']);
  // orders longer than the marked text give nothing; the whole marked text is the longest n-gram
  assert.deepEqual(charNgrams('Al', 4, 6, true), ['^al$']);
  assert.deepEqual(charNgrams('Zoë', 1, 1, true), ['z', 'o', 'ë']);
});

test('encoding keeps counts and drops n-grams the vocabulary lacks; a bag of W rows + bias is the logit', () => {
  const config: NgramConfig = { task: 't', arch: 'char-ngram-logreg', labels: ['f', 'm'], lowercase: true, minOrder: 1, maxOrder: 2, dropout: 0 };
  const vocab = new Vocab(['<pad>', 'a', 'n', '^a', 'a$'], { pad: '<pad>' });
  const task = new NgramTask(config, vocab);
  // Anna: a n n a ^a an nn na a$ → known: a(1) n(2) n(2) a(1) ^a(3) a$(4)
  assert.deepEqual([...task.encode('Anna')], [1, 2, 2, 1, 3, 4]);
  assert.deepEqual([...task.encode('xyz')], [], 'no known n-gram: an empty bag (bias only)');
  assert.throws(() => task.encode(''), /t: input is empty/);
  // logits = Σ W[id] + b, with W set by hand
  const W = task.model.features.weight;
  W.backend.write(W.storage, [0, 0, 1, -1, 0.5, 0.25, 2, 0, 0, 3]);
  task.model.bias.backend.write(task.model.bias.storage, [0.1, -0.1]);
  const { ids, B, K } = task.collate([{ ids: task.encode('Anna') }, { ids: task.encode('xyz') }]);
  const logits = task.model.forward(ids, B, K).toArray();
  // Anna: 2·(1,−1) + 2·(0.5,0.25) + (2,0) + (0,3) + b = (5, 1.5) + (0.1, −0.1) = (5.1, 1.4); xyz: b
  const want = [5.1, 1.4, 0.1, -0.1];
  want.forEach((v, i) => assert.ok(Math.abs(logits[i] - v) < 1e-6, `logit ${i}: ${logits[i]} ≠ ${v}`));
  assert.deepEqual(task.predict(['Anna', 'xyz']), ['f', 'f']);
});

test('metrics: precision and recall of the positive class beside accuracy and F1', () => {
  // gold 1 1 1 0 0, pred 1 0 1 1 0: tp 2, fp 1, fn 1 → precision 2/3, recall 2/3, F1 2/3
  const m = classificationMetrics([1, 0, 1, 1, 0], [1, 1, 1, 0, 0], 2);
  assert.ok(Math.abs(m.precision - 2 / 3) < 1e-12 && Math.abs(m.recall - 2 / 3) < 1e-12 && Math.abs(m.f1 - 2 / 3) < 1e-12);
  // gold 1 1 1 0, pred 1 0 0 0: precision 1, recall 1/3
  const n = classificationMetrics([1, 0, 0, 0], [1, 1, 1, 0], 2);
  assert.equal(n.precision, 1);
  assert.ok(Math.abs(n.recall - 1 / 3) < 1e-12);
});

test('ngram-names: bad options are rejected by name', () => {
  const spec = getTaskSpec('ngram-names');
  assert.equal(spec.topology, 'one-to-one');
  assert.throws(() => spec.build({ maxOrder: 0 }), (e: Error) => e instanceof TaskRegistryError && /option 'maxOrder' must be an integer in \[1, 8\], got 0/.test(e.message));
  assert.throws(() => spec.build({ minOrder: 9 }), /option 'minOrder' must be an integer in \[1, 8\], got 9/);
  assert.throws(() => spec.build({ minOrder: 3, maxOrder: 2 }), /ngram-names: option 'minOrder' \(3\) must not exceed 'maxOrder' \(2\)/);
  assert.throws(() => spec.build({ l2: -1 }), /option 'l2' must be a finite number in \[0, ∞\), got -1/);
  assert.throws(() => spec.build({ dropout: 1 }), /option 'dropout' must be/);
  assert.throws(() => spec.build({ hiddenSize: 8 }), /ngram-names: unknown option 'hiddenSize' \(known: lowercase, minOrder, maxOrder, minCount, maxVocab, l2, dropout, epochs, lr, clipNorm, batchSize, seed, splitSeed\)/);
});

test('ngram-names: a short run on the packaged names beats chance; save → load → same predictions; bad files refused', async () => {
  const spec = getTaskSpec('ngram-names');
  const b = spec.build({ epochs: 2, seed: 3 });
  const before = b.task.evaluate(b.val);
  const r = await new Trainer(b.task, { ...b.trainOptions, ...quiet }).fit(b.train, b.val);
  const m = r.finalMetrics!;
  // zero weights predict one class for every name (accuracy = that class's share, under 0.6);
  // 2 epochs reach validation accuracy 0.900–0.907, F1 0.876–0.887 (seeds 1–4)
  assert.ok(before.accuracy < 0.6, JSON.stringify(before));
  assert.ok(m.accuracy > 0.8 && m.f1 > 0.75, JSON.stringify(m));
  for (const k of ['accuracy', 'f1', 'macroF1', 'precision', 'recall', 'loss']) assert.ok(Number.isFinite(m[k]), k);

  const path = join(dir, 'ngram.safetensors');
  saveTask(b.task, path);
  const file = loadModelFile(path);
  assert.equal(taskNameOf(file.config), 'ngram-names');
  assert.deepEqual(Object.keys(file.tensors).sort(), ['bias', 'features.weight']);
  const inputs = ['Margaret', 'Theodore', 'Kiki', 'Q'];
  const loaded = spec.load(file).task;
  assert.deepEqual(spec.predict(loaded, inputs), spec.predict(b.task, inputs));
  assert.deepEqual(loaded.evaluate(b.test!), b.task.evaluate(b.test!));

  // the tensors must be those the config implies, the config of its form
  const task = b.task as NgramTask;
  const V = task.vocab.size;
  assert.deepEqual(ngramTensorShapes(task.config, V), [['features.weight', [V, 2]], ['bias', [2]]]);
  const { bias: _bias, ...noBias } = file.tensors;
  assert.throws(() => loadNgram({ ...file, tensors: noBias }, 'x.safetensors'), /x\.safetensors.*bias/);
  assert.throws(() => loadNgram({ ...file, config: { ...(file.config as object), maxOrder: 1, minOrder: 2 } }, 'x.safetensors'), /'minOrder' \(2\) must not exceed 'maxOrder' \(1\)/);
  assert.throws(() => loadNgram({ ...file, config: { ...(file.config as object), maxOrder: 99 } }, 'x.safetensors'), /maxOrder/);
  assert.throws(() => spec.predict(getTaskSpec('feedforward').build({ epochs: 1 }).task, ['Ann']), /ngram-names: predict needs a task built or loaded by 'ngram-names'/);
});

test('buildNgram: the vocabulary comes from training texts only, pad first; minCount and maxVocab apply', () => {
  const data = { train: [{ text: 'ab', label: 0 }, { text: 'ab', label: 0 }, { text: 'cd', label: 1 }], val: [{ text: 'ef', label: 1 }] };
  const o = { lowercase: true, minOrder: 1, maxOrder: 1, dropout: 0, minCount: 1, maxVocab: 100, l2: 0, batchSize: 2, seed: 1 };
  const { task } = buildNgram('t', ['x', 'y'], o, data);
  assert.deepEqual(task.vocab.toJSON().tokens, ['<pad>', 'a', 'b', 'c', 'd']);
  assert.deepEqual(buildNgram('t', ['x', 'y'], { ...o, minCount: 2 }, data).task.vocab.toJSON().tokens, ['<pad>', 'a', 'b']);
  assert.deepEqual(buildNgram('t', ['x', 'y'], { ...o, maxVocab: 3 }, data).task.vocab.toJSON().tokens, ['<pad>', 'a', 'b']);
});
