/**
 * Attention over a padded set of keys (encoder outputs), masked by per-sample source lengths, for
 * encoder–decoder models. Two scoring functions:
 *
 *   additive (Bahdanau et al. 2015):  e[b,s] = vᵀ · tanh(W_q·q_b + W_k·k_{b,s} + b_k)
 *   Luong et al. 2015, 'general':     e[b,s] = q_bᵀ · W_a · k_{b,s};   'dot': e[b,s] = q_bᵀ · k_{b,s}
 *
 *   a[b,:] = softmax(e[b,:] + mask[b,:])   mask = 0 for s < len[b], −1e9 past it (weight exactly 0)
 *   context[b] = Σ_s a[b,s] · k_{b,s}
 *
 * The key-side projection (W_k·k + b_k, or W_a·k) does not depend on the decoder step, so
 * `prepare(keys, lengths)` computes it ONCE per batch and every `attend(query, memory)` reuses it;
 * a decoder step then costs one small GEMM for the query, one broadcast add + tanh, one GEMM for
 * the scores and one batched GEMM for the context. Everything is composed from the autograd ops,
 * so gradients flow to the queries, the keys (both through the scores and through the context)
 * and the parameters.
 *
 * Parameter names (PyTorch-style submodules): additive — `query.weight` [A, Dq], `key.weight`
 * [A, Dk], `key.bias` [A], `v.weight` [1, A]; Luong 'general' — `key.weight` [Dq, Dk].
 */
import type { DType } from '../backend/interface.ts';
import { Tensor, shapeStr } from '../tensor/tensor.ts';
import { globalRng, type Rng } from '../tensor/rng.ts';
import { add, tanh } from '../autograd/ops/elementwise.ts';
import { matmul } from '../autograd/ops/linalg.ts';
import { embedding, softmax } from '../autograd/ops/nn.ts';
import { reshape } from '../autograd/ops/shape.ts';
import { checkOptions, checkPositiveInt, Module } from './module.ts';
import { Linear } from './layers.ts';

/** Added to the scores of padded positions: exp(−1e9 − max) is exactly 0 in float32 and float64. */
export const MASK_VALUE = -1e9;

/** What `prepare` computes once per batch of keys and every decoder step reuses. */
export interface AttentionMemory {
  /** [B, S, Dk] the keys (= values). */
  keys: Tensor;
  /** [B, S, P] the key-side projection (P = A for additive, Dq for Luong). */
  proj: Tensor;
  /** [B, S] additive mask (0 / MASK_VALUE), or null when every position is valid. */
  mask: Tensor | null;
  /** Per-row valid lengths (host), or null. */
  lengths: Int32Array | null;
}

export interface AttentionOutput {
  /** [B, Dk] */
  context: Tensor;
  /** [B, S] attention weights (rows sum to 1, zero past each length). */
  weights: Tensor;
}

/** The common face of the attention modules. */
export interface Attention extends Module {
  readonly queryDim: number;
  readonly keyDim: number;
  prepare(keys: Tensor, lengths?: ArrayLike<number> | null): AttentionMemory;
  attend(query: Tensor, memory: AttentionMemory): AttentionOutput;
}

/** An additive mask [B, S] from lengths, or null when all lengths equal S. */
export function lengthMask(lengths: ArrayLike<number> | null | undefined, B: number, S: number, like: Tensor): { mask: Tensor | null; lengths: Int32Array | null } {
  if (lengths === null || lengths === undefined) return { mask: null, lengths: null };
  if (lengths.length !== B) throw new RangeError(`attention: ${lengths.length} lengths for a batch of ${B}`);
  const L = new Int32Array(B);
  let full = true;
  for (let b = 0; b < B; b++) {
    const l = lengths[b];
    if (!Number.isInteger(l) || l < 1 || l > S) throw new RangeError(`attention: lengths[${b}] = ${l} must be an integer in [1, ${S}] (every sample needs at least one key)`);
    L[b] = l;
    if (l !== S) full = false;
  }
  if (full) return { mask: null, lengths: L };
  const m = new Float64Array(B * S);
  for (let b = 0; b < B; b++) for (let s = L[b]; s < S; s++) m[b * S + s] = MASK_VALUE;
  return { mask: new Tensor(like.backend.fromArray(m, like.dtype), [B, S]), lengths: L };
}

function checkKeys(where: string, keys: Tensor, Dk: number): [number, number] {
  if (keys.ndim !== 3 || keys.shape[2] !== Dk) throw new RangeError(`${where}: keys must be [B, S, ${Dk}], got ${shapeStr(keys.shape)}`);
  if (keys.shape[1] < 1) throw new RangeError(`${where}: keys need at least one position, got ${shapeStr(keys.shape)}`);
  return [keys.shape[0], keys.shape[1]];
}

function checkQuery(where: string, q: Tensor, mem: AttentionMemory, Dq: number): number {
  const B = mem.keys.shape[0];
  if (q.ndim !== 2 || q.shape[0] !== B || q.shape[1] !== Dq) throw new RangeError(`${where}: query must be [B = ${B}, ${Dq}], got ${shapeStr(q.shape)}`);
  return B;
}

/** softmax over masked scores [B, S] and the context [B, Dk]. */
function weigh(scores: Tensor, mem: AttentionMemory): AttentionOutput {
  const [B, S, Dk] = mem.keys.shape;
  const weights = softmax(mem.mask ? add(scores, mem.mask) : scores);
  // context[b] = a[b] · K[b]: a batched [1, S] · [S, Dk] product
  const context = reshape(matmul(reshape(weights, [B, 1, S]), mem.keys), [B, Dk]);
  return { context, weights };
}

/**
 * Rows `rows` of a memory (for beam search: one row per live hypothesis). Differentiable in the
 * keys and projection (an embedding-style gather), though decoders call it under noGrad.
 */
export function selectMemory(mem: AttentionMemory, rows: ArrayLike<number>): AttentionMemory {
  const [B, S, Dk] = mem.keys.shape;
  const P = mem.proj.shape[2];
  const N = rows.length;
  for (let i = 0; i < N; i++) if (!(Number.isInteger(rows[i]) && rows[i] >= 0 && rows[i] < B)) throw new RangeError(`selectMemory: row ${rows[i]} is outside [0, ${B})`);
  const keys = reshape(embedding(reshape(mem.keys, [B, S * Dk]), rows, [N]), [N, S, Dk]);
  const proj = mem.proj === mem.keys ? keys : reshape(embedding(reshape(mem.proj, [B, S * P]), rows, [N]), [N, S, P]);
  let lengths: Int32Array | null = null;
  if (mem.lengths) {
    lengths = new Int32Array(N);
    for (let i = 0; i < N; i++) lengths[i] = mem.lengths[rows[i]];
  }
  const { mask } = lengthMask(lengths, N, S, keys);
  return { keys, proj, mask, lengths };
}

export interface AdditiveAttentionOptions {
  /** Query size Dq (the decoder state). */
  queryDim: number;
  /** Key size Dk (the encoder output). */
  keyDim: number;
  /** Size A of the hidden scoring layer (default: queryDim). */
  attnDim?: number;
  dtype?: DType;
  rng?: Rng;
}

/** Bahdanau (additive, "concat") attention. */
export class AdditiveAttention extends Module implements Attention {
  readonly queryDim: number;
  readonly keyDim: number;
  readonly attnDim: number;
  readonly query: Linear;
  readonly key: Linear;
  readonly v: Linear;

  constructor(opts: AdditiveAttentionOptions) {
    super();
    checkOptions('AdditiveAttention', opts, ['queryDim', 'keyDim', 'attnDim', 'dtype', 'rng']);
    this.queryDim = checkPositiveInt('AdditiveAttention', 'queryDim', opts.queryDim);
    this.keyDim = checkPositiveInt('AdditiveAttention', 'keyDim', opts.keyDim);
    this.attnDim = checkPositiveInt('AdditiveAttention', 'attnDim', opts.attnDim ?? opts.queryDim);
    const rng = opts.rng ?? globalRng;
    const dtype = opts.dtype;
    this.query = this.registerModule('query', new Linear(this.queryDim, this.attnDim, { bias: false, dtype, rng }));
    this.key = this.registerModule('key', new Linear(this.keyDim, this.attnDim, { dtype, rng }));
    this.v = this.registerModule('v', new Linear(this.attnDim, 1, { bias: false, dtype, rng }));
  }

  /** keys [B, S, Dk] → memory with proj = W_k·k + b_k [B, S, A]. */
  prepare(keys: Tensor, lengths: ArrayLike<number> | null = null): AttentionMemory {
    const [B, S] = checkKeys('AdditiveAttention.prepare', keys, this.keyDim);
    return { keys, proj: this.key.forward(keys), ...lengthMask(lengths, B, S, keys) };
  }

  /** query [B, Dq] → context [B, Dk], weights [B, S]. */
  attend(query: Tensor, mem: AttentionMemory): AttentionOutput {
    const B = checkQuery('AdditiveAttention.attend', query, mem, this.queryDim);
    const S = mem.keys.shape[1];
    const A = this.attnDim;
    // hidden [B, S, A] = tanh(proj + W_q·q broadcast over S)
    const hidden = tanh(add(mem.proj, reshape(this.query.forward(query), [B, 1, A])));
    // e [B, S] = hidden · vᵀ (one GEMM over all B·S rows)
    const scores = reshape(this.v.forward(hidden), [B, S]);
    return weigh(scores, mem);
  }
}

export interface LuongAttentionOptions {
  queryDim: number;
  keyDim: number;
  /** 'general' (default): qᵀ·W_a·k; 'dot': qᵀ·k (needs queryDim = keyDim, no parameters). */
  score?: 'general' | 'dot';
  dtype?: DType;
  rng?: Rng;
}

/** Luong (multiplicative) attention, 'general' or 'dot'. */
export class LuongAttention extends Module implements Attention {
  readonly queryDim: number;
  readonly keyDim: number;
  readonly score: 'general' | 'dot';
  readonly key: Linear | null;

  constructor(opts: LuongAttentionOptions) {
    super();
    checkOptions('LuongAttention', opts, ['queryDim', 'keyDim', 'score', 'dtype', 'rng']);
    this.queryDim = checkPositiveInt('LuongAttention', 'queryDim', opts.queryDim);
    this.keyDim = checkPositiveInt('LuongAttention', 'keyDim', opts.keyDim);
    this.score = opts.score ?? 'general';
    if (this.score !== 'general' && this.score !== 'dot') throw new TypeError(`LuongAttention: 'score' must be 'general' or 'dot', got '${String(this.score)}'`);
    if (this.score === 'dot' && this.queryDim !== this.keyDim) throw new RangeError(`LuongAttention: 'dot' scoring needs queryDim = keyDim, got ${this.queryDim} and ${this.keyDim}`);
    this.key = this.score === 'general' ? this.registerModule('key', new Linear(this.keyDim, this.queryDim, { bias: false, dtype: opts.dtype, rng: opts.rng ?? globalRng })) : null;
  }

  prepare(keys: Tensor, lengths: ArrayLike<number> | null = null): AttentionMemory {
    const [B, S] = checkKeys('LuongAttention.prepare', keys, this.keyDim);
    return { keys, proj: this.key ? this.key.forward(keys) : keys, ...lengthMask(lengths, B, S, keys) };
  }

  attend(query: Tensor, mem: AttentionMemory): AttentionOutput {
    const B = checkQuery('LuongAttention.attend', query, mem, this.queryDim);
    const S = mem.keys.shape[1];
    // e[b] = proj[b] [S, Dq] · q[b] [Dq, 1]
    const scores = reshape(matmul(mem.proj, reshape(query, [B, this.queryDim, 1])), [B, S]);
    return weigh(scores, mem);
  }
}

export type AttentionKind = 'additive' | 'general' | 'dot';

/** Build an attention module by kind (the name stored in model configs). */
export function makeAttention(kind: AttentionKind, queryDim: number, keyDim: number, o: { attnDim?: number; dtype?: DType; rng?: Rng } = {}): Attention {
  if (kind === 'additive') return new AdditiveAttention({ queryDim, keyDim, attnDim: o.attnDim, dtype: o.dtype, rng: o.rng });
  if (kind === 'general' || kind === 'dot') return new LuongAttention({ queryDim, keyDim, score: kind, dtype: o.dtype, rng: o.rng });
  throw new TypeError(`attention kind must be 'additive', 'general' or 'dot', got '${String(kind)}'`);
}
