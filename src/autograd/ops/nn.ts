/**
 * Neural-network ops: softmax, log-softmax, fused softmax-cross-entropy (ignore index, per-row
 * mask, label smoothing), embedding gather, max pooling over time, dropout, and the
 * regression/binary losses.
 */
import type { Storage } from '../../backend/interface.ts';
import { LOOKUP_MAX_VOCAB_FRACTION, Tensor, shapeSize, shapeStr, type Shape } from '../../tensor/tensor.ts';
import { globalRng, type Rng } from '../../tensor/rng.ts';
import { accumulateGrad, isGradEnabled, needsGrad, record } from '../tape.ts';
import { newLike, sameBackendAndDType } from './util.ts';
import { add, mean, mul, softplus, square, sub, sum } from './elementwise.ts';
import { reshape } from './shape.ts';

function softmaxImpl(x: Tensor, log: boolean, axis: number): Tensor {
  if (axis !== -1 && axis !== x.ndim - 1) throw new RangeError(`softmax: only the last axis is supported (got axis ${axis} for shape ${shapeStr(x.shape)}); permute first`);
  const cols = x.shape[x.ndim - 1];
  const rows = cols === 0 ? 0 : x.size / cols;
  const out = newLike(x);
  x.backend.softmax(rows, cols, x.storage, out.storage, log);
  if (needsGrad(x)) {
    record(log ? 'logSoftmax' : 'softmax', [x], [out], () => {
      const dx = newLike(x);
      x.backend.softmaxBackward(rows, cols, out.storage, out.grad!.storage, dx.storage, log);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}

export const softmax = (x: Tensor, axis = -1): Tensor => softmaxImpl(x, false, axis);
export const logSoftmax = (x: Tensor, axis = -1): Tensor => softmaxImpl(x, true, axis);

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** Rows whose target equals this get no loss and no gradient (PyTorch default −100). */
  ignoreIndex?: number;
  /** Per-row weights (e.g. a padding mask of 0/1), one per target. */
  mask?: ArrayLike<number>;
  /** 'mean' divides by the total weight of counted rows (PyTorch semantics), 'sum' adds, 'none' returns per-row losses. */
  reduction?: Reduction;
  /**
   * ε in [0, 1): the target of a row is (1 − ε)·one-hot + ε/V, as PyTorch's `label_smoothing`; the
   * row's loss is (1 − ε)·(−log p_t) + ε·(−(1/V)·Σ_j log p_j).
   */
  labelSmoothing?: number;
}

function toInt32(name: string, v: ArrayLike<number>): Int32Array {
  if (v instanceof Int32Array) return v;
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const k = v[i];
    if (!Number.isInteger(k)) throw new TypeError(`${name}: index ${k} at position ${i} is not an integer`);
    out[i] = k;
  }
  return out;
}

/**
 * Fused softmax + cross-entropy. logits [..., V]; targets: one class index per row (product of the
 * leading dims). Returns a scalar (or [rows] for reduction 'none').
 */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number>, o: CrossEntropyOptions = {}): Tensor {
  const known = new Set(['ignoreIndex', 'mask', 'reduction', 'labelSmoothing']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new TypeError(`crossEntropy: unknown option '${k}' (expected ignoreIndex, mask, reduction, labelSmoothing)`);
  const eps = o.labelSmoothing ?? 0;
  if (!(typeof eps === 'number' && eps >= 0 && eps < 1)) throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1), got ${String(eps)}`);
  const ignoreIndex = o.ignoreIndex ?? -100;
  const reduction = o.reduction ?? 'mean';
  if (!['mean', 'sum', 'none'].includes(reduction)) throw new TypeError(`crossEntropy: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  if (logits.ndim < 1) throw new RangeError('crossEntropy: logits must have a class axis');
  const V = logits.shape[logits.ndim - 1];
  const rows = V === 0 ? 0 : logits.size / V;
  if (targets.length !== rows) throw new RangeError(`crossEntropy: ${targets.length} targets for logits ${shapeStr(logits.shape)} (expected ${rows}, one per row)`);
  if (o.mask && o.mask.length !== rows) throw new RangeError(`crossEntropy: mask has ${o.mask.length} entries, expected ${rows}`);
  const t = toInt32('crossEntropy targets', targets);
  const be = logits.backend;
  // Row weights: 0 for ignored rows, mask[r] (default 1) otherwise.
  const w = new Float64Array(rows);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    w[r] = t[r] === ignoreIndex ? 0 : o.mask ? o.mask[r] : 1;
    total += w[r];
  }
  const scale = reduction === 'mean' ? 1 / total : 1; // total 0 → NaN, as PyTorch
  if (eps > 0) {
    // The fused kernel gives the one-hot part; the uniform part −(1/V)·Σ_j log p_j of each row is
    // composed from logSoftmax and weighted and reduced as the rows are (its gradient, ε·(p − 1/V)
    // per row, then comes from the tape).
    const hard = crossEntropy(logits, t, { ignoreIndex, mask: o.mask, reduction });
    const rw = new Float64Array(rows);
    for (let r = 0; r < rows; r++) rw[r] = (-w[r] * (reduction === 'none' ? 1 : scale)) / V;
    const perRow = mul(sum(reshape(logSoftmax(logits), [rows, V]), 1), new Tensor(be.fromArray(rw, logits.dtype), [rows]));
    return add(mul(hard, 1 - eps), mul(reduction === 'none' ? perRow : sum(perRow), eps));
  }
  const probs = be.alloc(logits.size, logits.dtype);
  const lossRows = be.alloc(rows, logits.dtype);
  be.softmaxCrossEntropy(rows, V, logits.storage, t, ignoreIndex, probs, lossRows);
  // The rows' losses are weighted and summed on the host in float64 (one rounding to the dtype,
  // so a float32 mean stays within PyTorch's by far less than its own rounding). A backend whose
  // memory is read asynchronously (WebGPU) cannot hand them over inside an op: it weights and sums
  // them with its own kernels, in float32, and the gradient's row weights are made there too.
  const rowScale = reduction === 'none' ? w : w.map((x) => x * scale);
  let out: Tensor;
  let rowGrad: () => Storage;
  if (be.readAsync) {
    const ws = be.fromArray(rowScale, logits.dtype);
    const weighted = be.alloc(rows, logits.dtype);
    be.binary('mul', lossRows, [rows], ws, [rows], weighted, [rows]);
    if (reduction === 'none') out = new Tensor(weighted, [rows]);
    else {
      const total = be.alloc(1, logits.dtype);
      be.reduceSum(weighted, [rows], total, [1]);
      out = new Tensor(total, []);
    }
    rowGrad = () => {
      const rg = be.alloc(rows, logits.dtype);
      be.binary('mul', ws, [rows], out.grad!.storage, [reduction === 'none' ? rows : 1], rg, [rows]);
      return rg;
    };
  } else {
    const l = be.read(lossRows);
    if (reduction === 'none') {
      const v = new Float64Array(rows);
      for (let r = 0; r < rows; r++) v[r] = l[r] * w[r];
      out = new Tensor(be.fromArray(v, logits.dtype), [rows]);
    } else {
      let s = 0;
      for (let r = 0; r < rows; r++) s += l[r] * w[r];
      out = new Tensor(be.fromArray([s * scale], logits.dtype), []);
    }
    rowGrad = () => {
      const g = be.read(out.grad!.storage);
      const rg = new Float64Array(rows);
      for (let r = 0; r < rows; r++) rg[r] = rowScale[r] * (reduction === 'none' ? g[r] : g[0]);
      return be.fromArray(rg, logits.dtype);
    };
  }
  if (needsGrad(logits)) {
    record('crossEntropy', [logits], [out], () => {
      const dx = newLike(logits);
      be.softmaxCrossEntropyBackward(rows, V, probs, t, ignoreIndex, rowGrad(), dx.storage);
      accumulateGrad(logits, dx.storage, true);
    });
  }
  return out;
}

/**
 * Embedding lookup: weight [V, E], ids of any shape → [...shape, E]. Row `paddingIdx` (if given)
 * receives no gradient.
 */
export function embedding(weight: Tensor, ids: ArrayLike<number>, shape: Shape = [ids.length], paddingIdx: number | null = null): Tensor {
  if (weight.ndim !== 2) throw new RangeError(`embedding: weight must be [num_embeddings, dim], got ${shapeStr(weight.shape)}`);
  if (shapeSize(shape) !== ids.length) throw new RangeError(`embedding: ${ids.length} ids do not fill shape ${shapeStr(shape)}`);
  const [V, E] = weight.shape;
  // Our own copy: the caller may reuse its id buffer before backward runs.
  const idx = ids instanceof Int32Array ? ids.slice() : toInt32('embedding ids', ids);
  const out = newLike(weight, [...shape, E]);
  const be = weight.backend;
  be.gatherRows(E, weight.storage, idx, out.storage);
  if (V <= LOOKUP_MAX_VOCAB_FRACTION * idx.length) {
    // With gradients off the output is consumed at once (inference, decoding): the weight itself
    // serves as the table. With them on, a copy keeps an optimizer step before backward out of it.
    let table = weight.storage;
    if (isGradEnabled()) {
      table = be.alloc(V * E, weight.dtype);
      be.copy(weight.storage, 0, table, 0, V * E);
    }
    out.lookup = { weight, table, ids: idx, paddingIdx };
  }
  if (needsGrad(weight)) {
    record('embedding', [weight], [out], () => {
      const dw = newLike(weight);
      be.scatterAddRows(E, out.grad!.storage, idx, dw.storage);
      if (paddingIdx !== null) be.fill(dw.storage, 0, paddingIdx * E, E);
      accumulateGrad(weight, dw.storage, true);
    });
  }
  return out;
}

/**
 * Max pooling over time: x [T, B, F] → [B, F], each feature's maximum over the steps t < lengths[b]
 * of its sequence (all T without lengths; each length in [1, T]). The first maximum wins and takes
 * the whole gradient (as PyTorch's max over a dim); a NaN wins over any number. One backend kernel
 * each way (Backend.maxOverTime), so the winners never come to the host — on a GPU nothing is read.
 */
export function maxOverTime(x: Tensor, lengths: ArrayLike<number> | null = null): Tensor {
  if (x.ndim !== 3) throw new RangeError(`maxOverTime: x must be [T, B, F], got ${shapeStr(x.shape)}`);
  const [T, B, F] = x.shape;
  if (lengths !== null && lengths.length !== B) throw new RangeError(`maxOverTime: ${lengths.length} lengths for a batch of ${B}`);
  // our own copy (as embedding's ids): backward reads them after the caller may have reused theirs
  const lens = lengths === null ? null : lengths instanceof Int32Array ? lengths.slice() : toInt32('maxOverTime lengths', lengths);
  const out = newLike(x, [B, F]);
  const be = x.backend;
  be.maxOverTime(T, B, F, x.storage, lens, out.storage);
  if (needsGrad(x)) {
    record('maxOverTime', [x], [out], () => {
      const dx = newLike(x);
      be.maxOverTimeBackward(T, B, F, x.storage, lens, out.storage, out.grad!.storage, dx.storage);
      accumulateGrad(x, dx.storage, true);
    });
  }
  return out;
}

/**
 * Inverted dropout: in training, zero each element with probability p and scale survivors by
 * 1/(1−p); identity otherwise. The mask comes from the seeded RNG.
 */
export function dropout(x: Tensor, p: number, training: boolean, rng: Rng = globalRng): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  const m = new Float64Array(x.size);
  const keep = 1 / (1 - p);
  for (let i = 0; i < m.length; i++) m[i] = rng.random() < p ? 0 : keep;
  const mask = new Tensor(x.backend.fromArray(m, x.dtype), x.shape);
  return mul(x, mask);
}

/** Mean squared error (reduction as crossEntropy). */
export function mseLoss(pred: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  sameBackendAndDType('mseLoss', pred, target);
  if (pred.size !== target.size) throw new RangeError(`mseLoss: prediction ${shapeStr(pred.shape)} and target ${shapeStr(target.shape)} differ in size`);
  // Same number of elements, compared element by element (never broadcast into a table).
  const e = square(sub(pred, reshape(target, pred.shape)));
  return reduction === 'mean' ? mean(e) : reduction === 'sum' ? sum(e) : e;
}

/** Binary cross-entropy on logits: softplus(x) − x·y, numerically stable. */
export function bceWithLogits(logits: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  sameBackendAndDType('bceWithLogits', logits, target);
  if (logits.size !== target.size) throw new RangeError(`bceWithLogits: logits ${shapeStr(logits.shape)} and target ${shapeStr(target.shape)} differ in size`);
  const l = sub(softplus(logits), mul(logits, reshape(target, logits.shape)));
  return reduction === 'mean' ? mean(l) : reduction === 'sum' ? sum(l) : l;
}
