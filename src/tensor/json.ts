/**
 * Tensors as plain JSON data (shape, dtype, row-major values): exact for float32 and float64, used
 * by stream states, checkpoints' JSON parts and anything else that stores a tensor as text.
 */
import type { DType } from '../backend/interface.ts';
import { Tensor, shapeStr, tensor } from './tensor.ts';
import { isRecord } from '../util/options.ts';
import { isNumberArray, isShape } from '../util/shape.ts';

/** A tensor as JSON: shape, dtype and row-major values (exact for float32 and float64). */
export interface TensorJSON {
  shape: number[];
  dtype: DType;
  data: number[];
}

export function tensorToJSON(t: Tensor): TensorJSON {
  return { shape: [...t.shape], dtype: t.dtype, data: Array.from(t.toArray()) };
}

/** Rebuild a tensor from `tensorToJSON` output, validating it; `where` prefixes error messages. */
export function tensorFromJSON(json: unknown, where = 'tensorFromJSON'): Tensor {
  if (!isRecord(json)) throw new TypeError(`${where}: expected {shape, dtype, data}, got ${JSON.stringify(json)}`);
  const { shape, dtype, data } = json;
  if (!isShape(shape)) throw new TypeError(`${where}: 'shape' must be an array of non-negative integers`);
  if (dtype !== 'float32' && dtype !== 'float64') throw new TypeError(`${where}: 'dtype' must be 'float32' or 'float64', got ${JSON.stringify(dtype)}`);
  if (!isNumberArray(data)) throw new TypeError(`${where}: 'data' must be an array of numbers`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new RangeError(`${where}: ${data.length} values do not fill shape ${shapeStr(shape)}`);
  return tensor(data, shape, { dtype });
}
