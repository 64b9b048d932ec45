/**
 * matmul and linear. Batched operands are flattened onto one GEMM where the layout allows
 * ([..., M, K] · [K, N] is one [(...·M), K] · [K, N] GEMM), and loop over the batch otherwise.
 */
import type { Storage } from '../../backend/interface.ts';
import { Tensor, shapeStr } from '../../tensor/tensor.ts';
import { accumulateGrad, needsGrad, record } from '../tape.ts';
import { newLike, sameBackendAndDType } from './util.ts';

/**
 * When t wants a gradient: `fill` writes it into a fresh storage of t's shape, which t.grad then
 * adopts (or adds, when t already has one).
 */
function addGrad(t: Tensor, fill: (d: Storage) => void): void {
  if (!t.requiresGrad) return;
  const d = newLike(t);
  fill(d.storage);
  accumulateGrad(t, d.storage, true);
}

/**
 * a [..., M, K] · b [K, N] → [..., M, N], or a [..., M, K] · b [..., K, N] with equal batch dims.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  sameBackendAndDType('matmul', a, b);
  if (a.ndim < 2 || b.ndim < 2) throw new RangeError(`matmul: operands need rank ≥ 2, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const K = a.shape[a.ndim - 1];
  const M = a.shape[a.ndim - 2];
  const N = b.shape[b.ndim - 1];
  if (b.shape[b.ndim - 2] !== K) throw new RangeError(`matmul: inner dimensions differ: ${shapeStr(a.shape)} · ${shapeStr(b.shape)} (${K} vs ${b.shape[b.ndim - 2]})`);
  const be = a.backend;
  const batchA = a.shape.slice(0, -2);
  if (b.ndim === 2) {
    const rows = a.size / K;
    const out = newLike(a, [...batchA, M, N]);
    be.gemm(false, false, rows, N, K, 1, a.storage, 0, K, b.storage, 0, N, 0, out.storage, 0, N);
    if (needsGrad(a, b)) {
      record('matmul', [a, b], [out], () => {
        const g = out.grad!.storage;
        // dA = dC · Bᵀ
        addGrad(a, (da) => be.gemm(false, true, rows, K, N, 1, g, 0, N, b.storage, 0, N, 0, da, 0, K));
        // dB = Aᵀ · dC
        addGrad(b, (db) => be.gemm(true, false, K, N, rows, 1, a.storage, 0, K, g, 0, N, 0, db, 0, N));
      });
    }
    return out;
  }
  const batchB = b.shape.slice(0, -2);
  if (batchA.length !== batchB.length || batchA.some((s, i) => s !== batchB[i])) {
    throw new RangeError(`matmul: batch dimensions differ: ${shapeStr(a.shape)} · ${shapeStr(b.shape)}`);
  }
  const nb = a.size / (M * K);
  const out = newLike(a, [...batchA, M, N]);
  for (let i = 0; i < nb; i++) be.gemm(false, false, M, N, K, 1, a.storage, i * M * K, K, b.storage, i * K * N, N, 0, out.storage, i * M * N, N);
  if (needsGrad(a, b)) {
    record('matmul', [a, b], [out], () => {
      const g = out.grad!.storage;
      const da = a.requiresGrad ? newLike(a) : null;
      const db = b.requiresGrad ? newLike(b) : null;
      for (let i = 0; i < nb; i++) {
        if (da) be.gemm(false, true, M, K, N, 1, g, i * M * N, N, b.storage, i * K * N, N, 0, da.storage, i * M * K, K);
        if (db) be.gemm(true, false, K, N, M, 1, a.storage, i * M * K, K, g, i * M * N, N, 0, db.storage, i * K * N, N);
      }
      if (da) accumulateGrad(a, da.storage, true);
      if (db) accumulateGrad(b, db.storage, true);
    });
  }
  return out;
}

/**
 * y = x · Wᵀ + b, PyTorch's `F.linear`: x [..., I], weight [O, I], bias [O] (optional).
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  sameBackendAndDType('linear', x, weight, ...(bias ? [bias] : []));
  if (weight.ndim !== 2) throw new RangeError(`linear: weight must be [out, in], got ${shapeStr(weight.shape)}`);
  const [O, I] = weight.shape;
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== I) throw new RangeError(`linear: input's last dimension must be ${I} (weight ${shapeStr(weight.shape)}), got input ${shapeStr(x.shape)}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) throw new RangeError(`linear: bias must be [${O}], got ${shapeStr(bias.shape)}`);
  const rows = x.size / I;
  const be = x.backend;
  const out = newLike(x, [...x.shape.slice(0, -1), O]);
  be.gemm(false, true, rows, O, I, 1, x.storage, 0, I, weight.storage, 0, I, 0, out.storage, 0, O);
  if (bias) be.addRowVector(rows, O, bias.storage, 0, out.storage, 0);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  if (needsGrad(...inputs)) {
    record('linear', inputs, [out], () => {
      const g = out.grad!.storage;
      // dx = dy · W
      addGrad(x, (dx) => be.gemm(false, false, rows, I, O, 1, g, 0, O, weight.storage, 0, I, 0, dx, 0, I));
      // dW = dyᵀ · x
      addGrad(weight, (dw) => be.gemm(true, false, O, I, rows, 1, g, 0, O, x.storage, 0, I, 0, dw, 0, I));
      // db = Σ_rows dy
      if (bias) addGrad(bias, (db) => be.sumRowsBackward(rows, O, g, 0, db, 0));
    });
  }
  return out;
}
