/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: every kernel of the Backend interface as a WGSL compute shader
 * (./kernels.ts), recorded into one command encoder (./runtime.ts) and submitted when a value is
 * read. Tensors live in GPU buffers for their whole life; the host sees them only through the
 * asynchronous reads (`readAsync`, and the reductions' `…Async` forms), because the GPU's answers
 * arrive on the event loop. The synchronous `read` and the host-number reductions throw with that
 * advice, so code written for a CPU backend fails loudly here rather than stalling.
 *
 * float32 only: WGSL has no 64-bit floats (finite-difference checks run on the js backend in
 * float64, and this backend is compared with it).
 */
import {
  type Activation, type Backend, BackendError, type BackwardScratch, type BinaryOp, type CellStep, checkTimeLengths, type Data, type DirectionWeights, type DirectionWorkspace,
  type DType, type FusedStepKernel, type LayerDims, type Storage, type UnaryOp, stepOffsets,
} from '../interface.ts';
import { shapeSize, shapeStrides } from '../../util/shape.ts';
import * as kernels from './kernels.ts';
import type { GpuArray, GpuRuntime } from './runtime.ts';
import type { WgslKernel } from './wgsl.ts';

export class WebGpuStorage implements Storage {
  readonly dtype: DType = 'float32';
  constructor(readonly backend: WebGpuBackend, readonly size: number, readonly array: GpuArray) {}
}

/** What the adapter is, for reports and for the automatic choice of backend. */
export interface WebGpuAdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  /** A CPU implementation (SwiftShader, lavapipe): correct, but no faster than the wasm backend. */
  software: boolean;
}

const ASYNC_ADVICE = 'WebGPU memory is read asynchronously: use `await tensor.data()` or the backend\'s readAsync';

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  private readonly registry: FinalizationRegistry<GpuArray>;
  /** An int32 buffer bound where a kernel's optional int input is absent (lengths = null). */
  private readonly noInts: GPUBuffer;
  /** The integer uploads of the batch now being recorded (see ints). */
  private intUploads: { batch: number; kept: { data: Int32Array; buffer: GPUBuffer }[] } = { batch: -1, kept: [] };

  /**
   * Run each recurrent step, forward and backward, as one fused dispatch at small batches (default
   * true; see fuses()); false always runs the generic loop's GEMM and cell kernel per step, which the
   * fused steps must equal (the tests compare).
   */
  fusedSteps = true;

  constructor(readonly runtime: GpuRuntime, readonly adapter: WebGpuAdapterInfo) {
    this.registry = new FinalizationRegistry((a) => runtime.releaseBuffer(a));
    this.noInts = runtime.device.createBuffer({ size: 16, usage: 0x80 /* STORAGE */ });
  }

  // ---- memory ----------------------------------------------------------------------------------------

  private make(size: number, dtype: DType, zero: boolean): WebGpuStorage {
    if (dtype !== 'float32') throw new BackendError(`webgpu backend: only float32 is supported (WGSL has no 64-bit floats), got '${String(dtype)}'`);
    if (!Number.isSafeInteger(size) || size < 0) throw new BackendError(`webgpu backend: cannot allocate ${size} elements`);
    const s = new WebGpuStorage(this, size, this.runtime.acquire(size * 4, zero));
    this.registry.register(s, s.array, s);
    return s;
  }

  alloc(size: number, dtype: DType): Storage {
    return this.make(size, dtype, true);
  }

  allocUninit(size: number, dtype: DType): Storage {
    return this.make(size, dtype, false);
  }

  fromArray(data: ArrayLike<number>, dtype: DType): Storage {
    const s = this.make(data.length, dtype, false);
    this.write(s, data, 0);
    return s;
  }

  release(s: Storage): void {
    const g = buf(s);
    if (this.registry.unregister(g)) this.runtime.releaseBuffer(g.array);
  }

  memoryUse(): { live: number; peak: number } {
    return this.runtime.memoryUse();
  }

  /**
   * Give the device back, and with it every buffer (the pooled ones too): for a backend that is no
   * longer wanted, as when the automatic choice keeps the CPU. Nothing of it may be used afterwards;
   * a later call fails at its next read with the device's error.
   */
  destroy(): void {
    this.runtime.device.destroy();
  }

  resetMemoryPeak(): void {
    this.runtime.resetMemoryPeak();
  }

  read(): Data {
    throw new BackendError(`webgpu backend: read() cannot wait for the GPU; ${ASYNC_ADVICE}`);
  }

  async readAsync(s: Storage, offset = 0, n = s.size - offset): Promise<Data> {
    checkRange('readAsync', s, offset, n);
    return new Float32Array(await this.runtime.read(buf(s).array.buffer, offset * 4, n * 4));
  }

  write(s: Storage, data: ArrayLike<number>, offset = 0): void {
    checkRange('write', s, offset, data.length);
    if (data.length === 0) return;
    const src = this.runtime.upload(data instanceof Float32Array ? data : Float32Array.from(data));
    this.runtime.copy(src, 0, buf(s).array.buffer, offset * 4, data.length * 4);
  }

  copy(src: Storage, srcOff: number, dst: Storage, dstOff: number, n: number): void {
    this.runtime.copy(buf(src).array.buffer, srcOff * 4, buf(dst).array.buffer, dstOff * 4, n * 4);
  }

  fill(dst: Storage, value: number, offset: number, n: number): void {
    if (value === 0 && Object.is(value, 0)) this.runtime.clear(buf(dst).array.buffer, offset * 4, n * 4);
    else this.run(kernels.fill, [dst], { n, off: offset, v: value }, n);
  }

  /** Submit everything recorded so far (reads do this themselves). */
  flush(): void {
    this.runtime.flush();
  }

  /** Resolves when the GPU has finished all work recorded so far. */
  sync(): Promise<void> {
    return this.runtime.sync();
  }

  /** One dispatch of k over `items` work items, `perGroup` to a workgroup (256 elements, or 1 row of a row kernel). */
  private run(k: WgslKernel, f32: readonly Storage[], params: Record<string, number | boolean | readonly number[]>, items: number, i32?: readonly GPUBuffer[], perGroup = 256): void {
    this.runtime.dispatch(k, { f32: f32.map((s) => buf(s).array.buffer), i32, params: k.pack(params), groups: Math.ceil(items / perGroup) });
  }

  /**
   * Host integers in a GPU buffer. Uploads are kept, by content, until the batch is submitted: the
   * generic time loop hands the same lengths to every step's cell kernel, which would otherwise
   * make a buffer per step.
   */
  /** The first B lengths as a bound int buffer (the empty one for null). */
  private lengths(lengths: Int32Array | null, B: number): GPUBuffer {
    return this.ints(lengths === null ? null : lengths.subarray(0, B));
  }

  private ints(a: Int32Array | null): GPUBuffer {
    if (a === null || a.length === 0) return this.noInts;
    if (this.intUploads.batch !== this.runtime.submits) this.intUploads = { batch: this.runtime.submits, kept: [] };
    const kept = this.intUploads.kept;
    const hit = kept.find((k) => k.data.length === a.length && k.data.every((v, i) => v === a[i]));
    if (hit) return hit.buffer;
    const buffer = this.runtime.upload(a);
    if (kept.length === MAX_KEPT_INTS) kept.shift();
    kept.push({ data: a.slice(), buffer });
    return buffer;
  }

  // ---- dense linear algebra ----------------------------------------------------------------------------

  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Storage, aOff: number, lda: number, B: Storage, bOff: number, ldb: number,
    beta: number, C: Storage, cOff: number, ldc: number,
  ): void {
    if (M === 0 || N === 0) return;
    const [gx, gy] = kernels.gemmGroups(M, N);
    // alpha = 0 reads neither A nor B (their NaNs do not reach C), as in BLAS and the js backend
    const params = kernels.gemm.pack({ M, N, K: alpha === 0 ? 0 : K, transA, transB, alpha, beta, aOff, lda, bOff, ldb, cOff, ldc });
    this.runtime.dispatch(kernels.gemm, { f32: [buf(A).array.buffer, buf(B).array.buffer, buf(C).array.buffer], params, groups: gx, groupsY: gy });
  }

  axpy(n: number, alpha: number, x: Storage, xOff: number, y: Storage, yOff: number): void {
    this.run(kernels.axpy, [x, y], { n, xOff, yOff, alpha }, n);
  }

  scale(n: number, alpha: number, x: Storage, xOff: number): void {
    this.run(kernels.scale, [x], { n, off: xOff, alpha }, n);
  }

  addRowVector(rows: number, cols: number, bias: Storage, bOff: number, X: Storage, xOff: number): void {
    this.run(kernels.addRowVector, [bias, X], { n: rows * cols, cols, bOff, xOff }, rows * cols);
  }

  sumRowsBackward(rows: number, cols: number, X: Storage, xOff: number, out: Storage, oOff: number): void {
    this.run(kernels.sumRowsBackward, [X, out], { n: cols, rows, xOff, oOff }, cols);
  }

  // ---- element-wise -------------------------------------------------------------------------------------

  unary(op: UnaryOp, n: number, x: Storage, out: Storage): void {
    this.run(kernels.unary, [x, out], { n, op: code(kernels.UNARY_CODES, op, 'unary op') }, n);
  }

  unaryBackward(op: UnaryOp, n: number, x: Storage, y: Storage, dy: Storage, dx: Storage): void {
    this.run(kernels.unaryBackward, [x, y, dy, dx], { n, op: code(kernels.UNARY_CODES, op, 'unary op') }, n);
  }

  binary(op: BinaryOp, a: Storage, aShape: readonly number[], b: Storage, bShape: readonly number[], out: Storage, outShape: readonly number[]): void {
    const rank = outShape.length;
    if (aShape.length !== rank || bShape.length !== rank) throw new BackendError(`webgpu backend: binary expects equal ranks, got ${aShape.length}, ${bShape.length}, ${rank}`);
    checkRank('binary', rank);
    const broadcastStrides = (shape: readonly number[]): number[] => shapeStrides(shape).map((s, i) => (shape[i] === 1 ? 0 : s));
    const n = shapeSize(outShape);
    this.run(kernels.binary, [a, b, out], { n, rank, op: code(kernels.BINARY_CODES, op, 'binary op'), shape: outShape, sa: broadcastStrides(aShape), sb: broadcastStrides(bShape) }, n);
  }

  reduceSum(x: Storage, xShape: readonly number[], out: Storage, outShape: readonly number[]): void {
    const rank = xShape.length;
    if (outShape.length !== rank) throw new BackendError(`webgpu backend: reduceSum expects equal ranks, got ${rank} and ${outShape.length}`);
    checkRank('reduceSum', rank);
    const n = shapeSize(outShape);
    this.run(kernels.reduceSum, [x, out], { n, rank, xShape, xStride: shapeStrides(xShape), oShape: outShape }, n);
  }

  /** One workgroup writes per-invocation partials to a temporary; the host combines them. */
  private partials(k: WgslKernel, n: number, x: Storage, xOff: number, words: number): GpuArray {
    const tmp = this.runtime.acquire(words * 4, false);
    this.runtime.dispatch(k, { f32: [buf(x).array.buffer, tmp.buffer], params: k.pack({ n, off: xOff, zero: 0 }), groups: 1 });
    return tmp;
  }

  private async readPartials(tmp: GpuArray, words: number): Promise<Float32Array> {
    try {
      return new Float32Array(await this.runtime.read(tmp.buffer, 0, words * 4));
    } finally {
      this.runtime.releaseBuffer(tmp);
    }
  }

  sumSquares(): number {
    throw new BackendError(`webgpu backend: sumSquares() cannot wait for the GPU; use sumSquaresAsync (${ASYNC_ADVICE})`);
  }

  async sumSquaresAsync(n: number, x: Storage, xOff: number): Promise<number> {
    if (n === 0) return 0;
    const parts = await this.readPartials(this.partials(kernels.sumSquares, n, x, xOff, 512), 512);
    let s = 0;
    for (const v of parts) s += v;
    return s;
  }

  findNonFinite(): number {
    throw new BackendError(`webgpu backend: findNonFinite() cannot wait for the GPU; use findNonFiniteAsync (${ASYNC_ADVICE})`);
  }

  async findNonFiniteAsync(n: number, x: Storage, xOff: number): Promise<number> {
    if (n === 0) return -1;
    const res = this.runtime.acquire(256 * 4, false);
    this.runtime.dispatch(kernels.findNonFinite, { f32: [buf(x).array.buffer], i32: [res.buffer], params: kernels.findNonFinite.pack({ n, off: xOff }), groups: 1 });
    let first = -1;
    try {
      for (const i of new Int32Array(await this.runtime.read(res.buffer, 0, 256 * 4))) if (i >= 0 && (first < 0 || i < first)) first = i;
    } finally {
      this.runtime.releaseBuffer(res);
    }
    return first;
  }

  maxAbs(): number {
    throw new BackendError(`webgpu backend: maxAbs() cannot wait for the GPU; use maxAbsAsync (${ASYNC_ADVICE})`);
  }

  async maxAbsAsync(n: number, x: Storage, xOff: number): Promise<number> {
    if (n === 0) return 0;
    let m = 0;
    for (const v of await this.readPartials(this.partials(kernels.maxAbs, n, x, xOff, 256), 256)) {
      if (Number.isNaN(v)) return NaN;
      if (v > m) m = v;
    }
    return m;
  }

  clamp(n: number, x: Storage, xOff: number, lo: number, hi: number): void {
    this.run(kernels.clamp, [x], { n, off: xOff, lo, hi }, n);
  }

  // ---- shape movement --------------------------------------------------------------------------------------

  permute(x: Storage, shape: readonly number[], perm: readonly number[], out: Storage): void {
    checkRank('permute', shape.length);
    const strides = shapeStrides(shape);
    const n = shapeSize(shape);
    this.run(kernels.permute, [x, out], { n, rank: shape.length, oShape: perm.map((p) => shape[p]), st: perm.map((p) => strides[p]) }, n);
  }

  sliceAxis(x: Storage, shape: readonly number[], axis: number, start: number, len: number, out: Storage): void {
    const inner = shapeSize(shape.slice(axis + 1));
    const n = shapeSize(shape.slice(0, axis)) * len * inner;
    this.run(kernels.sliceAxis, [x, out], { n, len, inner, dim: shape[axis], start }, n);
  }

  addIntoAxis(src: Storage, srcShape: readonly number[], dst: Storage, dstShape: readonly number[], axis: number, start: number): void {
    const n = shapeSize(srcShape);
    this.run(kernels.addIntoAxis, [src, dst], { n, len: srcShape[axis], inner: shapeSize(srcShape.slice(axis + 1)), dim: dstShape[axis], start }, n);
  }

  // ---- rows ------------------------------------------------------------------------------------------------

  softmax(rows: number, cols: number, x: Storage, out: Storage, log: boolean): void {
    this.run(kernels.softmax, [x, out], { rows, cols, isLog: log }, rows, undefined, 1);
  }

  softmaxBackward(rows: number, cols: number, y: Storage, dy: Storage, dx: Storage, log: boolean): void {
    this.run(kernels.softmaxBackward, [y, dy, dx], { rows, cols, isLog: log }, rows, undefined, 1);
  }

  softmaxCrossEntropy(rows: number, cols: number, logits: Storage, targets: Int32Array, ignoreIndex: number, probs: Storage, loss: Storage): void {
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t !== ignoreIndex && !(t >= 0 && t < cols)) {
        throw new BackendError(`softmaxCrossEntropy: target ${t} at row ${r} is outside [0, ${cols}) and is not the ignore index ${ignoreIndex}`);
      }
    }
    if (rows === 0) return;
    this.run(kernels.softmaxCrossEntropy, [logits, probs, loss], { rows, cols, ignore: ignoreIndex }, rows, [this.ints(targets.subarray(0, rows))], 1);
  }

  softmaxCrossEntropyBackward(rows: number, cols: number, probs: Storage, targets: Int32Array, ignoreIndex: number, rowGrad: Storage, dlogits: Storage): void {
    const n = rows * cols;
    if (n === 0) return;
    this.run(kernels.softmaxCrossEntropyBackward, [probs, rowGrad, dlogits], { n, cols, ignore: ignoreIndex }, n, [this.ints(targets.subarray(0, rows))]);
  }

  gatherRows(cols: number, table: Storage, idx: Int32Array, out: Storage): void {
    const rows = cols === 0 ? Infinity : table.size / cols;
    for (let i = 0; i < idx.length; i++) {
      const k = idx[i];
      if (!(k >= 0 && k < rows)) throw new BackendError(`gatherRows: index ${k} at position ${i} is outside [0, ${rows})`);
    }
    const n = idx.length * cols;
    if (n === 0) return;
    this.run(kernels.gatherRows, [table, out], { n, cols }, n, [this.ints(idx)]);
  }

  scatterAddRows(cols: number, dout: Storage, idx: Int32Array, dtable: Storage): void {
    const tableRows = cols === 0 ? Infinity : dtable.size / cols;
    // group positions by row, keeping their order: plan = [rows (U) | starts (U + 1) | positions (n)]
    const byRow = new Map<number, number[]>();
    for (let i = 0; i < idx.length; i++) {
      const k = idx[i];
      if (!(k >= 0 && k < tableRows)) throw new BackendError(`scatterAddRows: index ${k} at position ${i} is outside [0, ${tableRows})`);
      let list = byRow.get(k);
      if (!list) byRow.set(k, (list = []));
      list.push(i);
    }
    const U = byRow.size;
    if (U === 0 || cols === 0) return;
    const plan = new Int32Array(2 * U + 1 + idx.length);
    let u = 0, at = 0;
    for (const [row, list] of byRow) {
      plan[u] = row;
      plan[U + u] = at;
      for (const i of list) plan[2 * U + 1 + at++] = i;
      u++;
    }
    plan[2 * U] = at;
    this.run(kernels.scatterAddRows, [dout, dtable], { n: U * cols, cols, nRows: U, positionsOff: 2 * U + 1 }, U * cols, [this.ints(plan)]);
  }

  // ---- pooling over time ---------------------------------------------------------------------------------

  maxOverTime(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage): void {
    this.overTime(kernels.maxOverTime, [x, out], T, B, F, lengths);
  }

  maxOverTimeBackward(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage, dy: Storage, dx: Storage): void {
    this.overTime(kernels.maxOverTimeBackward, [x, out, dy, dx], T, B, F, lengths);
  }

  /** A pooling kernel over time: one invocation per (b, f), the lengths checked and bound. */
  private overTime(kernel: WgslKernel, args: Storage[], T: number, B: number, F: number, lengths: Int32Array | null): void {
    checkTimeLengths(kernel.name, T, B, lengths);
    const n = B * F;
    if (n === 0) return;
    this.run(kernel, args, { n, T, F, hasLen: lengths !== null }, n, [this.lengths(lengths, B)]);
  }

  // ---- recurrent cells ---------------------------------------------------------------------------------------

  /** A cell kernel's shared parameters, and its lengths (bound even when absent). */
  private cell(s: CellStep): [{ n: number; H: number; t: number; hasLen: boolean }, GPUBuffer] {
    return [{ n: s.B * s.H, H: s.H, t: s.t, hasLen: s.lengths !== null }, this.lengths(s.lengths, s.B)];
  }

  rnnCellForward(s: CellStep, act: Activation, pre: Storage, gOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    const [c, lengths] = this.cell(s);
    this.run(kernels.rnnCellForward, [pre, hPrev, h, y ?? h], { ...c, relu: act === 'relu', gOff, hPrevOff, hOff, hasY: y !== null, yOff, yStride }, c.n, [lengths]);
  }

  rnnCellBackward(s: CellStep, act: Activation, h: Storage, hOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dpre: Storage, gOff: number, dhPrev: Storage, dhPrevOff: number): void {
    const [c, lengths] = this.cell(s);
    this.run(kernels.rnnCellBackward, [h, dh, dy ?? dh, dpre, dhPrev], { ...c, relu: act === 'relu', hOff, dhOff, hasDy: dy !== null, dyOff, dyStride, gOff, dhPrevOff }, c.n, [lengths]);
  }

  lstmCellForward(s: CellStep, gates: Storage, gOff: number, hPrev: Storage, hPrevOff: number, cPrev: Storage, cPrevOff: number, cS: Storage, cOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    const [c, lengths] = this.cell(s);
    this.run(kernels.lstmCellForward, [gates, hPrev, cPrev, cS, h, y ?? h], { ...c, gOff, hPrevOff, cPrevOff, cOff, hOff, hasY: y !== null, yOff, yStride }, c.n, [lengths]);
  }

  lstmCellBackward(s: CellStep, gates: Storage, gOff: number, cPrev: Storage, cPrevOff: number, cS: Storage, cOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dc: Storage, dcOff: number, dgates: Storage, dgOff: number, dcPrev: Storage, dcPrevOff: number, dhPrev: Storage, dhPrevOff: number): void {
    const [c, lengths] = this.cell(s);
    this.run(kernels.lstmCellBackward, [gates, cPrev, cS, dh, dy ?? dh, dc, dgates, dcPrev, dhPrev], { ...c, gOff, cPrevOff, cOff, dhOff, hasDy: dy !== null, dyOff, dyStride, dcOff, dgOff, dcPrevOff, dhPrevOff }, c.n, [lengths]);
  }

  gruCellForward(s: CellStep, gx: Storage, gxOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    const [c, lengths] = this.cell(s);
    this.run(kernels.gruCellForward, [gx, gh, hPrev, h, y ?? h], { ...c, gxOff, ghOff, hPrevOff, hOff, hasY: y !== null, yOff, yStride }, c.n, [lengths]);
  }

  gruCellBackward(s: CellStep, gates: Storage, gOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dgx: Storage, dgxOff: number, dgh: Storage, dghOff: number, dhPrev: Storage, dhPrevOff: number): void {
    const [c, lengths] = this.cell(s);
    this.run(kernels.gruCellBackward, [gates, gh, hPrev, dh, dy ?? dh, dgx, dgh, dhPrev], { ...c, gOff, ghOff, hPrevOff, dhOff, hasDy: dy !== null, dyOff, dyStride, dgxOff, dghOff, dhPrevOff }, c.n, [lengths]);
  }

  // ---- a direction's time loop: one dispatch per step ------------------------------------------------------------

  /**
   * Whether a layer's steps run fused. A fused step reads W_hh once per batch row (each invocation
   * its own rows of it), where the tiled GEMM reads it once per 64 rows: fusing pays where the
   * per-step dispatches cost more than that, at small batches — batch-1 streaming ran 1.8× faster
   * fused on lavapipe, and W1's training step (B 32) no faster. The bound is that measurement's;
   * a GPU's crossover is still to be measured (bench/webgpu.ts --gpu, with and without --generic).
   */
  private fuses(kernel: FusedStepKernel, dims: LayerDims): boolean {
    return this.fusedSteps && FUSED.has(kernel) && dims.B <= FUSED_MAX_BATCH;
  }

  /**
   * The forward time loop with the recurrent product fused into each step's cell kernel (one
   * dispatch per step instead of a GEMM and a cell kernel): the same results as the generic loop,
   * bit for bit (the kernels sum in the GEMM's order; test/helpers/fused-steps.ts compares them).
   */
  recurrentForward(kernel: FusedStepKernel, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, y: Storage | null, yCol: number, yStride: number): boolean {
    if (!this.fuses(kernel, dims)) return false;
    const { T, B, H } = dims;
    const lengths = this.lengths(dims.lengths, B);
    const n = B * H;
    for (let s = 0; s < T; s++) {
      const t = ws.reverse ? T - 1 - s : s;
      const { prev, next, gates } = stepOffsets(dims, ws.reverse, t);
      const common = { n, H, t, hasLen: dims.lengths !== null, hPrevOff: prev, hOff: next, hasY: y !== null, yOff: t * B * yStride + yCol, yStride };
      if (kernel === 'lstm') {
        this.run(kernels.lstmStep, [ws.gx, ws.hs, ws.cs!, ws.cs!, ws.hs, y ?? ws.hs, w.wHh], { ...common, gOff: gates, cPrevOff: prev, cOff: next }, n, [lengths]);
      } else if (kernel === 'gru') {
        this.run(kernels.gruStep, [ws.gx, ws.gh!, ws.hs, ws.hs, y ?? ws.hs, w.bHh ?? ws.hs, w.wHh], { ...common, gxOff: gates, ghOff: gates, hasBias: w.bHh !== null }, n, [lengths]);
      } else {
        this.run(kernels.rnnStep, [ws.gx, ws.hs, ws.hs, y ?? ws.hs, w.wHh], { ...common, relu: kernel === 'rnnRelu', gOff: gates }, n, [lengths]);
      }
    }
    return true;
  }

  /**
   * The backward time loop with each step's cell backward and dh_{t−1} += dG·W_hh in one dispatch
   * (a workgroup per batch row), the generic loop's results bit for bit; the ping-pong buffers of sc
   * swap as in the generic loop.
   */
  recurrentBackward(kernel: FusedStepKernel, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): boolean {
    if (!this.fuses(kernel, dims)) return false;
    const { T, B, H } = dims;
    const lengths = this.lengths(dims.lengths, B);
    for (let s = T - 1; s >= 0; s--) {
      const t = ws.reverse ? T - 1 - s : s;
      const { prev, next, gates } = stepOffsets(dims, ws.reverse, t);
      const common = { B, H, t, hasLen: dims.lengths !== null, dhOff: 0, hasDy: dy !== null, dyOff: t * B * dyStride + dyCol, dyStride, dhPrevOff: 0 };
      const dyS = dy ?? sc.dh;
      if (kernel === 'lstm') {
        this.run(kernels.lstmBackStep, [ws.gx, ws.cs!, ws.cs!, sc.dh, dyS, sc.dc!, sc.dgx, sc.dcPrev!, sc.dhPrev, w.wHh], { ...common, gOff: gates, cPrevOff: prev, cOff: next, dcOff: 0, dgOff: gates, dcPrevOff: 0 }, B, [lengths], 1);
      } else if (kernel === 'gru') {
        this.run(kernels.gruBackStep, [ws.gx, ws.gh!, ws.hs, sc.dh, dyS, sc.dgx, sc.dgh, sc.dhPrev, w.wHh], { ...common, gOff: gates, ghOff: gates, hPrevOff: prev, dgxOff: gates, dghOff: gates }, B, [lengths], 1);
      } else {
        this.run(kernels.rnnBackStep, [ws.hs, sc.dh, dyS, sc.dgx, sc.dhPrev, w.wHh], { ...common, relu: kernel === 'rnnRelu', hOff: next, gOff: gates }, B, [lengths], 1);
      }
      [sc.dh, sc.dhPrev] = [sc.dhPrev, sc.dh];
      if (sc.dc && sc.dcPrev) [sc.dc, sc.dcPrev] = [sc.dcPrev, sc.dc];
    }
    return true;
  }

  // ---- optimizer -------------------------------------------------------------------------------------------------

  adamUpdate(n: number, p: Storage, g: Storage, m: Storage, v: Storage, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, step: number): void {
    const bc1 = 1 - Math.pow(beta1, step);
    const bc2 = 1 - Math.pow(beta2, step);
    this.run(kernels.adam, [p, g, m, v], {
      n, beta1, beta2, eps, wd: weightDecay, decoupled, stepSize: lr / bc1, bc2Sqrt: Math.sqrt(bc2), decay: decoupled ? 1 - lr * weightDecay : 1,
    }, n);
  }
}

/** The cell kinds with a fused step kernel. */
const FUSED: ReadonlySet<string> = new Set<FusedStepKernel>(['rnnTanh', 'rnnRelu', 'lstm', 'gru']);
/** Integer uploads kept per batch (see ints): a step's lengths, targets and ids. */
const MAX_KEPT_INTS = 16;
/** The largest batch whose steps run fused (see fuses()). */
const FUSED_MAX_BATCH = 8;

function buf(s: Storage): WebGpuStorage {
  if (!(s instanceof WebGpuStorage)) throw new BackendError(`webgpu backend: storage of backend '${s.backend.name}' passed to the webgpu backend`);
  return s;
}

function checkRange(what: string, s: Storage, offset: number, n: number): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(n) && offset >= 0 && n >= 0 && offset + n <= s.size)) {
    throw new BackendError(`webgpu backend: ${what} of ${n} elements at ${offset} is outside storage of ${s.size}`);
  }
}

function checkRank(what: string, rank: number): void {
  if (rank > kernels.MAX_RANK) throw new BackendError(`webgpu backend: ${what} supports up to ${kernels.MAX_RANK} dimensions, got ${rank}`);
}

function code<T extends Record<string, number>>(codes: T, key: string, what: string): number {
  if (!Object.hasOwn(codes, key)) throw new BackendError(`webgpu backend: unknown ${what} '${key}'`);
  return codes[key as keyof T];
}
