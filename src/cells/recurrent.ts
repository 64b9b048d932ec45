/**
 * One recurrent layer (one or two directions) over a whole sequence as ONE op on the autograd tape.
 *
 * Forward, per direction:
 *   Gx[T·B, G·H] = X · W_ihᵀ + b_ih (+ b_hh for RNN/LSTM)      — one GEMM before the time loop
 *   (G, the gate count, and all else that differs by cell kind come from the cell's record, CELLS)
 *   for each t (t = 0…T−1, or T−1…0 reversed): recurrent GEMM + one fused gate kernel
 * Backward (BPTT), per direction:
 *   for each t in reverse processing order: fused gate backward + dh_{t−1} = dG_t · W_hh
 *   then, over all steps at once:
 *   dW_ih += dGxᵀ · X,  dW_hh += dGhᵀ · H_prev,  db_ih += Σ dGx,  db_hh += Σ dGh,  dX += dGx · W_ih
 *
 * Embedding input. When x was made by an embedding lookup of a small vocabulary (x.lookup, see
 * EmbeddingLookup), x = E[ids] and the input projection is computed on the V table rows instead of
 * the T·B rows — the same sums, T·B/V times fewer multiply-adds:
 *   P[V, G·H] = E · W_ihᵀ + b_ih (+ b_hh),  Gx = P[ids]
 *   dP = scatter-add of dGx by id,  dW_ih += dPᵀ · E,  db_ih += Σ dP,  dE += dP · W_ih
 * (the padding row gets no gradient), and x itself receives none from this op.
 *
 * Per-sample `lengths` follow ONNX `sequence_lens` (= PyTorch packed sequences): outputs at
 * t ≥ len[b] are 0, the forward direction's final state is the state at t = len[b]−1, and the
 * reverse direction starts at t = len[b]−1. Layers are stacked (with dropout between them) by the
 * `nn` module, each layer being one such op; a unidirectional stack without dropout is one op for
 * all its layers (recurrentStack, below), which a backend may run as a wavefront.
 */
import type { Backend, DType, Storage } from '../backend/interface.ts';
import { Tensor, shapeStr, type EmbeddingLookup } from '../tensor/tensor.ts';
import { accumulateGrad, gradBuffer, needsGrad, record } from '../autograd/tape.ts';
import { sameBackendAndDType } from '../autograd/ops/util.ts';
import { GRU } from './gru.ts';
import { LSTM } from './lstm.ts';
import { MGU } from './mgu.ts';
import { RNN_RELU, RNN_TANH } from './rnn.ts';
import type { CellSpec, RecurrentMode } from './spec.ts';
import type { BackwardScratch, DirectionWeights, DirectionWorkspace, LayerDims } from './workspace.ts';

export type { RecurrentMode } from './spec.ts';
export { reorderGates, type CellSpec, type GateLayout } from './spec.ts';

/** The cell records, one per kind (see spec.ts): the one place a cell kind's facts live. */
export const CELLS: Record<RecurrentMode, CellSpec> = { RNN_TANH, RNN_RELU, LSTM, GRU, MGU };

/**
 * The record of the cell a foreign format stores under `name` (an ONNX op type or a Keras layer
 * class); throws for a name no record claims. ONNX's RNN and Keras's SimpleRNN give the tanh RNN's
 * record: the gate layout and count are those of either activation; the caller picks the activation.
 */
export function cellForFormat(format: 'onnx' | 'keras', name: string): CellSpec {
  const cell = Object.values(CELLS).find((c) => c[format]?.name === name);
  if (cell) return cell;
  const known = [...new Set(Object.values(CELLS).flatMap((c) => c[format]?.name ?? []))];
  throw new TypeError(`no cell kind is stored as ${format === 'onnx' ? 'ONNX op' : 'Keras layer'} '${name}' (known: ${known.join(', ')})`);
}

/** The parameters of one direction, as tensors (PyTorch: weight_ih_l{k}[_reverse], ...). */
export interface DirectionParams {
  weightIh: Tensor;
  weightHh: Tensor;
  biasIh: Tensor | null;
  biasHh: Tensor | null;
  /** Walk the sequence from its last step to its first (default: only the second direction does). */
  reverse?: boolean;
}

export interface RecurrentLayerResult {
  /** [T, B, D·H] */
  y: Tensor;
  /** [D, B, H] */
  hN: Tensor;
  /** [D, B, H] (LSTM only) */
  cN: Tensor | null;
}

/** Validate lengths against T and B; returns an Int32Array or null. */
export function checkLengths(lengths: ArrayLike<number> | null | undefined, T: number, B: number): Int32Array | null {
  if (lengths === null || lengths === undefined) return null;
  if (lengths.length !== B) throw new RangeError(`lengths: expected one length per sequence (${B}), got ${lengths.length}`);
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const l = lengths[b];
    if (!Number.isInteger(l) || l < 0 || l > T) throw new RangeError(`lengths[${b}] = ${l} must be an integer in [0, ${T}] (the padded sequence length)`);
    out[b] = l;
  }
  return out;
}

/**
 * Check one layer's parameters (one entry per direction) against its input size I and hidden size
 * H; returns them as a list for the tape.
 */
function checkParams(where: string, params: readonly DirectionParams[], GH: number, I: number, H: number): Tensor[] {
  const out: Tensor[] = [];
  for (const [d, p] of params.entries()) {
    const sfx = d === 1 ? '_reverse' : '';
    const expect = (t: Tensor | null, shape: number[], name: string): void => {
      if (t && (t.ndim !== shape.length || t.shape.some((s, i) => s !== shape[i]))) {
        throw new RangeError(`${where}: ${name}${sfx} must be ${shapeStr(shape)}, got ${shapeStr(t.shape)}`);
      }
    };
    expect(p.weightIh, [GH, I], 'weight_ih');
    expect(p.weightHh, [GH, H], 'weight_hh');
    expect(p.biasIh, [GH], 'bias_ih');
    expect(p.biasHh, [GH], 'bias_hh');
    out.push(p.weightIh, p.weightHh);
    if (p.biasIh) out.push(p.biasIh);
    if (p.biasHh) out.push(p.biasHh);
  }
  return out;
}

/** Check initial states h0/c0 against [S, B, H] (S: directions, or layers of a stack); returns those given. */
function checkStates(where: string, cell: CellSpec, h0: Tensor | null, c0: Tensor | null, S: number, B: number, H: number): Tensor[] {
  const out: Tensor[] = [];
  for (const [s, name] of [[h0, 'h0'], [c0, 'c0']] as const) {
    if (!s) continue;
    if (s.ndim !== 3 || s.shape[0] !== S || s.shape[1] !== B || s.shape[2] !== H) {
      throw new RangeError(`${where}: initial state ${name} must be [${S}, ${B}, ${H}], got ${shapeStr(s.shape)}`);
    }
    out.push(s);
  }
  if (c0 && !cell.hasCell) throw new TypeError(`${where}: ${cell.mode} has no cell state, but c0 was given`);
  return out;
}

/** x's embedding lookup when the input projection can run on its table rows (see the file comment), else null. */
function usableLookup(x: Tensor): EmbeddingLookup | null {
  const [T, B, I] = x.shape;
  return x.lookup && x.lookup.ids.length === T * B && x.lookup.weight.shape[1] === I ? x.lookup : null;
}

/** A direction's workspace (every element written before it is read: no zeroing). */
function newWorkspace(be: Backend, cell: CellSpec, dims: LayerDims, dtype: DType, reverse: boolean): DirectionWorkspace {
  const { T, B, H, G } = dims;
  const BH = B * H;
  return {
    reverse,
    hs: allocUninit(be, (T + 1) * BH, dtype),
    cs: cell.hasCell ? allocUninit(be, (T + 1) * BH, dtype) : null,
    gx: allocUninit(be, T * B * G * H, dtype),
    gh: cell.foldRecurrentBias ? null : allocUninit(be, T * B * G * H, dtype),
  };
}

/** Gx = X · W_ihᵀ + b_ih (+ b_hh), or from the projected embedding table. */
function projectInput(be: Backend, cell: CellSpec, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, x: Storage, lookup: EmbeddingLookup | null, dtype: DType): void {
  const { T, B, I, H, G } = dims;
  const GH = G * H;
  const rows = lookup ? lookup.weight.shape[0] : T * B;
  const proj = lookup ? allocUninit(be, rows * GH, dtype) : ws.gx;
  be.gemm(false, true, rows, GH, I, 1, lookup ? lookup.table : x, 0, I, w.wIh, 0, I, 0, proj, 0, GH);
  if (w.bIh) be.addRowVector(rows, GH, w.bIh, 0, proj, 0);
  if (w.bHh && cell.foldRecurrentBias) be.addRowVector(rows, GH, w.bHh, 0, proj, 0);
  if (lookup) {
    be.gatherRows(GH, proj, lookup.ids, ws.gx);
    be.release?.(proj);
  }
}

/** The initial state (h0/c0 at state offset `off`, or zeros) into its place in the workspace. */
function initState(be: Backend, dims: LayerDims, ws: DirectionWorkspace, h0: Tensor | null, c0: Tensor | null, off: number): void {
  const BH = dims.B * dims.H;
  const init = ws.reverse ? dims.T * BH : 0;
  if (h0) be.copy(h0.storage, off, ws.hs, init, BH);
  else be.fill(ws.hs, 0, init, BH);
  if (c0 && ws.cs) be.copy(c0.storage, off, ws.cs, init, BH);
  else if (ws.cs) be.fill(ws.cs, 0, init, BH);
}

/** The time loop: the backend's own where it has one, else one cell step at a time. */
function runDirection(be: Backend, cell: CellSpec, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, y: Storage, yCol: number, yStride: number): void {
  if (cell.fusedSteps && be.recurrentForward?.(cell.fusedSteps, dims, w, ws, y, yCol, yStride)) return;
  for (let s = 0; s < dims.T; s++) {
    const t = ws.reverse ? dims.T - 1 - s : s;
    cell.forwardStep(be, w, ws, dims, t, y, yCol, yStride);
  }
}

/** The final states into hN/cN at state offset `off`. */
function finalState(be: Backend, dims: LayerDims, ws: DirectionWorkspace, hN: Tensor, cN: Tensor | null, off: number): void {
  const BH = dims.B * dims.H;
  const fin = ws.reverse ? 0 : dims.T * BH;
  be.copy(ws.hs, fin, hN.storage, off, BH);
  if (cN && ws.cs) be.copy(ws.cs, fin, cN.storage, off, BH);
}

/**
 * Run one layer. x: [T, B, I] (time-major). params: one entry per direction (forward first).
 * h0/c0: [D, B, H] or null for zeros.
 */
export function recurrentLayer(
  mode: RecurrentMode,
  x: Tensor,
  params: readonly DirectionParams[],
  h0: Tensor | null,
  c0: Tensor | null,
  lengths: Int32Array | null,
): RecurrentLayerResult {
  const cell = cellOf('recurrentLayer', mode);
  const D = params.length;
  if (D !== 1 && D !== 2) throw new RangeError(`recurrentLayer: expected 1 or 2 directions, got ${D}`);
  if (x.ndim !== 3) throw new RangeError(`recurrentLayer: input must be [T, B, I], got ${shapeStr(x.shape)}`);
  const [T, B, I] = x.shape;
  const H = params[0].weightHh.shape[1];
  const G = cell.G;
  const where = `recurrentLayer (${mode})`;
  const all: Tensor[] = [x, ...checkParams(where, params, G * H, I, H), ...checkStates(where, cell, h0, c0, D, B, H)];
  sameBackendAndDType(where, ...all);
  if (lengths && lengths.length !== B) throw new RangeError(`recurrentLayer: ${lengths.length} lengths for batch ${B}`);

  const be = x.backend;
  const dtype = x.dtype;
  const dims: LayerDims = { T, B, I, H, G, lengths };
  const lookup = usableLookup(x);
  if (lookup) all.push(lookup.weight); // its gradient comes from this op: order it after us on the tape
  const BH = B * H;
  const y = new Tensor(allocUninit(be, T * B * D * H, dtype), [T, B, D * H]);
  const hN = new Tensor(allocUninit(be, D * BH, dtype), [D, B, H]);
  const cN = cell.hasCell ? new Tensor(allocUninit(be, D * BH, dtype), [D, B, H]) : null;

  const weights = params.map(directionWeights);
  const workspaces: DirectionWorkspace[] = [];
  for (let d = 0; d < D; d++) {
    const ws = newWorkspace(be, cell, dims, dtype, params[d].reverse ?? d === 1);
    projectInput(be, cell, dims, weights[d], ws, x.storage, lookup, dtype);
    initState(be, dims, ws, h0, c0, d * BH);
    runDirection(be, cell, dims, weights[d], ws, y.storage, d * H, D * H);
    finalState(be, dims, ws, hN, cN, d * BH);
    workspaces.push(ws);
  }

  const buffers = workspaces.flatMap((ws) => [ws.hs, ws.cs, ws.gx, ws.gh]);
  if (needsGrad(...all)) {
    record(mode, all, cN ? [y, hN, cN] : [y, hN], () => {
      const dy = y.grad?.storage ?? null;
      const dhN = hN.grad?.storage ?? null;
      const dcN = cN?.grad?.storage ?? null;
      const g = inputGrads(x, lookup, h0, c0);
      for (let d = 0; d < D; d++) {
        const sc = newScratch(be, cell, dims, dtype, dhN, dcN, d * BH);
        bptt(be, cell, dims, weights[d], workspaces[d], sc, dy, d * H, D * H);
        directionGrads(be, cell, dims, weights[d], workspaces[d], sc, params[d], x.storage, dtype, lookup, g.emb, g.dx, g.dh0, g.dc0, d * BH);
      }
      g.accumulate();
      releaseAll(be, buffers);
    });
  } else {
    releaseAll(be, buffers);
  }
  return { y, hN, cN };
}

/**
 * A stack of L ≥ 2 unidirectional layers of one cell kind (no dropout between them) as ONE op on
 * the tape, so that a backend can run the layers' time loops as a wavefront — layer l at step t
 * while layer l+1 works on step t−1, on other threads (Backend.recurrentStackForward/Backward:
 * pipelining across layers). Layer l ≥ 1 then computes its input projections step by step inside
 * the wave, and in backward layer l's dX = dGx · W_ih reaches layer l−1 step by step. A backend that
 * declines runs the layers one after another, exactly as recurrentLayer would; either way the
 * results are the same bit for bit, and the same as L recurrentLayer calls.
 *
 * x: [T, B, I]; layers[l]: layer l's parameters (weight_ih [G·H, I] for l = 0, [G·H, H] above);
 * h0/c0: [L, B, H] or null. Returns the top layer's y [T, B, H] and every layer's final states [L, B, H].
 */
export function recurrentStack(
  mode: RecurrentMode,
  x: Tensor,
  layers: readonly DirectionParams[],
  h0: Tensor | null,
  c0: Tensor | null,
  lengths: Int32Array | null,
): RecurrentLayerResult {
  const cell = cellOf('recurrentStack', mode);
  const L = layers.length;
  if (L < 2) throw new RangeError(`recurrentStack: expected at least 2 layers, got ${L} (one layer is recurrentLayer)`);
  if (x.ndim !== 3) throw new RangeError(`recurrentStack: input must be [T, B, I], got ${shapeStr(x.shape)}`);
  const [T, B, I] = x.shape;
  const H = layers[0].weightHh.shape[1];
  const G = cell.G;
  const where = `recurrentStack (${mode})`;
  const all: Tensor[] = [x];
  for (const [l, p] of layers.entries()) {
    if (p.reverse) throw new RangeError(`${where}: layer ${l} runs in reverse; a stack is unidirectional`);
    all.push(...checkParams(`${where}, layer ${l}`, [p], G * H, l === 0 ? I : H, H));
  }
  all.push(...checkStates(where, cell, h0, c0, L, B, H));
  sameBackendAndDType(where, ...all);
  if (lengths && lengths.length !== B) throw new RangeError(`recurrentStack: ${lengths.length} lengths for batch ${B}`);

  const be = x.backend;
  const dtype = x.dtype;
  const dims: LayerDims[] = layers.map((_, l) => ({ T, B, I: l === 0 ? I : H, H, G, lengths }));
  const lookup = usableLookup(x);
  if (lookup) all.push(lookup.weight);
  const BH = B * H;
  const y = new Tensor(allocUninit(be, T * BH, dtype), [T, B, H]);
  const hN = new Tensor(allocUninit(be, L * BH, dtype), [L, B, H]);
  const cN = cell.hasCell ? new Tensor(allocUninit(be, L * BH, dtype), [L, B, H]) : null;
  // every layer's output [T, B, H]: the ones below the top feed the next layer (and its dW_ih)
  const ys = layers.map((_, l) => (l === L - 1 ? y.storage : allocUninit(be, T * BH, dtype)));

  const weights = layers.map(directionWeights);
  const workspaces = dims.map((d) => newWorkspace(be, cell, d, dtype, false));
  projectInput(be, cell, dims[0], weights[0], workspaces[0], x.storage, lookup, dtype);
  for (let l = 0; l < L; l++) initState(be, dims[l], workspaces[l], h0, c0, l * BH);
  const wavedForward = !!(cell.fusedSteps && be.recurrentStackForward?.(cell.fusedSteps, dims, weights, workspaces, ys));
  if (!wavedForward) {
    for (let l = 0; l < L; l++) {
      if (l > 0) projectInput(be, cell, dims[l], weights[l], workspaces[l], ys[l - 1], null, dtype);
      runDirection(be, cell, dims[l], weights[l], workspaces[l], ys[l], 0, H);
    }
  }
  for (let l = 0; l < L; l++) finalState(be, dims[l], workspaces[l], hN, cN, l * BH);

  const buffers = [...workspaces.flatMap((ws) => [ws.hs, ws.cs, ws.gx, ws.gh]), ...ys.slice(0, L - 1)];
  if (needsGrad(...all)) {
    record(mode, all, cN ? [y, hN, cN] : [y, hN], () => {
      const dhN = hN.grad?.storage ?? null;
      const dcN = cN?.grad?.storage ?? null;
      const g = inputGrads(x, lookup, h0, c0);
      // the gradient into each layer's output: the top's from the tape, the others' from the layer above
      const dys = ys.map((_, l) => (l === L - 1 ? y.grad?.storage ?? null : be.alloc(T * BH, dtype)));
      // A wave needs every layer's scratch at once; layer after layer, each is made when its turn
      // comes and given back after it (directionGrads), as L recurrentLayer ops would. The backward
      // wave is tried only where the forward one ran (the same conditions decide both).
      const scratch = (l: number): BackwardScratch => newScratch(be, cell, dims[l], dtype, dhN, dcN, l * BH);
      const scs = wavedForward && be.recurrentStackBackward ? dims.map((_, l) => scratch(l)) : [];
      const waved = scs.length > 0 && !!(cell.fusedSteps && be.recurrentStackBackward?.(cell.fusedSteps, dims, weights, workspaces, scs, dys));
      for (let l = L - 1; l >= 0; l--) {
        const sc = scs[l] ?? scratch(l);
        if (!waved) bptt(be, cell, dims[l], weights[l], workspaces[l], sc, dys[l], 0, H);
        // the wave has already put dGx · W_ih of the layers above into dys
        const dIn = l === 0 ? g.dx : waved ? null : dys[l - 1];
        directionGrads(be, cell, dims[l], weights[l], workspaces[l], sc, layers[l], l === 0 ? x.storage : ys[l - 1], dtype, l === 0 ? lookup : null, l === 0 ? g.emb : null, dIn, g.dh0, g.dc0, l * BH);
      }
      g.accumulate();
      releaseAll(be, [...buffers, ...dys.slice(0, L - 1)]);
    });
  } else {
    releaseAll(be, buffers);
  }
  return { y, hN, cN };
}

/** The record of a cell kind, or a TypeError naming `fn` and the kinds there are. */
function cellOf(fn: string, mode: RecurrentMode): CellSpec {
  const cell = CELLS[mode];
  if (!cell) throw new TypeError(`${fn}: unknown mode '${String(mode)}' (expected one of ${Object.keys(CELLS).join(', ')})`);
  return cell;
}

/**
 * The gradient buffers of an op's inputs that want one — x (unless its embedding lookup takes the
 * gradient instead), h0, c0 — and `accumulate()` to hand them to the tape once they are filled.
 */
function inputGrads(x: Tensor, lookup: EmbeddingLookup | null, h0: Tensor | null, c0: Tensor | null) {
  const be = x.backend;
  const dx = x.requiresGrad && !lookup ? be.alloc(x.size, x.dtype) : null;
  const dh0 = h0?.requiresGrad ? be.alloc(h0.size, x.dtype) : null;
  const dc0 = c0?.requiresGrad ? be.alloc(c0.size, x.dtype) : null;
  return {
    dx, dh0, dc0,
    // the lookup's weight gets gradient only where x was recorded from it (as without fusion)
    emb: lookup && x.requiresGrad ? lookup : null,
    accumulate(): void {
      if (dx) accumulateGrad(x, dx, true);
      if (dh0 && h0) accumulateGrad(h0, dh0, true);
      if (dc0 && c0) accumulateGrad(c0, dc0, true);
    },
  };
}

function directionWeights(p: DirectionParams): DirectionWeights {
  return { wIh: p.weightIh.storage, wHh: p.weightHh.storage, bIh: p.biasIh?.storage ?? null, bHh: p.biasHh?.storage ?? null };
}

/** Storage the caller will fill completely before reading (Backend.allocUninit where there is one). */
function allocUninit(be: Backend, n: number, dtype: DType): Storage {
  return be.allocUninit?.(n, dtype) ?? be.alloc(n, dtype);
}

/**
 * Give an op's internal buffers back to the backend as soon as their last use is over (the
 * workspace after backward, or after forward when nothing will backpropagate), instead of leaving
 * tens of MiB per step to the garbage collector. Aliased entries are released once.
 */
function releaseAll(be: Backend, bufs: readonly (Storage | null)[]): void {
  if (!be.release) return;
  for (const b of new Set(bufs)) if (b) be.release(b);
}

/** A direction's BPTT scratch, with the gradient into its final state (at state offset `off` of dhN/dcN) in place. */
function newScratch(be: Backend, cell: CellSpec, dims: LayerDims, dtype: DType, dhN: Storage | null, dcN: Storage | null, off: number): BackwardScratch {
  const { T, B, H, G } = dims;
  const BH = B * H;
  // every step writes its rows of dGx / dGh, masked rows included (as zeros)
  const dgx = allocUninit(be, T * B * G * H, dtype);
  const sc: BackwardScratch = {
    dgx,
    dgh: cell.foldRecurrentBias ? dgx : allocUninit(be, T * B * G * H, dtype),
    dh: be.alloc(BH, dtype),
    dhPrev: be.alloc(BH, dtype),
    dc: cell.hasCell ? be.alloc(BH, dtype) : null,
    dcPrev: cell.hasCell ? be.alloc(BH, dtype) : null,
  };
  if (dhN) be.copy(dhN, off, sc.dh, 0, BH);
  if (dcN && sc.dc) be.copy(dcN, off, sc.dc, 0, BH);
  return sc;
}

/** BPTT: walk the steps in reverse processing order (or let the backend run the loop). */
function bptt(be: Backend, cell: CellSpec, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): void {
  if (cell.fusedSteps && be.recurrentBackward?.(cell.fusedSteps, dims, w, ws, sc, dy, dyCol, dyStride)) return;
  for (let s = dims.T - 1; s >= 0; s--) {
    const t = ws.reverse ? dims.T - 1 - s : s;
    cell.backwardStep(be, w, ws, sc, dims, t, dy, dyCol, dyStride);
    [sc.dh, sc.dhPrev] = [sc.dhPrev, sc.dh];
    if (sc.dc && sc.dcPrev) [sc.dc, sc.dcPrev] = [sc.dcPrev, sc.dc];
  }
}

/**
 * After BPTT: the gradient into the initial state (at state offset `off` of dh0/dc0), the weight
 * gradients — one GEMM each over all T·B rows (for an embedding input, over its V rows) — and
 * dX += dGx · W_ih into dx (when given). Releases the scratch.
 */
function directionGrads(
  be: Backend, cell: CellSpec, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, p: DirectionParams,
  x: Storage, dtype: DType, lookup: EmbeddingLookup | null, emb: EmbeddingLookup | null,
  dx: Storage | null, dh0: Storage | null, dc0: Storage | null, off: number,
): void {
  const { T, B, I, H, G } = dims;
  const GH = G * H;
  const BH = B * H;
  if (dh0) be.copy(sc.dh, 0, dh0, off, BH);
  if (dc0 && sc.dc) be.copy(sc.dc, 0, dc0, off, BH);
  const prevBase = ws.reverse ? BH : 0; // H_prev for t = 0…T−1 (see workspace.ts)
  if (p.weightHh.requiresGrad) {
    be.gemm(true, false, GH, H, T * B, 1, sc.dgh, 0, GH, ws.hs, prevBase, H, 1, gradBuffer(p.weightHh), 0, H);
  }
  if (p.biasHh?.requiresGrad && !cell.foldRecurrentBias) be.sumRowsBackward(T * B, GH, sc.dgh, 0, gradBuffer(p.biasHh), 0);
  let rows = T * B, dIn = sc.dgx, input = x;
  if (lookup) {
    rows = lookup.weight.shape[0];
    dIn = be.alloc(rows * GH, dtype);
    be.scatterAddRows(GH, sc.dgx, lookup.ids, dIn);
    input = lookup.table;
  }
  if (p.weightIh.requiresGrad) be.gemm(true, false, GH, I, rows, 1, dIn, 0, GH, input, 0, I, 1, gradBuffer(p.weightIh), 0, I);
  if (p.biasIh?.requiresGrad) be.sumRowsBackward(rows, GH, dIn, 0, gradBuffer(p.biasIh), 0);
  // Folded b_hh received the same gradient as b_ih (dGh aliases dGx).
  if (p.biasHh?.requiresGrad && cell.foldRecurrentBias) be.sumRowsBackward(rows, GH, dIn, 0, gradBuffer(p.biasHh), 0);
  // dX += dGx · W_ih, or dE += dP · W_ih with the padding row left out
  if (dx) be.gemm(false, false, T * B, I, GH, 1, sc.dgx, 0, GH, w.wIh, 0, I, 1, dx, 0, I);
  if (emb?.weight.requiresGrad) {
    if (emb.paddingIdx !== null) be.fill(dIn, 0, emb.paddingIdx * GH, GH);
    be.gemm(false, false, rows, I, GH, 1, dIn, 0, GH, w.wIh, 0, I, 1, gradBuffer(emb.weight), 0, I);
  }
  releaseAll(be, [sc.dgx, sc.dgh, sc.dh, sc.dhPrev, sc.dc, sc.dcPrev, dIn]);
}
