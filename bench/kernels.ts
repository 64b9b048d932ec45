/**
 * Times the WebAssembly backend's non-recurrent kernels at the W1 shapes (the figures of
 * src/backend/wasm/README.md): `node --import tsx bench/kernels.ts [threads ...]` (default 1 2).
 * Each figure is the median of 7 rounds of repeated calls after a warm-up; a GEMM's B operand is
 * marked as written before every call, so it is packed again each time, as in training. Each GEMM
 * also gives its share of the machine's wasm SIMD peak (bench/simd-peak.ts: the mul + add form,
 * which the plain SIMD build's inner loops use, measured here first) times the thread count.
 */
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { simdPeak } from './simd-peak.ts';
import type { Storage } from '../src/backend/interface.ts';

const threadsList = process.argv.slice(2).map(Number).filter((x) => x > 0);
const TL = threadsList.length ? threadsList : [1, 2];
function rnd(n: number, s = 1): Float32Array { const v = new Float32Array(n); let x = 12345 * s; for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; v[i] = (x / 2 ** 32) * 2 - 1; } return v; }
function median(a: number[]): number { const b = [...a].sort((p, q) => p - q); return b[b.length >> 1]; }
function time(fn: () => void, reps: number, rounds = 7): number {
  for (let i = 0; i < reps; i++) fn();
  const r: number[] = [];
  for (let k = 0; k < rounds; k++) { const t0 = performance.now(); for (let i = 0; i < reps; i++) fn(); r.push((performance.now() - t0) / reps); }
  return median(r);
}
const peak = simdPeak('mul+add')!.gflops;
console.log(`wasm SIMD peak, one core: ${peak.toFixed(1)} GFLOP/s (mul + add, bench/simd-peak.ts)`);
for (const T of TL) {
  const be = await createWasmBackend({ threads: T });
  const out: string[] = [];
  const gemm = (ta: boolean, tb: boolean, M: number, N: number, K: number, fresh = true): void => {
    const A = be.fromArray(rnd(M * K, 1), 'float32'), B = be.fromArray(rnd(K * N, 2), 'float32'), C = be.alloc(M * N, 'float32');
    const lda = ta ? M : K, ldb = tb ? K : N;
    const f = (): void => { if (fresh) (B as unknown as { version: number }).version++; /* defeats the packed-B cache */ be.gemm(ta, tb, M, N, K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, N); };
    const ms = time(f, Math.max(3, Math.round(2e8 / (M * N * K))));
    const gflops = (2 * M * N * K) / ms / 1e6;
    out.push(`gemm ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}x${N}x${K}${fresh ? '' : ' (B cached)'}: ${(ms * 1000).toFixed(0)} us  ${gflops.toFixed(1)} GFLOP/s  ${((100 * gflops) / (peak * T)).toFixed(0)}% of ${T} × peak`);
  };
  gemm(false, false, 2048, 256, 65);
  gemm(true, false, 65, 256, 2048);
  gemm(false, true, 2048, 65, 256);
  gemm(false, true, 65, 1024, 256);
  gemm(true, false, 1024, 256, 65);
  gemm(false, false, 65, 256, 1024);
  gemm(false, true, 32, 1024, 256, false);
  gemm(false, false, 512, 512, 512);
  {
    // a fused LSTM time loop (recurrentForward) at W1's shape: per step the recurrent GEMM of
    // 32×1024×256 (the row above, B cached) and the gate math; GFLOP/s counts the GEMM's flops only
    const T = 64, B = 32, H = 256, G = 4;
    const dims = { T, B, I: H, H, G, lengths: null };
    const w = { wIh: be.fromArray(rnd(G * H * H, 4), 'float32'), wHh: be.fromArray(rnd(G * H * H, 5).map((v) => v * 0.1), 'float32'), bIh: null, bHh: null };
    const gx = rnd(T * B * G * H, 6);
    const ws = { reverse: false, hs: be.alloc((T + 1) * B * H, 'float32'), cs: be.alloc((T + 1) * B * H, 'float32'), gx: be.fromArray(gx, 'float32'), gh: null };
    const y = be.alloc(T * B * H, 'float32');
    // the loop overwrites gx with the activated gates: restore it before each call (not timed apart: a copy of 8 MiB)
    const src = be.fromArray(gx, 'float32');
    const ms = time(() => { be.copy(src, 0, ws.gx, 0, gx.length); be.recurrentForward!('lstm', dims, w, ws, y, 0, H); }, 5);
    out.push(`lstm time loop T${T} B${B} H${H} (recurrentForward, with a copy of gx): ${(ms * 1000).toFixed(0)} us = ${((ms * 1000) / T).toFixed(0)} us/step  ${((2 * T * B * G * H * H) / ms / 1e6).toFixed(1)} GFLOP/s of its GEMMs`);
  }
  {
    const X = be.fromArray(rnd(2048 * 1024), 'float32'), o = be.alloc(1024, 'float32');
    out.push(`sumRowsBackward 2048x1024: ${(time(() => be.sumRowsBackward(2048, 1024, X, 0, o, 0), 30) * 1000).toFixed(0)} us`);
    const Y = be.fromArray(rnd(2048 * 65), 'float32'), o2 = be.alloc(65, 'float32');
    out.push(`sumRowsBackward 2048x65: ${(time(() => be.sumRowsBackward(2048, 65, Y, 0, o2, 0), 100) * 1000).toFixed(0)} us`);
  }
  {
    const idx = Int32Array.from({ length: 2048 }, (_, i) => (i * 7919) % 65);
    const G = be.fromArray(rnd(2048 * 1024), 'float32'), tab = be.alloc(65 * 1024, 'float32'), out2 = be.alloc(2048 * 1024, 'float32');
    out.push(`scatterAddRows 2048 rows x1024 -> 65: ${(time(() => be.scatterAddRows(1024, G, idx, tab), 30) * 1000).toFixed(0)} us`);
    out.push(`gatherRows 2048 rows x1024 of 65: ${(time(() => be.gatherRows(1024, tab, idx, out2), 30) * 1000).toFixed(0)} us`);
  }
  {
    const rows = 2048, cols = 65;
    const x = be.fromArray(rnd(rows * cols).map((v) => v * 4), 'float32'), p = be.alloc(rows * cols, 'float32'), l = be.alloc(rows, 'float32');
    const tg = Int32Array.from({ length: rows }, (_, i) => (i * 7) % cols);
    out.push(`softmaxCrossEntropy 2048x65: ${(time(() => be.softmaxCrossEntropy(rows, cols, x, tg, -100, p, l), 30) * 1000).toFixed(0)} us`);
    const g = be.fromArray(new Float32Array(rows).fill(1 / rows), 'float32'), dx = be.alloc(rows * cols, 'float32');
    out.push(`softmaxCrossEntropyBackward 2048x65: ${(time(() => be.softmaxCrossEntropyBackward(rows, cols, p, tg, -100, g, dx), 30) * 1000).toFixed(0)} us`);
  }
  {
    // W1 parameters: emb 65*256, W_ih 1024*256, W_hh 1024*256, b_ih 1024, b_hh 1024, W_out 65*256, b_out 65
    const sizes = [65 * 256, 1024 * 256, 1024 * 256, 1024, 1024, 65 * 256, 65];
    const ps = sizes.map((n, i) => [be.fromArray(rnd(n, i + 3), 'float32'), be.fromArray(rnd(n, i + 9), 'float32'), be.alloc(n, 'float32'), be.alloc(n, 'float32')] as Storage[]);
    let step = 1;
    out.push(`adamUpdate x7 (${sizes.reduce((a, b) => a + b)}): ${(time(() => { ps.forEach(([p, g, m, v], i) => be.adamUpdate(sizes[i], p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0, false, step)); step++; }, 20) * 1000).toFixed(0)} us`);
    out.push(`sumSquares x7: ${(time(() => { ps.forEach(([, g], i) => be.sumSquares(sizes[i], g, 0)); }, 50) * 1000).toFixed(0)} us`);
    out.push(`scale x7: ${(time(() => { ps.forEach(([, g], i) => be.scale(sizes[i], 0.999, g, 0)); }, 50) * 1000).toFixed(0)} us`);
  }
  console.log(`--- threads ${T}`);
  console.log(out.join('\n'));
  be.dispose();
}
