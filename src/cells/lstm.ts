/**
 * LSTM cell, PyTorch's `nn.LSTM` (gate order i, f, g, o in W_ih, W_hh, b_ih, b_hh):
 *
 *   [a_i a_f a_g a_o] = x_t · W_ihᵀ + b_ih + h_{t−1} · W_hhᵀ + b_hh
 *   i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
 *   c_t = f ⊙ c_{t−1} + i ⊙ g
 *   h_t = o ⊙ tanh(c_t)
 *
 * Forward saves the activated gates (in place of the pre-activations) and every c_t.
 * BPTT per step (dh = dh_t + dy_t, dc = dc_t):
 *   dc += dh ⊙ o ⊙ (1 − tanh²c_t);  do = dh ⊙ tanh c_t
 *   di = dc ⊙ g;  df = dc ⊙ c_{t−1};  dg = dc ⊙ i;  dc_{t−1} = dc ⊙ f
 *   da = [di·i(1−i), df·f(1−f), dg·(1−g²), do·o(1−o)];   dh_{t−1} = da · W_hh
 */
import type { CellSpec } from './spec.ts';
import { cellStep, stateOffsets } from './workspace.ts';

export const LSTM: CellSpec = {
  mode: 'LSTM',
  G: 4,
  gates: ['i', 'f', 'g', 'o'],
  onnx: { name: 'LSTM', gates: ['i', 'o', 'f', 'g'] }, // ONNX names them i, o, f, c
  keras: { name: 'LSTM', gates: ['i', 'f', 'g', 'o'] }, // Keras: i, f, c, o
  hasCell: true,
  foldRecurrentBias: true,
  fusedSteps: 'lstm',

  forwardStep(be, w, ws, dims, t, y, yCol, yStride) {
    const { B, H } = dims;
    const GH = 4 * H;
    const { prev, next, gates: g } = stateOffsets(ws, dims, t);
    // a_t = gx_t + h_{t−1} · W_hhᵀ   (all four gates in one GEMM)
    be.gemm(false, true, B, GH, H, 1, ws.hs, prev, H, w.wHh, 0, H, 1, ws.gx, g, GH);
    // gates, c_t, h_t in one fused kernel
    be.lstmCellForward(cellStep(dims, t), ws.gx, g, ws.hs, prev, ws.cs!, prev, ws.cs!, next, ws.hs, next, y, t * B * yStride + yCol, yStride);
  },

  backwardStep(be, w, ws, sc, dims, t, dy, dyCol, dyStride) {
    const { B, H } = dims;
    const GH = 4 * H;
    const { prev, next, gates: g } = stateOffsets(ws, dims, t);
    be.fill(sc.dhPrev, 0, 0, B * H);
    be.lstmCellBackward(cellStep(dims, t), ws.gx, g, ws.cs!, prev, ws.cs!, next, sc.dh, 0, dy, t * B * dyStride + dyCol, dyStride, sc.dc!, 0, sc.dgx, g, sc.dcPrev!, 0, sc.dhPrev, 0);
    // dh_{t−1} += da_t · W_hh
    be.gemm(false, false, B, H, GH, 1, sc.dgx, g, GH, w.wHh, 0, H, 1, sc.dhPrev, 0, H);
  },
};
