/**
 * ONNX export, checked against a real runtime: every exported model runs in onnxruntime-node and
 * matches recur's own outputs (computed by the modules themselves) to 1e-5, then loads back into
 * recur's interpreter and matches again. Covers the char LM (Embedding → LSTM → Linear, with
 * streaming state), sequence classifiers (final state or mean over time → Linear → Softmax, with
 * lengths), and every recurrent kind × direction × layers × lengths × state × batch-first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Embedding, GRU, LSTM, Linear, Module, RNN, Rng, Dropout, Tensor, tensor, Sequential, Lambda, type DType } from '../src/index.ts';
import { relu, sigmoid, tanh } from '../src/autograd/ops/elementwise.ts';
import { noGrad } from '../src/autograd/tape.ts';
import { RNNClassifier } from '../src/models/classifier.ts';
import { MLPClassifier } from '../src/models/feedforward.ts';
import { ConditionalCharRNN } from '../src/models/namegen.ts';
import { RNNForecaster } from '../src/models/forecaster.ts';
import { Seq2Seq } from '../src/models/seq2seq.ts';
import { CharLM } from '../src/models/charlm.ts';
import { exportOnnx, buildOnnxModel, referenceForward, charLMExportSpec, classifierExportSpec, feedForwardExportSpec, sequentialExportSpec, exportNameGen, exportForecaster, exportSeq2SeqEncoder, exportSeq2SeqDecoderStep, type ExportSpec } from '../src/onnx/export.ts';
import { loadOnnx, type OnnxInput } from '../src/onnx/model.ts';
import { OnnxError, decodeModelProto } from '../src/onnx/proto.ts';
import type { OnnxTensor } from '../src/onnx/tensor.ts';

const TOL = 1e-5;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function ortFeed(dtype: string, v: OnnxInput): ort.Tensor {
  const shape = [...v.shape];
  switch (dtype) {
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(Array.from(v.data, (x) => BigInt(x))), shape);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(v.data), shape);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(v.data), shape);
    default: return new ort.Tensor('float32', Float32Array.from(v.data), shape);
  }
}

/** Export, run in onnxruntime and in recur's interpreter, compare both with the reference. */
async function checkExport(module: Module, spec: ExportSpec, inputs: Record<string, OnnxInput>, what: string): Promise<Record<string, OnnxTensor>> {
  const bytes = exportOnnx(module, spec);
  const ref = referenceForward(module, spec, inputs);
  const model = loadOnnx(bytes);
  assert.deepEqual(model.inputs.map((i) => i.name).sort(), Object.keys(inputs).sort(), `${what}: graph inputs`);
  assert.deepEqual(model.outputs.map((o) => o.name).sort(), Object.keys(ref).sort(), `${what}: graph outputs`);

  const session = await ort.InferenceSession.create(bytes);
  const feeds: Record<string, ort.Tensor> = {};
  for (const info of model.inputs) feeds[info.name] = ortFeed(info.dtype, inputs[info.name]);
  const got = await session.run(feeds);
  const mine = model.run(inputs);
  for (const [name, r] of Object.entries(ref)) {
    const o = got[name];
    assert.ok(o, `${what}: onnxruntime produced no '${name}'`);
    assert.deepEqual([...o.dims], r.shape, `${what}: '${name}' shape in onnxruntime`);
    const dOrt = maxDiff(o.data as Float32Array, r.data);
    assert.ok(dOrt <= TOL, `${what}: '${name}' differs from recur by ${dOrt} in onnxruntime`);
    assert.deepEqual(mine[name].shape, r.shape, `${what}: '${name}' shape after import`);
    const dMine = maxDiff(mine[name].data, r.data);
    assert.ok(dMine <= TOL, `${what}: '${name}' differs by ${dMine} after importing into recur`);
  }
  return ref;
}

function ids(n: number, V: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Math.floor(rng.random() * V));
}

function floats(n: number, seed: number, scale = 1): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => (rng.random() * 2 - 1) * scale);
}

for (const numLayers of [1, 2]) {
  test(`CharLM (${numLayers} layer${numLayers > 1 ? 's' : ''}) exports with streaming state; onnxruntime and re-import match recur`, async () => {
    const m = new CharLM({ vocabSize: 13, embeddingDim: 6, hiddenSize: 8, numLayers, rng: new Rng(3) });
    const T = 5, B = 3, L = numLayers, H = 8;
    const inputs = {
      input: { shape: [T, B], data: ids(T * B, 13, 1) },
      h0: { shape: [L, B, H], data: floats(L * B * H, 2) },
      c0: { shape: [L, B, H], data: floats(L * B * H, 3) },
    };
    const ref = await checkExport(m, charLMExportSpec(), inputs, 'charlm');
    // The reference is CharLM.forward itself.
    const f = m.forward(inputs.input.data, T, B, { h: tensorOf(inputs.h0), c: tensorOf(inputs.c0) });
    assert.ok(maxDiff(f.logits.toArray(), ref.output.data) < 1e-6);
    assert.ok(maxDiff(f.h.toArray(), ref.hn.data) < 1e-6);
    assert.ok(maxDiff(f.c!.toArray(), ref.cn.data) < 1e-6);
  });
}

function tensorOf(v: { shape: number[]; data: number[] }): Tensor {
  return tensor(v.data, v.shape);
}

test('CharLM exports batch-first with a softmax and no state', async () => {
  const m = new CharLM({ vocabSize: 9, embeddingDim: 4, hiddenSize: 5, numLayers: 1, rng: new Rng(4) });
  const spec = { ...charLMExportSpec({ state: false, softmax: true }), batchFirst: true };
  const B = 2, T = 6;
  const ref = await checkExport(m, spec, { input: { shape: [B, T], data: ids(B * T, 9, 5) } }, 'charlm batch-first');
  assert.deepEqual(ref.output.shape, [B, T, 9]);
  for (let r = 0; r < B * T; r++) {
    let s = 0;
    for (let v = 0; v < 9; v++) s += ref.output.data[r * 9 + v];
    assert.ok(Math.abs(s - 1) < 1e-5);
  }
});

class Classifier extends Module {
  readonly embedding: Embedding;
  readonly rnn: RNN | LSTM | GRU;
  readonly drop: Dropout;
  readonly fc: Linear;
  /** `pooled`: features per direction and unit after the pooling (2 for meanMaxOverTime). */
  constructor(kind: 'rnn' | 'lstm' | 'gru', bidirectional: boolean, numLayers: number, seed: number, pooled = 1) {
    super();
    const rng = new Rng(seed);
    this.embedding = this.registerModule('embedding', new Embedding(20, 6, { paddingIdx: 0, rng }));
    const o = { inputSize: 6, hiddenSize: 5, numLayers, bidirectional, dropout: 0.3, rng };
    this.rnn = this.registerModule('rnn', kind === 'lstm' ? new LSTM(o) : kind === 'gru' ? new GRU(o) : new RNN(o));
    this.drop = this.registerModule('drop', new Dropout(0.5, rng));
    this.fc = this.registerModule('fc', new Linear(pooled * 5 * (bidirectional ? 2 : 1), 3, { rng }));
  }
}

for (const kind of ['lstm', 'gru', 'rnn'] as const) {
  for (const pool of ['finalState', 'meanOverTime', 'maxOverTime', 'meanMaxOverTime'] as const) {
    test(`sequence classifier (embedding → bidirectional ${kind} ×2 → ${pool} → linear → softmax) with lengths`, async () => {
      // lengths 3 and 1 of 7 leave padded steps, whose zeros a maximum must not take
      const m = new Classifier(kind, true, 2, 11, pool === 'meanMaxOverTime' ? 2 : 1);
      m.train(); // export must not depend on the training flag (dropout is not exported)
      const spec: ExportSpec = { steps: ['embedding', 'rnn', { op: pool }, 'fc', { op: 'softmax' }], lengths: true };
      const T = 7, B = 4;
      const inputs = { input: { shape: [T, B], data: ids(T * B, 20, 8) }, lengths: { shape: [B], data: [7, 3, 1, 5] } };
      const ref = await checkExport(m, spec, inputs, `classifier ${kind} ${pool}`);
      assert.deepEqual(ref.output.shape, [B, 3]);
      assert.equal(m.training, true);
    });
  }
}

// Features in (no embedding), every recurrent kind, direction, depth and option.
const MODES = [
  { name: 'RNN tanh', make: (o: object) => new RNN({ ...o } as never) },
  { name: 'RNN relu', make: (o: object) => new RNN({ ...o, nonlinearity: 'relu' } as never) },
  { name: 'GRU', make: (o: object) => new GRU({ ...o } as never) },
  { name: 'LSTM', make: (o: object) => new LSTM({ ...o } as never) },
];

class Tagger extends Module {
  readonly rnn: RNN | LSTM | GRU;
  readonly out: Linear;
  constructor(make: (o: object) => RNN | LSTM | GRU, o: { bidirectional: boolean; numLayers: number; batchFirst: boolean; dtype: DType }, seed: number) {
    super();
    const rng = new Rng(seed);
    this.rnn = this.registerModule('rnn', make({ inputSize: 4, hiddenSize: 6, numLayers: o.numLayers, bidirectional: o.bidirectional, batchFirst: o.batchFirst, dtype: o.dtype, rng }));
    this.out = this.registerModule('out', new Linear(6 * (o.bidirectional ? 2 : 1), 5, { dtype: o.dtype, rng }));
  }
}

let seed = 100;
for (const mode of MODES) {
  for (const bidirectional of [false, true]) {
    for (const variant of ['lengths+state', 'batchFirst'] as const) {
      const numLayers = variant === 'batchFirst' ? 1 : 2;
      const s = seed++;
      test(`${mode.name} ${bidirectional ? 'bidirectional' : 'forward'} ×${numLayers}, ${variant}: tagger exports and matches`, async () => {
        const batchFirst = variant === 'batchFirst';
        const m = new Tagger(mode.make, { bidirectional, numLayers, batchFirst, dtype: 'float32' }, s);
        const spec: ExportSpec = { steps: ['rnn', 'out', { op: 'logSoftmax' }], lengths: !batchFirst, state: !batchFirst };
        const T = 6, B = 3, D = bidirectional ? 2 : 1, H = 6;
        const inputs: Record<string, OnnxInput> = { input: { shape: batchFirst ? [B, T, 4] : [T, B, 4], data: floats(T * B * 4, s, 2) } };
        if (!batchFirst) {
          inputs.lengths = { shape: [B], data: [6, 2, 4] };
          inputs.h0 = { shape: [numLayers * D, B, H], data: floats(numLayers * D * B * H, s + 1) };
          if (mode.name === 'LSTM') inputs.c0 = { shape: [numLayers * D, B, H], data: floats(numLayers * D * B * H, s + 2) };
        }
        const ref = await checkExport(m, spec, inputs, `${mode.name} ${variant}`);
        assert.deepEqual(ref.output.shape, batchFirst ? [B, T, 5] : [T, B, 5]);
      });
    }
  }
}

test('a bare recurrent module exports (path ""), with state outputs', async () => {
  const m = new GRU({ inputSize: 3, hiddenSize: 4, numLayers: 3, bidirectional: true, rng: new Rng(9) });
  const inputs = { input: { shape: [5, 2, 3], data: floats(30, 9) }, h0: { shape: [6, 2, 4], data: floats(48, 10) } };
  const ref = await checkExport(m, { steps: [''], state: true }, inputs, 'bare GRU');
  assert.deepEqual(ref.hn.shape, [6, 2, 4]);
});

test('a float64 model exports as float32 by default (runs in onnxruntime) or as double on request', async () => {
  const m = new Tagger(MODES[3].make, { bidirectional: true, numLayers: 1, batchFirst: false, dtype: 'float64' }, 5);
  const inputs = { input: { shape: [4, 2, 4], data: floats(32, 6) } };
  await checkExport(m, { steps: ['rnn', 'out'] }, inputs, 'float64 model as float32');
  const spec: ExportSpec = { steps: ['rnn', 'out'], dtype: 'float64' };
  const model = loadOnnx(exportOnnx(m, spec));
  assert.equal(model.inputs[0].dtype, 'float64');
  const mine = model.run(inputs);
  assert.ok(mine.output.data instanceof Float64Array);
  assert.ok(maxDiff(mine.output.data, referenceForward(m, spec, inputs).output.data) < 1e-12);
});

test('exported graphs use PyTorch parameter names, symbolic B/T, metadata, and opset 14', () => {
  const m = new CharLM({ vocabSize: 7, embeddingDim: 3, hiddenSize: 4, numLayers: 2, rng: new Rng(1) });
  const proto = decodeModelProto(exportOnnx(m, { ...charLMExportSpec(), metadata: { 'recur.config': JSON.stringify(m.config) } }));
  assert.equal(proto.opset_import![0].version, 14);
  assert.equal(proto.ir_version, 7);
  const inits = proto.graph!.initializer!.map((t) => t.name);
  for (const n of ['embedding.weight', 'head.weight', 'head.bias', 'lstm.W_l0', 'lstm.R_l0', 'lstm.B_l0', 'lstm.W_l1']) assert.ok(inits.includes(n), `initializer ${n}`);
  const input = proto.graph!.input!.find((i) => i.name === 'input')!;
  assert.deepEqual(input.type!.tensor_type!.shape!.dim!.map((d) => d.dim_param ?? d.dim_value), ['T', 'B']);
  assert.deepEqual(proto.metadata_props, [{ key: 'recur.config', value: JSON.stringify(m.config) }]);
  const ops = proto.graph!.node!.map((n) => n.op_type);
  assert.equal(ops.filter((o) => o === 'LSTM').length, 2);
  assert.ok(ops.includes('Gather'));
});

test('LSTM gates are reordered i,f,g,o → i,o,f,c and GRU r,z,n → z,r,h with linear_before_reset = 1', () => {
  const H = 2;
  const lstm = new LSTM({ inputSize: 1, hiddenSize: H, rng: new Rng(0) });
  const gru = new GRU({ inputSize: 1, hiddenSize: H, rng: new Rng(0) });
  // Mark each recur gate block with its index.
  for (const [m, G] of [[lstm, 4], [gru, 3]] as const) {
    const p = m.cells[0][0];
    p.weightIh.backend.write(p.weightIh.storage, Array.from({ length: G * H }, (_, r) => Math.floor(r / H)));
  }
  const W = (m: Module, spec: ExportSpec): number[] => {
    const node = buildOnnxModel(m, spec).graph!.initializer!.find((t) => t.name === 'W_l0')!;
    const raw = node.raw_data!;
    return Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
  };
  assert.deepEqual(W(lstm, { steps: [''] }), [0, 0, 3, 3, 1, 1, 2, 2]);
  assert.deepEqual(W(gru, { steps: [''] }), [1, 1, 0, 0, 2, 2]);
  const gnode = buildOnnxModel(gru, { steps: [''] }).graph!.node!.find((n) => n.op_type === 'GRU')!;
  assert.ok(gnode.attribute!.some((a) => a.name === 'linear_before_reset' && a.i === 1));
});

test('export rejects specs it cannot express, naming the problem', () => {
  const m = new Classifier('gru', false, 1, 1);
  const bad = (spec: unknown, re: RegExp): void => assert.throws(() => exportOnnx(m, spec as ExportSpec), (e: unknown) => e instanceof OnnxError && re.test((e as Error).message));
  bad({ steps: ['nope'] }, /no sub-module 'nope'/);
  bad({ steps: [new (class Pool extends Module {})()] }, /is a Pool; exportable modules are/);
  bad({ steps: ['embedding', 'rnn', new Lambda((x) => x, 'gelu')] }, /Lambda labelled 'gelu'; exportable modules are/);
  bad({ steps: ['rnn', 'embedding'] }, /Embedding must be the first step/);
  bad({ steps: ['embedding', 'fc'] }, /expects features of size 5, but the previous step produces 6/);
  bad({ steps: ['embedding', { op: 'finalState' }] }, /finalState must directly follow a recurrent layer/);
  bad({ steps: ['embedding', 'rnn', { op: 'pool' }] }, /unknown op "pool"/);
  bad({ steps: ['embedding', 'rnn'], color: 'red' }, /unknown spec option 'color'/);
  bad({ steps: [] }, /non-empty array/);
  bad({ steps: ['embedding'], lengths: true }, /lengths needs a recurrent layer/);
  bad({ steps: ['embedding', 'rnn'], dtype: 'float16' }, /dtype must be 'float32' or 'float64'/);
  assert.throws(() => exportOnnx(new Module(), { steps: ['x'] }), OnnxError);
});

// ---- the task models -------------------------------------------------------------------------------

for (const [cell, pooling, bidirectional] of [['lstm', 'last', true], ['gru', 'mean', false], ['rnn', 'last', false]] as const) {
  test(`RNNClassifier (${cell}, ${pooling} pooling${bidirectional ? ', bidirectional' : ''}) exports with lengths; equals the model's own forward`, async () => {
    const m = new RNNClassifier({ vocabSize: 11, numClasses: 4, embeddingDim: 5, hiddenSize: 6, numLayers: 2, cell, bidirectional, pooling, dropout: 0.3, padId: 0, rng: new Rng(21) });
    const T = 6, B = 3;
    const lengths = [6, 2, 4];
    const tok = ids(T * B, 11, 22).map((v, i) => (Math.floor(i / B) < lengths[i % B] ? Math.max(1, v) : 0));
    const inputs = { input: { shape: [T, B], data: tok }, lengths: { shape: [B], data: lengths } };
    const ref = await checkExport(m, classifierExportSpec(m), inputs, `classifier ${cell}`);
    m.eval();
    const own = noGrad(() => m.forward(tok, lengths, T, B));
    assert.ok(maxDiff(own.toArray(), ref.output.data) < 1e-6, 'the exported graph computes RNNClassifier.forward');
    const p = await checkExport(m, classifierExportSpec(m, { softmax: true }), inputs, `classifier ${cell} softmax`);
    for (let b = 0; b < B; b++) assert.ok(Math.abs(Array.from(p.output.data.slice(b * 4, b * 4 + 4)).reduce((a, v) => a + v, 0) - 1) < 1e-5);
  });
}

test('the feed-forward baseline (MLPClassifier) exports: features [B, F] → logits', async () => {
  const m = new MLPClassifier(7, 9, 3, 0.2, new Rng(5));
  const inputs = { input: { shape: [4, 7], data: floats(28, 6) } };
  const ref = await checkExport(m, feedForwardExportSpec(m), inputs, 'mlp');
  m.eval();
  const own = noGrad(() => m.forward(tensor(inputs.input.data, [4, 7])));
  assert.ok(maxDiff(own.toArray(), ref.output.data) < 1e-6);
  assert.deepEqual(ref.output.shape, [4, 3]);
});

test('a Sequential stack (Linear, activations, Dropout) exports, and a bare LSTM / RNN stack with state', async () => {
  const rng = new Rng(8);
  const seq = new Sequential(new Linear(5, 8, { rng }), new Lambda(relu, 'relu'), new Dropout(0.5, rng), new Linear(8, 6, { rng }), new Lambda(tanh, 'tanh'), new Linear(6, 2, { rng }), new Lambda(sigmoid, 'sigmoid'));
  const inputs = { input: { shape: [3, 5], data: floats(15, 8) } };
  const ref = await checkExport(seq, sequentialExportSpec(seq), inputs, 'sequential');
  seq.eval();
  assert.ok(maxDiff(noGrad(() => seq.forward(tensor(inputs.input.data, [3, 5]))).toArray(), ref.output.data) < 1e-6);
  assert.throws(() => exportOnnx(new Sequential(new Linear(2, 2), new Lambda(relu, 'gelu')), sequentialExportSpec(new Sequential(new Linear(2, 2), new Lambda(relu, 'gelu')))), /Lambda labelled 'gelu'/);
  for (const m of [new LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, rng }), new RNN({ inputSize: 3, hiddenSize: 4, numLayers: 2, nonlinearity: 'relu', bidirectional: true, rng })]) {
    const D = m.numDirections;
    const st = { input: { shape: [5, 2, 3], data: floats(30, 12) }, h0: { shape: [2 * D, 2, 4], data: floats(16 * D, 13) }, ...(m instanceof LSTM ? { c0: { shape: [2, 2, 4], data: floats(16, 14) } } : {}) };
    await checkExport(m, { steps: [''], state: true }, st, `bare ${m.mode}`);
  }
});

/** Run exported bytes in onnxruntime and in recur's interpreter; both must match `want` (by output name). */
async function checkBytes(bytes: Uint8Array, inputs: Record<string, OnnxInput>, want: Record<string, ArrayLike<number>>, what: string): Promise<void> {
  const model = loadOnnx(bytes);
  const session = await ort.InferenceSession.create(bytes);
  const feeds: Record<string, ort.Tensor> = {};
  for (const info of model.inputs) feeds[info.name] = ortFeed(info.dtype, inputs[info.name]);
  const got = await session.run(feeds);
  const mine = model.run(inputs);
  for (const [name, w] of Object.entries(want)) {
    const dOrt = maxDiff(got[name].data as Float32Array, w);
    assert.ok(dOrt <= TOL, `${what}: '${name}' differs by ${dOrt} in onnxruntime`);
    const dMine = maxDiff(mine[name].data, w);
    assert.ok(dMine <= TOL, `${what}: '${name}' differs by ${dMine} in recur's interpreter`);
  }
}

for (const cell of ['lstm', 'gru'] as const) {
  test(`the name generator (${cell}) exports with its condition broadcast over time and streaming state`, async () => {
    const m = new ConditionalCharRNN({ vocabSize: 12, numConditions: 3, embeddingDim: 5, conditionDim: 2, hiddenSize: 6, numLayers: 2, cell, dropout: 0.1, padId: 0, rng: new Rng(31) });
    m.eval();
    const T = 4, B = 3, L = 2, H = 6;
    const tok = ids(T * B, 12, 32), conds = [2, 0, 1];
    const h0 = floats(L * B * H, 33), c0 = floats(L * B * H, 34);
    const own = noGrad(() => m.forward(tok, conds, T, B, null, { h: tensor(h0, [L, B, H]), c: cell === 'lstm' ? tensor(c0, [L, B, H]) : null }));
    const inputs: Record<string, OnnxInput> = { input: { shape: [T, B], data: tok }, condition: { shape: [B], data: conds }, h0: { shape: [L, B, H], data: h0 }, ...(cell === 'lstm' ? { c0: { shape: [L, B, H], data: c0 } } : {}) };
    await checkBytes(exportNameGen(m), inputs, { logits: own.logits.toArray(), hn: own.h.toArray(), ...(cell === 'lstm' ? { cn: own.c!.toArray() } : {}) }, `namegen ${cell}`);
    // without state: from zeros
    const zero = noGrad(() => m.forward(tok, conds, T, B));
    await checkBytes(exportNameGen(m, { state: false }), { input: inputs.input, condition: inputs.condition }, { logits: zero.logits.toArray() }, `namegen ${cell} stateless`);
  });
}

for (const [residual, inputs] of [[true, 'change'], [false, 'change'], [true, 'level+change'], [false, 'level+change']] as const) {
  test(`the forecaster (residual ${residual}, inputs ${inputs}) exports: scaled change (and level) in, next step out`, async () => {
    const F = 3;
    const m = new RNNForecaster({ features: F, hiddenSize: 5, numLayers: 2, cell: 'gru', dropout: 0, residual, deltaScale: [0.5, 2, 1.25], inputs, rng: new Rng(41) });
    m.eval();
    for (const T of [6, 1]) {
      const B = 2;
      const x = floats(T * B * F, 42 + T);
      const own = noGrad(() => m.forward(tensor(x, [T, B, F])));
      await checkBytes(exportForecaster(m), { input: { shape: [T, B, F], data: x } }, { output: own.toArray() }, `forecaster T=${T}`);
    }
  });
}

for (const [cell, attention] of [['lstm', 'additive'], ['gru', 'general'], ['lstm', 'dot']] as const) {
  test(`seq2seq (${cell}, ${attention} attention): the encoder and one decoder step export and equal encode / decodeStep`, async () => {
    const m = new Seq2Seq({ srcVocabSize: 10, tgtVocabSize: 9, embeddingDim: 4, encoderHidden: 3, encoderLayers: 2, decoderHidden: attention === 'dot' ? 6 : 5, cell, attention, attnDim: 4, dropout: 0.2 }, { rng: new Rng(51) });
    m.eval();
    const S = 5, B = 3;
    const lengths = Int32Array.from([5, 2, 3]);
    const src = Int32Array.from(ids(S * B, 10, 52).map((v, i) => (Math.floor(i / B) < lengths[i % B] ? Math.max(1, v) : 0)));
    const st = noGrad(() => m.encode(src, S, B, lengths));
    const maskOf = (t: Tensor | null): number[] => (t ? Array.from(t.toArray()) : new Array<number>(B * S).fill(0));
    const enc = { keys: st.memory.keys.toArray(), proj: st.memory.proj.toArray(), mask: maskOf(st.memory.mask), h: st.h.toArray(), ...(st.c ? { c: st.c.toArray() } : {}) };
    await checkBytes(exportSeq2SeqEncoder(m), { src: { shape: [S, B], data: src }, lengths: { shape: [B], data: lengths } }, enc, `seq2seq encoder ${cell}/${attention}`);
    // one step from the encoder's state, with a previous token per row
    const tokens = [1, 4, 7];
    const step = noGrad(() => {
      const emb = m.tgtEmbedding.forward(tokens, [B]);
      const { weights } = m.attention.attend(st.h, st.memory);
      const r = m.decodeStep(emb, st);
      return { logits: m.out.forward(r.features).toArray(), h_out: r.state.h.toArray(), ...(r.state.c ? { c_out: r.state.c.toArray() } : {}), weights: weights.toArray() };
    });
    const Hd = m.config.decoderHidden;
    const stepIn: Record<string, OnnxInput> = {
      token: { shape: [B], data: tokens },
      h: { shape: [B, Hd], data: enc.h },
      ...(cell === 'lstm' ? { c: { shape: [B, Hd], data: enc.c! } } : {}),
      keys: { shape: st.memory.keys.shape, data: enc.keys },
      proj: { shape: st.memory.proj.shape, data: enc.proj },
      mask: { shape: [B, S], data: enc.mask },
    };
    await checkBytes(exportSeq2SeqDecoderStep(m), stepIn, step, `seq2seq decoder step ${cell}/${attention}`);
  });
}
