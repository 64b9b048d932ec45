/**
 * Minimal gated unit (MGU; Zhou et al. 2016): a GRU with one gate f doing the work of both r and z.
 * Written in GRU's PyTorch form (the gate applied after the recurrent product, so one GEMM covers
 * both recurrent blocks; gate order f, n):
 *
 *   gx = x_t · W_ihᵀ + b_ih,   gh = h_{t−1} · W_hhᵀ + b_hh        (both [B, 2H])
 *   f = σ(gx_f + gh_f)   n = tanh(gx_n + f ⊙ gh_n)
 *   h_t = (1 − f) ⊙ h_{t−1} + f ⊙ n
 *
 * Forward saves f, n (in place of gx) and gh (for gh_n). BPTT per step (dh = dh_t + dy_t):
 *   dn = dh·f;  df = dh(n − h_{t−1});  dh_{t−1} = dh(1 − f)
 *   da_n = dn(1 − n²);  df += da_n·gh_n;  da_f = df·f(1 − f)
 *   dgx = [da_f, da_n];  dgh = [da_f, da_n·f];   dh_{t−1} += dgh · W_hh
 *
 * Reference steps only: the gate math runs on the host through read/write of the step's blocks
 * (the GEMMs still run on the backend), so it works on every backend but no backend has a fused
 * kernel for it (fusedSteps: null) — it is here to keep the cell record honest, not for speed.
 * Masking as in CellStep: an inactive row keeps h, outputs 0, and passes dh straight through.
 */
import type { CellSpec } from './spec.ts';
import { recurrentProducts, stateOffsets, type LayerDims } from './workspace.ts';

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

function active(dims: LayerDims, t: number, b: number): boolean {
  return dims.lengths === null || t < dims.lengths[b];
}

/** Row b of step t of a strided [T, B, stride] output (columns col … col+H−1). */
function rowOffset(dims: LayerDims, t: number, b: number, col: number, stride: number): number {
  return (t * dims.B + b) * stride + col;
}

export const MGU: CellSpec = {
  mode: 'MGU',
  G: 2,
  gates: ['f', 'n'],
  hasCell: false,
  foldRecurrentBias: false,
  fusedSteps: null,

  forwardStep(be, w, ws, dims, t, y, yCol, yStride) {
    const { B, H } = dims;
    const GH = 2 * H;
    const { prev, next, gates: g } = stateOffsets(ws, dims, t);
    recurrentProducts(be, w, ws, dims, t); // gh = h_{t−1} · W_hhᵀ + b_hh
    const gx = be.read(ws.gx, g, B * GH); // [B, 2H] → f, n
    const gh = be.read(ws.gh!, g, B * GH); // [B, 2H]
    const hPrev = be.read(ws.hs, prev, B * H); // [B, H]
    const h = new Float64Array(B * H); // [B, H]
    for (let b = 0; b < B; b++) {
      const row = new Float64Array(H); // y[t, b, yCol…]
      if (!active(dims, t, b)) {
        for (let j = 0; j < H; j++) h[b * H + j] = hPrev[b * H + j];
      } else {
        for (let j = 0; j < H; j++) {
          const fi = b * GH + j, ni = fi + H;
          const f = sigmoid(gx[fi] + gh[fi]);
          const n = Math.tanh(gx[ni] + f * gh[ni]);
          gx[fi] = f;
          gx[ni] = n;
          h[b * H + j] = row[j] = (1 - f) * hPrev[b * H + j] + f * n;
        }
      }
      if (y) be.write(y, row, rowOffset(dims, t, b, yCol, yStride));
    }
    be.write(ws.gx, gx, g);
    be.write(ws.hs, h, next);
  },

  backwardStep(be, w, ws, sc, dims, t, dy, dyCol, dyStride) {
    const { B, H } = dims;
    const GH = 2 * H;
    const { prev, gates: g } = stateOffsets(ws, dims, t);
    const gates = be.read(ws.gx, g, B * GH); // [B, 2H] saved f, n
    const gh = be.read(ws.gh!, g, B * GH); // [B, 2H]
    const hPrev = be.read(ws.hs, prev, B * H); // [B, H]
    const dh = be.read(sc.dh, 0, B * H); // [B, H]
    const dgx = new Float64Array(B * GH); // [B, 2H]
    const dgh = new Float64Array(B * GH); // [B, 2H]
    const dhPrev = new Float64Array(B * H); // [B, H]
    for (let b = 0; b < B; b++) {
      if (!active(dims, t, b)) {
        for (let j = 0; j < H; j++) dhPrev[b * H + j] = dh[b * H + j];
        continue;
      }
      const dyRow = dy ? be.read(dy, rowOffset(dims, t, b, dyCol, dyStride), H) : null;
      for (let j = 0; j < H; j++) {
        const fi = b * GH + j, ni = fi + H, hi = b * H + j;
        const f = gates[fi], n = gates[ni];
        const d = dh[hi] + (dyRow ? dyRow[j] : 0);
        // h_t = (1 − f) h_{t−1} + f n
        const dn = d * f;
        let df = d * (n - hPrev[hi]);
        dhPrev[hi] = d * (1 - f);
        // n = tanh(gx_n + f · gh_n)
        const daN = dn * (1 - n * n);
        df += daN * gh[ni];
        // f = σ(gx_f + gh_f)
        const daF = df * f * (1 - f);
        dgx[fi] = daF;
        dgx[ni] = daN;
        dgh[fi] = daF;
        dgh[ni] = daN * f;
      }
    }
    be.write(sc.dgx, dgx, g);
    be.write(sc.dgh, dgh, g);
    be.write(sc.dhPrev, dhPrev, 0);
    // dh_{t−1} += dgh · W_hh
    be.gemm(false, false, B, H, GH, 1, sc.dgh, g, GH, w.wHh, 0, H, 1, sc.dhPrev, 0, H);
  },
};

