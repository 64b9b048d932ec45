/**
 * Vanilla (Elman) RNN cell, PyTorch's `nn.RNN`:
 *
 *   h_t = act(x_t · W_ihᵀ + b_ih + h_{t−1} · W_hhᵀ + b_hh),   act ∈ {tanh, relu}
 *
 * Forward keeps only h_t (act' is a function of h: 1 − h² for tanh, [h > 0] for relu).
 * BPTT per step:  da_t = (dh_t + dy_t) ⊙ act'(h_t);   dh_{t−1} = da_t · W_hh.
 */
import type { Activation } from '../backend/interface.ts';
import type { CellSpec } from './spec.ts';
import { cellStep, stateOffsets } from './workspace.ts';

function rnnCell(act: Activation): CellSpec {
  return {
    mode: act === 'tanh' ? 'RNN_TANH' : 'RNN_RELU',
    G: 1,
    gates: ['h'],
    // ONNX's RNN op and Keras's SimpleRNN, one gate block: nothing to reorder
    onnx: { name: 'RNN', gates: ['h'] },
    keras: { name: 'SimpleRNN', gates: ['h'] },
    hasCell: false,
    foldRecurrentBias: true,
    fusedSteps: act === 'tanh' ? 'rnnTanh' : 'rnnRelu',

    forwardStep(be, w, ws, dims, t, y, yCol, yStride) {
      const { B, H } = dims;
      const { prev, next, gates: g } = stateOffsets(ws, dims, t);
      // a_t = gx_t + h_{t−1} · W_hhᵀ
      be.gemm(false, true, B, H, H, 1, ws.hs, prev, H, w.wHh, 0, H, 1, ws.gx, g, H);
      // h_t = act(a_t)
      be.rnnCellForward(cellStep(dims, t), act, ws.gx, g, ws.hs, prev, ws.hs, next, y, t * B * yStride + yCol, yStride);
    },

    backwardStep(be, w, ws, sc, dims, t, dy, dyCol, dyStride) {
      const { B, H } = dims;
      const { next, gates: g } = stateOffsets(ws, dims, t);
      be.fill(sc.dhPrev, 0, 0, B * H);
      // da_t = (dh_t + dy_t) ⊙ act'(h_t)
      be.rnnCellBackward(cellStep(dims, t), act, ws.hs, next, sc.dh, 0, dy, t * B * dyStride + dyCol, dyStride, sc.dgx, g, sc.dhPrev, 0);
      // dh_{t−1} += da_t · W_hh
      be.gemm(false, false, B, H, H, 1, sc.dgx, g, H, w.wHh, 0, H, 1, sc.dhPrev, 0, H);
    },
  };
}

export const RNN_TANH: CellSpec = rnnCell('tanh');
export const RNN_RELU: CellSpec = rnnCell('relu');
