/**
 * Initialisers (in place, on a tensor's values), all drawing from the seeded RNG. PyTorch's
 * defaults are named where they are used: Linear and the recurrent layers use U(−1/√fan, 1/√fan),
 * Embedding uses N(0, 1).
 */
import { Rng, globalRng } from './rng.ts';
import type { Tensor } from './tensor.ts';

export function uniform_(t: Tensor, lo: number, hi: number, rng: Rng = globalRng): Tensor {
  const v = new Float64Array(t.size);
  for (let i = 0; i < v.length; i++) v[i] = rng.uniform(lo, hi);
  t.backend.write(t.storage, v);
  return t;
}

export function normal_(t: Tensor, mean = 0, std = 1, rng: Rng = globalRng): Tensor {
  const v = new Float64Array(t.size);
  for (let i = 0; i < v.length; i++) v[i] = rng.normal(mean, std);
  t.backend.write(t.storage, v);
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  t.backend.fill(t.storage, value, 0, t.size);
  return t;
}

/** Xavier/Glorot uniform for a [fanOut, fanIn] matrix. */
export function xavierUniform_(t: Tensor, gain = 1, rng: Rng = globalRng): Tensor {
  const [fanOut, fanIn] = t.shape;
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -a, a, rng);
}

/**
 * Orthogonal rows (or columns, whichever is fewer) for a [rows, cols] block at a flat element
 * offset of `values`: QR of a Gaussian matrix by modified Gram–Schmidt, with the sign of R's
 * diagonal folded in so the distribution is uniform (Saxe et al. 2014; as torch.nn.init.orthogonal_).
 */
export function orthogonalBlock(values: Float64Array, offset: number, rows: number, cols: number, gain: number, rng: Rng): void {
  const transpose = rows < cols;
  const n = transpose ? cols : rows; // long side
  const m = transpose ? rows : cols; // short side: m orthonormal vectors of length n
  const q: Float64Array[] = [];
  for (let j = 0; j < m; j++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.normal();
    for (const u of q) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += u[i] * v[i];
      for (let i = 0; i < n; i++) v[i] -= dot * u[i];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < n; i++) v[i] /= norm;
    q.push(v);
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // column j of Q is q[j]; the matrix is Q (n×m) or its transpose
      values[offset + r * cols + c] = gain * (transpose ? q[r][c] : q[c][r]);
    }
  }
}

/** Orthogonal init of a 2-D tensor, or of each of `blocks` stacked [rows/blocks, cols] blocks. */
export function orthogonal_(t: Tensor, gain = 1, rng: Rng = globalRng, blocks = 1): Tensor {
  if (t.ndim !== 2) throw new RangeError(`orthogonal_: needs a 2-D tensor, got rank ${t.ndim}`);
  const [rows, cols] = t.shape;
  if (rows % blocks !== 0) throw new RangeError(`orthogonal_: ${rows} rows do not split into ${blocks} blocks`);
  const br = rows / blocks;
  const v = new Float64Array(t.size);
  for (let k = 0; k < blocks; k++) orthogonalBlock(v, k * br * cols, br, cols, gain, rng);
  t.backend.write(t.storage, v);
  return t;
}
