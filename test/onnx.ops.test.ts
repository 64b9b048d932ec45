/**
 * The non-recurrent operators of recur's ONNX interpreter, each checked against onnxruntime on
 * small graphs, across the opsets where the operator changed (Softmax's axis semantics at 13,
 * Squeeze/Unsqueeze/Split/ReduceSum axes moving to inputs at 13, Slice at 10), plus the protobuf
 * round trip of every supported tensor type and constant folding.
 *
 * Then the operators exported recurrent graphs bring (Expand, ConstantOfShape, Where, comparisons and
 * logic, Range, Tile, Pad, Min/Max/Clip, Pow, Erf, Softplus, HardSigmoid, LeakyRelu, Elu,
 * ReduceMax/ReduceMin, Shape with start/end), in their old (attribute) and new (input) forms, and
 * the per-input-shape memo of shape arithmetic. Their hostile inputs are in onnx.hostile.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Rng } from '../src/index.ts';
import { buildModel, modelProto, type NodeSpec, type ValueSpec } from '../src/onnx/builder.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAX_OPSET, MIN_OPSET, SUPPORTED_OPERATORS, loadOnnx, type OnnxInput } from '../src/onnx/model.ts';
import { AttrType, decodeTensorProto, encodeModelProto, encodeTensorProto, type ModelProto } from '../src/onnx/proto.ts';
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
function same(title: string, opset: number, nodes: NodeSpec[], inputs: Record<string, In>, outputs: ValueSpec[], consts: Record<string, OnnxTensor> = {}, patch?: (m: ModelProto) => void): void {
  const k = counter++;
  test(`${title} (opset ${opset}) matches onnxruntime`, async () => {
    const proto = modelProto({
      opset,
      irVersion: opset >= 15 ? 8 : 7,
      nodes,
      inputs: Object.entries(inputs).map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape })),
      outputs,
      initializers: consts,
      graphName: `g${k}`,
    });
    patch?.(proto);
    const bytes = encodeModelProto(proto);
    const session = await ort.InferenceSession.create(bytes);
    const ref = await session.run(Object.fromEntries(Object.entries(inputs).map(([n, v]) => [n, ortTensor(v)])));
    const mine = loadOnnx(bytes).run(Object.fromEntries(Object.entries(inputs).map(([n, v]) => [n, { shape: v.shape, data: v.data } as OnnxInput])));
    for (const o of outputs) {
      const r = ref[o.name];
      assert.deepEqual(mine[o.name].shape, [...r.dims], `${o.name} shape`);
      const rd = Array.from(r.data as ArrayLike<number | bigint>, (x) => Number(x));
      const md = mine[o.name].data;
      for (let i = 0; i < rd.length; i++) assert.ok(md[i] === rd[i] || Math.abs(md[i] - rd[i]) <= 1e-5 * (1 + Math.abs(rd[i])), `${o.name}[${i}]: ${md[i]} vs ${rd[i]}`);
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

// ---- the operators of exported recurrent graphs ---------------------------------------------------

const i64 = (shape: number[], data: number[]): In => ({ dtype: 'int64', shape, data });
const boolIn = (shape: number[], data: number[]): In => ({ dtype: 'bool', shape, data });
const scalarI64 = (v: number): OnnxTensor => ({ dtype: 'int64', shape: [], data: Float64Array.of(v) });
/** Set a TENSOR attribute (the builder has no tensor attributes) on the node named `node`. */
const tensorAttr = (node: string, name: string, t: OnnxTensor) => (m: ModelProto): void => {
  const n = m.graph!.node!.find((x) => x.name === node)!;
  (n.attribute ??= []).push({ name, type: AttrType.TENSOR, t: tensorToProto(t) });
};

for (const opset of [9, 11, 13, 17]) {
  same('Equal/Greater/Less, Not/And/Or/Xor, Where (float and int64 branches)', opset, [
    { op: 'Greater', inputs: ['a', 'b'], outputs: ['gt'] },
    { op: 'Less', inputs: ['a', 'b'], outputs: ['lt'] },
    { op: 'Equal', inputs: ['i', 'j'], outputs: ['eq'] },
    { op: 'Not', inputs: ['gt'], outputs: ['ngt'] },
    { op: 'And', inputs: ['ngt', 'm'], outputs: ['and'] },
    { op: 'Or', inputs: ['lt', 'm'], outputs: ['or'] },
    { op: 'Xor', inputs: ['gt', 'm'], outputs: ['xor'] },
    { op: 'Where', inputs: ['gt', 'a', 'b'], outputs: ['w'] },
    { op: 'Where', inputs: ['eq', 'i', 'j'], outputs: ['wi'] },
  ], {
    a: f32([2, 3], 30), b: { dtype: 'float32', shape: [3], data: [0, 0.5, -1] }, m: boolIn([2, 1], [1, 0]),
    i: i64([2, 3], [1, 2, 3, 4, 5, 6]), j: i64([3], [1, 5, 3]),
  }, [out('gt', 'bool'), out('lt', 'bool'), out('eq', 'bool'), out('and', 'bool'), out('or', 'bool'), out('xor', 'bool'), out('w'), out('wi', 'int64')]);
  same('Expand (bidirectional broadcast), ConstantOfShape (float and int64 value), Tile', opset, [
    { op: 'Expand', inputs: ['x', 'es'], outputs: ['e'] },
    { op: 'Expand', inputs: ['i', 'es2'], outputs: ['ei'] },
    { op: 'ConstantOfShape', inputs: ['cs'], outputs: ['c0'] },
    { op: 'ConstantOfShape', name: 'cos', inputs: ['cs'], outputs: ['c7'] },
    { op: 'Tile', inputs: ['x', 'reps'], outputs: ['t'] },
    { op: 'Tile', inputs: ['i', 'reps1'], outputs: ['ti'] },
  ], { x: f32([3, 1], 31), i: i64([2], [4, -5]) }, [out('e'), out('ei', 'int64'), out('c0'), out('c7', 'int64'), out('t'), out('ti', 'int64')],
  { es: i64c([2, 1, 4]), es2: i64c([3, 1]), cs: i64c([2, 0 + 3]), reps: i64c([2, 3]), reps1: i64c([3]) },
  tensorAttr('cos', 'value', { dtype: 'int64', shape: [1], data: Float64Array.of(7) }));
  same('Min/Max (variadic, broadcast), Pow, Erf, Softplus, HardSigmoid, LeakyRelu, Elu', opset, [
    { op: 'Max', inputs: ['a', 'b', 'c'], outputs: ['mx'] },
    { op: 'Min', inputs: ['a', 'b'], outputs: ['mn'] },
    { op: 'Min', inputs: ['a'], outputs: ['m1'] },
    { op: 'Abs', inputs: ['a'], outputs: ['aa'] },
    { op: 'Pow', inputs: ['aa', 'b'], outputs: ['p'] },
    { op: 'Erf', inputs: ['a'], outputs: ['erf'] },
    { op: 'Softplus', inputs: ['a'], outputs: ['sp'] },
    { op: 'HardSigmoid', inputs: ['a'], outputs: ['hs'], attrs: { alpha: 0.3, beta: 0.4 } },
    { op: 'HardSigmoid', inputs: ['a'], outputs: ['hs0'] },
    { op: 'LeakyRelu', inputs: ['a'], outputs: ['lr'], attrs: { alpha: 0.2 } },
    { op: 'LeakyRelu', inputs: ['a'], outputs: ['lr0'] },
    { op: 'Elu', inputs: ['a'], outputs: ['el'], attrs: { alpha: 0.5 } },
  ], { a: f32([2, 4], 32), b: f32([4], 33), c: f32([2, 1], 34) },
  ['mx', 'mn', 'm1', 'p', 'erf', 'sp', 'hs', 'hs0', 'lr', 'lr0', 'el'].map((n) => out(n)));
}

for (const opset of [9, 10]) {
  same('Pad (pads and value attributes: constant, reflect, edge), Clip (min/max attributes)', opset, [
    { op: 'Pad', inputs: ['x'], outputs: ['pc'], attrs: { pads: [1, 0, 0, 2], value: { float: 1.5 } } },
    { op: 'Pad', inputs: ['x'], outputs: ['pr'], attrs: { pads: [0, 2, 1, 1], mode: 'reflect' } },
    { op: 'Pad', inputs: ['x'], outputs: ['pe'], attrs: { pads: [2, 1, 0, 3], mode: 'edge' } },
    { op: 'Clip', inputs: ['x'], outputs: ['cl'], attrs: { min: { float: -0.5 }, max: { float: 0.7 } } },
    { op: 'Clip', inputs: ['x'], outputs: ['cl1'], attrs: { max: { float: 0.1 } } },
  ], { x: f32([3, 4], 35) }, [out('pc'), out('pr'), out('pe'), out('cl'), out('cl1')]);
}

for (const opset of [11, 13, 18]) {
  same('Range (int64 and float), Pad (inputs, crop), Clip (inputs), Shape → Concat of shape tensors', opset, [
    { op: 'Range', inputs: ['s', 'l', 'd'], outputs: ['ri'] },
    { op: 'Range', inputs: ['fs', 'fl', 'fd'], outputs: ['rf'] },
    { op: 'Range', inputs: ['l', 's', 'd'], outputs: ['rempty'] },
    { op: 'Pad', inputs: ['x', 'pads', 'pv'], outputs: ['pc'] },
    { op: 'Pad', inputs: ['x', 'crop'], outputs: ['pcrop'], attrs: { mode: 'edge' } },
    { op: 'Pad', inputs: ['x', 'pads2'], outputs: ['pr'], attrs: { mode: 'reflect' } },
    { op: 'Pad', inputs: ['x', 'cropr'], outputs: ['pcr'], attrs: { mode: 'reflect' } },
    { op: 'Pad', inputs: ['x', 'cropr'], outputs: ['pce'], attrs: { mode: 'edge' } },
    { op: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['cl'] },
    { op: 'Clip', inputs: ['x', '', 'hi'], outputs: ['clh'] },
    { op: 'Clip', inputs: ['x'], outputs: ['cln'] },
    { op: 'Shape', inputs: ['x'], outputs: ['sh'] },
    { op: 'Concat', inputs: ['sh', 'pads', 'sh'], outputs: ['cat'], attrs: { axis: 0 } },
  ], { x: f32([3, 4], 36), fs: { dtype: 'float32', shape: [], data: [0.5] }, fl: { dtype: 'float32', shape: [], data: [-2.2] }, fd: { dtype: 'float32', shape: [], data: [-0.3] } },
  [out('ri', 'int64'), out('rf'), out('rempty', 'int64'), out('pc'), out('pcrop'), out('pr'), out('pcr'), out('pce'), out('cl'), out('clh'), out('cln'), out('sh', 'int64'), out('cat', 'int64')],
  {
    s: scalarI64(-3), l: scalarI64(11), d: scalarI64(4), pads: i64c([0, 1, 2, 0]), pv: { dtype: 'float32', shape: [], data: Float32Array.of(-7) },
    crop: i64c([-1, 2, 0, -2]), pads2: i64c([2, 0, 0, 3]), cropr: i64c([-1, 2, 1, -1]),
    lo: { dtype: 'float32', shape: [], data: Float32Array.of(-0.25) }, hi: { dtype: 'float32', shape: [], data: Float32Array.of(0.5) },
  });
}

for (const opset of [13, 17, 18]) {
  same('ReduceMax/ReduceMin (axes attribute before 18, input from 18; keepdims), Cast int↔float↔bool', opset, [
    { op: 'ReduceMax', inputs: opset >= 18 ? ['x', 'ax'] : ['x'], outputs: ['mx'], attrs: opset >= 18 ? { keepdims: 0 } : { axes: [-1], keepdims: 0 } },
    { op: 'ReduceMin', inputs: ['x'], outputs: ['mn'] },
    { op: 'ReduceMax', inputs: opset >= 18 ? ['i', 'ax0'] : ['i'], outputs: ['mi'], attrs: opset >= 18 ? {} : { axes: [0] } },
    { op: 'Cast', inputs: ['x'], outputs: ['xb'], attrs: { to: 9 } },
    { op: 'Cast', inputs: ['xb'], outputs: ['bf'], attrs: { to: 1 } },
    { op: 'Cast', inputs: ['i'], outputs: ['if'], attrs: { to: 1 } },
    { op: 'Cast', inputs: ['x'], outputs: ['xi'], attrs: { to: 6 } },
  ], { x: { dtype: 'float32', shape: [2, 3], data: [0, 1.7, -2.5, 3.2, 0, -0.1] }, i: i64([2, 2], [3, -1, 2, 8]) },
  [out('mx'), out('mn'), out('mi', 'int64'), out('xb', 'bool'), out('bf'), out('if'), out('xi', 'int32')], { ax: i64c([-1]), ax0: i64c([0]) });
}

for (const opset of [11, 13, 16, 18]) {
  same('TopK (largest and smallest, ties by index), ScatterElements (negative indices, reductions), ReduceProd', opset, [
    { op: 'TopK', inputs: ['x', 'k'], outputs: ['v', 'i'] },
    { op: 'TopK', inputs: ['x', 'k'], outputs: ['v0', 'i0'], attrs: { axis: 0, largest: 0 } },
    { op: 'TopK', inputs: ['len', 'k3'], outputs: ['lv', 'li'] },
    { op: 'ScatterElements', inputs: ['x', 'si', 'su'], outputs: ['sc'], attrs: { axis: 1 } },
    { op: 'ScatterElements', inputs: ['len', 'li', 'ar'], outputs: ['inv'] },
    ...(opset >= 16 ? [{ op: 'ScatterElements', inputs: ['x', 'si2', 'su'], outputs: ['sa'], attrs: { axis: 1, reduction: 'add' } }] : []),
    ...(opset >= 18 ? [{ op: 'ScatterElements', inputs: ['x', 'si2', 'su'], outputs: ['sm'], attrs: { axis: 1, reduction: 'max' } }] : []),
    { op: 'ReduceProd', inputs: opset >= 18 ? ['x', 'ax'] : ['x'], outputs: ['rp'], attrs: opset >= 18 ? {} : { axes: [1] } },
    { op: 'ReduceProd', inputs: ['len'], outputs: ['rpi'], attrs: { keepdims: 0 } },
  ], {
    x: { dtype: 'float32', shape: [3, 4], data: [1, 3, 3, -2, 0.5, 0.5, 0.5, 0.5, 2, -1, 4, 4] },
    len: i64([3], [2, 5, 2]),
  }, [out('v'), out('i', 'int64'), out('v0'), out('i0', 'int64'), out('lv', 'int64'), out('li', 'int64'), out('sc'), out('inv', 'int64'),
    ...(opset >= 16 ? [out('sa')] : []), ...(opset >= 18 ? [out('sm')] : []), out('rp'), out('rpi', 'int64')], {
    k: i64c([2]), k3: i64c([3]), ax: i64c([1]), ar: i64c([0, 1, 2]),
    si: { dtype: 'int64', shape: [2, 2], data: Float64Array.of(-1, 0, 2, 1) },
    si2: { dtype: 'int64', shape: [2, 2], data: Float64Array.of(1, 1, 0, 0) },
    su: { dtype: 'float32', shape: [2, 2], data: Float32Array.of(10, 20, 30, 40) },
  });
}

same('ReduceMax/ReduceMin over an empty float axis give -∞/+∞', 13, [
  { op: 'ReduceMax', inputs: ['x'], outputs: ['mx'], attrs: { axes: [1], keepdims: 0 } },
  { op: 'ReduceMin', inputs: ['x'], outputs: ['mn'], attrs: { axes: [1] } },
], { x: { dtype: 'float32', shape: [2, 0], data: [] } }, [out('mx'), out('mn')]);

for (const opset of [15, 17]) {
  same('Shape with start and end (negative, clamped), GreaterOrEqual/LessOrEqual', opset, [
    { op: 'Shape', inputs: ['x'], outputs: ['s1'], attrs: { start: 1 } },
    { op: 'Shape', inputs: ['x'], outputs: ['s2'], attrs: { start: -2, end: -1 } },
    { op: 'Shape', inputs: ['x'], outputs: ['s3'], attrs: { start: -10, end: 10 } },
    { op: 'GreaterOrEqual', inputs: ['x', 'y'], outputs: ['ge'] },
    { op: 'LessOrEqual', inputs: ['x', 'y'], outputs: ['le'] },
  ], { x: f32([2, 3, 4], 37), y: { dtype: 'float32', shape: [4], data: [0, 0.5, -1, 2] } }, [out('s1', 'int64'), out('s2', 'int64'), out('s3', 'int64'), out('ge', 'bool'), out('le', 'bool')]);
}

/** PyTorch's zero initial state: Shape(x) → Gather(batch) → Unsqueeze → Concat([2], B, [4]) → ConstantOfShape. */
function zeroStateGraph(xShape: (number | string)[]): Uint8Array {
  return buildModel({
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', shape: xShape }],
    outputs: [{ name: 'h0', dtype: 'float32' }, { name: 'y', dtype: 'float32' }],
    initializers: { zero: scalarI64(0), two: i64c([2]), four: i64c([4]), ax: i64c([0]) },
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Gather', inputs: ['s', 'zero'], outputs: ['b'] },
      { op: 'Unsqueeze', inputs: ['b', 'ax'], outputs: ['b1'] },
      { op: 'Concat', inputs: ['two', 'b1', 'four'], outputs: ['hs'], attrs: { axis: 0 } },
      { op: 'ConstantOfShape', inputs: ['hs'], outputs: ['h0'] },
      { op: 'Neg', inputs: ['x'], outputs: ['y'] },
    ],
  });
}

test('shape arithmetic runs once per input shape: memoised on the Shape outputs, folded at load for static shapes', () => {
  const m = loadOnnx(zeroStateGraph(['B', 'T', 3]));
  assert.deepEqual(m.shapeArithmetic, { nodes: 4, evaluations: 0, reuses: 0 });
  const run = (B: number, T: number) => m.run({ x: { shape: [B, T, 3], data: new Array(B * T * 3).fill(1) } });
  assert.deepEqual(run(2, 5).h0.shape, [2, 2, 4]);
  assert.deepEqual(m.shapeArithmetic, { nodes: 4, evaluations: 4, reuses: 0 });
  // The same shape again: every shape-only node reuses the last run's outputs.
  assert.deepEqual(run(2, 5).h0.shape, [2, 2, 4]);
  assert.deepEqual(run(2, 5).h0.shape, [2, 2, 4]);
  assert.deepEqual(m.shapeArithmetic, { nodes: 4, evaluations: 4, reuses: 8 });
  // A new shape recomputes (and does not reuse the stale [2, 2, 4]).
  const r = run(3, 5);
  assert.deepEqual(r.h0.shape, [2, 3, 4]);
  assert.ok(Array.from(r.h0.data).every((v) => v === 0));
  assert.deepEqual(m.shapeArithmetic, { nodes: 4, evaluations: 8, reuses: 8 });

  // Declared static: Shape of the input folds at load, and with it the whole chain.
  const s = loadOnnx(zeroStateGraph([2, 5, 3]));
  assert.equal(s.folding.nodes, 5);
  assert.deepEqual(s.shapeArithmetic, { nodes: 0, evaluations: 0, reuses: 0 });
  assert.deepEqual(s.run({ x: { shape: [2, 5, 3], data: new Array(30).fill(1) } }).h0.shape, [2, 2, 4]);
  assert.throws(() => s.run({ x: { shape: [3, 5, 3], data: new Array(45).fill(1) } }), /does not match the declared \[2, 5, 3\]/);
});

test("the README's list of ONNX operators is the code's (scripts/onnx-ops.mjs writes it)", () => {
  const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
  const m = /<!-- onnx-operators:start[^>]*-->\n(\d+) operators of the default ONNX domain, opsets (\d+)–(\d+): (.*)\.\n<!-- onnx-operators:end -->/.exec(readme);
  assert.ok(m, 'README.md has no generated operator section; run npm run build && node scripts/onnx-ops.mjs');
  const listed = [...m[4].matchAll(/`([A-Za-z]+)`/g)].map((x) => x[1]);
  const stale = 'stale: run npm run build && node scripts/onnx-ops.mjs';
  assert.deepEqual([...listed].sort(), [...SUPPORTED_OPERATORS].sort(), stale);
  assert.equal(Number(m[1]), SUPPORTED_OPERATORS.length, stale);
  assert.deepEqual([Number(m[2]), Number(m[3])], [MIN_OPSET, MAX_OPSET], stale);
  for (const op of ['Expand', 'ConstantOfShape', 'Where', 'Range', 'Tile', 'Pad', 'LSTM']) assert.ok(listed.includes(op), op);
});

test('a run that fails part-way leaves no stale shape arithmetic behind', () => {
  const m = loadOnnx(buildModel({
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', shape: ['B', 'T', 3] }],
    outputs: [{ name: 'h0', dtype: 'float32' }, { name: 'y', dtype: 'float32' }],
    initializers: { zero: scalarI64(0), two: i64c([2]), four: i64c([4]), ax: i64c([0]), r: i64c([4, -1]) },
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Reshape', name: 'fails-unless-4-divides', inputs: ['x', 'r'], outputs: ['xr'] },
      { op: 'Gather', inputs: ['s', 'zero'], outputs: ['b'] },
      { op: 'Unsqueeze', inputs: ['b', 'ax'], outputs: ['b1'] },
      { op: 'Concat', inputs: ['two', 'b1', 'four'], outputs: ['hs'], attrs: { axis: 0 } },
      { op: 'ConstantOfShape', inputs: ['hs'], outputs: ['h0'] },
      { op: 'Neg', inputs: ['xr'], outputs: ['y'] },
    ],
  }));
  const run = (B: number, T: number) => m.run({ x: { shape: [B, T, 3], data: new Array(B * T * 3).fill(1) } });
  assert.deepEqual(run(2, 2).h0.shape, [2, 2, 4]);
  assert.throws(() => run(3, 1), /fails-unless-4-divides/);
  const before = m.shapeArithmetic.evaluations;
  assert.deepEqual(run(4, 1).h0.shape, [2, 4, 4]);
  assert.equal(m.shapeArithmetic.evaluations, before + 4);
  assert.deepEqual(run(4, 1).h0.shape, [2, 4, 4]);
  assert.equal(m.shapeArithmetic.evaluations, before + 4);
});
