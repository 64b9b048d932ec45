/**
 * Hostile ONNX graphs: small files that ask for a lot of work or memory. Each is either refused
 * early with a LimitError that names what was counted and the limit, or handled in time and memory
 * proportional to the file — never minutes of CPU, gigabytes of memory or a stack overflow.
 *
 * The time bounds are generous regression guards for complexity (the quadratic loaders took a
 * minute or more on these graphs), not benchmarks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOnnx } from '../src/onnx/model.ts';
import { OnnxError } from '../src/onnx/proto.ts';
import { buildModel, type NodeSpec, type ValueSpec } from '../src/onnx/builder.ts';
import type { OnnxDType, OnnxTensor } from '../src/onnx/tensor.ts';
import { LimitError, DEFAULT_LIMITS } from '../src/io/limits.ts';
import { onnxCommand } from '../src/cli/onnx.ts';
import { importCommand } from '../src/cli/import.ts';

function limitError(fn: () => unknown, key: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LimitError, `expected LimitError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.equal(e.key, key);
    assert.match(e.message, re);
    return true;
  });
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

function filled(dtype: OnnxDType, shape: number[], f: (i: number) => number): OnnxTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = f(i);
  return { dtype, shape, data };
}

// ---- graph size: linear-time loading, graphNodes ------------------------------------------------

/** x → Identity → t, then `n` Relu nodes that all read t; every Relu output is a graph output. */
function fanOut(n: number): Uint8Array {
  const nodes: NodeSpec[] = [{ op: 'Identity', name: 'hub', inputs: ['x'], outputs: ['t'] }];
  const outputs: ValueSpec[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push({ op: 'Relu', name: `r${i}`, inputs: ['t'], outputs: [`y${i}`] });
    outputs.push({ name: `y${i}`, dtype: 'float32' });
  }
  return buildModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs, nodes });
}

const FAN_OUT = 40_000;
const fanOutBytes = fanOut(FAN_OUT);

test('a 40,000-node fan-out graph loads in linear time (was over a minute)', () => {
  assert.ok(fanOutBytes.length < 2 * 1024 ** 2, `the file is small (${fanOutBytes.length} bytes)`);
  const { value: m, ms } = timed(() => loadOnnx(fanOutBytes));
  assert.ok(ms < 5000, `loading took ${Math.round(ms)} ms`);
  assert.equal(m.operators.get('Relu'), FAN_OUT);
  assert.equal(m.outputs.length, FAN_OUT);
  const y = m.run({ x: { shape: [2], data: [-1, 3] } });
  assert.deepEqual(Array.from(y[`y${FAN_OUT - 1}`].data), [0, 3]);
});

test('a deep chain of 50,000 nodes loads and runs without recursion', () => {
  const n = 50_000;
  const nodes: NodeSpec[] = [];
  for (let i = 0; i < n; i++) nodes.push({ op: i % 2 ? 'Neg' : 'Relu', inputs: [i === 0 ? 'x' : `v${i - 1}`], outputs: [i === n - 1 ? 'y' : `v${i}`] });
  // listed last-first, so the sort has to do the work
  const bytes = buildModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32' }], nodes: nodes.reverse() });
  const { value: m, ms } = timed(() => loadOnnx(bytes));
  assert.ok(ms < 5000, `loading took ${Math.round(ms)} ms`);
  // (relu, neg) repeated: relu(-relu(x)) = 0 after the first pair
  assert.deepEqual(Array.from(m.run({ x: { shape: [2], data: [-1, 3] } }).y.data).map((v) => v + 0), [0, 0]);
});

test('graphNodes is checked before anything is built', () => {
  const { ms } = timed(() => limitError(() => loadOnnx(fanOutBytes, { limits: { graphNodes: 1000 } }), 'graphNodes', /nodes in the graph: 40001 is over the limit of 1000 \(graphNodes\)/));
  assert.ok(ms < 2000, `refusing took ${Math.round(ms)} ms`);
  assert.doesNotThrow(() => loadOnnx(fanOutBytes, { limits: { graphNodes: FAN_OUT + 1 } }));
});

test('file, initializer and element limits are LimitErrors naming what was counted', () => {
  limitError(() => loadOnnx(fanOutBytes, { limits: { fileBytes: 1000 } }), 'fileBytes', new RegExp(`bytes of the file: ${fanOutBytes.length} is over the limit of 1000 \\(fileBytes\\)`));
  const inits: Record<string, OnnxTensor> = {};
  for (let i = 0; i < 5; i++) inits[`w${i}`] = filled('float32', [10], () => 1);
  const m = buildModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32' }], initializers: inits, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }] });
  limitError(() => loadOnnx(m, { limits: { tensors: 4 } }), 'tensors', /initializers: 5 is over the limit of 4 \(tensors\)/);
  limitError(() => loadOnnx(m, { limits: { parameters: 45 } }), 'parameters', /initializers up to 'w4': 50 is over the limit of 45/);
  limitError(() => loadOnnx(m, { limits: { tensorElements: 9 } }), 'tensorElements', /initializer 'w0': elements of shape \[10\]: 10 is over the limit of 9/);
  // the older maxElements option is the same limit
  limitError(() => loadOnnx(m, { maxElements: 9 }), 'tensorElements', /over the limit of 9/);
  assert.doesNotThrow(() => loadOnnx(m, { limits: { tensors: 5, parameters: 50, tensorElements: 10 } }));
  assert.throws(() => loadOnnx(m, { limits: { nodes: 3 } as never }), /unknown limit 'nodes'/);
});

// ---- constant folding: bounded by foldedConstantBytes ---------------------------------------------

/** Two 16384-element constants whose broadcast Add is 2^28 elements (1 GiB as float32), plus a runtime Add. */
function broadcastBomb(n: number): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: { a: filled('float32', [n, 1], () => 1), b: filled('float32', [1, n], () => 2) },
    nodes: [
      { op: 'Add', name: 'blowup', inputs: ['a', 'b'], outputs: ['s'] },
      { op: 'Add', name: 'use', inputs: ['s', 'x'], outputs: ['y'] },
    ],
  });
}

test('a broadcast that would fold into a 1 GiB constant stays lazy: fast, with bounded memory', () => {
  const bytes = broadcastBomb(16384);
  assert.ok(bytes.length < 140_000, `the file is ${bytes.length} bytes`);
  const before = process.memoryUsage();
  const { value: m, ms } = timed(() => loadOnnx(bytes));
  const after = process.memoryUsage();
  const grew = Math.max(after.arrayBuffers - before.arrayBuffers, after.rss - before.rss);
  assert.ok(grew < 200 * 1024 ** 2, `loading grew memory by ${Math.round(grew / 2 ** 20)} MiB`);
  assert.ok(ms < 3000, `loading took ${Math.round(ms)} ms`);
  assert.deepEqual(m.folding.deferred, ["Add node 'blowup'"]);
  assert.ok(m.folding.bytes <= DEFAULT_LIMITS.foldedConstantBytes);
  // a small one folds, and both give the same answers
  const small = loadOnnx(broadcastBomb(8), { limits: { foldedConstantBytes: 1024 } });
  assert.deepEqual(small.folding, { nodes: 1, bytes: 8 * 8 * 4, deferred: [] });
  const lazy = loadOnnx(broadcastBomb(8), { limits: { foldedConstantBytes: 255 } });
  assert.deepEqual(lazy.folding.deferred, ["Add node 'blowup'"]);
  const x = { x: { shape: [1], data: [0.5] } };
  assert.deepEqual(Array.from(lazy.run(x).y.data), Array.from(small.run(x).y.data));
  assert.deepEqual(Array.from(small.run(x).y.data), new Array(64).fill(3.5));
});

test('the folding budget is a running total over all folded nodes', () => {
  // 100 Relu nodes each fold the same 64 KiB constant: 6.4 MB in all, against a 1 MiB budget
  const n = 100;
  const w = filled('float32', [16384], (i) => (i % 3) - 1);
  const nodes: NodeSpec[] = [];
  const outputs: ValueSpec[] = [{ name: 'z', dtype: 'float32' }];
  for (let i = 0; i < n; i++) {
    nodes.push({ op: 'Relu', name: `r${i}`, inputs: ['w'], outputs: [`y${i}`] });
    outputs.push({ name: `y${i}`, dtype: 'float32' });
  }
  nodes.push({ op: 'Neg', inputs: ['x'], outputs: ['z'] });
  const bytes = buildModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [1] }], outputs, initializers: { w }, nodes });
  const m = loadOnnx(bytes, { limits: { foldedConstantBytes: 2 ** 20 } });
  const per = 16384 * 4;
  assert.equal(m.folding.nodes, Math.floor(2 ** 20 / per));
  assert.equal(m.folding.bytes, m.folding.nodes * per);
  assert.equal(m.folding.deferred.length, n - m.folding.nodes);
  // the deferred nodes compute the same values at run time
  const y = m.run({ x: { shape: [1], data: [1] } });
  const want = Array.from(w.data, (v) => Math.max(v, 0));
  assert.deepEqual(Array.from(y.y0.data), want);
  assert.deepEqual(Array.from(y[`y${n - 1}`].data), want);
  // views of a constant (Reshape, Identity) cost nothing
  const views = buildModel({
    inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
    outputs: [{ name: 'v', dtype: 'float32' }, { name: 'z', dtype: 'float32' }],
    initializers: { w, shape: filled('int64', [2], (i) => [128, 128][i]) },
    nodes: [{ op: 'Identity', inputs: ['w'], outputs: ['i'] }, { op: 'Reshape', inputs: ['i', 'shape'], outputs: ['v'] }, { op: 'Neg', inputs: ['x'], outputs: ['z'] }],
  });
  assert.deepEqual(loadOnnx(views, { limits: { foldedConstantBytes: 1 } }).folding, { nodes: 2, bytes: 0, deferred: [] });
});

test('a folded result over tensorElements is refused at load, naming the node', () => {
  const { ms } = timed(() => limitError(() => loadOnnx(broadcastBomb(32768)), 'tensorElements', /Add node 'blowup': output: elements of shape \[32768, 32768\]: 1073741824 is over the limit of 268435456 \(tensorElements\)/));
  assert.ok(ms < 3000, `refusing took ${Math.round(ms)} ms`);
});

// ---- operators that a file can make expensive ----------------------------------------------------

test('Concat of one input listed 200,000 times runs (no argument-list spread) and is bounded by tensorElements', () => {
  const n = 200_000;
  const bytes = buildModel({
    inputs: [{ name: 'x', dtype: 'float32', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    nodes: [{ op: 'Concat', name: 'cat', inputs: new Array(n).fill('x'), outputs: ['y'], attrs: { axis: 0 } }],
  });
  const y = loadOnnx(bytes).run({ x: { shape: [1], data: [2] } }).y;
  assert.equal(y.data.length, n);
  assert.equal(y.data[n - 1], 2);
  // the output can be far larger than the file: it is checked before it is allocated
  limitError(() => loadOnnx(bytes, { limits: { tensorElements: 1000 } }).run({ x: { shape: [1], data: [2] } }), 'tensorElements', /Concat node 'cat': output: elements of shape \[200000\]: 200000 is over the limit of 1000/);
});

test('Squeeze and Unsqueeze on a rank-100,000 tensor take linear time', () => {
  const r = 100_000;
  const ones = new Array<number>(r).fill(1);
  const bytes = buildModel({
    inputs: [{ name: 'x', dtype: 'int64', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'int64' }, { name: 'u', dtype: 'int64' }],
    initializers: { big: filled('int64', ones, () => 7), axes: filled('int64', [r], (i) => i) },
    nodes: [
      { op: 'Squeeze', inputs: ['big'], outputs: ['s'] },
      { op: 'Add', inputs: ['s', 'x'], outputs: ['y'] },
      { op: 'Unsqueeze', inputs: ['x', 'axes'], outputs: ['u'] },
    ],
  });
  const { value: out, ms } = timed(() => loadOnnx(bytes).run({ x: { shape: [1], data: [1] } }));
  assert.ok(ms < 5000, `took ${Math.round(ms)} ms`);
  assert.deepEqual(out.y.shape, [1]);
  assert.equal(out.y.data[0], 8);
  assert.equal(out.u.shape.length, r + 1);
});

test('Split: num_outputs must match the outputs, checked before anything is sized by it', () => {
  const bytes = buildModel({
    opset: 18,
    inputs: [{ name: 'x', dtype: 'float32', shape: [4] }],
    outputs: [{ name: 'a', dtype: 'float32' }, { name: 'b', dtype: 'float32' }],
    nodes: [{ op: 'Split', name: 'sp', inputs: ['x'], outputs: ['a', 'b'], attrs: { num_outputs: 2 ** 40 } }],
  });
  const { ms } = timed(() => assert.throws(() => loadOnnx(bytes).run({ x: { shape: [4], data: [1, 2, 3, 4] } }), (e: unknown) => {
    assert.ok(e instanceof OnnxError);
    assert.match(e.message, /Split node 'sp': num_outputs = 1099511627776 but the node has 2 outputs/);
    return true;
  }));
  assert.ok(ms < 2000, `took ${Math.round(ms)} ms`);
});

test('Gather with an empty result does not walk the (huge) index space', () => {
  // data [10^6, 5, 0] holds nothing; gathering 20,000 indices along axis 1 gives [10^6, 20000, 0]
  const ids = 20_000;
  const bytes = buildModel({
    inputs: [{ name: 'x', dtype: 'int64', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'int64' }],
    initializers: { data: filled('int64', [1e6, 5, 0], () => 0), idx: filled('int64', [ids], (i) => i % 5) },
    nodes: [{ op: 'Gather', inputs: ['data', 'idx'], outputs: ['g'], attrs: { axis: 1 } }, { op: 'Shape', inputs: ['g'], outputs: ['s'] }, { op: 'Add', inputs: ['s', 'x'], outputs: ['y'] }],
  });
  const { value: m, ms } = timed(() => loadOnnx(bytes));
  assert.ok(ms < 3000, `took ${Math.round(ms)} ms`);
  assert.deepEqual(Array.from(m.run({ x: { shape: [1], data: [0] } }).y.data), [1e6, ids, 0]);
});

// ---- the size-making operators of exported graphs ------------------------------------------------

/** One node reading runtime inputs (so nothing folds at load): `inputs` are graph inputs, `consts` initializers. */
function oneNode(op: string, inputs: { name: string; dtype: OnnxDType; shape: number[] }[], consts: Record<string, OnnxTensor>, attrs: NodeSpec['attrs'] = {}, opset = 13): Uint8Array {
  return buildModel({
    opset,
    inputs,
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: consts,
    nodes: [{ op, name: 'bomb', inputs: [...inputs.map((i) => i.name), ...Object.keys(consts)], outputs: ['y'], attrs }],
  });
}
const i64t = (values: number[], shape = [values.length]): OnnxTensor => filled('int64', shape, (i) => values[i]);
const x1 = { name: 'x', dtype: 'float32' as const, shape: [1] };
const run1 = (bytes: Uint8Array) => () => loadOnnx(bytes).run({ x: { shape: [1], data: [1] } });

test('Expand, Tile, ConstantOfShape, Range and Pad asking for 10^10 elements are refused before allocating', () => {
  const { ms } = timed(() => {
    limitError(run1(oneNode('Expand', [x1], { shape: i64t([1e5, 1e5]) })), 'tensorElements', /Expand node 'bomb': output: elements of shape \[100000, 100000\]/);
    limitError(run1(oneNode('Tile', [x1], { reps: i64t([1e10]) })), 'tensorElements', /Tile node 'bomb': output: elements of shape \[10000000000\]/);
    limitError(run1(oneNode('Pad', [x1], { pads: i64t([0, 1e10]) }, {}, 13)), 'tensorElements', /Pad node 'bomb': output: elements of shape \[10000000001\]/);
    const shapeIn = loadOnnx(oneNode('ConstantOfShape', [{ name: 's', dtype: 'int64', shape: [2] }], {}));
    limitError(() => shapeIn.run({ s: { shape: [2], data: [1e5, 1e5] } }), 'tensorElements', /ConstantOfShape node 'bomb': output: elements of shape \[100000, 100000\]/);
    const range = loadOnnx(buildModel({
      opset: 13,
      inputs: [{ name: 'l', dtype: 'int64', shape: [] }],
      outputs: [{ name: 'y', dtype: 'int64' }],
      initializers: { s: i64t([0], []), d: i64t([1], []) },
      nodes: [{ op: 'Range', name: 'bomb', inputs: ['s', 'l', 'd'], outputs: ['y'] }],
    }));
    limitError(() => range.run({ l: { shape: [], data: [1e12] } }), 'tensorElements', /Range node 'bomb': output: elements of shape \[1000000000000\]/);
    // all-constant inputs fold at load: the same bomb is refused there, naming the node
    limitError(() => loadOnnx(buildModel({
      opset: 13,
      inputs: [x1],
      outputs: [{ name: 'y', dtype: 'float32' }],
      initializers: { shape: i64t([1e5, 1e5]) },
      nodes: [{ op: 'ConstantOfShape', name: 'bomb', inputs: ['shape'], outputs: ['y'] }],
    })), 'tensorElements', /ConstantOfShape node 'bomb'/);
  });
  assert.ok(ms < 3000, `took ${Math.round(ms)} ms`);
});

test('the new operators reject wrong arity, shapes and values with errors naming the node', () => {
  const onnxError = (fn: () => unknown, re: RegExp): void => assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OnnxError, `expected OnnxError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.match(e.message, re);
    return true;
  });
  const f = (shape: number[], name = 'x'): { name: string; dtype: OnnxDType; shape: number[] } => ({ name, dtype: 'float32', shape });
  // arity, at load
  onnxError(() => loadOnnx(oneNode('Where', [f([2], 'a'), f([3], 'b')], {})), /Where node 'bomb': expects 3 inputs, got 2/);
  onnxError(() => loadOnnx(oneNode('Expand', [f([2])], {})), /Expand node 'bomb': expects 2 inputs, got 1/);
  onnxError(() => loadOnnx(oneNode('Range', [f([])], {})), /Range node 'bomb': expects 3 inputs, got 1/);
  onnxError(() => loadOnnx(oneNode('Pad', [f([2])], { pads: i64t([1, 1]) }, { mode: 'wrap' }, 13)), /Pad node 'bomb': mode 'wrap' is not supported/);
  onnxError(() => loadOnnx(oneNode('ConstantOfShape', [{ name: 's', dtype: 'int64', shape: [1] }], {}, { bogus: 1 })), /ConstantOfShape node 'bomb': unsupported attribute 'bogus'/);
  // operators and element types the spec does not have at the model's opset
  onnxError(() => loadOnnx(oneNode('Range', [f([], 'a'), f([], 'b'), f([], 'c')], {}, {}, 10)), /Range node 'bomb': Range is defined from opset 11; this model imports opset 10/);
  onnxError(() => loadOnnx(oneNode('Where', [f([2], 'a'), f([2], 'b'), f([2], 'c')], {}, {}, 8)), /Where is defined from opset 9/);
  onnxError(() => loadOnnx(oneNode('Equal', [f([2], 'a'), f([2], 'b')], {}, {}, 9)).run({ a: { shape: [2], data: [1, 2] }, b: { shape: [2], data: [1, 2] } }),
    /Equal node 'bomb': inputs must be int or bool, got float32/);
  // shapes and values, at run time
  const ones = (shape: number[]): number[] => new Array(shape.reduce((p, q) => p * q, 1)).fill(1);
  const two = (op: string, a: number[], b: number[], consts: Record<string, OnnxTensor> = {}, attrs = {}) => () =>
    loadOnnx(oneNode(op, [f(a, 'a'), f(b, 'b')], consts, attrs)).run({ a: { shape: a, data: ones(a) }, b: { shape: b, data: ones(b) } });
  onnxError(two('Max', [2, 3], [4]), /Max node 'bomb': shapes \[2, 3\] and \[4\] cannot be broadcast together/);
  onnxError(two('Greater', [2, 3], [2]), /Greater node 'bomb': shapes .* cannot be broadcast/);
  onnxError(two('Where', [2], [2], { c: filled('float32', [2], () => 1) }), /Where node 'bomb': condition must be bool, got float32/);
  onnxError(two('And', [2], [2]), /And node 'bomb': inputs must be bool, got float32/);
  onnxError(run1(oneNode('Tile', [x1], { reps: i64t([2, 2]) })), /Tile node 'bomb': repeats \[2, 2\] must have one entry per input axis \(1\)/);
  onnxError(run1(oneNode('Tile', [x1], { reps: i64t([-1]) })), /Tile node 'bomb': repeats \[-1\] has a negative/);
  onnxError(run1(oneNode('Expand', [x1], { shape: i64t([-2]) })), /Expand node 'bomb': shapes \[1\] and \[-2\] cannot be broadcast|not a non-negative integer/);
  onnxError(run1(oneNode('Pad', [x1], { pads: i64t([0, -3]) })), /Pad node 'bomb': pads \[0, -3\] crop more than input \[1\] holds/);
  onnxError(run1(oneNode('Pad', [x1], { pads: i64t([1]) })), /Pad node 'bomb': pads \[1\] must have 2 × 1 entries/);
  onnxError(run1(oneNode('Pad', [x1], { pads: i64t([3, 0]) }, { mode: 'reflect' })), /Pad node 'bomb': reflect padding of 3 needs axis 0 longer than the 1 values it keeps/);
  onnxError(() => loadOnnx(oneNode('TopK', [x1], { k: i64t([1]) })), /TopK node 'bomb': expects 2 outputs, got 1/);
  onnxError(run1(buildModel({
    opset: 13,
    inputs: [x1],
    outputs: [{ name: 'v', dtype: 'float32' }],
    initializers: { k: i64t([2]) },
    nodes: [{ op: 'TopK', name: 'bomb', inputs: ['x', 'k'], outputs: ['v', 'i'] }],
  })), /TopK node 'bomb': K = 2 is out of range for axis 0 of size 1/);
  onnxError(() => loadOnnx(buildModel({
    opset: 13,
    inputs: [x1],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: { i: i64t([5]), u: filled('float32', [1], () => 2) },
    nodes: [{ op: 'ScatterElements', name: 'bomb', inputs: ['x', 'i', 'u'], outputs: ['y'] }],
  })).run({ x: { shape: [1], data: [1] } }), /ScatterElements node 'bomb': index 5 is out of range for axis 0 of size 1/);
  onnxError(() => loadOnnx(oneNode('ScatterElements', [f([2], 'a'), f([2], 'b'), f([2], 'c')], {}, { reduction: 'max' }, 16)), /reduction 'max' is not supported at opset 16/);
  const range = (s: number, l: number, d: number) => () => loadOnnx(buildModel({
    opset: 13,
    inputs: [{ name: 's', dtype: 'float32', shape: [] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: { l: filled('float32', [], () => l), d: filled('float32', [], () => d) },
    nodes: [{ op: 'Range', name: 'bomb', inputs: ['s', 'l', 'd'], outputs: ['y'] }],
  })).run({ s: { shape: [], data: [s] } });
  onnxError(range(0, 5, 0), /Range node 'bomb': start 0, limit 5, delta 0 do not make a range/);
  onnxError(range(0, Infinity, 1), /do not make a range/);
  assert.deepEqual(Array.from(range(5, 0, 1)().y.data), []); // an empty range is legal
  const cos = loadOnnx(oneNode('ConstantOfShape', [{ name: 's', dtype: 'int64', shape: [2] }], {}));
  onnxError(() => cos.run({ s: { shape: [2], data: [2, -1] } }), /ConstantOfShape node 'bomb': shape \[2, -1\] has a negative or invalid dimension/);
});

test('Pad and Tile of an empty tensor along a huge axis do not walk that axis', () => {
  const bytes = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', shape: [0, 1] }],
    outputs: [{ name: 'p', dtype: 'float32' }, { name: 't', dtype: 'float32' }],
    initializers: { pads: i64t([0, 2e8, 0, 2e8]), reps: i64t([1, 2e8]) },
    nodes: [{ op: 'Pad', inputs: ['x', 'pads'], outputs: ['p'] }, { op: 'Tile', inputs: ['x', 'reps'], outputs: ['t'] }],
  });
  const { value, ms } = timed(() => loadOnnx(bytes).run({ x: { shape: [0, 1], data: [] } }));
  assert.ok(ms < 2000, `took ${Math.round(ms)} ms`);
  assert.deepEqual(value.p.shape, [0, 4e8 + 1]);
  assert.deepEqual(value.t.shape, [0, 2e8]);
});

// ---- the CLI's info commands go through the same bounded loader ----------------------------------

test('recur onnx info and recur import print a hostile file quickly, with its operators', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'recur-onnx-hostile-'));
  try {
    const fan = join(dir, 'fan.onnx');
    const bomb = join(dir, 'bomb.onnx');
    writeFileSync(fan, fanOutBytes);
    writeFileSync(bomb, broadcastBomb(16384));
    for (const [cmd, argv] of [[onnxCommand, ['info', fan]], [importCommand, [fan]], [onnxCommand, ['info', bomb]], [importCommand, [bomb]]] as const) {
      let out = '', err = '';
      const t0 = performance.now();
      const code = await cmd([...argv], { out: (s) => void (out += s), err: (s) => void (err += s) });
      const ms = performance.now() - t0;
      assert.equal(code, 0, err);
      assert.ok(ms < 5000, `${argv.join(' ')} took ${Math.round(ms)} ms`);
      assert.match(out, argv.at(-1) === fan ? new RegExp(`operators: Identity, Relu ×${FAN_OUT}`) : /operators: Add ×2/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
