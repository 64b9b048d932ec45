/**
 * The WebAssembly backend: every kernel of interface.ts on storage that lives in one
 * WebAssembly.Memory, computed by the AssemblyScript kernels in ./assembly.
 *
 * This class is the facade: it implements the Backend interface by handing each call, with the
 * shared state (context.ts), to the module of its concern —
 *   storage.ts      storage lifecycle and copies in and out (finalizer-based reclamation)
 *   gemm.ts         GEMM: operand packing, the packed-operand cache, splitting across the pool
 *   elementwise.ts  element-wise ops, reductions, shape movement, Adam
 *   rows.ts         softmax, cross-entropy, embedding gather / scatter-add
 *   cell-steps.ts   one time step of a cell (the generic loop's kernels)
 *   time-loop.ts    a recurrent direction's whole fused time loop
 */
import type {
  Activation, Backend, BackwardScratch, BinaryOp, CellStep, Data, DirectionWeights, DirectionWorkspace, DType, FusedStepKernel, LayerDims, Storage, UnaryOp,
} from '../interface.ts';
import * as cells from './cell-steps.ts';
import { WasmContext, type WasmBackendInternals } from './context.ts';
import * as elementwise from './elementwise.ts';
import { gemm } from './gemm.ts';
import type { Variant } from './loader.ts';
import type { HeapStats } from './memory.ts';
import * as rowsOps from './rows.ts';
import * as storage from './storage.ts';
import * as timeLoop from './time-loop.ts';

export { WasmStorage } from './storage.ts';
export type { WasmBackendInternals } from './context.ts';

export interface WasmBackendStats extends HeapStats {
  /** Packed GEMM operands kept, and their bytes. */
  packedOperands: number;
  packedBytes: number;
  threads: number;
  variant: Variant;
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly variant: Variant;
  readonly threads: number;
  /** The kernel module (so callers can start more instances on the same memory). */
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  private readonly ctx: WasmContext;

  constructor(o: WasmBackendInternals) {
    this.module = o.module;
    this.memory = o.memory;
    this.variant = o.variant;
    this.ctx = new WasmContext(this, o);
    this.threads = this.ctx.threads;
  }

  stats(): WasmBackendStats {
    return { ...this.ctx.heap.stats(), ...this.ctx.packs.stats(), threads: this.threads, variant: this.variant };
  }

  /** Stop the worker threads. The backend still works afterwards, single-threaded. */
  dispose(): void {
    this.ctx.dispose();
  }

  // ---- memory -------------------------------------------------------------------------------------

  memoryUse(): { live: number; peak: number } {
    this.ctx.heap.collect?.();
    const h = this.ctx.heap.stats();
    return { live: h.liveBytes, peak: h.peakLiveBytes };
  }

  resetMemoryPeak(): void {
    this.ctx.heap.collect?.();
    this.ctx.heap.resetPeak();
  }

  /** Give s's block back now (Backend.release); s becomes unusable. */
  release(st: Storage): void {
    storage.releaseStorage(this.ctx, st);
  }

  alloc(size: number, dtype: DType): Storage {
    return storage.makeStorage(this.ctx, size, dtype, true);
  }

  allocUninit(size: number, dtype: DType): Storage {
    const s = storage.makeStorage(this.ctx, size, dtype, false);
    if (this.ctx.poisonUninit) this.fill(s, NaN, 0, size);
    return s;
  }

  fromArray(data: ArrayLike<number>, dtype: DType): Storage {
    return storage.fromArray(this.ctx, data, dtype);
  }

  read(s: Storage, offset = 0, n = s.size - offset): Data {
    return storage.read(this.ctx, s, offset, n);
  }

  write(s: Storage, data: ArrayLike<number>, offset = 0): void {
    storage.write(this.ctx, s, data, offset);
  }

  copy(src: Storage, srcOff: number, dst: Storage, dstOff: number, n: number): void {
    storage.copy(this.ctx, src, srcOff, dst, dstOff, n);
  }

  fill(dst: Storage, value: number, offset: number, n: number): void {
    storage.fill(this.ctx, dst, value, offset, n);
  }

  // ---- dense linear algebra -----------------------------------------------------------------------

  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    As: Storage, aOff: number, lda: number, Bs: Storage, bOff: number, ldb: number,
    beta: number, Cs: Storage, cOff: number, ldc: number,
  ): void {
    gemm(this.ctx, transA, transB, M, N, K, alpha, As, aOff, lda, Bs, bOff, ldb, beta, Cs, cOff, ldc);
  }

  axpy(n: number, alpha: number, xs: Storage, xOff: number, ys: Storage, yOff: number): void {
    elementwise.axpy(this.ctx, n, alpha, xs, xOff, ys, yOff);
  }

  scale(n: number, alpha: number, xs: Storage, xOff: number): void {
    elementwise.scale(this.ctx, n, alpha, xs, xOff);
  }

  addRowVector(rows: number, cols: number, bias: Storage, bOff: number, Xs: Storage, xOff: number): void {
    elementwise.addRowVector(this.ctx, rows, cols, bias, bOff, Xs, xOff);
  }

  sumRowsBackward(rows: number, cols: number, Xs: Storage, xOff: number, out: Storage, oOff: number): void {
    elementwise.sumRowsBackward(this.ctx, rows, cols, Xs, xOff, out, oOff);
  }

  // ---- element-wise and reductions ------------------------------------------------------------------

  unary(op: UnaryOp, n: number, xs: Storage, outs: Storage): void {
    elementwise.unary(this.ctx, op, n, xs, outs);
  }

  unaryBackward(op: UnaryOp, n: number, xs: Storage, ys: Storage, dys: Storage, dxs: Storage): void {
    elementwise.unaryBackward(this.ctx, op, n, xs, ys, dys, dxs);
  }

  binary(op: BinaryOp, as: Storage, aShape: readonly number[], bs: Storage, bShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
    elementwise.binary(this.ctx, op, as, aShape, bs, bShape, outs, outShape);
  }

  reduceSum(xs: Storage, xShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
    elementwise.reduceSum(this.ctx, xs, xShape, outs, outShape);
  }

  sumSquares(n: number, xs: Storage, xOff: number): number {
    return elementwise.sumSquares(this.ctx, n, xs, xOff);
  }

  findNonFinite(n: number, xs: Storage, xOff: number): number {
    return elementwise.findNonFinite(this.ctx, n, xs, xOff);
  }

  maxAbs(n: number, xs: Storage, xOff: number): number {
    return elementwise.maxAbs(this.ctx, n, xs, xOff);
  }

  clamp(n: number, xs: Storage, xOff: number, lo: number, hi: number): void {
    elementwise.clamp(this.ctx, n, xs, xOff, lo, hi);
  }

  // ---- shape movement -------------------------------------------------------------------------------

  permute(xs: Storage, shape: readonly number[], perm: readonly number[], outs: Storage): void {
    elementwise.permute(this.ctx, xs, shape, perm, outs);
  }

  sliceAxis(xs: Storage, shape: readonly number[], axis: number, start: number, len: number, outs: Storage): void {
    elementwise.sliceAxis(this.ctx, xs, shape, axis, start, len, outs);
  }

  addIntoAxis(srcs: Storage, srcShape: readonly number[], dsts: Storage, dstShape: readonly number[], axis: number, start: number): void {
    elementwise.addIntoAxis(this.ctx, srcs, srcShape, dsts, dstShape, axis, start);
  }

  // ---- rows: softmax, losses, embeddings --------------------------------------------------------------

  softmax(rows: number, cols: number, xs: Storage, outs: Storage, log: boolean): void {
    rowsOps.softmax(this.ctx, rows, cols, xs, outs, log);
  }

  softmaxBackward(rows: number, cols: number, ys: Storage, dys: Storage, dxs: Storage, log: boolean): void {
    rowsOps.softmaxBackward(this.ctx, rows, cols, ys, dys, dxs, log);
  }

  softmaxCrossEntropy(rows: number, cols: number, logits: Storage, targets: Int32Array, ignoreIndex: number, probs: Storage, loss: Storage): void {
    rowsOps.softmaxCrossEntropy(this.ctx, rows, cols, logits, targets, ignoreIndex, probs, loss);
  }

  softmaxCrossEntropyBackward(rows: number, cols: number, probs: Storage, targets: Int32Array, ignoreIndex: number, rowGrad: Storage, dlogits: Storage): void {
    rowsOps.softmaxCrossEntropyBackward(this.ctx, rows, cols, probs, targets, ignoreIndex, rowGrad, dlogits);
  }

  gatherRows(cols: number, table: Storage, idx: Int32Array, out: Storage): void {
    rowsOps.gatherRows(this.ctx, cols, table, idx, out);
  }

  scatterAddRows(cols: number, dout: Storage, idx: Int32Array, dtable: Storage): void {
    rowsOps.scatterAddRows(this.ctx, cols, dout, idx, dtable);
  }

  maxOverTime(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage): void {
    elementwise.maxOverTime(this.ctx, T, B, F, x, lengths, out);
  }

  maxOverTimeBackward(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage, dy: Storage, dx: Storage): void {
    elementwise.maxOverTimeBackward(this.ctx, T, B, F, x, lengths, out, dy, dx);
  }

  // ---- recurrent cells: one step (the generic loop), and a direction's whole fused time loop -----------

  rnnCellForward(s: CellStep, act: Activation, pre: Storage, gOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    cells.rnnCellForward(this.ctx, s, act, pre, gOff, hPrev, hPrevOff, h, hOff, y, yOff, yStride);
  }

  rnnCellBackward(s: CellStep, act: Activation, h: Storage, hOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dpre: Storage, gOff: number, dhPrev: Storage, dhPrevOff: number): void {
    cells.rnnCellBackward(this.ctx, s, act, h, hOff, dh, dhOff, dy, dyOff, dyStride, dpre, gOff, dhPrev, dhPrevOff);
  }

  lstmCellForward(s: CellStep, gates: Storage, gOff: number, hPrev: Storage, hPrevOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    cells.lstmCellForward(this.ctx, s, gates, gOff, hPrev, hPrevOff, cPrev, cPrevOff, c, cOff, h, hOff, y, yOff, yStride);
  }

  lstmCellBackward(s: CellStep, gates: Storage, gOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dc: Storage, dcOff: number, dgates: Storage, dgOff: number, dcPrev: Storage, dcPrevOff: number, dhPrev: Storage, dhPrevOff: number): void {
    cells.lstmCellBackward(this.ctx, s, gates, gOff, cPrev, cPrevOff, c, cOff, dh, dhOff, dy, dyOff, dyStride, dc, dcOff, dgates, dgOff, dcPrev, dcPrevOff, dhPrev, dhPrevOff);
  }

  gruCellForward(s: CellStep, gx: Storage, gxOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    cells.gruCellForward(this.ctx, s, gx, gxOff, gh, ghOff, hPrev, hPrevOff, h, hOff, y, yOff, yStride);
  }

  gruCellBackward(s: CellStep, gates: Storage, gOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dgx: Storage, dgxOff: number, dgh: Storage, dghOff: number, dhPrev: Storage, dhPrevOff: number): void {
    cells.gruCellBackward(this.ctx, s, gates, gOff, gh, ghOff, hPrev, hPrevOff, dh, dhOff, dy, dyOff, dyStride, dgx, dgxOff, dgh, dghOff, dhPrev, dhPrevOff);
  }

  recurrentForward(kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, y: Storage | null, yCol: number, yStride: number): boolean {
    return timeLoop.recurrentForward(this.ctx, kernel, dims, wt, ws, y, yCol, yStride);
  }

  recurrentBackward(kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): boolean {
    return timeLoop.recurrentBackward(this.ctx, kernel, dims, wt, ws, sc, dy, dyCol, dyStride);
  }

  recurrentStackForward(kernel: FusedStepKernel, dims: readonly LayerDims[], w: readonly DirectionWeights[], ws: readonly DirectionWorkspace[], y: readonly Storage[]): boolean {
    return timeLoop.recurrentStackForward(this.ctx, kernel, dims, w, ws, y);
  }

  recurrentStackBackward(kernel: FusedStepKernel, dims: readonly LayerDims[], w: readonly DirectionWeights[], ws: readonly DirectionWorkspace[], sc: readonly BackwardScratch[], dy: readonly (Storage | null)[]): boolean {
    return timeLoop.recurrentStackBackward(this.ctx, kernel, dims, w, ws, sc, dy);
  }

  // ---- optimizers -----------------------------------------------------------------------------------

  adamUpdate(n: number, ps: Storage, gs: Storage, ms: Storage, vs: Storage, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, step: number): void {
    elementwise.adamUpdate(this.ctx, n, ps, gs, ms, vs, lr, beta1, beta2, eps, weightDecay, decoupled, step);
  }
}
