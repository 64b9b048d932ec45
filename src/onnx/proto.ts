/**
 * ONNX protobuf messages: decode bytes into plain typed objects and encode them back, through
 * protobufjs and the schema in schema.ts (no hand-written wire code).
 *
 * Decoding is defensive: protobufjs checks every length prefix against the buffer, so a truncated
 * or corrupt file throws instead of reading past the end; we turn any such failure into an
 * `OnnxError` that says which message failed. Memory stays proportional to the input size (every
 * decoded element consumes at least one input byte). int64 fields come back as JS numbers (exact
 * up to 2^53; larger values, such as INT64_MAX used as "to the end" in Slice, are rounded, which
 * is harmless where they are clamped and rejected where they must be exact, e.g. dimensions).
 */
import protobuf from 'protobufjs';
import { ONNX_PROTO } from './schema.ts';

/** Every error raised by the ONNX reader, interpreter and writer. */
export class OnnxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxError';
  }
}

// ---- the decoded message shapes (snake_case field names, as in onnx.proto) ----------------------

export interface StringStringEntryProto { key?: string; value?: string }

export interface TensorProto {
  dims?: number[];
  data_type?: number;
  segment?: { begin?: number; end?: number };
  float_data?: number[];
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: number[];
  name?: string;
  doc_string?: string;
  raw_data?: Uint8Array;
  external_data?: StringStringEntryProto[];
  data_location?: number;
  double_data?: number[];
  uint64_data?: number[];
}

export interface TensorShapeProto {
  dim?: { dim_value?: number; dim_param?: string; denotation?: string }[];
}

export interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: TensorShapeProto };
  sequence_type?: { elem_type?: TypeProto };
  map_type?: { key_type?: number; value_type?: TypeProto };
  optional_type?: { elem_type?: TypeProto };
  denotation?: string;
}

export interface ValueInfoProto { name?: string; type?: TypeProto; doc_string?: string }

export interface AttributeProto {
  name?: string;
  ref_attr_name?: string;
  doc_string?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  tp?: TypeProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  type_protos?: TypeProto[];
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  overload?: string;
  attribute?: AttributeProto[];
  doc_string?: string;
}

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  doc_string?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
}

export interface OperatorSetIdProto { domain?: string; version?: number }

export interface ModelProto {
  ir_version?: number;
  opset_import?: OperatorSetIdProto[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph?: GraphProto;
  metadata_props?: StringStringEntryProto[];
}

/** AttributeProto.AttributeType values. */
export const AttrType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8,
  TENSORS: 9, GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
} as const;

/** TensorProto.DataType values. */
export const DataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8,
  BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
} as const;

// ---- codec ----------------------------------------------------------------------------------------

let root: protobuf.Root | null = null;

function type(name: string): protobuf.Type {
  if (!root) root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
  return root.lookupType(`onnx.${name}`);
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, arrays: true, defaults: false };

function decode<T>(name: string, bytes: Uint8Array, what: string): T {
  if (!(bytes instanceof Uint8Array)) throw new OnnxError(`${what}: expected bytes (a Uint8Array), got ${typeof bytes}`);
  try {
    const t = type(name);
    const msg = t.decode(bytes);
    return t.toObject(msg, TO_OBJECT) as T;
  } catch (e) {
    if (e instanceof OnnxError) throw e;
    const reason = e instanceof RangeError && /call stack/i.test(e.message) ? 'messages nested too deeply' : (e as Error).message;
    throw new OnnxError(`${what}: not a valid ONNX ${name} (${reason}); the file is truncated, corrupt or not ONNX`);
  }
}

function encode(name: string, obj: object): Uint8Array {
  const t = type(name);
  const err = t.verify(obj);
  if (err) throw new OnnxError(`encoding ${name}: ${err}`);
  const out = t.encode(t.fromObject(obj)).finish();
  // In Node.js protobufjs returns a pooled Buffer, whose slice() is a view; hand out a plain copy.
  return Object.getPrototypeOf(out) === Uint8Array.prototype ? out : new Uint8Array(out);
}

export function decodeModelProto(bytes: Uint8Array): ModelProto {
  return decode<ModelProto>('ModelProto', bytes, 'ONNX model');
}

export function encodeModelProto(m: ModelProto): Uint8Array {
  return encode('ModelProto', m);
}

export function decodeTensorProto(bytes: Uint8Array, what = 'ONNX tensor'): TensorProto {
  return decode<TensorProto>('TensorProto', bytes, what);
}

export function encodeTensorProto(t: TensorProto): Uint8Array {
  return encode('TensorProto', t);
}
