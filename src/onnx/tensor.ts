/**
 * Tensors at the ONNX boundary: `OnnxTensor` (what `OnnxModel.run` takes and returns) and the
 * conversion to and from `TensorProto`.
 *
 * Element types: float32 and float64 (computed on a recur backend), and the integer/bool types
 * (int64, int32, int16, int8, uint8, uint16, uint32, uint64, bool), which stay on the host as
 * Float64Arrays holding the integer values — they are indices, lengths and shapes, not math. int64
 * values beyond ±2^53 are rounded (ONNX uses INT64_MAX as "to the end", which is then clamped).
 * float16, bfloat16, strings and complex numbers are rejected by name.
 *
 * A TensorProto's declared dimensions are checked against the bytes (or repeated values) it
 * actually holds BEFORE anything is allocated, and against the `tensorElements` limit (a
 * `LimitError`), so a hostile file cannot make the reader allocate more than it could have sent.
 */
import { DEFAULT_LIMITS, checkLimit, type Limits } from '../io/limits.ts';
import { DataType, OnnxError, type TensorProto } from './proto.ts';

export type FloatDType = 'float32' | 'float64';
export type IntDType = 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'bool';
export type OnnxDType = FloatDType | IntDType;

/** A tensor handed to or returned by `OnnxModel.run`: row-major values and a shape. */
export interface OnnxTensor {
  dtype: OnnxDType;
  shape: number[];
  /** float32 → Float32Array, float64 → Float64Array, integer and bool types → Float64Array of integer values. */
  data: Float32Array | Float64Array;
}

/**
 * Default cap on the elements of any one tensor the reader or interpreter creates (2^28 ≈ 268M).
 * Kept for callers of the old `maxElements` option; the value lives in DEFAULT_LIMITS.tensorElements.
 */
export const DEFAULT_MAX_ELEMENTS = DEFAULT_LIMITS.tensorElements;

interface TypeInfo { dtype: OnnxDType; bytes: number }

const TYPES: Partial<Record<number, TypeInfo>> = {
  [DataType.FLOAT]: { dtype: 'float32', bytes: 4 },
  [DataType.DOUBLE]: { dtype: 'float64', bytes: 8 },
  [DataType.INT64]: { dtype: 'int64', bytes: 8 },
  [DataType.INT32]: { dtype: 'int32', bytes: 4 },
  [DataType.INT16]: { dtype: 'int16', bytes: 2 },
  [DataType.INT8]: { dtype: 'int8', bytes: 1 },
  [DataType.UINT8]: { dtype: 'uint8', bytes: 1 },
  [DataType.UINT16]: { dtype: 'uint16', bytes: 2 },
  [DataType.UINT32]: { dtype: 'uint32', bytes: 4 },
  [DataType.UINT64]: { dtype: 'uint64', bytes: 8 },
  [DataType.BOOL]: { dtype: 'bool', bytes: 1 },
};

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k]));

/** The ONNX DataType code of a dtype. */
export function dataTypeCode(dtype: OnnxDType): number {
  for (const [code, info] of Object.entries(TYPES)) if (info!.dtype === dtype) return Number(code);
  throw new OnnxError(`unknown dtype '${dtype}'`);
}

/** The recur/ONNX dtype for an ONNX DataType code, or an error naming the unsupported type. */
export function dtypeOfCode(code: number | undefined, what: string): OnnxDType {
  const info = code === undefined ? undefined : TYPES[code];
  if (!info) {
    const name = code === undefined ? 'UNDEFINED' : TYPE_NAMES[code] ?? `code ${code}`;
    throw new OnnxError(`${what}: element type ${name} is not supported (supported: float, double, int64, int32, int16, int8, uint8, uint16, uint32, uint64, bool)`);
  }
  return info.dtype;
}

export function isFloatDType(d: OnnxDType): d is FloatDType {
  return d === 'float32' || d === 'float64';
}

/**
 * Product of dims with overflow and sanity checks (OnnxError), and the `tensorElements` limit
 * (LimitError); names `what` in errors.
 */
export function checkedSize(dims: readonly number[], what: string, limits: Readonly<Limits> = DEFAULT_LIMITS): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new OnnxError(`${what}: dimension ${d} in ${dimsStr(dims)} is not a non-negative integer`);
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) throw new OnnxError(`${what}: shape ${dimsStr(dims)} has too many elements`);
  }
  checkLimit(limits, 'tensorElements', n, `${what}: elements of shape ${dimsStr(dims)}`);
  return n;
}

/**
 * A shape for an error message. A file can declare a tensor of rank 10^5; the message shows the
 * first dimensions and the rank rather than a megabyte of text.
 */
export function dimsStr(dims: readonly number[]): string {
  const MAX_SHOWN = 16;
  if (dims.length <= MAX_SHOWN) return `[${dims.join(', ')}]`;
  return `[${dims.slice(0, MAX_SHOWN).join(', ')}, … (rank ${dims.length})]`;
}

/**
 * Decode a TensorProto. Checks external data, segments, dims and the amount of data before
 * allocating; `what` names the tensor in errors.
 */
export function tensorFromProto(tp: TensorProto, what: string, limits: Readonly<Limits> = DEFAULT_LIMITS): OnnxTensor {
  const label = tp.name ? `${what} '${tp.name}'` : what;
  if (tp.data_location === 1 || (tp.external_data && tp.external_data.length > 0)) {
    throw new OnnxError(`${label}: external data (weights in a separate file) is not supported; save the model with its weights inside`);
  }
  if (tp.segment) throw new OnnxError(`${label}: segmented tensors are not supported`);
  const dtype = dtypeOfCode(tp.data_type, label);
  const info = TYPES[tp.data_type!]!;
  const dims = tp.dims ?? [];
  const n = checkedSize(dims, label, limits);
  const shape = [...dims];
  const out = dtype === 'float32' ? new Float32Array(0) : new Float64Array(0);
  const raw = tp.raw_data;
  if (raw && raw.length > 0) {
    if (raw.length !== n * info.bytes) {
      throw new OnnxError(`${label}: shape ${dimsStr(dims)} of ${dtype} needs ${n * info.bytes} bytes of raw data, the file holds ${raw.length}`);
    }
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const data = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) {
      switch (dtype) {
        case 'float32': data[i] = v.getFloat32(4 * i, true); break;
        case 'float64': data[i] = v.getFloat64(8 * i, true); break;
        case 'int64': data[i] = Number(v.getBigInt64(8 * i, true)); break;
        case 'uint64': data[i] = Number(v.getBigUint64(8 * i, true)); break;
        case 'int32': data[i] = v.getInt32(4 * i, true); break;
        case 'uint32': data[i] = v.getUint32(4 * i, true); break;
        case 'int16': data[i] = v.getInt16(2 * i, true); break;
        case 'uint16': data[i] = v.getUint16(2 * i, true); break;
        case 'int8': data[i] = v.getInt8(i); break;
        case 'uint8': data[i] = v.getUint8(i); break;
        case 'bool': data[i] = v.getUint8(i) !== 0 ? 1 : 0; break;
      }
    }
    return { dtype, shape, data };
  }
  // the repeated field that holds this dtype's values when there is no raw_data
  const field: 'float_data' | 'double_data' | 'int64_data' | 'uint64_data' | 'int32_data' =
    dtype === 'float32' ? 'float_data'
      : dtype === 'float64' ? 'double_data'
        : dtype === 'int64' ? 'int64_data'
          : dtype === 'uint32' || dtype === 'uint64' ? 'uint64_data'
            : 'int32_data';
  const values = tp[field] ?? [];
  if (values.length !== n) {
    throw new OnnxError(`${label}: shape ${dimsStr(dims)} needs ${n} values, the file holds ${values.length} (in ${field}${raw ? ' and no raw_data' : ''})`);
  }
  if (n === 0) return { dtype, shape, data: out };
  const data = dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
  if (dtype === 'bool') for (let i = 0; i < n; i++) data[i] = data[i] !== 0 ? 1 : 0;
  return { dtype, shape, data };
}

/** Encode a tensor as a TensorProto with little-endian raw_data. */
export function tensorToProto(t: OnnxTensor, name?: string): TensorProto {
  const code = dataTypeCode(t.dtype);
  const info = TYPES[code]!;
  const n = t.data.length;
  const raw = new Uint8Array(n * info.bytes);
  const v = new DataView(raw.buffer);
  for (let i = 0; i < n; i++) {
    const x = t.data[i];
    switch (t.dtype) {
      case 'float32': v.setFloat32(4 * i, x, true); break;
      case 'float64': v.setFloat64(8 * i, x, true); break;
      case 'int64': v.setBigInt64(8 * i, BigInt(Math.trunc(x)), true); break;
      case 'uint64': v.setBigUint64(8 * i, BigInt(Math.trunc(x)), true); break;
      case 'int32': v.setInt32(4 * i, x, true); break;
      case 'uint32': v.setUint32(4 * i, x, true); break;
      case 'int16': v.setInt16(2 * i, x, true); break;
      case 'uint16': v.setUint16(2 * i, x, true); break;
      case 'int8': v.setInt8(i, x); break;
      case 'uint8': v.setUint8(i, x); break;
      case 'bool': v.setUint8(i, x ? 1 : 0); break;
    }
  }
  const tp: TensorProto = { dims: [...t.shape], data_type: code, raw_data: raw };
  if (name !== undefined) tp.name = name;
  return tp;
}
