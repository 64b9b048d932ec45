/**
 * ONNX: `decodeModelProto` (the protobuf decoder alone) and `loadOnnx` (decode, check, compile,
 * fold constants). Seeds: the committed ONNX conformance fixtures (test/fixtures/onnx/*\/model.onnx)
 * and small graphs built here with the builder (elementwise ops, Gemm, Reshape of an initializer,
 * a Constant node — the paths constant folding and shape checks take). Mutations: byte-level (varint
 * lengths and field tags are what bit flips and u32/u64 edits break) and structure-aware (the
 * ModelProto decoded, a field edited, re-encoded).
 */
import fc from 'fast-check';
import { join } from 'node:path';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { loadOnnx } from '../../src/onnx/model.ts';
import { decodeModelProto, encodeModelProto, OnnxError, type ModelProto } from '../../src/onnx/proto.ts';
import { buildModel } from '../../src/onnx/builder.ts';
import { LimitError } from '../../src/io/limits.ts';
import { byteMutations, type Harness } from './harness.ts';
import { FIXTURES_DIR } from './corpus.ts';

function built(): Uint8Array[] {
  const f32 = (shape: number[], data: number[]) => ({ dtype: 'float32' as const, shape, data: Float32Array.from(data) });
  const i64 = (shape: number[], data: number[]) => ({ dtype: 'int64' as const, shape, data: Float64Array.from(data) });
  return [
    buildModel({
      inputs: [{ name: 'X', dtype: 'float32', shape: ['B', 3] }],
      outputs: [{ name: 'Y', dtype: 'float32' }],
      initializers: { W: f32([2, 3], [1, 2, 3, 4, 5, 6]), C: f32([2], [0.5, -0.5]) },
      nodes: [
        { op: 'Gemm', inputs: ['X', 'W', 'C'], outputs: ['G'], attrs: { transB: 1 } },
        { op: 'Tanh', inputs: ['G'], outputs: ['Y'] },
      ],
    }),
    buildModel({
      inputs: [{ name: 'X', dtype: 'float32', shape: [2, 3] }],
      outputs: [{ name: 'Y', dtype: 'float32' }],
      initializers: { S: i64([2], [3, 2]), A: f32([6], [1, 2, 3, 4, 5, 6]) },
      nodes: [
        { op: 'Reshape', inputs: ['A', 'S'], outputs: ['R'] },
        { op: 'Constant', inputs: [], outputs: ['K'], attrs: { value_float: { float: 2 } } },
        { op: 'Mul', inputs: ['R', 'K'], outputs: ['M'] },
        { op: 'Transpose', inputs: ['M'], outputs: ['T'], attrs: { perm: [1, 0] } },
        { op: 'Add', inputs: ['X', 'T'], outputs: ['Y'] },
      ],
    }),
    buildModel({
      inputs: [{ name: 'X', dtype: 'float32', shape: [4, 1, 2] }],
      outputs: [{ name: 'Y_h', dtype: 'float32' }],
      initializers: { W: f32([1, 3, 2], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), R: f32([1, 3, 3], [0.1, 0, 0, 0, 0.1, 0, 0, 0, 0.1]) },
      nodes: [{ op: 'RNN', inputs: ['X', 'W', 'R'], outputs: ['', 'Y_h'], attrs: { hidden_size: 3 } }],
    }),
  ];
}

function fixtures(): Uint8Array[] {
  const dir = join(FIXTURES_DIR, 'onnx');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .filter((d) => existsSync(join(dir, d, 'model.onnx')))
    .map((d) => new Uint8Array(readFileSync(join(dir, d, 'model.onnx'))));
}

let cache: Uint8Array[] | undefined;
const all = (): Uint8Array[] => (cache ??= [...built(), ...fixtures()]);

const HUGE = [0, -1, 1, 2 ** 31 - 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER];

/** Decode, edit one field of the graph (dims, attribute ints, node inputs), re-encode. */
function protoMutations(): fc.Arbitrary<Uint8Array> {
  const protos = all().map((b) => decodeModelProto(b));
  return fc.tuple(fc.nat(protos.length - 1), fc.nat(), fc.constantFrom(...HUGE), fc.constantFrom('dim', 'attr', 'input', 'dup-node', 'opset', 'init-dims')).map(([i, at, v, what]) => {
    const m = structuredClone(protos[i]) as ModelProto;
    const g = m.graph ?? {};
    const nodes = g.node ?? [];
    if (what === 'dim') {
      const dims = [...(g.input ?? []), ...(g.output ?? [])].flatMap((x) => x.type?.tensor_type?.shape?.dim ?? []);
      if (dims.length) {
        const d = dims[at % dims.length];
        delete d.dim_param; // dim_value and dim_param are one protobuf oneof
        d.dim_value = v;
      }
    } else if (what === 'attr') {
      const attrs = nodes.flatMap((n) => n.attribute ?? []);
      if (attrs.length) {
        const a = attrs[at % attrs.length];
        if (a.ints?.length) a.ints[at % a.ints.length] = v;
        else a.i = v;
      }
    } else if (what === 'input') {
      if (nodes.length) {
        const n = nodes[at % nodes.length];
        n.input = [...(n.input ?? []), ...(n.output ?? [])];
      }
    } else if (what === 'dup-node') {
      if (nodes.length) for (let k = 0; k < (at % 50) + 1; k++) nodes.push(structuredClone(nodes[at % nodes.length]));
    } else if (what === 'opset') {
      for (const o of m.opset_import ?? []) o.version = v;
    } else {
      const inits = g.initializer ?? [];
      if (inits.length) {
        const t = inits[at % inits.length];
        if (t.dims?.length) t.dims[at % t.dims.length] = v;
      }
    }
    try {
      return encodeModelProto(m);
    } catch {
      return all()[i]; // an edit the encoder refuses: the seed itself
    }
  });
}

const inputs = (): fc.Arbitrary<Uint8Array> => fc.oneof({ arbitrary: byteMutations(all()), weight: 3 }, { arbitrary: protoMutations(), weight: 1 });

export const harnesses: Harness[] = [
  {
    name: 'onnx/decode',
    format: 'onnx-proto',
    arbitrary: () => byteMutations(all()),
    run: (b) => void decodeModelProto(b),
    allowed: [OnnxError, LimitError],
  },
  {
    name: 'onnx/load',
    format: 'onnx',
    arbitrary: inputs,
    run: (b) => void loadOnnx(b),
    allowed: [OnnxError, LimitError],
  },
];
