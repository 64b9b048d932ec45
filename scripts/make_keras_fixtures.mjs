/**
 * Keras / TF.js layers-model fixtures for test/keras.*.test.ts, made with TensorFlow.js (the pure
 * JavaScript CPU backend, no network): each case builds a Sequential model, overwrites every
 * weight with seeded uniform(-0.5, 0.5) values, saves model.json + weights with a custom IOHandler,
 * and records an input and TF.js's own prediction for it.
 *
 *   node scripts/make_keras_fixtures.mjs
 *
 * Writes test/fixtures/keras/<case>/{model.json, *.bin, io.json}. The GRU reset_after=true cases
 * (which TF.js cannot build or load) are written by scripts/make_keras_fixtures.py instead.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join('test', 'fixtures', 'keras');

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const L = tf.layers;

/** name → [build(), input shape, 'float' | vocab size (token ids)] */
const CASES = {
  simplernn_tanh_seq: () => [[L.simpleRNN({ units: 4, returnSequences: true, inputShape: [5, 3] }), L.dense({ units: 2 })], [2, 5, 3], 'float'],
  simplernn_relu_backwards_last: () => [[L.simpleRNN({ units: 4, activation: 'relu', goBackwards: true, inputShape: [5, 3] }), L.dense({ units: 2, activation: 'tanh' })], [2, 5, 3], 'float'],
  lstm_sigmoid_seq_td_softmax: () => [[L.lstm({ units: 4, recurrentActivation: 'sigmoid', returnSequences: true, inputShape: [5, 3] }), L.timeDistributed({ layer: L.dense({ units: 3, activation: 'softmax' }) })], [2, 5, 3], 'float'],
  lstm_hard_sigmoid_backwards_last: () => [[L.lstm({ units: 4, goBackwards: true, inputShape: [6, 3] }), L.dense({ units: 2, activation: 'sigmoid' })], [3, 6, 3], 'float'],
  gru_reset_before_sigmoid_seq: () => [[L.gru({ units: 4, recurrentActivation: 'sigmoid', returnSequences: true, inputShape: [5, 3] }), L.dropout({ rate: 0.3 }), L.dense({ units: 2, activation: 'relu' })], [2, 5, 3], 'float'],
  gru_reset_before_hard_sigmoid_last: () => [[L.gru({ units: 3, inputShape: [5, 2] }), L.dense({ units: 2 })], [2, 5, 2], 'float'],
  embedding_bilstm_concat_td: () => [[L.embedding({ inputDim: 10, outputDim: 3, inputLength: 6 }), L.bidirectional({ layer: L.lstm({ units: 3, recurrentActivation: 'sigmoid', returnSequences: true }), mergeMode: 'concat' }), L.timeDistributed({ layer: L.dense({ units: 4, activation: 'softmax' }) })], [2, 6], 10],
  bigru_sum_seq: () => [[L.bidirectional({ layer: L.gru({ units: 3, returnSequences: true }), mergeMode: 'sum', inputShape: [5, 2] })], [2, 5, 2], 'float'],
  birnn_mul_last: () => [[L.bidirectional({ layer: L.simpleRNN({ units: 3 }), mergeMode: 'mul', inputShape: [4, 2] }), L.dense({ units: 2, activation: 'linear' })], [2, 4, 2], 'float'],
  bilstm_ave_stacked: () => [[L.bidirectional({ layer: L.lstm({ units: 3, recurrentActivation: 'sigmoid', returnSequences: true }), mergeMode: 'ave', inputShape: [5, 2] }), L.lstm({ units: 2, recurrentActivation: 'sigmoid' })], [2, 5, 2], 'float'],
};

/** Cases whose weights are written as two shards split mid-weight (tests shard concatenation). */
const TWO_SHARDS = new Set(['embedding_bilstm_concat_td']);

async function makeCase(name, caseIndex) {
  const [layers, inShape, kind] = CASES[name]();
  const model = tf.sequential({ name: `seq_${name}` });
  for (const l of layers) model.add(l);
  const rand = mulberry32(1000 + caseIndex);
  model.setWeights(model.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => rand() - 0.5), w.shape)));

  let artifacts;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const wd = artifacts.weightData;
  const bytes = Array.isArray(wd) ? Buffer.concat(wd.map((b) => Buffer.from(b))) : Buffer.from(wd);
  const dir = join(ROOT, name);
  mkdirSync(dir, { recursive: true });
  let paths;
  if (TWO_SHARDS.has(name)) {
    const cut = 4 * Math.floor(bytes.length / 8) + 4; // lands inside a weight
    paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
    writeFileSync(join(dir, paths[0]), bytes.subarray(0, cut));
    writeFileSync(join(dir, paths[1]), bytes.subarray(cut));
  } else {
    paths = ['group1-shard1of1.bin'];
    writeFileSync(join(dir, paths[0]), bytes);
  }
  const modelJson = {
    modelTopology: artifacts.modelTopology,
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    weightsManifest: [{ paths, weights: artifacts.weightSpecs }],
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson, null, 1) + '\n');

  const n = inShape.reduce((a, b) => a * b, 1);
  const xr = mulberry32(2000 + caseIndex);
  const data = kind === 'float' ? Array.from({ length: n }, () => Math.fround(2 * xr() - 1)) : Array.from({ length: n }, () => Math.floor(xr() * kind));
  const x = tf.tensor(data, inShape, 'float32'); // token ids too: Keras' Embedding casts its input
  const y = model.predict(x);
  const io = {
    source: `TensorFlow.js ${tf.version.tfjs} (cpu backend, float32) model.predict`,
    input: { shape: inShape, data },
    output: { shape: y.shape, data: Array.from(await y.data()) },
  };
  writeFileSync(join(dir, 'io.json'), JSON.stringify(io) + '\n');
  console.log(`${name}: ${artifacts.weightSpecs.length} weights, ${bytes.length} bytes, output ${JSON.stringify(y.shape)}`);
}

const names = Object.keys(CASES);
for (const [i, name] of names.entries()) await makeCase(name, i);
