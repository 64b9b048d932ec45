/**
 * The non-recurrent ONNX operators recur's interpreter runs (opsets 7 and up): the ops an
 * exported recur model uses — Gather (embedding), MatMul / Gemm / Add (linear), Softmax,
 * LogSoftmax, Concat, Slice, Reshape, Transpose, Squeeze, Unsqueeze — plus the small change that
 * real-world graphs wrap around them: Identity, Constant, Cast, Shape, Flatten, Split, Dropout
 * (inference), Sub, Mul, Div, Tanh, Sigmoid, Relu, Exp, Log, Neg, Sqrt, Abs, ReduceSum, ReduceMean —
 * and what exporters wrap around recurrent layers: shape arithmetic (Shape with start/end, Gather,
 * Concat of shape tensors, ConstantOfShape, Expand, Range, Tile), masks (Equal, Greater, Less,
 * GreaterOrEqual, LessOrEqual, Not, And, Or, Xor, Where, ReduceMax/ReduceMin/ReduceProd), the sort
 * of unsorted packed sequences (TopK, ScatterElements), Pad, and the
 * element-wise functions of heads (Min, Max, Clip, Pow, Erf, Softplus, HardSigmoid, LeakyRelu, Elu).
 * The ops the spec introduced after opset 7 are refused in older models, and each takes the element
 * types its spec allows at the model's opset.
 *
 * The layers' float math (MatMul, Gemm, the activations, Softmax, …) runs on the recur backend
 * through recur's ops; integer tensors (ids, shapes, axes) are handled on the host, and so are the
 * comparisons, masks, sorts and small element-wise functions above (in float64, rounded once to the
 * output type: they are small next to the recurrent layers, and exact types matter more there). Where an opset changed an operator (Softmax's axis semantics in 13,
 * Squeeze/Unsqueeze/Split axes moving from attributes to inputs in 13, Slice in 10), both forms
 * are implemented and chosen by the model's opset.
 *
 * Every kernel calls `ctx.checkElements(shape, …)` BEFORE it allocates a result: that enforces
 * limits.tensorElements, and while the node is constant-folded at load time it charges the bytes
 * to limits.foldedConstantBytes (see FoldBudget), so a small file cannot make folding allocate
 * gigabytes. Views (Reshape, Squeeze, Unsqueeze, Flatten, Identity) allocate nothing. Loops run
 * over output elements or over the file's own lists, never over a product that a zero-sized
 * dimension makes empty (a [10^9, 0] tensor is legal and holds nothing).
 */
import { Tensor, shapeStr, zeros } from '../tensor/tensor.ts';
import { abs, add, div, exp, log, mean, mul, neg, relu, sigmoid, sqrt, sub, sum, tanh } from '../autograd/ops/elementwise.ts';
import { linear, matmul } from '../autograd/ops/linalg.ts';
import { embedding, logSoftmax, softmax } from '../autograd/ops/nn.ts';
import { concat, permute, reshape, slice } from '../autograd/ops/shape.ts';
import { dtypeOfCode, isFloatDType, type IntDType, type OnnxDType } from './tensor.ts';
import {
  HostInts, bytesPerElement, describeValue, floatInput, intInput, normAxisOf, toValue,
  type Kernel, type NodeContext, type Value,
} from './runtime.ts';
import { shapeSize, shapeStrides, stridedCopy } from '../util/shape.ts';

export type OpCompiler = (ctx: NodeContext) => Kernel;

// ---- host helpers ---------------------------------------------------------------------------------

function broadcastShape(ctx: NodeContext, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw ctx.error(`shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast together`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Broadcast `data` (shape) to outShape (same or higher rank). */
function broadcastTo(data: ArrayLike<number>, shape: readonly number[], outShape: readonly number[], out: { [i: number]: number; length: number }): void {
  const r = outShape.length;
  const padded = [...new Array<number>(r - shape.length).fill(1), ...shape];
  const st = shapeStrides(padded).map((s, i) => (padded[i] === 1 ? 0 : s));
  stridedCopy(data, 0, st, outShape, out);
}

/** Pull a float tensor to the host, transform, and push back (for the rare shapes recur's ops lack). */
function viaHost(x: Tensor, outShape: readonly number[], fn: (src: ArrayLike<number>, out: Float64Array) => void): Tensor {
  const out = new Float64Array(shapeSize(outShape));
  fn(x.toArray(), out);
  return new Tensor(x.backend.fromArray(out, x.dtype), outShape);
}

function mapValue(v: Value, outShape: readonly number[], fn: (src: ArrayLike<number>, out: Float64Array) => void): Value {
  if (v instanceof Tensor) return viaHost(v, outShape, fn);
  const out = new Float64Array(shapeSize(outShape));
  fn(v.data, out);
  return new HostInts(v.dtype, outShape, out);
}

function reshapeValue(v: Value, shape: readonly number[]): Value {
  return v instanceof Tensor ? reshape(v, shape) : new HostInts(v.dtype, shape, v.data);
}

/** An integer list from a constant-or-runtime int input (axes, shapes, starts…). */
function intList(ctx: NodeContext, v: Value | null, i: number, name: string): number[] {
  const t = intInput(ctx, v, i, name);
  if (t.ndim > 1) throw ctx.error(`${name} must be a 1-D integer tensor, got ${describeValue(t)}`);
  return Array.from(t.data);
}

function needInput(ctx: NodeContext, v: Value | null, i: number): Value {
  if (v === null) throw ctx.error(`input ${i} ('${ctx.inputs[i] ?? ''}') is missing`);
  return v;
}

// ---- element-wise ---------------------------------------------------------------------------------

function binary(kind: 'Add' | 'Sub' | 'Mul' | 'Div'): OpCompiler {
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

function unary(kind: string, f: (x: Tensor) => Tensor): OpCompiler {
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

const MatMul: OpCompiler = (ctx) => {
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

const Gemm: OpCompiler = (ctx) => {
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

function softmaxOp(isLog: boolean): OpCompiler {
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

// ---- shape movement -------------------------------------------------------------------------------

const Identity: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  ctx.attrs.done();
  return ([x]) => [needInput(ctx, x, 0)];
};

const Dropout: OpCompiler = (ctx) => {
  ctx.arity(1, 3, 2);
  if (ctx.opset < 12) ctx.attrs.float('ratio', 0.5);
  if (ctx.opset < 7) ctx.attrs.int('is_test', 0);
  if (ctx.opset >= 12) ctx.attrs.int('seed', 0);
  ctx.attrs.done();
  return ([x0, , training]) => {
    const x = needInput(ctx, x0, 0);
    if (training && training.size > 0 && (training as HostInts).data?.[0]) {
      throw ctx.error('training_mode = true is not supported (recur runs ONNX graphs for inference)');
    }
    if (ctx.wantsOutput(1)) ctx.checkElements(x.shape, 'mask');
    const mask = ctx.wantsOutput(1) ? new HostInts('bool', x.shape, new Float64Array(shapeSize(x.shape)).fill(1)) : null;
    return [x, mask];
  };
};

const Constant: OpCompiler = (ctx) => {
  ctx.arity(0, 0);
  const a = ctx.attrs;
  const t = a.tensor('value');
  const vf = a.float('value_float');
  const vfs = a.floats('value_floats');
  const vi = a.int('value_int');
  const vis = a.ints('value_ints');
  a.done();
  const given = [t, vf, vfs, vi, vis].filter((v) => v !== undefined).length;
  if (given !== 1) throw ctx.error(`needs exactly one of value, value_float(s), value_int(s); got ${given}`);
  let v: Value;
  if (t) v = toValue(t, ctx.backend);
  else if (vf !== undefined) v = new Tensor(ctx.backend.fromArray([vf], 'float32'), []);
  else if (vfs) v = new Tensor(ctx.backend.fromArray(vfs, 'float32'), [vfs.length]);
  else if (vi !== undefined) v = new HostInts('int64', [], Float64Array.of(vi));
  else v = new HostInts('int64', [vis!.length], Float64Array.from(vis!));
  return () => [v];
};

const Cast: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  const toCode = ctx.attrs.int('to');
  if (toCode === undefined) throw ctx.error("attribute 'to' is required");
  const to = dtypeOfCode(toCode, `${ctx.label}: attribute 'to'`);
  if (ctx.opset >= 19 && ctx.attrs.has('saturate')) ctx.attrs.int('saturate'); // only affects float8 targets
  ctx.attrs.done();
  return ([x0]) => {
    const x = needInput(ctx, x0, 0);
    if (x instanceof Tensor && x.dtype === to) return [x];
    ctx.checkElements(x.shape, 'output', bytesPerElement(to));
    const src = x instanceof Tensor ? x.toArray() : x.data;
    if (isFloatDType(to)) {
      return [new Tensor(ctx.backend.fromArray(src, to), x.shape)];
    }
    const out = new Float64Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (to === 'bool') out[i] = v !== 0 ? 1 : 0;
      else {
        if (!Number.isFinite(v)) throw ctx.error(`cannot cast ${v} to ${to}`);
        out[i] = Math.trunc(v);
      }
    }
    return [new HostInts(to as IntDType, x.shape, out)];
  };
};

const Shape: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  const start = ctx.opset >= 15 ? ctx.attrs.int('start', 0) : 0;
  const end = ctx.opset >= 15 ? ctx.attrs.int('end') : undefined;
  ctx.attrs.done();
  return ([x0]) => {
    const s = needInput(ctx, x0, 0).shape;
    const r = s.length;
    const clampIdx = (i: number): number => Math.min(Math.max(i < 0 ? i + r : i, 0), r);
    const dims = s.slice(clampIdx(start), end === undefined ? r : clampIdx(end));
    ctx.checkElements([dims.length]);
    return [new HostInts('int64', [dims.length], Float64Array.from(dims))];
  };
};

const Reshape: OpCompiler = (ctx) => {
  ctx.arity(2, 2);
  const allowZero = ctx.opset >= 14 ? ctx.attrs.int('allowzero', 0) !== 0 : false;
  ctx.attrs.done();
  return ([x0, s0]) => {
    const x = needInput(ctx, x0, 0);
    const spec = intList(ctx, s0, 1, 'shape');
    const out = spec.map((d, i) => {
      if (d === 0 && !allowZero) {
        if (i >= x.shape.length) throw ctx.error(`shape ${shapeStr(spec)}: 0 at position ${i} copies a dimension the input ${shapeStr(x.shape)} does not have`);
        return x.shape[i];
      }
      return d;
    });
    const inferred = out.indexOf(-1);
    if (out.filter((d) => d === -1).length > 1) throw ctx.error(`shape ${shapeStr(spec)} has more than one -1`);
    if (out.some((d) => d < -1 || !Number.isSafeInteger(d))) throw ctx.error(`shape ${shapeStr(spec)} has an invalid dimension`);
    const n = shapeSize(x.shape);
    if (inferred >= 0) {
      const rest = shapeSize(out.filter((_, i) => i !== inferred));
      if (rest === 0 || n % rest !== 0) throw ctx.error(`cannot reshape ${shapeStr(x.shape)} to ${shapeStr(spec)}`);
      out[inferred] = n / rest;
    }
    if (shapeSize(out) !== n) throw ctx.error(`cannot reshape ${shapeStr(x.shape)} (${n} elements) to ${shapeStr(out)}`);
    return [reshapeValue(x, out)];
  };
};

const Flatten: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  const axisAttr = ctx.attrs.int('axis', 1);
  ctx.attrs.done();
  return ([x0]) => {
    const x = needInput(ctx, x0, 0);
    const r = x.shape.length;
    const axis = axisAttr < 0 ? axisAttr + r : axisAttr;
    if (axis < 0 || axis > r) throw ctx.error(`axis ${axisAttr} is out of range for rank ${r}`);
    return [reshapeValue(x, [shapeSize(x.shape.slice(0, axis)), shapeSize(x.shape.slice(axis))])];
  };
};

const Transpose: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  const permAttr = ctx.attrs.ints('perm');
  ctx.attrs.done();
  return ([x0]) => {
    const x = needInput(ctx, x0, 0);
    const r = x.shape.length;
    const perm = permAttr ?? [...Array(r).keys()].reverse();
    if (perm.length !== r || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) throw ctx.error(`perm ${shapeStr(perm)} is not a permutation of ${r} axes`);
    const outShape = perm.map((p) => x.shape[p]);
    ctx.checkElements(outShape, 'output', bytesPerElement(x.dtype));
    if (x instanceof Tensor) return [permute(x, perm)];
    const st = shapeStrides(x.shape);
    return [mapValue(x, outShape, (src, out) => stridedCopy(src, 0, perm.map((p) => st[p]), outShape, out))];
  };
};

function axesFrom(ctx: NodeContext, inputs: readonly (Value | null)[], inputIndex: number): number[] | undefined {
  if (ctx.opset >= 13) return inputs[inputIndex] ? intList(ctx, inputs[inputIndex], inputIndex, 'axes') : undefined;
  return undefined;
}

const Squeeze: OpCompiler = (ctx) => {
  ctx.arity(1, ctx.opset >= 13 ? 2 : 1);
  const attrAxes = ctx.opset < 13 ? ctx.attrs.ints('axes') : undefined;
  ctx.attrs.done();
  return (inputs) => {
    const x = needInput(ctx, inputs[0], 0);
    const r = x.shape.length;
    const given = ctx.opset >= 13 ? axesFrom(ctx, inputs, 1) : attrAxes;
    const axes = new Set(given ? given.map((a) => normAxisOf(ctx, a, r)) : x.shape.flatMap((s, i) => (s === 1 ? [i] : [])));
    for (const a of axes) if (x.shape[a] !== 1) throw ctx.error(`cannot squeeze axis ${a} of size ${x.shape[a]} (input ${shapeStr(x.shape)})`);
    // A Set, not axes.includes: rank and axes both come from the file, and can be 10^5 long.
    return [reshapeValue(x, x.shape.filter((_, i) => !axes.has(i)))];
  };
};

const Unsqueeze: OpCompiler = (ctx) => {
  ctx.arity(ctx.opset >= 13 ? 2 : 1, ctx.opset >= 13 ? 2 : 1);
  const attrAxes = ctx.opset < 13 ? ctx.attrs.ints('axes') : undefined;
  if (ctx.opset < 13 && !attrAxes) throw ctx.error("attribute 'axes' is required");
  ctx.attrs.done();
  return (inputs) => {
    const x = needInput(ctx, inputs[0], 0);
    const given = ctx.opset >= 13 ? axesFrom(ctx, inputs, 1)! : attrAxes!;
    const r = x.shape.length + given.length;
    const axes = new Set(given.map((a) => normAxisOf(ctx, a, r)));
    if (axes.size !== given.length) throw ctx.error(`axes ${shapeStr(given)} repeat an axis`);
    const out: number[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(axes.has(i) ? 1 : x.shape[k++]);
    return [reshapeValue(x, out)];
  };
};

const Concat: OpCompiler = (ctx) => {
  if (ctx.inputs.length < 1) throw ctx.error('needs at least one input');
  const axisAttr = ctx.attrs.int('axis');
  if (axisAttr === undefined) throw ctx.error("attribute 'axis' is required");
  ctx.attrs.done();
  return (inputs) => {
    const xs = inputs.map((v, i) => needInput(ctx, v, i));
    const first = xs[0];
    const r = first.shape.length;
    const axis = normAxisOf(ctx, axisAttr, r);
    for (const x of xs) {
      if (x.shape.length !== r || x.shape.some((s, i) => i !== axis && s !== first.shape[i])) {
        throw ctx.error(`input shapes ${xs.map((v) => shapeStr(v.shape)).join(', ')} differ outside axis ${axis}`);
      }
    }
    const outShape = [...first.shape];
    outShape[axis] = xs.reduce((n, x) => n + x.shape[axis], 0);
    // The same input may be listed many times, so the output can be far larger than the file.
    const n = ctx.checkElements(outShape, 'output', bytesPerElement(first.dtype));
    if (xs.every((x) => x instanceof Tensor)) return [concat(xs as Tensor[], axis)];
    if (!xs.every((x) => x instanceof HostInts && x.dtype === (first as HostInts).dtype)) throw ctx.error('inputs must all have the same element type');
    const out = new Float64Array(n);
    if (n > 0) {
      const outer = shapeSize(first.shape.slice(0, axis));
      const blocks = xs.map((x) => shapeSize(x.shape.slice(axis)));
      let pos = 0;
      for (let o = 0; o < outer; o++) {
        xs.forEach((x, k) => {
          out.set((x as HostInts).data.subarray(o * blocks[k], (o + 1) * blocks[k]), pos);
          pos += blocks[k];
        });
      }
    }
    return [new HostInts((first as HostInts).dtype, outShape, out)];
  };
};

const Split: OpCompiler = (ctx) => {
  ctx.arity(1, ctx.opset >= 13 ? 2 : 1, Number.MAX_SAFE_INTEGER);
  const axisAttr = ctx.attrs.int('axis', 0);
  const splitAttr = ctx.opset < 13 ? ctx.attrs.ints('split') : undefined;
  const numOutputs = ctx.opset >= 18 ? ctx.attrs.int('num_outputs') : undefined;
  ctx.attrs.done();
  const nOut = ctx.outputs.length;
  // Checked here, not after building a list of num_outputs sizes: the file chooses the number.
  if (numOutputs !== undefined && numOutputs !== nOut) throw ctx.error(`num_outputs = ${numOutputs} but the node has ${nOut} outputs`);
  return (inputs) => {
    const x = needInput(ctx, inputs[0], 0);
    const axis = normAxisOf(ctx, axisAttr, x.shape.length);
    const dim = x.shape[axis];
    ctx.checkElements(x.shape, 'outputs', bytesPerElement(x.dtype)); // together they hold the input
    let sizes = ctx.opset >= 13 && inputs[1] ? intList(ctx, inputs[1], 1, 'split') : splitAttr;
    if (!sizes) {
      const n = numOutputs ?? nOut;
      const chunk = Math.ceil(dim / n);
      sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
    }
    if (sizes.length !== nOut || sizes.reduce((a, b) => a + b, 0) !== dim || sizes.some((s) => s < 0)) {
      throw ctx.error(`split sizes ${shapeStr(sizes)} do not divide axis ${axis} of size ${dim} into ${nOut} outputs`);
    }
    let start = 0;
    return sizes.map((len) => {
      const s = start;
      start += len;
      return sliceAxis(x, axis, s, len, 1);
    });
  };
};

/** x[..., start : start + len·step : step, ...] along `axis`. */
function sliceAxis(x: Value, axis: number, start: number, len: number, step: number): Value {
  if (step === 1 && x instanceof Tensor) return slice(x, axis, start, len);
  const st = shapeStrides(x.shape);
  const outShape = [...x.shape];
  outShape[axis] = len;
  const strides = st.map((s, i) => (i === axis ? s * step : s));
  return mapValue(x, outShape, (src, out) => stridedCopy(src, start * st[axis], strides, outShape, out));
}

const Slice: OpCompiler = (ctx) => {
  const modern = ctx.opset >= 10;
  ctx.arity(modern ? 3 : 1, modern ? 5 : 1);
  // Exporters write INT64_MAX / INT64_MIN for "to the end"; clamped, they mean the same.
  const attrStarts = modern ? undefined : ctx.attrs.ints('starts', true);
  const attrEnds = modern ? undefined : ctx.attrs.ints('ends', true);
  const attrAxes = modern ? undefined : ctx.attrs.ints('axes');
  if (!modern && (!attrStarts || !attrEnds)) throw ctx.error("attributes 'starts' and 'ends' are required");
  ctx.attrs.done();
  return (inputs) => {
    let x = needInput(ctx, inputs[0], 0);
    const r = x.shape.length;
    const starts = modern ? intList(ctx, inputs[1], 1, 'starts') : attrStarts!;
    const ends = modern ? intList(ctx, inputs[2], 2, 'ends') : attrEnds!;
    const axesIn = modern ? (inputs[3] ? intList(ctx, inputs[3], 3, 'axes') : undefined) : attrAxes;
    const steps = modern && inputs[4] ? intList(ctx, inputs[4], 4, 'steps') : starts.map(() => 1);
    const axes = axesIn ?? starts.map((_, i) => i);
    if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
      throw ctx.error(`starts, ends, axes and steps must have the same length (${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
    }
    const seen = new Set<number>();
    for (let k = 0; k < starts.length; k++) {
      const axis = normAxisOf(ctx, axes[k], r);
      if (seen.has(axis)) throw ctx.error(`axis ${axis} is sliced twice`);
      seen.add(axis);
      const dim = x.shape[axis];
      const step = steps[k];
      if (step === 0 || !Number.isFinite(step)) throw ctx.error('steps must be non-zero');
      let s = starts[k], e = ends[k];
      if (s < 0) s += dim;
      if (e < 0) e += dim;
      let len: number;
      if (step > 0) {
        s = Math.min(Math.max(s, 0), dim);
        e = Math.min(Math.max(e, 0), dim);
        len = Math.max(0, Math.ceil((e - s) / step));
      } else {
        s = Math.min(Math.max(s, 0), dim - 1);
        e = Math.min(Math.max(e, -1), dim - 1);
        len = Math.max(0, Math.ceil((e - s) / step));
      }
      if (len === dim && step === 1) continue;
      const outShape = [...x.shape];
      outShape[axis] = len;
      ctx.checkElements(outShape, 'output', bytesPerElement(x.dtype));
      x = sliceAxis(x, axis, len === 0 ? 0 : s, len, step);
    }
    return [x];
  };
};

const Gather: OpCompiler = (ctx) => {
  ctx.arity(2, 2);
  const axisAttr = ctx.attrs.int('axis', 0);
  ctx.attrs.done();
  return ([d0, i0]) => {
    const data = needInput(ctx, d0, 0);
    const idx = intInput(ctx, i0, 1, 'indices');
    const r = data.shape.length;
    if (r === 0) throw ctx.error('data must have rank ≥ 1');
    const axis = normAxisOf(ctx, axisAttr, r);
    const dim = data.shape[axis];
    const ids = new Int32Array(idx.size);
    for (let k = 0; k < idx.size; k++) {
      let v = idx.data[k];
      if (v < 0) v += dim;
      if (!(v >= 0 && v < dim)) throw ctx.error(`index ${idx.data[k]} is out of range for axis ${axis} of size ${dim}`);
      ids[k] = v;
    }
    const outShape = [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)];
    if (ctx.checkElements(outShape, 'output', bytesPerElement(data.dtype)) === 0) {
      // Nothing to gather; the loops below would still walk outer × indices (both can be huge).
      return [data instanceof Tensor ? new Tensor(data.backend.fromArray(new Float64Array(0), data.dtype), outShape) : new HostInts(data.dtype, outShape, new Float64Array(0))];
    }
    const inner = shapeSize(data.shape.slice(axis + 1));
    if (data instanceof Tensor && axis === 0) {
      // The embedding lookup: one row gather on the backend.
      const table = r === 2 ? data : reshape(data, [dim, inner]);
      const out = embedding(table, ids, idx.shape);
      return [r === 2 ? out : reshape(out, outShape)];
    }
    const outer = shapeSize(data.shape.slice(0, axis));
    return [mapValue(data, outShape, (src, out) => {
      let pos = 0;
      for (let o = 0; o < outer; o++) {
        for (let k = 0; k < ids.length; k++) {
          const base = (o * dim + ids[k]) * inner;
          for (let j = 0; j < inner; j++) out[pos++] = src[base + j];
        }
      }
    })];
  };
};

/** ReduceSum (axes an input from opset 13) and ReduceMean (axes an input from opset 18), on floats. */
function reduceOp(kind: 'ReduceSum' | 'ReduceMean'): OpCompiler {
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

/** An operator that the ONNX spec introduces at `opset`: in an older model it is an error, as in other runtimes. */
function since(opset: number, compile: OpCompiler): OpCompiler {
  return (ctx) => {
    if (ctx.opset < opset) throw ctx.error(`${ctx.node.op_type} is defined from opset ${opset}; this model imports opset ${ctx.opset}`);
    return compile(ctx);
  };
}

// ---- host element-wise: comparisons, logic, selection, the math recur's ops lack ----------------------
//
// These run on the host in float64 over broadcast copies of their inputs and round once to the
// output type. The graphs that use them (masks, shape arithmetic, a clip or pow in a head) are small
// next to the recurrent layers, and exact element types matter more here than speed: a comparison
// of int64 shape values or a bool mask never touches the backend.

function hostData(v: Value): ArrayLike<number> {
  return v instanceof Tensor ? v.toArray() : v.data;
}

/** A host array as a runtime value of `dtype` (floats go to the backend, rounded once). */
function makeValue(ctx: NodeContext, dtype: OnnxDType, shape: readonly number[], data: Float64Array): Value {
  return isFloatDType(dtype) ? new Tensor(ctx.backend.fromArray(data, dtype), shape) : new HostInts(dtype as IntDType, shape, data);
}

/**
 * Numpy-style broadcasting of `vs` on the host, then out[i] = f(a[i], b[i], c[i]). Announces the
 * output and the broadcast copies to checkElements before allocating any of them.
 */
function broadcastHost(ctx: NodeContext, vs: readonly Value[], outDtype: OnnxDType, f: (a: number, b: number, c: number) => number, to: readonly number[] = []): Value {
  let shape = [...to];
  for (const v of vs) shape = broadcastShape(ctx, shape, v.shape);
  const n = ctx.checkElements(shape, 'output', 8 * (vs.length + 1));
  const full = vs.map((v) => {
    const d = hostData(v);
    if (v.shape.length === shape.length && d.length === n) return d;
    const out = new Float64Array(n);
    if (n > 0) broadcastTo(d, v.shape, shape, out);
    return out;
  });
  const out = new Float64Array(n);
  const [a, b = a, c = a] = full;
  for (let i = 0; i < n; i++) out[i] = f(a[i], b[i], c[i]);
  return makeValue(ctx, outDtype, shape, out);
}

/** The element type of a value, checked to be one of `allowed` ('float', 'int', 'bool'). */
function kindOf(v: Value): 'float' | 'int' | 'bool' {
  return v instanceof Tensor ? 'float' : v.dtype === 'bool' ? 'bool' : 'int';
}

function sameType(ctx: NodeContext, vs: readonly Value[], allowed: readonly ('float' | 'int' | 'bool')[], what = 'inputs'): OnnxDType {
  const d = vs[0].dtype;
  for (const v of vs) {
    if (!allowed.includes(kindOf(v))) throw ctx.error(`${what} must be ${allowed.join(' or ')}, got ${describeValue(v)}`);
    if (v.dtype !== d) throw ctx.error(`${what} mix ${d} and ${v.dtype}; ONNX requires one element type`);
  }
  return d;
}

function compare(kind: 'Equal' | 'Greater' | 'Less' | 'GreaterOrEqual' | 'LessOrEqual'): OpCompiler {
  const f = {
    Equal: (a: number, b: number) => (a === b ? 1 : 0),
    Greater: (a: number, b: number) => (a > b ? 1 : 0),
    Less: (a: number, b: number) => (a < b ? 1 : 0),
    GreaterOrEqual: (a: number, b: number) => (a >= b ? 1 : 0),
    LessOrEqual: (a: number, b: number) => (a <= b ? 1 : 0),
  }[kind];
  return (ctx) => {
    ctx.arity(2, 2);
    ctx.attrs.done();
    return ([a0, b0]) => {
      const a = needInput(ctx, a0, 0), b = needInput(ctx, b0, 1);
      // The spec's type lists: Equal takes floats from opset 11, Greater/Less integers from 9.
      const allowed: ('float' | 'int' | 'bool')[] = kind === 'Equal' ? (ctx.opset >= 11 ? ['float', 'int', 'bool'] : ['int', 'bool'])
        : ctx.opset >= 9 ? ['float', 'int'] : ['float'];
      sameType(ctx, [a, b], allowed);
      return [broadcastHost(ctx, [a, b], 'bool', f)];
    };
  };
}

function logic(kind: 'And' | 'Or' | 'Xor'): OpCompiler {
  const f = { And: (a: number, b: number) => a & b, Or: (a: number, b: number) => a | b, Xor: (a: number, b: number) => a ^ b }[kind];
  return (ctx) => {
    ctx.arity(2, 2);
    ctx.attrs.done();
    return ([a0, b0]) => {
      const a = needInput(ctx, a0, 0), b = needInput(ctx, b0, 1);
      sameType(ctx, [a, b], ['bool']);
      return [broadcastHost(ctx, [a, b], 'bool', f)];
    };
  };
}

const Not: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  ctx.attrs.done();
  return ([x0]) => {
    const x = needInput(ctx, x0, 0);
    sameType(ctx, [x], ['bool'], 'input');
    return [broadcastHost(ctx, [x], 'bool', (a) => 1 - a)];
  };
};

const Where: OpCompiler = (ctx) => {
  ctx.arity(3, 3);
  ctx.attrs.done();
  return ([c0, x0, y0]) => {
    const c = needInput(ctx, c0, 0), x = needInput(ctx, x0, 1), y = needInput(ctx, y0, 2);
    sameType(ctx, [c], ['bool'], 'condition');
    const dtype = sameType(ctx, [x, y], ['float', 'int', 'bool'], 'X and Y');
    return [broadcastHost(ctx, [c, x, y], dtype, (k, a, b) => (k ? a : b))];
  };
};

/** Min / Max: variadic, broadcasting; a NaN anywhere makes the element NaN (as Math.min/max do). */
function minMax(kind: 'Min' | 'Max'): OpCompiler {
  return (ctx) => {
    if (ctx.inputs.length < 1) throw ctx.error('needs at least one input');
    ctx.arity(1, ctx.inputs.length);
    ctx.attrs.done();
    return (inputs) => {
      const xs = inputs.map((v, i) => needInput(ctx, v, i));
      const dtype = sameType(ctx, xs, ctx.opset >= 12 ? ['float', 'int'] : ['float']);
      const f = kind === 'Min' ? Math.min : Math.max;
      let acc = xs[0];
      if (xs.length === 1) return [broadcastHost(ctx, [acc], dtype, (a) => a)];
      for (let k = 1; k < xs.length; k++) acc = broadcastHost(ctx, [acc, xs[k]], dtype, f);
      return [acc];
    };
  };
}

const Clip: OpCompiler = (ctx) => {
  const modern = ctx.opset >= 11;
  ctx.arity(1, modern ? 3 : 1);
  const attrMin = modern ? undefined : ctx.attrs.float('min');
  const attrMax = modern ? undefined : ctx.attrs.float('max');
  ctx.attrs.done();
  const scalar = (v: Value | null, i: number, name: string, dtype: OnnxDType): number | undefined => {
    if (!v) return undefined;
    if (v.dtype !== dtype) throw ctx.error(`${name} is ${v.dtype}, the input is ${dtype}`);
    if (v.size !== 1) throw ctx.error(`${name} must be a scalar, got ${describeValue(v)}`);
    return hostData(v)[0];
  };
  return ([x0, lo0, hi0]) => {
    const x = needInput(ctx, x0, 0);
    const dtype = sameType(ctx, [x], ctx.opset >= 12 ? ['float', 'int'] : ['float'], 'input');
    // Without a bound, the bound is the type's extreme: no clipping on that side.
    const lo = (modern ? scalar(lo0 ?? null, 1, 'min', dtype) : attrMin) ?? -Infinity;
    const hi = (modern ? scalar(hi0 ?? null, 2, 'max', dtype) : attrMax) ?? Infinity;
    // min > max gives max everywhere (the spec's rule, and what this order of min/max does).
    return [broadcastHost(ctx, [x], dtype, (a) => (Number.isNaN(a) ? a : Math.min(Math.max(a, lo), hi)))];
  };
};

const Pow: OpCompiler = (ctx) => {
  ctx.arity(2, 2);
  ctx.attrs.done();
  return ([x0, y0]) => {
    const x = needInput(ctx, x0, 0), y = needInput(ctx, y0, 1);
    const dtype = sameType(ctx, [x], ctx.opset >= 12 ? ['float', 'int'] : ['float'], 'X');
    if (ctx.opset < 12) sameType(ctx, [x, y], ['float'], 'X and Y');
    else sameType(ctx, [y], ['float', 'int'], 'Y');
    const isInt = !isFloatDType(dtype);
    return [broadcastHost(ctx, [x, y], dtype, (a, b) => (isInt ? Math.trunc(a ** b) : a ** b))];
  };
};

/** erf(x) by Numerical Recipes' erfc Chebyshev fit (fractional error < 1.2e-7, below float32's). */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

/** A float element-wise function with float attributes (alpha, beta), on the host. */
function hostUnary(kind: string, attrs: Record<string, number>, f: (x: number, a: Record<string, number>) => number): OpCompiler {
  return (ctx) => {
    ctx.arity(1, 1);
    const a: Record<string, number> = {};
    for (const [k, dflt] of Object.entries(attrs)) a[k] = ctx.attrs.float(k, dflt);
    ctx.attrs.done();
    return ([x0]) => {
      const x = floatInput(ctx, x0, 0, `${kind} input`);
      return [broadcastHost(ctx, [x], x.dtype, (v) => f(v, a))];
    };
  };
}

// ---- shape-building operators ---------------------------------------------------------------------

/** A 1-D int64 shape input, every entry a non-negative integer. */
function shapeInput(ctx: NodeContext, v: Value | null, i: number, name: string): number[] {
  const s = intList(ctx, v, i, name);
  for (const d of s) if (d < 0 || !Number.isSafeInteger(d)) throw ctx.error(`${name} ${shapeStr(s)} has a negative or invalid dimension`);
  return s;
}

const ConstantOfShape: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  const t = ctx.attrs.tensor('value');
  ctx.attrs.done();
  if (t && t.data.length !== 1) throw ctx.error(`attribute 'value' must hold one element, got ${shapeStr(t.shape)}`);
  const dtype: OnnxDType = t?.dtype ?? 'float32';
  const fill = t ? t.data[0] : 0;
  return ([s0]) => {
    const shape = shapeInput(ctx, s0, 0, 'shape');
    const n = ctx.checkElements(shape, 'output', bytesPerElement(dtype));
    return [makeValue(ctx, dtype, shape, new Float64Array(n).fill(fill))];
  };
};

const Expand: OpCompiler = (ctx) => {
  ctx.arity(2, 2);
  ctx.attrs.done();
  return ([x0, s0]) => {
    const x = needInput(ctx, x0, 0);
    // Bidirectional broadcasting: a 1 in `shape` keeps x's dimension (shape may also be shorter).
    const shape = broadcastShape(ctx, x.shape, intList(ctx, s0, 1, 'shape'));
    if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return [x];
    return [broadcastHost(ctx, [x], x.dtype, (a) => a, shape)];
  };
};

const Tile: OpCompiler = (ctx) => {
  ctx.arity(2, 2);
  ctx.attrs.done();
  return ([x0, r0]) => {
    const x = needInput(ctx, x0, 0);
    const reps = shapeInput(ctx, r0, 1, 'repeats');
    const r = x.shape.length;
    if (reps.length !== r) throw ctx.error(`repeats ${shapeStr(reps)} must have one entry per input axis (${r})`);
    const outShape = x.shape.map((s, i) => s * reps[i]);
    const n = ctx.checkElements(outShape, 'output', 8);
    // Output index o_i = k_i·s_i + j_i: row-major over (k_0, j_0, k_1, j_1, …), i.e. x laid out as
    // [1, s_0, 1, s_1, …] broadcast to [r_0, s_0, r_1, s_1, …] — one strided copy.
    const st = shapeStrides(x.shape);
    const interleaved = x.shape.flatMap((s, i) => [reps[i], s]);
    const strides = st.flatMap((s) => [0, s]);
    const out = new Float64Array(n);
    if (n > 0) stridedCopy(hostData(x), 0, strides, interleaved, out);
    return [makeValue(ctx, x.dtype, outShape, out)];
  };
};

const Range: OpCompiler = (ctx) => {
  ctx.arity(3, 3);
  ctx.attrs.done();
  return (inputs) => {
    const vs = inputs.map((v, i) => needInput(ctx, v, i));
    const dtype = sameType(ctx, vs, ['float', 'int'], 'start, limit and delta');
    for (const [i, v] of vs.entries()) if (v.size !== 1 || v.shape.length > 1) throw ctx.error(`${['start', 'limit', 'delta'][i]} must be a scalar, got ${describeValue(v)}`);
    const [start, limit, delta] = vs.map((v) => hostData(v)[0]);
    if (delta === 0 || !Number.isFinite(delta) || !Number.isFinite(start) || !Number.isFinite(limit)) throw ctx.error(`start ${start}, limit ${limit}, delta ${delta} do not make a range`);
    const count = Math.max(Math.ceil((limit - start) / delta), 0);
    const n = ctx.checkElements([count], 'output', 8);
    // The spec's output[i] = start + i·delta, in float64 and rounded once to the element type (a
    // runtime that accumulates value += delta in float32 drifts from it by a few ulps at most).
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = start + i * delta;
    return [makeValue(ctx, dtype, [n], out)];
  };
};

const Pad: OpCompiler = (ctx) => {
  const modern = ctx.opset >= 11;
  ctx.arity(modern ? 2 : 1, modern ? (ctx.opset >= 18 ? 4 : 3) : 1);
  const mode = ctx.attrs.string('mode', 'constant');
  const attrPads = modern ? undefined : ctx.attrs.ints('pads');
  const attrValue = modern ? undefined : ctx.attrs.float('value', 0);
  ctx.attrs.done();
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') throw ctx.error(`mode '${mode}' is not supported (constant, reflect, edge)`);
  if (!modern && !attrPads) throw ctx.error("attribute 'pads' is required");
  return (inputs) => {
    const x = needInput(ctx, inputs[0], 0);
    const r = x.shape.length;
    const padList = modern ? intList(ctx, inputs[1], 1, 'pads') : attrPads!;
    const axes = modern && inputs[3] ? intList(ctx, inputs[3], 3, 'axes').map((a) => normAxisOf(ctx, a, r)) : [...Array(r).keys()];
    if (new Set(axes).size !== axes.length) throw ctx.error(`axes ${shapeStr(axes)} repeat an axis`);
    if (padList.length !== 2 * axes.length) throw ctx.error(`pads ${shapeStr(padList)} must have 2 × ${axes.length} entries`);
    let fill = attrValue ?? 0;
    if (modern && inputs[2]) {
      const c = inputs[2];
      if (c.dtype !== x.dtype) throw ctx.error(`constant_value is ${c.dtype}, the input is ${x.dtype}`);
      if (c.size !== 1) throw ctx.error(`constant_value must be a scalar, got ${describeValue(c)}`);
      fill = hostData(c)[0];
    }
    const begin = new Array<number>(r).fill(0), end = new Array<number>(r).fill(0);
    axes.forEach((a, k) => {
      begin[a] = padList[k];
      end[a] = padList[k + axes.length];
    });
    const outShape = x.shape.map((s, i) => s + begin[i] + end[i]);
    if (outShape.some((d) => d < 0)) throw ctx.error(`pads ${shapeStr(padList)} crop more than input ${shapeStr(x.shape)} holds`);
    // Negative pads crop first; edge and reflect then work on what is left of each axis, [lo, hi).
    const lo = begin.map((b) => Math.max(0, -b));
    const hi = x.shape.map((d, i) => d - Math.max(0, -end[i]));
    for (let i = 0; i < r; i++) {
      const extent = hi[i] - lo[i], pad = Math.max(begin[i], end[i]);
      if (mode === 'reflect' && pad > 0 && pad >= extent) {
        throw ctx.error(`reflect padding of ${pad} needs axis ${i} longer than the ${extent} values it keeps`);
      }
      if (mode === 'edge' && pad > 0 && extent === 0) throw ctx.error(`edge padding of axis ${i}, which keeps no values`);
    }
    const n = ctx.checkElements(outShape, 'output', 8);
    // An empty result: the per-axis maps below would still be as long as the (huge) other axes.
    if (n === 0) return [makeValue(ctx, x.dtype, outShape, new Float64Array(0))];
    // Per axis, the source coordinate of every output coordinate (−1: the fill value).
    const maps = outShape.map((len, i) => {
      const m = new Int32Array(len);
      for (let o = 0; o < len; o++) {
        let s = o - begin[i];
        if (s < lo[i] || s >= hi[i]) {
          if (mode === 'constant') s = -1;
          else if (mode === 'edge') s = s < lo[i] ? lo[i] : hi[i] - 1;
          else s = s < lo[i] ? 2 * lo[i] - s : 2 * (hi[i] - 1) - s;
        }
        m[o] = s;
      }
      return m;
    });
    const src = hostData(x);
    const st = shapeStrides(x.shape);
    const out = new Float64Array(n);
    const idx = new Array<number>(r).fill(0);
    for (let k = 0; k < n; k++) {
      let pos = 0;
      for (let a = 0; a < r && pos >= 0; a++) {
        const s = maps[a][idx[a]];
        pos = s < 0 ? -1 : pos + s * st[a];
      }
      out[k] = pos < 0 ? fill : src[pos];
      for (let a = r - 1; a >= 0; a--) {
        if (++idx[a] < outShape[a]) break;
        idx[a] = 0;
      }
    }
    return [makeValue(ctx, x.dtype, outShape, out)];
  };
};

/** ReduceMax / ReduceMin / ReduceProd (axes an input from opset 18), on floats and integers, on the host. */
function reduceHost(kind: 'ReduceMax' | 'ReduceMin' | 'ReduceProd'): OpCompiler {
  return (ctx) => {
    const modern = ctx.opset >= 18;
    ctx.arity(1, modern ? 2 : 1);
    const keepDims = ctx.attrs.int('keepdims', 1) !== 0;
    const attrAxes = modern ? undefined : ctx.attrs.ints('axes');
    const noopEmpty = modern ? ctx.attrs.int('noop_with_empty_axes', 0) !== 0 : false;
    ctx.attrs.done();
    const f = kind === 'ReduceMax' ? Math.max : kind === 'ReduceMin' ? Math.min : (a: number, b: number) => a * b;
    // The identity of each reduction: what an empty axis reduces to.
    const init = kind === 'ReduceMax' ? -Infinity : kind === 'ReduceMin' ? Infinity : 1;
    return (inputs) => {
      const x = needInput(ctx, inputs[0], 0);
      const dtype = sameType(ctx, [x], ['float', 'int'], 'input');
      const given = modern ? (inputs[1] ? intList(ctx, inputs[1], 1, 'axes') : undefined) : attrAxes;
      if ((!given || given.length === 0) && noopEmpty) return [x];
      const r = x.shape.length;
      const axes = given && given.length ? given.map((a) => normAxisOf(ctx, a, r)) : [...Array(r).keys()];
      const reduced = new Set(axes);
      if (reduced.size !== axes.length) throw ctx.error(`axes ${shapeStr(given ?? [])} repeat an axis`);
      // Over an empty axis the spec's result is the identity of the reduction: ∓∞ for floats. The
      // integer identities (INT64_MIN/MAX) do not survive recur's float64 host integers, so refuse.
      if (kind !== 'ReduceProd' && !isFloatDType(dtype)) for (const a of reduced) if (x.shape[a] === 0) throw ctx.error(`cannot take ${kind === 'ReduceMax' ? 'the maximum' : 'the minimum'} of integers over empty axis ${a}`);
      const kept = x.shape.map((s, i) => (reduced.has(i) ? 1 : s));
      const n = ctx.checkElements(kept, 'output', 8);
      const out = new Float64Array(n).fill(init);
      // Walk the input once; its reduced axes have stride 0 in the output.
      const ost = shapeStrides(kept).map((s, i) => (reduced.has(i) ? 0 : s));
      const src = hostData(x);
      const idx = new Array<number>(r).fill(0);
      let pos = 0;
      for (let k = 0; k < src.length; k++) {
        out[pos] = f(out[pos], src[k]);
        for (let a = r - 1; a >= 0; a--) {
          idx[a]++;
          pos += ost[a];
          if (idx[a] < x.shape[a]) break;
          pos -= ost[a] * x.shape[a];
          idx[a] = 0;
        }
      }
      const outShape = keepDims ? kept : x.shape.filter((_, i) => !reduced.has(i));
      return [makeValue(ctx, dtype, outShape, out)];
    };
  };
}

// ---- sorting and scattering (what pack_padded_sequence(enforce_sorted=False) exports) ---------------

/**
 * TopK: the K largest (or smallest) entries along an axis and their indices. K is an attribute
 * before opset 10 and an input from 10; largest / sorted from 11. Equal values keep their order
 * (the lower index first), as the spec asks; with sorted = 0 the order is unspecified and this
 * returns it sorted anyway.
 */
const TopK: OpCompiler = (ctx) => {
  const kInput = ctx.opset >= 10;
  ctx.arity(kInput ? 2 : 1, kInput ? 2 : 1, 2, 2);
  const axisAttr = ctx.attrs.int('axis', -1);
  const kAttr = kInput ? undefined : ctx.attrs.int('k');
  const largest = ctx.opset >= 11 ? ctx.attrs.int('largest', 1) !== 0 : true;
  if (ctx.opset >= 11) ctx.attrs.int('sorted', 1);
  ctx.attrs.done();
  if (!kInput && kAttr === undefined) throw ctx.error("attribute 'k' is required");
  return ([x0, k0]) => {
    const x = needInput(ctx, x0, 0);
    sameType(ctx, [x], ['float', 'int'], 'input');
    const r = x.shape.length;
    if (r === 0) throw ctx.error('input must have rank ≥ 1');
    const axis = normAxisOf(ctx, axisAttr, r);
    let k = kAttr!;
    if (kInput) {
      const kl = intList(ctx, k0, 1, 'K');
      if (kl.length !== 1) throw ctx.error(`K must hold one value, got ${shapeStr(kl)}`);
      k = kl[0];
    }
    const dim = x.shape[axis];
    if (!(k >= 0 && k <= dim)) throw ctx.error(`K = ${k} is out of range for axis ${axis} of size ${dim}`);
    const outShape = [...x.shape];
    outShape[axis] = k;
    const n = ctx.checkElements(outShape, 'outputs', 16);
    const values = new Float64Array(n), indices = new Float64Array(n);
    const src = hostData(x);
    const inner = shapeSize(x.shape.slice(axis + 1)), outer = shapeSize(x.shape.slice(0, axis));
    const order = new Array<number>(dim);
    if (n > 0) {
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          const base = o * dim * inner + j;
          for (let i = 0; i < dim; i++) order[i] = i;
          // Array.prototype.sort is stable: ties keep the lower index first.
          order.sort((p, q) => (largest ? src[base + q * inner] - src[base + p * inner] : src[base + p * inner] - src[base + q * inner]));
          for (let i = 0; i < k; i++) {
            const at = (o * k + i) * inner + j;
            values[at] = src[base + order[i] * inner];
            indices[at] = order[i];
          }
        }
      }
    }
    return [makeValue(ctx, x.dtype, outShape, values), new HostInts('int64', outShape, indices)];
  };
};

/**
 * ScatterElements: a copy of data with updates written at the positions indices name along
 * `axis` (negative indices count from the end); reduction (opset 16: add, mul; 18: max, min)
 * combines instead of overwriting. With reduction none and a repeated index the spec leaves the
 * result undefined; here the last update wins.
 */
const ScatterElements: OpCompiler = (ctx) => {
  ctx.arity(3, 3);
  const axisAttr = ctx.attrs.int('axis', 0);
  const reduction = ctx.opset >= 16 ? ctx.attrs.string('reduction', 'none') : 'none';
  ctx.attrs.done();
  const allowed = ctx.opset >= 18 ? ['none', 'add', 'mul', 'max', 'min'] : ['none', 'add', 'mul'];
  if (!allowed.includes(reduction)) throw ctx.error(`reduction '${reduction}' is not supported at opset ${ctx.opset} (${allowed.join(', ')})`);
  const combine = { none: (_a: number, b: number) => b, add: (a: number, b: number) => a + b, mul: (a: number, b: number) => a * b, max: Math.max, min: Math.min }[reduction]!;
  return ([d0, i0, u0]) => {
    const data = needInput(ctx, d0, 0), updates = needInput(ctx, u0, 2);
    const idx = intInput(ctx, i0, 1, 'indices');
    const dtype = sameType(ctx, [data, updates], ['float', 'int', 'bool'], 'data and updates');
    const r = data.shape.length;
    if (r === 0) throw ctx.error('data must have rank ≥ 1');
    const axis = normAxisOf(ctx, axisAttr, r);
    if (idx.shape.length !== r || updates.shape.length !== r || idx.shape.some((s, i) => s !== updates.shape[i] || (i !== axis && s > data.shape[i]))) {
      throw ctx.error(`indices ${shapeStr(idx.shape)} and updates ${shapeStr(updates.shape)} must have the same shape, of data's rank and within data ${shapeStr(data.shape)} off the axis`);
    }
    ctx.checkElements(data.shape, 'output', 8);
    const out = Float64Array.from(hostData(data));
    const upd = hostData(updates);
    const st = shapeStrides(data.shape);
    const dim = data.shape[axis];
    const pos = new Array<number>(r).fill(0);
    for (let k = 0; k < idx.size; k++) {
      let j = idx.data[k];
      if (j < 0) j += dim;
      if (!(j >= 0 && j < dim)) throw ctx.error(`index ${idx.data[k]} is out of range for axis ${axis} of size ${dim}`);
      let at = 0;
      for (let a = 0; a < r; a++) at += (a === axis ? j : pos[a]) * st[a];
      out[at] = combine(out[at], upd[k]);
      for (let a = r - 1; a >= 0; a--) {
        if (++pos[a] < idx.shape[a]) break;
        pos[a] = 0;
      }
    }
    return [makeValue(ctx, dtype, data.shape, out)];
  };
};

export const STANDARD_OPS: Record<string, OpCompiler> = {
  Add: binary('Add'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  Div: binary('Div'),
  Tanh: unary('Tanh', tanh),
  Sigmoid: unary('Sigmoid', sigmoid),
  Relu: unary('Relu', relu),
  Exp: unary('Exp', exp),
  Log: unary('Log', log),
  Neg: unary('Neg', neg),
  Sqrt: unary('Sqrt', sqrt),
  Abs: unary('Abs', abs),
  MatMul,
  Gemm,
  Softmax: softmaxOp(false),
  LogSoftmax: softmaxOp(true),
  Identity,
  Dropout,
  Constant,
  Cast,
  Shape,
  Reshape,
  Flatten,
  Transpose,
  Squeeze,
  Unsqueeze,
  Concat,
  Split,
  Slice,
  Gather,
  ReduceSum: reduceOp('ReduceSum'),
  ReduceMean: reduceOp('ReduceMean'),
  ReduceMax: reduceHost('ReduceMax'),
  ReduceMin: reduceHost('ReduceMin'),
  ReduceProd: reduceHost('ReduceProd'),
  TopK,
  ScatterElements: since(11, ScatterElements),
  Equal: compare('Equal'),
  Greater: compare('Greater'),
  Less: compare('Less'),
  GreaterOrEqual: since(12, compare('GreaterOrEqual')),
  LessOrEqual: since(12, compare('LessOrEqual')),
  Not,
  And: logic('And'),
  Or: logic('Or'),
  Xor: logic('Xor'),
  Where: since(9, Where),
  Min: minMax('Min'),
  Max: minMax('Max'),
  Clip,
  Pow,
  Erf: since(9, hostUnary('Erf', {}, erf)),
  Softplus: hostUnary('Softplus', {}, (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)))),
  HardSigmoid: hostUnary('HardSigmoid', { alpha: 0.2, beta: 0.5 }, (x, a) => Math.max(0, Math.min(1, a.alpha * x + a.beta))),
  LeakyRelu: hostUnary('LeakyRelu', { alpha: 0.01 }, (x, a) => (x >= 0 ? x : a.alpha * x)),
  Elu: hostUnary('Elu', { alpha: 1 }, (x, a) => (x > 0 ? x : a.alpha * (Math.exp(x) - 1))),
  ConstantOfShape: since(9, ConstantOfShape),
  Expand: since(8, Expand),
  Tile,
  Range: since(11, Range),
  Pad,
};
