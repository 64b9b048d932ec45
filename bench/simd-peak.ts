/**
 * The single-core arithmetic peak of WebAssembly SIMD128 on this machine and engine — the ceiling
 * the wasm backend's kernels are measured against (`bench/kernels.ts` prints each GEMM's share).
 *
 *   node --import tsx bench/simd-peak.ts
 *
 * A GEMM micro-kernel with nothing else in it, built here byte by byte (no toolchain needed): per
 * iteration it loads NR vectors of B and, one at a time, MR scalars of A splatted to a vector (always
 * the same bytes, so from L1), and updates an MR × NR block of accumulators, c[i][j] += a[i]·b[j] —
 * the shape of the backend's own kernel (4 × 2). Only the add (or the fused multiply-add) is on an
 * accumulator's dependency chain, as in a real GEMM. Blockings from 2×2 to 6×2 are tried and the
 * best counts: more accumulators hide more latency until the 16 vector registers V8 gives wasm on
 * x64 run out and it spills.
 * Three forms of the update:
 *
 *   mul + add     f32x4.mul then f32x4.add — what the backend's plain SIMD build does
 *   relaxed madd  one f32x4.relaxed_madd (relaxed SIMD): a fused multiply-add where the engine
 *                 emits one (the backend's relaxed build)
 *   add only      c += a: the add throughput alone
 *
 * GFLOP/s counts 2 flops per lane for a multiply-add, 1 for an add. Median of 7 rounds.
 */
import { setFlagsFromString } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { median } from './lib/measure.ts';

// relaxed SIMD is behind a flag in Node 20's engine (as the backend's relaxed build sets it)
setFlagsFromString('--experimental-wasm-relaxed-simd');

/** Register blockings tried (MR vectors of A × NR of B); the peak of a form is its best. */
const BLOCKINGS: [number, number][] = [[2, 2], [4, 2], [6, 2], [3, 3], [4, 3]];
const ITER = 20_000_000;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}
const SIMD = 0xfd;
const op = (code: number): number[] => [SIMD, ...leb(code)];
const F32X4_ADD = op(0xe4), F32X4_MUL = op(0xe6), RELAXED_MADD = op(0x105), F32X4_EXTRACT = [SIMD, ...leb(0x1f), 0];
const V128_LOAD = (offset: number): number[] => [0x41, 0, SIMD, 0x00, 4, ...leb(offset)]; // i32.const 0; v128.load align=16 offset
const LOAD32_SPLAT = (offset: number): number[] => [0x41, 0, SIMD, 0x09, 2, ...leb(offset)]; // i32.const 0; v128.load32_splat align=4 offset

type Form = 'mul+add' | 'madd' | 'add';

/** (func (param i32 n) (result f32)): n iterations of the micro-kernel; returns a lane of the accumulators' sum, so nothing is dead. */
function moduleBytes(form: Form, MR: number, NR: number): Uint8Array<ArrayBuffer> {
  const ACC = MR * NR;
  // locals: 0 = n (param); 1..ACC the accumulators c[i][j]; then b[0..NR) and one a (v128): as the
  // backend's kernel, a row of A is one splatted scalar at a time, B's vectors stay in registers
  const c = (i: number, j: number) => 1 + i * NR + j, b = (j: number) => 1 + ACC + j, a = 1 + ACC + NR;
  const get = (l: number) => [0x20, ...leb(l)], set = (l: number) => [0x21, ...leb(l)];
  const body: number[] = [0x03, 0x40]; // loop
  for (let j = 0; j < NR; j++) body.push(...V128_LOAD(16 * j), ...set(b(j)));
  for (let i = 0; i < MR; i++) {
    body.push(...LOAD32_SPLAT(16 * NR + 4 * i), ...set(a));
    for (let j = 0; j < NR; j++) {
      if (form === 'add') body.push(...get(c(i, j)), ...get(a), ...F32X4_ADD);
      else if (form === 'mul+add') body.push(...get(c(i, j)), ...get(a), ...get(b(j)), ...F32X4_MUL, ...F32X4_ADD);
      else body.push(...get(a), ...get(b(j)), ...get(c(i, j)), ...RELAXED_MADD);
      body.push(...set(c(i, j)));
    }
  }
  // n -= 1; continue while n ≠ 0
  body.push(...get(0), 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b);
  body.push(...get(c(0, 0)));
  for (let k = 1; k < ACC; k++) body.push(...get(1 + k), ...F32X4_ADD);
  body.push(...F32X4_EXTRACT, 0x0b);
  const func = [1, ...leb(ACC + NR + 1), 0x7b, ...body]; // one group of v128 locals, then the body
  const section = (id: number, content: number[]) => [id, ...leb(content.length), ...content];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7d]), // type: (i32) → f32
    ...section(3, [1, 0]), // one function of type 0
    ...section(5, [1, 0x00, 1]), // one memory of one page (zeros: the values do not change the speed)
    ...section(7, [1, 3, ...[...'run'].map((ch) => ch.charCodeAt(0)), 0, 0]), // export "run"
    ...section(10, [1, ...leb(func.length), ...func]),
  ]);
}

/** The best GFLOP/s of one core for an update form over the blockings (median of `rounds` rounds each), and that blocking; null where the engine lacks the form. */
export function simdPeak(form: Form, iterations = ITER, rounds = 7): { gflops: number; blocking: string } | null {
  let best: { gflops: number; blocking: string } | null = null;
  for (const [MR, NR] of BLOCKINGS) {
    let run: (n: number) => number;
    try {
      run = (new WebAssembly.Instance(new WebAssembly.Module(moduleBytes(form, MR, NR))).exports as { run: (n: number) => number }).run;
    } catch {
      return null;
    }
    run(1000);
    const ms: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      if (!Number.isFinite(run(iterations))) throw new Error('the accumulators left the finite range');
      ms.push(performance.now() - t0);
    }
    const gflops = (iterations * MR * NR * 4 * (form === 'add' ? 1 : 2)) / median(ms) / 1e6;
    if (!best || gflops > best.gflops) best = { gflops, blocking: `${MR}×${NR}` };
  }
  return best;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`wasm SIMD128 single-core peak: the best register blocking of a GEMM micro-kernel, ${ITER.toLocaleString('en')} iterations per round (node ${process.version})\n`);
  console.log('| update | GFLOP/s | best blocking (vectors of A × B) |');
  console.log('|---|---:|---|');
  for (const [form, name] of [['mul+add', 'mul + add'], ['madd', 'relaxed madd'], ['add', 'add only']] as const) {
    const p = simdPeak(form);
    console.log(p === null ? `| ${name} | not available | |` : `| ${name} | ${p.gflops.toFixed(1)} | ${p.blocking} |`);
  }
}
