/**
 * BLAS-1, row-vector, element-wise, reduction and optimizer kernels (softmax, losses and
 * embeddings: rows.ts).
 *
 * Generic kernels (`<T>` = f32 | f64) compute in float64 and store in T, exactly as the reference
 * backend does, so their float32 results equal the reference's. The hot memory-bound float32 ones
 * have SIMD versions that keep that property: sums of two floats are exact-after-rounding in f32
 * (f32x4), and anything with a float64 scalar (axpy's alpha, Adam's step size) runs two lanes at a
 * time in f64x2 and rounds once, as the reference does. One float32 kernel here differs from that
 * rule, saying so: sumSquares sums in float64 in its own fixed order (softmax and cross-entropy,
 * the others, are in rows.ts). Kernels with an `Ld` variant take a row stride so the host can split columns across
 * threads; row-independent ones are split by offsetting their pointers.
 */
import { elementPtr, ld2, sigmoid64 } from './common';


// ---- BLAS-1 and rows ------------------------------------------------------------------------------

function axpyG<T>(n: i32, alpha: f64, x: usize, y: usize): void {
  for (let i = 0; i < n; i++) store<T>(elementPtr<T>(y, i), <T>(<f64>load<T>(elementPtr<T>(y, i)) + alpha * <f64>load<T>(elementPtr<T>(x, i))));
}
export function axpy_f64(n: i32, alpha: f64, x: usize, y: usize): void { axpyG<f64>(n, alpha, x, y); }
export function axpy_f32(n: i32, alpha: f64, x: usize, y: usize): void {
  let i = 0;
  if (alpha == 1) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)));
    }
  } else {
    const va = f64x2.splat(alpha);
    for (; i + 2 <= n; i += 2) {
      const o = <usize>i << 2;
      const xv = f64x2.promote_low_f32x4(v128.load64_zero(x + o));
      const yv = f64x2.promote_low_f32x4(v128.load64_zero(y + o));
      v128.store64_lane(y + o, f32x4.demote_f64x2_zero(f64x2.add(yv, f64x2.mul(va, xv))), 0);
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, <f32>(<f64>load<f32>(y + o) + alpha * <f64>load<f32>(x + o)));
  }
}

function scaleG<T>(n: i32, alpha: f64, x: usize): void {
  for (let i = 0; i < n; i++) store<T>(elementPtr<T>(x, i), <T>(<f64>load<T>(elementPtr<T>(x, i)) * alpha));
}
export function scale_f64(n: i32, alpha: f64, x: usize): void { scaleG<f64>(n, alpha, x); }
export function scale_f32(n: i32, alpha: f64, x: usize): void {
  const va = f64x2.splat(alpha);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 2;
    const xv = f64x2.promote_low_f32x4(v128.load64_zero(x + o));
    v128.store64_lane(x + o, f32x4.demote_f64x2_zero(f64x2.mul(xv, va)), 0);
  }
  for (; i < n; i++) store<f32>(x + (<usize>i << 2), <f32>(<f64>load<f32>(x + (<usize>i << 2)) * alpha));
}

function addRowVectorG<T>(rows: i32, cols: i32, bias: usize, X: usize): void {
  for (let r = 0; r < rows; r++) {
    const row = elementPtr<T>(X, r * cols);
    for (let c = 0; c < cols; c++) store<T>(elementPtr<T>(row, c), load<T>(elementPtr<T>(row, c)) + load<T>(elementPtr<T>(bias, c)));
  }
}
export function addRowVector_f64(rows: i32, cols: i32, bias: usize, X: usize): void { addRowVectorG<f64>(rows, cols, bias, X); }
export function addRowVector_f32(rows: i32, cols: i32, bias: usize, X: usize): void {
  for (let r = 0; r < rows; r++) {
    const row = X + ((<usize>r * <usize>cols) << 2);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const o = <usize>c << 2;
      v128.store(row + o, f32x4.add(v128.load(row + o), v128.load(bias + o)));
    }
    for (; c < cols; c++) store<f32>(row + (<usize>c << 2), load<f32>(row + (<usize>c << 2)) + load<f32>(bias + (<usize>c << 2)));
  }
}

function sumRowsG<T>(rows: i32, cols: i32, X: usize, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const row = elementPtr<T>(X, r * cols);
    for (let c = 0; c < cols; c++) store<T>(elementPtr<T>(out, c), load<T>(elementPtr<T>(out, c)) + load<T>(elementPtr<T>(row, c)));
  }
}
export function sumRows_f64(rows: i32, cols: i32, X: usize, out: usize): void { sumRowsG<f64>(rows, cols, X, out); }
export function sumRows_f32(rows: i32, cols: i32, X: usize, out: usize): void { sumRowsLd_f32(rows, cols, cols, X, out); }
/**
 * out[c] += Σ_r X[r·ld + c] for c < cols, each column summed in float32 in row order (as the
 * reference's row loop, so bit-identical to it). A row-major sweep, eight rows at a time: each f32x4
 * of out is loaded once per eight rows and the eight rows stream in order. The host splits columns
 * across threads (X and out offset by the first column, ld the full row length).
 */
export function sumRowsLd_f32(rows: i32, cols: i32, ld: i32, X: usize, out: usize): void {
  const ld4 = <usize>ld << 2;
  let r = 0;
  for (; r + 8 <= rows; r += 8) {
    const row = X + <usize>r * ld4;
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const o = <usize>c << 2;
      let p = row + o;
      let s = v128.load(out + o);
      s = f32x4.add(s, v128.load(p)); p += ld4;
      s = f32x4.add(s, v128.load(p)); p += ld4;
      s = f32x4.add(s, v128.load(p)); p += ld4;
      s = f32x4.add(s, v128.load(p)); p += ld4;
      s = f32x4.add(s, v128.load(p)); p += ld4;
      s = f32x4.add(s, v128.load(p)); p += ld4;
      s = f32x4.add(s, v128.load(p)); p += ld4;
      s = f32x4.add(s, v128.load(p));
      v128.store(out + o, s);
    }
    for (; c < cols; c++) {
      const o = <usize>c << 2;
      let p = row + o;
      let s = load<f32>(out + o);
      for (let k = 0; k < 8; k++) {
        s += load<f32>(p);
        p += ld4;
      }
      store<f32>(out + o, s);
    }
  }
  for (; r < rows; r++) {
    const row = X + <usize>r * ld4;
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const o = <usize>c << 2;
      v128.store(out + o, f32x4.add(v128.load(out + o), v128.load(row + o)));
    }
    for (; c < cols; c++) {
      const o = <usize>c << 2;
      store<f32>(out + o, load<f32>(out + o) + load<f32>(row + o));
    }
  }
}

// ---- element-wise ---------------------------------------------------------------------------------

@inline function sign64(x: f64): f64 {
  return x > 0 ? 1 : x < 0 ? -1 : x;
}

@inline function unaryOp(op: i32, x: f64): f64 {
  switch (op) {
    case 0: return -x;
    case 1: return Math.exp(x);
    case 2: return Math.log(x);
    case 3: return Math.tanh(x);
    case 4: return sigmoid64(x);
    case 5: return x > 0 ? x : 0;
    case 6: return Math.sqrt(x);
    case 7: return x * x;
    case 8: return Math.abs(x);
    default: return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  }
}

/** f'(x)·dy, from x and/or y = f(x). */
@inline function unaryGrad(op: i32, x: f64, y: f64, dy: f64): f64 {
  switch (op) {
    case 0: return -dy;
    case 1: return dy * y;
    case 2: return dy / x;
    case 3: return dy * (1 - y * y);
    case 4: return dy * y * (1 - y);
    case 5: return x > 0 ? dy : 0;
    case 6: return dy * 0.5 / y;
    case 7: return dy * 2 * x;
    case 8: return dy * sign64(x);
    default: return dy * sigmoid64(x);
  }
}

function unaryG<T>(op: i32, n: i32, x: usize, out: usize): void {
  for (let i = 0; i < n; i++) store<T>(elementPtr<T>(out, i), <T>unaryOp(op, <f64>load<T>(elementPtr<T>(x, i))));
}
export function unary_f32(op: i32, n: i32, x: usize, out: usize): void { unaryG<f32>(op, n, x, out); }
export function unary_f64(op: i32, n: i32, x: usize, out: usize): void { unaryG<f64>(op, n, x, out); }

function unaryBackwardG<T>(op: i32, n: i32, x: usize, y: usize, dy: usize, dx: usize): void {
  for (let i = 0; i < n; i++) {
    const g = unaryGrad(op, <f64>load<T>(elementPtr<T>(x, i)), <f64>load<T>(elementPtr<T>(y, i)), <f64>load<T>(elementPtr<T>(dy, i)));
    store<T>(elementPtr<T>(dx, i), <T>(<f64>load<T>(elementPtr<T>(dx, i)) + g));
  }
}
export function unaryBackward_f32(op: i32, n: i32, x: usize, y: usize, dy: usize, dx: usize): void { unaryBackwardG<f32>(op, n, x, y, dy, dx); }
export function unaryBackward_f64(op: i32, n: i32, x: usize, y: usize, dy: usize, dx: usize): void { unaryBackwardG<f64>(op, n, x, y, dy, dx); }

@inline function binOp(op: i32, a: f64, b: f64): f64 {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    default: return a / b;
  }
}
@inline function binOp4(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    default: return f32x4.div(a, b);
  }
}

/**
 * out = a ∘ b for `rows` rows of `cols`, where a and b either advance by one row each (stride
 * cols) or repeat one row (stride 0). Covers equal shapes (rows = 1) and row-vector broadcasting.
 * out may alias a full-shape operand: every element is read before it is written.
 */
function binaryRowsG<T>(op: i32, rows: i32, cols: i32, a: usize, aStride: i32, b: usize, bStride: i32, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const ar = elementPtr<T>(a, r * aStride), br = elementPtr<T>(b, r * bStride), orow = elementPtr<T>(out, r * cols);
    for (let c = 0; c < cols; c++) store<T>(elementPtr<T>(orow, c), <T>binOp(op, <f64>load<T>(elementPtr<T>(ar, c)), <f64>load<T>(elementPtr<T>(br, c))));
  }
}
export function binaryRows_f64(op: i32, rows: i32, cols: i32, a: usize, aStride: i32, b: usize, bStride: i32, out: usize): void {
  binaryRowsG<f64>(op, rows, cols, a, aStride, b, bStride, out);
}
export function binaryRows_f32(op: i32, rows: i32, cols: i32, a: usize, aStride: i32, b: usize, bStride: i32, out: usize): void {
  // f32 ∘ f32 rounded once equals the reference's f64-then-round for + − × ÷ (no double-rounding issue)
  for (let r = 0; r < rows; r++) {
    const ar = a + ((<usize>r * <usize>aStride) << 2), br = b + ((<usize>r * <usize>bStride) << 2), orow = out + ((<usize>r * <usize>cols) << 2);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const o = <usize>c << 2;
      v128.store(orow + o, binOp4(op, v128.load(ar + o), v128.load(br + o)));
    }
    for (; c < cols; c++) {
      const o = <usize>c << 2;
      store<f32>(orow + o, <f32>binOp(op, <f64>load<f32>(ar + o), <f64>load<f32>(br + o)));
    }
  }
}

/** out[r, c] = a[r] ∘ b[c]-style column broadcast: a has one value per row (stride 1), b full. */
function binaryColG<T>(op: i32, rows: i32, cols: i32, a: usize, aColStride: i32, aRowStride: i32, b: usize, bColStride: i32, bRowStride: i32, out: usize): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const av = <f64>load<T>(elementPtr<T>(a, r * aRowStride + c * aColStride));
      const bv = <f64>load<T>(elementPtr<T>(b, r * bRowStride + c * bColStride));
      store<T>(elementPtr<T>(out, r * cols + c), <T>binOp(op, av, bv));
    }
  }
}
/** General 2-D strided form (strides 0 broadcast) used for the remaining broadcast patterns. */
export function binary2d_f32(op: i32, rows: i32, cols: i32, a: usize, aCol: i32, aRow: i32, b: usize, bCol: i32, bRow: i32, out: usize): void {
  binaryColG<f32>(op, rows, cols, a, aCol, aRow, b, bCol, bRow, out);
}
export function binary2d_f64(op: i32, rows: i32, cols: i32, a: usize, aCol: i32, aRow: i32, b: usize, bCol: i32, bRow: i32, out: usize): void {
  binaryColG<f64>(op, rows, cols, a, aCol, aRow, b, bCol, bRow, out);
}

// ---- reductions -----------------------------------------------------------------------------------

function sumSquaresG<T>(n: i32, x: usize): f64 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = <f64>load<T>(elementPtr<T>(x, i));
    s += v * v;
  }
  return s;
}
/**
 * Σ x² in float64 (each square is exact in float64). Eight lanes of partial sums, i mod 8, added
 * pairwise at the end, then the tail in order: a fixed order (the same on every call and thread
 * count), within float64 rounding of the reference's sequential sum.
 */
export function sumSquares_f32(n: i32, x: usize): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const p = x + (<usize>i << 2);
    const u = v128.load(p), v = v128.load(p, 16);
    const u0 = f64x2.promote_low_f32x4(u), u1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(u, u, 2, 3, 2, 3));
    const v0 = f64x2.promote_low_f32x4(v), v1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
    a0 = f64x2.add(a0, f64x2.mul(u0, u0));
    a1 = f64x2.add(a1, f64x2.mul(u1, u1));
    a2 = f64x2.add(a2, f64x2.mul(v0, v0));
    a3 = f64x2.add(a3, f64x2.mul(v1, v1));
  }
  const t = f64x2.add(f64x2.add(a0, a1), f64x2.add(a2, a3));
  let s = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    s += v * v;
  }
  return s;
}
export function sumSquares_f64(n: i32, x: usize): f64 { return sumSquaresG<f64>(n, x); }

function findNonFiniteG<T>(n: i32, x: usize): i32 {
  for (let i = 0; i < n; i++) {
    const v = load<T>(elementPtr<T>(x, i));
    if (v - v != 0) return i; // NaN and ±Infinity give NaN
  }
  return -1;
}
export function findNonFinite_f64(n: i32, x: usize): i32 { return findNonFiniteG<f64>(n, x); }
export function findNonFinite_f32(n: i32, x: usize): i32 {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const d = f32x4.sub(v, v);
    if (v128.any_true(f32x4.ne(d, d))) break;
  }
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v - v != 0) return i;
  }
  return -1;
}

function maxAbsG<T>(n: i32, x: usize): f64 {
  let m: f64 = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(<f64>load<T>(elementPtr<T>(x, i)));
    if (a != a) return NaN;
    if (a > m) m = a;
  }
  return m;
}
export function maxAbs_f32(n: i32, x: usize): f64 { return maxAbsG<f32>(n, x); }
export function maxAbs_f64(n: i32, x: usize): f64 { return maxAbsG<f64>(n, x); }

function clampG<T>(n: i32, x: usize, lo: f64, hi: f64): void {
  for (let i = 0; i < n; i++) {
    const v = <f64>load<T>(elementPtr<T>(x, i));
    store<T>(elementPtr<T>(x, i), <T>(v < lo ? lo : v > hi ? hi : v));
  }
}
export function clamp_f32(n: i32, x: usize, lo: f64, hi: f64): void { clampG<f32>(n, x, lo, hi); }
export function clamp_f64(n: i32, x: usize, lo: f64, hi: f64): void { clampG<f64>(n, x, lo, hi); }

// ---- Adam / AdamW -----------------------------------------------------------------------------------

/**
 * The host passes the per-step scalars computed as the reference does: stepSize = lr/bc1,
 * bc2Sqrt = √bc2, decay = 1 − lr·wd (AdamW) — so every element follows the reference's float64
 * arithmetic, with a rounding to T wherever the reference stores into its array.
 */
function adamG<T>(n: i32, p: usize, g: usize, m: usize, v: usize, beta1: f64, beta2: f64, eps: f64, wd: f64, decoupled: bool, stepSize: f64, bc2Sqrt: f64, decay: f64): void {
  for (let i = 0; i < n; i++) {
    let gi = <f64>load<T>(elementPtr<T>(g, i));
    if (wd != 0) {
      if (decoupled) store<T>(elementPtr<T>(p, i), <T>(<f64>load<T>(elementPtr<T>(p, i)) * decay));
      else gi += wd * <f64>load<T>(elementPtr<T>(p, i));
    }
    const mi = <T>(beta1 * <f64>load<T>(elementPtr<T>(m, i)) + (1 - beta1) * gi);
    const vi = <T>(beta2 * <f64>load<T>(elementPtr<T>(v, i)) + (1 - beta2) * gi * gi);
    store<T>(elementPtr<T>(m, i), mi);
    store<T>(elementPtr<T>(v, i), vi);
    const pi = <f64>load<T>(elementPtr<T>(p, i));
    store<T>(elementPtr<T>(p, i), <T>(pi - (stepSize * <f64>mi) / (Math.sqrt(<f64>vi) / bc2Sqrt + eps)));
  }
}
export function adam_f64(n: i32, p: usize, g: usize, m: usize, v: usize, beta1: f64, beta2: f64, eps: f64, wd: f64, decoupled: bool, stepSize: f64, bc2Sqrt: f64, decay: f64): void {
  adamG<f64>(n, p, g, m, v, beta1, beta2, eps, wd, decoupled, stepSize, bc2Sqrt, decay);
}
@inline function st2(p: usize, x: v128): v128 {
  // round to f32, store, and return the rounded values widened again (what the reference reads back)
  const r = f32x4.demote_f64x2_zero(x);
  v128.store64_lane(p, r, 0);
  return f64x2.promote_low_f32x4(r);
}
export function adam_f32(n: i32, p: usize, g: usize, m: usize, v: usize, beta1: f64, beta2: f64, eps: f64, wd: f64, decoupled: bool, stepSize: f64, bc2Sqrt: f64, decay: f64): void {
  const b1 = f64x2.splat(beta1), b2 = f64x2.splat(beta2), c1 = f64x2.splat(1 - beta1), c2 = f64x2.splat(1 - beta2);
  const vss = f64x2.splat(stepSize), vbc = f64x2.splat(bc2Sqrt), veps = f64x2.splat(eps), vwd = f64x2.splat(wd), vdec = f64x2.splat(decay);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 2;
    let gi = ld2(g + o);
    let pi = ld2(p + o);
    if (wd != 0) {
      if (decoupled) pi = st2(p + o, f64x2.mul(pi, vdec));
      else gi = f64x2.add(gi, f64x2.mul(vwd, pi));
    }
    const mi = st2(m + o, f64x2.add(f64x2.mul(b1, ld2(m + o)), f64x2.mul(c1, gi)));
    const vi = st2(v + o, f64x2.add(f64x2.mul(b2, ld2(v + o)), f64x2.mul(f64x2.mul(c2, gi), gi)));
    const den = f64x2.add(f64x2.div(f64x2.sqrt(vi), vbc), veps);
    st2(p + o, f64x2.sub(pi, f64x2.div(f64x2.mul(vss, mi), den)));
  }
  if (i < n) {
    const o = <usize>i << 2;
    adamG<f32>(n - i, p + o, g + o, m + o, v + o, beta1, beta2, eps, wd, decoupled, stepSize, bc2Sqrt, decay);
  }
}

// ---- bulk memory ----------------------------------------------------------------------------------
// (typed-array fill/copyWithin on a SharedArrayBuffer go element by element; memory.fill/copy do not)

export function zeroBytes(p: usize, n: usize): void {
  memory.fill(p, 0, n);
}

/** memmove semantics: the ranges may overlap. */
export function copyBytes(dst: usize, src: usize, n: usize): void {
  memory.copy(dst, src, n);
}

export function fill_f32(p: usize, n: i32, value: f32): void {
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(p + (<usize>i << 2), v);
  for (; i < n; i++) store<f32>(p + (<usize>i << 2), value);
}

export function fill_f64(p: usize, n: i32, value: f64): void {
  const v = f64x2.splat(value);
  let i = 0;
  for (; i + 2 <= n; i += 2) v128.store(p + (<usize>i << 3), v);
  for (; i < n; i++) store<f64>(p + (<usize>i << 3), value);
}
