/**
 * Many-to-one: sequence classification.
 *
 *   tokens → Embedding(V, E) → RNN/LSTM/GRU (stacked, optionally bidirectional, with lengths)
 *          → pooling over time → Dropout → Linear(P·D·H, C) → class logits   (P = 2 for 'mean+max', else 1)
 *
 * Pooling: 'last' takes each sample's final state at its own last real step (for a reverse
 * direction: its state after reading the whole sequence backwards, i.e. at t = 0), concatenated
 * over directions; 'mean' averages the top layer's outputs over each sample's real steps only (the
 * fused layer writes 0 past `lengths`, so a sum over time divided by the length is exact); 'max'
 * takes each feature's maximum over the top layer's outputs at each sample's real steps only (the
 * zeros past `lengths` never win), so one strong phrase anywhere in a long text can decide it;
 * 'mean+max' concatenates the two ([mean ‖ max], as the "concat pooling" of ULMFiT without its last
 * state), so the head sees both what the whole input says and its strongest local evidence.
 *
 * Parameter names are PyTorch's for the module
 *
 *   class RNNClassifier(nn.Module):
 *       def __init__(self, V, E, H, C, L, bidir):
 *           self.embedding = nn.Embedding(V, E, padding_idx=0)
 *           self.rnn = nn.LSTM(E, H, L, bidirectional=bidir)   # or nn.GRU / nn.RNN
 *           self.head = nn.Linear(P * H * (2 if bidir else 1), C)   # P = 2 for 'mean+max'
 *
 * The task (`ClassificationTask`) owns tokenizer + vocabulary + model; its `describe()` holds
 * everything `loadClassifier` needs to rebuild it from a model file. Unknown tokens at inference
 * map to the vocabulary's unk id (the vocabulary is always built with one).
 */
import { z } from 'zod';
import { Tensor, tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { crossEntropy, maxOverTime } from '../autograd/ops/nn.ts';
import { mul, sum } from '../autograd/ops/elementwise.ts';
import { concat, permute, reshape, slice } from '../autograd/ops/shape.ts';
import { Module, withEval } from '../nn/module.ts';
import { Dropout, Embedding, Linear } from '../nn/layers.ts';
import type { RecurrentBase } from '../nn/recurrent.ts';
import type { BatchSource, StepResult, Task } from '../train/task.ts';
import { type ModelFile } from '../io/model.ts';
import { Vocab, type VocabJSON } from '../data/vocab.ts';
import { tokenizerFromJSON, type Tokenizer, type TokenizerJSON } from '../data/tokenize.ts';
import { ExampleSource, fitLength, padSequences, shardRanges, takeColumns, type TruncateMode } from '../data/batch.ts';
import type { Limits } from '../io/limits.ts';
import { argmaxRows } from './metrics.ts';
import { evaluateClassifier, loadVocabTask, makeRecurrent, splitSources, type CellKind, type LabeledSplits, type LoadTaskOptions } from './common.ts';
import { embeddingShapes, linearShapes, parseConfig, TaskConfigError, recurrentShapes, type ParamShapes } from './task-options.ts';
import { arch, FIELDS, pick } from './fields.ts';
import { sentence, type SameKeys } from '../util/schema.ts';
import { isRecord } from '../util/options.ts';

export type Pooling = 'last' | 'mean' | 'max' | 'mean+max';

/** Features per direction and unit that a pooling hands the head: 'mean+max' concatenates two. */
export const poolingWidth = (p: Pooling): number => (p === 'mean+max' ? 2 : 1);

// ---- model ----------------------------------------------------------------------------------

export interface RNNClassifierOptions {
  vocabSize: number;
  numClasses: number;
  embeddingDim: number;
  hiddenSize: number;
  numLayers: number;
  cell: CellKind;
  bidirectional: boolean;
  pooling: Pooling;
  /** Dropout on the pooled features (and between stacked layers), in training. */
  dropout: number;
  padId: number;
  rng: Rng;
}

export class RNNClassifier extends Module {
  readonly embedding: Embedding;
  readonly rnn: RecurrentBase;
  readonly head: Linear;
  readonly drop: Dropout;

  constructor(readonly opts: RNNClassifierOptions) {
    super();
    const { rng } = opts;
    this.embedding = this.registerModule('embedding', new Embedding(opts.vocabSize, opts.embeddingDim, { paddingIdx: opts.padId, rng }));
    this.rnn = this.registerModule('rnn', makeRecurrent(opts.cell, { inputSize: opts.embeddingDim, hiddenSize: opts.hiddenSize, numLayers: opts.numLayers, bidirectional: opts.bidirectional, dropout: opts.dropout, rng }));
    const D = opts.bidirectional ? 2 : 1;
    this.head = this.registerModule('head', new Linear(poolingWidth(opts.pooling) * D * opts.hiddenSize, opts.numClasses, { rng }));
    this.drop = this.registerModule('drop', new Dropout(opts.dropout, rng));
  }

  /** ids: [T, B] time-major, lengths: [B] (each ≥ 1). Returns logits [B, C]. */
  forward(ids: ArrayLike<number>, lengths: ArrayLike<number>, T: number, B: number): Tensor {
    if (ids.length !== T * B) throw new RangeError(`RNNClassifier: ${ids.length} ids do not fill [T = ${T}, B = ${B}]`);
    for (let b = 0; b < B; b++) if (!(lengths[b] >= 1)) throw new RangeError(`RNNClassifier: sample ${b} is empty (length ${lengths[b]}); every input needs at least one token`);
    const x = this.embedding.forward(ids, [T, B]);
    const r = this.rnn.forward(x, { lengths });
    const H = this.opts.hiddenSize;
    const D = this.opts.bidirectional ? 2 : 1;
    let feat: Tensor;
    if (this.opts.pooling === 'last') {
      const L = this.opts.numLayers;
      const top = L === 1 ? r.h : slice(r.h, 0, (L - 1) * D, D); // [D, B, H]
      feat = D === 1 ? reshape(top, [B, H]) : reshape(permute(top, [1, 0, 2]), [B, D * H]);
    } else if (this.opts.pooling === 'max') {
      feat = maxOverTime(r.output, lengths); // [B, D·H]
    } else if (this.opts.pooling === 'mean') {
      feat = meanOverSteps(r.output, lengths); // [B, D·H]
    } else {
      feat = concat([meanOverSteps(r.output, lengths), maxOverTime(r.output, lengths)], 1); // [B, 2·D·H]
    }
    return this.head.forward(this.drop.forward(feat));
  }
}

/** out: [T, B, F] → [B, F], the mean over steps t < lengths[b] (exact: see the header). */
function meanOverSteps(out: Tensor, lengths: ArrayLike<number>): Tensor {
  const B = out.shape[1];
  const inv = new Float64Array(B);
  for (let b = 0; b < B; b++) inv[b] = 1 / lengths[b];
  return mul(sum(out, 0), tensor(inv, [B, 1], { dtype: out.dtype, backend: out.backend }));
}


// ---- task -------------------------------------------------------------------------------------

export interface SeqBatch {
  /** [T, B] time-major */
  ids: Int32Array;
  lengths: Int32Array;
  T: number;
  B: number;
  /** [B] class indices */
  labels: Int32Array;
  /**
   * The class names the indices of `labels` refer to (the labels of the task that built the
   * batch); evaluation maps them onto the evaluated model's own labels by name.
   */
  labelNames?: readonly string[];
}

/** What `describe().config` holds (JSON); with the vocabulary it rebuilds the task. */
export interface ClassifierConfig {
  task: string;
  arch: 'rnn-classifier';
  tokenizer: TokenizerJSON;
  labels: string[];
  cell: CellKind;
  embeddingDim: number;
  hiddenSize: number;
  numLayers: number;
  bidirectional: boolean;
  pooling: Pooling;
  dropout: number;
  /** Longest input in tokens; longer inputs are cut per `truncate`, or rejected when it is false. */
  maxLen: number;
  truncate: TruncateMode;
}

export interface EncodedExample {
  ids: Int32Array;
  label: number;
}

export class ClassificationTask implements Task<SeqBatch> {
  readonly name: string;
  readonly model: RNNClassifier;
  readonly higherIsBetter = true;
  readonly tokenizer: Tokenizer;

  constructor(readonly config: ClassifierConfig, readonly vocab: Vocab, seed = 0) {
    this.name = config.task;
    this.tokenizer = tokenizerFromJSON(config.tokenizer);
    const padId = vocab.requireSpecial('pad', 'the classifier');
    vocab.requireSpecial('unk', 'the classifier');
    this.model = new RNNClassifier({
      vocabSize: vocab.size,
      numClasses: config.labels.length,
      embeddingDim: config.embeddingDim,
      hiddenSize: config.hiddenSize,
      numLayers: config.numLayers,
      cell: config.cell,
      bidirectional: config.bidirectional,
      pooling: config.pooling,
      dropout: config.dropout,
      padId,
      rng: new Rng(seed),
    });
  }

  /** Text → ids (unknown tokens → unk), cut to maxLen per the config's truncate mode. */
  encode(text: string, what = 'input'): Int32Array {
    const ids = this.vocab.encode(this.tokenizer.tokenize(text));
    if (ids.length === 0) throw new RangeError(`${this.name}: ${what} has no tokens (an empty text cannot be classified)`);
    return fitLength(ids, this.config.maxLen, this.config.truncate, `${this.name}: ${what}`);
  }

  collate(examples: EncodedExample[]): SeqBatch {
    const p = padSequences(examples.map((e) => e.ids), { padId: this.vocab.padId!, maxLen: this.config.maxLen });
    return { ...p, labels: Int32Array.from(examples, (e) => e.label), labelNames: this.config.labels };
  }

  /** A training (shuffled per epoch, bucketed by length) or evaluation (fixed order) source. */
  source(examples: EncodedExample[], batchSize: number, seed: number, shuffle: boolean): BatchSource<SeqBatch> {
    return new ExampleSource(examples, { batchSize, seed, shuffle, lengthOf: (e) => e.ids.length, collate: (es) => this.collate(es) });
  }

  step(batch: SeqBatch): StepResult {
    const logits = this.model.forward(batch.ids, batch.lengths, batch.T, batch.B);
    return { loss: crossEntropy(logits, batch.labels), count: batch.B };
  }

  /**
   * The batch's texts in `parts` groups (data-parallel training); step's loss is a mean over the B
   * texts. Each shard keeps the batch's padded length T (its own samples may be shorter).
   */
  shard(batch: SeqBatch, parts: number): SeqBatch[] {
    return shardRanges(batch.B, parts, this.name).map(([b0, b1]) => ({
      ...batch, ids: takeColumns(batch.ids, batch.T, batch.B, b0, b1), lengths: batch.lengths.slice(b0, b1), labels: batch.labels.slice(b0, b1), B: b1 - b0,
    }));
  }

  /**
   * Accuracy, F1, macro-F1 and loss on held-out batches. Batches built for another task (data read
   * afresh for `recur eval`, whose labels are those of that data) are mapped onto this model's
   * labels by name; a label the model never saw is an error naming it, never a silent other class.
   */
  evaluate(data: BatchSource<SeqBatch>): Record<string, number> {
    return evaluateClassifier(this.model, relabel(this.name, data, this.config.labels), this.config.labels.length, (b) => this.model.forward(b.ids, b.lengths, b.T, b.B));
  }

  describe(): { config: ClassifierConfig; vocab: VocabJSON } {
    return { config: { ...this.config }, vocab: this.vocab.toJSON() };
  }

  /** The predicted label for each text. */
  predict(texts: readonly string[], batchSize = 64): string[] {
    const enc = texts.map((t, i) => this.encode(t, `input ${i}`));
    const out: string[] = [];
    withEval(this.model, () => {
      for (let s = 0; s < enc.length; s += batchSize) {
        const chunk = enc.slice(s, s + batchSize);
        for (const k of argmaxRows(this.logitsOf(chunk).toArray(), chunk.length, this.config.labels.length)) out.push(this.config.labels[k]);
      }
    });
    return out;
  }

  /** The logits [B, C] of encoded texts (padded into one batch); the caller sets the mode (eval for inference). */
  logitsOf(encoded: Int32Array[]): Tensor {
    const p = padSequences(encoded, { padId: this.vocab.padId!, maxLen: this.config.maxLen });
    return this.model.forward(p.ids, p.lengths, p.T, p.B);
  }
}

/** `data` with each batch's label indices moved from its `labelNames` to `labels` (see evaluate). */
function relabel(name: string, data: BatchSource<SeqBatch>, labels: readonly string[]): BatchSource<SeqBatch> {
  const same = (names: readonly string[]): boolean => names === labels || (names.length === labels.length && names.every((l, i) => l === labels[i]));
  const index = new Map(labels.map((l, i) => [l, i]));
  return {
    numBatches: data.numBatches,
    get(epoch: number, i: number): SeqBatch {
      const b = data.get(epoch, i);
      if (!b.labelNames || same(b.labelNames)) return b;
      const names = b.labelNames;
      const unknown = new Set<string>();
      const out = new Int32Array(b.labels.length);
      for (let k = 0; k < b.labels.length; k++) {
        const l = names[b.labels[k]];
        const j = index.get(l);
        if (j === undefined) unknown.add(l);
        else out[k] = j;
      }
      // every label of the data the model lacks, not only those in this batch
      if (unknown.size) {
        const all = names.filter((l) => !index.has(l));
        throw new TaskConfigError(`${name}: the data has label${all.length > 1 ? 's' : ''} ${all.map((l) => JSON.stringify(l)).join(', ')} that the model never saw (its labels: ${labels.map((l) => JSON.stringify(l)).join(', ')})`);
      }
      return { ...b, labels: out, labelNames: labels };
    },
  };
}

/** Run fn in eval mode without gradient recording, restoring the mode after (moved to nn/module.ts). */
export { withEval };

// ---- config validation and loading ------------------------------------------------------------

/**
 * What `recur.config` of a classifier holds: the fields of models/fields.ts, and the tokenizer as
 * its JSON (checked by rebuilding it).
 */
const classifierConfig = z
  .strictObject({
    task: FIELDS.task,
    arch: arch('rnn-classifier'),
    tokenizer: z.custom<TokenizerJSON>(isRecord, { error: 'a tokenizer description (an object)' }),
    ...pick('labels', 'cell', 'embeddingDim', 'hiddenSize', 'numLayers', 'bidirectional', 'pooling', 'dropout', 'maxLen', 'truncate'),
  })
  .check((ctx) => {
    try {
      tokenizerFromJSON(ctx.value.tokenizer);
    } catch (e) {
      ctx.issues.push(sentence(ctx.value, `'tokenizer': ${(e as Error).message}`));
    }
  }) satisfies z.ZodType<ClassifierConfig>;
const configTypesMatch: SameKeys<ClassifierConfig, z.output<typeof classifierConfig>> = true;

/**
 * Check an object read from a model file is a ClassifierConfig. With `limits` (loading a file),
 * sizes are checked against them too.
 */
export function checkClassifierConfig(c: unknown, where = 'classifier config', limits: Partial<Limits> | null = null): ClassifierConfig {
  return parseConfig(where, classifierConfig, c, { limits });
}

/** The parameters (names and shapes) a classifier config implies for a vocabulary of V tokens. */
export function classifierTensorShapes(c: ClassifierConfig, V: number): ParamShapes {
  const D = c.bidirectional ? 2 : 1;
  return [
    ...embeddingShapes('embedding', V, c.embeddingDim),
    ...recurrentShapes('rnn', c.cell, c.embeddingDim, c.hiddenSize, c.numLayers, c.bidirectional),
    ...linearShapes('head', poolingWidth(c.pooling) * D * c.hiddenSize, c.labels.length),
  ];
}

/**
 * Rebuild a ClassificationTask from a decoded model file. Everything the file says is checked
 * before the model is built: the config (types, ranges, limits), the vocabulary size, and that the
 * tensors are exactly those the config implies.
 */
export function loadClassifier(file: ModelFile, path = 'model file', opts: LoadTaskOptions = {}): ClassificationTask {
  return loadVocabTask(file, path, opts, { checkConfig: checkClassifierConfig, shapes: classifierTensorShapes, make: (config, vocab) => new ClassificationTask(config, vocab) });
}

// ---- building from data --------------------------------------------------------------------------

/** How to build a classifier: its config's model keys, and how the vocabulary and batches are made. */
export type ClassifierBuildOptions = Omit<ClassifierConfig, 'task' | 'arch' | 'tokenizer' | 'labels'> & {
  tokenizer: 'char' | 'word';
  lowercase: boolean;
  /** Vocabulary: tokens seen fewer times in training become unk. */
  minCount: number;
  /** Vocabulary size cap (specials included). */
  maxVocab: number;
  batchSize: number;
  seed: number;
};

/**
 * A classification task and its sources from labelled texts. The vocabulary is built from the
 * TRAINING texts only (pad and unk specials), so held-out tokens never leak into it.
 */
export function buildClassifier(name: string, labels: readonly string[], o: ClassifierBuildOptions, data: LabeledSplits): { task: ClassificationTask; train: BatchSource<SeqBatch>; val: BatchSource<SeqBatch>; test?: BatchSource<SeqBatch> } {
  const tok = tokenizerFromJSON(o.tokenizer === 'word' ? { type: 'word', lowercase: o.lowercase, maxTokenChars: 20 } : { type: 'char', lowercase: o.lowercase });
  const trainTokens = data.train.map((e) => tok.tokenize(e.text));
  const vocab = Vocab.build(trainTokens, { minCount: o.minCount, maxSize: o.maxVocab, specials: { pad: true, unk: true, bos: false, eos: false } });
  const config: ClassifierConfig = {
    task: name,
    arch: 'rnn-classifier',
    tokenizer: tok.toJSON(),
    labels: [...labels],
    cell: o.cell,
    embeddingDim: o.embeddingDim,
    hiddenSize: o.hiddenSize,
    numLayers: o.numLayers,
    bidirectional: o.bidirectional,
    pooling: o.pooling,
    dropout: o.dropout,
    maxLen: o.maxLen,
    truncate: o.truncate,
  };
  checkClassifierConfig(config);
  const task = new ClassificationTask(config, vocab, o.seed);
  for (const [split, list] of Object.entries(data)) {
    for (const e of list ?? []) {
      if (!(Number.isInteger(e.label) && e.label >= 0 && e.label < labels.length)) throw new RangeError(`${name}: a ${split} example has label ${e.label}, outside [0, ${labels.length})`);
    }
  }
  const enc = (list: { text: string; label: number }[], split: string): EncodedExample[] => list.map((e, i) => ({ ids: task.encode(e.text, `${split} example ${i}`), label: e.label }));
  return { task, ...splitSources(task, data, enc, o) };
}
