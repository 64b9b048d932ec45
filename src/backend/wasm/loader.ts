/**
 * Finding, checking and instantiating the kernel module.
 *
 * Two builds exist (scripts/build-wasm.mjs): `recur-simd.wasm` (SIMD128, bit-reproducible) and
 * `recur-relaxed.wasm` (the same code with `f32x4.relaxed_madd` in the GEMM). Both import a shared
 * memory. Where SharedArrayBuffer is unavailable (a browser page without cross-origin isolation) the
 * memory import is patched to a plain one — one flag byte in the import section — and the backend
 * runs single-threaded.
 */
import type { Platform } from './platform.ts';

export type Variant = 'simd' | 'relaxed';

export const VARIANT_FILES: Record<Variant, string> = {
  simd: 'recur-simd.wasm',
  relaxed: 'recur-relaxed.wasm',
};

/**
 * Where the build puts the variants (a sibling folder of this module). Literal `new URL(…,
 * import.meta.url)` expressions, so bundlers see the two assets and copy them.
 */
export function variantUrl(v: Variant): URL {
  return v === 'relaxed'
    ? new URL('./build/recur-relaxed.wasm', import.meta.url)
    : new URL('./build/recur-simd.wasm', import.meta.url);
}

export async function readVariant(platform: Platform, v: Variant): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await platform.readAsset(variantUrl(v));
  } catch (e) {
    throw new Error(
      `wasm backend: cannot read the kernel module ${VARIANT_FILES[v]} (${(e as Error).message}). ` +
      'It is built from src/backend/wasm/assembly by `npm run build:wasm` (`npm run build` runs it).',
    );
  }
}

function readLeb(b: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0, shift = 0, byte: number;
  do {
    if (pos >= b.length) throw new Error('truncated LEB128');
    byte = b[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [result, pos];
}

/**
 * A copy of a module whose memory import is declared shared (or not). Only the limits flag byte
 * changes (0x03 shared with maximum ↔ 0x01 maximum), so no size field moves.
 */
export function withSharedMemory(bytes: Uint8Array, shared: boolean): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes);
  let pos = 8; // magic + version
  while (pos < out.length) {
    const id = out[pos++];
    let size: number;
    [size, pos] = readLeb(out, pos);
    const end = pos + size;
    if (id === 2) {
      let count: number, p = pos;
      [count, p] = readLeb(out, p);
      for (let i = 0; i < count; i++) {
        let len: number;
        [len, p] = readLeb(out, p); p += len; // module name
        [len, p] = readLeb(out, p); p += len; // field name
        const kind = out[p++];
        if (kind === 0) [, p] = readLeb(out, p);
        else if (kind === 1) { p++; const flag = out[p++]; [, p] = readLeb(out, p); if (flag & 1) [, p] = readLeb(out, p); }
        else if (kind === 3) p += 2;
        else if (kind === 4) { p++; [, p] = readLeb(out, p); }
        else if (kind === 2) {
          const flag = out[p];
          if (!(flag & 1)) throw new Error('wasm backend: the kernel module declares no memory maximum');
          out[p] = shared ? flag | 2 : flag & ~2;
          return out;
        } else throw new Error(`wasm backend: unknown import kind ${kind}`);
      }
    }
    pos = end;
  }
  throw new Error('wasm backend: the kernel module imports no memory');
}

/** The exports of the kernel module (pointers are byte addresses; see assembly/*.ts). */
export interface Kernels {
  dataEnd(): number;
  zeroBytes(p: number, n: number): void;
  copyBytes(dst: number, src: number, n: number): void;
  fill_f32(p: number, n: number, value: number): void;
  fill_f64(p: number, n: number, value: number): void;
  vmath_eval(fn: number, n: number, x: number, out: number): void;
  sgemm_kblock(K: number): number;
  sgemm_scratch_bytes(): number;
  sgemm_pack_b(transB: number, K: number, N: number, B: number, ldb: number, Bp: number, p0: number, p1: number): void;
  sgemm_compute(transA: number, m0: number, m1: number, p0: number, p1: number, K: number, N: number, alpha: number,
    A: number, lda: number, Bp: number, beta: number, C: number, ldc: number, scratch: number): void;
  sgemm_scale_c(M: number, N: number, beta: number, C: number, ldc: number): void;
  dgemm(transA: number, transB: number, M: number, N: number, K: number, alpha: number,
    A: number, lda: number, B: number, ldb: number, beta: number, C: number, ldc: number): void;
  axpy_f32(n: number, alpha: number, x: number, y: number): void;
  axpy_f64(n: number, alpha: number, x: number, y: number): void;
  scale_f32(n: number, alpha: number, x: number): void;
  scale_f64(n: number, alpha: number, x: number): void;
  addRowVector_f32(rows: number, cols: number, bias: number, X: number): void;
  addRowVector_f64(rows: number, cols: number, bias: number, X: number): void;
  sumRows_f32(rows: number, cols: number, X: number, out: number): void;
  sumRows_f64(rows: number, cols: number, X: number, out: number): void;
  unary_f32(op: number, n: number, x: number, out: number): void;
  unary_f64(op: number, n: number, x: number, out: number): void;
  unaryBackward_f32(op: number, n: number, x: number, y: number, dy: number, dx: number): void;
  unaryBackward_f64(op: number, n: number, x: number, y: number, dy: number, dx: number): void;
  binaryRows_f32(op: number, rows: number, cols: number, a: number, aStride: number, b: number, bStride: number, out: number): void;
  binaryRows_f64(op: number, rows: number, cols: number, a: number, aStride: number, b: number, bStride: number, out: number): void;
  binary2d_f32(op: number, rows: number, cols: number, a: number, aCol: number, aRow: number, b: number, bCol: number, bRow: number, out: number): void;
  binary2d_f64(op: number, rows: number, cols: number, a: number, aCol: number, aRow: number, b: number, bCol: number, bRow: number, out: number): void;
  sumSquares_f32(n: number, x: number): number;
  sumSquares_f64(n: number, x: number): number;
  findNonFinite_f32(n: number, x: number): number;
  findNonFinite_f64(n: number, x: number): number;
  maxAbs_f32(n: number, x: number): number;
  maxAbs_f64(n: number, x: number): number;
  clamp_f32(n: number, x: number, lo: number, hi: number): void;
  clamp_f64(n: number, x: number, lo: number, hi: number): void;
  softmax_f32(rows: number, cols: number, x: number, out: number, log: number): void;
  softmax_f64(rows: number, cols: number, x: number, out: number, log: number): void;
  softmaxBackward_f32(rows: number, cols: number, y: number, dy: number, dx: number, log: number): void;
  softmaxBackward_f64(rows: number, cols: number, y: number, dy: number, dx: number, log: number): void;
  sce_f32(rows: number, cols: number, x: number, targets: number, ignore: number, probs: number, loss: number): void;
  sce_f64(rows: number, cols: number, x: number, targets: number, ignore: number, probs: number, loss: number): void;
  sceBackward_f32(rows: number, cols: number, probs: number, targets: number, ignore: number, rowGrad: number, dx: number): void;
  sceBackward_f64(rows: number, cols: number, probs: number, targets: number, ignore: number, rowGrad: number, dx: number): void;
  gatherRows(rowBytes: number, table: number, idx: number, n: number, out: number): void;
  scatterAdd_f32(cols: number, dout: number, idx: number, n: number, dtable: number): void;
  scatterAdd_f64(cols: number, dout: number, idx: number, n: number, dtable: number): void;
  adam_f32(n: number, p: number, g: number, m: number, v: number, beta1: number, beta2: number, eps: number, wd: number,
    decoupled: number, stepSize: number, bc2Sqrt: number, decay: number): void;
  adam_f64(n: number, p: number, g: number, m: number, v: number, beta1: number, beta2: number, eps: number, wd: number,
    decoupled: number, stepSize: number, bc2Sqrt: number, decay: number): void;
  rnnFwd_f32(B: number, H: number, t: number, lens: number, relu: number, pre: number, hPrev: number, h: number, y: number, yStride: number): void;
  rnnFwd_f64(B: number, H: number, t: number, lens: number, relu: number, pre: number, hPrev: number, h: number, y: number, yStride: number): void;
  rnnBwd_f32(B: number, H: number, t: number, lens: number, relu: number, h: number, dh: number, dy: number, dyStride: number, dpre: number, dhPrev: number): void;
  rnnBwd_f64(B: number, H: number, t: number, lens: number, relu: number, h: number, dh: number, dy: number, dyStride: number, dpre: number, dhPrev: number): void;
  lstmFwd_f32(B: number, H: number, t: number, lens: number, g: number, hPrev: number, cPrev: number, c: number, h: number, y: number, yStride: number): void;
  lstmFwd_f64(B: number, H: number, t: number, lens: number, g: number, hPrev: number, cPrev: number, c: number, h: number, y: number, yStride: number): void;
  lstmBwd_f32(B: number, H: number, t: number, lens: number, g: number, cPrev: number, c: number, dh: number, dy: number, dyStride: number,
    dc: number, dg: number, dcPrev: number, dhPrev: number): void;
  lstmBwd_f64(B: number, H: number, t: number, lens: number, g: number, cPrev: number, c: number, dh: number, dy: number, dyStride: number,
    dc: number, dg: number, dcPrev: number, dhPrev: number): void;
  gruFwd_f32(B: number, H: number, t: number, lens: number, gx: number, gh: number, hPrev: number, h: number, y: number, yStride: number): void;
  gruFwd_f64(B: number, H: number, t: number, lens: number, gx: number, gh: number, hPrev: number, h: number, y: number, yStride: number): void;
  gruBwd_f32(B: number, H: number, t: number, lens: number, g: number, gh: number, hPrev: number, dh: number, dy: number, dyStride: number,
    dgx: number, dgh: number, dhPrev: number): void;
  gruBwd_f64(B: number, H: number, t: number, lens: number, g: number, gh: number, hPrev: number, dh: number, dy: number, dyStride: number,
    dgx: number, dgh: number, dhPrev: number): void;
  sgemm_pack_a(transA: number, M: number, K: number, A: number, lda: number, Ap: number, r0: number, r1: number): void;
  sgemm_compute_pa(m0: number, m1: number, p0: number, p1: number, K: number, N: number, alpha: number,
    Ap: number, M: number, Bp: number, beta: number, C: number, ldc: number, scratch: number): void;
  sumRowsLd_f32(rows: number, cols: number, ld: number, X: number, out: number): void;
  sceRows_f32(rows: number, cols: number, x: number, targets: number, ignore: number, probs: number, loss: number, scratch: number): void;
  scatterAddLd_f32(cols: number, ld: number, dout: number, idx: number, n: number, dtable: number): void;
  /** The fused steps of cells.ts: (j0, j1, scratch, ...their arguments); see threads.ts STEP_KERNELS. */
  rnnStepFwd_f32: StepKernel;
  lstmStepFwd_f32: StepKernel;
  gruStepFwd_f32: StepKernel;
  rnnStepBwd_f32: StepKernel;
  lstmStepBwd_f32: StepKernel;
  gruStepBwd_f32: StepKernel;
}

export type StepKernel = (j0: number, j1: number, scratch: number, ...args: number[]) => void;

/** Asynchronous, because browsers refuse to instantiate large modules synchronously on the main thread. */
export async function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<Kernels> {
  const inst = await WebAssembly.instantiate(module, { env: { memory } });
  return inst.exports as unknown as Kernels;
}
