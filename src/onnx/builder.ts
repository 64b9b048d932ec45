/**
 * A small builder for hand-made ONNX models (tests, fixtures, one-node experiments):
 *
 *   const bytes = buildModel({
 *     inputs: [{ name: 'X', dtype: 'float32', shape: ['T', 'B', 3] }],
 *     outputs: [{ name: 'Y_h', dtype: 'float32' }],
 *     initializers: { W: { dtype: 'float32', shape: [1, 4, 3], data } , … },
 *     nodes: [{ op: 'RNN', inputs: ['X', 'W', 'R'], outputs: ['', 'Y_h'], attrs: { hidden_size: 4, clip: { float: 2 } } }],
 *   });
 *
 * Attribute values: an integer → INT, another number → FLOAT, a string → STRING, a string array →
 * STRINGS, an integer array → INTS; `{ float }`, `{ floats }`, `{ ints }` force the type.
 */
import { AttrType, OnnxError, encodeModelProto, type AttributeProto, type ModelProto, type ValueInfoProto } from './proto.ts';
import { dataTypeCode, tensorToProto, type OnnxDType, type OnnxTensor } from './tensor.ts';

export type AttrValue = number | string | string[] | number[] | { float: number } | { floats: number[] } | { ints: number[] };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  name?: string;
  domain?: string;
}

export interface ValueSpec {
  name: string;
  dtype: OnnxDType;
  /** Dimensions (numbers or symbolic names); omitted = unknown shape. */
  shape?: (number | string)[];
}

export interface ModelSpec {
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers?: Record<string, OnnxTensor>;
  opset?: number;
  irVersion?: number;
  graphName?: string;
}

const isStrings = (v: readonly unknown[]): v is string[] => v.every((x) => typeof x === 'string');
const isInts = (v: readonly unknown[]): v is number[] => v.every((x) => typeof x === 'number' && Number.isInteger(x));

export function attribute(name: string, v: AttrValue): AttributeProto {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: enc(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AttrType.INT, i: v } : { name, type: AttrType.FLOAT, f: v };
  if (Array.isArray(v)) {
    if (isStrings(v)) return { name, type: AttrType.STRINGS, strings: v.map(enc) };
    if (isInts(v)) return { name, type: AttrType.INTS, ints: v };
    throw new OnnxError(`attribute '${name}': a list must hold only strings or only integers (use { floats } for floats)`);
  }
  if ('float' in v) return { name, type: AttrType.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: AttrType.FLOATS, floats: v.floats };
  if ('ints' in v) return { name, type: AttrType.INTS, ints: v.ints };
  throw new OnnxError(`attribute '${name}': unsupported value`);
}

function valueInfo(v: ValueSpec): ValueInfoProto {
  const tensorType = v.shape
    ? { elem_type: dataTypeCode(v.dtype), shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } }
    : { elem_type: dataTypeCode(v.dtype) };
  return { name: v.name, type: { tensor_type: tensorType } };
}

export function modelProto(spec: ModelSpec): ModelProto {
  return {
    ir_version: spec.irVersion ?? 7,
    opset_import: [{ domain: '', version: spec.opset ?? 14 }],
    producer_name: 'recur',
    graph: {
      name: spec.graphName ?? 'graph',
      node: spec.nodes.map((n, i) => ({
        op_type: n.op,
        name: n.name ?? `${n.op}_${i}`,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
        ...(n.domain !== undefined ? { domain: n.domain } : {}),
      })),
      initializer: Object.entries(spec.initializers ?? {}).map(([name, t]) => tensorToProto(t, name)),
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
    },
  };
}

/** Encode a model described by `spec` as ONNX bytes. */
export function buildModel(spec: ModelSpec): Uint8Array {
  return encodeModelProto(modelProto(spec));
}
