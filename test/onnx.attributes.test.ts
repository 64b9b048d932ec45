/**
 * Every attribute of ONNX RNN, GRU and LSTM, checked against onnxruntime: single-node models with
 * random weights, run in onnxruntime-node and in recur's interpreter — both with the default
 * dispatch (recur's fused layers where the node has PyTorch semantics) and with the general
 * implementation forced — must agree. layout = 1, which onnxruntime's CPU kernels do not
 * implement, is checked against the same node in layout 0 with transposed inputs. Bad attribute
 * values are errors that name the attribute and the node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Rng } from '../src/index.ts';
import { buildModel, type AttrValue } from '../src/onnx/builder.ts';
import { loadOnnx, type OnnxInput } from '../src/onnx/model.ts';
import { OnnxError } from '../src/onnx/proto.ts';

type Op = 'RNN' | 'GRU' | 'LSTM';
const GATES: Record<Op, number> = { RNN: 1, GRU: 3, LSTM: 4 };

interface CaseOpts {
  D?: number;
  lens?: number[];
  h0?: boolean;
  c0?: boolean;
  P?: boolean;
  B?: boolean;
  /** Which outputs to request (default all). */
  outputs?: string[];
  layout?: 0 | 1;
  opset?: number;
}

interface Feed { shape: number[]; data: Float32Array | Int32Array }

function makeCase(op: Op, attrs: Record<string, AttrValue>, o: CaseOpts, seed: number): { bytes: Uint8Array; feeds: Record<string, Feed>; outs: string[] } {
  const rng = new Rng(seed);
  const rand = (n: number, s = 1): Float32Array => Float32Array.from({ length: n }, () => (rng.random() * 2 - 1) * s);
  const G = GATES[op];
  const D = o.D ?? 1, T = 5, N = 3, I = 4, H = 3;
  const layout = o.layout ?? 0;
  const feeds: Record<string, Feed> = {
    X: { shape: layout ? [N, T, I] : [T, N, I], data: rand(T * N * I, 2) },
    W: { shape: [D, G * H, I], data: rand(D * G * H * I) },
    R: { shape: [D, G * H, H], data: rand(D * G * H * H) },
  };
  if (o.B !== false) feeds.B = { shape: [D, 2 * G * H], data: rand(D * 2 * G * H) };
  if (o.lens) feeds.sequence_lens = { shape: [N], data: Int32Array.from(o.lens) };
  const state = layout ? [N, D, H] : [D, N, H];
  if (o.h0) feeds.initial_h = { shape: state, data: rand(D * N * H) };
  if (o.c0) feeds.initial_c = { shape: state, data: rand(D * N * H) };
  if (o.P) feeds.P = { shape: [D, 3 * H], data: rand(D * 3 * H) };
  const names = ['X', 'W', 'R', 'B', 'sequence_lens', 'initial_h', 'initial_c', 'P'].slice(0, op === 'LSTM' ? 8 : 6);
  const ins = names.map((n) => (feeds[n] ? n : ''));
  while (ins[ins.length - 1] === '') ins.pop();
  const all = op === 'LSTM' ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h'];
  const want = o.outputs ?? all;
  const nodeOuts = all.map((n) => (want.includes(n) ? n : ''));
  while (nodeOuts[nodeOuts.length - 1] === '') nodeOuts.pop();
  const bytes = buildModel({
    opset: o.opset ?? 14,
    inputs: Object.entries(feeds).map(([name, v]) => ({ name, dtype: v.data instanceof Int32Array ? 'int32' : 'float32', shape: v.shape })),
    outputs: want.map((name) => ({ name, dtype: 'float32' })),
    nodes: [{ op, name: `${op.toLowerCase()}_node`, inputs: ins, outputs: nodeOuts, attrs: { hidden_size: H, ...(layout ? { layout } : {}), ...attrs } }],
  });
  return { bytes, feeds, outs: want };
}

function asInputs(feeds: Record<string, Feed>): Record<string, OnnxInput> {
  return Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
}

/** Largest |a − b| / (1 + |b|). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}

let seed = 1;
function againstOrt(op: Op, attrs: Record<string, AttrValue>, o: CaseOpts = {}): void {
  const s = seed++;
  test(`${op} ${JSON.stringify(attrs)} ${JSON.stringify(o)} matches onnxruntime`, async () => {
    const { bytes, feeds, outs } = makeCase(op, attrs, o, s);
    const session = await ort.InferenceSession.create(bytes);
    const ref = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor(v.data instanceof Int32Array ? 'int32' : 'float32', v.data, v.shape)])));
    for (const recurrentPath of ['auto', 'general'] as const) {
      const got = loadOnnx(bytes, { recurrentPath }).run(asInputs(feeds));
      assert.deepEqual(Object.keys(got).sort(), [...outs].sort());
      for (const k of outs) {
        assert.deepEqual(got[k].shape, [...ref[k].dims], `${k} shape (${recurrentPath})`);
        const d = relDiff(got[k].data, ref[k].data as Float32Array);
        assert.ok(d < 1e-5, `${k} differs from onnxruntime by ${d} (${recurrentPath})`);
      }
    }
  });
}

// Every activation (RNN has one slot, so each is exercised alone), with given and default α/β.
const ACTS: [string, number[], number[]][] = [
  ['Relu', [], []], ['Tanh', [], []], ['Sigmoid', [], []], ['Affine', [0.7], [0.2]], ['LeakyRelu', [0.3], []], ['LeakyRelu', [], []],
  ['ThresholdedRelu', [0.1], []], ['ScaledTanh', [1.3], [0.6]], ['HardSigmoid', [0.3], [0.4]], ['HardSigmoid', [], []],
  ['Elu', [0.8], []], ['Elu', [], []], ['Softsign', [], []], ['Softplus', [], []],
];
for (const [a, al, be] of ACTS) {
  const attrs: Record<string, AttrValue> = { activations: [a] };
  if (al.length) attrs.activation_alpha = { floats: al };
  if (be.length) attrs.activation_beta = { floats: be };
  againstOrt('RNN', attrs, { h0: true });
}
againstOrt('RNN', {}, {});
againstOrt('RNN', {}, { B: false });
againstOrt('RNN', { direction: 'reverse' }, { lens: [5, 2, 3], h0: true });
againstOrt('RNN', { direction: 'bidirectional', activations: ['Relu', 'Tanh'] }, { D: 2, lens: [5, 2, 3], h0: true });
againstOrt('RNN', { direction: 'bidirectional', activations: ['Affine', 'ScaledTanh'], activation_alpha: { floats: [0.5, 0.9] }, activation_beta: { floats: [0.1, 1.1] } }, { D: 2 });
againstOrt('RNN', { clip: { float: 0.5 } }, { h0: true });
againstOrt('RNN', {}, { outputs: ['Y'] });
againstOrt('RNN', {}, { outputs: ['Y_h'], lens: [1, 5, 4] });

againstOrt('GRU', {}, { lens: [5, 2, 3], h0: true });
againstOrt('GRU', { linear_before_reset: 1 }, { lens: [5, 2, 3], h0: true });
againstOrt('GRU', { linear_before_reset: 1, direction: 'bidirectional' }, { D: 2, lens: [5, 2, 3], h0: true });
againstOrt('GRU', { direction: 'bidirectional' }, { D: 2, lens: [2, 5, 3] });
againstOrt('GRU', { linear_before_reset: 1, direction: 'reverse' }, { lens: [5, 2, 3], h0: true });
againstOrt('GRU', { direction: 'reverse' }, { lens: [4, 2, 3] });
againstOrt('GRU', { clip: { float: 0.3 }, linear_before_reset: 1 }, {});
againstOrt('GRU', { clip: { float: 0.3 } }, { h0: true });
againstOrt('GRU', { activations: ['HardSigmoid', 'Softsign'], activation_alpha: { floats: [0.3] }, activation_beta: { floats: [0.45] } }, {});
againstOrt('GRU', { direction: 'bidirectional', activations: ['Sigmoid', 'Tanh', 'LeakyRelu', 'Elu'], activation_alpha: { floats: [0.2, 0.5] } }, { D: 2 });
againstOrt('GRU', { linear_before_reset: 1 }, { B: false, outputs: ['Y_h'] });

againstOrt('LSTM', {}, { lens: [5, 2, 3], h0: true, c0: true });
againstOrt('LSTM', { direction: 'bidirectional' }, { D: 2, lens: [5, 2, 3], h0: true, c0: true });
againstOrt('LSTM', { direction: 'reverse' }, { lens: [5, 2, 3], h0: true, c0: true });
againstOrt('LSTM', {}, { P: true, h0: true, c0: true });
againstOrt('LSTM', { direction: 'bidirectional' }, { D: 2, P: true, lens: [3, 5, 1] });
againstOrt('LSTM', { input_forget: 1 }, { h0: true, c0: true });
againstOrt('LSTM', { clip: { float: 0.4 } }, { h0: true, c0: true });
againstOrt('LSTM', { activations: ['HardSigmoid', 'ScaledTanh', 'Softplus'], activation_alpha: { floats: [0.3, 1.2] }, activation_beta: { floats: [0.4, 0.8] } }, { h0: true, c0: true, P: true });
againstOrt('LSTM', {
  direction: 'bidirectional', activations: ['Sigmoid', 'Tanh', 'Tanh', 'Sigmoid', 'Relu', 'Affine'],
  activation_alpha: { floats: [0.5] }, activation_beta: { floats: [0.1] }, input_forget: 1, clip: { float: 1.5 },
}, { D: 2, lens: [4, 5, 1], h0: true, c0: true, P: true });
againstOrt('LSTM', {}, { B: false });
againstOrt('LSTM', {}, { outputs: ['Y_c'] });
againstOrt('LSTM', {}, { outputs: ['Y', 'Y_c'], lens: [2, 3, 5] });

// The opset-7 forms of the operators (no layout attribute).
againstOrt('RNN', {}, { opset: 7, lens: [5, 3, 4], h0: true });
againstOrt('GRU', { direction: 'bidirectional' }, { opset: 7, D: 2, h0: true });
againstOrt('LSTM', { direction: 'bidirectional' }, { opset: 7, D: 2, P: true, lens: [1, 5, 2] });

// layout = 1 (batch-major) against the same node in layout 0 with transposed tensors.
function transpose01(d: ArrayLike<number>, a: number, b: number, c: number): Float64Array {
  const out = new Float64Array(a * b * c);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let k = 0; k < c; k++) out[(j * a + i) * c + k] = d[(i * b + j) * c + k];
  return out;
}

for (const [op, attrs] of [['RNN', {}], ['GRU', { linear_before_reset: 1 }], ['GRU', {}], ['LSTM', {}], ['LSTM', { input_forget: 1 }]] as [Op, Record<string, AttrValue>][]) {
  for (const D of [1, 2]) {
    test(`${op} ${JSON.stringify(attrs)} layout = 1 equals layout = 0 on transposed inputs (${D} direction${D > 1 ? 's' : ''})`, () => {
      const a = { ...attrs, ...(D === 2 ? { direction: 'bidirectional' } : {}) };
      const o: CaseOpts = { D, lens: [5, 1, 3], h0: true, c0: op === 'LSTM', P: op === 'LSTM' };
      const c1 = makeCase(op, a, { ...o, layout: 1 }, 77);
      const c0 = makeCase(op, a, o, 77);
      const T = 5, N = 3, I = 4, H = 3;
      // same random draws: X and states were drawn in layout-1 order; transpose them for layout 0
      const f0 = asInputs(c1.feeds);
      f0.X = { shape: [T, N, I], data: transpose01(c1.feeds.X.data, N, T, I) };
      f0.initial_h = { shape: [D, N, H], data: transpose01(c1.feeds.initial_h.data, N, D, H) };
      if (op === 'LSTM') f0.initial_c = { shape: [D, N, H], data: transpose01(c1.feeds.initial_c.data, N, D, H) };
      for (const recurrentPath of ['auto', 'general'] as const) {
        const y1 = loadOnnx(c1.bytes, { recurrentPath }).run(asInputs(c1.feeds));
        const y0 = loadOnnx(c0.bytes, { recurrentPath }).run(f0);
        assert.deepEqual(y1.Y.shape, [N, T, D, H]);
        // Y: [N, T, D, H] vs [T, D, N, H]
        for (let n = 0; n < N; n++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) for (let h = 0; h < H; h++) {
          assert.ok(Math.abs(y1.Y.data[((n * T + t) * D + d) * H + h] - y0.Y.data[((t * D + d) * N + n) * H + h]) < 1e-6);
        }
        assert.deepEqual(y1.Y_h.shape, [N, D, H]);
        assert.ok(relDiff(y1.Y_h.data, transpose01(y0.Y_h.data, D, N, H)) < 1e-6);
        if (op === 'LSTM') assert.ok(relDiff(y1.Y_c.data, transpose01(y0.Y_c.data, D, N, H)) < 1e-6);
      }
    });
  }
}

test('an all-zero P runs on the fused path and equals no P', () => {
  const a = makeCase('LSTM', {}, { h0: true, c0: true }, 5);
  const bytes = buildModel({
    inputs: [{ name: 'X', dtype: 'float32', shape: [5, 3, 4] }],
    outputs: [{ name: 'Y_h', dtype: 'float32' }],
    initializers: {
      W: { dtype: 'float32', shape: a.feeds.W.shape, data: a.feeds.W.data as Float32Array },
      R: { dtype: 'float32', shape: a.feeds.R.shape, data: a.feeds.R.data as Float32Array },
      P: { dtype: 'float32', shape: [1, 9], data: new Float32Array(9) },
    },
    nodes: [{ op: 'LSTM', inputs: ['X', 'W', 'R', '', '', '', '', 'P'], outputs: ['', 'Y_h'], attrs: { hidden_size: 3 } }],
  });
  const noP = buildModel({
    inputs: [{ name: 'X', dtype: 'float32', shape: [5, 3, 4] }],
    outputs: [{ name: 'Y_h', dtype: 'float32' }],
    initializers: {
      W: { dtype: 'float32', shape: a.feeds.W.shape, data: a.feeds.W.data as Float32Array },
      R: { dtype: 'float32', shape: a.feeds.R.shape, data: a.feeds.R.data as Float32Array },
    },
    nodes: [{ op: 'LSTM', inputs: ['X', 'W', 'R'], outputs: ['', 'Y_h'], attrs: { hidden_size: 3 } }],
  });
  const x = { X: { shape: [5, 3, 4], data: a.feeds.X.data } };
  const y1 = loadOnnx(bytes).run(x).Y_h.data, y2 = loadOnnx(noP).run(x).Y_h.data, y3 = loadOnnx(bytes, { recurrentPath: 'general' }).run(x).Y_h.data;
  assert.ok(relDiff(y1, y2) < 1e-7 && relDiff(y1, y3) < 1e-6);
});

function loadError(op: Op, attrs: Record<string, AttrValue>, o: CaseOpts, re: RegExp): void {
  test(`${op} ${JSON.stringify(attrs)} is rejected at load: ${re.source}`, () => {
    const { bytes } = makeCase(op, attrs, o, 3);
    assert.throws(() => loadOnnx(bytes), (e: unknown) => e instanceof OnnxError && re.test(e.message) && /node 'lstm_node'|node 'gru_node'|node 'rnn_node'/.test(e.message));
  });
}
loadError('RNN', { activations: ['Swish'] }, {}, /unsupported activation 'Swish'/);
loadError('RNN', { activations: ['Tanh', 'Tanh'] }, {}, /activations must list 1 functions/);
loadError('LSTM', { activations: ['Sigmoid', 'Tanh'] }, {}, /activations must list 3 functions/);
loadError('RNN', { activations: ['Affine'] }, {}, /Affine .* needs a value in activation_alpha/);
loadError('RNN', { activations: ['ScaledTanh'], activation_alpha: { floats: [1] } }, {}, /ScaledTanh .* needs a value in activation_beta/);
loadError('RNN', { activations: ['ThresholdedRelu'] }, {}, /ThresholdedRelu .* activation_alpha/);
loadError('RNN', { activations: ['Tanh'], activation_alpha: { floats: [1] } }, {}, /activation_alpha has 1 values but the activations use 0/);
loadError('RNN', { direction: 'sideways' }, {}, /unsupported direction 'sideways'/);
loadError('GRU', { layout: 2 }, {}, /layout must be 0 or 1/);
loadError('LSTM', { clip: { float: -1 } }, {}, /clip must be a positive threshold/);
loadError('RNN', { linear_before_reset: 1 }, {}, /unsupported attribute 'linear_before_reset'/);
loadError('GRU', { input_forget: 1 }, {}, /unsupported attribute 'input_forget'/);
loadError('LSTM', { output_sequence: 1 }, {}, /unsupported attribute 'output_sequence'/);
loadError('LSTM', { hidden_size: 'three' }, {}, /attribute 'hidden_size' must be INT, got STRING/);

function runError(op: Op, attrs: Record<string, AttrValue>, o: CaseOpts, tweak: (f: Record<string, OnnxInput>) => void, re: RegExp): void {
  test(`${op} with ${re.source} is a clear run-time error`, () => {
    const { bytes, feeds } = makeCase(op, attrs, o, 4);
    const inputs = asInputs(feeds);
    tweak(inputs);
    const m = loadOnnx(bytes);
    assert.throws(() => m.run(inputs), (e: unknown) => e instanceof OnnxError && re.test(e.message));
  });
}
runError('GRU', { hidden_size: 4 }, {}, () => {}, /hidden_size = 4 but R has shape \[1, 9, 3\]/);
runError('LSTM', { direction: 'bidirectional' }, {}, () => {}, /W must be \[2, 12, 4\]/);
runError('RNN', {}, { lens: [5, 9, 1] }, () => {}, /sequence_lens\[1\] = 9 must be in \[0, 5\]/);
