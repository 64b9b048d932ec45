/**
 * The wasm backend's kernels: the shared kernel suite in float32 and float64 (plain SIMD build,
 * one thread), the suite again on the relaxed-SIMD build and on two threads, and what is specific
 * to wasm — the SIMD paths the suite's small shapes do not reach (cells with H ≥ 4, large GEMMs),
 * the packed-weight cache, thread-count invariance, the allocator (reuse, growth, release on GC),
 * bounds checks, and the vector math approximations.
 *
 * The kernel module is built by `npm run build:wasm` (run by `npm install`); if the sources changed
 * since, it is rebuilt here first.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { BackendError, type Backend, type CellStep, type DType, type Storage } from '../src/backend/interface.ts';
import { JsBackend } from '../src/backend/js.ts';
import { Rng } from '../src/tensor/rng.ts';
import { runKernelSuite } from './helpers/kernel-suite.ts';

execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url)), '--if-stale'], { stdio: 'pipe' });
const { createWasmBackend, loadWasmBackend, wasmSupport, WasmBackend } = await import('../src/backend/wasm/index.ts');
const { readVariant, withSharedMemory } = await import('../src/backend/wasm/loader.ts');
const { sizeClass } = await import('../src/backend/wasm/memory.ts');

const single = await createWasmBackend({ threads: 1 });
const threaded = await createWasmBackend({ threads: 2 });
const relaxed = await createWasmBackend({ threads: 1, relaxedSimd: true });
const relaxed2 = await createWasmBackend({ threads: 2, relaxedSimd: true });
// every GEMM split, however small: the edge cases of the row and panel splits
const eager = await createWasmBackend({ threads: 3, threadMinWork: 0 });
const js = new JsBackend();
after(() => {
  for (const b of [single, threaded, relaxed, relaxed2, eager]) b.dispose();
});

runKernelSuite(single, 'float32');
runKernelSuite(single, 'float64');
runKernelSuite(threaded, 'float32', { label: 'wasm 2 threads float32' });
runKernelSuite(relaxed, 'float32', { label: `wasm ${relaxed.variant} float32` });
runKernelSuite(eager, 'float32', { label: 'wasm 3 threads, every GEMM split, float32' });

function rand(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.uniform(lo, hi);
  return v;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i], a = actual[i];
    if (!(Math.abs(a - e) <= tol * (1 + Math.abs(e)))) assert.fail(`${what}[${i}]: got ${a}, expected ${e} (tol ${tol})`);
  }
}

function identical(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}[${i}]: ${actual[i]} !== ${expected[i]}`);
  }
}

/** Run the same GEMM on several backends from the same inputs; returns each C. */
function gemmOn(bes: Backend[], rng: Rng, ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, beta: number): Float64Array[] {
  const A = rand(rng, M * K), B = rand(rng, K * N), C = rand(rng, M * N);
  const lda = ta ? M : K, ldb = tb ? K : N;
  return bes.map((be) => {
    const a = be.fromArray(A, 'float32'), b = be.fromArray(B, 'float32'), c = be.fromArray(C, 'float32');
    be.gemm(ta, tb, M, N, K, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, N);
    return Float64Array.from(be.read(c));
  });
}

describe('wasm backend: loading', () => {
  test('reports what it runs on, and registers as "wasm"', async () => {
    assert.equal(single.name, 'wasm');
    assert.equal(single.threads, 1);
    assert.equal(threaded.threads, 2);
    assert.equal(single.variant, 'simd');
    const s = await wasmSupport();
    assert.equal(s.simd, true);
    assert.equal(s.threads, true);
    assert.equal(relaxed.variant, s.relaxedSimd ? 'relaxed' : 'simd');
    const { getBackend } = await import('../src/backend/registry.ts');
    const be = await loadWasmBackend({ threads: 1 });
    assert.equal(getBackend('wasm'), be);
    assert.ok(be instanceof WasmBackend);
  });
  test('rejects bad options by name', async () => {
    await assert.rejects(createWasmBackend({ threads: 0 }), /'threads' must be an integer in \[1, 64\]/);
    await assert.rejects(createWasmBackend({ thread: 2 } as never), /unknown option 'thread'/);
    await assert.rejects(createWasmBackend({ relaxedSimd: 'yes' } as never), /'relaxedSimd' must be a boolean/);
    await assert.rejects(createWasmBackend({ threadMinWork: -1 }), /'threadMinWork' must be a non-negative number/);
  });
  test('the module also runs on unshared memory (browser pages without cross-origin isolation)', async () => {
    const { nodePlatform } = await import('../src/backend/wasm/platform-node.ts');
    const bytes = await readVariant(nodePlatform(), 'simd');
    const plain = withSharedMemory(bytes, false);
    assert.equal(plain.length, bytes.length);
    assert.ok(WebAssembly.validate(plain));
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 100 });
    const inst = await WebAssembly.instantiate(await WebAssembly.compile(plain), { env: { memory } });
    const ex = inst.exports as { axpy_f32(n: number, a: number, x: number, y: number): void };
    const f = new Float32Array(memory.buffer);
    f.set([1, 2, 3, 4, 5], 16384);
    f.set([10, 20, 30, 40, 50], 16400);
    ex.axpy_f32(5, 2, 16384 * 4, 16400 * 4);
    identical(new Float32Array(memory.buffer).slice(16400, 16405), [12, 24, 36, 48, 60], 'axpy on unshared memory');
    // and the shared import refuses an unshared memory, as it should
    await assert.rejects(WebAssembly.instantiate(await WebAssembly.compile(bytes), { env: { memory } }));
  });
});

describe('wasm backend: GEMM beyond the suite', () => {
  const shapes: [number, number, number][] = [[1, 1024, 256], [1, 37, 300], [32, 1024, 256], [33, 65, 257], [130, 70, 600], [300, 9, 40], [4, 8, 1], [2, 3, 1000]];
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    test(`op(A)=${ta ? 'T' : 'N'} op(B)=${tb ? 'T' : 'N'}: matches the reference on large and ragged shapes`, () => {
      const rng = new Rng(17);
      for (const [M, N, K] of shapes) {
        const [w, r] = gemmOn([single, js], rng, ta, tb, M, N, K, 0.75, 0.5);
        close(w, r, 2e-5 * Math.sqrt(K), `gemm ${M}x${N}x${K}`);
      }
    });
  }
  test('threaded and single-threaded results are bit-identical (row split, panel split, mat-vec)', () => {
    const rng = new Rng(18);
    const cases: [number, number, number][] = [[1, 4096, 1024], [32, 1024, 256], [512, 256, 300], [2048, 65, 256], [200, 257, 513], [129, 2000, 33]];
    const small: [number, number, number][] = [[1, 9, 5], [3, 30, 7], [17, 8, 300], [70, 3, 9], [5, 17, 1]];
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      for (const [M, N, K] of cases) {
        const [a, b] = gemmOn([single, threaded], rng, ta, tb, M, N, K, 1, 1);
        identical(b, a, `gemm ${ta}/${tb} ${M}x${N}x${K}, 2 threads vs 1`);
        const [c, d] = gemmOn([relaxed, relaxed2], rng, ta, tb, M, N, K, -0.5, 0);
        identical(d, c, `relaxed gemm ${ta}/${tb} ${M}x${N}x${K}, 2 threads vs 1`);
      }
      for (const [M, N, K] of [...cases, ...small]) {
        const [a, b] = gemmOn([single, eager], rng, ta, tb, M, N, K, 0.5, 2);
        identical(b, a, `gemm ${ta}/${tb} ${M}x${N}x${K}, 3 threads at any size vs 1`);
      }
    }
  });
  test('a packed operand is reused while unchanged and repacked after any write to it', () => {
    const be = single;
    const rng = new Rng(19);
    const M = 8, N = 40, K = 24;
    const W = be.fromArray(rand(rng, N * K), 'float32'); // used as op(B) = Wᵀ, like W_hh
    const x = be.fromArray(rand(rng, M * K), 'float32');
    const out = be.alloc(M * N, 'float32');
    const ref = (): Float64Array => {
      const Wj = js.fromArray(be.read(W), 'float32'), xj = js.fromArray(be.read(x), 'float32'), o = js.alloc(M * N, 'float32');
      js.gemm(false, true, M, N, K, 1, xj, 0, K, Wj, 0, K, 0, o, 0, N);
      return Float64Array.from(js.read(o));
    };
    const before = be.stats().packedOperands;
    for (let step = 0; step < 3; step++) {
      be.gemm(false, true, M, N, K, 1, x, 0, K, W, 0, K, 0, out, 0, N);
      close(be.read(out), ref(), 1e-5, `step ${step}`);
    }
    assert.equal(be.stats().packedOperands, before + 1, 'W is kept packed from its second use on');
    // every kind of write must invalidate the packed copy
    const writes: [string, () => void][] = [
      ['write', () => be.write(W, [5, -3], 7)],
      ['fill', () => be.fill(W, 0.25, 100, 50)],
      ['axpy', () => be.axpy(N * K, -0.5, be.fromArray(rand(rng, N * K), 'float32'), 0, W, 0)],
      ['scale', () => be.scale(10, 3, W, 0)],
      ['copy', () => be.copy(x, 0, W, 33, 20)],
      ['adamUpdate', () => be.adamUpdate(N * K, W, be.fromArray(rand(rng, N * K), 'float32'), be.alloc(N * K, 'float32'), be.alloc(N * K, 'float32'), 0.1, 0.9, 0.999, 1e-8, 0, false, 1)],
      ['gemm into it', () => be.gemm(false, false, 2, K, 3, 1, x, 0, 3, x, 0, K, 1, W, 0, K)],
    ];
    for (const [what, fn] of writes) {
      fn();
      be.gemm(false, true, M, N, K, 1, x, 0, K, W, 0, K, 0, out, 0, N);
      close(be.read(out), ref(), 1e-5, `after ${what}`);
      be.gemm(false, true, M, N, K, 1, x, 0, K, W, 0, K, 0, out, 0, N);
      close(be.read(out), ref(), 1e-5, `after ${what}, cached`);
    }
  });
  test('beta = 0 ignores NaN in C on every path (mat-vec, full tiles, edge tiles)', () => {
    for (const be of [single, threaded]) {
      for (const [M, N, K] of [[1, 16, 8], [8, 16, 8], [5, 11, 7], [64, 1024, 256]]) {
        const a = be.fromArray(new Array(M * K).fill(1), 'float32');
        const b = be.fromArray(new Array(K * N).fill(1), 'float32');
        const c = be.fromArray(new Array(M * N).fill(NaN), 'float32');
        be.gemm(false, false, M, N, K, 2, a, 0, K, b, 0, N, 0, c, 0, N);
        identical(be.read(c), new Array(M * N).fill(2 * K), `beta 0 ${M}x${N}x${K}`);
      }
    }
  });
});

describe('wasm backend: fused cells on the SIMD path (H ≥ 4) against the reference', () => {
  const Hs = [4, 8, 9, 13];
  const B = 5;
  const lengths = Int32Array.from([3, 1, 2, 0, 3]);
  type Run = (be: Backend, up: (v: ArrayLike<number>) => Storage, s: CellStep, yS: Storage | null, dyS: Storage | null) => Storage[];
  const cells: [string, number, Run][] = [
    ['rnn tanh', 1, (be, up, s, y, dy) => {
      const n = s.B * s.H;
      const pre = up(rng0(n * 1, 2)), hPrev = up(rng0(n, 3)), h = be.alloc(n, 'float32');
      be.rnnCellForward(s, 'tanh', pre, 0, hPrev, 0, h, 0, y, 1, s.H + 2);
      const dpre = be.alloc(n, 'float32'), dhPrev = up(rng0(n, 4));
      be.rnnCellBackward(s, 'tanh', h, 0, up(rng0(n, 5)), 0, dy, 1, s.H + 2, dpre, 0, dhPrev, 0);
      return [h, dpre, dhPrev];
    }],
    ['rnn relu', 1, (be, up, s, y, dy) => {
      const n = s.B * s.H;
      const pre = up(rng0(n, 6)), hPrev = up(rng0(n, 7)), h = be.alloc(n, 'float32');
      be.rnnCellForward(s, 'relu', pre, 0, hPrev, 0, h, 0, y, 1, s.H + 2);
      const dpre = be.alloc(n, 'float32'), dhPrev = up(rng0(n, 8));
      be.rnnCellBackward(s, 'relu', h, 0, up(rng0(n, 9)), 0, dy, 1, s.H + 2, dpre, 0, dhPrev, 0);
      return [h, dpre, dhPrev];
    }],
    ['lstm', 4, (be, up, s, y, dy) => {
      const n = s.B * s.H;
      const g = up(rng0(4 * n, 10, -3, 3)), hPrev = up(rng0(n, 11)), cPrev = up(rng0(n, 12, -2, 2));
      const c = be.alloc(n, 'float32'), h = be.alloc(n, 'float32');
      be.lstmCellForward(s, g, 0, hPrev, 0, cPrev, 0, c, 0, h, 0, y, 1, s.H + 2);
      const dg = be.alloc(4 * n, 'float32'), dcPrev = be.alloc(n, 'float32'), dhPrev = up(rng0(n, 13));
      be.lstmCellBackward(s, g, 0, cPrev, 0, c, 0, up(rng0(n, 14)), 0, dy, 1, s.H + 2, up(rng0(n, 15)), 0, dg, 0, dcPrev, 0, dhPrev, 0);
      return [g, c, h, dg, dcPrev, dhPrev];
    }],
    ['gru', 3, (be, up, s, y, dy) => {
      const n = s.B * s.H;
      const gx = up(rng0(3 * n, 16, -3, 3)), gh = up(rng0(3 * n, 17, -3, 3)), hPrev = up(rng0(n, 18));
      const h = be.alloc(n, 'float32');
      be.gruCellForward(s, gx, 0, gh, 0, hPrev, 0, h, 0, y, 1, s.H + 2);
      const dgx = be.alloc(3 * n, 'float32'), dgh = be.alloc(3 * n, 'float32'), dhPrev = up(rng0(n, 19));
      be.gruCellBackward(s, gx, 0, gh, 0, hPrev, 0, up(rng0(n, 20)), 0, dy, 1, s.H + 2, dgx, 0, dgh, 0, dhPrev, 0);
      return [gx, h, dgx, dgh, dhPrev];
    }],
  ];
  function rng0(n: number, seed: number, lo = -1, hi = 1): Float64Array {
    return rand(new Rng(seed), n, lo, hi);
  }
  for (const [name, , run] of cells) {
    test(`${name}: forward and backward, masked and unmasked, strided y`, () => {
      for (const H of Hs) {
        for (const [t, lens] of [[1, null], [1, lengths], [2, lengths]] as const) {
          const s: CellStep = { B, H, t, lengths: lens };
          const outs = [single, js].map((be) => {
            const up = (v: ArrayLike<number>): Storage => be.fromArray(v, 'float32');
            const yLen = 1 + B * (H + 2);
            const y = be.fromArray(new Array(yLen).fill(7), 'float32');
            const dy = up(rng0(yLen, 21));
            return [...run(be, up, s, y, dy), y].map((st) => Float64Array.from(be.read(st)));
          });
          outs[0].forEach((w, i) => close(w, outs[1][i], 2e-6, `${name} H=${H} t=${t} ${lens ? 'masked' : 'full'} output ${i}`));
        }
      }
    });
  }
});

describe('wasm backend: float32 kernels that round like the reference', () => {
  test('axpy, scale, Adam/AdamW, addRowVector, sumRowsBackward and binary are bit-identical to js', () => {
    const rng = new Rng(23);
    const n = 1001;
    const both = (f: (be: Backend, up: (v: ArrayLike<number>) => Storage) => Storage[]): void => {
      const outs = [single, js].map((be) => {
        const up = (v: ArrayLike<number>): Storage => be.fromArray(v, 'float32');
        return f(be, up).map((st) => Float64Array.from(be.read(st)));
      });
      outs[0].forEach((w, i) => identical(w, outs[1][i], `output ${i}`));
    };
    const X = rand(rng, n, -3, 3), Y = rand(rng, n, -3, 3), G = rand(rng, 7 * 13);
    both((be, up) => {
      const y = up(Y), y2 = up(Y), x = up(X);
      be.axpy(n - 3, 0.1, x, 3, y, 0);
      be.axpy(n - 5, 1, x, 0, y2, 5);
      be.scale(n, -1.7, x, 0);
      return [y, y2, x];
    });
    for (const [wd, decoupled] of [[0, false], [0.01, false], [0.01, true]] as const) {
      both((be, up) => {
        const p = up(X), m = be.alloc(n, 'float32'), v = be.alloc(n, 'float32');
        for (let step = 1; step <= 4; step++) be.adamUpdate(n, p, up(rand(new Rng(step), n)), m, v, 3e-3, 0.9, 0.999, 1e-8, wd, decoupled, step);
        return [p, m, v];
      });
    }
    both((be, up) => {
      const Xs = up(G), o = up(rand(new Rng(2), 13)), b = up(rand(new Rng(3), 13));
      be.addRowVector(7, 13, b, 0, Xs, 0);
      be.sumRowsBackward(7, 13, Xs, 0, o, 0);
      const out = be.alloc(7 * 13, 'float32');
      be.binary('div', Xs, [7, 13], b, [1, 13], out, [7, 13]);
      return [Xs, o, out];
    });
  });
});

describe('wasm backend: vector math', () => {
  /** The spacing of float32 values at |e| (normal range). */
  const ulp32 = (e: number): number => 2 ** (Math.floor(Math.log2(Math.abs(e))) - 23);
  test('exp, sigmoid and tanh approximations are within a few float32 ulp', () => {
    const be = single as unknown as { ctx: { kernels: { vmath_eval(fn: number, n: number, x: number, out: number): void } } };
    const n = 4096;
    const rng = new Rng(17);
    const xs: number[] = [];
    for (let i = 0; i < n; i++) xs.push(i < 2048 ? -20 + (40 * i) / 2048 : rng.uniform(-1, 1) * (i % 3 === 0 ? 0.3 : 90));
    const x = single.fromArray(xs, 'float32') as InstanceType<typeof import('../src/backend/wasm/backend.ts').WasmStorage>;
    const out = single.alloc(n, 'float32') as typeof x;
    const xv = single.read(x);
    // Bounds in ulp of the exact result. Over every float32 with 2⁻¹² ≤ |x| < 128 (exp: where it is
    // not clamped; all: where the result is ≥ 1e-37) the largest errors are 1.22 (exp), 2.48
    // (sigmoid) and 2.76 ulp (tanh, near |x| = 0.25); below 2⁻¹² (sampled) 0.50, 1.75 and 0.33.
    const refs: [string, (v: number) => number, number][] = [
      ['exp', Math.exp, 1.5],
      ['sigmoid', (v) => 1 / (1 + Math.exp(-v)), 3],
      ['tanh', Math.tanh, 3],
    ];
    refs.forEach(([name, f, maxUlp], fn) => {
      be.ctx.kernels.vmath_eval(fn, n, x.ptr, out.ptr);
      const got = single.read(out);
      for (let i = 0; i < n; i++) {
        const v = xv[i];
        if (name === 'exp' && (v < -87 || v > 88)) continue; // clamped by design
        const e = f(v);
        if (Math.abs(e) < 1e-37) continue;
        const ulps = Math.abs(got[i] - e) / ulp32(e);
        if (!(ulps <= maxUlp)) assert.fail(`${name}(${v}) = ${got[i]}, expected ${e} (${ulps.toFixed(2)} ulp > ${maxUlp})`);
      }
    });
  });
});

describe('wasm backend: memory', () => {
  test('size classes: 64-byte multiples, at most 25% (or 64 bytes) of slack', () => {
    for (const n of [1, 63, 64, 65, 200, 256, 257, 1000, 4097, 65536, 1e6 + 3, 3e8]) {
      const c = sizeClass(n);
      assert.ok(c >= n && c % 64 === 0, `class of ${n} is ${c}`);
      assert.ok(c - n <= Math.max(64, n / 4), `class of ${n} is ${c}`);
    }
  });
  test('grows on demand and keeps every storage and kernel valid across growth', async () => {
    const be = await createWasmBackend({ threads: 2, initialMemoryMiB: 1 });
    try {
      const first = be.fromArray([1, 2, 3], 'float32');
      const w = be.fromArray(rand(new Rng(3), 64 * 64), 'float32');
      const before = be.stats();
      const big: Storage[] = [];
      for (let i = 0; i < 6; i++) big.push(be.alloc(1 << 20, 'float32')); // 24 MiB
      assert.ok(be.stats().grows > before.grows, 'memory grew');
      assert.ok(be.stats().memoryBytes >= 24 * 2 ** 20);
      identical(be.read(first), [1, 2, 3], 'contents survive growth');
      be.fill(big[5], 2, 0, 1 << 20);
      assert.equal(be.sumSquares(1 << 20, big[5], 0), 4 * (1 << 20));
      const [a, b] = gemmOn([be, single], new Rng(4), false, true, 64, 64, 64, 1, 0);
      identical(a, b, 'gemm after growth');
      void w;
    } finally {
      be.dispose();
    }
  });
  test('alloc zero-fills recycled blocks; out-of-memory is a BackendError', async () => {
    const be = await createWasmBackend({ threads: 1, initialMemoryMiB: 1, maxMemoryMiB: 2 });
    const a = be.alloc(1000, 'float32');
    be.fill(a, 3, 0, 1000);
    assert.throws(() => be.alloc(1 << 20, 'float32'), (e: Error) => e instanceof BackendError && /out of memory/.test(e.message));
    const b = be.alloc(100, 'float64');
    identical(be.read(b), new Array(100).fill(0), 'fresh storage is zero');
    void a;
  });
  test('blocks of sizes no longer asked for are merged and reused: a loop of ever-changing sizes fits', async () => {
    // Each step allocates three blocks of a size class no step before it asked for (as
    // variable-length batches do) and frees them, while a small block allocated after them stays live
    // (so they never simply lower the top). Unmerged, the class lists would strand ~34 MiB.
    const be = await createWasmBackend({ threads: 1, initialMemoryMiB: 1, maxMemoryMiB: 16 });
    try {
      const keep = be.fromArray([7, 8, 9], 'float32');
      let pin = be.alloc(16, 'float32');
      for (let k = 14; k <= 20; k++) {
        for (let q = 0; q < 4; q++) {
          const floats = (2 ** k + q * 2 ** (k - 2)) / 4; // exactly a class size (memory.ts)
          const blocks = [0, 1, 2].map(() => be.alloc(floats, 'float32'));
          const nextPin = be.alloc(16, 'float32');
          be.fill(blocks[2], k, 0, floats);
          for (const b of blocks) be.release!(b);
          be.release!(pin);
          pin = nextPin;
        }
      }
      const s = be.stats();
      assert.ok(s.coalesces > 0, 'free blocks were merged');
      assert.ok(s.memoryBytes <= 16 * 2 ** 20, `memory stayed within the limit: ${s.memoryBytes} bytes`);
      identical(be.read(keep), [7, 8, 9], 'live storage is untouched');
      const z = be.alloc(70000, 'float32');
      identical(be.read(z), new Array(70000).fill(0), 'a block carved from a merged run is handed out zeroed');
    } finally {
      be.dispose();
    }
  });
  test('storage is released when garbage-collected and its block reused', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const be = await createWasmBackend({ threads: 1 });
    const n = 12345;
    let s: Storage | null = be.alloc(n, 'float32');
    const ptr = (s as unknown as { ptr: number }).ptr;
    be.fill(s, 9, 0, n);
    const live = be.stats().liveBlocks;
    s = null;
    for (let i = 0; i < 10 && be.stats().liveBlocks >= live; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(be.stats().liveBlocks, live - 1, 'the block went back to the allocator');
    const again = be.alloc(n, 'float32');
    assert.equal((again as unknown as { ptr: number }).ptr, ptr, 'the freed block is reused');
    identical(be.read(again), new Array(n).fill(0), 'and handed out zeroed');
  });
  test('a training-like loop that yields reaches a steady heap', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const be = await createWasmBackend({ threads: 1 });
    const step = (): void => {
      const tmp: Storage[] = [];
      for (const n of [1000, 5000, 70000, 1000, 123]) tmp.push(be.alloc(n, 'float32'));
      be.axpy(1000, 1, tmp[0], 0, tmp[3], 0);
    };
    const tops: number[] = [];
    for (let i = 0; i < 20; i++) {
      step();
      gc();
      await new Promise((r) => setTimeout(r, 1));
      tops.push(be.stats().top);
    }
    assert.equal(tops[19], tops[10], `heap top is steady: ${tops.join(', ')}`);
  });
  test('a loop that never yields reaches a steady heap too (synchronous reclamation on Node 20)', async (t) => {
    if (process.versions.v8.split('.')[0] !== '11') {
      t.skip('synchronous reclamation is used on V8 11 (Node 20) only');
      return;
    }
    const be = await createWasmBackend({ threads: 1, initialMemoryMiB: 1 });
    const garbage: unknown[] = [];
    const tops: number[] = [];
    for (let i = 0; i < 300; i++) {
      // ~1.3 MB of storage per step, and some JS garbage as a real step makes
      for (const n of [100000, 200000, 30000]) be.fill(be.alloc(n, 'float32'), 1, 0, n);
      for (let j = 0; j < 2000; j++) garbage[j % 50] = { j, a: [j, j + 1] };
      tops.push(be.stats().memoryBytes);
    }
    // one forced GC per 128 MiB of allocation (memory.ts): bounded well below the 400 MB allocated
    assert.ok(tops[299] < 200 * 2 ** 20, `memory stays bounded without yielding: ${tops[299]} bytes after 300 steps (${300 * 1.32} MB allocated)`);
    assert.equal(tops[299], tops[200], 'and stops growing');
  });
});

describe('wasm backend: checks', () => {
  test('out-of-range offsets and foreign storages throw BackendError instead of corrupting memory', () => {
    const be = single;
    const a = be.alloc(10, 'float32'), b = be.alloc(10, 'float32');
    assert.throws(() => be.axpy(8, 1, a, 5, b, 0), (e: Error) => e instanceof BackendError && /outside its 10 elements/.test(e.message));
    assert.throws(() => be.gemm(false, false, 3, 3, 3, 1, a, 0, 3, b, 0, 3, 0, be.alloc(8, 'float32'), 0, 3), BackendError);
    assert.throws(() => be.write(a, [1, 2, 3], 9), BackendError);
    assert.throws(() => be.read(a, 4, 7), BackendError);
    assert.throws(() => be.copy(js.alloc(3, 'float32'), 0, a, 0, 3), /not of this wasm backend/);
    assert.throws(() => be.copy(threaded.alloc(3, 'float32'), 0, a, 0, 3), /not of this wasm backend/);
    assert.throws(() => be.axpy(3, 1, be.alloc(3, 'float64'), 0, a, 0), /float64 but the other operands are float32/);
    const s: CellStep = { B: 2, H: 4, t: 0, lengths: null };
    assert.throws(() => be.lstmCellForward(s, a, 0, a, 0, a, 0, a, 0, a, 0, null, 0, 0), /lstmCellForward gates/);
    assert.throws(() => be.unary('cube' as never, 2, a, b), /unknown unary op 'cube'/);
    assert.throws(() => be.alloc(3, 'int8' as DType), /unknown dtype 'int8'/);
  });
});
