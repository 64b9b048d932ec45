/**
 * The per-direction workspace of a fused recurrent layer: everything forward saves for BPTT, in a
 * handful of flat buffers allocated once per call (llm.c style), and the time-indexing convention
 * shared by the three cells.
 *
 * Time indexing. `hs` holds T+1 states [T+1, B, H]. For the forward direction the state before
 * time t is hs[t] and after it hs[t+1] (hs[0] = h0, final = hs[T]); for the reverse direction the
 * state before time t is hs[t+1] and after it hs[t] (hs[T] = h0, final = hs[0]). So in both
 * directions the "previous states" of t = 0 … T−1 are one contiguous [T·B, H] block — which is what
 * lets the recurrent weight gradient be ONE GEMM over all steps (dW_hh = dGᵀ · H_prev).
 */
import type { Backend, CellStep, Storage } from '../backend/interface.ts';

export type RecurrentMode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';

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
  /** [T, B, 3H] GRU recurrent products h·W_hhᵀ + b_hh (GRU only). */
  gh: Storage | null;
}

/** Per-call constants of a layer. */
export interface LayerDims {
  T: number;
  B: number;
  I: number;
  H: number;
  /** Gate multiplier: 1 (RNN), 4 (LSTM), 3 (GRU). */
  G: number;
  lengths: Int32Array | null;
}

/** Offset of the state before time t, and of the state after it, in `hs`/`cs`. */
export function stateOffsets(ws: DirectionWorkspace, dims: LayerDims, t: number): { prev: number; next: number } {
  const BH = dims.B * dims.H;
  return ws.reverse ? { prev: (t + 1) * BH, next: t * BH } : { prev: t * BH, next: (t + 1) * BH };
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

/** The step-level contract each cell file implements: forward and BPTT for one time step. */
export interface CellSpec {
  mode: RecurrentMode;
  /** Gate multiplier G. */
  G: number;
  hasCell: boolean;
  /** Whether b_hh is added into gx up front (true for RNN/LSTM; GRU needs it inside r·(W_hn h + b_hn)). */
  foldRecurrentBias: boolean;
  /**
   * One forward step at time t: recurrent GEMM + fused gate kernel; writes the next state and the
   * output y[t, :, yCol : yCol+H] (row stride yStride) when y is given.
   */
  forwardStep(be: Backend, w: DirectionWeights, ws: DirectionWorkspace, dims: LayerDims, t: number, y: Storage | null, yCol: number, yStride: number): void;
  /**
   * One BPTT step at time t: reads sc.dh (+ dy) and sc.dc, writes sc.dgx[t] / sc.dgh[t], and
   * OVERWRITES sc.dhPrev / sc.dcPrev with the gradient into the previous state (including the
   * recurrent GEMM dgh·W_hh). The caller swaps the ping-pong buffers.
   */
  backwardStep(be: Backend, w: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dims: LayerDims, t: number, dy: Storage | null, dyCol: number, dyStride: number): void;
}

export function cellStep(dims: LayerDims, t: number): CellStep {
  return { B: dims.B, H: dims.H, t, lengths: dims.lengths };
}
