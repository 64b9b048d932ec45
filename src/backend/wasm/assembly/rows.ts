/**
 * Row-wise kernels: softmax, softmax cross-entropy (forward and backward), and the embedding's
 * gather and scatter-add of table rows. The same rules as elementwise.ts: generic kernels (`<T>` =
 * f32 | f64) compute in float64 and store in T like the reference backend; float32 softmax and
 * cross-entropy take e^x from vmath.ts's expd2 (within 2 float64 ulp of Math.exp, so within a
 * rounding of the reference). Row-independent kernels are split across threads by offsetting their
 * pointers; scatterAddLd_f32 takes a row stride so the host can split columns.
 */
import { elementPtr, ld2 } from './common';
import { expd, expd2 } from './vmath';

// ---- softmax and cross-entropy ----------------------------------------------------------------------

function softmaxG<T>(rows: i32, cols: i32, x: usize, out: usize, log: bool): void {
  for (let r = 0; r < rows; r++) {
    const xr = elementPtr<T>(x, r * cols), orow = elementPtr<T>(out, r * cols);
    let max = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = <f64>load<T>(elementPtr<T>(xr, c));
      if (v > max) max = v;
    }
    let sum: f64 = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(<f64>load<T>(elementPtr<T>(xr, c)) - max);
    if (log) {
      const lse = max + Math.log(sum);
      for (let c = 0; c < cols; c++) store<T>(elementPtr<T>(orow, c), <T>(<f64>load<T>(elementPtr<T>(xr, c)) - lse));
    } else {
      for (let c = 0; c < cols; c++) store<T>(elementPtr<T>(orow, c), <T>(Math.exp(<f64>load<T>(elementPtr<T>(xr, c)) - max) / sum));
    }
  }
}
/**
 * float32 softmax: the reference's formulas in float64 (max, Σ e^(x−max), then e^(x−max)/Σ or
 * x − (max + log Σ)), two lanes at a time with expd2 (vmath.ts) instead of Math.exp, rounded once to
 * float32: within a rounding of the reference (the sum's order differs in float64 only).
 */
export function softmax_f32(rows: i32, cols: i32, x: usize, out: usize, log: bool): void {
  for (let r = 0; r < rows; r++) {
    const o = (<usize>r * <usize>cols) << 2;
    const xr = x + o, orow = out + o;
    const max = rowMax_f32(xr, cols);
    const sum = rowSumExp_f32(xr, cols, max);
    if (log) {
      const lse = max + Math.log(sum);
      const vl = f64x2.splat(lse);
      let c = 0;
      for (; c + 2 <= cols; c += 2) {
        const q = <usize>c << 2;
        v128.store64_lane(orow + q, f32x4.demote_f64x2_zero(f64x2.sub(ld2(xr + q), vl)), 0);
      }
      if (c < cols) store<f32>(orow + (<usize>c << 2), <f32>(<f64>load<f32>(xr + (<usize>c << 2)) - lse));
    } else {
      const vm = f64x2.splat(max), vs = f64x2.splat(sum);
      let c = 0;
      for (; c + 2 <= cols; c += 2) {
        const q = <usize>c << 2;
        v128.store64_lane(orow + q, f32x4.demote_f64x2_zero(f64x2.div(expd2(f64x2.sub(ld2(xr + q), vm)), vs)), 0);
      }
      if (c < cols) store<f32>(orow + (<usize>c << 2), <f32>(expd(<f64>load<f32>(xr + (<usize>c << 2)) - max) / sum));
    }
  }
}

/** max of a float32 row as the reference takes it (NaN never wins; −∞ for an all-NaN row). Exact. */
function rowMax_f32(xr: usize, cols: i32): f64 {
  let vm = f32x4.splat(-Infinity);
  let c = 0;
  // pmax(m, v) = m < v ? v : m — a NaN v is skipped, like the reference's `v > max`
  for (; c + 4 <= cols; c += 4) vm = f32x4.pmax(vm, v128.load(xr + (<usize>c << 2)));
  let max: f32 = f32x4.extract_lane(vm, 0);
  const m1 = f32x4.extract_lane(vm, 1), m2 = f32x4.extract_lane(vm, 2), m3 = f32x4.extract_lane(vm, 3);
  if (m1 > max) max = m1;
  if (m2 > max) max = m2;
  if (m3 > max) max = m3;
  for (; c < cols; c++) {
    const v = load<f32>(xr + (<usize>c << 2));
    if (v > max) max = v;
  }
  return <f64>max;
}

/** Σ e^(x − max) over a float32 row in float64 (two lane pairs, then the tail). */
function rowSumExp_f32(xr: usize, cols: i32, max: f64): f64 {
  const vm = f64x2.splat(max);
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const v = v128.load(xr + (<usize>c << 2));
    s0 = f64x2.add(s0, expd2(f64x2.sub(f64x2.promote_low_f32x4(v), vm)));
    s1 = f64x2.add(s1, expd2(f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), vm)));
  }
  const t = f64x2.add(s0, s1);
  let sum = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (; c < cols; c++) sum += expd(<f64>load<f32>(xr + (<usize>c << 2)) - max);
  return sum;
}
export function softmax_f64(rows: i32, cols: i32, x: usize, out: usize, log: bool): void { softmaxG<f64>(rows, cols, x, out, log); }

function softmaxBackwardG<T>(rows: i32, cols: i32, y: usize, dy: usize, dx: usize, log: bool): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (log) {
      let s: f64 = 0;
      for (let c = 0; c < cols; c++) s += <f64>load<T>(elementPtr<T>(dy, o + c));
      for (let c = 0; c < cols; c++) {
        const g = <f64>load<T>(elementPtr<T>(dy, o + c)) - Math.exp(<f64>load<T>(elementPtr<T>(y, o + c))) * s;
        store<T>(elementPtr<T>(dx, o + c), <T>(<f64>load<T>(elementPtr<T>(dx, o + c)) + g));
      }
    } else {
      let dot: f64 = 0;
      for (let c = 0; c < cols; c++) dot += <f64>load<T>(elementPtr<T>(y, o + c)) * <f64>load<T>(elementPtr<T>(dy, o + c));
      for (let c = 0; c < cols; c++) {
        const g = <f64>load<T>(elementPtr<T>(y, o + c)) * (<f64>load<T>(elementPtr<T>(dy, o + c)) - dot);
        store<T>(elementPtr<T>(dx, o + c), <T>(<f64>load<T>(elementPtr<T>(dx, o + c)) + g));
      }
    }
  }
}
export function softmaxBackward_f32(rows: i32, cols: i32, y: usize, dy: usize, dx: usize, log: bool): void { softmaxBackwardG<f32>(rows, cols, y, dy, dx, log); }
export function softmaxBackward_f64(rows: i32, cols: i32, y: usize, dy: usize, dx: usize, log: bool): void { softmaxBackwardG<f64>(rows, cols, y, dy, dx, log); }

/** Targets are validated by the host; `targets` points at `rows` i32. */
function sceG<T>(rows: i32, cols: i32, x: usize, targets: usize, ignore: i32, probs: usize, loss: usize): void {
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = <f64>load<T>(elementPtr<T>(x, o + c));
      if (v > max) max = v;
    }
    let sum: f64 = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(<f64>load<T>(elementPtr<T>(x, o + c)) - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < cols; c++) store<T>(elementPtr<T>(probs, o + c), <T>Math.exp(<f64>load<T>(elementPtr<T>(x, o + c)) - lse));
    store<T>(elementPtr<T>(loss, r), t == ignore ? <T>0 : <T>(lse - <f64>load<T>(elementPtr<T>(x, o + t))));
  }
}
/**
 * float32 cross-entropy: the reference's formulas in float64 (lse = max + log Σ e^(x−max),
 * p = e^(x−lse), loss = lse − x[t]) with expd2 (vmath.ts) for Math.exp, two lanes at a time, rounded
 * once to float32: within a rounding of the reference. Rows are independent (the host may split
 * them across threads).
 */
export function sce_f32(rows: i32, cols: i32, x: usize, targets: usize, ignore: i32, probs: usize, loss: usize): void {
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    const o = (<usize>r * <usize>cols) << 2;
    const xr = x + o, pr = probs + o;
    const max = rowMax_f32(xr, cols);
    const lse = max + Math.log(rowSumExp_f32(xr, cols, max));
    const vl = f64x2.splat(lse);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const q = <usize>c << 2;
      const v = v128.load(xr + q);
      const e0 = expd2(f64x2.sub(f64x2.promote_low_f32x4(v), vl));
      const e1 = expd2(f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), vl));
      v128.store(pr + q, v128.shuffle<f32>(f32x4.demote_f64x2_zero(e0), f32x4.demote_f64x2_zero(e1), 0, 1, 4, 5));
    }
    for (; c < cols; c++) store<f32>(pr + (<usize>c << 2), <f32>expd(<f64>load<f32>(xr + (<usize>c << 2)) - lse));
    store<f32>(loss + (<usize>r << 2), t == ignore ? <f32>0 : <f32>(lse - <f64>load<f32>(xr + (<usize>t << 2))));
  }
}
export function sce_f64(rows: i32, cols: i32, x: usize, targets: usize, ignore: i32, probs: usize, loss: usize): void { sceG<f64>(rows, cols, x, targets, ignore, probs, loss); }

/**
 * sce_f32 with one exponential per element: e = e^(x−max) is kept in float64 at `scratch`
 * (8·cols bytes, the calling thread's own), then p = e·(1/Σ), lse = max + log Σ, loss = lse − x[t].
 * The same contract as sce_f32 (float64 throughout, rounded once: within a rounding of the
 * reference); rows are independent (the host may split them across threads).
 */
export function sceRows_f32(rows: i32, cols: i32, x: usize, targets: usize, ignore: i32, probs: usize, loss: usize, scratch: usize): void {
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    const o = (<usize>r * <usize>cols) << 2;
    const xr = x + o, pr = probs + o;
    const max = rowMax_f32(xr, cols);
    const vm = f64x2.splat(max);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const v = v128.load(xr + (<usize>c << 2));
      const e0 = expd2(f64x2.sub(f64x2.promote_low_f32x4(v), vm));
      const e1 = expd2(f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), vm));
      const q = scratch + (<usize>c << 3);
      v128.store(q, e0);
      v128.store(q, e1, 16);
      s0 = f64x2.add(s0, e0);
      s1 = f64x2.add(s1, e1);
    }
    const st = f64x2.add(s0, s1);
    let sum = f64x2.extract_lane(st, 0) + f64x2.extract_lane(st, 1);
    for (; c < cols; c++) {
      const e = expd(<f64>load<f32>(xr + (<usize>c << 2)) - max);
      store<f64>(scratch + (<usize>c << 3), e);
      sum += e;
    }
    const lse = max + Math.log(sum);
    const inv = 1 / sum;
    const vi = f64x2.splat(inv);
    c = 0;
    for (; c + 4 <= cols; c += 4) {
      const q = scratch + (<usize>c << 3);
      const p0 = f32x4.demote_f64x2_zero(f64x2.mul(v128.load(q), vi));
      const p1 = f32x4.demote_f64x2_zero(f64x2.mul(v128.load(q, 16), vi));
      v128.store(pr + (<usize>c << 2), v128.shuffle<f32>(p0, p1, 0, 1, 4, 5));
    }
    for (; c < cols; c++) store<f32>(pr + (<usize>c << 2), <f32>(load<f64>(scratch + (<usize>c << 3)) * inv));
    store<f32>(loss + (<usize>r << 2), t == ignore ? <f32>0 : <f32>(lse - <f64>load<f32>(xr + (<usize>t << 2))));
  }
}

function sceBackwardG<T>(rows: i32, cols: i32, probs: usize, targets: usize, ignore: i32, rowGrad: usize, dx: usize): void {
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    if (t == ignore) continue;
    const o = r * cols;
    const g = <f64>load<T>(elementPtr<T>(rowGrad, r));
    for (let c = 0; c < cols; c++) {
      store<T>(elementPtr<T>(dx, o + c), <T>(<f64>load<T>(elementPtr<T>(dx, o + c)) + g * <f64>load<T>(elementPtr<T>(probs, o + c))));
    }
    store<T>(elementPtr<T>(dx, o + t), <T>(<f64>load<T>(elementPtr<T>(dx, o + t)) - g));
  }
}
/** float32: the reference's float64 arithmetic two lanes at a time, rounded once — bit-identical to it. */
export function sceBackward_f32(rows: i32, cols: i32, probs: usize, targets: usize, ignore: i32, rowGrad: usize, dx: usize): void {
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    if (t == ignore) continue;
    const o = (<usize>r * <usize>cols) << 2;
    const pr = probs + o, dr = dx + o;
    const g = <f64>load<f32>(rowGrad + (<usize>r << 2));
    const vg = f64x2.splat(g);
    let c = 0;
    for (; c + 2 <= cols; c += 2) {
      const q = <usize>c << 2;
      v128.store64_lane(dr + q, f32x4.demote_f64x2_zero(f64x2.add(ld2(dr + q), f64x2.mul(vg, ld2(pr + q)))), 0);
    }
    for (; c < cols; c++) {
      const q = <usize>c << 2;
      store<f32>(dr + q, <f32>(<f64>load<f32>(dr + q) + g * <f64>load<f32>(pr + q)));
    }
    const q = <usize>t << 2;
    store<f32>(dr + q, <f32>(<f64>load<f32>(dr + q) - g));
  }
}
export function sceBackward_f64(rows: i32, cols: i32, probs: usize, targets: usize, ignore: i32, rowGrad: usize, dx: usize): void { sceBackwardG<f64>(rows, cols, probs, targets, ignore, rowGrad, dx); }

// ---- embeddings -------------------------------------------------------------------------------------

/** out[i, :] = table[idx[i], :] (row bytes = rowBytes; indices validated by the host). */
export function gatherRows(rowBytes: i32, table: usize, idx: usize, n: i32, out: usize): void {
  for (let i = 0; i < n; i++) {
    const k = load<i32>(idx + (<usize>i << 2));
    memory.copy(out + <usize>i * <usize>rowBytes, table + <usize>k * <usize>rowBytes, <usize>rowBytes);
  }
}

function scatterAddG<T>(cols: i32, dout: usize, idx: usize, n: i32, dtable: usize): void {
  for (let i = 0; i < n; i++) {
    const k = load<i32>(idx + (<usize>i << 2));
    const src = elementPtr<T>(dout, i * cols), dst = elementPtr<T>(dtable, k * cols);
    for (let c = 0; c < cols; c++) store<T>(elementPtr<T>(dst, c), load<T>(elementPtr<T>(dst, c)) + load<T>(elementPtr<T>(src, c)));
  }
}
export function scatterAdd_f32(cols: i32, dout: usize, idx: usize, n: i32, dtable: usize): void { scatterAddLd_f32(cols, cols, dout, idx, n, dtable); }
/**
 * dtable[idx[i], c] += dout[i, c] for c < cols (rows ld apart in both), in float32, i in order — each
 * element sums in the reference's order, so bit-identical to it. The host splits columns across
 * threads (dout and dtable offset by the first column).
 */
export function scatterAddLd_f32(cols: i32, ld: i32, dout: usize, idx: usize, n: i32, dtable: usize): void {
  const ld4 = <usize>ld << 2;
  for (let i = 0; i < n; i++) {
    const k = load<i32>(idx + (<usize>i << 2));
    const src = dout + <usize>i * ld4, dst = dtable + <usize>k * ld4;
    let c = 0;
    for (; c + 8 <= cols; c += 8) {
      const o = <usize>c << 2;
      v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
      v128.store(dst + o, f32x4.add(v128.load(dst + o, 16), v128.load(src + o, 16)), 16);
    }
    for (; c < cols; c++) {
      const o = <usize>c << 2;
      store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
    }
  }
}
export function scatterAdd_f64(cols: i32, dout: usize, idx: usize, n: i32, dtable: usize): void { scatterAddG<f64>(cols, dout, idx, n, dtable); }
