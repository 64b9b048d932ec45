/**
 * Element-wise kernels and reductions: axpy and scaling, row-vector adds and column sums, unary and
 * broadcasting binary ops, reductions (sum, sum of squares, max |x|, the first non-finite), clamping,
 * the shape movements (permute, slices), and the Adam update.
 *
 * Element-wise loops over more than two axes merge neighbouring axes first (mergeLoops); what stays
 * irreducible after that runs as a strided loop on the host. The big float32 column sums and Adam
 * split across the pool; every element keeps its own order, so the split never changes a result.
 */
import { elementBytes, type BinaryOp, BackendError, type Storage, type UnaryOp } from '../interface.ts';
import { shapeSize, shapeStrides } from '../../util/shape.ts';
import { type WasmContext, addressOf, firstIndex, markWritten } from './context.ts';
import { JOBS } from './threads.ts';
import { maxOverTimeBackwardLoop, maxOverTimeLoop } from '../time-pool.ts';

/** The op codes of assembly/elementwise.ts. */
const UNARY: Record<UnaryOp, number> = { neg: 0, exp: 1, log: 2, tanh: 3, sigmoid: 4, relu: 5, sqrt: 6, square: 7, abs: 8, softplus: 9 };
const BINARY: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3 };

/**
 * Describe an element-wise loop over `shape` in which each operand k is read with `strides[k]`
 * (0 on broadcast axes), with size-1 axes dropped and neighbouring axes merged wherever every
 * operand walks them contiguously. Returns the merged dims and per-operand strides.
 */
function mergeLoops(shape: readonly number[], strides: readonly (readonly number[])[]): { dims: number[]; st: number[][] } {
  const dims: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k][last] === s[i] * shape[i])) {
      dims[last] *= shape[i];
      strides.forEach((s, k) => { st[k][last] = s[i]; });
    } else {
      dims.push(shape[i]);
      strides.forEach((s, k) => st[k].push(s[i]));
    }
  }
  return { dims, st };
}

/** Strides of an operand of shape `own` read along `full` (0 where it broadcasts). */
function bcastStrides(own: readonly number[], full: readonly number[]): number[] {
  const s = shapeStrides(own);
  return own.map((d, i) => (d === 1 && full[i] !== 1 ? 0 : s[i]));
}

export function axpy(ctx: WasmContext, n: number, alpha: number, xs: Storage, xOff: number, ys: Storage, yOff: number): void {
  const y = ctx.own(ys, 'axpy y');
  const x = ctx.span(xs, xOff, n, y.dtype, 'axpy x');
  ctx.span(y, yOff, n, y.dtype, 'axpy y');
  if (n === 0) return;
  (y.dtype === 'float32' ? ctx.kernels.axpy_f32 : ctx.kernels.axpy_f64)(n, alpha, addressOf(x, xOff), addressOf(markWritten(y), yOff));
}

export function scale(ctx: WasmContext, n: number, alpha: number, xs: Storage, xOff: number): void {
  const x = ctx.own(xs, 'scale x');
  ctx.span(x, xOff, n, x.dtype, 'scale x');
  if (n === 0) return;
  (x.dtype === 'float32' ? ctx.kernels.scale_f32 : ctx.kernels.scale_f64)(n, alpha, addressOf(markWritten(x), xOff));
}

export function addRowVector(ctx: WasmContext, rows: number, cols: number, bias: Storage, bOff: number, Xs: Storage, xOff: number): void {
  const X = ctx.own(Xs, 'addRowVector X');
  ctx.span(X, xOff, rows * cols, X.dtype, 'addRowVector X');
  const b = ctx.span(bias, bOff, rows > 0 ? cols : 0, X.dtype, 'addRowVector bias');
  if (rows * cols === 0) return;
  (X.dtype === 'float32' ? ctx.kernels.addRowVector_f32 : ctx.kernels.addRowVector_f64)(rows, cols, addressOf(b, bOff), addressOf(markWritten(X), xOff));
}

export function sumRowsBackward(ctx: WasmContext, rows: number, cols: number, Xs: Storage, xOff: number, out: Storage, oOff: number): void {
  const o = ctx.own(out, 'sumRowsBackward out');
  const X = ctx.span(Xs, xOff, rows * cols, o.dtype, 'sumRowsBackward X');
  ctx.span(o, oOff, rows > 0 ? cols : 0, o.dtype, 'sumRowsBackward out');
  if (rows * cols === 0) return;
  if (o.dtype === 'float32') sumRowsF32(ctx, rows, cols, addressOf(X, xOff), addressOf(markWritten(o), oOff));
  else ctx.kernels.sumRows_f64(rows, cols, addressOf(X, xOff), addressOf(markWritten(o), oOff));
}

/**
 * out[c] += column sums of a rows×cols float32 block (sumRowsLd_f32: each column in row order,
 * so any split is bit-identical), split by column ranges across the pool when it is big enough.
 */
function sumRowsF32(ctx: WasmContext, rows: number, cols: number, xPtr: number, outPtr: number): void {
  const pool = ctx.pool;
  if (pool === null || rows * cols < 2 ** 16 || cols < 128) {
    ctx.kernels.sumRowsLd_f32(rows, cols, cols, xPtr, outPtr);
    return;
  }
  // one column range per thread: narrower ranges cut the rows into short pieces and stream worse
  // (2048 × 1024: 64 µs in 2 chunks, 128 µs in 8)
  const colsPerChunk = Math.max(64, Math.ceil(cols / pool.size / 16) * 16);
  const args = pool.args; // slot layout: threads.ts
  args[0] = JOBS.SUMROWS; args[1] = rows; args[2] = cols; args[3] = xPtr; args[4] = outPtr; args[14] = colsPerChunk;
  pool.run(ctx.kernels, Math.ceil(cols / colsPerChunk));
}

// ---- element-wise -----------------------------------------------------------------------------------

export function unary(ctx: WasmContext, op: UnaryOp, n: number, xs: Storage, outs: Storage): void {
  const code = UNARY[op];
  if (code === undefined) throw new BackendError(`wasm backend: unknown unary op '${String(op)}'`);
  const o = ctx.own(outs, `unary ${op} out`);
  const x = ctx.span(xs, 0, n, o.dtype, `unary ${op} x`);
  ctx.span(o, 0, n, o.dtype, `unary ${op} out`);
  if (n === 0) return;
  (o.dtype === 'float32' ? ctx.kernels.unary_f32 : ctx.kernels.unary_f64)(code, n, x.ptr, markWritten(o).ptr);
}

export function unaryBackward(ctx: WasmContext, op: UnaryOp, n: number, xs: Storage, ys: Storage, dys: Storage, dxs: Storage): void {
  const code = UNARY[op];
  if (code === undefined) throw new BackendError(`wasm backend: unknown unary op '${String(op)}'`);
  const dx = ctx.own(dxs, `unaryBackward ${op} dx`);
  const dt = dx.dtype;
  ctx.span(dx, 0, n, dt, `unaryBackward ${op} dx`);
  const x = ctx.span(xs, 0, n, dt, `unaryBackward ${op} x`);
  const y = ctx.span(ys, 0, n, dt, `unaryBackward ${op} y`);
  const dy = ctx.span(dys, 0, n, dt, `unaryBackward ${op} dy`);
  if (n === 0) return;
  (dt === 'float32' ? ctx.kernels.unaryBackward_f32 : ctx.kernels.unaryBackward_f64)(code, n, x.ptr, y.ptr, dy.ptr, markWritten(dx).ptr);
}

export function binary(ctx: WasmContext, op: BinaryOp, as: Storage, aShape: readonly number[], bs: Storage, bShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
  const code = BINARY[op];
  if (code === undefined) throw new BackendError(`wasm backend: unknown binary op '${String(op)}'`);
  const rank = outShape.length;
  if (aShape.length !== rank || bShape.length !== rank) {
    throw new BackendError(`wasm backend: binary expects equal ranks, got ${aShape.length}, ${bShape.length}, ${rank}`);
  }
  for (let i = 0; i < rank; i++) {
    for (const [s, what] of [[aShape, 'a'], [bShape, 'b']] as const) {
      if (s[i] !== outShape[i] && s[i] !== 1) throw new BackendError(`wasm backend: binary: ${what} shape [${s.join(', ')}] does not broadcast to [${outShape.join(', ')}]`);
    }
  }
  const o = ctx.own(outs, `binary ${op} out`);
  const dt = o.dtype;
  const n = shapeSize(outShape);
  ctx.span(o, 0, n, dt, `binary ${op} out`);
  const a = ctx.span(as, 0, shapeSize(aShape), dt, `binary ${op} a`);
  const b = ctx.span(bs, 0, shapeSize(bShape), dt, `binary ${op} b`);
  if (n === 0) return;
  markWritten(o);
  const { dims, st } = mergeLoops(outShape, [bcastStrides(aShape, outShape), bcastStrides(bShape, outShape)]);
  const f32 = dt === 'float32';
  if (dims.length <= 1) {
    const len = dims.length === 0 ? 1 : dims[0];
    const sa = dims.length === 0 ? 1 : st[0][0], sb = dims.length === 0 ? 1 : st[1][0];
    if (sa === 1 && sb === 1) (f32 ? ctx.kernels.binaryRows_f32 : ctx.kernels.binaryRows_f64)(code, 1, len, a.ptr, 0, b.ptr, 0, o.ptr);
    else (f32 ? ctx.kernels.binary2d_f32 : ctx.kernels.binary2d_f64)(code, 1, len, a.ptr, sa, 0, b.ptr, sb, 0, o.ptr);
    return;
  }
  if (dims.length === 2) {
    const [R, Cn] = dims;
    const [[ar, ac], [br, bc]] = st;
    if (ac === 1 && bc === 1 && (ar === 0 || ar === Cn) && (br === 0 || br === Cn)) {
      (f32 ? ctx.kernels.binaryRows_f32 : ctx.kernels.binaryRows_f64)(code, R, Cn, a.ptr, ar, b.ptr, br, o.ptr);
    } else {
      (f32 ? ctx.kernels.binary2d_f32 : ctx.kernels.binary2d_f64)(code, R, Cn, a.ptr, ac, ar, b.ptr, bc, br, o.ptr);
    }
    return;
  }
  // three or more irreducible axes: a strided loop on the host
  const v = ctx.view(dt);
  const ai = firstIndex(a), bi = firstIndex(b), oi = firstIndex(o);
  const fn = code === 0 ? (x: number, y: number) => x + y : code === 1 ? (x: number, y: number) => x - y : code === 2 ? (x: number, y: number) => x * y : (x: number, y: number) => x / y;
  const total = shapeSize(dims);
  const idx = new Array<number>(dims.length).fill(0);
  let pa = ai, pb = bi;
  for (let i = 0; i < total; i++) {
    v[oi + i] = fn(v[pa], v[pb]);
    for (let ax = dims.length - 1; ax >= 0; ax--) {
      pa += st[0][ax];
      pb += st[1][ax];
      if (++idx[ax] < dims[ax]) break;
      pa -= st[0][ax] * dims[ax];
      pb -= st[1][ax] * dims[ax];
      idx[ax] = 0;
    }
  }
}

/** Backend.maxOverTime on the heap (the shared loop of ../time-pool.ts). */
export function maxOverTime(ctx: WasmContext, T: number, B: number, F: number, xs: Storage, lengths: Int32Array | null, outs: Storage): void {
  const o = markWritten(ctx.own(outs, 'maxOverTime out'));
  ctx.span(o, 0, B * F, o.dtype, 'maxOverTime out');
  const x = ctx.span(xs, 0, T * B * F, o.dtype, 'maxOverTime x');
  const v = ctx.view(o.dtype);
  maxOverTimeLoop(T, B, F, v, firstIndex(x), lengths, v, firstIndex(o));
}

/** Backend.maxOverTimeBackward on the heap. */
export function maxOverTimeBackward(ctx: WasmContext, T: number, B: number, F: number, xs: Storage, lengths: Int32Array | null, outs: Storage, dys: Storage, dxs: Storage): void {
  const dx = markWritten(ctx.own(dxs, 'maxOverTimeBackward dx'));
  const dt = dx.dtype;
  ctx.span(dx, 0, T * B * F, dt, 'maxOverTimeBackward dx');
  const x = ctx.span(xs, 0, T * B * F, dt, 'maxOverTimeBackward x');
  const o = ctx.span(outs, 0, B * F, dt, 'maxOverTimeBackward out');
  const dy = ctx.span(dys, 0, B * F, dt, 'maxOverTimeBackward dy');
  const v = ctx.view(dt);
  maxOverTimeBackwardLoop(T, B, F, v, firstIndex(x), lengths, v, firstIndex(o), v, firstIndex(dy), v, firstIndex(dx));
}

export function reduceSum(ctx: WasmContext, xs: Storage, xShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
  const rank = xShape.length;
  if (outShape.length !== rank) throw new BackendError(`wasm backend: reduceSum expects equal ranks, got ${rank} and ${outShape.length}`);
  for (let i = 0; i < rank; i++) {
    if (outShape[i] !== xShape[i] && outShape[i] !== 1) throw new BackendError(`wasm backend: reduceSum: [${outShape.join(', ')}] is not a reduction of [${xShape.join(', ')}]`);
  }
  const o = markWritten(ctx.own(outs, 'reduceSum out'));
  const dt = o.dtype;
  const no = shapeSize(outShape);
  ctx.span(o, 0, no, dt, 'reduceSum out');
  const x = ctx.span(xs, 0, shapeSize(xShape), dt, 'reduceSum x');
  const v = ctx.view(dt);
  const oi = firstIndex(o), xi = firstIndex(x);
  if (no > 0) (dt === 'float32' ? ctx.kernels.fill_f32 : ctx.kernels.fill_f64)(o.ptr, no, 0);
  const n = shapeSize(xShape);
  if (n === 0) return;
  const { dims, st } = mergeLoops(xShape, [shapeStrides(xShape), bcastStrides(outShape, xShape)]);
  const os = st[1];
  if (dims.length === 2 && os[0] === 0 && os[1] === 1) {
    // column sums of a [R, C] block, rows in order (as the reference accumulates)
    if (dt === 'float32') sumRowsF32(ctx, dims[0], dims[1], x.ptr, o.ptr);
    else ctx.kernels.sumRows_f64(dims[0], dims[1], x.ptr, o.ptr);
    return;
  }
  const idx = new Array<number>(dims.length).fill(0);
  let po = oi;
  for (let i = 0; i < n; i++) {
    v[po] += v[xi + i];
    for (let ax = dims.length - 1; ax >= 0; ax--) {
      po += os[ax];
      if (++idx[ax] < dims[ax]) break;
      po -= os[ax] * dims[ax];
      idx[ax] = 0;
    }
  }
}

export function sumSquares(ctx: WasmContext, n: number, xs: Storage, xOff: number): number {
  const x = ctx.own(xs, 'sumSquares x');
  ctx.span(x, xOff, n, x.dtype, 'sumSquares x');
  if (n === 0) return 0;
  return (x.dtype === 'float32' ? ctx.kernels.sumSquares_f32 : ctx.kernels.sumSquares_f64)(n, addressOf(x, xOff));
}

export function findNonFinite(ctx: WasmContext, n: number, xs: Storage, xOff: number): number {
  const x = ctx.own(xs, 'findNonFinite x');
  ctx.span(x, xOff, n, x.dtype, 'findNonFinite x');
  if (n === 0) return -1;
  return (x.dtype === 'float32' ? ctx.kernels.findNonFinite_f32 : ctx.kernels.findNonFinite_f64)(n, addressOf(x, xOff));
}

export function maxAbs(ctx: WasmContext, n: number, xs: Storage, xOff: number): number {
  const x = ctx.own(xs, 'maxAbs x');
  ctx.span(x, xOff, n, x.dtype, 'maxAbs x');
  if (n === 0) return 0;
  return (x.dtype === 'float32' ? ctx.kernels.maxAbs_f32 : ctx.kernels.maxAbs_f64)(n, addressOf(x, xOff));
}

export function clamp(ctx: WasmContext, n: number, xs: Storage, xOff: number, lo: number, hi: number): void {
  const x = ctx.own(xs, 'clamp x');
  ctx.span(x, xOff, n, x.dtype, 'clamp x');
  if (n === 0) return;
  (x.dtype === 'float32' ? ctx.kernels.clamp_f32 : ctx.kernels.clamp_f64)(n, addressOf(markWritten(x), xOff), lo, hi);
}

// ---- shape movement ---------------------------------------------------------------------------------

export function permute(ctx: WasmContext, xs: Storage, shape: readonly number[], perm: readonly number[], outs: Storage): void {
  const rank = shape.length;
  if (perm.length !== rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    throw new BackendError(`wasm backend: permute: [${perm.join(', ')}] is not a permutation of ${rank} axes`);
  }
  const o = markWritten(ctx.own(outs, 'permute out'));
  const n = shapeSize(shape);
  ctx.span(o, 0, n, o.dtype, 'permute out');
  const x = ctx.span(xs, 0, n, o.dtype, 'permute x');
  if (n === 0) return;
  const inSt = shapeStrides(shape);
  const outShape = perm.map((p) => shape[p]);
  const { dims, st } = mergeLoops(outShape, [perm.map((p) => inSt[p])]);
  const s = st[0];
  const es = elementBytes(o.dtype);
  if (dims.length <= 1) {
    ctx.kernels.copyBytes(o.ptr, x.ptr, n * es);
    return;
  }
  const v = ctx.view(o.dtype);
  const oi = firstIndex(o), xi = firstIndex(x);
  const last = dims.length - 1;
  const inner = dims[last], sIn = s[last];
  const outer = n / inner;
  const idx = new Array<number>(last).fill(0);
  let px = xi, po = oi;
  for (let r = 0; r < outer; r++) {
    if (sIn === 1) ctx.kernels.copyBytes(po * es, px * es, inner * es);
    else for (let j = 0, q = px; j < inner; j++, q += sIn) v[po + j] = v[q];
    po += inner;
    for (let ax = last - 1; ax >= 0; ax--) {
      px += s[ax];
      if (++idx[ax] < dims[ax]) break;
      px -= s[ax] * dims[ax];
      idx[ax] = 0;
    }
  }
}

export function sliceAxis(ctx: WasmContext, xs: Storage, shape: readonly number[], axis: number, start: number, len: number, outs: Storage): void {
  const dim = shape[axis];
  if (!(axis >= 0 && axis < shape.length && start >= 0 && len >= 0 && start + len <= dim)) {
    throw new BackendError(`wasm backend: sliceAxis: [${start}, ${start + len}) on axis ${axis} of [${shape.join(', ')}]`);
  }
  const o = markWritten(ctx.own(outs, 'sliceAxis out'));
  const outer = shapeSize(shape.slice(0, axis)), inner = shapeSize(shape.slice(axis + 1));
  ctx.span(o, 0, outer * len * inner, o.dtype, 'sliceAxis out');
  const x = ctx.span(xs, 0, shapeSize(shape), o.dtype, 'sliceAxis x');
  const chunk = len * inner;
  if (chunk === 0) return;
  const es = elementBytes(o.dtype);
  for (let p = 0; p < outer; p++) ctx.kernels.copyBytes(addressOf(o, p * chunk), addressOf(x, (p * dim + start) * inner), chunk * es);
}

export function addIntoAxis(ctx: WasmContext, srcs: Storage, srcShape: readonly number[], dsts: Storage, dstShape: readonly number[], axis: number, start: number): void {
  const len = srcShape[axis], dim = dstShape[axis];
  if (!(axis >= 0 && axis < srcShape.length && srcShape.length === dstShape.length && start >= 0 && start + len <= dim)) {
    throw new BackendError(`wasm backend: addIntoAxis: [${srcShape.join(', ')}] at ${start} on axis ${axis} of [${dstShape.join(', ')}]`);
  }
  const d = markWritten(ctx.own(dsts, 'addIntoAxis dst'));
  ctx.span(d, 0, shapeSize(dstShape), d.dtype, 'addIntoAxis dst');
  const s = ctx.span(srcs, 0, shapeSize(srcShape), d.dtype, 'addIntoAxis src');
  const outer = shapeSize(srcShape.slice(0, axis)), inner = shapeSize(srcShape.slice(axis + 1));
  const chunk = len * inner;
  if (chunk === 0) return;
  const axpy = d.dtype === 'float32' ? ctx.kernels.axpy_f32 : ctx.kernels.axpy_f64;
  for (let p = 0; p < outer; p++) axpy(chunk, 1, addressOf(s, p * chunk), addressOf(d, (p * dim + start) * inner));
}

// ---- optimizers -------------------------------------------------------------------------------------

/** One Adam (or AdamW when decoupled) step over n parameters, with the reference's per-step scalars. */
export function adamUpdate(ctx: WasmContext, n: number, ps: Storage, gs: Storage, ms: Storage, vs: Storage, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, step: number): void {
  const p = ctx.own(ps, 'adamUpdate p');
  const dt = p.dtype;
  ctx.span(p, 0, n, dt, 'adamUpdate p');
  const g = ctx.span(gs, 0, n, dt, 'adamUpdate g');
  const m = ctx.span(ms, 0, n, dt, 'adamUpdate m');
  const v = ctx.span(vs, 0, n, dt, 'adamUpdate v');
  if (n === 0) return;
  // the per-step scalars exactly as the reference computes them
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  const decay = decoupled ? 1 - lr * weightDecay : 1;
  markWritten(p);
  markWritten(m);
  markWritten(v);
  const pool = ctx.pool;
  if (dt === 'float64' || pool === null || n < 2 ** 14) {
    (dt === 'float32' ? ctx.kernels.adam_f32 : ctx.kernels.adam_f64)(n, p.ptr, g.ptr, m.ptr, v.ptr, beta1, beta2, eps, weightDecay, +decoupled, stepSize, bc2Sqrt, decay);
    return;
  }
  // float32 on the pool by element ranges (every element is independent: bit-identical to one thread)
  const elemsPerChunk = Math.ceil(n / (4 * pool.size) / 16) * 16;
  const args = pool.args; // slot layout: threads.ts
  args[0] = JOBS.ADAM; args[1] = n; args[2] = p.ptr; args[3] = g.ptr; args[4] = m.ptr; args[5] = v.ptr; args[6] = beta1; args[7] = beta2; args[8] = eps;
  args[9] = weightDecay; args[10] = +decoupled; args[11] = stepSize; args[12] = bc2Sqrt; args[13] = decay; args[14] = elemsPerChunk;
  pool.run(ctx.kernels, Math.ceil(n / elemsPerChunk));
}
