/**
 * The backend interface: every number crunched in recur goes through one of these kernels.
 *
 * A backend owns its memory. A tensor holds an opaque `Storage` handle made by its backend; callers
 * never touch the bytes, they ask the backend to run kernels on handles (with element offsets, so a
 * kernel can work on one time step of a sequence workspace without a copy). The plain-TypeScript
 * backend (`js`) keeps typed arrays; a WebAssembly backend keeps views into its `WebAssembly.Memory`;
 * a WebGPU backend keeps GPU buffers. Only `read`/`write` cross the boundary.
 *
 * Conventions shared by all kernels:
 * - sizes and offsets count elements, not bytes; matrices are row-major;
 * - kernels whose name ends in `Backward` ACCUMULATE into their gradient outputs (`+=`), as in
 *   llm.c, unless stated otherwise; forward kernels overwrite their outputs;
 * - integer inputs (token ids, targets, lengths) are host `Int32Array`s — they are small, and a
 *   backend copies them where its kernels need them;
 * - both dtypes ('float32', 'float64') must be supported by the reference backend; float64 exists
 *   for finite-difference gradient checks. A fast backend may support float32 only and must then
 *   say so by throwing from `alloc`.
 */

export type DType = 'float32' | 'float64';

/** Bytes per element of a dtype. */
export function elementBytes(dtype: DType): 4 | 8 {
  return dtype === 'float32' ? 4 : 8;
}
export type Data = Float32Array | Float64Array;

/** An opaque handle to `size` elements of `dtype` in a backend's memory. */
export interface Storage {
  readonly backend: Backend;
  readonly dtype: DType;
  readonly size: number;
}

/** softplus(x) = log(1 + eˣ), computed stably. */
export type UnaryOp = 'neg' | 'exp' | 'log' | 'tanh' | 'sigmoid' | 'relu' | 'sqrt' | 'square' | 'abs' | 'softplus';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';
export type Activation = 'tanh' | 'relu';

/**
 * Saved state of one recurrent step lives in caller-owned workspaces; the cell kernels below work
 * on row-major [B, ...] blocks starting at the given offsets.
 *
 * Masking by per-sample lengths: when `lengths` is given, row b is *inactive* at step t if
 * t >= lengths[b]. An inactive row carries its previous state unchanged (h = hPrev, c = cPrev),
 * writes 0 to the step output, and in backward passes dh/dc straight through with zero gate
 * gradients. This gives ONNX `sequence_lens` semantics in both directions.
 */
export interface CellStep {
  B: number;
  H: number;
  /** Time index of this step; compared with `lengths` for masking. */
  t: number;
  lengths: Int32Array | null;
}

// ---- a recurrent layer's buffers (src/cells/workspace.ts explains the time indexing) ---------------

/**
 * The names of the fused time-loop step kernels a backend may provide (recurrentForward /
 * recurrentBackward). Backends sit below the cells layer and cannot read the cell records, so the
 * record of each cell kind (src/cells/) names its fused kernels with one of these and hands the name
 * down; a backend keys its own time-loop dispatch by the name. A cell kind without fused kernels
 * (its record says null) always runs the generic loop of its reference steps.
 */
export type FusedStepKernel = 'rnnTanh' | 'rnnRelu' | 'lstm' | 'gru';

export interface DirectionWeights {
  /** [G·H, I] */
  wIh: Storage;
  /** [G·H, H] */
  wHh: Storage;
  /** [G·H] or null (bias=false) */
  bIh: Storage | null;
  /** [G·H] or null */
  bHh: Storage | null;
}

export interface DirectionWorkspace {
  reverse: boolean;
  /** [T+1, B, H] hidden states, indexed as described above. */
  hs: Storage;
  /** [T+1, B, H] cell states (LSTM only). */
  cs: Storage | null;
  /**
   * [T, B, G·H] input projections X·W_ihᵀ + b_ih (+ b_hh for RNN/LSTM). Each step's cell kernel
   * overwrites its block with what backward needs (activated gates; for RNN the pre-activation).
   */
  gx: Storage;
  /** [T, B, G·H] recurrent products h·W_hhᵀ + b_hh (cells that do not fold b_hh into gx: GRU, MGU). */
  gh: Storage | null;
}

/**
 * Where step t reads and writes in a direction's workspace, in elements (a backend addressing
 * bytes scales them): the state before t (`prev`) and after it (`next`) in hs/cs, and the step's
 * [B, G·H] gate block (`gates`) in gx/gh and dgx/dgh. The one statement of the time indexing
 * (src/cells/workspace.ts explains it); the generic loop and every backend time loop use it.
 */
export function stepOffsets(dims: LayerDims, reverse: boolean, t: number): { prev: number; next: number; gates: number } {
  const BH = dims.B * dims.H;
  const gates = t * dims.B * dims.G * dims.H;
  return reverse ? { prev: (t + 1) * BH, next: t * BH, gates } : { prev: t * BH, next: (t + 1) * BH, gates };
}

/** Per-call constants of a layer. */
export interface LayerDims {
  T: number;
  B: number;
  I: number;
  H: number;
  /** Gate count (the weights hold G blocks of H rows): 1 (RNN), 4 (LSTM), 3 (GRU), 2 (MGU). */
  G: number;
  lengths: Int32Array | null;
}

/** Scratch buffers for one direction's backward pass. */
export interface BackwardScratch {
  /** [T, B, G·H] gradients of the input pre-activations (then: dW_ih = dGxᵀ·X, dX = dGx·W_ih). */
  dgx: Storage;
  /** [T, B, G·H] gradients of the recurrent pre-activations (GRU: separate; others: aliases dgx). */
  dgh: Storage;
  /** Ping-pong [B, H] gradients flowing into h_t and into h_{t-1}. */
  dh: Storage;
  dhPrev: Storage;
  /** Ping-pong [B, H] gradients flowing into c_t and c_{t-1} (LSTM). */
  dc: Storage | null;
  dcPrev: Storage | null;
}

export interface Backend {
  readonly name: string;

  // ---- memory -----------------------------------------------------------------------------
  /** Zero-filled storage. */
  alloc(size: number, dtype: DType): Storage;
  /**
   * Optional: storage whose contents are unspecified, for buffers the caller writes in full before
   * reading (a backend that recycles memory then skips the zeroing). Without it, callers use alloc.
   */
  allocUninit?(size: number, dtype: DType): Storage;
  /** New storage holding a copy of `data`. */
  fromArray(data: ArrayLike<number>, dtype: DType): Storage;
  /** A copy of `n` elements starting at `offset` (default: all) as a host typed array of the storage's dtype. */
  read(s: Storage, offset?: number, n?: number): Data;
  /** Copy host values into storage at `offset`. */
  write(s: Storage, data: ArrayLike<number>, offset?: number): void;
  copy(src: Storage, srcOff: number, dst: Storage, dstOff: number, n: number): void;
  fill(dst: Storage, value: number, offset: number, n: number): void;
  /**
   * Optional: give s's memory back now, for buffers whose last use the caller knows (an op's
   * internal workspaces), instead of waiting for the garbage collector. The caller promises never
   * to use s again; the backend may make any later use an error.
   */
  release?(s: Storage): void;
  /**
   * Optional: bytes of storage in use now (`live`) and the most in use at once since the last
   * `resetMemoryPeak` (`peak`; storages that are garbage but not yet collected count as in use,
   * as they take the memory). The garbage collector runs first where the platform lets it, so
   * `live` holds only what is still reachable. Backends that manage their own memory (wasm) have
   * it; the js backend's arrays belong to the JavaScript heap.
   */
  memoryUse?(): { live: number; peak: number };
  /** Optional, with memoryUse: start a new peak from the bytes in use now. */
  resetMemoryPeak?(): void;

  // ---- dense linear algebra ------------------------------------------------------------------
  /**
   * C[M,N] = alpha · op(A) · op(B) + beta · C, op(X) = Xᵀ when trans*. A is M×K (K×M if transA),
   * B is K×N (N×K if transB), leading dimensions as in BLAS row-major. beta = 0 ignores C's
   * old contents (NaN included).
   */
  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Storage, aOff: number, lda: number,
    B: Storage, bOff: number, ldb: number,
    beta: number, C: Storage, cOff: number, ldc: number,
  ): void;
  /** y[yOff..] += alpha · x[xOff..] over n elements. */
  axpy(n: number, alpha: number, x: Storage, xOff: number, y: Storage, yOff: number): void;
  /** x *= alpha over n elements from offset. */
  scale(n: number, alpha: number, x: Storage, xOff: number): void;
  /** Row vector bias added to every row: X[r, :] += bias[:] for r < rows. */
  addRowVector(rows: number, cols: number, bias: Storage, bOff: number, X: Storage, xOff: number): void;
  /** out[c] += Σ_r X[r, c] (column sums, accumulated). */
  sumRowsBackward(rows: number, cols: number, X: Storage, xOff: number, out: Storage, oOff: number): void;

  // ---- element-wise -----------------------------------------------------------------------------
  unary(op: UnaryOp, n: number, x: Storage, out: Storage): void;
  /** dx += dy · f'(x) where f' is computed from x and/or y = f(x) (whichever is cheaper). */
  unaryBackward(op: UnaryOp, n: number, x: Storage, y: Storage, dy: Storage, dx: Storage): void;
  /** out = a ∘ b with NumPy broadcasting; all three shapes have the same rank (callers pad with 1s). */
  binary(op: BinaryOp, a: Storage, aShape: readonly number[], b: Storage, bShape: readonly number[], out: Storage, outShape: readonly number[]): void;
  /** out (same rank as x, 1 on reduced axes) = Σ over the reduced axes of x. Overwrites out. */
  reduceSum(x: Storage, xShape: readonly number[], out: Storage, outShape: readonly number[]): void;
  /** Σ x² over n elements, accumulated in float64. */
  sumSquares(n: number, x: Storage, xOff: number): number;
  /** Index of the first non-finite element, or -1. */
  findNonFinite(n: number, x: Storage, xOff: number): number;
  /**
   * max |x| over n elements (the infinity norm, as a host number); NaN if any element is NaN,
   * 0 when n = 0.
   */
  maxAbs(n: number, x: Storage, xOff: number): number;
  /** Clamp n elements in place to [lo, hi]. */
  clamp(n: number, x: Storage, xOff: number, lo: number, hi: number): void;

  // ---- shape movement ---------------------------------------------------------------------------
  /** out = x permuted: out.shape[i] = shape[perm[i]]; reads the first shapeSize(shape) elements of x. */
  permute(x: Storage, shape: readonly number[], perm: readonly number[], out: Storage): void;
  /** out = x[..., start:start+len, ...] along `axis` (out's shape has `len` there). */
  sliceAxis(x: Storage, shape: readonly number[], axis: number, start: number, len: number, out: Storage): void;
  /** dst[..., start:start+srcShape[axis], ...] += src along `axis` (shapes equal except on axis). */
  addIntoAxis(src: Storage, srcShape: readonly number[], dst: Storage, dstShape: readonly number[], axis: number, start: number): void;

  // ---- rows: softmax, losses, embeddings -------------------------------------------------------
  /** Row-wise softmax (or log-softmax) of a [rows, cols] matrix. */
  softmax(rows: number, cols: number, x: Storage, out: Storage, log: boolean): void;
  /** dx += softmax (or log-softmax) backward, from its output y. */
  softmaxBackward(rows: number, cols: number, y: Storage, dy: Storage, dx: Storage, log: boolean): void;
  /**
   * Fused softmax + cross-entropy per row: probs = softmax(logits), loss[r] = −log probs[r, target[r]].
   * Rows whose target equals `ignoreIndex` get loss 0. Targets out of [0, cols) (other than
   * ignoreIndex) must throw.
   */
  softmaxCrossEntropy(rows: number, cols: number, logits: Storage, targets: Int32Array, ignoreIndex: number, probs: Storage, loss: Storage): void;
  /** dlogits[r] += rowGrad[r] · (probs[r] − onehot(target[r])); ignored rows get nothing. */
  softmaxCrossEntropyBackward(rows: number, cols: number, probs: Storage, targets: Int32Array, ignoreIndex: number, rowGrad: Storage, dlogits: Storage): void;
  /** out[i, :] = table[idx[i], :]. Indices out of range must throw. */
  gatherRows(cols: number, table: Storage, idx: Int32Array, out: Storage): void;
  /** dtable[idx[i], :] += dout[i, :]. */
  scatterAddRows(cols: number, dout: Storage, idx: Int32Array, dtable: Storage): void;

  // ---- pooling over time ---------------------------------------------------------------------------
  /**
   * Max pooling over time, each sequence to its length: x [T, B, F] → out [B, F], out[b, f] = max
   * over t < len_b of x[t, b, f], where len_b = lengths[b] (or T without lengths). The first maximum
   * wins; a NaN wins over any number, and the first NaN stays (as PyTorch's max). A length outside
   * [1, T] must throw (`checkTimeLengths`).
   */
  maxOverTime(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage): void;
  /**
   * dx[t, b, f] += dy[b, f] at the step maxOverTime chose: the first t < len_b where x[t, b, f]
   * equals out[b, f] (a NaN matching a NaN); dx is unchanged elsewhere.
   */
  maxOverTimeBackward(T: number, B: number, F: number, x: Storage, lengths: Int32Array | null, out: Storage, dy: Storage, dx: Storage): void;

  // ---- recurrent cells (one time step, B rows) -----------------------------------------------------
  /**
   * Vanilla RNN step. On entry `pre[gOff..]` holds the pre-activation x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh
   * ([B, H]); writes h = act(pre) to h[hOff..] and to y (if y is non-null) — with masking as in CellStep.
   * Inactive rows: h = hPrev, y = 0.
   */
  rnnCellForward(s: CellStep, act: Activation, pre: Storage, gOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void;
  /**
   * Vanilla RNN step backward. The gradient into h_t is dh (carried from step t+1) plus the output
   * gradient dy (strided; null for none). Writes dpre = (dh + dy)·act'(h) (overwrites). Inactive
   * rows: dpre = 0 and dhPrev += dh (dy is ignored: their output was the constant 0). Active rows
   * add nothing to dhPrev here — the caller does dhPrev += dpre·W_hh.
   */
  rnnCellBackward(s: CellStep, act: Activation, h: Storage, hOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dpre: Storage, gOff: number, dhPrev: Storage, dhPrevOff: number): void;
  /**
   * LSTM step (gate order i, f, g, o as PyTorch). On entry gates[gOff..] ([B, 4H]) holds the
   * pre-activations; on exit it holds the activated gates (saved for backward). Writes c, h,
   * y (strided, optional) with masking (inactive rows: h = hPrev, c = cPrev, y = 0).
   */
  lstmCellForward(s: CellStep, gates: Storage, gOff: number, hPrev: Storage, hPrevOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void;
  /**
   * LSTM step backward. Inputs: activated gates, cPrev, c; dh (carried) + dy (strided output
   * gradient, may be null) flowing into h_t, and dc flowing into c_t. Writes dgates ([B,4H],
   * pre-activation gradients, overwrites) and dcPrev (overwrites). Inactive rows: dgates = 0,
   * dcPrev = dc, dhPrev += dh. Active rows add nothing to dhPrev (the caller adds dgates·W_hh).
   */
  lstmCellBackward(s: CellStep, gates: Storage, gOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dc: Storage, dcOff: number, dgates: Storage, dgOff: number, dcPrev: Storage, dcPrevOff: number, dhPrev: Storage, dhPrevOff: number): void;
  /**
   * GRU step (PyTorch form, gate order r, z, n; reset applied to W_hn·h + b_hn):
   *   r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n), h = (1−z)·n + z·hPrev.
   * gx ([B,3H]) includes b_ih and gh ([B,3H]) includes b_hh. On exit gx holds the activated (r, z, n)
   * and gh keeps gh_n (saved for backward).
   */
  gruCellForward(s: CellStep, gx: Storage, gxOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void;
  /**
   * GRU step backward, with dh (carried) + dy (strided, may be null) flowing into h_t. Writes dgx
   * ([B,3H], gradient of the input pre-activations, overwrites) and dgh ([B,3H], gradient of the
   * recurrent pre-activations W_hh·h + b_hh, overwrites), and dhPrev += (dh + dy)·z (the direct
   * path; the caller adds dgh·W_hh). Inactive rows: dgx = dgh = 0, dhPrev += dh.
   */
  gruCellBackward(s: CellStep, gates: Storage, gOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dgx: Storage, dgxOff: number, dgh: Storage, dghOff: number, dhPrev: Storage, dhPrevOff: number): void;

  // ---- optimizers (fused, in place) ----------------------------------------------------------------
  /**
   * Adam / AdamW update exactly as PyTorch computes it:
   *   g' = g + wd·p (Adam, coupled) | p *= 1 − lr·wd (AdamW, decoupled)
   *   m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'²
   *   p −= lr/bc1 · m / (√v / √bc2 + eps), bc_i = 1 − β_i^step
   */
  adamUpdate(n: number, p: Storage, g: Storage, m: Storage, v: Storage, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, step: number): void;

  // ---- optional: asynchronous read-back -----------------------------------------------------------
  /**
   * A backend whose memory the host cannot read synchronously — WebGPU, whose answers arrive on the
   * event loop — provides these, and its `read`, `sumSquares`, `findNonFinite` and `maxAbs` throw a
   * BackendError saying so. `asyncReads(backend)` below gives every backend the same asynchronous
   * path (a CPU backend's answer wrapped in a resolved promise), so code meant for any backend awaits.
   */
  readAsync?(s: Storage, offset?: number, n?: number): Promise<Data>;
  sumSquaresAsync?(n: number, x: Storage, xOff: number): Promise<number>;
  findNonFiniteAsync?(n: number, x: Storage, xOff: number): Promise<number>;
  maxAbsAsync?(n: number, x: Storage, xOff: number): Promise<number>;

  // ---- optional: a recurrent direction's whole time loop ---------------------------------------------
  /**
   * A backend may run the time loop of one direction of a recurrent layer itself — e.g. one
   * multi-threaded job per step, split by hidden units, instead of a GEMM and a cell kernel per
   * step. It must give exactly the results of the generic loop of src/cells/recurrent.ts built on
   * this same backend's GEMM and cell kernels. Returns false (having done nothing) to decline;
   * the caller then runs the generic loop.
   *
   * Forward: on entry ws.gx holds the input projections and the initial state is in place; runs
   * every step, writing states, saved gates and y[t, :, yCol : yCol+H] (row stride yStride).
   * Backward: on entry sc.dh / sc.dc hold the gradient into the final state; runs BPTT over every
   * step, filling sc.dgx / sc.dgh, and leaves the gradient into the initial state in sc.dh / sc.dc
   * (swapping the ping-pong buffers of sc as the generic loop does). `kernel` is the cell record's
   * name for its fused steps; a backend declines names it does not know.
   */
  recurrentForward?(kernel: FusedStepKernel, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, y: Storage | null, yCol: number, yStride: number): boolean;
  recurrentBackward?(kernel: FusedStepKernel, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): boolean;

  // ---- optional: a stack of unidirectional layers as a wavefront (pipelining across layers) --------
  /**
   * A backend may run the time loops of a stack of L ≥ 2 unidirectional layers of one cell kind
   * together, layer l at step t while layer l+1 works on an earlier step (on other threads). Same
   * contract as recurrentForward/recurrentBackward for every layer — exactly the results of running
   * the layers one after another on this backend — with these differences. Returns false (having
   * done nothing) to decline; the caller then runs the layers one at a time.
   *
   * Forward: dims[l], w[l], ws[l] per layer (dims[l].I is layer l's input size; T, B, H and the
   * lengths are the same for all). Layer 0's ws.gx holds its input projections on entry; for l ≥ 1
   * the backend computes them from y[l−1]: Gx_l = y_{l−1} · W_ihᵀ + b_ih, then + b_hh for the cells
   * that fold it in (the kernel name says which), each element as the caller's whole-sequence GEMM
   * and addRowVector calls would give it. Writes every layer's states and y[l] ([T, B, H]).
   * Backward: sc[l] per layer as recurrentBackward's. dy[L−1] is the gradient into the top output
   * (or null); dy[l] for l < L−1 are zero-filled [T, B, H] buffers into which the backend adds
   * dGx_{l+1} · W_ih (layer l+1's) before layer l needs each step, as the caller's `dX += dGx · W_ih`
   * GEMM would (the caller then leaves that GEMM out for the layers above the first).
   */
  recurrentStackForward?(kernel: FusedStepKernel, dims: readonly LayerDims[], w: readonly DirectionWeights[], ws: readonly DirectionWorkspace[], y: readonly Storage[]): boolean;
  recurrentStackBackward?(kernel: FusedStepKernel, dims: readonly LayerDims[], w: readonly DirectionWeights[], ws: readonly DirectionWorkspace[], sc: readonly BackwardScratch[], dy: readonly (Storage | null)[]): boolean;
}

/** The read-backs of any backend as promises: its own asynchronous forms, or its synchronous ones. */
export interface AsyncReads {
  read(s: Storage, offset?: number, n?: number): Promise<Data>;
  sumSquares(n: number, x: Storage, xOff: number): Promise<number>;
  findNonFinite(n: number, x: Storage, xOff: number): Promise<number>;
  maxAbs(n: number, x: Storage, xOff: number): Promise<number>;
}

export function asyncReads(be: Backend): AsyncReads {
  // an async function turns a synchronous throw into a rejection, as the GPU path would report it
  return {
    read: async (s, offset, n) => (be.readAsync ? be.readAsync(s, offset, n) : be.read(s, offset, n)),
    sumSquares: async (n, x, xOff) => (be.sumSquaresAsync ? be.sumSquaresAsync(n, x, xOff) : be.sumSquares(n, x, xOff)),
    findNonFinite: async (n, x, xOff) => (be.findNonFiniteAsync ? be.findNonFiniteAsync(n, x, xOff) : be.findNonFinite(n, x, xOff)),
    maxAbs: async (n, x, xOff) => (be.maxAbsAsync ? be.maxAbsAsync(n, x, xOff) : be.maxAbs(n, x, xOff)),
  };
}

/** Thrown when a backend lacks a kernel or a dtype; names both. */
/** maxOverTime's lengths: B of them (or null), each in [1, T]; a BackendError names the first that is not. */
export function checkTimeLengths(what: string, T: number, B: number, lengths: Int32Array | null): void {
  if (lengths === null) return;
  if (lengths.length < B) throw new BackendError(`${what}: ${lengths.length} lengths for a batch of ${B}`);
  for (let b = 0; b < B; b++) {
    if (!(lengths[b] >= 1 && lengths[b] <= T)) throw new BackendError(`${what}: length ${lengths[b]} of sequence ${b} is outside [1, ${T}]`);
  }
}

export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}
