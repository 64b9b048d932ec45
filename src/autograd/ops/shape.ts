/**
 * Shape movement: reshape (a view of the same storage), permute/transpose, concat, slice.
 */
import { Tensor, checkShape, shapeSize, shapeStr, type Shape } from '../../tensor/tensor.ts';
import { accumulateGrad, needsGrad, record } from '../tape.ts';
import { newLike, normAxis, sameBackendAndDType } from './util.ts';

/** Same values, new shape (one dimension may be -1). Shares storage with x. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const inferred = s.indexOf(-1);
  if (inferred >= 0) {
    const rest = shapeSize(s.filter((_, i) => i !== inferred));
    if (rest === 0 || x.size % rest !== 0) throw new RangeError(`reshape: cannot infer -1 reshaping ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
    s[inferred] = x.size / rest;
  }
  checkShape(s, 'reshape target');
  if (shapeSize(s) !== x.size) throw new RangeError(`reshape: ${shapeStr(x.shape)} (${x.size} elements) cannot become ${shapeStr(shape)} (${shapeSize(s)} elements)`);
  const out = new Tensor(x.storage, s);
  if (needsGrad(x)) record('reshape', [x], [out], () => accumulateGrad(x, out.grad!.storage, false));
  return out;
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new RangeError(`permute: ${shapeStr(perm)} is not a permutation of the ${x.ndim} axes of ${shapeStr(x.shape)}`);
  }
  const outShape = perm.map((p) => x.shape[p]);
  const out = newLike(x, outShape);
  x.backend.permute(x.storage, x.shape, perm, out.storage);
  if (needsGrad(x)) {
    record('permute', [x], [out], () => {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      const dx = newLike(x);
      x.backend.permute(out.grad!.storage, outShape, inv, dx.storage);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}

/** Swap two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const r = x.ndim;
  const i = normAxis('transpose', a, r), j = normAxis('transpose', b, r);
  const perm = [...Array(r).keys()];
  perm[i] = j;
  perm[j] = i;
  return permute(x, perm);
}

/** Concatenate along `axis`; all other dimensions must agree. */
export function concat(xs: readonly Tensor[], axis = -1): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  // No argument-list spreads over xs: it can be 10^5 long (an ONNX Concat that lists one input
  // many times), past what fits on the stack as arguments.
  for (const t of xs) sameBackendAndDType('concat', xs[0], t);
  const first = xs[0];
  const ax = normAxis('concat', axis, first.ndim);
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== ax && s !== first.shape[i])) {
      throw new RangeError(`concat: shapes ${xs.map((u) => shapeStr(u.shape)).join(', ')} differ outside axis ${ax}`);
    }
  }
  const outShape = [...first.shape];
  outShape[ax] = xs.reduce((n, t) => n + t.shape[ax], 0);
  const out = newLike(first, outShape);
  let start = 0;
  const starts: number[] = [];
  for (const t of xs) {
    starts.push(start);
    first.backend.addIntoAxis(t.storage, t.shape, out.storage, outShape, ax, start);
    start += t.shape[ax];
  }
  if (xs.some((t) => needsGrad(t))) {
    record('concat', xs, [out], () => {
      xs.forEach((t, k) => {
        if (!t.requiresGrad) return;
        const dt = newLike(t);
        t.backend.sliceAxis(out.grad!.storage, outShape, ax, starts[k], t.shape[ax], dt.storage);
        accumulateGrad(t, dt.storage, true);
      });
    });
  }
  return out;
}

/** x[..., start:start+length, ...] along `axis`. */
export function slice(x: Tensor, axis: number, start: number, length: number): Tensor {
  const ax = normAxis('slice', axis, x.ndim);
  const dim = x.shape[ax];
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > dim) {
    throw new RangeError(`slice: [${start}, ${start + length}) is outside axis ${ax} of size ${dim} (shape ${shapeStr(x.shape)})`);
  }
  const outShape = [...x.shape];
  outShape[ax] = length;
  const out = newLike(x, outShape);
  x.backend.sliceAxis(x.storage, x.shape, ax, start, length, out.storage);
  if (needsGrad(x)) {
    record('slice', [x], [out], () => {
      const dx = newLike(x);
      x.backend.addIntoAxis(out.grad!.storage, outShape, dx.storage, x.shape, ax, start);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}

/** Split along `axis` into pieces of the given sizes. */
export function split(x: Tensor, sizes: readonly number[], axis = -1): Tensor[] {
  const ax = normAxis('split', axis, x.ndim);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== x.shape[ax]) throw new RangeError(`split: sizes [${sizes.join(', ')}] sum to ${total}, axis ${ax} has ${x.shape[ax]}`);
  let s = 0;
  return sizes.map((n) => {
    const t = slice(x, ax, s, n);
    s += n;
    return t;
  });
}

/** Stack equal-shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('stack: needs at least one tensor');
  const r = xs[0].ndim + 1;
  const ax = normAxis('stack', axis, r);
  return concat(xs.map((t) => reshape(t, [...t.shape.slice(0, ax), 1, ...t.shape.slice(ax)])), ax);
}
