/**
 * The ONNX operators whose float math runs on the recur backend through recur's ops: element-wise
 * arithmetic and activations, MatMul and Gemm, Softmax/LogSoftmax, ReduceSum/ReduceMean.
 */
import { Tensor, shapeStr, zeros } from '../../tensor/tensor.ts';
import { add, div, mean, mul, sub, sum } from '../../autograd/ops/elementwise.ts';
import { linear, matmul } from '../../autograd/ops/linalg.ts';
import { logSoftmax, softmax } from '../../autograd/ops/nn.ts';
import { permute, reshape } from '../../autograd/ops/shape.ts';
import { HostInts, bytesPerElement, describeValue, floatInput, normAxisOf, type NodeContext } from '../runtime.ts';
import { shapeSize } from '../../util/shape.ts';
import { broadcastShape, broadcastTo, intList, needInput, type OpCompiler } from './common.ts';

// ---- element-wise ---------------------------------------------------------------------------------

export function binary(kind: 'Add' | 'Sub' | 'Mul' | 'Div'): OpCompiler {
  return (ctx) => {
    ctx.arity(2, 2);
    ctx.attrs.done();
    const f = { Add: add, Sub: sub, Mul: mul, Div: div }[kind];
    return ([a0, b0]) => {
      const a = needInput(ctx, a0, 0), b = needInput(ctx, b0, 1);
      if (a instanceof Tensor && b instanceof Tensor) {
        if (a.dtype !== b.dtype) throw ctx.error(`inputs mix ${a.dtype} and ${b.dtype}`);
        const shape = broadcastShape(ctx, a.shape, b.shape);
        ctx.checkElements(shape, 'output', bytesPerElement(a.dtype));
        return [f(a, b)];
      }
      if (a instanceof HostInts && b instanceof HostInts) {
        if (a.dtype !== b.dtype) throw ctx.error(`inputs mix ${a.dtype} and ${b.dtype}`);
        const shape = broadcastShape(ctx, a.shape, b.shape);
        ctx.checkElements(shape, 'output', 16); // x (the result) and the broadcast y, 8 bytes each
        const n = shapeSize(shape);
        const x = new Float64Array(n), y = new Float64Array(n);
        broadcastTo(a.data, a.shape, shape, x);
        broadcastTo(b.data, b.shape, shape, y);
        for (let i = 0; i < n; i++) {
          if (kind === 'Div' && y[i] === 0) throw ctx.error('integer division by zero');
          x[i] = kind === 'Add' ? x[i] + y[i] : kind === 'Sub' ? x[i] - y[i] : kind === 'Mul' ? x[i] * y[i] : Math.trunc(x[i] / y[i]);
        }
        return [new HostInts(a.dtype, shape, x)];
      }
      throw ctx.error(`inputs must have the same element type, got ${describeValue(a)} and ${describeValue(b)}`);
    };
  };
}

export function unary(kind: string, f: (x: Tensor) => Tensor): OpCompiler {
  return (ctx) => {
    ctx.arity(1, 1);
    ctx.attrs.done();
    return ([x0]) => {
      const x = floatInput(ctx, x0, 0, `${kind} input`);
      ctx.checkElements(x.shape, 'output', bytesPerElement(x.dtype));
      return [f(x)];
    };
  };
}

// ---- linear algebra ---------------------------------------------------------------------------------

function expandTensor(ctx: NodeContext, x: Tensor, shape: readonly number[]): Tensor {
  if (x.shape.length === shape.length && x.shape.every((s, i) => s === shape[i])) return x;
  ctx.checkElements(shape, 'broadcast input', 2 * bytesPerElement(x.dtype)); // the zeros and the sum
  return add(x, zeros(shape, { dtype: x.dtype, backend: x.backend }));
}

export const MatMul: OpCompiler = (ctx) => {
  ctx.arity(2, 2);
  ctx.attrs.done();
  return ([a0, b0]) => {
    let a = floatInput(ctx, a0, 0, 'A'), b = floatInput(ctx, b0, 1, 'B');
    if (a.dtype !== b.dtype) throw ctx.error(`inputs mix ${a.dtype} and ${b.dtype}`);
    if (a.ndim === 0 || b.ndim === 0) throw ctx.error('MatMul inputs must have rank ≥ 1');
    const aVec = a.ndim === 1, bVec = b.ndim === 1;
    if (aVec) a = reshape(a, [1, a.shape[0]]);
    if (bVec) b = reshape(b, [b.shape[0], 1]);
    const K = a.shape[a.ndim - 1];
    if (b.shape[b.ndim - 2] !== K) throw ctx.error(`inner dimensions differ: ${shapeStr(a0!.shape)} · ${shapeStr(b0!.shape)}`);
    const M = a.shape[a.ndim - 2], N = b.shape[b.ndim - 1];
    let y: Tensor;
    if (b.ndim === 2) {
      ctx.checkElements([...a.shape.slice(0, -1), N], 'output', bytesPerElement(a.dtype));
      y = matmul(a, b);
    } else {
      const batch = broadcastShape(ctx, a.shape.slice(0, -2), b.shape.slice(0, -2));
      ctx.checkElements([...batch, M, N], 'output', bytesPerElement(a.dtype));
      y = matmul(expandTensor(ctx, a, [...batch, M, K]), expandTensor(ctx, b, [...batch, K, N]));
    }
    let outShape = [...y.shape];
    if (aVec) outShape.splice(outShape.length - 2, 1);
    if (bVec) outShape = outShape.slice(0, -1);
    return [aVec || bVec ? reshape(y, outShape) : y];
  };
};

export const Gemm: OpCompiler = (ctx) => {
  ctx.arity(ctx.opset >= 11 ? 2 : 3, 3);
  const alpha = ctx.attrs.float('alpha', 1);
  const beta = ctx.attrs.float('beta', 1);
  const transA = ctx.attrs.int('transA', 0) !== 0;
  const transB = ctx.attrs.int('transB', 0) !== 0;
  ctx.attrs.done();
  return ([a0, b0, c0]) => {
    const A = floatInput(ctx, a0, 0, 'A'), B = floatInput(ctx, b0, 1, 'B');
    if (A.ndim !== 2 || B.ndim !== 2) throw ctx.error(`A and B must be matrices, got ${shapeStr(A.shape)} and ${shapeStr(B.shape)}`);
    if (A.dtype !== B.dtype) throw ctx.error(`inputs mix ${A.dtype} and ${B.dtype}`);
    const [M, K] = transA ? [A.shape[1], A.shape[0]] : A.shape;
    const [K2, N] = transB ? [B.shape[1], B.shape[0]] : B.shape;
    if (K !== K2) throw ctx.error(`inner dimensions differ: A ${shapeStr(A.shape)}${transA ? 'ᵀ' : ''} · B ${shapeStr(B.shape)}${transB ? 'ᵀ' : ''}`);
    const bytes = bytesPerElement(A.dtype);
    ctx.checkElements([M, N], 'output', bytes);
    if (transA) ctx.checkElements(A.shape, 'transposed A', bytes);
    const a = transA ? permute(A, [1, 0]) : A;
    let y = transB ? linear(a, B) : matmul(a, B);
    if (alpha !== 1) {
      ctx.checkElements([M, N], 'alpha·A·B', bytes);
      y = mul(y, alpha);
    }
    if (c0) {
      ctx.checkElements([M, N], 'output + C', bytes);
      const C = floatInput(ctx, c0, 2, 'C');
      const shape = broadcastShape(ctx, [M, N], C.shape);
      if (shape.length !== 2 || shape[0] !== M || shape[1] !== N) throw ctx.error(`C ${shapeStr(C.shape)} does not broadcast to [${M}, ${N}]`);
      y = add(y, beta === 1 ? C : mul(C, beta));
    }
    return [y];
  };
};

// ---- softmax ------------------------------------------------------------------------------------

export function softmaxOp(isLog: boolean): OpCompiler {
  return (ctx) => {
    ctx.arity(1, 1);
    const modern = ctx.opset >= 13;
    const axisAttr = ctx.attrs.int('axis', modern ? -1 : 1);
    ctx.attrs.done();
    const f = isLog ? logSoftmax : softmax;
    return ([x0]) => {
      const x = floatInput(ctx, x0, 0);
      if (x.ndim === 0) throw ctx.error('input must have rank ≥ 1');
      ctx.checkElements(x.shape, 'output', bytesPerElement(x.dtype));
      const r = x.ndim;
      const axis = normAxisOf(ctx, axisAttr, r);
      if (!modern) {
        // Opsets < 13: flatten to [Π dims before axis, Π dims from axis] and normalise each row.
        const rows = shapeSize(x.shape.slice(0, axis));
        return [reshape(f(reshape(x, [rows, shapeSize(x.shape.slice(axis))])), x.shape)];
      }
      if (axis === r - 1) return [f(x)];
      const perm = [...Array(r).keys()];
      perm[axis] = r - 1;
      perm[r - 1] = axis;
      return [permute(f(permute(x, perm)), perm)];
    };
  };
}

/** ReduceSum (axes an input from opset 13) and ReduceMean (axes an input from opset 18), on floats. */
export function reduceOp(kind: 'ReduceSum' | 'ReduceMean'): OpCompiler {
  const inputFrom = kind === 'ReduceSum' ? 13 : 18;
  return (ctx) => {
    const modern = ctx.opset >= inputFrom;
    ctx.arity(1, modern ? 2 : 1);
    const keepDims = ctx.attrs.int('keepdims', 1) !== 0;
    const attrAxes = modern ? undefined : ctx.attrs.ints('axes');
    const noopEmpty = modern ? ctx.attrs.int('noop_with_empty_axes', 0) !== 0 : false;
    ctx.attrs.done();
    const f = kind === 'ReduceSum' ? sum : mean;
    return (inputs) => {
      const x = floatInput(ctx, inputs[0], 0);
      const given = modern ? (inputs[1] ? intList(ctx, inputs[1], 1, 'axes') : undefined) : attrAxes;
      if ((!given || given.length === 0) && noopEmpty) return [x];
      const axes = given && given.length ? given.map((a) => normAxisOf(ctx, a, x.ndim)) : [...Array(x.ndim).keys()];
      const reduced = new Set(axes);
      if (reduced.size !== axes.length) throw ctx.error(`axes ${shapeStr(given ?? [])} repeat an axis`);
      const outShape = keepDims ? x.shape.map((s, i) => (reduced.has(i) ? 1 : s)) : x.shape.filter((_, i) => !reduced.has(i));
      ctx.checkElements(outShape, 'output', bytesPerElement(x.dtype));
      return [f(x, axes, keepDims)];
    };
  };
}

