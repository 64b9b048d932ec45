/**
 * Hostile model files: a model file's `recur.config` is untrusted. It is checked key by key (type,
 * range, resource limits), and against the file's tensors (names, shapes, the parameter count it
 * implies), before any model is built — so a file of a few hundred bytes cannot make `predict`,
 * `export` or the loaders allocate gigabytes, and a malformed value is an error naming its key.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, type SafeTensor } from '../src/io/safetensors.ts';
import { moduleTensors } from '../src/io/model.ts';
import { loadModelFile, saveModel } from '../src/io/files.ts';
import { LimitError } from '../src/io/limits.ts';
import { Rng } from '../src/tensor/rng.ts';
import { Vocab } from '../src/data/vocab.ts';
import { CharVocab } from '../src/data/text.ts';
import type { Module } from '../src/nn/module.ts';
import { CharLM, CharLMConfigError, charLMTensorShapes, checkCharLMConfig, loadCharLM } from '../src/models/charlm.ts';
import { ClassificationTask, checkClassifierConfig, classifierTensorShapes, loadClassifier, type ClassifierConfig } from '../src/models/classifier.ts';
import { FeedForwardTask, feedForwardTensorShapes, type FeedForwardConfig } from '../src/models/feedforward.ts';
import { checkNameGenConfig, NameGenTask, nameGenTensorShapes, type NameGenConfig } from '../src/models/namegen.ts';
import { checkForecastConfig, ForecastTask, forecastTensorShapes, type ForecastConfig } from '../src/models/forecaster.ts';
import { checkSeq2SeqConfig, Seq2Seq, seq2seqTensorShapes, type Seq2SeqConfig } from '../src/models/seq2seq.ts';
import { Captioner, captionerTensorShapes, checkCaptionerConfig } from '../src/models/captioner.ts';
import { TaskConfigError, type ParamShapes } from '../src/models/task-options.ts';
import { predictCommand } from '../src/cli/train-commands.ts';
import { exportCommand } from '../src/cli/onnx.ts';

const DIR = mkdtempSync(join(tmpdir(), 'recur-hostile-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

/** A hand-made model file: the given tensors, config and vocabulary. */
function modelFile(name: string, config: unknown, tensors: Record<string, SafeTensor>, vocab?: unknown): string {
  const metadata: Record<string, string> = { format: 'pt', 'recur.config': JSON.stringify(config) };
  if (vocab !== undefined) metadata['recur.vocab'] = JSON.stringify(vocab);
  const path = join(DIR, name);
  writeFileSync(path, encodeSafetensors(tensors, metadata));
  return path;
}

const tiny: Record<string, SafeTensor> = { 'embedding.weight': { dtype: 'F32', shape: [2, 1], data: new Float32Array(2) } };

/** Run fn; it must throw, fast (nothing was built), with an error accepted by `check`. */
function refusedFast(fn: () => unknown, check: (e: Error) => void, ms = 2000): void {
  const t0 = performance.now();
  assert.throws(fn, (e: Error) => {
    check(e);
    return true;
  });
  const took = performance.now() - t0;
  assert.ok(took < ms, `took ${took.toFixed(0)} ms: something was built before the config was checked`);
}

const isLimit = (key: string, re: RegExp) => (e: Error): void => {
  assert.ok(e instanceof LimitError, `expected a LimitError, got ${e.name}: ${e.message}`);
  assert.equal(e.key, key);
  assert.match(e.message, re);
};

// ---- the files: tiny, asking for enormous models ---------------------------------------------

test('a ~700-byte file whose config asks for a million layers is refused before anything is built', async () => {
  const path = modelFile('million.safetensors', { arch: 'charlm', vocabSize: 2, embeddingDim: 1, hiddenSize: 1, numLayers: 1_000_000, cell: 'lstm' }, tiny, { chars: ['a', 'b'], unk: null });
  assert.ok(statSync(path).size < 1000, `${statSync(path).size} bytes`);
  refusedFast(() => loadCharLM(loadModelFile(path), path), isLimit('layers', /CharLM config: 'numLayers': 1000000 is over the limit of 64 \(layers\)/));
  // recur predict and recur export go through the same loaders
  const t0 = performance.now();
  await assert.rejects(predictCommand(['charlm', '--model', path, 'x'], { stdout: () => {} }), /'numLayers': 1000000 is over the limit of 64 \(layers\)/);
  await assert.rejects(exportCommand([path, '--format', 'onnx', '-o', join(DIR, 'x.onnx')], { out: () => {}, err: () => {} }), /'numLayers': 1000000 is over the limit of 64 \(layers\)/);
  // generous for a loaded machine (it includes loading the task registry and the exporter); the
  // build this guards against took 36 s before failing
  assert.ok(performance.now() - t0 < 10_000);
});

test('a config asking for hidden size 100,000 is refused by the loader, predict and export alike', async () => {
  const config = {
    task: 'classify-spam', arch: 'rnn-classifier', tokenizer: { type: 'word', lowercase: true, maxTokenChars: 20 }, labels: ['ham', 'spam'], cell: 'lstm',
    embeddingDim: 8, hiddenSize: 100_000, numLayers: 1, bidirectional: false, pooling: 'mean', dropout: 0, maxLen: 16, truncate: 'end',
  };
  const path = modelFile('wide.safetensors', config, tiny, { tokens: ['<pad>', '<unk>', 'a'], specials: { pad: '<pad>', unk: '<unk>' } });
  refusedFast(() => loadClassifier(loadModelFile(path), path), isLimit('hiddenSize', /config: 'hiddenSize': 100000 is over the limit of 16384 \(hiddenSize\)/));
  await assert.rejects(predictCommand(['classify-spam', '--model', path, 'x'], { stdout: () => {} }), /'hiddenSize': 100000 is over the limit/);
  await assert.rejects(exportCommand([path, '--format', 'onnx', '-o', join(DIR, 'y.onnx')], { out: () => {}, err: () => {} }), /'hiddenSize': 100000 is over the limit/);
});

test('sizes within each key\'s limit that imply too many parameters are refused before building', () => {
  // 16384 × 64 layers is within the hiddenSize and layers limits, but the LSTM alone would hold
  // 64 · 4·16384·(2·16384) ≈ 1.4e11 parameters (over 500 GB of float32)
  const path = modelFile('params.safetensors', { arch: 'charlm', vocabSize: 2, embeddingDim: 1, hiddenSize: 16384, numLayers: 64, cell: 'lstm' }, tiny);
  refusedFast(() => loadCharLM(loadModelFile(path), path), isLimit('parameters', /parameters the config implies: \d+ is over the limit of 268435456 \(parameters\)/));
  // and with an explicit limit on a real model file
  const lm = new CharLM({ vocabSize: 5, embeddingDim: 3, hiddenSize: 4, numLayers: 1, rng: new Rng(1) });
  const real = join(DIR, 'real-lm.safetensors');
  saveModel(real, lm, { config: lm.config });
  assert.equal(loadCharLM(loadModelFile(real), real).model.numParameters(), lm.numParameters());
  refusedFast(() => loadCharLM(loadModelFile(real), real, { limits: { parameters: lm.numParameters() - 1 } }), isLimit('parameters', new RegExp(`${lm.numParameters()} is over the limit of ${lm.numParameters() - 1}`)));
  refusedFast(() => loadCharLM(loadModelFile(real), real, { limits: { hiddenSize: 3 } }), isLimit('hiddenSize', /'hiddenSize': 4 is over the limit of 3/));
});

test('the tensors must be exactly those the config implies, checked before the model is built', () => {
  // a config within every limit whose model would take ~1 GB and seconds to build, in a file
  // that holds one small tensor: refused at once, naming what is missing
  const path = modelFile('mismatch.safetensors', { arch: 'charlm', vocabSize: 2, embeddingDim: 1, hiddenSize: 2000, numLayers: 8, cell: 'lstm' }, tiny);
  refusedFast(() => loadCharLM(loadModelFile(path), path), (e) => {
    assert.ok(e instanceof CharLMConfigError, `${e.name}: ${e.message}`);
    assert.match(e.message, /the tensors do not match the config: missing tensor 'lstm\.weight_ih_l0'/);
  });
  // an extra tensor is refused by name, before building
  const lm = new CharLM({ vocabSize: 5, embeddingDim: 3, hiddenSize: 4, rng: new Rng(1) });
  const tensors = { ...moduleTensors(lm), extra: { dtype: 'F32' as const, shape: [1], data: new Float32Array(1) } };
  const extra = modelFile('extra.safetensors', lm.config, tensors);
  assert.throws(() => loadCharLM(loadModelFile(extra), extra), (e: Error) => e instanceof CharLMConfigError && /the tensors do not match the config: unexpected tensor 'extra'/.test(e.message));
  // a vocabulary whose size disagrees with the config, before building
  const v = modelFile('vocab.safetensors', lm.config, moduleTensors(lm), { chars: ['a', 'b'], unk: null });
  assert.throws(() => loadCharLM(loadModelFile(v), v), /the vocabulary has 2 characters but the config says vocabSize 5/);
});

// ---- every key's type and range -------------------------------------------------------------------

const CLASSIFIER: ClassifierConfig = {
  task: 't', arch: 'rnn-classifier', tokenizer: { type: 'char', lowercase: true }, labels: ['a', 'b'], cell: 'gru', embeddingDim: 3,
  hiddenSize: 4, numLayers: 2, bidirectional: true, pooling: 'last', dropout: 0.1, maxLen: 12, truncate: 'end',
};

test('stored configs: each key is checked for type and range, the error names the key', () => {
  const bad = (patch: Record<string, unknown>, re: RegExp, limits: {} | null = {}): void => {
    assert.throws(() => checkClassifierConfig({ ...CLASSIFIER, ...patch }, 'm.safetensors: config', limits), (e: Error) => {
      assert.ok(e instanceof TaskConfigError || e instanceof LimitError, `${e.name}: ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
  };
  assert.doesNotThrow(() => checkClassifierConfig(CLASSIFIER, 'c', {}));
  // found by fuzzing: accepted before, though no model could mean them
  bad({ tokenizer: { type: 'char', lowercase: [] } }, /'tokenizer'.*lowercase must be true or false, got \[\]/);
  bad({ maxLen: 2 ** 53 + 2 }, /'maxLen' must be a positive integer, got 9007199254740994/);
  bad({ maxLen: 2 ** 53 + 2 }, /'maxLen' must be a positive integer/, null);
  bad({ maxLen: 1e9 }, /'maxLen': 1000000000 is over the limit of 10000000 \(sequenceLength\)/);
  bad({ numLayers: 1.5 }, /'numLayers' must be a positive integer, got 1\.5/);
  bad({ hiddenSize: -4 }, /'hiddenSize' must be a positive integer, got -4/);
  bad({ hiddenSize: '4' }, /'hiddenSize' must be a positive integer, got "4"/);
  bad({ bidirectional: 'true' }, /'bidirectional' must be true or false, got "true"/);
  bad({ bidirectional: 1 }, /'bidirectional' must be true or false, got 1/);
  bad({ dropout: '0.1' }, /'dropout' must be a finite number in \[0, 1\)/);
  bad({ dropout: 1 }, /'dropout' must be a finite number in \[0, 1\), got 1/);
  bad({ cell: ['gru'] }, /'cell' must be 'lstm', 'gru' or 'rnn', got \["gru"\]/);
  bad({ labels: ['a', 7] }, /'labels' must be a list of at least 2 distinct strings/);
  bad({ labels: ['a', 'a'] }, /'labels' must be a list of at least 2 distinct strings/);
  bad({ task: 5 }, /'task' must be a string, got 5/);
  bad({ truncate: 'middle' }, /'truncate' must be false, 'end' or 'start'/);
  bad({ extra: 1 }, /unknown field 'extra'/);
  assert.throws(() => checkClassifierConfig(JSON.parse(`{"__proto__": {"x": 1}, ${JSON.stringify(CLASSIFIER).slice(1)}`), 'c', {}), /unknown field '__proto__'/);
  // a list's entries are counted against its limit, not read as sizes: a number in a label list is a wrong type
  assert.throws(() => checkClassifierConfig({ ...CLASSIFIER, labels: ['a', 2 ** 40] }, 'c', {}), (e: Error) => e.name === 'TaskConfigError' && /'labels' must be a list of at least 2 distinct strings, got \["a",1099511627776\]/.test(e.message));
  const { maxLen: _, ...noMaxLen } = CLASSIFIER;
  assert.throws(() => checkClassifierConfig(noMaxLen, 'c', {}), /missing field 'maxLen'/);
  // a huge value is cut short in the message
  assert.throws(() => checkClassifierConfig({ ...CLASSIFIER, task: 'x'.repeat(100_000).split('') }, 'c', {}), (e: Error) => e.message.length < 300);

  // the other tasks' schemas
  const ng: NameGenConfig = { task: 'n', arch: 'conditional-char-rnn', conditions: ['f', 'm'], lowercase: false, cell: 'gru', embeddingDim: 2, conditionDim: 2, hiddenSize: 3, numLayers: 1, dropout: 0, maxLen: 8, temperature: 0.8, sampleSeed: 1 };
  assert.doesNotThrow(() => checkNameGenConfig(ng, 'c', {}));
  assert.throws(() => checkNameGenConfig({ ...ng, sampleSeed: 1e300 }, 'c', {}), /'sampleSeed' must be an integer, got 1e\+300/);
  assert.throws(() => checkNameGenConfig({ ...ng, temperature: -1 }, 'c', {}), /'temperature' must be a finite number in \[0, ∞\)/);
  assert.throws(() => checkNameGenConfig({ ...ng, lowercase: 'no' }, 'c', {}), /'lowercase' must be true or false/);
  const fc: ForecastConfig = { task: 'f', arch: 'rnn-forecaster', columns: ['a', 'b'], norm: { columns: ['a', 'b'], mean: [0, 1], std: [1, 2] }, cell: 'lstm', hiddenSize: 3, numLayers: 1, dropout: 0, residual: true, deltaScale: [0.5, 0.5], context: 4 };
  assert.doesNotThrow(() => checkForecastConfig(fc, 'c', {}));
  assert.throws(() => checkForecastConfig({ ...fc, deltaScale: [0.5, '0.5'] }, 'c', {}), /'deltaScale' must be a list of 2 finite numbers > 0/);
  assert.throws(() => checkForecastConfig({ ...fc, deltaScale: [0.5] }, 'c', {}), /'deltaScale' must be a list of 2 finite numbers/);
  assert.throws(() => checkForecastConfig({ ...fc, norm: { ...fc.norm, std: [1, '2'] } }, 'c', {}), /needs a finite mean and a positive std/);
  assert.throws(() => checkForecastConfig({ ...fc, residual: null }, 'c', {}), /'residual' must be true or false, got null/);
  assert.throws(() => checkCharLMConfig({ arch: 'charlm', vocabSize: 3, embeddingDim: 2, hiddenSize: 2, numLayers: 2 ** 60, cell: 'lstm' }), /'numLayers' must be a positive integer/);
  assert.throws(() => checkSeq2SeqConfig({ srcVocabSize: 3, tgtVocabSize: 4, attnDim: 1.5 }), /'attnDim' must be a positive integer/);
  assert.throws(() => checkSeq2SeqConfig({ srcVocabSize: 3, tgtVocabSize: 4_000_000 }, {}), /'tgtVocabSize': 4000000 is over the limit of 1000000 \(vocab\)/);
  assert.throws(() => checkCaptionerConfig({ arch: 'captioner', imageSize: 2 ** 20, vocabSize: 4, channels: [2, 2], embeddingDim: 2, hiddenSize: 2 }), /'imageSize' must be a multiple of 4 .* in \[4, 1024\]/);
  assert.throws(() => checkCaptionerConfig({ arch: 'captioner', imageSize: 8, vocabSize: 4, channels: [2, 100_000], embeddingDim: 2, hiddenSize: 2 }, {}), /'channels'\[1\]: 100000 is over the limit/);
});

// ---- the shapes each config implies are the shapes its model has -------------------------------------

function assertShapes(model: Module, shapes: ParamShapes, what: string): void {
  const got = model.namedParameters().map(([n, p]) => [n, [...p.shape]]);
  assert.deepEqual(new Map(shapes), new Map(got as [string, number[]][]), what);
}

test('each task\'s implied tensor shapes equal those of the model it builds', () => {
  const vocab = new Vocab(['<pad>', '<unk>', '<s>', '</s>', 'a', 'b', 'c'], { pad: '<pad>', unk: '<unk>', bos: '<s>', eos: '</s>' });
  for (const v of [{}, { cell: 'lstm', bidirectional: false, numLayers: 1 }, { cell: 'rnn', numLayers: 3 }] as const) {
    const c = { ...CLASSIFIER, ...v } as ClassifierConfig;
    assertShapes(new ClassificationTask(c, vocab).model, classifierTensorShapes(c, vocab.size), `classifier ${JSON.stringify(v)}`);
  }
  const ff: FeedForwardConfig = { task: 'f', arch: 'bag-of-chars-mlp', labels: ['a', 'b', 'c'], lowercase: true, hiddenSize: 5, dropout: 0 };
  assertShapes(new FeedForwardTask(ff, vocab).model, feedForwardTensorShapes(ff, vocab.size), 'feedforward');
  const ng: NameGenConfig = { task: 'n', arch: 'conditional-char-rnn', conditions: ['f', 'm'], lowercase: false, cell: 'lstm', embeddingDim: 2, conditionDim: 3, hiddenSize: 4, numLayers: 2, dropout: 0, maxLen: 8, temperature: 0.8, sampleSeed: 1 };
  assertShapes(new NameGenTask(ng, vocab).model, nameGenTensorShapes(ng, vocab.size), 'namegen');
  const fc: ForecastConfig = { task: 'f', arch: 'rnn-forecaster', columns: ['a', 'b', 'c'], norm: { columns: ['a', 'b', 'c'], mean: [0, 0, 0], std: [1, 1, 1] }, cell: 'gru', hiddenSize: 3, numLayers: 2, dropout: 0, residual: true, deltaScale: [1, 1, 1], context: 4 };
  assertShapes(new ForecastTask(fc).model, forecastTensorShapes(fc), 'forecast');
  const lm = new CharLM({ vocabSize: 6, embeddingDim: 2, hiddenSize: 3, numLayers: 3, rng: new Rng(0) });
  assertShapes(lm, charLMTensorShapes(lm.config), 'charlm');
  for (const v of [{ attention: 'additive', cell: 'gru', encoderLayers: 2 }, { attention: 'general' }, { attention: 'dot', encoderHidden: 3, decoderHidden: 6 }] as const) {
    const c: Seq2SeqConfig = checkSeq2SeqConfig({ srcVocabSize: 5, tgtVocabSize: 7, embeddingDim: 2, encoderHidden: 3, decoderHidden: 4, attnDim: 5, ...v });
    assertShapes(new Seq2Seq(c), seq2seqTensorShapes(c), `seq2seq ${JSON.stringify(v)}`);
  }
  const cap = checkCaptionerConfig({ arch: 'captioner', imageSize: 8, vocabSize: 6, channels: [2, 3], embeddingDim: 4, hiddenSize: 5 });
  assertShapes(new Captioner(cap), captionerTensorShapes(cap), 'captioner');
});

test('a model saved by a task still loads (the checks accept what recur writes)', () => {
  const vocab = CharVocab.fromText('hello world');
  const lm = new CharLM({ vocabSize: vocab.size, embeddingDim: 3, hiddenSize: 4, numLayers: 2, rng: new Rng(2) });
  const path = join(DIR, 'ok-lm.safetensors');
  saveModel(path, lm, { config: lm.config, vocab: vocab.toJSON() });
  const loaded = loadCharLM(loadModelFile(path), path);
  assert.deepEqual(loaded.model.config, lm.config);
  const v = new Vocab(['<pad>', '<unk>', 'a', 'b'], { pad: '<pad>', unk: '<unk>' });
  const task = new ClassificationTask(CLASSIFIER, v, 3);
  const cpath = join(DIR, 'ok-cls.safetensors');
  const d = task.describe();
  saveModel(cpath, task.model, { config: d.config, vocab: d.vocab });
  assert.deepEqual(loadClassifier(loadModelFile(cpath), cpath).config, CLASSIFIER);
  // a stored vocabulary over the vocab limit is refused before it is built into a model
  assert.throws(() => loadClassifier(loadModelFile(cpath), cpath, { limits: { vocab: 3 } }), (e: Error) => e instanceof LimitError && /recur\.vocab: vocabulary entries: 4 is over the limit of 3/.test(e.message));
});
