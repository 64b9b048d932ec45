/**
 * The ONNX operators computed on the host: comparisons, logic, Where, Min/Max/Clip/Pow and the
 * small activations of heads (float64, rounded once to the output type), ReduceMax/Min/Prod, and
 * the sort of unsorted packed sequences (TopK, ScatterElements).
 */
import { shapeStr } from '../../tensor/tensor.ts';
import { isFloatDType, type OnnxDType } from '../tensor.ts';
import { HostInts, describeValue, floatInput, intInput, normAxisOf, type Value } from '../runtime.ts';
import { odometerStep, shapeSize, shapeStrides } from '../../util/shape.ts';
import { intList, needInput, hostData, makeValue, broadcastHost, sameType, type OpCompiler } from './common.ts';

export function compare(kind: 'Equal' | 'Greater' | 'Less' | 'GreaterOrEqual' | 'LessOrEqual'): OpCompiler {
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
    // The spec's type lists: Equal takes floats from opset 11, Greater/Less integers from 9.
    const allowed: ('float' | 'int' | 'bool')[] = kind === 'Equal' ? (ctx.opset >= 11 ? ['float', 'int', 'bool'] : ['int', 'bool'])
      : ctx.opset >= 9 ? ['float', 'int'] : ['float'];
    return ([a0, b0]) => {
      const a = needInput(ctx, a0, 0), b = needInput(ctx, b0, 1);
      sameType(ctx, [a, b], allowed);
      return [broadcastHost(ctx, [a, b], 'bool', f)];
    };
  };
}

export function logic(kind: 'And' | 'Or' | 'Xor'): OpCompiler {
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

export const Not: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  ctx.attrs.done();
  return ([x0]) => {
    const x = needInput(ctx, x0, 0);
    sameType(ctx, [x], ['bool'], 'input');
    return [broadcastHost(ctx, [x], 'bool', (a) => 1 - a)];
  };
};

export const Where: OpCompiler = (ctx) => {
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
export function minMax(kind: 'Min' | 'Max'): OpCompiler {
  return (ctx) => {
    if (ctx.inputs.length < 1) throw ctx.error('needs at least one input');
    ctx.arity(1, ctx.inputs.length);
    ctx.attrs.done();
    const allowed: ('float' | 'int')[] = ctx.opset >= 12 ? ['float', 'int'] : ['float'];
    const f = kind === 'Min' ? Math.min : Math.max;
    return (inputs) => {
      const xs = inputs.map((v, i) => needInput(ctx, v, i));
      const dtype = sameType(ctx, xs, allowed);
      let acc = xs[0];
      if (xs.length === 1) return [broadcastHost(ctx, [acc], dtype, (a) => a)];
      for (let k = 1; k < xs.length; k++) acc = broadcastHost(ctx, [acc, xs[k]], dtype, f);
      return [acc];
    };
  };
}

export const Clip: OpCompiler = (ctx) => {
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
  const allowed: ('float' | 'int')[] = ctx.opset >= 12 ? ['float', 'int'] : ['float'];
  return ([x0, lo0, hi0]) => {
    const x = needInput(ctx, x0, 0);
    const dtype = sameType(ctx, [x], allowed, 'input');
    // Without a bound, the bound is the type's extreme: no clipping on that side.
    const lo = (modern ? scalar(lo0 ?? null, 1, 'min', dtype) : attrMin) ?? -Infinity;
    const hi = (modern ? scalar(hi0 ?? null, 2, 'max', dtype) : attrMax) ?? Infinity;
    // min > max gives max everywhere (the spec's rule, and what this order of min/max does).
    return [broadcastHost(ctx, [x], dtype, (a) => (Number.isNaN(a) ? a : Math.min(Math.max(a, lo), hi)))];
  };
};

export const Pow: OpCompiler = (ctx) => {
  ctx.arity(2, 2);
  ctx.attrs.done();
  const allowed: ('float' | 'int')[] = ctx.opset >= 12 ? ['float', 'int'] : ['float'];
  return ([x0, y0]) => {
    const x = needInput(ctx, x0, 0), y = needInput(ctx, y0, 1);
    const dtype = sameType(ctx, [x], allowed, 'X');
    if (ctx.opset < 12) sameType(ctx, [x, y], ['float'], 'X and Y');
    else sameType(ctx, [y], ['float', 'int'], 'Y');
    const isInt = !isFloatDType(dtype);
    return [broadcastHost(ctx, [x, y], dtype, (a, b) => (isInt ? Math.trunc(a ** b) : a ** b))];
  };
};

/** erf(x) by Numerical Recipes' erfc Chebyshev fit (fractional error < 1.2e-7, below float32's). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

/** A float element-wise function with float attributes (alpha, beta), on the host. */
export function hostUnary(kind: string, attrs: Record<string, number>, f: (x: number, a: Record<string, number>) => number): OpCompiler {
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

/** ReduceMax / ReduceMin / ReduceProd (axes an input from opset 18), on floats and integers, on the host. */
export function reduceHost(kind: 'ReduceMax' | 'ReduceMin' | 'ReduceProd'): OpCompiler {
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
        pos += odometerStep(idx, x.shape, ost);
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
export const TopK: OpCompiler = (ctx) => {
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
export const ScatterElements: OpCompiler = (ctx) => {
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

