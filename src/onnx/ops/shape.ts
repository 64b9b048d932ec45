/**
 * The ONNX operators that move or build tensors without arithmetic on their values: views and
 * copies (Reshape, Transpose, Slice, Gather, Concat, …), and the shape-building ops exporters wrap
 * around recurrent layers (ConstantOfShape, Expand, Tile, Range, Pad). Views allocate nothing.
 */
import { Tensor, shapeStr } from '../../tensor/tensor.ts';
import { embedding } from '../../autograd/ops/nn.ts';
import { concat, permute, reshape, slice } from '../../autograd/ops/shape.ts';
import { dtypeOfCode, isFloatDType, type IntDType, type OnnxDType } from '../tensor.ts';
import { HostInts, bytesPerElement, describeValue, intInput, normAxisOf, toValue, type Kernel, type NodeContext, type Value } from '../runtime.ts';
import { shapeSize, shapeStrides, stridedCopy } from '../../util/shape.ts';
import { broadcastShape, mapValue, reshapeValue, intList, needInput, hostData, makeValue, broadcastHost, sameType, type OpCompiler } from './common.ts';

// ---- shape movement -------------------------------------------------------------------------------

export const Identity: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  ctx.attrs.done();
  return ([x]) => [needInput(ctx, x, 0)];
};

export const Dropout: OpCompiler = (ctx) => {
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

export const Constant: OpCompiler = (ctx) => {
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

export const Cast: OpCompiler = (ctx) => {
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

/**
 * Shape's kernel, plus `ofShape`: its output computed from an input's shape alone (what the model
 * folds at load time for a graph input whose declared shape is all numbers).
 */
export type ShapeKernel = Kernel & { ofShape(shape: readonly number[]): HostInts };

export function isShapeKernel(k: Kernel): k is ShapeKernel {
  return typeof (k as Partial<ShapeKernel>).ofShape === 'function';
}

export const Shape: OpCompiler = (ctx) => {
  ctx.arity(1, 1);
  const start = ctx.opset >= 15 ? ctx.attrs.int('start', 0) : 0;
  const end = ctx.opset >= 15 ? ctx.attrs.int('end') : undefined;
  ctx.attrs.done();
  const ofShape = (s: readonly number[]): HostInts => {
    const r = s.length;
    const clampIdx = (i: number): number => Math.min(Math.max(i < 0 ? i + r : i, 0), r);
    const dims = s.slice(clampIdx(start), end === undefined ? r : clampIdx(end));
    ctx.checkElements([dims.length]);
    return new HostInts('int64', [dims.length], Float64Array.from(dims));
  };
  const kernel: ShapeKernel = Object.assign(([x0]: readonly (Value | null)[]) => [ofShape(needInput(ctx, x0, 0).shape)], { ofShape });
  return kernel;
};

export const Reshape: OpCompiler = (ctx) => {
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

export const Flatten: OpCompiler = (ctx) => {
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

export const Transpose: OpCompiler = (ctx) => {
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

export const Squeeze: OpCompiler = (ctx) => {
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

export const Unsqueeze: OpCompiler = (ctx) => {
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

export const Concat: OpCompiler = (ctx) => {
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

export const Split: OpCompiler = (ctx) => {
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

export const Slice: OpCompiler = (ctx) => {
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

export const Gather: OpCompiler = (ctx) => {
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

// ---- shape-building operators ---------------------------------------------------------------------

/** A 1-D int64 shape input, every entry a non-negative integer. */
function shapeInput(ctx: NodeContext, v: Value | null, i: number, name: string): number[] {
  const s = intList(ctx, v, i, name);
  for (const d of s) if (d < 0 || !Number.isSafeInteger(d)) throw ctx.error(`${name} ${shapeStr(s)} has a negative or invalid dimension`);
  return s;
}

export const ConstantOfShape: OpCompiler = (ctx) => {
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

export const Expand: OpCompiler = (ctx) => {
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

export const Tile: OpCompiler = (ctx) => {
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

export const Range: OpCompiler = (ctx) => {
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

export const Pad: OpCompiler = (ctx) => {
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

