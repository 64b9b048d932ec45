/**
 * Transcendental functions on four f32 lanes for the fused gate kernels.
 *
 * exp: x = n·ln2 + r with n = round(x·log2 e) and |r| ≤ ln2/2 (ln2 split in two so n·ln2_hi is
 * exact), e^r by its Taylor polynomial to r⁷ (truncation error < 1e-8 relative), and 2^n put in the
 * exponent bits. Inputs are clamped to [-87, 88] so 2^n stays a normal float; below -87 the result is
 * ~1e-38 instead of a denormal or 0, which no caller can tell apart after a 1 + e.
 * Measured against Math.exp: within 2 ulp over [-87, 88].
 *
 * sigmoid(x) = 1 / (1 + e^-x) — exact division, so relative accuracy carries over from exp.
 * tanh: for |x| < 0.25 the odd Taylor polynomial to x⁹ (error < 1e-8 relative), otherwise
 * (1 − e)/(1 + e) with e = e^(−2|x|) and the sign of x put back. The split avoids the cancellation
 * of 1 − e near 0.
 *
 * These use plain mul/add (never the relaxed fused form) so every build computes the same gates.
 */

const LOG2E: f32 = 1.4426950408889634;
// ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits so n·LN2_HI is exact for |n| ≤ 128.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440054690583e-4;
const C2: f32 = 0.5;
const C3: f32 = 0.16666666666666666;
const C4: f32 = 0.041666666666666664;
const C5: f32 = 0.008333333333333333;
const C6: f32 = 0.001388888888888889;
const C7: f32 = 0.0001984126984126984;

// 1.5·2^23 + 127: adding it to an integral n in [-126, 127] leaves n + 127 in the low mantissa bits
const EXP_MAGIC: f32 = 12583039.0;

@inline export function exp4(x0: v128): v128 {
  // pmax/pmin (one instruction each, unlike the NaN-aware max/min; NaN still propagates: x < lo is
  // false for NaN)
  const x = f32x4.pmin(f32x4.pmax(x0, f32x4.splat(-87.0)), f32x4.splat(88.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.add(f32x4.mul(f32x4.splat(C7), r), f32x4.splat(C6));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(C5));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(C4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(C3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(C2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  // 2^n: n + 127 into the exponent field (the magic constant's own bits shift out)
  const scale = i32x4.shl(f32x4.add(n, f32x4.splat(EXP_MAGIC)), 23);
  return f32x4.mul(p, scale);
}

@inline export function sigmoid4(x: v128): v128 {
  const one = f32x4.splat(1.0);
  return f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
}

const T3: f32 = -0.3333333333333333;
const T5: f32 = 0.13333333333333333;
const T7: f32 = -0.05396825396825397;
const T9: f32 = 0.021869488536155203;

@inline export function tanh4(x: v128): v128 {
  const one = f32x4.splat(1.0);
  const ax = f32x4.abs(x);
  const e = exp4(f32x4.mul(ax, f32x4.splat(-2.0)));
  const big = f32x4.div(f32x4.sub(one, e), f32x4.add(one, e));
  const bigSigned = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  const x2 = f32x4.mul(x, x);
  let p = f32x4.add(f32x4.mul(f32x4.splat(T9), x2), f32x4.splat(T7));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(T5));
  p = f32x4.add(f32x4.mul(p, x2), f32x4.splat(T3));
  p = f32x4.mul(f32x4.mul(p, x2), x);
  const small = f32x4.add(x, p);
  return v128.bitselect(small, bigSigned, f32x4.lt(ax, f32x4.splat(0.25)));
}

/** Exported for the accuracy test of the approximations: out[i] = f(x[i]) over n (multiple of 4). */
export function vmath_eval(fn: i32, n: i32, x: usize, out: usize): void {
  for (let i = 0; i < n; i += 4) {
    const p = <usize>i << 2;
    const v = v128.load(x + p);
    let r: v128;
    if (fn == 0) r = exp4(v);
    else if (fn == 1) r = sigmoid4(v);
    else r = tanh4(v);
    v128.store(out + p, r);
  }
}
