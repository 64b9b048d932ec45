/**
 * GEMM: C[M,N] = alpha·op(A)·op(B) + beta·C, row-major, any of the four transpose combinations.
 *
 * float32 is a BLIS-style packed GEMM:
 *  - B is packed (by the host, once, possibly cached across calls) into column panels of NR = 8:
 *    for each K block [pc, pc+kc) and each panel p the kc×8 values lie contiguous, rows of 8. The
 *    K blocks all have the same length except the last (`kBlock`), and block pc starts at element
 *    pc·Npad of the packed buffer, panel p of it at p·8·kc further (Npad = N rounded up to 8).
 *    Missing columns of the last panel are zeros, so the inner loop never branches on edges.
 *  - A is packed here, per K block and MC rows, into row panels of MR = 4 (k-major, 4 values per k),
 *    zero-padded the same way. When a GEMM is split by column panels (M small), every chunk would
 *    pack all of A again, so the host packs A once instead (`sgemm_pack_a`, threaded by row panels)
 *    and the chunks read it (`sgemm_compute_pa`): block pc at element pc·Mpad, the panel of rows
 *    [i, i+4) of it at i·kc further (Mpad = M rounded up to 4). Same values, same kernel.
 *  - The micro-kernel keeps a 4×8 block of C in eight f32x4 registers, one splat load of A and two
 *    vector loads of B per k, and applies alpha/beta once per K block. A last panel with at most 4
 *    columns (N mod 8 in 1..4, e.g. N = 65) runs a 4×4 kernel that reads only its first half.
 * Every element of C is summed in the same order (k ascending inside a K block, blocks in order)
 * whatever the thread split (by rows or by panels), the kernel (4×8 or 4×4) or who packed A — so
 * threaded and single-threaded results are bit-identical. M = 1 (a mat-vec, the batch-1 streaming
 * step) has its own kernel over the same packed panels, four panels at a time, with the same
 * summation order.
 *
 * float64 (used by the gradient checks, never hot) is a plain triple loop.
 */
import { madd, minI } from './common';

export const MR: i32 = 4;
export const NR: i32 = 8;
export const KC: i32 = 256;
export const MC: i32 = 128;

/** Length of the K blocks: K split into ceil(K/KC) equal blocks (the last may be shorter). */
export function sgemm_kblock(K: i32): i32 {
  const nb = (K + KC - 1) / KC;
  return nb == 0 ? 0 : (K + nb - 1) / nb;
}

/** Bytes of per-thread scratch that sgemm_compute needs (packed A block + an edge tile). */
export function sgemm_scratch_bytes(): i32 {
  return MC * KC * 4 + MR * NR * 4 + 64;
}

/** 4×4 transpose of the rows r0..r3 (four f32 each); the results are the columns. */
@inline function tr0(a: v128, b: v128): v128 { return v128.shuffle<f32>(a, b, 0, 1, 4, 5); }
@inline function tr1(a: v128, b: v128): v128 { return v128.shuffle<f32>(a, b, 2, 3, 6, 7); }
@inline function lo(a: v128, b: v128): v128 { return v128.shuffle<f32>(a, b, 0, 4, 1, 5); }
@inline function hi(a: v128, b: v128): v128 { return v128.shuffle<f32>(a, b, 2, 6, 3, 7); }

/**
 * The ragged last panel of a pack (fewer than `width` = NR or MR rows/columns left): kc steps of
 * `width` values, the first n read from src (value j at src + j·jStep), the rest zero-padded, src
 * moving by kStep per step. One helper for op(A) and op(B), transposed or not; inlined, so `width`
 * is a constant in each copy. Only edge panels take this path.
 */
@inline function packRagged(src: usize, kStep: usize, jStep: usize, dst: usize, kc: i32, width: i32, n: i32): void {
  for (let k = 0; k < kc; k++) {
    for (let j = 0; j < width; j++) store<f32>(dst + (<usize>j << 2), j < n ? load<f32>(src + <usize>j * jStep) : 0);
    src += kStep;
    dst += <usize>width << 2;
  }
}

/**
 * Pack panels [p0, p1) of op(B) (K×N) for every K block into Bp (layout in the file comment).
 * transB: B is stored N×K (element (k, j) at j·ldb + k).
 */
export function sgemm_pack_b(transB: bool, K: i32, N: i32, B: usize, ldb: i32, Bp: usize, p0: i32, p1: i32): void {
  const Npad = ((N + NR - 1) / NR) * NR;
  const kb = sgemm_kblock(K);
  const ldb4 = <usize>ldb << 2;
  for (let pc = 0; pc < K; pc += kb) {
    const kc = minI(kb, K - pc);
    const blk = Bp + ((<usize>pc * <usize>Npad) << 2);
    for (let p = p0; p < p1; p++) {
      let dst = blk + ((<usize>p * <usize>(NR * kc)) << 2);
      const j0 = p * NR;
      const nr = minI(NR, N - j0);
      if (!transB) {
        let src = B + ((<usize>pc * <usize>ldb + <usize>j0) << 2);
        if (nr == NR) {
          for (let k = 0; k < kc; k++) {
            v128.store(dst, v128.load(src));
            v128.store(dst, v128.load(src, 16), 16);
            src += ldb4;
            dst += 32;
          }
        } else {
          packRagged(src, ldb4, 4, dst, kc, NR, nr);
        }
      } else {
        // column j of op(B) is row j0 + j of the stored matrix
        const row = B + ((<usize>j0 * <usize>ldb + <usize>pc) << 2);
        if (nr == NR) {
          let k = 0;
          for (; k + 4 <= kc; k += 4) {
            const s = row + (<usize>k << 2);
            const r0 = v128.load(s), r1 = v128.load(s + ldb4), r2 = v128.load(s + 2 * ldb4), r3 = v128.load(s + 3 * ldb4);
            const r4 = v128.load(s + 4 * ldb4), r5 = v128.load(s + 5 * ldb4), r6 = v128.load(s + 6 * ldb4), r7 = v128.load(s + 7 * ldb4);
            const a0 = lo(r0, r1), a1 = lo(r2, r3), a2 = hi(r0, r1), a3 = hi(r2, r3);
            const b0 = lo(r4, r5), b1 = lo(r6, r7), b2 = hi(r4, r5), b3 = hi(r6, r7);
            v128.store(dst, tr0(a0, a1));
            v128.store(dst, tr0(b0, b1), 16);
            v128.store(dst, tr1(a0, a1), 32);
            v128.store(dst, tr1(b0, b1), 48);
            v128.store(dst, tr0(a2, a3), 64);
            v128.store(dst, tr0(b2, b3), 80);
            v128.store(dst, tr1(a2, a3), 96);
            v128.store(dst, tr1(b2, b3), 112);
            dst += 128;
          }
          for (; k < kc; k++) {
            const s = row + (<usize>k << 2);
            for (let j = 0; j < NR; j++) store<f32>(dst + (<usize>j << 2), load<f32>(s + <usize>j * ldb4));
            dst += 32;
          }
        } else {
          packRagged(row, 4, ldb4, dst, kc, NR, nr);
        }
      }
    }
  }
}

/** Pack rows [i0, i0+mc) × columns [pc, pc+kc) of op(A) into MR-row panels at Ap. */
function packA(transA: bool, A: usize, lda: i32, i0: i32, mc: i32, pc: i32, kc: i32, Ap: usize): void {
  const lda4 = <usize>lda << 2;
  for (let r = 0; r < mc; r += MR) {
    const mr = minI(MR, mc - r);
    let dst = Ap + ((<usize>r * <usize>kc) << 2);
    if (!transA) {
      const s0 = A + ((<usize>(i0 + r) * <usize>lda + <usize>pc) << 2);
      if (mr == MR) {
        const s1 = s0 + lda4, s2 = s1 + lda4, s3 = s2 + lda4;
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          const o = <usize>k << 2;
          const r0 = v128.load(s0 + o), r1 = v128.load(s1 + o), r2 = v128.load(s2 + o), r3 = v128.load(s3 + o);
          const a0 = lo(r0, r1), a1 = lo(r2, r3), a2 = hi(r0, r1), a3 = hi(r2, r3);
          v128.store(dst, tr0(a0, a1));
          v128.store(dst, tr1(a0, a1), 16);
          v128.store(dst, tr0(a2, a3), 32);
          v128.store(dst, tr1(a2, a3), 48);
          dst += 64;
        }
        for (; k < kc; k++) {
          const o = <usize>k << 2;
          store<f32>(dst, load<f32>(s0 + o));
          store<f32>(dst, load<f32>(s1 + o), 4);
          store<f32>(dst, load<f32>(s2 + o), 8);
          store<f32>(dst, load<f32>(s3 + o), 12);
          dst += 16;
        }
      } else {
        packRagged(s0, 4, lda4, dst, kc, MR, mr);
      }
    } else {
      // element (i, k) of op(A) at k·lda + i: MR consecutive rows are contiguous for each k
      let src = A + ((<usize>pc * <usize>lda + <usize>(i0 + r)) << 2);
      if (mr == MR) {
        for (let k = 0; k < kc; k++) {
          v128.store(dst, v128.load(src));
          src += lda4;
          dst += 16;
        }
      } else {
        packRagged(src, lda4, 4, dst, kc, MR, mr);
      }
    }
  }
}

/**
 * Pack rows [r0, r1) of op(A) (M×K; r0 a multiple of MR) for every K block into Ap, in the layout of
 * the file comment. Each thread of a split packs its own row range.
 */
export function sgemm_pack_a(transA: bool, M: i32, K: i32, A: usize, lda: i32, Ap: usize, r0: i32, r1: i32): void {
  const Mpad = ((M + MR - 1) / MR) * MR;
  const kb = sgemm_kblock(K);
  for (let pc = 0; pc < K; pc += kb) {
    const kc = minI(kb, K - pc);
    const blk = Ap + ((<usize>pc * <usize>Mpad) << 2);
    for (let ic = r0; ic < r1; ic += MC) {
      packA(transA, A, lda, ic, minI(MC, r1 - ic), pc, kc, blk + ((<usize>ic * <usize>kc) << 2));
    }
  }
}

/** C row (8 values from two vectors) = alpha·acc + beta·C, or alpha·acc when beta = 0. */
@inline function storeRow8(c: usize, x0: v128, x1: v128, va: v128, beta: f32): void {
  if (beta == 0) {
    v128.store(c, f32x4.mul(va, x0));
    v128.store(c, f32x4.mul(va, x1), 16);
  } else {
    const vb = f32x4.splat(beta);
    v128.store(c, f32x4.add(f32x4.mul(vb, v128.load(c)), f32x4.mul(va, x0)));
    v128.store(c, f32x4.add(f32x4.mul(vb, v128.load(c, 16)), f32x4.mul(va, x1)), 16);
  }
}

/** Partial tile: rows < mr, columns < nr from the tile saved at tmp (row stride 8 floats). */
function storePartial(c: usize, ldc4: usize, tmp: usize, mr: i32, nr: i32, alpha: f32, beta: f32): void {
  for (let i = 0; i < mr; i++) {
    const crow = c + <usize>i * ldc4;
    const trow = tmp + (<usize>i << 5);
    for (let j = 0; j < nr; j++) {
      const o = <usize>j << 2;
      const t = load<f32>(trow + o);
      if (beta == 0) store<f32>(crow + o, alpha * t);
      else store<f32>(crow + o, beta * load<f32>(crow + o) + alpha * t);
    }
  }
}

/** The 4×8 micro-kernel over one K block. */
@inline function kernel4x8(kc: i32, a: usize, b: usize, c: usize, ldc4: usize, alpha: f32, beta: f32, mr: i32, nr: i32, tmp: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(a, 4);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(a, 8);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(a, 12);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    a += 16;
    b += 32;
  }
  const va = f32x4.splat(alpha);
  if (mr == MR && nr == NR) {
    storeRow8(c, c00, c01, va, beta);
    storeRow8(c + ldc4, c10, c11, va, beta);
    storeRow8(c + 2 * ldc4, c20, c21, va, beta);
    storeRow8(c + 3 * ldc4, c30, c31, va, beta);
  } else {
    v128.store(tmp, c00); v128.store(tmp, c01, 16);
    v128.store(tmp, c10, 32); v128.store(tmp, c11, 48);
    v128.store(tmp, c20, 64); v128.store(tmp, c21, 80);
    v128.store(tmp, c30, 96); v128.store(tmp, c31, 112);
    storePartial(c, ldc4, tmp, mr, nr, alpha, beta);
  }
}

/** The 4×4 micro-kernel (a last panel of at most 4 columns): the first half of each B row of 8. */
@inline function kernel4x4(kc: i32, a: usize, b: usize, c: usize, ldc4: usize, alpha: f32, beta: f32, mr: i32, nr: i32, tmp: usize): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b);
    c0 = madd(v128.load32_splat(a), b0, c0);
    c1 = madd(v128.load32_splat(a, 4), b0, c1);
    c2 = madd(v128.load32_splat(a, 8), b0, c2);
    c3 = madd(v128.load32_splat(a, 12), b0, c3);
    a += 16;
    b += 32;
  }
  v128.store(tmp, c0);
  v128.store(tmp, c1, 32);
  v128.store(tmp, c2, 64);
  v128.store(tmp, c3, 96);
  storePartial(c, ldc4, tmp, mr, nr, alpha, beta);
}

/** One row of C (M = 1) against panels [p0, p1) of one K block, four panels at a time. */
function matvecBlock(kc: i32, a: usize, astep: usize, blk: usize, p0: i32, p1: i32, N: i32, c: usize, alpha: f32, beta: f32, tmp: usize): void {
  const pstride = (<usize>(NR * kc)) << 2;
  const va = f32x4.splat(alpha);
  let p = p0;
  for (; p + 4 <= p1 && (p + 4) * NR <= N; p += 4) {
    let b = blk + <usize>p * pstride;
    let ap = a;
    let x0 = f32x4.splat(0), x1 = f32x4.splat(0), y0 = f32x4.splat(0), y1 = f32x4.splat(0);
    let z0 = f32x4.splat(0), z1 = f32x4.splat(0), w0 = f32x4.splat(0), w1 = f32x4.splat(0);
    for (let k = 0; k < kc; k++) {
      const av = v128.load32_splat(ap);
      x0 = madd(av, v128.load(b), x0);
      x1 = madd(av, v128.load(b, 16), x1);
      y0 = madd(av, v128.load(b + pstride), y0);
      y1 = madd(av, v128.load(b + pstride, 16), y1);
      z0 = madd(av, v128.load(b + 2 * pstride), z0);
      z1 = madd(av, v128.load(b + 2 * pstride, 16), z1);
      w0 = madd(av, v128.load(b + 3 * pstride), w0);
      w1 = madd(av, v128.load(b + 3 * pstride, 16), w1);
      ap += astep;
      b += 32;
    }
    const cc = c + ((<usize>(p * NR)) << 2);
    storeRow8(cc, x0, x1, va, beta);
    storeRow8(cc + 32, y0, y1, va, beta);
    storeRow8(cc + 64, z0, z1, va, beta);
    storeRow8(cc + 96, w0, w1, va, beta);
  }
  for (; p < p1; p++) {
    let b = blk + <usize>p * pstride;
    let ap = a;
    let x0 = f32x4.splat(0), x1 = f32x4.splat(0);
    for (let k = 0; k < kc; k++) {
      const av = v128.load32_splat(ap);
      x0 = madd(av, v128.load(b), x0);
      x1 = madd(av, v128.load(b, 16), x1);
      ap += astep;
      b += 32;
    }
    const j0 = p * NR;
    const cc = c + (<usize>j0 << 2);
    if (j0 + NR <= N) {
      storeRow8(cc, x0, x1, va, beta);
    } else {
      v128.store(tmp, x0);
      v128.store(tmp, x1, 16);
      storePartial(cc, 0, tmp, 1, N - j0, alpha, beta);
    }
  }
}

/**
 * Compute rows [m0, m1) × panels [p0, p1) of C with B already packed at Bp. `scratch` is this
 * thread's own sgemm_scratch_bytes() region. Each thread of a split calls this with its own ranges.
 */
export function sgemm_compute(
  transA: bool, m0: i32, m1: i32, p0: i32, p1: i32, K: i32, N: i32, alpha: f32,
  A: usize, lda: i32, Bp: usize, beta: f32, C: usize, ldc: i32, scratch: usize,
): void {
  computeBlocks(transA, m0, m1, p0, p1, K, N, alpha, A, lda, 0, 0, Bp, beta, C, ldc, scratch);
}

/**
 * sgemm_compute with op(A) (M rows) already packed at Ap by sgemm_pack_a; m0 a multiple of MR.
 * The same arithmetic in the same order as sgemm_compute.
 */
export function sgemm_compute_pa(
  m0: i32, m1: i32, p0: i32, p1: i32, K: i32, N: i32, alpha: f32,
  Ap: usize, M: i32, Bp: usize, beta: f32, C: usize, ldc: i32, scratch: usize,
): void {
  computeBlocks(false, m0, m1, p0, p1, K, N, alpha, 0, 0, Ap, ((M + MR - 1) / MR) * MR, Bp, beta, C, ldc, scratch);
}

/** Packs A per block into scratch when Ap = 0, else reads the packed A (row count Mpad) at Ap. */
function computeBlocks(
  transA: bool, m0: i32, m1: i32, p0: i32, p1: i32, K: i32, N: i32, alpha: f32,
  A: usize, lda: i32, Ap: usize, Mpad: i32, Bp: usize, beta: f32, C: usize, ldc: i32, scratch: usize,
): void {
  if (m1 <= m0 || p1 <= p0) return;
  const Npad = ((N + NR - 1) / NR) * NR;
  const kb = sgemm_kblock(K);
  const ldc4 = <usize>ldc << 2;
  const tmp = scratch + ((<usize>(MC * KC)) << 2);
  for (let pc = 0; pc < K; pc += kb) {
    const kc = minI(kb, K - pc);
    const bet: f32 = pc == 0 ? beta : 1;
    const blk = Bp + ((<usize>pc * <usize>Npad) << 2);
    if (m1 - m0 == 1 && Ap == 0) {
      const a = transA ? A + ((<usize>pc * <usize>lda + <usize>m0) << 2) : A + ((<usize>m0 * <usize>lda + <usize>pc) << 2);
      const astep: usize = transA ? <usize>lda << 2 : 4;
      matvecBlock(kc, a, astep, blk, p0, p1, N, C + <usize>m0 * ldc4, alpha, bet, tmp);
      continue;
    }
    for (let ic = m0; ic < m1; ic += MC) {
      const mc = minI(MC, m1 - ic);
      let ablk = scratch;
      if (Ap == 0) packA(transA, A, lda, ic, mc, pc, kc, scratch);
      else ablk = Ap + ((<usize>pc * <usize>Mpad + <usize>ic * <usize>kc) << 2);
      for (let p = p0; p < p1; p++) {
        const bpan = blk + ((<usize>p * <usize>(NR * kc)) << 2);
        const j0 = p * NR;
        const nr = minI(NR, N - j0);
        let cp = C + <usize>ic * ldc4 + (<usize>j0 << 2);
        if (nr <= 4) {
          for (let ir = 0; ir < mc; ir += MR) {
            kernel4x4(kc, ablk + ((<usize>ir * <usize>kc) << 2), bpan, cp, ldc4, alpha, bet, minI(MR, mc - ir), nr, tmp);
            cp += ldc4 << 2;
          }
        } else {
          for (let ir = 0; ir < mc; ir += MR) {
            kernel4x8(kc, ablk + ((<usize>ir * <usize>kc) << 2), bpan, cp, ldc4, alpha, bet, minI(MR, mc - ir), nr, tmp);
            cp += ldc4 << 2;
          }
        }
      }
    }
  }
}

/** C = beta·C over an M×N block (beta = 0 writes zeros, ignoring NaN). Used when K = 0 or alpha = 0. */
export function sgemm_scale_c(M: i32, N: i32, beta: f32, C: usize, ldc: i32): void {
  for (let i = 0; i < M; i++) {
    const row = C + ((<usize>i * <usize>ldc) << 2);
    for (let j = 0; j < N; j++) {
      const p = row + (<usize>j << 2);
      store<f32>(p, beta == 0 ? 0 : beta * load<f32>(p));
    }
  }
}

/** float64 GEMM: a plain loop (gradient checks only). */
export function dgemm(
  transA: bool, transB: bool, M: i32, N: i32, K: i32, alpha: f64,
  A: usize, lda: i32, B: usize, ldb: i32, beta: f64, C: usize, ldc: i32,
): void {
  for (let i = 0; i < M; i++) {
    const row = C + ((<usize>i * <usize>ldc) << 3);
    for (let j = 0; j < N; j++) {
      const p = row + (<usize>j << 3);
      store<f64>(p, beta == 0 ? 0 : beta * load<f64>(p));
    }
  }
  if (alpha == 0 || K == 0) return;
  const sa_i: usize = transA ? 8 : <usize>lda << 3;
  const sa_k: usize = transA ? <usize>lda << 3 : 8;
  const sb_k: usize = transB ? 8 : <usize>ldb << 3;
  const sb_j: usize = transB ? <usize>ldb << 3 : 8;
  for (let i = 0; i < M; i++) {
    const row = C + ((<usize>i * <usize>ldc) << 3);
    for (let j = 0; j < N; j++) {
      let s: f64 = 0;
      let ap = A + <usize>i * sa_i;
      let bp = B + <usize>j * sb_j;
      for (let k = 0; k < K; k++) {
        s += load<f64>(ap) * load<f64>(bp);
        ap += sa_k;
        bp += sb_k;
      }
      const p = row + (<usize>j << 3);
      store<f64>(p, load<f64>(p) + alpha * s);
    }
  }
}
