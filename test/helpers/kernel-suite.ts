/**
 * The shared backend kernel suite. Every kernel of the `Backend` interface is compared with a naive
 * float64 implementation written here, straight from the interface documentation. A new backend
 * (wasm, WebGPU, ...) runs the same suite:
 *
 *   runKernelSuite(new MyBackend(), 'float32');
 *
 * Inputs are rounded to the backend's dtype first (they are read back from the backend's storage),
 * so the reference sees exactly the values the kernel sees. A result r passes against reference e
 * when |r − e| ≤ tol·(1 + scale), where scale is |e| or, for sums, the sum of the magnitudes of the
 * terms (so cancellation does not make the check stricter than the arithmetic allows).
 */
import { shapeStrides } from '../../src/util/shape.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { asyncReads, type Activation, type Backend, type BinaryOp, type CellStep, type DType, type Storage, type UnaryOp } from '../../src/backend/interface.ts';
import { Rng } from '../../src/tensor/rng.ts';

export interface KernelSuiteOptions {
  /** Relative tolerance; default 2e-5 for float32 and 1e-12 for float64. */
  tol?: number;
  /** Name shown in the test tree; default `${backend.name} ${dtype}`. */
  label?: string;
}

const UNARY_OPS: readonly UnaryOp[] = ['neg', 'exp', 'log', 'tanh', 'sigmoid', 'relu', 'sqrt', 'square', 'abs', 'softplus'];
const BINARY_OPS: readonly BinaryOp[] = ['add', 'sub', 'mul', 'div'];
const ACTS: readonly Activation[] = ['tanh', 'relu'];

const sigm = (x: number): number => 1 / (1 + Math.exp(-x));

function unaryRef(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg': return -x;
    case 'exp': return Math.exp(x);
    case 'log': return Math.log(x);
    case 'tanh': return Math.tanh(x);
    case 'sigmoid': return sigm(x);
    case 'relu': return x > 0 ? x : 0;
    case 'sqrt': return Math.sqrt(x);
    case 'square': return x * x;
    case 'abs': return Math.abs(x);
    case 'softplus': return x > 30 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
  }
}

/** f'(x). */
function unaryDeriv(op: UnaryOp, x: number): number {
  switch (op) {
    case 'neg': return -1;
    case 'exp': return Math.exp(x);
    case 'log': return 1 / x;
    case 'tanh': return 1 - Math.tanh(x) ** 2;
    case 'sigmoid': return sigm(x) * (1 - sigm(x));
    case 'relu': return x > 0 ? 1 : 0;
    case 'sqrt': return 0.5 / Math.sqrt(x);
    case 'square': return 2 * x;
    case 'abs': return Math.sign(x);
    case 'softplus': return sigm(x);
  }
}

/** Input domain per unary op: positive for log/sqrt, bounded away from the kink for relu/abs. */
function unaryInputs(op: UnaryOp, n: number, rng: Rng): Float64Array {
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (op) {
      case 'log': case 'sqrt': v[i] = rng.uniform(0.05, 4); break;
      case 'relu': case 'abs': v[i] = (rng.random() < 0.5 ? -1 : 1) * rng.uniform(0.01, 3); break;
      case 'exp': v[i] = rng.uniform(-5, 5); break;
      case 'softplus': v[i] = i < 4 ? [-60, -25, 25, 60][i] : rng.uniform(-6, 6); break;
      default: v[i] = rng.uniform(-3, 3);
    }
  }
  return v;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}


/** All multi-indices of a shape in row-major order. */
function* indices(shape: readonly number[]): Generator<number[]> {
  const n = sizeOf(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    yield idx.slice();
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
}

/** Flat offset of multi-index idx in shape, with broadcasting (size-1 axes read index 0). */
function bcastOffset(shape: readonly number[], idx: readonly number[]): number {
  const st = shapeStrides(shape);
  let o = 0;
  for (let a = 0; a < shape.length; a++) o += (shape[a] === 1 ? 0 : idx[a]) * st[a];
  return o;
}

export function runKernelSuite(backend: Backend, dtype: DType, options: KernelSuiteOptions = {}): void {
  const be = backend;
  const tol = options.tol ?? (dtype === 'float32' ? 2e-5 : 1e-12);
  const label = options.label ?? `${be.name} ${dtype}`;
  const SENTINEL = 12345.5; // exactly representable in float32

  // ---- helpers (closed over the backend and dtype) ----------------------------------------------
  const up = (v: ArrayLike<number>): Storage => be.fromArray(v, dtype);
  const rb = asyncReads(be);
  const down = async (s: Storage, off = 0, n?: number): Promise<Float64Array> => Float64Array.from(await rb.read(s, off, n ?? s.size - off));
  const randArr = (rng: Rng, n: number, lo = -1, hi = 1): Float64Array => {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.uniform(lo, hi);
    return v;
  };
  /** Random storage plus the values as the backend holds them (rounded to dtype). */
  const randStore = async (rng: Rng, n: number, lo = -1, hi = 1): Promise<[Storage, Float64Array]> => {
    const s = up(randArr(rng, n, lo, hi));
    return [s, await down(s)];
  };
  const filled = (n: number, v: number): Storage => {
    const s = be.alloc(n, dtype);
    be.fill(s, v, 0, n);
    return s;
  };

  /** |actual − expected| ≤ tol·(1 + scale) elementwise; scale defaults to |expected|. */
  function check(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, scale?: ArrayLike<number>, t = tol): void {
    assert.equal(actual.length, expected.length, `${what}: length ${actual.length}, expected ${expected.length}`);
    let bad = 0, first = -1;
    for (let i = 0; i < expected.length; i++) {
      const a = actual[i], e = expected[i];
      const sc = scale ? scale[i] : Math.abs(e);
      const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= t * (1 + sc);
      if (!ok) {
        if (first < 0) first = i;
        bad++;
      }
    }
    if (bad) assert.fail(`${label}: ${what}: ${bad} of ${expected.length} differ (tol ${t}); first at ${first}: got ${actual[first]}, expected ${expected[first]}`);
  }
  /** Exact equality (copies, gathers, sentinels). */
  function same(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
    assert.equal(actual.length, expected.length, `${what}: length`);
    for (let i = 0; i < expected.length; i++) {
      if (!Object.is(actual[i], expected[i]) && !(actual[i] === 0 && expected[i] === 0)) {
        assert.fail(`${label}: ${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
      }
    }
  }
  /** Elements of s outside [off, off + n) still hold `want`. */
  async function untouchedOutside(s: Storage, before: ArrayLike<number>, off: number, n: number, what: string): Promise<void> {
    const now = await down(s);
    for (let i = 0; i < now.length; i++) {
      if (i >= off && i < off + n) continue;
      if (!Object.is(now[i], before[i])) assert.fail(`${label}: ${what}: element ${i} outside [${off}, ${off + n}) changed from ${before[i]} to ${now[i]}`);
    }
  }

  describe(`backend kernels: ${label}`, () => {
    // ---- memory -------------------------------------------------------------------------------
    test('alloc / fromArray / read / write / copy / fill', async () => {
      const z = be.alloc(7, dtype);
      assert.equal(z.size, 7);
      assert.equal(z.dtype, dtype);
      assert.equal(z.backend, be);
      same(await down(z), new Array(7).fill(0), 'alloc zero-fills');
      assert.equal(be.alloc(0, dtype).size, 0);
      const vals = [0.1, -2.5, 3, 1e-3, 7];
      const s = up(vals);
      const r = await rb.read(s);
      assert.ok(dtype === 'float32' ? r instanceof Float32Array : r instanceof Float64Array, 'read returns the dtype\'s array');
      const rounded = dtype === 'float32' ? vals.map(Math.fround) : vals;
      same(r, rounded, 'fromArray/read round-trip');
      same(await rb.read(s, 1, 3), rounded.slice(1, 4), 'read with offset');
      same(await rb.read(s, 2), rounded.slice(2), 'read with offset only');
      be.write(s, [9, 8], 2);
      same(await rb.read(s), [rounded[0], rounded[1], 9, 8, rounded[4]], 'write at offset');
      const t = be.alloc(6, dtype);
      be.copy(s, 1, t, 3, 3);
      same(await rb.read(t), [0, 0, 0, rounded[1], 9, 8], 'copy with offsets');
      be.fill(t, -1.5, 1, 2);
      same(await rb.read(t), [0, -1.5, -1.5, rounded[1], 9, 8], 'fill range');
      // the read copy is detached from storage
      const c = await rb.read(t);
      c[0] = 42;
      assert.equal((await rb.read(t))[0], 0);
    });

    // ---- gemm ----------------------------------------------------------------------------------
    const SIZES = [1, 3, 7, 13, 31, 64];
    const AB: [number, number][] = [[1, 0], [0.5, 1], [-1.5, 0.25], [2, -1], [1, 1], [0.75, 0]];
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        test(`gemm transA=${transA} transB=${transB}: sizes ${SIZES.join('/')}, alpha/beta, offsets, leading dims`, async () => {
          const rng = new Rng(1000 + (transA ? 2 : 0) + (transB ? 1 : 0));
          let combo = 0;
          for (const M of SIZES) for (const N of SIZES) for (const K of SIZES) {
            const [alpha, beta] = AB[combo++ % AB.length];
            await runGemm(rng, transA, transB, M, N, K, alpha, beta, `M=${M} N=${N} K=${K} alpha=${alpha} beta=${beta}`);
          }
        });
      }
    }
    test('gemm: alpha = 0 scales C only; K = 0 gives beta·C; beta = 0 ignores NaN in C', async () => {
      const rng = new Rng(1010);
      for (const [ta, tb] of [[false, false], [true, true], [false, true], [true, false]] as const) {
        await runGemm(rng, ta, tb, 5, 4, 3, 0, 0.5, `alpha 0 (${ta},${tb})`);
        await runGemm(rng, ta, tb, 5, 4, 0, 1, 2, `K 0 (${ta},${tb})`);
        await runGemm(rng, ta, tb, 5, 4, 0, 1, 0, `K 0 beta 0 (${ta},${tb})`);
        await runGemm(rng, ta, tb, 6, 2, 9, -1, 0, `beta 0 (${ta},${tb})`);
      }
    });

    test('gemm at vocabulary-sized shapes (M, N or K = 65, ragged panels and K blocks, big enough to be split across threads)', async () => {
      const rng = new Rng(1011);
      for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        for (const [M, N, K] of [[65, 259, 260], [65, 130, 260], [260, 65, 130], [130, 260, 65], [65, 40, 1000], [65, 65, 65]]) {
          await runGemm(rng, transA, transB, M, N, K, 0.5, 1, `${M}x${N}x${K}`);
        }
      }
    });

    async function runGemm(rng: Rng, transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, beta: number, what: string): Promise<void> {
      // A is M×K (K×M if transA), B is K×N (N×K if transB), padded rows and offsets; the padding is
      // NaN so a kernel that reads outside the matrix is caught.
      const [aRows, aCols] = transA ? [K, M] : [M, K];
      const [bRows, bCols] = transB ? [N, K] : [K, N];
      const lda = Math.max(aCols, 1) + rng.int(4), ldb = Math.max(bCols, 1) + rng.int(4), ldc = N + rng.int(4);
      const aOff = rng.int(6), bOff = rng.int(6), cOff = rng.int(6);
      const mat = (rows: number, cols: number, ld: number, off: number, fillOut: number, fillIn: () => number): Float64Array => {
        const v = new Float64Array(off + rows * ld + 3).fill(fillOut);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) v[off + r * ld + c] = fillIn();
        return v;
      };
      const As = up(mat(aRows, aCols, lda, aOff, NaN, () => rng.uniform(-1, 1)));
      const Bs = up(mat(bRows, bCols, ldb, bOff, NaN, () => rng.uniform(-1, 1)));
      const Cs = up(mat(M, N, ldc, cOff, SENTINEL, () => (beta === 0 ? NaN : rng.uniform(-1, 1))));
      const A = await down(As), B = await down(Bs), C0 = await down(Cs);
      const a = (i: number, k: number): number => (transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k]);
      const b = (k: number, j: number): number => (transB ? B[bOff + j * ldb + k] : B[bOff + k * ldb + j]);
      be.gemm(transA, transB, M, N, K, alpha, As, aOff, lda, Bs, bOff, ldb, beta, Cs, cOff, ldc);
      const C = await down(Cs);
      const got: number[] = [], want: number[] = [], scale: number[] = [];
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0, m = 0;
          for (let k = 0; k < K; k++) {
            s += a(i, k) * b(k, j);
            m += Math.abs(a(i, k) * b(k, j));
          }
          const c0 = C0[cOff + i * ldc + j];
          want.push(alpha * s + (beta === 0 ? 0 : beta * c0));
          scale.push(Math.abs(alpha) * m + (beta === 0 ? 0 : Math.abs(beta * c0)));
          got.push(C[cOff + i * ldc + j]);
        }
      }
      check(got, want, `gemm ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} ${what}`, scale, tol * Math.max(1, Math.sqrt(K) / 2));
      // everything outside the M×N block of C (row padding, before and after) is untouched
      for (let p = 0; p < C.length; p++) {
        const rel = p - cOff;
        const inside = rel >= 0 && rel < M * ldc && rel % ldc < N;
        if (!inside && C[p] !== SENTINEL) assert.fail(`${label}: gemm ${what}: C[${p}] outside the output block changed to ${C[p]}`);
      }
    }

    // ---- BLAS-1 and row vectors ---------------------------------------------------------------------
    test('axpy with offsets (alpha 1 and general)', async () => {
      const rng = new Rng(2001);
      for (const alpha of [1, -0.7, 0]) {
        const [x, xv] = await randStore(rng, 40);
        const [y, yv] = await randStore(rng, 45);
        const n = 31, xOff = 5, yOff = 9;
        be.axpy(n, alpha, x, xOff, y, yOff);
        const want = yv.slice(yOff, yOff + n).map((v, i) => v + alpha * xv[xOff + i]);
        check(await down(y, yOff, n), want, `axpy alpha=${alpha}`);
        await untouchedOutside(y, yv, yOff, n, 'axpy');
      }
    });
    test('scale with offset', async () => {
      const rng = new Rng(2002);
      const [x, xv] = await randStore(rng, 30);
      be.scale(17, -2.5, x, 6);
      check(await down(x, 6, 17), xv.slice(6, 23).map((v) => v * -2.5), 'scale');
      await untouchedOutside(x, xv, 6, 17, 'scale');
    });
    test('addRowVector with offsets', async () => {
      const rng = new Rng(2003);
      const rows = 5, cols = 7, bOff = 2, xOff = 3;
      const [bias, bv] = await randStore(rng, cols + 4);
      const [X, Xv] = await randStore(rng, xOff + rows * cols + 4);
      be.addRowVector(rows, cols, bias, bOff, X, xOff);
      const want = Xv.slice(xOff, xOff + rows * cols).map((v, k) => v + bv[bOff + (k % cols)]);
      check(await down(X, xOff, rows * cols), want, 'addRowVector');
      await untouchedOutside(X, Xv, xOff, rows * cols, 'addRowVector');
    });
    test('sumRowsBackward accumulates column sums', async () => {
      const rng = new Rng(2004);
      for (const [rows, cols] of [[6, 5], [1, 3], [13, 1]]) {
        const xOff = 4, oOff = 2;
        const [X, Xv] = await randStore(rng, xOff + rows * cols + 3);
        const [o, ov] = await randStore(rng, oOff + cols + 2);
        be.sumRowsBackward(rows, cols, X, xOff, o, oOff);
        const want: number[] = [], scale: number[] = [];
        for (let c = 0; c < cols; c++) {
          let s = ov[oOff + c], m = Math.abs(s);
          for (let r = 0; r < rows; r++) {
            s += Xv[xOff + r * cols + c];
            m += Math.abs(Xv[xOff + r * cols + c]);
          }
          want.push(s);
          scale.push(m);
        }
        check(await down(o, oOff, cols), want, `sumRowsBackward ${rows}x${cols}`, scale);
        await untouchedOutside(o, ov, oOff, cols, 'sumRowsBackward');
      }
    });

    // ---- element-wise -------------------------------------------------------------------------------
    for (const op of UNARY_OPS) {
      test(`unary ${op} and unaryBackward ${op}`, async () => {
        const rng = new Rng(3000 + UNARY_OPS.indexOf(op));
        const n = 53;
        const x = up(unaryInputs(op, n + 3, rng));
        const xv = await down(x);
        const out = filled(n + 3, NaN);
        be.unary(op, n, x, out);
        const ov = await down(out);
        check(ov.slice(0, n), xv.slice(0, n).map((v) => unaryRef(op, v)), `unary ${op}`);
        for (let i = n; i < n + 3; i++) assert.ok(Number.isNaN(ov[i]), `${label}: unary ${op} wrote past n`);
        // backward accumulates dy·f'(x) into dx
        const [dy, dyv] = await randStore(rng, n + 3);
        const [dx, dxv] = await randStore(rng, n + 3);
        be.unaryBackward(op, n, x, out, dy, dx);
        const want = dxv.slice(0, n).map((v, i) => v + dyv[i] * unaryDeriv(op, xv[i]));
        const scale = dxv.slice(0, n).map((v, i) => Math.abs(v) + Math.abs(dyv[i] * unaryDeriv(op, xv[i])));
        check(await down(dx, 0, n), want, `unaryBackward ${op}`, scale);
        await untouchedOutside(dx, dxv, 0, n, `unaryBackward ${op}`);
      });
    }

    const BCAST: [readonly number[], readonly number[], readonly number[]][] = [
      [[2, 3], [2, 3], [2, 3]],
      [[2, 3], [1, 3], [2, 3]],
      [[1, 3], [2, 3], [2, 3]],
      [[2, 1, 4], [1, 3, 1], [2, 3, 4]],
      [[4, 1], [1, 5], [4, 5]],
      [[3, 1, 1], [3, 1, 1], [3, 1, 1]],
      [[1, 1], [2, 6], [2, 6]],
      [[2, 6], [1, 1], [2, 6]],
      [[], [], []],
      [[5], [1], [5]],
      [[2, 1, 3, 1], [1, 4, 1, 2], [2, 4, 3, 2]],
    ];
    for (const op of BINARY_OPS) {
      test(`binary ${op} with broadcasting`, async () => {
        const rng = new Rng(4000 + BINARY_OPS.indexOf(op));
        for (const [sa, sb, so] of BCAST) {
          const [a, av] = await randStore(rng, sizeOf(sa));
          const bvals = randArr(rng, sizeOf(sb), 0.5, 2).map((v) => (rng.random() < 0.5 ? -v : v));
          const b = up(bvals);
          const bv = await down(b);
          const out = filled(sizeOf(so), NaN);
          be.binary(op, a, sa, b, sb, out, so);
          const want: number[] = [];
          for (const idx of indices(so)) {
            const x = av[bcastOffset(sa, idx)], y = bv[bcastOffset(sb, idx)];
            want.push(op === 'add' ? x + y : op === 'sub' ? x - y : op === 'mul' ? x * y : x / y);
          }
          check(await down(out), want, `binary ${op} [${sa}] with [${sb}] → [${so}]`);
        }
      });
    }
    test('binary: out may alias the full-shape operand a (used in place by autograd)', async () => {
      const rng = new Rng(4100);
      for (const op of BINARY_OPS) {
        for (const [sa, sb] of [[[2, 3], [2, 3]], [[2, 3], [1, 3]], [[3, 4], [3, 1]]] as const) {
          const [a, av] = await randStore(rng, sizeOf(sa));
          const [b, bv] = await randStore(rng, sizeOf(sb), 0.5, 2);
          be.binary(op, a, sa, b, sb, a, sa);
          const want: number[] = [];
          for (const idx of indices(sa)) {
            const x = av[bcastOffset(sa, idx)], y = bv[bcastOffset(sb, idx)];
            want.push(op === 'add' ? x + y : op === 'sub' ? x - y : op === 'mul' ? x * y : x / y);
          }
          check(await down(a), want, `binary ${op} in place [${sa}] with [${sb}]`);
        }
      }
    });

    test('reduceSum over any set of axes (overwrites out)', async () => {
      const rng = new Rng(5000);
      const cases: [readonly number[], readonly number[]][] = [
        [[2, 3, 4], [1, 3, 1]],
        [[2, 3, 4], [1, 1, 1]],
        [[2, 3, 4], [2, 3, 4]],
        [[2, 3, 4], [2, 1, 4]],
        [[2, 3, 4], [2, 3, 1]],
        [[5, 1, 3], [5, 1, 1]],
        [[4, 6], [4, 1]],
        [[4, 6], [1, 6]],
        [[7], [1]],
        [[], []],
        [[2, 3, 2, 3], [1, 3, 1, 3]],
      ];
      for (const [sx, so] of cases) {
        const [x, xv] = await randStore(rng, sizeOf(sx));
        const out = filled(sizeOf(so), NaN);
        be.reduceSum(x, sx, out, so);
        const want = new Float64Array(sizeOf(so));
        const scale = new Float64Array(sizeOf(so));
        let i = 0;
        for (const idx of indices(sx)) {
          const o = bcastOffset(so, idx);
          want[o] += xv[i];
          scale[o] += Math.abs(xv[i]);
          i++;
        }
        check(await down(out), want, `reduceSum [${sx}] → [${so}]`, scale);
      }
    });

    test('sumSquares accumulates in float64, with offset', async () => {
      const rng = new Rng(5100);
      const [x, xv] = await randStore(rng, 5003, -3, 3);
      let s = 0;
      for (let i = 3; i < 5003; i++) s += xv[i] * xv[i];
      const got = await rb.sumSquares(5000, x, 3);
      assert.equal(typeof got, 'number');
      check([got], [s], 'sumSquares', undefined, 1e-11);
      assert.equal(await rb.sumSquares(0, x, 0), 0);
      // 2^24 + 1 ones only add up right with a wide accumulator; use a big value then many small ones
      const y = up([4096, ...new Array<number>(4096).fill(1)]);
      check([await rb.sumSquares(4097, y, 0)], [4096 * 4096 + 4096], 'sumSquares wide accumulator', undefined, 1e-12);
    });

    test('findNonFinite: index relative to the offset, first one wins, range respected', async () => {
      const v = new Float64Array(20).map((_, i) => i * 0.5 - 3);
      v[1] = NaN; // before the range
      v[17] = Infinity; // after the range
      const s = up(v);
      assert.equal(await rb.findNonFinite(12, s, 4), -1);
      be.write(s, [-Infinity], 11);
      be.write(s, [NaN], 13);
      assert.equal(await rb.findNonFinite(12, s, 4), 7);
      be.write(s, [NaN], 6);
      assert.equal(await rb.findNonFinite(12, s, 4), 2);
      assert.equal(await rb.findNonFinite(0, s, 6), -1);
      if (dtype === 'float32') {
        const big = up([1e39]); // overflows float32 to Infinity
        assert.equal(await rb.findNonFinite(1, big, 0), 0);
      }
    });

    test('clamp in place within the range only', async () => {
      const rng = new Rng(5200);
      const [x, xv] = await randStore(rng, 30, -3, 3);
      be.write(x, [-1, 1], 10); // values exactly on the bounds
      const before = await down(x);
      be.clamp(20, x, 5, -1, 1);
      const want = before.slice(5, 25).map((v) => Math.min(1, Math.max(-1, v)));
      same(await down(x, 5, 20), want, 'clamp');
      await untouchedOutside(x, before, 5, 20, 'clamp');
      void xv;
    });

    // ---- shape movement -----------------------------------------------------------------------------
    test('permute for ranks 1–4, identity and size-1 dims', async () => {
      const rng = new Rng(6000);
      const cases: [readonly number[], readonly number[]][] = [
        [[5], [0]],
        [[3, 4], [1, 0]],
        [[3, 4], [0, 1]],
        [[2, 3, 4], [2, 0, 1]],
        [[2, 3, 4], [1, 2, 0]],
        [[2, 3, 4], [0, 2, 1]],
        [[2, 1, 4], [2, 1, 0]],
        [[2, 3, 4, 5], [3, 1, 0, 2]],
        [[1, 3, 1, 2], [3, 2, 1, 0]],
      ];
      for (const [shape, perm] of cases) {
        const [x, xv] = await randStore(rng, sizeOf(shape));
        const out = filled(sizeOf(shape), NaN);
        be.permute(x, shape, perm, out);
        const outShape = perm.map((p) => shape[p]);
        const want: number[] = [];
        const st = shapeStrides(shape);
        for (const idx of indices(outShape)) {
          let o = 0;
          for (let i = 0; i < perm.length; i++) o += idx[i] * st[perm[i]];
          want.push(xv[o]);
        }
        same(await down(out), want, `permute [${shape}] by [${perm}]`);
      }
    });

    const SLICES: [readonly number[], number, number, number][] = [
      [[3, 5, 4], 0, 1, 2],
      [[3, 5, 4], 1, 2, 3],
      [[3, 5, 4], 1, 0, 5],
      [[3, 5, 4], 2, 3, 1],
      [[6], 0, 2, 3],
      [[2, 7], 1, 6, 1],
    ];
    test('sliceAxis on first, middle and last axes', async () => {
      const rng = new Rng(6100);
      for (const [shape, axis, start, len] of SLICES) {
        const [x, xv] = await randStore(rng, sizeOf(shape));
        const outShape = shape.map((s, i) => (i === axis ? len : s));
        const out = filled(sizeOf(outShape), NaN);
        be.sliceAxis(x, shape, axis, start, len, out);
        const want: number[] = [];
        for (const idx of indices(outShape)) {
          const src = idx.slice();
          src[axis] += start;
          want.push(xv[bcastOffset(shape, src)]);
        }
        same(await down(out), want, `sliceAxis [${shape}] axis ${axis} [${start}, ${start + len})`);
      }
    });
    test('addIntoAxis accumulates into the slab', async () => {
      const rng = new Rng(6200);
      for (const [shape, axis, start, len] of SLICES) {
        const srcShape = shape.map((s, i) => (i === axis ? len : s));
        const [src, sv] = await randStore(rng, sizeOf(srcShape));
        const [dst, dv] = await randStore(rng, sizeOf(shape));
        be.addIntoAxis(src, srcShape, dst, shape, axis, start);
        const want = Float64Array.from(dv);
        let i = 0;
        for (const idx of indices(srcShape)) {
          const d = idx.slice();
          d[axis] += start;
          want[bcastOffset(shape, d)] += sv[i++];
        }
        check(await down(dst), want, `addIntoAxis [${srcShape}] into [${shape}] axis ${axis} at ${start}`);
      }
    });

    // ---- softmax and losses ---------------------------------------------------------------------------
    /** Row-major logits with a few hard rows: huge, hugely negative, and one dominant entry. */
    async function logitRows(rng: Rng, rows: number, cols: number): Promise<[Storage, Float64Array]> {
      const v = randArr(rng, rows * cols, -4, 4);
      if (rows >= 3) {
        for (let c = 0; c < cols; c++) {
          v[cols + c] += 1000;
          v[2 * cols + c] -= 1000;
        }
      }
      if (rows >= 4) v[3 * cols] = 60;
      const s = up(v);
      return [s, await down(s)];
    }
    function softmaxRef(row: ArrayLike<number>): { p: number[]; logp: number[] } {
      const m = Math.max(...Array.from(row));
      let z = 0;
      for (let i = 0; i < row.length; i++) z += Math.exp(row[i] - m);
      const lse = m + Math.log(z);
      const logp = Array.from(row, (v) => v - lse);
      return { p: logp.map(Math.exp), logp };
    }

    for (const log of [false, true]) {
      test(`softmax${log ? ' (log)' : ''} and its backward`, async () => {
        const rng = new Rng(7000 + (log ? 1 : 0));
        for (const [rows, cols] of [[5, 7], [4, 1], [1, 13], [3, 2]]) {
          const [x, xv] = await logitRows(rng, rows, cols);
          const y = filled(rows * cols, NaN);
          be.softmax(rows, cols, x, y, log);
          const want: number[] = [];
          for (let r = 0; r < rows; r++) {
            const ref = softmaxRef(xv.subarray(r * cols, (r + 1) * cols));
            want.push(...(log ? ref.logp : ref.p));
          }
          check(await down(y), want, `softmax log=${log} ${rows}x${cols}`);
          // backward from the kernel's own y, accumulated
          const yv = await down(y);
          const [dy, dyv] = await randStore(rng, rows * cols);
          const [dx, dxv] = await randStore(rng, rows * cols);
          be.softmaxBackward(rows, cols, y, dy, dx, log);
          const wantDx: number[] = [];
          for (let r = 0; r < rows; r++) {
            const o = r * cols;
            const p = softmaxRef(xv.subarray(o, o + cols)).p;
            if (log) {
              let s = 0;
              for (let c = 0; c < cols; c++) s += dyv[o + c];
              for (let c = 0; c < cols; c++) wantDx.push(dxv[o + c] + dyv[o + c] - p[c] * s);
            } else {
              let dot = 0;
              for (let c = 0; c < cols; c++) dot += p[c] * dyv[o + c];
              for (let c = 0; c < cols; c++) wantDx.push(dxv[o + c] + p[c] * (dyv[o + c] - dot));
            }
          }
          void yv;
          check(await down(dx), wantDx, `softmaxBackward log=${log} ${rows}x${cols}`, wantDx.map((v) => Math.abs(v) + 2));
        }
      });
    }

    test('softmaxCrossEntropy and backward, with ignoreIndex', async () => {
      const rng = new Rng(7100);
      for (const [ignoreIndex, targetsArr] of [
        [-100, [2, -100, 0, 4, 1, -100]],
        [3, [3, 1, 3, 0, 4, 2]],
      ] as const) {
        const rows = 6, cols = 5;
        const targets = Int32Array.from(targetsArr);
        const [x, xv] = await logitRows(rng, rows, cols);
        const probs = filled(rows * cols, NaN);
        const loss = filled(rows, NaN);
        be.softmaxCrossEntropy(rows, cols, x, targets, ignoreIndex, probs, loss);
        const wantP: number[] = [], wantL: number[] = [];
        for (let r = 0; r < rows; r++) {
          const ref = softmaxRef(xv.subarray(r * cols, (r + 1) * cols));
          wantP.push(...ref.p);
          wantL.push(targets[r] === ignoreIndex ? 0 : -ref.logp[targets[r]]);
        }
        check(await down(probs), wantP, `softmaxCrossEntropy probs (ignore ${ignoreIndex})`);
        check(await down(loss), wantL, `softmaxCrossEntropy loss (ignore ${ignoreIndex})`);
        const [rg, rgv] = await randStore(rng, rows);
        const [dl, dlv] = await randStore(rng, rows * cols);
        be.softmaxCrossEntropyBackward(rows, cols, probs, targets, ignoreIndex, rg, dl);
        const pv = await down(probs);
        const want = Float64Array.from(dlv);
        for (let r = 0; r < rows; r++) {
          if (targets[r] === ignoreIndex) continue;
          for (let c = 0; c < cols; c++) want[r * cols + c] += rgv[r] * (pv[r * cols + c] - (c === targets[r] ? 1 : 0));
        }
        check(await down(dl), want, `softmaxCrossEntropyBackward (ignore ${ignoreIndex})`);
        for (let r = 0; r < rows; r++) {
          if (targets[r] !== ignoreIndex) continue;
          same(await down(dl, r * cols, cols), dlv.subarray(r * cols, (r + 1) * cols), `ignored row ${r} untouched`);
        }
      }
    });
    test('softmaxCrossEntropy: out-of-range targets throw', async () => {
      const x = up(new Array(10).fill(0.5));
      const p = be.alloc(10, dtype), l = be.alloc(2, dtype);
      for (const bad of [5, -1, 1e6]) {
        assert.throws(
          () => be.softmaxCrossEntropy(2, 5, x, Int32Array.from([0, bad]), -100, p, l),
          (e: Error) => new RegExp(`target ${bad}`).test(e.message),
          `target ${bad}`,
        );
      }
      // the ignore index itself is fine even though it is out of range
      be.softmaxCrossEntropy(2, 5, x, Int32Array.from([0, -100]), -100, p, l);
    });

    test('gatherRows and scatterAddRows with repeated indices', async () => {
      const rng = new Rng(7200);
      const V = 6, cols = 5;
      const [table, tv] = await randStore(rng, V * cols);
      const idx = Int32Array.from([3, 0, 3, 5, 3, 1, 0]);
      const out = filled(idx.length * cols, NaN);
      be.gatherRows(cols, table, idx, out);
      const want: number[] = [];
      for (const k of idx) want.push(...tv.subarray(k * cols, (k + 1) * cols));
      same(await down(out), want, 'gatherRows');
      const [g, gv] = await randStore(rng, idx.length * cols);
      const [dt, dtv] = await randStore(rng, V * cols);
      be.scatterAddRows(cols, g, idx, dt);
      const wantD = Float64Array.from(dtv);
      const scale = dtv.map(Math.abs);
      idx.forEach((k, i) => {
        for (let c = 0; c < cols; c++) {
          wantD[k * cols + c] += gv[i * cols + c];
          scale[k * cols + c] += Math.abs(gv[i * cols + c]);
        }
      });
      check(await down(dt), wantD, 'scatterAddRows', scale);
      // empty index list
      be.gatherRows(cols, table, new Int32Array(0), be.alloc(0, dtype));
    });
    test('gatherRows / scatterAddRows: out-of-range indices throw', async () => {
      const table = up(new Array(12).fill(1));
      const out = be.alloc(6, dtype);
      for (const bad of [4, -1, 100]) {
        assert.throws(() => be.gatherRows(3, table, Int32Array.from([0, bad]), out), (e: Error) => new RegExp(`index ${bad}`).test(e.message), `gather ${bad}`);
        const dt = be.alloc(12, dtype);
        assert.throws(() => be.scatterAddRows(3, out, Int32Array.from([0, bad]), dt), (e: Error) => new RegExp(`index ${bad}`).test(e.message), `scatter ${bad}`);
      }
    });

    // ---- pooling over time ----------------------------------------------------------------------------
    test('maxOverTime and its backward: lengths or none, ties to the first step, NaN wins; bad lengths throw', async () => {
      const rng = new Rng(7300);
      for (const [T, B, F, lens] of [[6, 4, 37, [6, 1, 3, 5]], [5, 3, 8, null], [1, 2, 3, [1, 1]]] as const) {
        const n = T * B * F;
        const raw = randArr(rng, n, -2, 2);
        // ties (a later step repeats an earlier value) and NaNs (including after a larger value)
        for (let k = 0; k < n; k += 7) raw[k] = raw[k % (B * F)];
        if (T > 2) { raw[2 * B * F + 1] = NaN; raw[B * F + 2] = NaN; raw[2 * B * F + 2] = NaN; }
        const x = up(raw);
        const xv = await down(x);
        const lengths = lens === null ? null : Int32Array.from(lens);
        const out = filled(B * F, SENTINEL);
        be.maxOverTime(T, B, F, x, lengths, out);
        // the reference: the first maximum over the real steps, a NaN winning and staying
        const want = new Float64Array(B * F), winner = new Int32Array(B * F);
        for (let b = 0; b < B; b++) {
          for (let f = 0; f < F; f++) {
            const i = b * F + f;
            let best = 0;
            for (let t = 1; t < (lengths ? lengths[b] : T); t++) {
              const v = xv[t * B * F + i], w = xv[best * B * F + i];
              if (Number.isNaN(w)) break;
              if (Number.isNaN(v) || v > w) best = t;
            }
            winner[i] = best;
            want[i] = xv[best * B * F + i];
          }
        }
        same(await down(out), want, `maxOverTime T ${T} B ${B} F ${F}`);
        const [dy, dyv] = await randStore(rng, B * F);
        const [dx, dxv] = await randStore(rng, n);
        be.maxOverTimeBackward(T, B, F, x, lengths, out, dy, dx);
        const wantDx = Float64Array.from(dxv), scale = dxv.map(Math.abs);
        for (let i = 0; i < B * F; i++) {
          wantDx[winner[i] * B * F + i] += dyv[i];
          scale[winner[i] * B * F + i] += Math.abs(dyv[i]);
        }
        check(await down(dx), wantDx, `maxOverTimeBackward T ${T} B ${B} F ${F}`, scale);
      }
      const x = up(new Array(12).fill(1));
      for (const bad of [0, 4, -1]) {
        assert.throws(() => be.maxOverTime(3, 2, 2, x, Int32Array.from([1, bad]), be.alloc(4, dtype)), (e: Error) => new RegExp(`length ${bad} of sequence 1 is outside \\[1, 3\\]`).test(e.message), `length ${bad}`);
        assert.throws(() => be.maxOverTimeBackward(3, 2, 2, x, Int32Array.from([bad, 1]), be.alloc(4, dtype), be.alloc(4, dtype), be.alloc(12, dtype)), /length .* of sequence 0 is outside/);
      }
    });

    // ---- optimizer --------------------------------------------------------------------------------------
    test('adamUpdate matches the PyTorch formula (Adam, Adam + L2, AdamW) over several steps', async () => {
      const rng = new Rng(8000);
      const n = 23;
      for (const [weightDecay, decoupled] of [[0, false], [0.1, false], [0.05, true], [0, true]] as const) {
        const lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        const [p] = await randStore(rng, n);
        const m = be.alloc(n, dtype), v = be.alloc(n, dtype);
        for (let step = 1; step <= 5; step++) {
          const [g, gv] = await randStore(rng, n);
          if (step === 3) be.write(g, [0], 0); // a zero gradient
          const gAll = await down(g);
          const pv = await down(p), mv = await down(m), vv = await down(v);
          be.adamUpdate(n, p, g, m, v, lr, beta1, beta2, eps, weightDecay, decoupled, step);
          const bc1 = 1 - beta1 ** step, bc2 = 1 - beta2 ** step;
          const wp: number[] = [], wm: number[] = [], wv: number[] = [];
          for (let i = 0; i < n; i++) {
            let pi = pv[i];
            let gi = gAll[i];
            if (decoupled) pi *= 1 - lr * weightDecay;
            else gi += weightDecay * pi;
            const mi = beta1 * mv[i] + (1 - beta1) * gi;
            const vi = beta2 * vv[i] + (1 - beta2) * gi * gi;
            pi -= (lr / bc1) * mi / (Math.sqrt(vi) / Math.sqrt(bc2) + eps);
            wp.push(pi); wm.push(mi); wv.push(vi);
          }
          const what = `adam wd=${weightDecay} decoupled=${decoupled} step ${step}`;
          check(await down(p), wp, `${what} p`);
          check(await down(m), wm, `${what} m`, undefined, tol);
          // v is tiny: compare relatively
          const vNow = await down(v);
          for (let i = 0; i < n; i++) {
            if (!(Math.abs(vNow[i] - wv[i]) <= tol * Math.abs(wv[i]) + 1e-300)) {
              assert.fail(`${label}: ${what} v[${i}] = ${vNow[i]}, expected ${wv[i]}`);
            }
          }
          void gv;
        }
      }
    });

    // ---- the row/column kernels at sizes that a threaded backend splits ----------------------------------
    test('sumRowsBackward, reduceSum, scatterAddRows and gatherRows on blocks of 257 columns', async () => {
      const rng = new Rng(8100);
      const rows = 300, cols = 257, xOff = 5, oOff = 3;
      const [X, Xv] = await randStore(rng, xOff + rows * cols + 2);
      const [o, ov] = await randStore(rng, oOff + cols + 4);
      be.sumRowsBackward(rows, cols, X, xOff, o, oOff);
      const want = new Float64Array(cols), scale = new Float64Array(cols);
      for (let c = 0; c < cols; c++) {
        let s = ov[oOff + c], m = Math.abs(s);
        for (let r = 0; r < rows; r++) {
          s += Xv[xOff + r * cols + c];
          m += Math.abs(Xv[xOff + r * cols + c]);
        }
        want[c] = s;
        scale[c] = m;
      }
      check(await down(o, oOff, cols), want, 'sumRowsBackward 300x257', scale);
      await untouchedOutside(o, ov, oOff, cols, 'sumRowsBackward 300x257');

      const [x, xv] = await randStore(rng, rows * cols);
      const out = filled(cols, NaN);
      be.reduceSum(x, [rows, cols], out, [1, cols]);
      const wantR = new Float64Array(cols), scaleR = new Float64Array(cols);
      for (let i = 0; i < rows * cols; i++) {
        wantR[i % cols] += xv[i];
        scaleR[i % cols] += Math.abs(xv[i]);
      }
      check(await down(out), wantR, 'reduceSum [300, 257] → [1, 257]', scaleR);

      const V = 7;
      const idx = Int32Array.from({ length: rows }, () => rng.int(V));
      const [g, gv] = await randStore(rng, rows * cols);
      const [dt, dtv] = await randStore(rng, V * cols);
      be.scatterAddRows(cols, g, idx, dt);
      const wantD = Float64Array.from(dtv), scaleD = dtv.map(Math.abs);
      idx.forEach((k, i) => {
        for (let c = 0; c < cols; c++) {
          wantD[k * cols + c] += gv[i * cols + c];
          scaleD[k * cols + c] += Math.abs(gv[i * cols + c]);
        }
      });
      check(await down(dt), wantD, 'scatterAddRows 300 rows of 257 into 7', scaleD);

      const many = Int32Array.from({ length: 1100 }, () => rng.int(V));
      const got = filled(many.length * cols, NaN);
      be.gatherRows(cols, dt, many, got);
      const dtNow = await down(dt), wantG: number[] = [];
      for (const k of many) wantG.push(...dtNow.subarray(k * cols, (k + 1) * cols));
      same(await down(got), wantG, 'gatherRows 1100 rows of 257');
    });
    test('softmaxCrossEntropy and backward over 600 rows of 65, with ignored rows', async () => {
      const rng = new Rng(8200);
      const rows = 600, cols = 65, ignoreIndex = -100;
      const targets = Int32Array.from({ length: rows }, (_, r) => (r % 7 === 3 ? ignoreIndex : rng.int(cols)));
      const [x, xv] = await logitRows(rng, rows, cols);
      const probs = filled(rows * cols, NaN), loss = filled(rows, NaN);
      be.softmaxCrossEntropy(rows, cols, x, targets, ignoreIndex, probs, loss);
      const wantP: number[] = [], wantL: number[] = [];
      for (let r = 0; r < rows; r++) {
        const ref = softmaxRef(xv.subarray(r * cols, (r + 1) * cols));
        wantP.push(...ref.p);
        wantL.push(targets[r] === ignoreIndex ? 0 : -ref.logp[targets[r]]);
      }
      check(await down(probs), wantP, 'softmaxCrossEntropy 600x65 probs');
      check(await down(loss), wantL, 'softmaxCrossEntropy 600x65 loss');
      const [rg, rgv] = await randStore(rng, rows);
      const [dl, dlv] = await randStore(rng, rows * cols);
      be.softmaxCrossEntropyBackward(rows, cols, probs, targets, ignoreIndex, rg, dl);
      const pv = await down(probs);
      const want = Float64Array.from(dlv);
      for (let r = 0; r < rows; r++) {
        if (targets[r] === ignoreIndex) continue;
        for (let c = 0; c < cols; c++) want[r * cols + c] += rgv[r] * (pv[r * cols + c] - (c === targets[r] ? 1 : 0));
      }
      check(await down(dl), want, 'softmaxCrossEntropyBackward 600x65');
    });
    test('adamUpdate over 20001 parameters (Adam and AdamW, two steps)', async () => {
      const rng = new Rng(8300);
      const n = 20001, lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
      for (const [weightDecay, decoupled] of [[0, false], [0.05, true]] as const) {
        const [p] = await randStore(rng, n);
        const m = be.alloc(n, dtype), v = be.alloc(n, dtype);
        for (let step = 1; step <= 2; step++) {
          const [g, gv] = await randStore(rng, n);
          const pv = await down(p), mv = await down(m), vv = await down(v);
          be.adamUpdate(n, p, g, m, v, lr, beta1, beta2, eps, weightDecay, decoupled, step);
          const bc1 = 1 - beta1 ** step, bc2 = 1 - beta2 ** step;
          const wp = new Float64Array(n), wm = new Float64Array(n), wv = new Float64Array(n);
          for (let i = 0; i < n; i++) {
            let pi = pv[i], gi = gv[i];
            if (decoupled) pi *= 1 - lr * weightDecay;
            else gi += weightDecay * pi;
            wm[i] = beta1 * mv[i] + (1 - beta1) * gi;
            wv[i] = beta2 * vv[i] + (1 - beta2) * gi * gi;
            wp[i] = pi - (lr / bc1) * wm[i] / (Math.sqrt(wv[i]) / Math.sqrt(bc2) + eps);
          }
          const what = `adam n=${n} wd=${weightDecay} step ${step}`;
          check(await down(p), wp, `${what} p`);
          check(await down(m), wm, `${what} m`);
          const vNow = await down(v);
          for (let i = 0; i < n; i++) {
            if (!(Math.abs(vNow[i] - wv[i]) <= tol * Math.abs(wv[i]) + 1e-300)) assert.fail(`${label}: ${what} v[${i}] = ${vNow[i]}, expected ${wv[i]}`);
          }
        }
      }
    });

    // ---- recurrent cells ------------------------------------------------------------------------------
    /**
     * Shared layout for one step: B rows, offsets into bigger workspaces, and y/dy with a row stride
     * larger than H. Rows 1 and 2 are inactive at t = 1 when masking (lengths [3, 1, 0, 2]).
     */
    const B = 4, H = 3, T_STEP = 1;
    const LENGTHS = Int32Array.from([3, 1, 0, 2]);
    const isOff = (s: CellStep, b: number): boolean => s.lengths !== null && s.t >= s.lengths[b];
    const stepCases: { name: string; step: CellStep; yMode: 'strided' | 'null' }[] = [
      { name: 'no mask, strided y', step: { B, H, t: T_STEP, lengths: null }, yMode: 'strided' },
      { name: 'lengths mask, strided y', step: { B, H, t: T_STEP, lengths: LENGTHS }, yMode: 'strided' },
      { name: 'lengths mask, no y', step: { B, H, t: T_STEP, lengths: LENGTHS }, yMode: 'null' },
      { name: 'lengths but all active', step: { B, H, t: 0, lengths: Int32Array.from([1, 1, 2, 5]) }, yMode: 'strided' },
    ];
    const Y_OFF = 2, Y_STRIDE = H + 3;
    /** A y (or dy) workspace: SENTINEL everywhere, or random values in the H-wide row windows. */
    const yWorkspace = (rng: Rng | null): Storage => {
      const v = new Float64Array(Y_OFF + B * Y_STRIDE + 2).fill(SENTINEL);
      if (rng) for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) v[Y_OFF + b * Y_STRIDE + j] = rng.uniform(-1, 1);
      return up(v);
    };
    const yAt = (v: ArrayLike<number>, b: number, j: number): number => v[Y_OFF + b * Y_STRIDE + j];
    async function checkY(y: Storage, want: (b: number, j: number) => number, what: string): Promise<void> {
      const v = await down(y);
      const got: number[] = [], exp: number[] = [];
      for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) {
        got.push(yAt(v, b, j));
        exp.push(want(b, j));
      }
      check(got, exp, what);
      for (let p = 0; p < v.length; p++) {
        const rel = p - Y_OFF;
        const inside = rel >= 0 && rel < B * Y_STRIDE && rel % Y_STRIDE < H;
        if (!inside && v[p] !== SENTINEL) assert.fail(`${label}: ${what}: y[${p}] between rows changed to ${v[p]}`);
      }
    }
    /** Storage of `pad + n + 2` random values; returns [storage, values, offset]. */
    const block = async (rng: Rng, n: number, pad: number, lo = -1, hi = 1): Promise<[Storage, Float64Array, number]> => {
      const [s, v] = await randStore(rng, pad + n + 2, lo, hi);
      return [s, v, pad];
    };

    // RNN --------------------------------------------------------------------------------------------
    for (const act of ACTS) {
      for (const sc of stepCases) {
        test(`rnnCellForward/Backward ${act}: ${sc.name}`, async () => {
          const rng = new Rng(9000 + ACTS.indexOf(act) * 10 + stepCases.indexOf(sc));
          const s = sc.step;
          const n = B * H;
          const [pre, prev, gOff] = await block(rng, n, 3, -2, 2);
          const [hPrev, hPrevV, hPrevOff] = await block(rng, n, 2);
          const h = filled(n + 5, NaN), hOff = 1;
          const y = sc.yMode === 'strided' ? yWorkspace(null) : null;
          be.rnnCellForward(s, act, pre, gOff, hPrev, hPrevOff, h, hOff, y, Y_OFF, Y_STRIDE);
          const f = (x: number): number => (act === 'tanh' ? Math.tanh(x) : Math.max(0, x));
          const hWant = (b: number, j: number): number => (isOff(s, b) ? hPrevV[hPrevOff + b * H + j] : f(prev[gOff + b * H + j]));
          check(await down(h, hOff, n), Array.from({ length: n }, (_, k) => hWant(Math.floor(k / H), k % H)), `rnn h`);
          if (y) await checkY(y, (b, j) => (isOff(s, b) ? 0 : hWant(b, j)), 'rnn y');
          // backward
          const hv = await down(h);
          const [dh, dhV, dhOff] = await block(rng, n, 4);
          const dy = sc.yMode === 'strided' ? yWorkspace(rng) : null;
          const dyV = dy ? await down(dy) : null;
          const dpre = filled(n + 6, NaN), dpreOff = 5;
          const [dhPrev, dhPrevV, dhPrevOff] = await block(rng, n, 1);
          be.rnnCellBackward(s, act, h, hOff, dh, dhOff, dy, Y_OFF, Y_STRIDE, dpre, dpreOff, dhPrev, dhPrevOff);
          const wantPre: number[] = [], wantPrev: number[] = [];
          for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) {
            const k = b * H + j;
            const dhk = dhV[dhOff + k];
            if (isOff(s, b)) {
              wantPre.push(0);
              wantPrev.push(dhPrevV[dhPrevOff + k] + dhk);
            } else {
              const g = dhk + (dyV ? yAt(dyV, b, j) : 0);
              const hk = hv[hOff + k];
              wantPre.push(act === 'tanh' ? g * (1 - hk * hk) : hk > 0 ? g : 0);
              wantPrev.push(dhPrevV[dhPrevOff + k]);
            }
          }
          check(await down(dpre, dpreOff, n), wantPre, 'rnn dpre');
          check(await down(dhPrev, dhPrevOff, n), wantPrev, 'rnn dhPrev');
          if (dtype === 'float64') {
            await cellFiniteDifferences('rnn', rng, s, act, sc.yMode === 'strided');
          }
        });
      }
    }

    // LSTM -------------------------------------------------------------------------------------------
    for (const sc of stepCases) {
      test(`lstmCellForward/Backward: ${sc.name}`, async () => {
        const rng = new Rng(9100 + stepCases.indexOf(sc));
        const s = sc.step;
        const n = B * H, G = 4 * H;
        const [gates, pre, gOff] = await block(rng, B * G, 3, -2, 2);
        const [hPrev, hPrevV, hPrevOff] = await block(rng, n, 2);
        const [cPrev, cPrevV, cPrevOff] = await block(rng, n, 4, -2, 2);
        const c = filled(n + 3, NaN), cOff = 2;
        const h = filled(n + 3, NaN), hOff = 1;
        const y = sc.yMode === 'strided' ? yWorkspace(null) : null;
        be.lstmCellForward(s, gates, gOff, hPrev, hPrevOff, cPrev, cPrevOff, c, cOff, h, hOff, y, Y_OFF, Y_STRIDE);
        const act = await down(gates);
        const wantC: number[] = [], wantH: number[] = [];
        const gotGates: number[] = [], wantGates: number[] = [];
        for (let b = 0; b < B; b++) {
          const g0 = gOff + b * G;
          for (let j = 0; j < H; j++) {
            const k = b * H + j;
            const i = sigm(pre[g0 + j]), fg = sigm(pre[g0 + H + j]), gg = Math.tanh(pre[g0 + 2 * H + j]), o = sigm(pre[g0 + 3 * H + j]);
            if (isOff(s, b)) {
              wantC.push(cPrevV[cPrevOff + k]);
              wantH.push(hPrevV[hPrevOff + k]);
              continue;
            }
            wantGates.push(i, fg, gg, o);
            gotGates.push(act[g0 + j], act[g0 + H + j], act[g0 + 2 * H + j], act[g0 + 3 * H + j]);
            const cv = fg * cPrevV[cPrevOff + k] + i * gg;
            wantC.push(cv);
            wantH.push(o * Math.tanh(cv));
          }
        }
        check(gotGates, wantGates, 'lstm activated gates (active rows)');
        check(await down(c, cOff, n), wantC, 'lstm c');
        check(await down(h, hOff, n), wantH, 'lstm h');
        if (y) await checkY(y, (b, j) => (isOff(s, b) ? 0 : wantH[b * H + j]), 'lstm y');
        // backward from the kernel's own saved state
        const cv = await down(c);
        const [dh, dhV, dhOff] = await block(rng, n, 3);
        const [dc, dcV, dcOff] = await block(rng, n, 1);
        const dy = sc.yMode === 'strided' ? yWorkspace(rng) : null;
        const dyV = dy ? await down(dy) : null;
        const dg = filled(B * G + 4, NaN), dgOff = 3;
        const dcPrev = filled(n + 2, NaN), dcPrevOff = 2;
        const [dhPrev, dhPrevV, dhPrevOff] = await block(rng, n, 5);
        be.lstmCellBackward(s, gates, gOff, cPrev, cPrevOff, c, cOff, dh, dhOff, dy, Y_OFF, Y_STRIDE, dc, dcOff, dg, dgOff, dcPrev, dcPrevOff, dhPrev, dhPrevOff);
        const wantDg = new Array<number>(B * G).fill(0);
        const wantDcPrev: number[] = [], wantDhPrev: number[] = [];
        for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) {
          const k = b * H + j;
          if (isOff(s, b)) {
            wantDcPrev.push(dcV[dcOff + k]);
            wantDhPrev.push(dhPrevV[dhPrevOff + k] + dhV[dhOff + k]);
            continue;
          }
          const g0 = gOff + b * G;
          const i = act[g0 + j], fg = act[g0 + H + j], gg = act[g0 + 2 * H + j], o = act[g0 + 3 * H + j];
          const tc = Math.tanh(cv[cOff + k]);
          const dhv = dhV[dhOff + k] + (dyV ? yAt(dyV, b, j) : 0);
          const dct = dcV[dcOff + k] + dhv * o * (1 - tc * tc);
          wantDg[b * G + j] = dct * gg * i * (1 - i);
          wantDg[b * G + H + j] = dct * cPrevV[cPrevOff + k] * fg * (1 - fg);
          wantDg[b * G + 2 * H + j] = dct * i * (1 - gg * gg);
          wantDg[b * G + 3 * H + j] = dhv * tc * o * (1 - o);
          wantDcPrev.push(dct * fg);
          wantDhPrev.push(dhPrevV[dhPrevOff + k]);
        }
        check(await down(dg, dgOff, B * G), wantDg, 'lstm dgates');
        check(await down(dcPrev, dcPrevOff, n), wantDcPrev, 'lstm dcPrev');
        check(await down(dhPrev, dhPrevOff, n), wantDhPrev, 'lstm dhPrev');
        if (dtype === 'float64') await cellFiniteDifferences('lstm', rng, s, 'tanh', sc.yMode === 'strided');
      });
    }

    // GRU --------------------------------------------------------------------------------------------
    for (const sc of stepCases) {
      test(`gruCellForward/Backward: ${sc.name}`, async () => {
        const rng = new Rng(9200 + stepCases.indexOf(sc));
        const s = sc.step;
        const n = B * H, G = 3 * H;
        const [gx, gxPre, gxOff] = await block(rng, B * G, 2, -2, 2);
        const [gh, ghPre, ghOff] = await block(rng, B * G, 5, -2, 2);
        const [hPrev, hPrevV, hPrevOff] = await block(rng, n, 1);
        const h = filled(n + 4, NaN), hOff = 3;
        const y = sc.yMode === 'strided' ? yWorkspace(null) : null;
        be.gruCellForward(s, gx, gxOff, gh, ghOff, hPrev, hPrevOff, h, hOff, y, Y_OFF, Y_STRIDE);
        const gxAct = await down(gx), ghAfter = await down(gh);
        const wantH: number[] = [];
        const gotG: number[] = [], wantG: number[] = [];
        for (let b = 0; b < B; b++) {
          const x0 = gxOff + b * G, h0 = ghOff + b * G;
          for (let j = 0; j < H; j++) {
            const k = b * H + j;
            const r = sigm(gxPre[x0 + j] + ghPre[h0 + j]);
            const z = sigm(gxPre[x0 + H + j] + ghPre[h0 + H + j]);
            const nn = Math.tanh(gxPre[x0 + 2 * H + j] + r * ghPre[h0 + 2 * H + j]);
            gotG.push(ghAfter[h0 + 2 * H + j]);
            wantG.push(ghPre[h0 + 2 * H + j]);
            if (isOff(s, b)) {
              wantH.push(hPrevV[hPrevOff + k]);
              continue;
            }
            gotG.push(gxAct[x0 + j], gxAct[x0 + H + j], gxAct[x0 + 2 * H + j]);
            wantG.push(r, z, nn);
            wantH.push((1 - z) * nn + z * hPrevV[hPrevOff + k]);
          }
        }
        check(gotG, wantG, 'gru saved state (activated r, z, n of active rows; gh_n kept)');
        check(await down(h, hOff, n), wantH, 'gru h');
        if (y) await checkY(y, (b, j) => (isOff(s, b) ? 0 : wantH[b * H + j]), 'gru y');
        // backward
        const [dh, dhV, dhOff] = await block(rng, n, 2);
        const dy = sc.yMode === 'strided' ? yWorkspace(rng) : null;
        const dyV = dy ? await down(dy) : null;
        const dgx = filled(B * G + 3, NaN), dgxOff = 1;
        const dgh = filled(B * G + 5, NaN), dghOff = 4;
        const [dhPrev, dhPrevV, dhPrevOff] = await block(rng, n, 3);
        be.gruCellBackward(s, gx, gxOff, gh, ghOff, hPrev, hPrevOff, dh, dhOff, dy, Y_OFF, Y_STRIDE, dgx, dgxOff, dgh, dghOff, dhPrev, dhPrevOff);
        const wDgx = new Array<number>(B * G).fill(0), wDgh = new Array<number>(B * G).fill(0), wPrev: number[] = [];
        for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) {
          const k = b * H + j;
          if (isOff(s, b)) {
            wPrev.push(dhPrevV[dhPrevOff + k] + dhV[dhOff + k]);
            continue;
          }
          const x0 = gxOff + b * G, h0 = ghOff + b * G;
          const r = gxAct[x0 + j], z = gxAct[x0 + H + j], nn = gxAct[x0 + 2 * H + j];
          const ghn = ghAfter[h0 + 2 * H + j];
          const g = dhV[dhOff + k] + (dyV ? yAt(dyV, b, j) : 0);
          const dan = g * (1 - z) * (1 - nn * nn);
          const daz = g * (hPrevV[hPrevOff + k] - nn) * z * (1 - z);
          const dar = dan * ghn * r * (1 - r);
          wDgx[b * G + j] = dar; wDgx[b * G + H + j] = daz; wDgx[b * G + 2 * H + j] = dan;
          wDgh[b * G + j] = dar; wDgh[b * G + H + j] = daz; wDgh[b * G + 2 * H + j] = dan * r;
          wPrev.push(dhPrevV[dhPrevOff + k] + g * z);
        }
        check(await down(dgx, dgxOff, B * G), wDgx, 'gru dgx');
        check(await down(dgh, dghOff, B * G), wDgh, 'gru dgh');
        check(await down(dhPrev, dhPrevOff, n), wPrev, 'gru dhPrev');
        if (dtype === 'float64') await cellFiniteDifferences('gru', rng, s, 'tanh', sc.yMode === 'strided');
      });
    }

    /**
     * Independent of the hand-written references above: central differences of the forward kernel
     * itself. With L = Σ Rh·h + Σ Rc·c + Σ Ry·y, running the backward kernel with dh = Rh, dc = Rc,
     * dy = Ry must give ∂L/∂(pre-activations) and the direct ∂L/∂hPrev (and ∂L/∂cPrev).
     */
    async function cellFiniteDifferences(kind: 'rnn' | 'lstm' | 'gru', rng: Rng, s: CellStep, act: Activation, withY: boolean): Promise<void> {
      const n = B * H;
      const G = kind === 'lstm' ? 4 * H : kind === 'gru' ? 3 * H : H;
      const Rh = randArr(rng, n), Rc = randArr(rng, n);
      const yRng = new Rng(77);
      const Ry = withY ? await down(yWorkspace(yRng)) : null;
      // the variables: pre (or gx), gh (gru), hPrev, cPrev (lstm)
      const vars: Record<string, Float64Array> = {
        pre: randArr(rng, B * G, -1.5, 1.5),
        gh: randArr(rng, B * G, -1.5, 1.5),
        hPrev: randArr(rng, n),
        cPrev: randArr(rng, n, -1.5, 1.5),
      };
      if (kind === 'rnn' && act === 'relu') {
        // keep pre-activations away from the kink
        vars.pre = vars.pre.map((v) => (Math.abs(v) < 0.05 ? v + 0.2 : v));
      }
      const L = async (): Promise<number> => {
        const pre = up(vars.pre), gh = up(vars.gh), hPrev = up(vars.hPrev), cPrev = up(vars.cPrev);
        const h = be.alloc(n, dtype), c = be.alloc(n, dtype);
        const y = withY ? yWorkspace(null) : null;
        if (kind === 'rnn') be.rnnCellForward(s, act, pre, 0, hPrev, 0, h, 0, y, Y_OFF, Y_STRIDE);
        else if (kind === 'lstm') be.lstmCellForward(s, pre, 0, hPrev, 0, cPrev, 0, c, 0, h, 0, y, Y_OFF, Y_STRIDE);
        else be.gruCellForward(s, pre, 0, gh, 0, hPrev, 0, h, 0, y, Y_OFF, Y_STRIDE);
        const hv = await down(h), cv = await down(c);
        let sum = 0;
        for (let k = 0; k < n; k++) sum += Rh[k] * hv[k] + (kind === 'lstm' ? Rc[k] * cv[k] : 0);
        if (y && Ry) {
          const yv = await down(y);
          for (let b = 0; b < B; b++) for (let j = 0; j < H; j++) sum += yAt(Ry, b, j) * yAt(yv, b, j);
        }
        return sum;
      };
      // analytic via the backward kernels
      const pre = up(vars.pre), gh = up(vars.gh), hPrev = up(vars.hPrev), cPrev = up(vars.cPrev);
      const h = be.alloc(n, dtype), c = be.alloc(n, dtype);
      const y = withY ? yWorkspace(null) : null;
      const dy = Ry ? up(Ry) : null;
      const dhPrev = be.alloc(n, dtype);
      const grads: Record<string, Float64Array> = {};
      if (kind === 'rnn') {
        be.rnnCellForward(s, act, pre, 0, hPrev, 0, h, 0, y, Y_OFF, Y_STRIDE);
        const dpre = be.alloc(n, dtype);
        be.rnnCellBackward(s, act, h, 0, up(Rh), 0, dy, Y_OFF, Y_STRIDE, dpre, 0, dhPrev, 0);
        grads.pre = await down(dpre);
      } else if (kind === 'lstm') {
        be.lstmCellForward(s, pre, 0, hPrev, 0, cPrev, 0, c, 0, h, 0, y, Y_OFF, Y_STRIDE);
        const dg = be.alloc(B * G, dtype), dcPrev = be.alloc(n, dtype);
        be.lstmCellBackward(s, pre, 0, cPrev, 0, c, 0, up(Rh), 0, dy, Y_OFF, Y_STRIDE, up(Rc), 0, dg, 0, dcPrev, 0, dhPrev, 0);
        grads.pre = await down(dg);
        grads.cPrev = await down(dcPrev);
      } else {
        be.gruCellForward(s, pre, 0, gh, 0, hPrev, 0, h, 0, y, Y_OFF, Y_STRIDE);
        const dgx = be.alloc(B * G, dtype), dgh = be.alloc(B * G, dtype);
        be.gruCellBackward(s, pre, 0, gh, 0, hPrev, 0, up(Rh), 0, dy, Y_OFF, Y_STRIDE, dgx, 0, dgh, 0, dhPrev, 0);
        grads.pre = await down(dgx);
        grads.gh = await down(dgh);
      }
      grads.hPrev = await down(dhPrev);
      const eps = 1e-6;
      for (const [name, an] of Object.entries(grads)) {
        const v = vars[name];
        const num = new Float64Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const x0 = v[i];
          v[i] = x0 + eps;
          const lp = await L();
          v[i] = x0 - eps;
          const lm = await L();
          v[i] = x0;
          num[i] = (lp - lm) / (2 * eps);
        }
        check(an, num, `${kind} finite differences d/d${name}`, undefined, 1e-7);
      }
    }
  });
}
