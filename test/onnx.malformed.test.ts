/**
 * Malformed and hostile ONNX input: every failure is an OnnxError with a message that says what
 * is wrong (and which node, where there is one), or a LimitError when the input asks for more than
 * a resource limit allows — never a crash, a hang, a wrong answer, or an allocation sized by a
 * number the file declares but does not back with bytes. (Graphs that are valid but costly are in
 * onnx.hostile.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/index.ts';
import { CharLM } from '../src/models/charlm.ts';
import { exportOnnx, charLMExportSpec } from '../src/onnx/export.ts';
import { loadOnnx, type OnnxInput } from '../src/onnx/model.ts';
import { OnnxError, encodeModelProto, type ModelProto, type TensorProto } from '../src/onnx/proto.ts';
import { buildModel, modelProto } from '../src/onnx/builder.ts';
import { LimitError } from '../src/io/limits.ts';

const lm = new CharLM({ vocabSize: 10, embeddingDim: 4, hiddenSize: 5, numLayers: 2, rng: new Rng(2) });
const GOOD = exportOnnx(lm, charLMExportSpec());
const INPUTS: Record<string, OnnxInput> = {
  input: { shape: [3, 2], data: [1, 2, 3, 4, 5, 6] },
  h0: { shape: [2, 2, 5], data: new Array(20).fill(0.1) },
  c0: { shape: [2, 2, 5], data: new Array(20).fill(-0.1) },
};

function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OnnxError, `expected OnnxError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.match(e.message, re);
    return true;
  });
}

/** A LimitError for `key` whose message matches `re`. */
function overLimit(fn: () => unknown, key: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LimitError, `expected LimitError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.equal(e.key, key);
    assert.match(e.message, re);
    return true;
  });
}

/** Load and run; return what happened. Anything but OnnxError, LimitError or success fails the test. */
function attempt(bytes: Uint8Array): 'load-error' | 'run-error' | 'ran' {
  let m;
  try {
    m = loadOnnx(bytes);
  } catch (e) {
    assert.ok(e instanceof OnnxError || e instanceof LimitError, `load threw ${(e as Error).constructor.name}: ${(e as Error).message}`);
    return 'load-error';
  }
  try {
    m.run(INPUTS);
    return 'ran';
  } catch (e) {
    assert.ok(e instanceof OnnxError || e instanceof LimitError, `run threw ${(e as Error).constructor.name}: ${(e as Error).message}`);
    return 'run-error';
  }
}

test('the unmodified model loads and runs', () => {
  assert.equal(attempt(GOOD), 'ran');
  assert.equal(Object.getPrototypeOf(GOOD), Uint8Array.prototype, 'exportOnnx returns a plain Uint8Array');
});

test('a model truncated at every possible length is rejected with a clear error', () => {
  const t0 = Date.now();
  for (let n = 0; n < GOOD.length; n++) assert.equal(attempt(GOOD.subarray(0, n)), 'load-error', `prefix of ${n} bytes`);
  assert.ok(Date.now() - t0 < 60_000);
  rejects(() => loadOnnx(GOOD.subarray(0, 0)), /empty/);
  rejects(() => loadOnnx(GOOD.subarray(0, GOOD.length - 7)), /not a valid ONNX ModelProto .*truncated, corrupt or not ONNX/);
});

test('randomly corrupted models either run or fail with an OnnxError (2000 corruptions)', () => {
  const rng = new Rng(1);
  const seen = { 'load-error': 0, 'run-error': 0, ran: 0 };
  for (let k = 0; k < 2000; k++) {
    const b = GOOD.slice();
    const flips = 1 + Math.floor(rng.random() * 4);
    for (let j = 0; j < flips; j++) b[Math.floor(rng.random() * b.length)] = Math.floor(rng.random() * 256);
    seen[attempt(b)]++;
  }
  assert.ok(seen['load-error'] > 0 && seen.ran > 0);
});

test('bytes that are not ONNX at all are rejected', () => {
  rejects(() => loadOnnx(new TextEncoder().encode('{"not": "onnx"}')), /not a valid ONNX ModelProto/);
  const rng = new Rng(5);
  for (let k = 0; k < 300; k++) {
    const b = Uint8Array.from({ length: 1 + Math.floor(rng.random() * 200) }, () => Math.floor(rng.random() * 256));
    assert.equal(attempt(b), 'load-error');
  }
  rejects(() => loadOnnx('model.onnx' as unknown as Uint8Array), /expected bytes/);
});

test('deeply nested messages are rejected without exhausting the stack', () => {
  const varint = (n: number): number[] => {
    const o: number[] = [];
    while (n > 127) {
      o.push((n & 127) | 128);
      n = Math.floor(n / 128);
    }
    o.push(n);
    return o;
  };
  // graph.node → node.attribute → attribute.g → graph.node → … 30000 times
  const fields: number[] = [];
  for (let k = 0; k < 30000; k++) fields.push(1, 5, 6);
  const sizes = new Array<number>(fields.length + 1).fill(0);
  for (let i = fields.length - 1; i >= 0; i--) sizes[i] = 1 + varint(sizes[i + 1]).length + sizes[i + 1];
  const out: number[] = [0x08, 7, 0x42, 2, 0x10, 14, 0x3a, ...varint(sizes[0])];
  for (let i = 0; i < fields.length; i++) out.push((fields[i] << 3) | 2, ...varint(sizes[i + 1]));
  rejects(() => loadOnnx(Uint8Array.from(out)), /not a valid ONNX ModelProto/);
});

// ---- hostile tensor sizes: checked against the bytes present, before allocating ------------------

function withInitializer(tp: TensorProto): Uint8Array {
  const m = modelProto({
    inputs: [{ name: 'x', dtype: 'float32', shape: [2] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
  });
  m.graph!.initializer = [{ name: 'w', ...tp }];
  return encodeModelProto(m);
}

test('declared tensor sizes far beyond the bytes present are rejected before allocation', () => {
  const t0 = Date.now();
  rejects(() => loadOnnx(withInitializer({ dims: [1e6, 1e6, 1e6], data_type: 1, raw_data: new Uint8Array(4) })), /initializer 'w': shape \[1000000, 1000000, 1000000\] has too many elements/);
  overLimit(() => loadOnnx(withInitializer({ dims: [2 ** 26, 2 ** 26], data_type: 1, raw_data: new Uint8Array(4) })), 'tensorElements', /initializer 'w': elements of shape \[67108864, 67108864\]: 4503599627370496 is over the limit of 268435456/);
  rejects(() => loadOnnx(withInitializer({ dims: [100000, 1000], data_type: 1, raw_data: new Uint8Array(8) })), /needs 400000000 bytes of raw data, the file holds 8/);
  rejects(() => loadOnnx(withInitializer({ dims: [1000000], data_type: 1, float_data: [1, 2] })), /needs 1000000 values, the file holds 2/);
  rejects(() => loadOnnx(withInitializer({ dims: [3, 4], data_type: 7, raw_data: new Uint8Array(95) })), /needs 96 bytes of raw data, the file holds 95/);
  rejects(() => loadOnnx(withInitializer({ dims: [-1], data_type: 1, float_data: [1] })), /dimension -1 .* is not a non-negative integer/);
  rejects(() => loadOnnx(withInitializer({ dims: [4], data_type: 1 })), /needs 4 values, the file holds 0/);
  assert.ok(Date.now() - t0 < 2000, 'hostile sizes must be rejected without work proportional to the declared size');
  // a zero-sized tensor is legal
  assert.doesNotThrow(() => loadOnnx(withInitializer({ dims: [0, 1e9], data_type: 1 })));
});

test('a custom element cap applies to initializers, inputs and intermediate tensors', () => {
  overLimit(() => loadOnnx(GOOD, { limits: { tensorElements: 10 } }), 'tensorElements', /over the limit of 10 \(tensorElements\)/);
  const m = loadOnnx(GOOD, { limits: { tensorElements: 200 } });
  overLimit(() => m.run({ ...INPUTS, input: { shape: [100, 2], data: new Array(200).fill(1) } }), 'tensorElements', /Gather node .*over the limit of 200/);
  overLimit(() => m.run({ ...INPUTS, input: { shape: [300], data: new Array(300).fill(1) } }), 'tensorElements', /run: input 'input': elements of shape \[300\]: 300 is over the limit of 200/);
  // the older maxElements option still sets the same limit
  overLimit(() => loadOnnx(GOOD, { maxElements: 10 }), 'tensorElements', /over the limit of 10/);
});

test('unsupported tensor types and external data are named', () => {
  rejects(() => loadOnnx(withInitializer({ dims: [1], data_type: 8, string_data: [new Uint8Array(1)] })), /element type STRING is not supported/);
  rejects(() => loadOnnx(withInitializer({ dims: [1], data_type: 10, int32_data: [0] })), /element type FLOAT16 is not supported/);
  rejects(() => loadOnnx(withInitializer({ dims: [1], data_type: 1, data_location: 1, external_data: [{ key: 'location', value: 'weights.bin' }] })), /external data .* not supported/);
  rejects(() => loadOnnx(withInitializer({ dims: [1], data_type: 77, raw_data: new Uint8Array(4) })), /element type code 77 is not supported/);
});

// ---- inconsistent weights ----------------------------------------------------------------------------

function lstmModel(shapes: { W?: number[]; R?: number[]; B?: number[]; P?: number[] }, hidden = 3): Uint8Array {
  const t = (shape: number[]) => ({ dtype: 'float32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1) });
  const inits: Record<string, ReturnType<typeof t>> = { W: t(shapes.W ?? [1, 12, 2]), R: t(shapes.R ?? [1, 12, 3]) };
  if (shapes.B) inits.B = t(shapes.B);
  if (shapes.P) inits.P = t(shapes.P);
  return buildModel({
    inputs: [{ name: 'X', dtype: 'float32', shape: [4, 1, 2] }],
    outputs: [{ name: 'Y_h', dtype: 'float32' }],
    initializers: inits,
    nodes: [{ op: 'LSTM', name: 'enc', inputs: ['X', 'W', 'R', shapes.B ? 'B' : '', '', '', '', shapes.P ? 'P' : ''], outputs: ['', 'Y_h'], attrs: { hidden_size: hidden } }],
  });
}

test('inconsistent recurrent weight shapes are errors naming the node and the tensor', () => {
  const x = { X: { shape: [4, 1, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] } };
  assert.equal(loadOnnx(lstmModel({ B: [1, 24], P: [1, 9] })).run(x).Y_h.shape.join(), '1,1,3');
  rejects(() => loadOnnx(lstmModel({ W: [1, 12, 3] })).run(x), /LSTM node 'enc': inconsistent shapes: W must be \[1, 12, 2\]/);
  rejects(() => loadOnnx(lstmModel({ W: [1, 9, 2] })).run(x), /W must be \[1, 12, 2\]/);
  rejects(() => loadOnnx(lstmModel({ R: [1, 12, 4] })).run(x), /hidden_size = 3 but R has shape \[1, 12, 4\]/);
  rejects(() => loadOnnx(lstmModel({ B: [1, 12] })).run(x), /B must be \[1, 24\]/);
  rejects(() => loadOnnx(lstmModel({ P: [1, 6] })).run(x), /P must be \[1, 9\]/);
  rejects(() => loadOnnx(lstmModel({ W: [12, 2] })).run(x), /W must have rank 3/);
  rejects(() => loadOnnx(lstmModel({}, 0)), /hidden_size must be positive/);
});

// ---- graph structure ---------------------------------------------------------------------------------

function tiny(mutate: (m: ModelProto) => void): Uint8Array {
  const m = modelProto({
    inputs: [{ name: 'x', dtype: 'float32', shape: [2] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    nodes: [{ op: 'Tanh', name: 'act', inputs: ['x'], outputs: ['t'] }, { op: 'Relu', name: 'post', inputs: ['t'], outputs: ['y'] }],
  });
  mutate(m);
  return encodeModelProto(m);
}

test('unknown operators, domains and attributes are named with their node', () => {
  rejects(() => loadOnnx(tiny((m) => (m.graph!.node![1].op_type = 'FancyOp'))), /FancyOp node 'post': unsupported operator 'FancyOp' \(supported: .*LSTM/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.node![1].domain = 'com.microsoft'))), /Relu node 'post': operator domain 'com.microsoft' is not supported/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.node![0].attribute = [{ name: 'alpha', type: 1, f: 2 }]))), /Tanh node 'act': unsupported attribute 'alpha'/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.node![0].attribute = [{ name: '', type: 1, f: 2 }]))), /attribute has no name/);
  rejects(() => loadOnnx(tiny((m) => { m.graph!.node![1].name = ''; m.graph!.node![1].op_type = 'Nope'; })), /Nope node #1 \(output 'y'\): unsupported operator/);
});

test('opsets outside 7 … 24 and models without a default-domain opset are rejected', () => {
  rejects(() => loadOnnx(tiny((m) => (m.opset_import = [{ domain: '', version: 6 }]))), /opset 6 is not supported \(supported: 7 to 24\)/);
  rejects(() => loadOnnx(tiny((m) => (m.opset_import = [{ domain: '', version: 99 }]))), /opset 99 is not supported/);
  rejects(() => loadOnnx(tiny((m) => (m.opset_import = [{ domain: 'ai.onnx.ml', version: 3 }]))), /imports no opset of the default ONNX domain/);
  rejects(() => loadOnnx(tiny((m) => (m.ir_version = 2))), /IR version 2 is not supported/);
  rejects(() => loadOnnx(tiny((m) => delete m.graph)), /has no graph/);
});

test('broken wiring: undefined values, cycles, duplicate producers, missing outputs', () => {
  rejects(() => loadOnnx(tiny((m) => (m.graph!.node![1].input = ['nowhere']))), /Relu node 'post': input 'nowhere' is not a graph input, an initializer, or the output of any node/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.node![0].input = ['y']))), /cycle/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.node![1].output = ['t']))), /value 't' is produced more than once/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.output![0].name = 'z'))), /graph output 'z' is not produced by any node/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.input![0].type = { sequence_type: {} }))), /graph input 'x' is a sequence; only tensors are supported/);
  rejects(() => loadOnnx(tiny((m) => (m.graph!.output = []))), /no outputs/);
  // nodes out of order are sorted, not rejected
  const swapped = tiny((m) => m.graph!.node!.reverse());
  assert.deepEqual(Array.from(loadOnnx(swapped).run({ x: { shape: [2], data: [-1, 1] } }).y.data).map((v) => Math.round(v * 1e6) / 1e6), [0, 0.761594]);
});

test('run-time input problems are clear errors', () => {
  const m = loadOnnx(GOOD);
  rejects(() => m.run({ ...INPUTS, extra: { shape: [1], data: [1] } }), /unknown input 'extra'/);
  const { h0: _h0, ...noH0 } = INPUTS;
  rejects(() => m.run(noH0), /missing input 'h0' \(float32 \[2, B, 5\]\)/);
  rejects(() => m.run({ ...INPUTS, input: { shape: [3, 2], data: [1, 2, 3] } }), /3 values do not fill shape \[3, 2\]/);
  overLimit(() => m.run({ ...INPUTS, input: { shape: [1e5, 1e5], data: [1] } }), 'tensorElements', /run: input 'input': elements of shape \[100000, 100000\]/);
  rejects(() => m.run({ ...INPUTS, input: { shape: [3, 2, 1], data: [1, 2, 3, 4, 5, 6] } }), /rank 3, the model declares \[T, B\]/);
  rejects(() => m.run({ ...INPUTS, h0: { shape: [3, 2, 5], data: new Array(30).fill(0) } }), /does not match the declared \[2, B, 5\]/);
  rejects(() => m.run({ ...INPUTS, input: { shape: [3, 2], data: [1, 2, 3, 4, 5, 1.5] } }), /value 1.5 at position 5 is not an integer/);
  rejects(() => m.run({ ...INPUTS, input: { shape: [3, 2], data: [1, 2, 3, 4, 5, 10] } }), /Gather node .*index 10 is out of range for axis 0 of size 10/);
  rejects(() => m.run({ ...INPUTS, input: { shape: [3, 2], data: [1, 2, 3, 4, 5, 6], dtype: 'int32' } }), /dtype int32 given, the model declares int64/);
});
