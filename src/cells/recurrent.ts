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
 * `nn` module, each layer being one such op.
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
  const cell = CELLS[mode];
  if (!cell) throw new TypeError(`recurrentLayer: unknown mode '${String(mode)}' (expected one of ${Object.keys(CELLS).join(', ')})`);
  const D = params.length;
  if (D !== 1 && D !== 2) throw new RangeError(`recurrentLayer: expected 1 or 2 directions, got ${D}`);
  if (x.ndim !== 3) throw new RangeError(`recurrentLayer: input must be [T, B, I], got ${shapeStr(x.shape)}`);
  const [T, B, I] = x.shape;
  const H = params[0].weightHh.shape[1];
  const G = cell.G;
  const GH = G * H;
  const all: Tensor[] = [x];
  for (const [d, p] of params.entries()) {
    const sfx = d === 1 ? '_reverse' : '';
    const expect = (t: Tensor | null, shape: number[], name: string): void => {
      if (t && (t.ndim !== shape.length || t.shape.some((s, i) => s !== shape[i]))) {
        throw new RangeError(`recurrentLayer (${mode}): ${name}${sfx} must be ${shapeStr(shape)}, got ${shapeStr(t.shape)}`);
      }
    };
    expect(p.weightIh, [GH, I], 'weight_ih');
    expect(p.weightHh, [GH, H], 'weight_hh');
    expect(p.biasIh, [GH], 'bias_ih');
    expect(p.biasHh, [GH], 'bias_hh');
    all.push(p.weightIh, p.weightHh);
    if (p.biasIh) all.push(p.biasIh);
    if (p.biasHh) all.push(p.biasHh);
  }
  for (const [s, name] of [[h0, 'h0'], [c0, 'c0']] as const) {
    if (!s) continue;
    if (s.ndim !== 3 || s.shape[0] !== D || s.shape[1] !== B || s.shape[2] !== H) {
      throw new RangeError(`recurrentLayer (${mode}): initial state ${name} must be [${D}, ${B}, ${H}], got ${shapeStr(s.shape)}`);
    }
    all.push(s);
  }
  if (c0 && !cell.hasCell) throw new TypeError(`recurrentLayer: ${mode} has no cell state, but c0 was given`);
  sameBackendAndDType(`recurrentLayer (${mode})`, ...all);
  if (lengths && lengths.length !== B) throw new RangeError(`recurrentLayer: ${lengths.length} lengths for batch ${B}`);

  const be = x.backend;
  const dtype = x.dtype;
  const dims: LayerDims = { T, B, I, H, G, lengths };
  // Project the embedding table instead of the rows when x is an embedding lookup (see above).
  const lookup = x.lookup && x.lookup.ids.length === T * B && x.lookup.weight.shape[1] === I ? x.lookup : null;
  if (lookup) all.push(lookup.weight); // its gradient comes from this op: order it after us on the tape
  const BH = B * H;
  // Buffers every element of which is written before it is read (each step writes its rows of y,
  // the states and the gates; the GEMMs write with beta = 0): no zeroing needed.
  const empty = (n: number): Storage => allocUninit(be, n, dtype);
  const y = new Tensor(empty(T * B * D * H), [T, B, D * H]);
  const hN = new Tensor(empty(D * BH), [D, B, H]);
  const cN = cell.hasCell ? new Tensor(empty(D * BH), [D, B, H]) : null;

  const weights: DirectionWeights[] = params.map((p) => ({
    wIh: p.weightIh.storage, wHh: p.weightHh.storage, bIh: p.biasIh?.storage ?? null, bHh: p.biasHh?.storage ?? null,
  }));
  const workspaces: DirectionWorkspace[] = [];
  for (let d = 0; d < D; d++) {
    const w = weights[d];
    const ws: DirectionWorkspace = {
      reverse: params[d].reverse ?? d === 1,
      hs: empty((T + 1) * BH),
      cs: cell.hasCell ? empty((T + 1) * BH) : null,
      gx: empty(T * B * GH),
      gh: cell.foldRecurrentBias ? null : empty(T * B * GH),
    };
    // Gx = X · W_ihᵀ + b_ih (+ b_hh), or from the projected embedding table
    const rows = lookup ? lookup.weight.shape[0] : T * B;
    const proj = lookup ? empty(rows * GH) : ws.gx;
    be.gemm(false, true, rows, GH, I, 1, lookup ? lookup.table : x.storage, 0, I, w.wIh, 0, I, 0, proj, 0, GH);
    if (w.bIh) be.addRowVector(rows, GH, w.bIh, 0, proj, 0);
    if (w.bHh && cell.foldRecurrentBias) be.addRowVector(rows, GH, w.bHh, 0, proj, 0);
    if (lookup) {
      be.gatherRows(GH, proj, lookup.ids, ws.gx);
      be.release?.(proj);
    }
    // initial state
    const init = ws.reverse ? T * BH : 0;
    if (h0) be.copy(h0.storage, d * BH, ws.hs, init, BH);
    else be.fill(ws.hs, 0, init, BH);
    if (c0 && ws.cs) be.copy(c0.storage, d * BH, ws.cs, init, BH);
    else if (ws.cs) be.fill(ws.cs, 0, init, BH);
    // The backend's own time loop where it has one, else one cell step at a time.
    if (!(cell.fusedSteps && be.recurrentForward?.(cell.fusedSteps, dims, w, ws, y.storage, d * H, D * H))) {
      for (let s = 0; s < T; s++) {
        const t = ws.reverse ? T - 1 - s : s;
        cell.forwardStep(be, w, ws, dims, t, y.storage, d * H, D * H);
      }
    }
    const fin = ws.reverse ? 0 : T * BH;
    be.copy(ws.hs, fin, hN.storage, d * BH, BH);
    if (cN && ws.cs) be.copy(ws.cs, fin, cN.storage, d * BH, BH);
    workspaces.push(ws);
  }

  if (needsGrad(...all)) {
    const outputs = cN ? [y, hN, cN] : [y, hN];
    record(mode, all, outputs, () => {
      const dy = y.grad?.storage ?? null;
      const dhN = hN.grad?.storage ?? null;
      const dcN = cN?.grad?.storage ?? null;
      const dx = x.requiresGrad && !lookup ? be.alloc(x.size, dtype) : null;
      // The lookup's weight gets gradient only where x was recorded from it (as without fusion).
      const emb = lookup && x.requiresGrad ? lookup : null;
      const dh0 = h0?.requiresGrad ? be.alloc(h0.size, dtype) : null;
      const dc0 = c0?.requiresGrad ? be.alloc(c0.size, dtype) : null;
      for (let d = 0; d < D; d++) {
        backwardDirection(be, cell, dims, weights[d], workspaces[d], params[d], x, lookup, emb, dy, d * H, D * H, dhN, dcN, d * BH, dx, dh0, dc0);
      }
      if (dx) accumulateGrad(x, dx, true);
      if (dh0 && h0) accumulateGrad(h0, dh0, true);
      if (dc0 && c0) accumulateGrad(c0, dc0, true);
      releaseAll(be, workspaces.flatMap((ws) => [ws.hs, ws.cs, ws.gx, ws.gh]));
    });
  } else {
    releaseAll(be, workspaces.flatMap((ws) => [ws.hs, ws.cs, ws.gx, ws.gh]));
  }
  return { y, hN, cN };
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

function backwardDirection(
  be: Backend, cell: CellSpec, dims: LayerDims, w: DirectionWeights, ws: DirectionWorkspace, p: DirectionParams,
  x: Tensor, lookup: EmbeddingLookup | null, emb: EmbeddingLookup | null, dy: Storage | null, dyCol: number, dyStride: number,
  dhN: Storage | null, dcN: Storage | null, stateOff: number,
  dx: Storage | null, dh0: Storage | null, dc0: Storage | null,
): void {
  const { T, B, I, H, G } = dims;
  const GH = G * H;
  const BH = B * H;
  const dtype = x.dtype;
  // every step writes its rows of dGx / dGh, masked rows included (as zeros)
  const dgx = allocUninit(be, T * B * GH, dtype);
  const sc: BackwardScratch = {
    dgx,
    dgh: cell.foldRecurrentBias ? dgx : allocUninit(be, T * B * GH, dtype),
    dh: be.alloc(BH, dtype),
    dhPrev: be.alloc(BH, dtype),
    dc: cell.hasCell ? be.alloc(BH, dtype) : null,
    dcPrev: cell.hasCell ? be.alloc(BH, dtype) : null,
  };
  if (dhN) be.copy(dhN, stateOff, sc.dh, 0, BH);
  if (dcN && sc.dc) be.copy(dcN, stateOff, sc.dc, 0, BH);
  // BPTT: walk the steps in reverse processing order (or let the backend run the loop).
  if (!(cell.fusedSteps && be.recurrentBackward?.(cell.fusedSteps, dims, w, ws, sc, dy, dyCol, dyStride))) {
    for (let s = T - 1; s >= 0; s--) {
      const t = ws.reverse ? T - 1 - s : s;
      cell.backwardStep(be, w, ws, sc, dims, t, dy, dyCol, dyStride);
      [sc.dh, sc.dhPrev] = [sc.dhPrev, sc.dh];
      if (sc.dc && sc.dcPrev) [sc.dc, sc.dcPrev] = [sc.dcPrev, sc.dc];
    }
  }
  // Gradient into the initial state.
  if (dh0) be.copy(sc.dh, 0, dh0, stateOff, BH);
  if (dc0 && sc.dc) be.copy(sc.dc, 0, dc0, stateOff, BH);
  // Weight gradients: one GEMM each over all T·B rows (for an embedding input, over its V rows).
  const prevBase = ws.reverse ? BH : 0; // H_prev for t = 0…T−1 (see workspace.ts)
  if (p.weightHh.requiresGrad) {
    be.gemm(true, false, GH, H, T * B, 1, sc.dgh, 0, GH, ws.hs, prevBase, H, 1, gradBuffer(p.weightHh), 0, H);
  }
  if (p.biasHh?.requiresGrad && !cell.foldRecurrentBias) be.sumRowsBackward(T * B, GH, sc.dgh, 0, gradBuffer(p.biasHh), 0);
  let rows = T * B, dIn = sc.dgx, input = x.storage;
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
