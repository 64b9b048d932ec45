/** Shape arithmetic shared by tensors and backends (no imports, so any module can use it). */

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Row-major strides (in elements) of a contiguous tensor of this shape. */
export function shapeStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

/** A non-negative safe integer: a dimension, a count, an offset read from a file. */
export function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** An array of non-negative safe integers: a shape read from a file or a JSON config. */
export function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isCount);
}

/** An array of numbers (any: NaN and ±Infinity too; a caller that needs finite ones checks that). */
export function isNumberArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number');
}

/**
 * out[k] = src[offset + Σ idx_i · strides_i] for the k-th multi-index idx of outShape (row-major),
 * k < n (default: all of out): a transpose, slice or broadcast read as one odometer walk, no index
 * division. The JS backend's permute and the ONNX runtime's Transpose, Slice and Expand share it.
 */
export function stridedCopy(src: ArrayLike<number>, offset: number, strides: readonly number[], outShape: readonly number[], out: { [i: number]: number; length: number }, n = out.length): void {
  if (n === 0) return;
  const idx = new Array<number>(outShape.length).fill(0);
  let pos = offset;
  for (let k = 0; k < n; k++) {
    out[k] = src[pos];
    pos += odometerStep(idx, outShape, strides);
  }
}

/**
 * One step of a row-major odometer: advances the multi-index idx over `shape` by one (last axis
 * fastest, carrying into the ones before) and returns how far a position with these strides
 * (0 on a broadcast axis) moves with it. Integer arithmetic, so the walk never drifts.
 */
export function odometerStep(idx: number[], shape: readonly number[], strides: readonly number[]): number {
  let move = 0;
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a]++;
    move += strides[a];
    if (idx[a] < shape[a]) break;
    move -= strides[a] * shape[a];
    idx[a] = 0;
  }
  return move;
}
