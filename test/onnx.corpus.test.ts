/**
 * Differential testing over the corpus of exported recurrent models (test/fixtures/onnx-corpus,
 * made by scripts/make_onnx_corpus.py): every case runs through recur — as `recur onnx test` does,
 * on the fused and the general recurrent path — AND through onnxruntime, and every output of every
 * data set must agree with the stored expectation (from PyTorch, or the script's numpy reference
 * for the Keras-converter shapes) and between the two runtimes to 1e-5. A few cases also go
 * through the built CLI (`node bin/recur.mjs onnx test CASE`; run `npm run build` first).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { CORPUS as ROOT, manifest, numbered, readPb, worst } from './helpers/onnx-corpus.ts';
import { loadOnnx, type OnnxInput } from '../src/onnx/model.ts';
import type { OnnxTensor } from '../src/onnx/tensor.ts';
import { runTestCase } from '../src/onnx/testcase.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TOL = 1e-5;

const folders = readdirSync(ROOT).filter((f) => statSync(join(ROOT, f)).isDirectory()).sort();

function ortTensor(t: OnnxTensor): ort.Tensor {
  switch (t.dtype) {
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(t.data, (x) => BigInt(x)), t.shape);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(t.data), t.shape);
    case 'float32': return new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
    default: throw new Error(`corpus input of type ${t.dtype}`);
  }
}


test('the manifest lists every case folder, and the corpus is the size the issue asks for', () => {
  assert.deepEqual(manifest.cases.map((c) => c.name).sort(), folders);
  assert.ok(folders.length >= 60, `${folders.length} cases`);
  const bySource = (s: string): number => manifest.cases.filter((c) => c.source === s).length;
  assert.ok(bySource('pytorch') >= 40 && bySource('keras-pattern') >= 12, `${bySource('pytorch')} pytorch, ${bySource('keras-pattern')} keras-pattern`);
  let bytes = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else bytes += statSync(join(d, e.name)).size;
    }
  };
  walk(ROOT);
  assert.ok(bytes < 5 * 2 ** 20, `${bytes} bytes`);
  // What the corpus must cover (the combinations PyTorch users export).
  const pt = manifest.cases.filter((c) => c.source === 'pytorch');
  for (const kind of ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU']) assert.ok(pt.some((c) => c.layers.kind === kind), kind);
  for (const n of [1, 2, 3]) assert.ok(pt.some((c) => c.layers.numLayers === n), `${n} layers`);
  for (const b of [true, false]) {
    assert.ok(pt.some((c) => c.layers.bidirectional === b), `bidirectional ${b}`);
    assert.ok(pt.some((c) => c.layers.batchFirst === b), `batchFirst ${b}`);
    assert.ok(pt.some((c) => (c.layers.embedding !== null) === b), `embedding ${b}`);
  }
  for (const head of Object.keys(manifest.heads)) assert.ok(pt.some((c) => c.layers.head === head), head);
  for (let opset = 9; opset <= 17; opset++) assert.ok(pt.some((c) => c.opset === opset), `opset ${opset}`);
  for (const c of manifest.cases) {
    assert.equal(typeof c.pipeline, 'boolean', c.name);
    assert.ok(c.layers.hiddenSize > 0 && c.layers.inputSize > 0 && c.layers.numLayers > 0, c.name);
    if (c.layers.embedding) assert.equal(c.layers.inputSize, c.layers.embedding.dim, c.name);
  }
});

for (const name of folders) {
  test(`${name}: recur and onnxruntime agree with the exporter and with each other`, async () => {
    const dir = join(ROOT, name);
    const bytes = readFileSync(join(dir, 'model.onnx'));
    const model = loadOnnx(bytes);
    const session = await ort.InferenceSession.create(bytes);
    const sets = readdirSync(dir).filter((f) => f.startsWith('test_data_set_')).sort();
    assert.ok(sets.length >= 1);
    for (const set of sets) {
      const sdir = join(dir, set);
      const ins = numbered(sdir, 'input').map(readPb);
      const expected = numbered(sdir, 'output').map(readPb);
      assert.equal(ins.length, model.inputs.length, `${set}: inputs`);
      assert.equal(expected.length, model.outputs.length, `${set}: outputs`);
      const mine = model.run(Object.fromEntries(model.inputs.map((info, i) => [info.name, { shape: ins[i].shape, data: ins[i].data } as OnnxInput])));
      const theirs = await session.run(Object.fromEntries(session.inputNames.map((n, i) => [n, ortTensor(ins[i])])));
      model.outputs.forEach((info, k) => {
        const e = expected[k];
        const m = mine[info.name];
        const t = theirs[session.outputNames[k]];
        const tData = Array.from(t.data as ArrayLike<number>, Number);
        assert.deepEqual(m.shape, e.shape, `${set} ${info.name}: recur's shape`);
        assert.deepEqual([...t.dims], e.shape, `${set} ${info.name}: onnxruntime's shape`);
        const me = worst(m.data, e.data), te = worst(tData, e.data), mt = worst(m.data, tData);
        assert.ok(me <= TOL, `${set} ${info.name}: recur vs expected ${me}`);
        assert.ok(te <= TOL, `${set} ${info.name}: onnxruntime vs expected ${te}`);
        assert.ok(mt <= TOL, `${set} ${info.name}: recur vs onnxruntime ${mt}`);
      });
    }
    // Shape arithmetic runs once per input shape: repeating a run executes no shape-only node.
    const again = numbered(join(dir, sets[0]), 'input').map(readPb);
    const feed = Object.fromEntries(model.inputs.map((info, i) => [info.name, { shape: again[i].shape, data: again[i].data } as OnnxInput]));
    model.run(feed);
    const { evaluations } = model.shapeArithmetic;
    model.run(feed);
    assert.equal(model.shapeArithmetic.evaluations, evaluations, 'a repeated run re-evaluated shape arithmetic');
    if (model.shapeArithmetic.nodes > 0) assert.ok(model.shapeArithmetic.reuses >= model.shapeArithmetic.nodes);
    // And as `recur onnx test` runs it, on both recurrent paths.
    for (const recurrentPath of ['auto', 'general'] as const) {
      const r = runTestCase(dir, { rtol: TOL, atol: TOL }, { recurrentPath });
      assert.ok(r.pass, `${recurrentPath}: ${JSON.stringify(r)}`);
    }
  });
}

test('recur onnx test (the built CLI) passes corpus cases, including the issue\'s Embedding → LSTM → Linear', () => {
  const bin = join(REPO, 'bin', 'recur.mjs');
  assert.ok(existsSync(join(REPO, 'dist', 'onnx', 'ops.js')), 'run npm run build first');
  const picks = [
    folders.find((f) => f.startsWith('pt_issue_embedding_lstm_linear_op9'))!,
    folders.find((f) => f.startsWith('keras_lstm_masking_where'))!,
    folders.find((f) => f.startsWith('pt_gru_static_shapes'))!,
  ];
  for (const c of picks) {
    assert.ok(c, 'a picked case is missing from the corpus');
    const r = spawnSync(process.execPath, [bin, 'onnx', 'test', join(ROOT, c)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`PASS ${c}`));
    assert.match(r.stdout, /1 passed, 0 failed/);
  }
});
