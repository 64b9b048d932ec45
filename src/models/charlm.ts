/**
 * CharLM: a character-level language model, Embedding(V, E) → LSTM(E, H, numLayers) → Linear(H, V).
 *
 * Parameter names and shapes are those of the equivalent PyTorch module
 *
 *   class CharLM(nn.Module):
 *       def __init__(self, V, E, H, L):
 *           super().__init__()
 *           self.embedding = nn.Embedding(V, E)
 *           self.lstm = nn.LSTM(E, H, L)          # time-major
 *           self.head = nn.Linear(H, V)
 *
 * (`embedding.weight`, `lstm.weight_ih_l0`, …, `head.weight`, `head.bias`), so a saved model loads
 * into PyTorch with `load_state_dict` and back.
 */
import { z } from 'zod';
import type { DType } from '../backend/interface.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Rng, globalRng } from '../tensor/rng.ts';
import { crossEntropy } from '../autograd/ops/nn.ts';
import { reshape, slice } from '../autograd/ops/shape.ts';
import { Module, checkOptions, checkPositiveInt, withEval } from '../nn/module.ts';
import { Embedding, Linear } from '../nn/layers.ts';
import type { RecurrentBase } from '../nn/recurrent.ts';
import { asStateDict, type ModelFile } from '../io/model.ts';
import { CharVocab, streamBatches } from '../data/text.ts';
import type { Limits } from '../io/limits.ts';
import { checkModelTensors, checkVocabSize, embeddingShapes, linearShapes, parseConfig, recurrentShapes, type ParamShapes } from './task-options.ts';
import { arch, CELL_KINDS, pick, type CellKind } from './fields.ts';
import { makeRecurrent } from './common.ts';
import type { SameKeys } from '../util/schema.ts';

/** The architecture, as stored in a model file's `recur.config`. */
export interface CharLMConfig {
  arch: 'charlm';
  vocabSize: number;
  embeddingDim: number;
  hiddenSize: number;
  numLayers: number;
  /**
   * The recurrent cell. Its module (and so its tensors) is named after it: `lstm.weight_ih_l0`,
   * `gru.weight_ih_l0`, `rnn.weight_ih_l0` (tanh), as in a PyTorch module with that attribute.
   * Files written before the other cells existed say 'lstm'.
   */
  cell: CharLMCell;
}

/** The cells a CharLM can have: every task cell kind (models/fields.ts). */
export type CharLMCell = CellKind;
export const CHARLM_CELLS: readonly CharLMCell[] = CELL_KINDS;

export interface CharLMOptions {
  vocabSize: number;
  embeddingDim: number;
  hiddenSize: number;
  /** Stacked recurrent layers (default 1). */
  numLayers?: number;
  /** The recurrent cell (default 'lstm'). */
  cell?: CharLMCell;
  dtype?: DType;
  /** Initialisation randomness (default: the global generator). */
  rng?: Rng;
}

export class CharLMConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CharLMConfigError';
  }
}

/** The recurrent state carried between calls: [numLayers, B, H] each (c: LSTM only). */
export interface CharLMState {
  h: Tensor;
  c?: Tensor;
}

export interface CharLMForward extends CharLMState {
  /** [T, B, V] */
  logits: Tensor;
}

export interface GenerateOptions {
  /** The text (with `vocab`) or token ids the generation continues; must not be empty. */
  prime: string | ArrayLike<number>;
  /** How many tokens to generate after the prime. */
  length: number;
  /** Sampling temperature (default 1); 0 takes the most likely token every time. */
  temperature?: number;
  /** Sample only among the k most likely tokens. */
  topK?: number;
  /** The sampling randomness; the same seed gives the same text. */
  rng: Rng;
  /** Needed when `prime` is a string: it encodes the prime and decodes the output. */
  vocab?: CharVocab;
}

/** What `recur.config` of a CharLM holds (fields of models/fields.ts; files written before the cell choice say 'lstm'). */
const charLMConfig = z.strictObject({
  arch: arch('charlm'),
  ...pick('vocabSize', 'embeddingDim', 'hiddenSize', 'numLayers', 'cell'),
}) satisfies z.ZodType<CharLMConfig>;
const configTypesMatch: SameKeys<CharLMConfig, z.output<typeof charLMConfig>> = true;

/**
 * Validate a `recur.config` object for a CharLM; returns it typed, or throws CharLMConfigError
 * (a LimitError for a size over `limits`, which apply when given: loading a file).
 */
export function checkCharLMConfig(config: unknown, limits: Partial<Limits> | null = null): CharLMConfig {
  return parseConfig('CharLM config', charLMConfig, config, { limits, error: CharLMConfigError });
}

/** The parameters (names and shapes) a CharLM config implies. */
export function charLMTensorShapes(c: CharLMConfig): ParamShapes {
  return [
    ...embeddingShapes('embedding', c.vocabSize, c.embeddingDim),
    ...recurrentShapes(c.cell, c.cell, c.embeddingDim, c.hiddenSize, c.numLayers, false),
    ...linearShapes('head', c.hiddenSize, c.vocabSize),
  ];
}

export class CharLM extends Module {
  readonly embedding: Embedding;
  /** The recurrent layer, of any cell (the name is from when the LSTM was the only one). */
  readonly lstm: RecurrentBase;
  readonly head: Linear;
  readonly vocabSize: number;
  readonly embeddingDim: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly cell: CharLMCell;

  constructor(opts: CharLMOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw new TypeError('CharLM: options must be an object {vocabSize, embeddingDim, hiddenSize, numLayers?}');
    checkOptions('CharLM', opts, ['vocabSize', 'embeddingDim', 'hiddenSize', 'numLayers', 'cell', 'dtype', 'rng']);
    this.vocabSize = checkPositiveInt('CharLM', 'vocabSize', opts.vocabSize);
    this.embeddingDim = checkPositiveInt('CharLM', 'embeddingDim', opts.embeddingDim);
    this.hiddenSize = checkPositiveInt('CharLM', 'hiddenSize', opts.hiddenSize);
    this.numLayers = checkPositiveInt('CharLM', 'numLayers', opts.numLayers ?? 1);
    this.cell = opts.cell ?? 'lstm';
    if (!CHARLM_CELLS.includes(this.cell)) throw new CharLMConfigError(`CharLM: cell must be one of ${CHARLM_CELLS.join(', ')}, got ${JSON.stringify(opts.cell)}`);
    const rng = opts.rng ?? globalRng;
    const dtype = opts.dtype;
    this.embedding = this.registerModule('embedding', new Embedding(this.vocabSize, this.embeddingDim, { dtype, rng }));
    this.lstm = this.registerModule(this.cell, makeRecurrent(this.cell, { inputSize: this.embeddingDim, hiddenSize: this.hiddenSize, numLayers: this.numLayers, dtype, rng }));
    this.head = this.registerModule('head', new Linear(this.hiddenSize, this.vocabSize, { dtype, rng }));
  }

  get config(): CharLMConfig {
    return { arch: 'charlm', vocabSize: this.vocabSize, embeddingDim: this.embeddingDim, hiddenSize: this.hiddenSize, numLayers: this.numLayers, cell: this.cell };
  }

  /** A freshly initialised model for a validated config. */
  static fromConfig(config: unknown, opts: { dtype?: DType; rng?: Rng } = {}): CharLM {
    const c = checkCharLMConfig(config);
    return new CharLM({ vocabSize: c.vocabSize, embeddingDim: c.embeddingDim, hiddenSize: c.hiddenSize, numLayers: c.numLayers, cell: c.cell, ...opts });
  }

  /**
   * ids: [T, B] time-major token ids (flat). state: the state after the previous chunk (zeros if
   * omitted). Returns logits [T, B, V] and the final state.
   */
  forward(ids: ArrayLike<number>, T: number, B: number, state: CharLMState | null = null): CharLMForward {
    checkPositiveInt('CharLM.forward', 'T', T);
    checkPositiveInt('CharLM.forward', 'B', B);
    if (ids.length !== T * B) throw new RangeError(`CharLM.forward: ${ids.length} ids do not fill [T = ${T}, B = ${B}]`);
    const x = this.embedding.forward(ids, [T, B]);
    const r = this.lstm.forward(x, state ? { h: state.h, c: state.c } : {});
    return { logits: this.head.forward(r.output), h: r.h, ...(r.c ? { c: r.c } : {}) };
  }

  /** Mean cross-entropy (nats per token) of predicting targets [T, B] from inputs [T, B]. */
  loss(inputs: ArrayLike<number>, targets: ArrayLike<number>, T: number, B: number, state: CharLMState | null = null): Tensor {
    if (targets.length !== T * B) throw new RangeError(`CharLM.loss: ${targets.length} targets do not fill [T = ${T}, B = ${B}]`);
    return crossEntropy(this.forward(inputs, T, B, state).logits, targets);
  }

  /**
   * Sample a continuation of `prime`. The prime runs through the network once (one fused pass);
   * then each new token is one step that carries the state (h, c) forward. Runs without gradient
   * recording. Returns the generated tokens only (not the prime): a string when the prime is a
   * string, token ids otherwise.
   */
  generate(o: GenerateOptions & { prime: string }): string;
  generate(o: GenerateOptions & { prime: ArrayLike<number> }): Int32Array;
  generate(o: GenerateOptions): string | Int32Array {
    checkOptions('CharLM.generate', o, ['prime', 'length', 'temperature', 'topK', 'rng', 'vocab']);
    const temperature = o.temperature ?? 1;
    if (!(typeof temperature === 'number' && temperature >= 0 && Number.isFinite(temperature))) throw new RangeError(`CharLM.generate: temperature must be a finite number ≥ 0, got ${temperature}`);
    if (!(Number.isInteger(o.length) && o.length >= 0)) throw new RangeError(`CharLM.generate: length must be a non-negative integer, got ${o.length}`);
    if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 1)) throw new RangeError(`CharLM.generate: topK must be a positive integer, got ${o.topK}`);
    if (!(o.rng instanceof Rng)) throw new TypeError('CharLM.generate: rng must be an Rng (e.g. new Rng(seed))');
    let primeIds: ArrayLike<number>;
    if (typeof o.prime === 'string') {
      if (!o.vocab) throw new TypeError('CharLM.generate: a string prime needs the vocab option');
      primeIds = o.vocab.encode(o.prime);
    } else {
      primeIds = o.prime;
    }
    if (!primeIds || primeIds.length === 0) throw new RangeError('CharLM.generate: the prime must not be empty');
    const out = new Int32Array(o.length);
    const rng = o.rng;
    withEval(this, () => {
      if (out.length === 0) return;
      const P = primeIds.length;
      let r = this.lstm.forward(this.embedding.forward(primeIds, [P, 1]));
      let last = slice(r.output, 0, P - 1, 1);
      for (let i = 0; i < out.length; i++) {
        const logits = this.head.forward(reshape(last, [1, this.hiddenSize])).toArray();
        const next = sampleLogits(logits, temperature, o.topK, rng);
        out[i] = next;
        if (i + 1 === out.length) break;
        r = this.lstm.forward(this.embedding.forward([next], [1, 1]), { h: r.h, c: r.c });
        last = r.output;
      }
    });
    return typeof o.prime === 'string' ? o.vocab!.decode(out) : out;
  }
}

/**
 * Draw one token from logits: softmax(logits / temperature), optionally restricted to the top k;
 * temperature 0 is argmax (ties: the lowest id).
 */
export function sampleLogits(logits: ArrayLike<number>, temperature: number, topK: number | undefined, rng: Rng): number {
  const V = logits.length;
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0 || topK === 1) return best;
  let allowed: number[] | null = null;
  if (topK !== undefined && topK < V) {
    allowed = Array.from({ length: V }, (_, i) => i)
      .sort((a, b) => logits[b] - logits[a] || a - b)
      .slice(0, topK);
  }
  const ids = allowed ?? Array.from({ length: V }, (_, i) => i);
  const max = logits[best];
  const w = new Float64Array(ids.length);
  let total = 0;
  for (let k = 0; k < ids.length; k++) {
    w[k] = Math.exp((logits[ids[k]] - max) / temperature);
    total += w[k];
  }
  if (!(total > 0 && Number.isFinite(total))) return best;
  let u = rng.random() * total;
  for (let k = 0; k < ids.length; k++) {
    u -= w[k];
    if (u < 0) return ids[k];
  }
  return ids[ids.length - 1];
}

export interface EvaluateOptions {
  /** Characters per chunk (default 128). */
  seqLen?: number;
  /** Parallel streams (default 32, fewer when the text is short). */
  batchSize?: number;
  /** Use only the first maxTokens tokens (default: all). */
  maxTokens?: number;
}

export interface EvaluateResult {
  /** Mean cross-entropy in nats per token. */
  loss: number;
  /** The same in bits per token (bits per character). */
  bpc: number;
  /** Tokens scored. */
  tokens: number;
}

/**
 * Loss of `model` on held-out token ids: the text is split into `batchSize` contiguous streams
 * read chunk by chunk with the state carried over, so every character after the first of each
 * stream is predicted from all the text before it in its stream. No gradients; eval mode.
 */
export function evaluateCharLM(model: CharLM, ids: ArrayLike<number>, o: EvaluateOptions = {}): EvaluateResult {
  checkOptions('evaluateCharLM', o, ['seqLen', 'batchSize', 'maxTokens']);
  const seqLen = o.seqLen ?? 128;
  const n = Math.min(ids.length, (o.maxTokens ?? Infinity) + 1);
  if (n < 2) throw new RangeError(`evaluateCharLM: needs at least 2 tokens, got ${ids.length}`);
  const batchSize = Math.max(1, Math.min(o.batchSize ?? 32, Math.floor((n - 1) / 2)));
  let total = 0;
  let count = 0;
  withEval(model, () => {
    let state: CharLMState | null = null;
    for (const b of streamBatches(ids, seqLen, batchSize, n - 1)) {
      const r = model.forward(b.inputs, b.T, b.B, state);
      state = { h: r.h, c: r.c };
      total += crossEntropy(r.logits, b.targets, { reduction: 'sum' }).item();
      count += b.T * b.B;
    }
  });
  const loss = total / count;
  return { loss, bpc: loss / Math.LN2, tokens: count };
}

export interface LoadedCharLM {
  model: CharLM;
  /** The vocabulary stored with the model, or null if the file has none. */
  vocab: CharVocab | null;
  file: ModelFile;
}

/**
 * Rebuild a CharLM from a model file: the architecture from its `recur.config`, the weights from
 * its tensors, the vocabulary from `recur.vocab`. Everything is checked before the model is built:
 * the config (types, ranges, `limits`), the vocabulary against vocabSize, and that the tensors are
 * exactly those the config implies (names, shapes, parameter count).
 */
export function loadCharLM(file: ModelFile, path = 'model file', opts: { dtype?: DType; limits?: Partial<Limits> } = {}): LoadedCharLM {
  const limits = opts.limits ?? {};
  let config: CharLMConfig;
  try {
    config = checkCharLMConfig(file.config, limits);
  } catch (e) {
    if (e instanceof CharLMConfigError) throw new CharLMConfigError(`${path}: ${e.message}`);
    throw e;
  }
  let vocab: CharVocab | null = null;
  if (file.vocab !== null) {
    const chars = (file.vocab as { chars?: unknown } | null)?.chars;
    checkVocabSize(`${path}: recur.vocab`, Array.isArray(chars) ? chars.length : 0, limits);
    vocab = CharVocab.fromJSON(file.vocab);
    if (vocab.size !== config.vocabSize) throw new CharLMConfigError(`${path}: the vocabulary has ${vocab.size} characters but the config says vocabSize ${config.vocabSize}`);
  }
  checkModelTensors(path, charLMTensorShapes(config), file.tensors, { limits, error: CharLMConfigError });
  const model = CharLM.fromConfig(config, { dtype: opts.dtype, rng: new Rng(0) });
  model.loadStateDict(asStateDict(file));
  return { model, vocab, file };
}
