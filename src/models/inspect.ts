/**
 * Looking inside trained task models (the browser playground's views; browser-safe):
 *
 *   classifierProbabilities(task, ['Alice'])   → [[p_female, p_male]]   softmax of the classifier's logits
 *   traceCharLM(model, ids)                    → per-step hidden state and gates of layer 0 (LSTM, GRU, RNN)
 *
 * The fused recurrent op (cells/recurrent.ts) keeps its activated gates in a workspace that is not
 * part of its result, so `traceCharLM` recomputes layer 0 from the weights, one step at a time, in
 * float64 in plain TypeScript — the PyTorch equations; for the LSTM (gate order i, f, g, o):
 *
 *   G_t = W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh            [4H]
 *   i = σ(G[0:H])  f = σ(G[H:2H])  g = tanh(G[2H:3H])  o = σ(G[3H:4H])
 *   c_t = f ⊙ c_{t−1} + i ⊙ g      h_t = o ⊙ tanh(c_t)
 *
 * It is a view for people, not a kernel: O(T·4H·(E + H)) scalar work, fine for a sample of a few
 * hundred characters. test/inspect.test.ts checks, for each cell, that its h_T equals the model's own final state.
 */
import { softmax } from '../autograd/ops/nn.ts';
import { withEval } from '../nn/module.ts';
import type { ClassificationTask } from './classifier.ts';
import type { CharLM } from './charlm.ts';
import { CELLS } from '../cells/recurrent.ts';
import { CELL_MODE } from './fields.ts';

/** Class probabilities (softmax of the logits, eval mode) for each text; rows follow `task.config.labels`. */
export function classifierProbabilities(task: ClassificationTask, texts: readonly string[]): number[][] {
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === 'string')) throw new TypeError('classifierProbabilities: texts must be an array of strings');
  if (texts.length === 0) return [];
  const enc = texts.map((t, i) => task.encode(t, `input ${i}`));
  const C = task.config.labels.length;
  return withEval(task.model, () => {
    const probs = softmax(task.logitsOf(enc)).toArray();
    return Array.from({ length: enc.length }, (_, b) => Array.from(probs.subarray(b * C, (b + 1) * C)));
  });
}

/** Per-step values of layer 0 of a CharLM over a sequence: each array is [T][H]. */
export interface CharLMTrace {
  cell: 'lstm' | 'gru' | 'rnn';
  /** Hidden state h_t after reading character t. */
  h: Float64Array[];
  /** LSTM cell state c_t (empty for GRU and RNN). */
  c: Float64Array[];
  /**
   * Gate activations in (0, 1), by name: LSTM input, forget, output; GRU reset, update; none for
   * the vanilla RNN (it has no gates — which is the point of comparing them).
   */
  gates: Record<string, Float64Array[]>;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * Layer 0 of `model` run over token ids from a zero state, one step at a time, with the cell's
 * PyTorch equations (see the file comment for the LSTM; GRU r, z, n with the reset gate applied
 * after the recurrent product, h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}; RNN h_t = tanh(…)). An id outside
 * the vocabulary is an error naming its position.
 */
export function traceCharLM(model: CharLM, ids: ArrayLike<number>): CharLMTrace {
  const V = model.vocabSize, E = model.embeddingDim, H = model.hiddenSize;
  const cell = model.cell;
  const T = ids.length;
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`traceCharLM: token ${t} is ${id}, outside the vocabulary [0, ${V})`);
  }
  const G = CELLS[CELL_MODE[cell]].G; // the cell record's gate count
  const sd = model.stateDict();
  const emb = sd['embedding.weight'].toArray(); // [V, E]
  const wIh = sd[`${cell}.weight_ih_l0`].toArray(); // [G·H, E]
  const wHh = sd[`${cell}.weight_hh_l0`].toArray(); // [G·H, H]
  const bIh = sd[`${cell}.bias_ih_l0`].toArray(); // [G·H]
  const bHh = sd[`${cell}.bias_hh_l0`].toArray(); // [G·H]
  const names = cell === 'lstm' ? ['input', 'forget', 'output'] : cell === 'gru' ? ['reset', 'update'] : [];
  const out: CharLMTrace = { cell, h: [], c: [], gates: Object.fromEntries(names.map((n) => [n, []])) };
  let h = new Float64Array(H); // [H]
  let c = new Float64Array(H); // [H]
  const gx = new Float64Array(G * H); // [G·H] input part (with b_ih)
  const gh = new Float64Array(G * H); // [G·H] recurrent part (with b_hh)
  for (let t = 0; t < T; t++) {
    const x = ids[t] * E;
    for (let r = 0; r < G * H; r++) {
      let a = bIh[r], b = bHh[r];
      for (let k = 0; k < E; k++) a += wIh[r * E + k] * emb[x + k];
      for (let k = 0; k < H; k++) b += wHh[r * H + k] * h[k];
      gx[r] = a;
      gh[r] = b;
    }
    const hN = new Float64Array(H);
    if (cell === 'lstm') {
      const i = new Float64Array(H), f = new Float64Array(H), o = new Float64Array(H), cN = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        i[j] = sigmoid(gx[j] + gh[j]);
        f[j] = sigmoid(gx[H + j] + gh[H + j]);
        const g = Math.tanh(gx[2 * H + j] + gh[2 * H + j]);
        o[j] = sigmoid(gx[3 * H + j] + gh[3 * H + j]);
        cN[j] = f[j] * c[j] + i[j] * g;
        hN[j] = o[j] * Math.tanh(cN[j]);
      }
      c = cN;
      out.c.push(cN);
      out.gates.input.push(i);
      out.gates.forget.push(f);
      out.gates.output.push(o);
    } else if (cell === 'gru') {
      const rg = new Float64Array(H), z = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        rg[j] = sigmoid(gx[j] + gh[j]);
        z[j] = sigmoid(gx[H + j] + gh[H + j]);
        const n = Math.tanh(gx[2 * H + j] + rg[j] * gh[2 * H + j]);
        hN[j] = (1 - z[j]) * n + z[j] * h[j];
      }
      out.gates.reset.push(rg);
      out.gates.update.push(z);
    } else {
      for (let j = 0; j < H; j++) hN[j] = Math.tanh(gx[j] + gh[j]);
    }
    h = hN;
    out.h.push(hN);
  }
  return out;
}
