/**
 * Element-wise ops with NumPy broadcasting (add, sub, mul, div), unary activations, and the
 * reductions sum and mean. Forward and backward side by side; a broadcast input's gradient is the
 * output gradient summed over the broadcast axes.
 */
import type { BinaryOp, UnaryOp } from '../../backend/interface.ts';
import { Tensor, shapeSize, type Shape } from '../../tensor/tensor.ts';
import { accumulateGrad, needsGrad, record } from '../tape.ts';
import { broadcastShapes, newLike, normAxis, padShape, sameBackendAndDType } from './util.ts';

/**
 * Sum g (shape outShape) down to `shape` (broadcast source) and accumulate into t.grad. `owned`:
 * g was made for this call alone and may be adopted as t.grad without a copy.
 */
function accumulateReduced(t: Tensor, g: Tensor, outShape: number[], owned: boolean): void {
  if (!t.requiresGrad) return;
  if (shapeSize(t.shape) === shapeSize(outShape)) {
    accumulateGrad(t, g.storage, owned);
    return;
  }
  const red = newLike(t);
  t.backend.reduceSum(g.storage, outShape, red.storage, padShape(t.shape, outShape.length));
  accumulateGrad(t, red.storage, true);
}

/** t.grad += (g op other), summed down to t's shape: the partial of a product or a quotient. */
function accumulateScaled(t: Tensor, g: Tensor, op: 'mul' | 'div', other: Tensor, otherShape: number[], outShape: number[]): void {
  if (!t.requiresGrad) return;
  const gt = newLike(g);
  t.backend.binary(op, g.storage, outShape, other.storage, otherShape, gt.storage, outShape);
  accumulateReduced(t, gt, outShape, true);
}

function scalarLike(a: Tensor, v: number): Tensor {
  const s = a.backend.alloc(1, a.dtype);
  a.backend.fill(s, v, 0, 1);
  return new Tensor(s, []);
}

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor | number): Tensor {
  const bt = typeof b === 'number' ? scalarLike(a, b) : b;
  sameBackendAndDType(op, a, bt);
  const shape = broadcastShapes(op, a.shape, bt.shape);
  const out = newLike(a, shape);
  const aS = padShape(a.shape, shape.length), bS = padShape(bt.shape, shape.length);
  a.backend.binary(op, a.storage, aS, bt.storage, bS, out.storage, shape);
  if (needsGrad(a, bt)) {
    record(op, [a, bt], [out], () => {
      const g = out.grad!;
      const be = a.backend;
      if (op === 'add') {
        accumulateReduced(a, g, shape, false);
        accumulateReduced(bt, g, shape, false);
      } else if (op === 'sub') {
        accumulateReduced(a, g, shape, false);
        if (bt.requiresGrad) {
          const ng = newLike(g);
          be.unary('neg', g.size, g.storage, ng.storage);
          accumulateReduced(bt, ng, shape, true);
        }
      } else if (op === 'mul') {
        // d(a·b) = g·b, g·a
        accumulateScaled(a, g, 'mul', bt, bS, shape);
        accumulateScaled(bt, g, 'mul', a, aS, shape);
      } else {
        // d(a/b) = g/b, −g·a/b² = −g·out/b
        accumulateScaled(a, g, 'div', bt, bS, shape);
        if (bt.requiresGrad) {
          const gb = newLike(g);
          be.binary('mul', g.storage, shape, out.storage, shape, gb.storage, shape);
          be.binary('div', gb.storage, shape, bt.storage, bS, gb.storage, shape);
          be.scale(gb.size, -1, gb.storage, 0);
          accumulateReduced(bt, gb, shape, true);
        }
      }
    });
  }
  return out;
}

export const add = (a: Tensor, b: Tensor | number): Tensor => binaryOp('add', a, b);
export const sub = (a: Tensor, b: Tensor | number): Tensor => binaryOp('sub', a, b);
export const mul = (a: Tensor, b: Tensor | number): Tensor => binaryOp('mul', a, b);
export const div = (a: Tensor, b: Tensor | number): Tensor => binaryOp('div', a, b);

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const out = newLike(x);
  x.backend.unary(op, x.size, x.storage, out.storage);
  if (needsGrad(x)) {
    record(op, [x], [out], () => {
      const dx = newLike(x);
      x.backend.unaryBackward(op, x.size, x.storage, out.storage, out.grad!.storage, dx.storage);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const square = (x: Tensor): Tensor => unaryOp('square', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
export const softplus = (x: Tensor): Tensor => unaryOp('softplus', x);

/**
 * Sum over `axis` (a number or list; all axes when omitted). keepDims keeps reduced axes as 1.
 */
export function sum(x: Tensor, axis?: number | number[], keepDims = false): Tensor {
  const rank = x.ndim;
  const axes = axis === undefined ? [...Array(rank).keys()] : (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis('sum', a, rank));
  const keptShape = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
  const outShape: Shape = keepDims ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  const out = newLike(x, outShape);
  x.backend.reduceSum(x.storage, x.shape, out.storage, keptShape);
  if (needsGrad(x)) {
    record('sum', [x], [out], () => {
      // d/dx Σ = broadcast g back over the reduced axes
      const dx = newLike(x);
      const zero = newLike(x, []);
      x.backend.binary('add', out.grad!.storage, keptShape, zero.storage, keptShape.map(() => 1), dx.storage, x.shape);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}

export function mean(x: Tensor, axis?: number | number[], keepDims = false): Tensor {
  const rank = x.ndim;
  const axes = axis === undefined ? [...Array(rank).keys()] : (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis('mean', a, rank));
  let n = 1;
  for (const a of new Set(axes)) n *= x.shape[a]; // duplicate axes (e.g. [0, -2] on rank 2) reduce once, as in sum
  return mul(sum(x, axes, keepDims), 1 / n);
}
