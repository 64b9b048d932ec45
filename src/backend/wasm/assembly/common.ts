/**
 * Helpers shared by every kernel file: the multiply-add that the relaxed-SIMD build fuses, the
 * per-row masking rule of the recurrent cells, element addresses.
 *
 * All pointers are byte offsets into the one linear memory; sizes and strides count elements.
 */

/**
 * a·b + c on four f32 lanes. The relaxed-SIMD build emits `f32x4.relaxed_madd` (a fused multiply-add
 * where the CPU has one, so the rounding differs from the plain build and across CPUs); the plain
 * build is always mul-then-add, which is bit-reproducible everywhere.
 */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/** Row b is inactive at step t when lengths are given (lens != 0) and t >= lengths[b]. */
@inline export function inactive(lens: usize, b: i32, t: i32): bool {
  return lens != 0 && t >= load<i32>(lens + (<usize>b << 2));
}

/** Byte address of element i of a T array at p. */
@inline export function elementPtr<T>(p: usize, i: i32): usize {
  return p + (<usize>i << alignof<T>());
}

/** Two float32 values at p, widened to two float64 lanes. */
@inline export function ld2(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p));
}

@inline export function minI(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

/** Stable logistic function in float64 (the same branch structure as the reference backend). */
@inline export function sigmoid64(x: f64): f64 {
  if (x >= 0) return 1.0 / (1.0 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1.0 + e);
}

/** Where the static data of this module ends (the host allocator starts above it). */
export function dataEnd(): usize {
  return __heap_base;
}
