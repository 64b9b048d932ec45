/**
 * One-to-one: a character n-gram logistic regression, the linear baseline for the name tasks.
 *
 *   text → '^' + text + '$' → every character n-gram of order minOrder … maxOrder (a bag, with
 *        counts) → Σ over the bag of W[ngram] + b → class logits → softmax
 *
 * A bag of n-gram ids summed through an embedding table with one column per class is exactly a
 * linear layer over n-gram count features (the sparse form of x·Wᵀ + b), so this is multinomial
 * logistic regression — no hidden layer, no order beyond the n-grams themselves. Dropout, when
 * set, drops single n-gram occurrences from the bag in training (feature dropout); `l2` adds
 * l2·Σ W² (bias excluded) to each batch's mean loss.
 *
 * The markers '^' and '$' make prefixes and suffixes their own features ("^an" ≠ "an"), which is
 * most of what a name's gender hangs on. A marker alone is not a feature (it is in every text: the
 * bias already says that). Input characters '^' and '$' are not escaped: a name holding them would
 * share n-grams with a boundary, which names do not. N-grams unseen in training (or rarer than
 * minCount) are dropped at encoding; a text with no known n-gram is classified by the bias alone.
 *
 * Weights start at zero (the convex problem has one optimum; no symmetry to break).
 *
 * PyTorch equivalent (same parameter names):
 *   self.features = nn.EmbeddingBag(V, C, mode='sum', padding_idx=0); self.bias = nn.Parameter(torch.zeros(C))
 */
import { z } from 'zod';
import { Tensor, zeros } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { add, mul, sum } from '../autograd/ops/elementwise.ts';
import { crossEntropy } from '../autograd/ops/nn.ts';
import { Module, withEval } from '../nn/module.ts';
import { Dropout, Embedding } from '../nn/layers.ts';
import type { BatchSource, StepResult, Task } from '../train/task.ts';
import { type ModelFile } from '../io/model.ts';
import { Vocab, type VocabJSON } from '../data/vocab.ts';
import { ExampleSource } from '../data/batch.ts';
import type { Limits } from '../io/limits.ts';
import { argmaxRows } from './metrics.ts';
import { evaluateClassifier, loadVocabTask, splitSources, type LabeledSplits, type LoadTaskOptions } from './common.ts';
import { embeddingShapes, parseConfig, TaskConfigError, type ParamShapes } from './task-options.ts';
import { arch, FIELDS, int, num, pick } from './fields.ts';
import { sentence, type SameKeys } from '../util/schema.ts';

/** The longest n-gram order a config may ask for (longer ones are almost all seen once). */
export const MAX_NGRAM_ORDER = 8;
export const NGRAM_START = '^';
export const NGRAM_END = '$';

/** The options of the n-gram task that no other task has (declared as the fields of fields.ts are). */
export const NGRAM_FIELDS = {
  minOrder: int(1, { max: MAX_NGRAM_ORDER }).describe('shortest character n-gram (boundary markers ^ and $ count as characters)'),
  maxOrder: int(1, { max: MAX_NGRAM_ORDER }).describe('longest character n-gram (≥ minOrder)'),
  l2: num(0).describe('L2 penalty: l2·ΣW² (bias excluded) added to each batch loss'),
} as const;

/**
 * The character n-grams of a text, orders minOrder … maxOrder, with repeats (a bag), after
 * lower-casing when asked and adding the boundary markers. Order: by order, then by position.
 *
 *   charNgrams('Ann', 1, 2, true) → ['a', 'n', 'n', '^a', 'an', 'nn', 'n$']
 */
export function charNgrams(text: string, minOrder: number, maxOrder: number, lowercase: boolean): string[] {
  const chars = [NGRAM_START, ...(lowercase ? text.toLowerCase() : text), NGRAM_END];
  const out: string[] = [];
  for (let n = minOrder; n <= maxOrder; n++) {
    for (let s = 0; s + n <= chars.length; s++) {
      if (n === 1 && (s === 0 || s === chars.length - 1)) continue; // a marker alone: in every text
      out.push(chars.slice(s, s + n).join(''));
    }
  }
  return out;
}

// ---- model ----------------------------------------------------------------------------------

export class NgramLogReg extends Module {
  /** [V, C]: row v is n-gram v's contribution to each class logit (row 0, padding, stays 0). */
  readonly features: Embedding;
  /** [C] */
  readonly bias: Tensor;
  readonly drop: Dropout;

  constructor(readonly vocabSize: number, readonly numClasses: number, dropout: number, rng: Rng) {
    super();
    this.features = this.registerModule('features', new Embedding(vocabSize, numClasses, { paddingIdx: 0, rng }));
    const W = this.features.weight;
    W.backend.fill(W.storage, 0, 0, W.size);
    this.bias = this.registerParameter('bias', zeros([numClasses], { dtype: W.dtype }));
    this.drop = this.registerModule('drop', new Dropout(dropout, rng));
  }

  /** ids: [B, K] n-gram ids padded with 0 → logits [B, C] = Σ_k W[ids[b, k]] + b. */
  forward(ids: ArrayLike<number>, B: number, K: number): Tensor {
    if (ids.length !== B * K) throw new RangeError(`NgramLogReg: ${ids.length} ids do not fill [B = ${B}, K = ${K}]`);
    const w = this.drop.forward(this.features.forward(ids, [B, K])); // [B, K, C]
    return add(sum(w, 1), this.bias); // [B, C]
  }

  /** Σ W² over the n-gram table (the L2 term; the padding row is 0). */
  weightSquareSum(): Tensor {
    const W = this.features.weight;
    return sum(mul(W, W));
  }
}

// ---- task -------------------------------------------------------------------------------------

/** What `describe().config` holds (JSON); with the n-gram vocabulary it rebuilds the task. */
export interface NgramConfig {
  task: string;
  arch: 'char-ngram-logreg';
  labels: string[];
  lowercase: boolean;
  minOrder: number;
  maxOrder: number;
  dropout: number;
}

export interface NgramBatch {
  /** [B, K] n-gram ids, 0-padded */
  ids: Int32Array;
  B: number;
  K: number;
  labels: Int32Array;
}

interface NgramExample {
  ids: Int32Array;
  label: number;
}

export class NgramTask implements Task<NgramBatch> {
  readonly name: string;
  readonly model: NgramLogReg;
  readonly higherIsBetter = true;

  /** `l2`: the training penalty (not part of the model, so not in the config). */
  constructor(readonly config: NgramConfig, readonly vocab: Vocab, seed = 0, readonly l2 = 0) {
    this.name = config.task;
    if (vocab.requireSpecial('pad', 'the n-gram classifier') !== 0) throw new TaskConfigError(`${this.name}: the n-gram vocabulary's pad token must be id 0`);
    this.model = new NgramLogReg(vocab.size, config.labels.length, config.dropout, new Rng(seed));
  }

  /** The n-grams of a text that the vocabulary knows, as ids (repeats kept: counts). */
  encode(text: string, what = 'input'): Int32Array {
    if (text.length === 0) throw new RangeError(`${this.name}: ${what} is empty`);
    const { minOrder, maxOrder, lowercase } = this.config;
    const ids: number[] = [];
    for (const g of charNgrams(text, minOrder, maxOrder, lowercase)) if (this.vocab.has(g)) ids.push(this.vocab.id(g));
    return Int32Array.from(ids);
  }

  collate(examples: readonly { ids: Int32Array }[]): { ids: Int32Array; B: number; K: number } {
    const B = examples.length;
    const K = Math.max(1, ...examples.map((e) => e.ids.length));
    const ids = new Int32Array(B * K); // 0 = padding
    examples.forEach((e, b) => ids.set(e.ids, b * K));
    return { ids, B, K };
  }

  source(examples: NgramExample[], batchSize: number, seed: number, shuffle: boolean): BatchSource<NgramBatch> {
    return new ExampleSource(examples, { batchSize, seed, shuffle, lengthOf: (e) => e.ids.length, collate: (es) => ({ ...this.collate(es), labels: Int32Array.from(es, (e) => e.label) }) });
  }

  step(batch: NgramBatch): StepResult {
    const ce = crossEntropy(this.model.forward(batch.ids, batch.B, batch.K), batch.labels);
    return { loss: this.l2 > 0 ? add(ce, mul(this.model.weightSquareSum(), this.l2)) : ce, count: batch.B };
  }

  evaluate(data: BatchSource<NgramBatch>): Record<string, number> {
    return evaluateClassifier(this.model, data, this.config.labels.length, (b) => this.model.forward(b.ids, b.B, b.K));
  }

  describe(): { config: NgramConfig; vocab: VocabJSON } {
    return { config: { ...this.config }, vocab: this.vocab.toJSON() };
  }

  predict(texts: readonly string[], batchSize = 256): string[] {
    const enc = texts.map((t, i) => ({ ids: this.encode(t, `input ${i}`) }));
    const out: string[] = [];
    withEval(this.model, () => {
      for (let s = 0; s < enc.length; s += batchSize) {
        const { ids, B, K } = this.collate(enc.slice(s, s + batchSize));
        for (const k of argmaxRows(this.model.forward(ids, B, K).toArray(), B, this.config.labels.length)) out.push(this.config.labels[k]);
      }
    });
    return out;
  }
}

// ---- config validation and loading ------------------------------------------------------------

/** What `recur.config` of the n-gram baseline holds. */
const ngramConfig = z
  .strictObject({
    task: FIELDS.task,
    arch: arch('char-ngram-logreg'),
    ...pick('labels', 'lowercase', 'dropout'),
    minOrder: NGRAM_FIELDS.minOrder,
    maxOrder: NGRAM_FIELDS.maxOrder,
  })
  .check((ctx) => {
    if (ctx.value.minOrder > ctx.value.maxOrder) ctx.issues.push(sentence(ctx.value, `'minOrder' (${ctx.value.minOrder}) must not exceed 'maxOrder' (${ctx.value.maxOrder})`));
  }) satisfies z.ZodType<NgramConfig>;
const configTypesMatch: SameKeys<NgramConfig, z.output<typeof ngramConfig>> = true;

/** Check a stored n-gram config; with `limits` (loading a file), sizes against them too. */
export function checkNgramConfig(c: unknown, where = 'n-gram config', limits: Partial<Limits> | null = null): NgramConfig {
  return parseConfig(where, ngramConfig, c, { limits });
}

/** The parameters an n-gram config implies for an n-gram vocabulary of V entries. */
export function ngramTensorShapes(c: NgramConfig, V: number): ParamShapes {
  return [...embeddingShapes('features', V, c.labels.length), ['bias', [c.labels.length]]];
}

/** Rebuild the task from a decoded model file: config, vocabulary and tensors checked before the model is built. */
export function loadNgram(file: ModelFile, path = 'model file', opts: LoadTaskOptions = {}): NgramTask {
  return loadVocabTask(file, path, opts, { checkConfig: checkNgramConfig, shapes: ngramTensorShapes, make: (config, vocab) => new NgramTask(config, vocab) });
}

// ---- building from data --------------------------------------------------------------------------

/** How to build the baseline: its config's model keys, the vocabulary, the penalty and batching. */
export type NgramBuildOptions = Pick<NgramConfig, 'lowercase' | 'minOrder' | 'maxOrder' | 'dropout'> & { minCount: number; maxVocab: number; l2: number; batchSize: number; seed: number };

/**
 * Task + sources from labelled texts. The n-gram vocabulary (pad first, then by count) comes from
 * the TRAINING texts only, so held-out n-grams never leak into it.
 */
export function buildNgram(name: string, labels: readonly string[], o: NgramBuildOptions, data: LabeledSplits): { task: NgramTask; train: BatchSource<NgramBatch>; val: BatchSource<NgramBatch>; test?: BatchSource<NgramBatch> } {
  const config: NgramConfig = { task: name, arch: 'char-ngram-logreg', labels: [...labels], lowercase: o.lowercase, minOrder: o.minOrder, maxOrder: o.maxOrder, dropout: o.dropout };
  checkNgramConfig(config, `${name}: options`);
  const bags = data.train.map((e) => charNgrams(e.text, o.minOrder, o.maxOrder, o.lowercase));
  const vocab = Vocab.build(bags, { minCount: o.minCount, maxSize: o.maxVocab, specials: { pad: true, unk: false, bos: false, eos: false } });
  const task = new NgramTask(config, vocab, o.seed, o.l2);
  const enc = (list: { text: string; label: number }[], split: string): NgramExample[] => list.map((e, i) => ({ ids: task.encode(e.text, `${split} example ${i}`), label: e.label }));
  return { task, ...splitSources(task, data, enc, o) };
}
