/**
 * The per-direction workspace of a fused recurrent layer: everything forward saves for BPTT, in a
 * handful of flat buffers allocated once per call (llm.c style), and the time-indexing convention
 * shared by the cells.
 *
 * Time indexing. `hs` holds T+1 states [T+1, B, H]. For the forward direction the state before
 * time t is hs[t] and after it hs[t+1] (hs[0] = h0, final = hs[T]); for the reverse direction the
 * state before time t is hs[t+1] and after it hs[t] (hs[T] = h0, final = hs[0]). So in both
 * directions the "previous states" of t = 0 … T−1 are one contiguous [T·B, H] block — which is what
 * lets the recurrent weight gradient be ONE GEMM over all steps (dW_hh = dGᵀ · H_prev).
 * `stepOffsets` (in the backend interface, so that backend time loops share it) states it in code.
 */
import { stepOffsets, type Backend, type CellStep, type DirectionWeights, type DirectionWorkspace, type LayerDims } from '../backend/interface.ts';

export type { BackwardScratch, DirectionWeights, DirectionWorkspace, LayerDims } from '../backend/interface.ts';

/** Offsets of step t in ws (elements): states before/after it, and its gate block. */
export function stateOffsets(ws: DirectionWorkspace, dims: LayerDims, t: number): { prev: number; next: number; gates: number } {
  return stepOffsets(dims, ws.reverse, t);
}

export function cellStep(dims: LayerDims, t: number): CellStep {
  return { B: dims.B, H: dims.H, t, lengths: dims.lengths };
}

/**
 * gh_t = h_{t−1} · W_hhᵀ + b_hh into step t's [B, G·H] block of ws.gh, for the cells that keep the
 * recurrent products apart (foldRecurrentBias false: their gate multiplies gh_n).
 */
export function recurrentProducts(be: Backend, w: DirectionWeights, ws: DirectionWorkspace, dims: LayerDims, t: number): void {
  const { B, H, G } = dims;
  const GH = G * H;
  const { prev, gates } = stepOffsets(dims, ws.reverse, t);
  be.gemm(false, true, B, GH, H, 1, ws.hs, prev, H, w.wHh, 0, H, 0, ws.gh!, gates, GH);
  if (w.bHh) be.addRowVector(B, GH, w.bHh, 0, ws.gh!, gates);
}
