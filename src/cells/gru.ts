/**
 * GRU cell, PyTorch's `nn.GRU` (gate order r, z, n; reset applied after the recurrent product,
 * i.e. ONNX `linear_before_reset = 1`):
 *
 *   gx = x_t · W_ihᵀ + b_ih,   gh = h_{t−1} · W_hhᵀ + b_hh        (both [B, 3H])
 *   r = σ(gx_r + gh_r)   z = σ(gx_z + gh_z)   n = tanh(gx_n + r ⊙ gh_n)
 *   h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
 *
 * Applying r after the product lets one GEMM cover all three recurrent gates. Forward saves
 * r, z, n (in place of gx) and gh (for gh_n). BPTT per step (dh = dh_t + dy_t):
 *   dn = dh(1 − z);  dz = dh(h_{t−1} − n);  dh_{t−1} = dh·z
 *   da_n = dn(1 − n²);  da_r = da_n·gh_n·r(1 − r);  da_z = dz·z(1 − z)
 *   dgx = [da_r, da_z, da_n];  dgh = [da_r, da_z, da_n·r];   dh_{t−1} += dgh · W_hh
 */
import type { CellSpec } from './spec.ts';
import { cellStep, recurrentProducts, stateOffsets } from './workspace.ts';

export const GRU: CellSpec = {
  mode: 'GRU',
  G: 3,
  gates: ['r', 'z', 'n'],
  onnx: { name: 'GRU', gates: ['z', 'r', 'n'] }, // ONNX names them z, r, h
  keras: { name: 'GRU', gates: ['z', 'r', 'n'] }, // Keras: z, r, h
  hasCell: false,
  foldRecurrentBias: false,
  fusedSteps: 'gru',

  forwardStep(be, w, ws, dims, t, y, yCol, yStride) {
    const { B } = dims;
    const { prev, next, gates: g } = stateOffsets(ws, dims, t);
    recurrentProducts(be, w, ws, dims, t); // gh = h_{t−1} · W_hhᵀ + b_hh
    be.gruCellForward(cellStep(dims, t), ws.gx, g, ws.gh!, g, ws.hs, prev, ws.hs, next, y, t * B * yStride + yCol, yStride);
  },

  backwardStep(be, w, ws, sc, dims, t, dy, dyCol, dyStride) {
    const { B, H } = dims;
    const GH = 3 * H;
    const { prev, gates: g } = stateOffsets(ws, dims, t);
    be.fill(sc.dhPrev, 0, 0, B * H);
    be.gruCellBackward(cellStep(dims, t), ws.gx, g, ws.gh!, g, ws.hs, prev, sc.dh, 0, dy, t * B * dyStride + dyCol, dyStride, sc.dgx, g, sc.dgh, g, sc.dhPrev, 0);
    // dh_{t−1} += dgh · W_hh
    be.gemm(false, false, B, H, GH, 1, sc.dgh, g, GH, w.wHh, 0, H, 1, sc.dhPrev, 0, H);
  },
};
