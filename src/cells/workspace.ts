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
import type { Backend, BackwardScratch, CellStep, DirectionWeights, DirectionWorkspace, LayerDims, RecurrentMode, Storage } from '../backend/interface.ts';

export type { BackwardScratch, DirectionWeights, DirectionWorkspace, LayerDims, RecurrentMode } from '../backend/interface.ts';

/** Offset of the state before time t, and of the state after it, in `hs`/`cs`. */
export function stateOffsets(ws: DirectionWorkspace, dims: LayerDims, t: number): { prev: number; next: number } {
  const BH = dims.B * dims.H;
  return ws.reverse ? { prev: (t + 1) * BH, next: t * BH } : { prev: t * BH, next: (t + 1) * BH };
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
