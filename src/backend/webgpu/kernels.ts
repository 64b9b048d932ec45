/// <reference types="@webgpu/types" />
/**
 * The WGSL kernels of the WebGPU backend, one record each (src/backend/webgpu/wgsl.ts says how a
 * record becomes a shader). The math of each is the js backend's (src/backend/js.ts), the
 * oracle they are tested against; what differs is the shape of the work:
 * - element-wise kernels run one invocation per element;
 * - row kernels (softmax, cross-entropy) run one workgroup of 64 per row, reducing in workgroup
 *   memory, so a 10,000-word vocabulary is 64-wide work rather than one long serial loop;
 * - column sums and reductions that must be deterministic loop in a fixed order per output;
 * - the GEMM is tiled 64×64 over 16-deep slices of K in workgroup memory, each invocation holding a
 *   4×4 block of C in registers; transposed operands are read in place (the loads pick the
 *   coalesced direction), never copied;
 * - the recurrent cells run one invocation per (row, hidden unit), with masking by lengths.
 */
import { WgslKernel } from './wgsl.ts';

/** Element-wise kernel over n invocations; the statement sees `i`. */
function map(name: string, f32: readonly string[], params: readonly string[], stmt: string, i32?: readonly string[]): WgslKernel {
  return new WgslKernel({ name, f32, i32, params: ['n', ...params], body: `  if (gid >= n) { return; }\n  let i = gid;\n${stmt}` });
}

export const UNARY_CODES = { neg: 0, exp: 1, log: 2, tanh: 3, sigmoid: 4, relu: 5, sqrt: 6, square: 7, abs: 8, softplus: 9 } as const;
export const BINARY_CODES = { add: 0, sub: 1, mul: 2, div: 3 } as const;
/** The rank limit of the shape kernels (binary, reduceSum, permute): parameters hold 8 per shape. */
export const MAX_RANK = 8;

export const fill = map('fill', ['x'], ['off', 'v:f'], '  x[off + i] = v;');
export const axpy = map('axpy', ['x', 'y'], ['xOff', 'yOff', 'alpha:f'], '  y[yOff + i] = y[yOff + i] + alpha * x[xOff + i];');
export const scale = map('scale', ['x'], ['off', 'alpha:f'], '  x[off + i] = x[off + i] * alpha;');
export const addRowVector = map('addRowVector', ['bias', 'X'], ['cols', 'bOff', 'xOff'], '  X[xOff + i] = X[xOff + i] + bias[bOff + i % cols];');

/** One invocation per column, rows summed in order (the js backend's order, so float32 sums agree). */
export const sumRowsBackward = map('sumRowsBackward', ['X', 'out'], ['rows', 'xOff', 'oOff'], /* wgsl */ `
  var s = out[oOff + i];
  for (var r = 0u; r < rows; r++) { s = s + X[xOff + r * n + i]; }
  out[oOff + i] = s;`);

export const unary = map('unary', ['x', 'out'], ['op'], /* wgsl */ `
  let v = x[i];
  var r: f32;
  switch op {
    case 0u: { r = -v; }
    case 1u: { r = exp(v); }
    case 2u: { r = log(v); }
    case 3u: { r = tanh_(v); }
    case 4u: { r = sigmoid(v); }
    case 5u: { r = select(0.0, v, v > 0.0); }
    case 6u: { r = sqrt(v); }
    case 7u: { r = v * v; }
    case 8u: { r = abs(v); }
    default: {
      // softplus = max(x, 0) + log1p(exp(−|x|)); log1p by its series where 1 + e would round
      let e = exp(-abs(v));
      r = max(v, 0.0) + select(log(1.0 + e), e - 0.5 * e * e, e < 1e-4);
    }
  }
  out[i] = r;`);

export const unaryBackward = map('unaryBackward', ['x', 'y', 'dy', 'dx'], ['op'], /* wgsl */ `
  let g = dy[i];
  var d: f32;
  switch op {
    case 0u: { d = -g; }
    case 1u: { d = g * y[i]; }
    case 2u: { d = g / x[i]; }
    case 3u: { d = g * (1.0 - y[i] * y[i]); }
    case 4u: { d = g * y[i] * (1.0 - y[i]); }
    case 5u: { d = select(0.0, g, x[i] > 0.0); }
    case 6u: { d = g * 0.5 / y[i]; }
    case 7u: { d = g * 2.0 * x[i]; }
    case 8u: { d = g * sign(x[i]); }
    default: { d = g * sigmoid(x[i]); }
  }
  dx[i] = dx[i] + d;`);

/** out = a ∘ b with broadcasting: strides of a and b are 0 on their broadcast axes. */
export const binary = map('binary', ['a', 'b', 'out'], ['rank', 'op', 'shape:8', 'sa:8', 'sb:8'], /* wgsl */ `
  var rest = i;
  var ai = 0u;
  var bi = 0u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let k = rest % shape(u32(d));
    rest = rest / shape(u32(d));
    ai += k * sa(u32(d));
    bi += k * sb(u32(d));
  }
  let u = a[ai];
  let w = b[bi];
  var r: f32;
  switch op {
    case 0u: { r = u + w; }
    case 1u: { r = u - w; }
    case 2u: { r = u * w; }
    default: { r = u / w; }
  }
  out[i] = r;`);

/**
 * One invocation per output element, summing its reduced block of x in memory order (the js
 * backend's order). An axis is reduced where the output has 1 and x does not.
 */
export const reduceSum = map('reduceSum', ['x', 'out'], ['rank', 'xShape:8', 'xStride:8', 'oShape:8'], /* wgsl */ `
  var rest = i;
  var base = 0u;
  var count = 1u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let a = u32(d);
    let k = rest % oShape(a);
    rest = rest / oShape(a);
    base += k * xStride(a);
    if (oShape(a) == 1u) { count *= xShape(a); }
  }
  var s = 0.0;
  for (var r = 0u; r < count; r++) {
    var q = r;
    var off = base;
    for (var d = i32(rank) - 1; d >= 0; d--) {
      let a = u32(d);
      if (oShape(a) == 1u && xShape(a) != 1u) {
        off += (q % xShape(a)) * xStride(a);
        q = q / xShape(a);
      }
    }
    s = s + x[off];
  }
  out[i] = s;`);

export const clamp = map('clamp', ['x'], ['off', 'lo:f', 'hi:f'], /* wgsl */ `
  let v = x[off + i];
  if (!isNan(v)) { x[off + i] = select(select(v, hi, v > hi), lo, v < lo); }`);

/** out[i] = x[Σ coord·stride] with coordinates of i over the output shape. */
export const permute = map('permute', ['x', 'out'], ['rank', 'oShape:8', 'st:8'], /* wgsl */ `
  var rest = i;
  var src = 0u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let a = u32(d);
    src += (rest % oShape(a)) * st(a);
    rest = rest / oShape(a);
  }
  out[i] = x[src];`);

export const sliceAxis = map('sliceAxis', ['x', 'out'], ['len', 'inner', 'dim', 'start'], /* wgsl */ `
  let block = len * inner;
  out[i] = x[((i / block) * dim + start) * inner + i % block];`);

export const addIntoAxis = map('addIntoAxis', ['src', 'dst'], ['len', 'inner', 'dim', 'start'], /* wgsl */ `
  let block = len * inner;
  let o = ((i / block) * dim + start) * inner + i % block;
  dst[o] = dst[o] + src[i];`);

// ---- reductions to the host: one workgroup, per-invocation partials, combined on the host in float64

/**
 * Σ x² with no rounding in the squares and a double-float accumulator: x splits by its bits into a
 * 12-bit head and a 12-bit tail, so head², 2·head·tail and tail² are exact in float32, and each
 * is added with TwoSum into (hi, lo). About 44 bits of sum — what float64 accumulation promises,
 * with no float64 on the GPU. Each invocation writes its (hi, lo) pair; the host adds the 512.
 */
export const sumSquares = new WgslKernel({
  name: 'sumSquares', f32: ['x', 'out'], params: ['n', 'off', 'zero'],
  module: /* wgsl */ `
// x with its bits XORed with a parameter that is always 0: the compiler cannot see through it, so
// it cannot simplify TwoSum's error term to 0 (shader compilers reassociate float math)
fn opaque(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ pu(2u)); }
fn twoSum(a: f32, b: f32) -> vec2<f32> {
  let s = opaque(a + b);
  let bb = opaque(s - a);
  return vec2<f32>(s, (a - opaque(s - bb)) + (b - bb));
}
fn addDF(acc: vec2<f32>, t: f32) -> vec2<f32> {
  let s = twoSum(acc.x, t);
  return twoSum(s.x, s.y + acc.y);
}`,
  body: /* wgsl */ `
  var acc = vec2<f32>(0.0, 0.0);
  for (var k = lid; k < n; k += WG) {
    let v = x[off + k];
    let head = bitcast<f32>(bitcast<u32>(v) & 0xfffff000u);
    let tail = v - head;
    acc = addDF(acc, head * head);
    acc = addDF(acc, 2.0 * head * tail);
    acc = addDF(acc, tail * tail);
  }
  out[2u * lid] = acc.x;
  out[2u * lid + 1u] = acc.y;`,
});

/** Per-invocation max |x| (NaN if any NaN it saw); the host takes the max of the 256. */
export const maxAbs = new WgslKernel({
  name: 'maxAbs', f32: ['x', 'out'], params: ['n', 'off'],
  body: /* wgsl */ `
  var m = 0.0;
  var sawNan = false;
  for (var k = lid; k < n; k += WG) {
    let v = abs(x[off + k]);
    if (isNan(v)) { sawNan = true; }
    m = select(m, v, v > m);
  }
  out[lid] = select(m, nan(), sawNan);`,
});

/** Per-invocation first non-finite index (−1 for none); the host takes the smallest. */
export const findNonFinite = new WgslKernel({
  name: 'findNonFinite', f32: ['x'], i32: ['res'], params: ['n', 'off'],
  body: /* wgsl */ `
  var first = -1;
  for (var k = lid; k < n; k += WG) {
    if (nonFinite(x[off + k])) { first = i32(k); break; }
  }
  res[lid] = first;`,
});

// ---- rows: softmax and cross-entropy, one 64-wide workgroup per row ---------------------------------

const ROW_WG = 64;
const ROW_REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, ${ROW_WG}>;
fn rowMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { let o = red[lid + s]; red[lid] = select(red[lid], o, o > red[lid]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn rowSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

function rowKernel(name: string, f32: readonly string[], params: readonly string[], body: string, i32?: readonly string[]): WgslKernel {
  return new WgslKernel({ name, f32, i32, params: ['rows', 'cols', ...params], wg: ROW_WG, module: ROW_REDUCE, body: `  let r = group;\n  if (r >= rows) { return; }\n  let r0 = r * cols;\n${body}` });
}

/** Row max (NaN ignored, as `x > max` ignores it), then Σ exp(x − max). */
const LSE = /* wgsl */ `
  var m = negInf();
  for (var c = lid; c < cols; c += WG) { let v = x[r0 + c]; m = select(m, v, v > m); }
  m = rowMax(m, lid);
  var s = 0.0;
  for (var c = lid; c < cols; c += WG) { s = s + exp(x[r0 + c] - m); }
  s = rowSum(s, lid);`;

export const softmax = rowKernel('softmax', ['x', 'out'], ['isLog'], /* wgsl */ `${LSE}
  if (isLog != 0u) {
    let lse = m + log(s);
    for (var c = lid; c < cols; c += WG) { out[r0 + c] = x[r0 + c] - lse; }
  } else {
    for (var c = lid; c < cols; c += WG) { out[r0 + c] = exp(x[r0 + c] - m) / s; }
  }`);

export const softmaxBackward = rowKernel('softmaxBackward', ['y', 'dy', 'dx'], ['isLog'], /* wgsl */ `
  var s = 0.0;
  for (var c = lid; c < cols; c += WG) { s = s + select(y[r0 + c] * dy[r0 + c], dy[r0 + c], isLog != 0u); }
  s = rowSum(s, lid);
  for (var c = lid; c < cols; c += WG) {
    let k = r0 + c;
    dx[k] = dx[k] + select(y[k] * (dy[k] - s), dy[k] - exp(y[k]) * s, isLog != 0u);
  }`);

export const softmaxCrossEntropy = rowKernel('softmaxCrossEntropy', ['x', 'probs', 'loss'], ['ignore:i'], /* wgsl */ `${LSE}
  let lse = m + log(s);
  for (var c = lid; c < cols; c += WG) { probs[r0 + c] = exp(x[r0 + c] - lse); }
  if (lid == 0u) {
    let t = targets[r];
    loss[r] = select(lse - x[r0 + u32(max(t, 0))], 0.0, t == ignore);
  }`, ['targets']);

/** dlogits += g·p, then −g at the target: the js backend's two roundings. */
export const softmaxCrossEntropyBackward = map('softmaxCrossEntropyBackward', ['probs', 'rowGrad', 'dx'], ['cols', 'ignore:i'], /* wgsl */ `
  let r = i / cols;
  let t = targets[r];
  if (t == ignore) { return; }
  let g = rowGrad[r];
  var v = dx[i] + g * probs[i];
  if (u32(t) == i % cols) { v = v - g; }
  dx[i] = v;`, ['targets']);

// ---- pooling over time ----------------------------------------------------------------------------------

/**
 * One invocation per (b, f), i = b·F + f (n = B·F: a step's stride), looping over its steps in order (the first maximum wins,
 * a NaN wins and stays; NaN is tested on the bits, which a compiler may not assume away). Row b's
 * length is lengths[b] when hasLen, else T.
 */
export const maxOverTime = map('maxOverTime', ['x', 'out'], ['T', 'F', 'hasLen'], /* wgsl */ `
  let len = select(T, u32(lengths[i / F]), hasLen != 0u);
  var best = x[i];
  for (var t = 1u; t < len; t++) {
    let v = x[t * n + i];
    if (v > best || (isNan(v) && !isNan(best))) { best = v; }
  }
  out[i] = best;`, ['lengths']);

/** The backward: dy[i] goes to the first step whose value is the maximum (each (b, f) owns its column of dx: no races). */
export const maxOverTimeBackward = map('maxOverTimeBackward', ['x', 'out', 'dy', 'dx'], ['T', 'F', 'hasLen'], /* wgsl */ `
  let len = select(T, u32(lengths[i / F]), hasLen != 0u);
  let y = out[i];
  let yNan = isNan(y);
  for (var t = 0u; t < len; t++) {
    let v = x[t * n + i];
    if (v == y || (yNan && isNan(v))) {
      dx[t * n + i] = dx[t * n + i] + dy[i];
      break;
    }
  }`, ['lengths']);

// ---- embeddings ---------------------------------------------------------------------------------------

export const gatherRows = map('gatherRows', ['table', 'out'], ['cols'], '  out[i] = table[u32(idx[i / cols]) * cols + i % cols];', ['idx']);

/**
 * dtable[row] += dout[i] for every i with idx[i] = row, without atomics: the host groups the
 * positions by row (plan = [rows | starts | positions]); one invocation per (row, column) adds its
 * positions in order, so duplicates sum exactly as the js backend's sequential loop does.
 */
export const scatterAddRows = map('scatterAddRows', ['dout', 'dtable'], ['cols', 'nRows', 'positionsOff'], /* wgsl */ `
  let u = i / cols;
  let c = i % cols;
  let row = u32(plan[u]);
  var acc = dtable[row * cols + c];
  let end = u32(plan[nRows + u + 1u]);
  for (var k = u32(plan[nRows + u]); k < end; k++) {
    acc = acc + dout[u32(plan[positionsOff + k]) * cols + c];
  }
  dtable[row * cols + c] = acc;`, ['plan']);

// ---- recurrent cells: one invocation per (row b, unit j) --------------------------------------------

/** `off`: row b is masked out at step t (lengths bound always; hasLen says whether they count). */
const CELL = /* wgsl */ `
  let b = i / H;
  let j = i % H;
  let off = hasLen != 0u && i32(t) >= lengths[b];`;
const CELL_PARAMS = ['H', 't', 'hasLen'] as const;

/** The rnnCellForward math after CELL (shared with the fused step below). */
const RNN_FORWARD = /* wgsl */ `
  var v: f32;
  if (off) { v = hPrev[hPrevOff + i]; }
  else {
    let a = pre[gOff + i];
    v = select(tanh_(a), select(0.0, a, a > 0.0), relu != 0u);
  }
  h[hOff + i] = v;
  if (hasY != 0u) { y[yOff + b * yStride + j] = select(v, 0.0, off); }`;
export const rnnCellForward = map('rnnCellForward', ['pre', 'hPrev', 'h', 'y'], [...CELL_PARAMS, 'relu', 'gOff', 'hPrevOff', 'hOff', 'hasY', 'yOff', 'yStride'], `${CELL}${RNN_FORWARD}`, ['lengths']);

/** The rnnCellBackward math after CELL (shared with the fused step below). */
const RNN_BACKWARD = /* wgsl */ `
  if (off) {
    dpre[gOff + i] = 0.0;
    dhPrev[dhPrevOff + i] = dhPrev[dhPrevOff + i] + dh[dhOff + i];
    return;
  }
  let hv = h[hOff + i];
  var g = dh[dhOff + i];
  if (hasDy != 0u) { g = g + dy[dyOff + b * dyStride + j]; }
  dpre[gOff + i] = select(g * (1.0 - hv * hv), select(0.0, g, hv > 0.0), relu != 0u);`;
export const rnnCellBackward = map('rnnCellBackward', ['h', 'dh', 'dy', 'dpre', 'dhPrev'], [...CELL_PARAMS, 'relu', 'hOff', 'dhOff', 'hasDy', 'dyOff', 'dyStride', 'gOff', 'dhPrevOff'], `${CELL}${RNN_BACKWARD}`, ['lengths']);

/** The lstmCellForward math after CELL (shared with the fused step below). */
const LSTM_FORWARD = /* wgsl */ `
  let g0 = gOff + b * 4u * H + j;
  let gi = sigmoid(gates[g0]);
  let gf = sigmoid(gates[g0 + H]);
  let gg = tanh_(gates[g0 + 2u * H]);
  let go = sigmoid(gates[g0 + 3u * H]);
  gates[g0] = gi;
  gates[g0 + H] = gf;
  gates[g0 + 2u * H] = gg;
  gates[g0 + 3u * H] = go;
  if (off) {
    c[cOff + i] = cPrev[cPrevOff + i];
    h[hOff + i] = hPrev[hPrevOff + i];
    if (hasY != 0u) { y[yOff + b * yStride + j] = 0.0; }
    return;
  }
  let cv = gf * cPrev[cPrevOff + i] + gi * gg;
  c[cOff + i] = cv;
  let hv = go * tanh_(cv);
  h[hOff + i] = hv;
  if (hasY != 0u) { y[yOff + b * yStride + j] = hv; }`;
export const lstmCellForward = map('lstmCellForward', ['gates', 'hPrev', 'cPrev', 'c', 'h', 'y'], [...CELL_PARAMS, 'gOff', 'hPrevOff', 'cPrevOff', 'cOff', 'hOff', 'hasY', 'yOff', 'yStride'], `${CELL}${LSTM_FORWARD}`, ['lengths']);

/** The lstmCellBackward math after CELL (shared with the fused step below). */
const LSTM_BACKWARD = /* wgsl */ `
  let d0 = dgOff + b * 4u * H + j;
  if (off) {
    dgates[d0] = 0.0;
    dgates[d0 + H] = 0.0;
    dgates[d0 + 2u * H] = 0.0;
    dgates[d0 + 3u * H] = 0.0;
    dcPrev[dcPrevOff + i] = dc[dcOff + i];
    dhPrev[dhPrevOff + i] = dhPrev[dhPrevOff + i] + dh[dhOff + i];
    return;
  }
  let g0 = gOff + b * 4u * H + j;
  let gi = gates[g0];
  let gf = gates[g0 + H];
  let gg = gates[g0 + 2u * H];
  let go = gates[g0 + 3u * H];
  let tc = tanh_(c[cOff + i]);
  var dhv = dh[dhOff + i];
  if (hasDy != 0u) { dhv = dhv + dy[dyOff + b * dyStride + j]; }
  let dcv = dc[dcOff + i] + dhv * go * (1.0 - tc * tc);
  dcPrev[dcPrevOff + i] = dcv * gf;
  dgates[d0] = dcv * gg * gi * (1.0 - gi);
  dgates[d0 + H] = dcv * cPrev[cPrevOff + i] * gf * (1.0 - gf);
  dgates[d0 + 2u * H] = dcv * gi * (1.0 - gg * gg);
  dgates[d0 + 3u * H] = dhv * tc * go * (1.0 - go);`;
export const lstmCellBackward = map('lstmCellBackward', ['gates', 'cPrev', 'c', 'dh', 'dy', 'dc', 'dgates', 'dcPrev', 'dhPrev'], [...CELL_PARAMS, 'gOff', 'cPrevOff', 'cOff', 'dhOff', 'hasDy', 'dyOff', 'dyStride', 'dcOff', 'dgOff', 'dcPrevOff', 'dhPrevOff'], `${CELL}${LSTM_BACKWARD}`, ['lengths']);

/** The gruCellForward math after CELL (shared with the fused step below). */
const GRU_FORWARD = /* wgsl */ `
  let x0 = gxOff + b * 3u * H + j;
  let h0 = ghOff + b * 3u * H + j;
  let r = sigmoid(gx[x0] + gh[h0]);
  let z = sigmoid(gx[x0 + H] + gh[h0 + H]);
  let nn = tanh_(gx[x0 + 2u * H] + r * gh[h0 + 2u * H]);
  gx[x0] = r;
  gx[x0 + H] = z;
  gx[x0 + 2u * H] = nn;
  let hp = hPrev[hPrevOff + i];
  var v = hp;
  if (!off) { v = (1.0 - z) * nn + z * hp; }
  h[hOff + i] = v;
  if (hasY != 0u) { y[yOff + b * yStride + j] = select(v, 0.0, off); }`;
export const gruCellForward = map('gruCellForward', ['gx', 'gh', 'hPrev', 'h', 'y'], [...CELL_PARAMS, 'gxOff', 'ghOff', 'hPrevOff', 'hOff', 'hasY', 'yOff', 'yStride'], `${CELL}${GRU_FORWARD}`, ['lengths']);

/** The gruCellBackward math after CELL (shared with the fused step below). */
const GRU_BACKWARD = /* wgsl */ `
  let x0 = dgxOff + b * 3u * H + j;
  let y0 = dghOff + b * 3u * H + j;
  if (off) {
    dgx[x0] = 0.0;
    dgx[x0 + H] = 0.0;
    dgx[x0 + 2u * H] = 0.0;
    dgh[y0] = 0.0;
    dgh[y0 + H] = 0.0;
    dgh[y0 + 2u * H] = 0.0;
    dhPrev[dhPrevOff + i] = dhPrev[dhPrevOff + i] + dh[dhOff + i];
    return;
  }
  var dhv = dh[dhOff + i];
  if (hasDy != 0u) { dhv = dhv + dy[dyOff + b * dyStride + j]; }
  let g0 = gOff + b * 3u * H + j;
  let r = gates[g0];
  let z = gates[g0 + H];
  let nn = gates[g0 + 2u * H];
  let ghn = gh[ghOff + b * 3u * H + j + 2u * H];
  let dn = dhv * (1.0 - z);
  let dz = dhv * (hPrev[hPrevOff + i] - nn);
  dhPrev[dhPrevOff + i] = dhPrev[dhPrevOff + i] + dhv * z;
  let dan = dn * (1.0 - nn * nn);
  let dar = dan * ghn * r * (1.0 - r);
  let daz = dz * z * (1.0 - z);
  dgx[x0] = dar;
  dgx[x0 + H] = daz;
  dgx[x0 + 2u * H] = dan;
  dgh[y0] = dar;
  dgh[y0 + H] = daz;
  dgh[y0 + 2u * H] = dan * r;`;
export const gruCellBackward = map('gruCellBackward', ['gates', 'gh', 'hPrev', 'dh', 'dy', 'dgx', 'dgh', 'dhPrev'], [...CELL_PARAMS, 'gOff', 'ghOff', 'hPrevOff', 'dhOff', 'hasDy', 'dyOff', 'dyStride', 'dgxOff', 'dghOff', 'dhPrevOff'], `${CELL}${GRU_BACKWARD}`, ['lengths']);

// ---- optimizer ---------------------------------------------------------------------------------------

/** Adam / AdamW, PyTorch's formula; the step-dependent constants come from the host. */
export const adam = map('adam', ['p', 'g', 'm', 'v'], ['beta1:f', 'beta2:f', 'eps:f', 'wd:f', 'decoupled', 'stepSize:f', 'bc2Sqrt:f', 'decay:f'], /* wgsl */ `
  var gi = g[i];
  if (wd != 0.0) {
    if (decoupled != 0u) { p[i] = p[i] * decay; } else { gi = gi + wd * p[i]; }
  }
  let mi = beta1 * m[i] + (1.0 - beta1) * gi;
  let vi = beta2 * v[i] + (1.0 - beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] - (stepSize * mi) / (sqrt(vi) / bc2Sqrt + eps);`);

// ---- GEMM ----------------------------------------------------------------------------------------------

const TILE = 64, DEPTH = 16;
/** Workgroups of the GEMM along x (columns of C) and y (rows). */
export function gemmGroups(M: number, N: number): [number, number] {
  return [Math.ceil(N / TILE), Math.ceil(M / TILE)];
}

/**
 * C = alpha·op(A)·op(B) + beta·C. 16×16 invocations per 64×64 tile of C; invocation (tx, ty) holds
 * rows ty + 16i and columns tx + 16j (i, j < 4), so workgroup-memory reads are conflict-free and
 * the writes of C coalesce. Each 16-deep slice of op(A) and op(B) is staged in workgroup memory
 * with loads along the operand's contiguous axis (transposed or not).
 */
export const gemm = new WgslKernel({
  name: 'gemm', f32: ['A', 'B', 'C'], params: ['M', 'N', 'K', 'transA', 'transB', 'alpha:f', 'beta:f', 'aOff', 'lda', 'bOff', 'ldb', 'cOff', 'ldc'],
  module: /* wgsl */ `
var<workgroup> tA: array<f32, ${TILE * DEPTH}>;
var<workgroup> tB: array<f32, ${TILE * DEPTH}>;`,
  body: /* wgsl */ `
  let tx = lid % 16u;
  let ty = lid / 16u;
  let m0 = wid.y * ${TILE}u;
  let n0 = wid.x * ${TILE}u;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < K; k0 += ${DEPTH}u) {
    for (var e = 0u; e < 4u; e++) {
      let q = lid + e * 256u;
      var mm = q / ${DEPTH}u;
      var kk = q % ${DEPTH}u;
      if (transA != 0u) { mm = q % ${TILE}u; kk = q / ${TILE}u; }
      var va = 0.0;
      if (m0 + mm < M && k0 + kk < K) {
        va = A[select(aOff + (m0 + mm) * lda + k0 + kk, aOff + (k0 + kk) * lda + m0 + mm, transA != 0u)];
      }
      tA[kk * ${TILE}u + mm] = va;
      var nn = q % ${TILE}u;
      var kb = q / ${TILE}u;
      if (transB != 0u) { nn = q / ${DEPTH}u; kb = q % ${DEPTH}u; }
      var vb = 0.0;
      if (n0 + nn < N && k0 + kb < K) {
        vb = B[select(bOff + (k0 + kb) * ldb + n0 + nn, bOff + (n0 + nn) * ldb + k0 + kb, transB != 0u)];
      }
      tB[kb * ${TILE}u + nn] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${DEPTH}u; kk++) {
      var a: array<f32, 4>;
      var w: array<f32, 4>;
      for (var u = 0u; u < 4u; u++) {
        a[u] = tA[kk * ${TILE}u + ty + 16u * u];
        w[u] = tB[kk * ${TILE}u + tx + 16u * u];
      }
      for (var u = 0u; u < 4u; u++) {
        for (var v = 0u; v < 4u; v++) { acc[u * 4u + v] = acc[u * 4u + v] + a[u] * w[v]; }
      }
    }
    workgroupBarrier();
  }
  for (var u = 0u; u < 4u; u++) {
    for (var v = 0u; v < 4u; v++) {
      let gm = m0 + ty + 16u * u;
      let gn = n0 + tx + 16u * v;
      if (gm < M && gn < N) {
        let ci = cOff + gm * ldc + gn;
        var r = alpha * acc[u * 4u + v];
        if (beta != 0.0) { r = r + beta * C[ci]; }
        C[ci] = r;
      }
    }
  }`,
});

// ---- fused time steps: the recurrent product and the cell in one dispatch -----------------------------

/**
 * Σ_k h_{t−1}[b, k] · W_hh[g·H + j, k] for gate block g of unit j, k in order: the GEMM's order for
 * that element (its 16-deep slices run in order, each in order), so a fused step gives the generic
 * loop's results exactly (tested).
 */
const RECURRENT_DOT = /* wgsl */ `
fn recurrentDot(b: u32, row: u32, H: u32, prev: u32) -> f32 {
  var acc = 0.0;
  for (var k = 0u; k < H; k++) { acc = acc + hPrev[prev + b * H + k] * wHh[row * H + k]; }
  return acc;
}`;

/**
 * One recurrent step as one dispatch, one invocation per (row b, unit j): the invocation adds
 * h_{t−1}·W_hhᵀ into its own gate pre-activations (what the per-step GEMM does), then runs the
 * cell kernel's math on them. Unit j's gates are read and written by its invocation only, and
 * h_{t−1} (read whole) and h_t (written) are different blocks of the state workspace, so no
 * invocation waits for another within a step; steps are ordered by the dispatches.
 */
function fusedStep(name: string, f32: readonly string[], params: readonly string[], prefix: string, cellBody: string): WgslKernel {
  return new WgslKernel({
    name, f32: [...f32, 'wHh'], i32: ['lengths'], params: ['n', ...CELL_PARAMS, ...params], module: RECURRENT_DOT,
    body: `  if (gid >= n) { return; }\n  let i = gid;\n${CELL}\n${prefix}${cellBody}`,
  });
}

export const rnnStep = fusedStep('rnnStep', ['pre', 'hPrev', 'h', 'y'], ['relu', 'gOff', 'hPrevOff', 'hOff', 'hasY', 'yOff', 'yStride'], /* wgsl */ `
  pre[gOff + i] = recurrentDot(b, j, H, hPrevOff) + pre[gOff + i];`, RNN_FORWARD);

export const lstmStep = fusedStep('lstmStep', ['gates', 'hPrev', 'cPrev', 'c', 'h', 'y'], ['gOff', 'hPrevOff', 'cPrevOff', 'cOff', 'hOff', 'hasY', 'yOff', 'yStride'], /* wgsl */ `
  for (var g = 0u; g < 4u; g++) {
    let at = gOff + b * 4u * H + g * H + j;
    gates[at] = recurrentDot(b, g * H + j, H, hPrevOff) + gates[at];
  }`, LSTM_FORWARD);

/** GRU keeps the recurrent products apart (gh = h·W_hhᵀ + b_hh): the reset gate scales gh_n alone. */
export const gruStep = fusedStep('gruStep', ['gx', 'gh', 'hPrev', 'h', 'y', 'bHh'], ['gxOff', 'ghOff', 'hPrevOff', 'hOff', 'hasY', 'yOff', 'yStride', 'hasBias'], /* wgsl */ `
  for (var g = 0u; g < 3u; g++) {
    var v = recurrentDot(b, g * H + j, H, hPrevOff);
    if (hasBias != 0u) { v = v + bHh[g * H + j]; }
    gh[ghOff + b * 3u * H + g * H + j] = v;
  }`, GRU_FORWARD);

/**
 * One backward step as one dispatch, one 64-wide workgroup per row b: first the cell's backward
 * math for each unit of the row (dhPrev zeroed first, as the generic loop fills it), then — once
 * the row's gate gradients are written (a storage barrier: the workgroup is the only reader) —
 * dhPrev[b, k] += Σ_g dG[b, g]·W_hh[g, k], summed in the GEMM's order. Rows are independent, so
 * no grid-wide barrier is needed. The cell body's early `return` for a masked row becomes
 * `continue` (next unit).
 */
function fusedBackStep(name: string, f32: readonly string[], params: readonly string[], cellBody: string, dG: string, dGOff: string, G: number): WgslKernel {
  return new WgslKernel({
    name, f32: [...f32, 'wHh'], i32: ['lengths'], params: ['B', ...CELL_PARAMS, ...params], wg: ROW_WG,
    body: /* wgsl */ `
  let row = group;
  if (row >= B) { return; }
  for (var unit = lid; unit < H; unit += WG) {
    let i = row * H + unit;
    dhPrev[dhPrevOff + i] = 0.0;
${CELL}
${cellBody.replaceAll('return;', 'continue;')}
  }
  storageBarrier();
  workgroupBarrier();
  for (var k = lid; k < H; k += WG) {
    var acc = 0.0;
    let base = ${dGOff} + row * ${G}u * H;
    for (var g = 0u; g < ${G}u * H; g++) { acc = acc + ${dG}[base + g] * wHh[g * H + k]; }
    dhPrev[dhPrevOff + row * H + k] = acc + dhPrev[dhPrevOff + row * H + k];
  }`,
  });
}

export const rnnBackStep = fusedBackStep('rnnBackStep', ['h', 'dh', 'dy', 'dpre', 'dhPrev'], ['relu', 'hOff', 'dhOff', 'hasDy', 'dyOff', 'dyStride', 'gOff', 'dhPrevOff'], RNN_BACKWARD, 'dpre', 'gOff', 1);
export const lstmBackStep = fusedBackStep('lstmBackStep', ['gates', 'cPrev', 'c', 'dh', 'dy', 'dc', 'dgates', 'dcPrev', 'dhPrev'], ['gOff', 'cPrevOff', 'cOff', 'dhOff', 'hasDy', 'dyOff', 'dyStride', 'dcOff', 'dgOff', 'dcPrevOff', 'dhPrevOff'], LSTM_BACKWARD, 'dgates', 'dgOff', 4);
export const gruBackStep = fusedBackStep('gruBackStep', ['gates', 'gh', 'hPrev', 'dh', 'dy', 'dgx', 'dgh', 'dhPrev'], ['gOff', 'ghOff', 'hPrevOff', 'dhOff', 'hasDy', 'dyOff', 'dyStride', 'dgxOff', 'dghOff', 'dhPrevOff'], GRU_BACKWARD, 'dgh', 'dghOff', 3);
