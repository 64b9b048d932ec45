/**
 * Every task model learns on tiny data (the training loss falls well below where it started within
 * a few seconds), survives save → load with identical predictions, and rejects bad inputs clearly.
 * A minimal loop (Adam + global-norm clipping + backward) drives them here; tasks.a.trainer.test.ts
 * drives them with the Trainer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backward } from '../src/autograd/tape.ts';
import { Adam } from '../src/train/optim.ts';
import { clipGradNorm } from '../src/train/clip.ts';
import type { BatchSource, Task } from '../src/train/task.ts';
import { Rng } from '../src/tensor/rng.ts';
import { loadModelFile } from '../src/io/files.ts';
import { buildClassifier, loadClassifier, type ClassifierBuildOptions } from '../src/models/classifier.ts';
import { buildFeedForward, loadFeedForward } from '../src/models/feedforward.ts';
import { buildNameGen, loadNameGen } from '../src/models/namegen.ts';
import { buildLM, loadLM } from '../src/models/lm.ts';
import { buildForecast, FORECAST_INPUTS, loadForecast } from '../src/models/forecaster.ts';
import { loadCharLM } from '../src/models/charlm.ts';
import { taskNameOf } from '../src/models/registry.ts';
import { saveTask } from '../src/models/files.ts';

const dir = mkdtempSync(join(tmpdir(), 'recur-tasks-a-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** Train for `steps` batches; returns the mean loss of the first and of the last 3 steps. */
function train<B>(task: Task<B>, source: BatchSource<B>, steps: number, lr: number): { first: number; last: number } {
  const opt = new Adam(task.model.namedParameters(), { lr });
  task.model.train();
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const epoch = Math.floor(s / source.numBatches);
    const r = task.step(source.get(epoch, s % source.numBatches));
    opt.zeroGrad();
    backward(r.loss);
    clipGradNorm(task.model.parameters(), 1);
    opt.step();
    losses.push(r.loss.item());
  }
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  return { first: mean(losses.slice(0, 3)), last: mean(losses.slice(-3)) };
}

// ---- tiny data ------------------------------------------------------------------------------------

const HAM_WORDS = ['meeting', 'notes', 'lunch', 'project', 'report', 'team', 'monday', 'draft', 'review', 'slides'];
const SPAM_WORDS = ['free', 'win', 'cash', 'viagra', 'click', 'offer'];

function tinyTexts(n: number, seed: number): { text: string; label: number }[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const words = Array.from({ length: 4 + rng.int(8) }, () => HAM_WORDS[rng.int(HAM_WORDS.length)]);
    if (label) for (let k = 0; k < 2; k++) words.splice(rng.int(words.length), 0, SPAM_WORDS[rng.int(SPAM_WORDS.length)]);
    return { text: words.join(' '), label };
  });
}

function tinyNames(n: number, seed: number): { name: string; label: number }[] {
  const rng = new Rng(seed);
  const cons = 'bcdfgklmnprstv', vow = 'aeiou';
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    let s = cons[rng.int(cons.length)].toUpperCase();
    for (let k = 0; k < 1 + rng.int(3); k++) s += vow[rng.int(5)] + cons[rng.int(cons.length)];
    return { name: s + (label ? 'o' : 'a'), label };
  });
}

const CLS: ClassifierBuildOptions = {
  tokenizer: 'word', lowercase: true, minCount: 1, maxVocab: 1000, cell: 'gru', embeddingDim: 16, hiddenSize: 16, numLayers: 1,
  bidirectional: false, pooling: 'mean', dropout: 0, maxLen: 32, truncate: false, batchSize: 16, seed: 3,
};

// ---- many-to-one ------------------------------------------------------------------------------------

for (const variant of [
  { label: 'word GRU, mean pooling', o: {} },
  { label: 'word biLSTM, last state, 2 layers', o: { cell: 'lstm', bidirectional: true, pooling: 'last', numLayers: 2 } },
] as const) {
  test(`classifier (${variant.label}) learns tiny spam/ham; save → load → same predictions`, () => {
    const data = { train: tinyTexts(64, 1), val: tinyTexts(16, 2), test: tinyTexts(16, 3) };
    const { task, train: src, val } = buildClassifier('tiny-spam', ['ham', 'spam'], { ...CLS, ...variant.o }, data);
    const { first, last } = train(task, src, 40, 0.02);
    assert.ok(last < 0.4 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
    const m = task.evaluate(val);
    assert.deepEqual(Object.keys(m).slice(0, 2), ['accuracy', 'f1']);
    assert.ok(m.accuracy >= 0.9, `held-out accuracy ${m.accuracy}`);
    const inputs = ['click free cash now', 'team meeting monday', 'review the draft offer', 'some never seen words'];
    const before = task.predict(inputs);
    assert.equal(before[0], 'spam');
    assert.equal(before[1], 'ham');
    const path = join(dir, `cls-${variant.o === undefined ? 0 : Object.keys(variant.o).length}.safetensors`);
    saveTask(task, path);
    const loaded = loadClassifier(loadModelFile(path));
    assert.deepEqual(loaded.predict(inputs), before);
    assert.deepEqual(loaded.evaluate(val), m);
    assert.equal(taskNameOf(loadModelFile(path).config), 'tiny-spam');
  });
}

test('classifier: char level on names; too-long and empty inputs are clear errors', () => {
  const data = { train: tinyNames(64, 4).map((e) => ({ text: e.name, label: e.label })), val: tinyNames(16, 5).map((e) => ({ text: e.name, label: e.label })) };
  const { task, train: src } = buildClassifier('tiny-names', ['female', 'male'], { ...CLS, tokenizer: 'char', pooling: 'last', bidirectional: true, maxLen: 12, truncate: false }, data);
  const { first, last } = train(task, src, 40, 0.02);
  assert.ok(last < 0.4 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.deepEqual(task.predict(['Bukola', 'Tekimo', 'Zoë']).slice(0, 2), ['female', 'male']);
  assert.throws(() => task.predict(['Abcdefghijklmnopq']), /input 0 has 17 tokens, more than the maximum 12; pass truncate/);
  assert.throws(() => task.predict(['ok', '']), /input 1 has no tokens/);
  assert.throws(() => buildClassifier('tiny-names', ['f', 'm'], { ...CLS, tokenizer: 'char', maxLen: 3 }, data), /train example 0 has \d+ tokens, more than the maximum 3/);
  assert.throws(() => buildClassifier('x', ['a', 'b'], CLS, { train: [{ text: 'a', label: 2 }], val: [{ text: 'a', label: 0 }] }), /label 2, outside \[0, 2\)/);
});

// ---- one-to-one -------------------------------------------------------------------------------------------

test('feed-forward baseline learns names → gender; save → load → same predictions', () => {
  const conv = (l: { name: string; label: number }[]) => l.map((e) => ({ text: e.name, label: e.label }));
  const { task, train: src, val } = buildFeedForward('tiny-ff', ['female', 'male'], { lowercase: true, hiddenSize: 16, dropout: 0, batchSize: 16, seed: 1 }, { train: conv(tinyNames(64, 6)), val: conv(tinyNames(16, 7)) });
  const { first, last } = train(task, src, 60, 0.02);
  assert.ok(last < 0.3 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(task.evaluate(val).accuracy >= 0.9);
  const inputs = ['Kema', 'Lotto', 'Ünal'];
  const before = task.predict(inputs);
  const path = join(dir, 'ff.safetensors');
  saveTask(task, path);
  assert.deepEqual(loadFeedForward(loadModelFile(path)).predict(inputs), before);
  assert.deepEqual(Object.keys(loadModelFile(path).tensors).sort(), ['head.bias', 'head.weight', 'hidden.bias', 'hidden.weight']);
});

// ---- one-to-many --------------------------------------------------------------------------------------------

test('conditional name generator learns; samples respect the condition; save → load → same names', () => {
  const female = ['Anna', 'Bella', 'Cara', 'Dana', 'Ella', 'Fiona', 'Gina', 'Hana'];
  const male = ['Bob', 'Tom', 'Jon', 'Rob', 'Tod', 'Don', 'Ron', 'Lon'];
  const all = [...female.map((name) => ({ name, label: 0 })), ...male.map((name) => ({ name, label: 1 }))];
  const o = { cell: 'gru' as const, embeddingDim: 12, conditionDim: 4, hiddenSize: 48, numLayers: 1, dropout: 0, maxLen: 12, temperature: 0.5, batchSize: 16, seed: 2 };
  const { task, train: src, val } = buildNameGen('tiny-namegen', ['female', 'male'], o, { train: all, val: all });
  const before = task.evaluate(val).nll;
  const { first, last } = train(task, src, 150, 0.02);
  assert.ok(last < 0.35 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  const m = task.evaluate(val);
  assert.ok(m.nll < 0.35 * before && Math.abs(m.bitsPerChar - m.nll / Math.LN2) < 1e-12);
  const names = task.predict(['female', 'male', 'female', 'm', 'F']);
  assert.equal(names.length, 5);
  assert.ok(names[0].endsWith('a') && names[2].endsWith('a') && names[4].endsWith('a'), `female samples ${names}`);
  assert.ok(!names[1].endsWith('a') && !names[3].endsWith('a'), `male samples ${names}`);
  for (const n of names) assert.ok(n.length >= 1 && n.length <= 12 && !/<|>/.test(n), n);
  const path = join(dir, 'namegen.safetensors');
  saveTask(task, path);
  assert.deepEqual(loadNameGen(loadModelFile(path)).predict(['female', 'male', 'female', 'm', 'F']), names);
  assert.throws(() => task.predict(['robot']), /unknown condition "robot" \(known: female, male\)/);
  assert.throws(() => buildNameGen('x', ['f', 'm'], { ...o, maxLen: 3 }, { train: all, val: all }), /train name 0 \("Anna"\) has 4 tokens, more than the maximum 3/);
});

// ---- many-to-many -------------------------------------------------------------------------------------------

test('character LM task learns a repetitive text; bpc on held-out; loads as a CharLM too', () => {
  const text = 'the cat sat on the mat. '.repeat(60);
  const lmOptions = { embeddingDim: 8, hiddenSize: 32, numLayers: 1, seqLen: 16, batchSize: 8, stepsPerEpoch: 10, evalBatchSize: 4, seed: 1, generation: { length: 24, temperature: 0 } };
  const { task, train: src, val } = buildLM(lmOptions, { train: text, val: text.slice(0, 300) });
  assert.equal(src.numBatches, 10);
  // a batch is a function of (seed, epoch, index), whatever was read before: a freshly built
  // source serves the same one; other indices and epochs differ
  const fresh = buildLM(lmOptions, { train: text, val: text.slice(0, 300) }).train.get(1, 3);
  assert.notDeepEqual(src.get(1, 4), fresh);
  assert.notDeepEqual(src.get(2, 3), fresh);
  assert.deepEqual(src.get(1, 3), fresh);
  const { first, last } = train(task, src, 60, 0.02);
  assert.ok(last < 0.3 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  const m = task.evaluate(val);
  assert.ok(m.bpc < 1.2, `bpc ${m.bpc}`);
  const out = task.predict(['the cat ']);
  assert.equal(out[0].length, 24);
  const path = join(dir, 'lm.safetensors');
  saveTask(task, path);
  assert.deepEqual(loadLM(loadModelFile(path), path, { length: 24, temperature: 0 }).predict(['the cat ']), out);
  assert.equal(loadCharLM(loadModelFile(path)).model.vocabSize, task.vocab.size, 'the file is a plain CharLM model file');
  assert.equal(taskNameOf(loadModelFile(path).config), 'charlm');
  // Unknown characters in a prompt map to the unknown token (U+FFFD) instead of failing: 'Z', 'b' and
  // 'r' are not in the training text, so the prompt reads as '\uFFFDe\uFFFD\uFFFDa '. The continuation
  // is the configured 24 characters, all from the training text (an untrained model emits U+FFFD too).
  const zebra = task.predict(['Zebra ']);
  assert.equal(zebra.length, 1);
  assert.equal([...zebra[0]].length, 24);
  assert.match(zebra[0], /^[the casonm.]{24}$/);
  assert.deepEqual(task.predict(['\uFFFDe\uFFFD\uFFFDa ']), zebra);
});

for (const inputs of FORECAST_INPUTS) test(`forecaster (inputs ${inputs}) learns a noisy sine; beats the last-value baseline; predict in raw units`, () => {
  const rng = new Rng(9);
  const series = (n: number, phase: number) => ({ name: `s${phase}`, rows: Array.from({ length: n }, (_, t) => [20 + 5 * Math.sin(t / 4 + phase) + 0.05 * rng.normal(), 50 + 10 * Math.cos(t / 4 + phase)]) });
  const all = [series(400, 0), series(400, 1)];
  const cut = (a: number, b: number) => all.map((s) => ({ name: s.name, rows: s.rows.slice(a, b) }));
  const o = { cell: 'lstm' as const, hiddenSize: 16, numLayers: 1, dropout: 0, residual: true, inputs, seqLen: 24, batchSize: 8, stepsPerEpoch: 10, context: 24, seed: 1 };
  const { task, train: src, val } = buildForecast('tiny-forecast', o, { columns: ['temp', 'hum'], train: cut(0, 300), val: cut(300, 400) });
  const { first, last } = train(task, src, 80, 0.01);
  assert.ok(last < 0.3 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  const m = task.evaluate(val);
  assert.ok(m.skill > 0.5 && m.mse < m.last_mse, JSON.stringify(m));
  assert.ok('skill.temp' in m && 'skill.hum' in m);
  const history = all[0].rows.slice(300, 340).map((r) => r.join(',')).join(';');
  const [pred] = task.predict([history]);
  const truth = all[0].rows[340];
  const p = pred.split(',').map(Number);
  assert.ok(Math.abs(p[0] - truth[0]) < 1 && Math.abs(p[1] - truth[1]) < 2, `${pred} vs ${truth}`);
  const path = join(dir, 'forecast.safetensors');
  saveTask(task, path);
  const loaded = loadForecast(loadModelFile(path));
  assert.deepEqual(loaded.predict([history]), [pred]);
  assert.deepEqual(loaded.config.norm, task.config.norm, 'normalisation stats travel in the model config');
  assert.throws(() => task.predict(['1,2;3']), /input 0, row 2 has 1 values, expected 2 \(temp, hum\)/);
  assert.throws(() => task.predict(['1,2;3,x']), /row 2, column 'hum': "x" is not a number/);
  assert.throws(() => task.predict(['  ']), /input 0 is empty/);
});

test('forecaster keeps flagged (anomalous) steps out of training windows', () => {
  const rows = Array.from({ length: 60 }, (_, t) => [t % 5, 1]);
  const flags = rows.map((_, t) => (t >= 10 && t < 50 ? 1 : 0));
  const o = { cell: 'gru' as const, hiddenSize: 4, numLayers: 1, dropout: 0, residual: true, inputs: 'change' as const, seqLen: 8, batchSize: 4, stepsPerEpoch: 3, context: 4, seed: 1 };
  const b = buildForecast('f', o, { columns: ['a', 'b'], train: [{ name: 's', rows, flags }], val: [{ name: 's', rows: rows.slice(0, 10) }] });
  assert.ok(b.train.numBatches === 3);
  assert.throws(() => buildForecast('f', { ...o, seqLen: 12 }, { columns: ['a', 'b'], train: [{ name: 's', rows, flags }], val: [{ name: 's', rows }] }), /no training series has seqLen \+ 1 = 13 consecutive unflagged steps/);
});
