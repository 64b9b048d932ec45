/**
 * Looking inside trained task models (the browser playground's views; browser-safe):
 *
 *   classifierProbabilities(task, ['Alice'])   → [[p_female, p_male]]   softmax of the classifier's logits
 *   traceCharLM(model, ids)                    → per-step hidden state and LSTM gates of layer 0
 *
 * The fused recurrent op (cells/recurrent.ts) keeps its activated gates in a workspace that is not
 * part of its result, so `traceCharLM` recomputes layer 0 from the weights, one step at a time, in
 * float64 in plain TypeScript — the PyTorch LSTM equations, gate order i, f, g, o:
 *
 *   G_t = W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh            [4H]
 *   i = σ(G[0:H])  f = σ(G[H:2H])  g = tanh(G[2H:3H])  o = σ(G[3H:4H])
 *   c_t = f ⊙ c_{t−1} + i ⊙ g      h_t = o ⊙ tanh(c_t)
 *
 * It is a view for people, not a kernel: O(T·4H·(E + H)) scalar work, fine for a sample of a few
 * hundred characters. test/inspect.test.ts checks that its h_T equals the model's own final state.
 */
import { softmax } from '../autograd/ops/nn.ts';
import { withEval } from '../nn/module.ts';
import { padSequences } from '../data/batch.ts';
import type { ClassificationTask } from './classifier.ts';
import type { CharLM } from './charlm.ts';

/** Class probabilities (softmax of the logits, eval mode) for each text; rows follow `task.config.labels`. */
export function classifierProbabilities(task: ClassificationTask, texts: readonly string[]): number[][] {
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === 'string')) throw new TypeError('classifierProbabilities: texts must be an array of strings');
  if (texts.length === 0) return [];
  const enc = texts.map((t, i) => task.encode(t, `input ${i}`));
  const C = task.config.labels.length;
  return withEval(task.model, () => {
    const p = padSequences(enc, { padId: task.vocab.padId!, maxLen: task.config.maxLen });
    const probs = softmax(task.model.forward(p.ids, p.lengths, p.T, p.B)).toArray();
    return Array.from({ length: p.B }, (_, b) => Array.from(probs.subarray(b * C, (b + 1) * C)));
  });
}

/** Per-step values of layer 0 of a CharLM over a sequence: each array is [T][H]. */
export interface CharLMTrace {
  /** Hidden state h_t after reading character t. */
  h: Float64Array[];
  /** Cell state c_t. */
  c: Float64Array[];
  /** Input, forget and output gate activations (each in (0, 1)). */
  input: Float64Array[];
  forget: Float64Array[];
  output: Float64Array[];
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * Layer 0 of `model` run over token ids from a zero state, one step at a time (see the file
 * comment). An id outside the vocabulary is an error naming its position.
 */
export function traceCharLM(model: CharLM, ids: ArrayLike<number>): CharLMTrace {
  const V = model.vocabSize, E = model.embeddingDim, H = model.hiddenSize;
  const T = ids.length;
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`traceCharLM: token ${t} is ${id}, outside the vocabulary [0, ${V})`);
  }
  const sd = model.stateDict();
  const emb = sd['embedding.weight'].toArray(); // [V, E]
  const wIh = sd['lstm.weight_ih_l0'].toArray(); // [4H, E]
  const wHh = sd['lstm.weight_hh_l0'].toArray(); // [4H, H]
  const bIh = sd['lstm.bias_ih_l0'].toArray(); // [4H]
  const bHh = sd['lstm.bias_hh_l0'].toArray(); // [4H]
  const out: CharLMTrace = { h: [], c: [], input: [], forget: [], output: [] };
  let h = new Float64Array(H); // [H]
  let c = new Float64Array(H); // [H]
  const G = new Float64Array(4 * H); // [4H] pre-activations
  for (let t = 0; t < T; t++) {
    const x = ids[t] * E;
    for (let r = 0; r < 4 * H; r++) {
      let s = bIh[r] + bHh[r];
      for (let k = 0; k < E; k++) s += wIh[r * E + k] * emb[x + k];
      for (let k = 0; k < H; k++) s += wHh[r * H + k] * h[k];
      G[r] = s;
    }
    const i = new Float64Array(H), f = new Float64Array(H), o = new Float64Array(H);
    const hN = new Float64Array(H), cN = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      i[j] = sigmoid(G[j]);
      f[j] = sigmoid(G[H + j]);
      const g = Math.tanh(G[2 * H + j]);
      o[j] = sigmoid(G[3 * H + j]);
      cN[j] = f[j] * c[j] + i[j] * g;
      hN[j] = o[j] * Math.tanh(cN[j]);
    }
    h = hN;
    c = cN;
    out.h.push(hN);
    out.c.push(cN);
    out.input.push(i);
    out.forget.push(f);
    out.output.push(o);
  }
  return out;
}
