/**
 * Transcendental functions on four f32 lanes for the fused gate kernels, and a float64 exp on two
 * lanes for softmax and cross-entropy (expd2, below).
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
 *
 * Constants are read from static tables (KF, KD) with v128.load rather than written as v128.const:
 * V8 (Node 20) rebuilds a v128.const in every loop iteration (immediate → general register → vector
 * register → shuffle), a load from L1 is one instruction. Same values, same results, ~20% faster.
 */

// e^r's Taylor coefficients 1/k! (float64; exp4 takes them to r⁷ as float32, expd2 to r¹³)
const F2: f64 = 0.5;
const F3: f64 = 0.16666666666666666;
const F4: f64 = 0.041666666666666664;
const F5: f64 = 0.008333333333333333;
const F6: f64 = 0.001388888888888889;
const F7: f64 = 0.0001984126984126984;
const F8: f64 = 0.0000248015873015873;
const F9: f64 = 0.0000027557319223985893;
const F10: f64 = 2.755731922398589e-7;
const F11: f64 = 2.505210838544172e-8;
const F12: f64 = 2.08767569878681e-9;
const F13: f64 = 1.6059043836821613e-10;

const LOG2E: f32 = 1.4426950408889634;
// ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits so n·LN2_HI is exact for |n| ≤ 128.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440054690583e-4;
const C2 = <f32>F2;
const C3 = <f32>F3;
const C4 = <f32>F4;
const C5 = <f32>F5;
const C6 = <f32>F6;
const C7 = <f32>F7;

// 1.5·2^23 + 127: adding it to an integral n in [-126, 127] leaves n + 127 in the low mantissa bits
const EXP_MAGIC: f32 = 12583039.0;

// The constants of exp4/sigmoid4/tanh4, each splatted to four lanes (read with v128.load; see the
// file comment). Byte offsets in the comments.
const KF: usize = memory.data<f32>([
  -87.0, -87.0, -87.0, -87.0, 88.0, 88.0, 88.0, 88.0, LOG2E, LOG2E, LOG2E, LOG2E, LN2_HI, LN2_HI, LN2_HI, LN2_HI, // 0
  LN2_LO, LN2_LO, LN2_LO, LN2_LO, C7, C7, C7, C7, C6, C6, C6, C6, C5, C5, C5, C5, // 64
  C4, C4, C4, C4, C3, C3, C3, C3, C2, C2, C2, C2, 1.0, 1.0, 1.0, 1.0, // 128
  EXP_MAGIC, EXP_MAGIC, EXP_MAGIC, EXP_MAGIC, -2.0, -2.0, -2.0, -2.0, 0.25, 0.25, 0.25, 0.25, // 192
  -0.3333333333333333, -0.3333333333333333, -0.3333333333333333, -0.3333333333333333, // 240: T3
  0.13333333333333333, 0.13333333333333333, 0.13333333333333333, 0.13333333333333333, // 256: T5
  -0.05396825396825397, -0.05396825396825397, -0.05396825396825397, -0.05396825396825397, // 272: T7
  0.021869488536155203, 0.021869488536155203, 0.021869488536155203, 0.021869488536155203, // 288: T9
], 16);

@inline export function exp4(x0: v128): v128 {
  // pmax/pmin (one instruction each, unlike the NaN-aware max/min; NaN still propagates: x < lo is
  // false for NaN)
  const x = f32x4.pmin(f32x4.pmax(x0, v128.load(KF)), v128.load(KF, 16));
  const n = f32x4.nearest(f32x4.mul(x, v128.load(KF, 32)));
  let r = f32x4.sub(x, f32x4.mul(n, v128.load(KF, 48)));
  r = f32x4.sub(r, f32x4.mul(n, v128.load(KF, 64)));
  let p = f32x4.add(f32x4.mul(v128.load(KF, 80), r), v128.load(KF, 96));
  p = f32x4.add(f32x4.mul(p, r), v128.load(KF, 112));
  p = f32x4.add(f32x4.mul(p, r), v128.load(KF, 128));
  p = f32x4.add(f32x4.mul(p, r), v128.load(KF, 144));
  p = f32x4.add(f32x4.mul(p, r), v128.load(KF, 160));
  const one = v128.load(KF, 176);
  p = f32x4.add(f32x4.mul(p, r), one);
  p = f32x4.add(f32x4.mul(p, r), one);
  // 2^n: n + 127 into the exponent field (the magic constant's own bits shift out)
  const scale = i32x4.shl(f32x4.add(n, v128.load(KF, 192)), 23);
  return f32x4.mul(p, scale);
}

@inline export function sigmoid4(x: v128): v128 {
  const one = v128.load(KF, 176);
  return f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(x))));
}

const T3: f32 = -0.3333333333333333;
const T5: f32 = 0.13333333333333333;
const T7: f32 = -0.05396825396825397;
const T9: f32 = 0.021869488536155203;

@inline export function tanh4(x: v128): v128 {
  const one = v128.load(KF, 176);
  const ax = f32x4.abs(x);
  const e = exp4(f32x4.mul(ax, v128.load(KF, 208)));
  const big = f32x4.div(f32x4.sub(one, e), f32x4.add(one, e));
  const bigSigned = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  const x2 = f32x4.mul(x, x);
  let p = f32x4.add(f32x4.mul(v128.load(KF, 288), x2), v128.load(KF, 272));
  p = f32x4.add(f32x4.mul(p, x2), v128.load(KF, 256));
  p = f32x4.add(f32x4.mul(p, x2), v128.load(KF, 240));
  p = f32x4.mul(f32x4.mul(p, x2), x);
  const small = f32x4.add(x, p);
  return v128.bitselect(small, bigSigned, f32x4.lt(ax, v128.load(KF, 224)));
}

// ---- float64 exp on two lanes (softmax and cross-entropy, whose results are rounded to float32) ----
//
// The same scheme in float64: x = n·ln2 + r with |r| ≤ ln2/2 (fdlibm's split of ln 2, so n·LN2_HI_D
// is exact), e^r by its Taylor polynomial to r¹³ (truncation < 5e-18 relative) evaluated by Estrin's
// scheme (a short dependency chain: 28% faster than Horner here), 2^n in the exponent bits. Measured
// against Math.exp: within 2 float64 ulp over [-708, 709], so a float32 result rounded from it
// equals the one rounded from Math.exp except when e^x lies within a few 1e-16 (relative) of a
// float32 rounding boundary. Inputs are clamped to [-708, 709] (2^n stays normal): below -708 the
// result is ~3e-308 instead of a denormal or 0 — both round to float32 0 — and above 709 (beyond
// float32 range, e^x > 3e38) it stays finite. NaN propagates.

const LOG2E_D: f64 = 1.4426950408889634;
const LN2_HI_D: f64 = 6.93147180369123816490e-01;
const LN2_LO_D: f64 = 1.90821492927058770002e-10;
// 2^52 + 1023: adding it to an integral n in [-1022, 1023] leaves n + 1023 in the low mantissa bits
const EXP_MAGIC_D: f64 = 4503599627371519.0;

// The constants of expd2, each splatted to two lanes (read with v128.load; see the file comment).
const KD: usize = memory.data<f64>([-708.0, -708.0, 709.0, 709.0, LOG2E_D, LOG2E_D, LN2_HI_D, LN2_HI_D, LN2_LO_D, LN2_LO_D, F13, F13, F12, F12, F11, F11, F10, F10, F9, F9, F8, F8, F7, F7, F6, F6, F5, F5, F4, F4, F3, F3, F2, F2, 1.0, 1.0, EXP_MAGIC_D, EXP_MAGIC_D], 16);

@inline export function expd2(x0: v128): v128 {
  const x = f64x2.pmin(f64x2.pmax(x0, v128.load(KD)), v128.load(KD, 16));
  const n = f64x2.nearest(f64x2.mul(x, v128.load(KD, 32)));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(n, v128.load(KD, 48))), f64x2.mul(n, v128.load(KD, 64)));
  // Estrin's scheme (a short dependency chain): Σ c_k r^k as pairs (c_k + c_k+1·r) combined with r², r⁴, r⁸
  const one = v128.load(KD, 272);
  const r2 = f64x2.mul(r, r);
  const r4 = f64x2.mul(r2, r2);
  const r8 = f64x2.mul(r4, r4);
  const q01 = f64x2.add(one, r);
  const q23 = f64x2.add(v128.load(KD, 256), f64x2.mul(v128.load(KD, 240), r));
  const q45 = f64x2.add(v128.load(KD, 224), f64x2.mul(v128.load(KD, 208), r));
  const q67 = f64x2.add(v128.load(KD, 192), f64x2.mul(v128.load(KD, 176), r));
  const q89 = f64x2.add(v128.load(KD, 160), f64x2.mul(v128.load(KD, 144), r));
  const q1011 = f64x2.add(v128.load(KD, 128), f64x2.mul(v128.load(KD, 112), r));
  const q1213 = f64x2.add(v128.load(KD, 96), f64x2.mul(v128.load(KD, 80), r));
  const q03 = f64x2.add(q01, f64x2.mul(r2, q23));
  const q47 = f64x2.add(q45, f64x2.mul(r2, q67));
  const q811 = f64x2.add(q89, f64x2.mul(r2, q1011));
  const q813 = f64x2.add(q811, f64x2.mul(r4, q1213));
  const p = f64x2.add(f64x2.add(q03, f64x2.mul(r4, q47)), f64x2.mul(r8, q813));
  const scale = i64x2.shl(f64x2.add(n, v128.load(KD, 288)), 52);
  return f64x2.mul(p, scale);
}

/** expd2 on one value (row tails), so every element of a row gets the same arithmetic. */
@inline export function expd(x: f64): f64 {
  return f64x2.extract_lane(expd2(f64x2.splat(x)), 0);
}

/**
 * Exported for the accuracy test of the approximations: out[i] = f(x[i]) over n (multiple of 4).
 * fn 0 exp, 1 sigmoid, 2 tanh (float32 lanes); fn 3: expd2, reading and writing float64 (n even).
 */
export function vmath_eval(fn: i32, n: i32, x: usize, out: usize): void {
  if (fn == 3) {
    for (let i = 0; i < n; i += 2) v128.store(out + (<usize>i << 3), expd2(v128.load(x + (<usize>i << 3))));
    return;
  }
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
