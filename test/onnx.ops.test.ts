/**
 * The non-recurrent operators of recur's ONNX interpreter, each checked against onnxruntime on
 * small graphs, across the opsets where the operator changed (Softmax's axis semantics at 13,
 * Squeeze/Unsqueeze/Split/ReduceSum axes moving to inputs at 13, Slice at 10), plus the protobuf
 * round trip of every supported tensor type and constant folding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Rng } from '../src/index.ts';
import { buildModel, modelProto, type NodeSpec, type ValueSpec } from '../src/onnx/builder.ts';
import { loadOnnx, type OnnxInput } from '../src/onnx/model.ts';
import { decodeTensorProto, encodeModelProto, encodeTensorProto } from '../src/onnx/proto.ts';
import { tensorFromProto, tensorToProto, type OnnxDType, type OnnxTensor } from '../src/onnx/tensor.ts';

interface In { dtype: OnnxDType; shape: number[]; data: number[] }

function ortTensor(v: In): ort.Tensor {
  switch (v.dtype) {
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(v.data.map((x) => BigInt(x))), v.shape);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(v.data), v.shape);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(v.data), v.shape);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(v.data), v.shape);
    default: return new ort.Tensor('float32', Float32Array.from(v.data), v.shape);
  }
}

function rand(n: number, seed: number): number[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => Math.round((r.random() * 4 - 2) * 1000) / 1000);
}

let counter = 0;
/** Build a graph, run it in onnxruntime and recur, compare every output. */
function same(title: string, opset: number, nodes: NodeSpec[], inputs: Record<string, In>, outputs: ValueSpec[], consts: Record<string, OnnxTensor> = {}): void {
  const k = counter++;
  test(`${title} (opset ${opset}) matches onnxruntime`, async () => {
    const bytes = buildModel({
      opset,
      irVersion: opset >= 15 ? 8 : 7,
      nodes,
      inputs: Object.entries(inputs).map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape })),
      outputs,
      initializers: consts,
      graphName: `g${k}`,
    });
    const session = await ort.InferenceSession.create(bytes);
    const ref = await session.run(Object.fromEntries(Object.entries(inputs).map(([n, v]) => [n, ortTensor(v)])));
    const mine = loadOnnx(bytes).run(Object.fromEntries(Object.entries(inputs).map(([n, v]) => [n, { shape: v.shape, data: v.data } as OnnxInput])));
    for (const o of outputs) {
      const r = ref[o.name];
      assert.deepEqual(mine[o.name].shape, [...r.dims], `${o.name} shape`);
      const rd = Array.from(r.data as ArrayLike<number | bigint>, (x) => Number(x));
      const md = mine[o.name].data;
      for (let i = 0; i < rd.length; i++) assert.ok(Math.abs(md[i] - rd[i]) <= 1e-5 * (1 + Math.abs(rd[i])), `${o.name}[${i}]: ${md[i]} vs ${rd[i]}`);
    }
  });
}

const f32 = (shape: number[], seed: number): In => ({ dtype: 'float32', shape, data: rand(shape.reduce((a, b) => a * b, 1), seed) });
const i64c = (values: number[]): OnnxTensor => ({ dtype: 'int64', shape: [values.length], data: Float64Array.from(values) });
const out = (name: string, dtype: OnnxDType = 'float32'): ValueSpec => ({ name, dtype });

for (const opset of [7, 11, 13, 17]) {
  same('Add/Sub/Mul/Div broadcasting', opset, [
    { op: 'Add', inputs: ['a', 'b'], outputs: ['s'] },
    { op: 'Sub', inputs: ['s', 'b'], outputs: ['d'] },
    { op: 'Mul', inputs: ['d', 'c'], outputs: ['m'] },
    { op: 'Div', inputs: ['m', 'c'], outputs: ['q'] },
  ], { a: f32([2, 3, 4], 1), b: f32([4], 2), c: { dtype: 'float32', shape: [3, 1], data: [0.5, -2, 3] } }, [out('q'), out('s')]);
  same('MatMul (batched, broadcast, 2-D)', opset, [
    { op: 'MatMul', inputs: ['a', 'w'], outputs: ['y'] },
    { op: 'MatMul', inputs: ['a', 'b'], outputs: ['z'] },
  ], { a: f32([2, 3, 4], 3), w: f32([4, 5], 4), b: f32([1, 4, 2], 5) }, [out('y'), out('z')]);
  same('Gemm transA/transB alpha beta, broadcast C', opset, [
    { op: 'Gemm', inputs: ['a', 'b', 'c'], outputs: ['y'], attrs: { transA: 1, transB: 1, alpha: 0.5, beta: 2.5 } },
    { op: 'Gemm', inputs: ['a2', 'b2', 'c2'], outputs: ['y2'] },
  ], { a: f32([4, 3], 6), b: f32([5, 4], 7), c: f32([5], 8), a2: f32([3, 4], 9), b2: f32([4, 2], 10), c2: f32([3, 2], 11) }, [out('y'), out('y2')]);
  same('Softmax / LogSoftmax on a middle axis', opset, [
    { op: 'Softmax', inputs: ['x'], outputs: ['s'], attrs: { axis: 1 } },
    { op: 'LogSoftmax', inputs: ['x'], outputs: ['l'], attrs: { axis: 1 } },
    { op: 'Softmax', inputs: ['x'], outputs: ['d'] },
  ], { x: f32([2, 3, 4], 12) }, [out('s'), out('l'), out('d')]);
  same('Transpose, Concat, Reshape (0 and -1), Flatten', opset, [
    { op: 'Transpose', inputs: ['x'], outputs: ['t'], attrs: { perm: [2, 0, 1] } },
    { op: 'Transpose', inputs: ['x'], outputs: ['t2'] },
    { op: 'Concat', inputs: ['x', 'y'], outputs: ['c'], attrs: { axis: -1 } },
    { op: 'Reshape', inputs: ['c', 'shape'], outputs: ['r'] },
    { op: 'Flatten', inputs: ['x'], outputs: ['f'], attrs: { axis: 2 } },
  ], { x: f32([2, 3, 4], 13), y: f32([2, 3, 1], 14) }, [out('t'), out('t2'), out('c'), out('r'), out('f')], { shape: i64c([0, -1]) });
  same('Gather on axis 0 (embedding), on axis 1, negative ids, int64 data', opset, [
    { op: 'Gather', inputs: ['table', 'ids'], outputs: ['e'] },
    { op: 'Gather', inputs: ['table', 'ids2'], outputs: ['g'], attrs: { axis: 1 } },
    { op: 'Gather', inputs: ['ints', 'ids2'], outputs: ['gi'] },
  ], {
    table: f32([5, 3], 15),
    ids: { dtype: 'int64', shape: [2, 3], data: [0, 4, -1, 2, 2, 1] },
    ids2: { dtype: 'int64', shape: [2], data: [2, -3] },
    ints: { dtype: 'int64', shape: [4], data: [10, 20, 30, 40] },
  }, [out('e'), out('g'), out('gi', 'int64')]);
  same('Tanh, Sigmoid, Relu, Exp, Neg, Abs, Identity', opset, [
    { op: 'Tanh', inputs: ['x'], outputs: ['a'] },
    { op: 'Sigmoid', inputs: ['a'], outputs: ['b'] },
    { op: 'Relu', inputs: ['x'], outputs: ['c'] },
    { op: 'Exp', inputs: ['c'], outputs: ['d'] },
    { op: 'Neg', inputs: ['d'], outputs: ['e'] },
    { op: 'Abs', inputs: ['e'], outputs: ['f'] },
    { op: 'Log', inputs: ['f'], outputs: ['g'] },
    { op: 'Sqrt', inputs: ['f'], outputs: ['h'] },
    { op: 'Identity', inputs: ['h'], outputs: ['i'] },
  ], { x: f32([3, 4], 16) }, [out('b'), out('g'), out('i')]);
  same('Shape, Cast, Dropout (inference)', opset, [
    { op: 'Shape', inputs: ['x'], outputs: ['s'] },
    { op: 'Cast', inputs: ['s'], outputs: ['sf'], attrs: { to: 1 } },
    { op: 'Cast', inputs: ['x'], outputs: ['xi'], attrs: { to: 7 } },
    { op: 'Dropout', inputs: ['x'], outputs: ['dx'] },
  ], { x: f32([2, 5, 3], 17) }, [out('s', 'int64'), out('sf'), out('xi', 'int64'), out('dx')]);
}

for (const opset of [7, 9]) {
  same('Slice (attributes), Squeeze/Unsqueeze/ReduceSum (axes attributes), Split (split attribute)', opset, [
    { op: 'Slice', inputs: ['x'], outputs: ['s'], attrs: { starts: [1, 0], ends: [3, 100], axes: [1, 2] } },
    { op: 'Unsqueeze', inputs: ['x'], outputs: ['u'], attrs: { axes: [0, 3] } },
    { op: 'Squeeze', inputs: ['u'], outputs: ['q'], attrs: { axes: [0] } },
    { op: 'ReduceSum', inputs: ['x'], outputs: ['r'], attrs: { axes: [1], keepdims: 0 } },
    { op: 'Split', inputs: ['x'], outputs: ['p1', 'p2'], attrs: { axis: 1, split: [1, 3] } },
    { op: 'Softmax', inputs: ['x'], outputs: ['sm'], attrs: { axis: 1 } },
  ], { x: f32([2, 4, 3], 20) }, [out('s'), out('q'), out('r'), out('p1'), out('p2'), out('sm')]);
}

for (const opset of [13, 18]) {
  same('Slice (inputs, negative steps), Squeeze/Unsqueeze/ReduceSum/ReduceMean/Split (inputs)', opset, [
    { op: 'Slice', inputs: ['x', 'st', 'en', 'ax', 'sp'], outputs: ['s'] },
    { op: 'Slice', inputs: ['x', 'st2', 'en2'], outputs: ['s2'] },
    { op: 'Unsqueeze', inputs: ['x', 'ua'], outputs: ['u'] },
    { op: 'Squeeze', inputs: ['u', 'qa'], outputs: ['q'] },
    { op: 'Squeeze', inputs: ['u'], outputs: ['q2'] },
    { op: 'ReduceSum', inputs: ['x', 'ra'], outputs: ['r'], attrs: { keepdims: 0 } },
    { op: 'ReduceMean', inputs: opset >= 18 ? ['x', 'ra'] : ['x'], outputs: ['rm'], attrs: opset >= 18 ? {} : { axes: [0, 2] } },
    { op: 'Split', inputs: ['x', 'spl'], outputs: ['p1', 'p2'], attrs: { axis: 1 } },
    { op: 'Concat', inputs: ['st', 'en'], outputs: ['ci'], attrs: { axis: 0 } },
  ], { x: f32([2, 4, 3], 21) }, [out('s'), out('s2'), out('q'), out('q2'), out('r'), out('rm'), out('p1'), out('p2'), out('ci', 'int64')], {
    st: i64c([-1, 2]), en: i64c([-1000, 0]), ax: i64c([1, 2]), sp: i64c([-2, -1]),
    st2: i64c([0, 1]), en2: i64c([9223372036854775807, 3]),
    ua: i64c([0, -1]), qa: i64c([0]), ra: i64c([0, 2]), spl: i64c([3, 1]),
  });
}

test('Constant nodes and constant subgraphs are folded at load time', () => {
  const bytes = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
    outputs: [{ name: 'y', dtype: 'float32' }, { name: 'k', dtype: 'int64' }],
    initializers: { w: { dtype: 'float32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) } },
    nodes: [
      { op: 'Constant', inputs: [], outputs: ['c'], attrs: { value_floats: { floats: [1, 2, 3] } } },
      { op: 'Constant', inputs: [], outputs: ['k'], attrs: { value_ints: [7, 8] } },
      { op: 'Transpose', inputs: ['w'], outputs: ['wt'] },
      { op: 'MatMul', inputs: ['x', 'wt'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'c'], outputs: ['y'], name: 'never-runs-if-shapes-are-wrong' },
    ],
  });
  assert.throws(() => loadOnnx(bytes).run({ x: { shape: [2, 3], data: [1, 0, 0, 0, 1, 0] } }), /never-runs-if-shapes-are-wrong.*cannot be broadcast/);
  const ok = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
    outputs: [{ name: 'y', dtype: 'float32' }, { name: 'k', dtype: 'int64' }],
    initializers: { w: { dtype: 'float32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) } },
    nodes: [
      { op: 'Constant', inputs: [], outputs: ['c'], attrs: { value_floats: { floats: [1, 2] } } },
      { op: 'Constant', inputs: [], outputs: ['k'], attrs: { value_ints: [7, 8] } },
      { op: 'Transpose', inputs: ['w'], outputs: ['wt'] },
      { op: 'MatMul', inputs: ['x', 'wt'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'c'], outputs: ['y'] },
    ],
  });
  const r = loadOnnx(ok).run({ x: { shape: [2, 3], data: [1, 0, 0, 0, 1, 0] } });
  assert.deepEqual(Array.from(r.y.data), [2, 6, 3, 7]);
  assert.deepEqual(Array.from(r.k.data), [7, 8]);
});

test('TensorProto round trip for every supported element type (raw and typed fields)', () => {
  const cases: [OnnxDType, number[]][] = [
    ['float32', [1.5, -2.25, 0, 3e-8]], ['float64', [Math.PI, -1e300]], ['int64', [-(2 ** 52), 2 ** 52, 0, -1]],
    ['int32', [-5, 2 ** 31 - 1]], ['int16', [-32768, 7]], ['int8', [-128, 127]], ['uint8', [0, 255]],
    ['uint16', [65535]], ['uint32', [2 ** 32 - 1]], ['uint64', [2 ** 53]], ['bool', [1, 0, 1]],
  ];
  for (const [dtype, values] of cases) {
    const t: OnnxTensor = { dtype, shape: [values.length], data: dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values) };
    const back = tensorFromProto(decodeTensorProto(encodeTensorProto(tensorToProto(t, 'x'))), 'x');
    assert.equal(back.dtype, dtype);
    assert.deepEqual(Array.from(back.data), Array.from(t.data), dtype);
  }
  // typed (non-raw) fields
  assert.deepEqual(Array.from(tensorFromProto({ dims: [2], data_type: 1, float_data: [1, 2] }, 't').data), [1, 2]);
  assert.deepEqual(Array.from(tensorFromProto({ dims: [3], data_type: 7, int64_data: [1, -2, 3] }, 't').data), [1, -2, 3]);
  assert.deepEqual(Array.from(tensorFromProto({ dims: [2], data_type: 9, int32_data: [0, 5] }, 't').data), [0, 1]);
  assert.deepEqual(Array.from(tensorFromProto({ dims: [1], data_type: 11, double_data: [0.1] }, 't').data), [0.1]);
  assert.deepEqual(tensorFromProto({ dims: [], data_type: 6, int32_data: [4] }, 't').shape, []);
});

test('an initializer that is also a graph input (IR 3 style) is a default the caller may override', () => {
  const m = modelProto({
    irVersion: 3,
    opset: 8,
    inputs: [{ name: 'x', dtype: 'float32', shape: [2] }, { name: 'bias', dtype: 'float32', shape: [2] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: { bias: { dtype: 'float32', shape: [2], data: Float32Array.of(10, 20) } },
    nodes: [{ op: 'Add', inputs: ['x', 'bias'], outputs: ['y'] }],
  });
  const model = loadOnnx(encodeModelProto(m));
  assert.deepEqual(model.inputs.map((i) => i.name), ['x']);
  assert.deepEqual(Array.from(model.run({ x: { shape: [2], data: [1, 2] } }).y.data), [11, 22]);
  assert.deepEqual(Array.from(model.run({ x: { shape: [2], data: [1, 2] }, bias: { shape: [2], data: [0, 0] } }).y.data), [1, 2]);
});
