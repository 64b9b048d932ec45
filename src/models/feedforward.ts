/**
 * One-to-one: a feed-forward baseline through the same Task API as the recurrent models.
 *
 *   text → features (bag of characters ⊕ first character ⊕ last character) → Linear(F, H) → ReLU
 *        → Dropout → Linear(H, C)
 *
 * Features, for a character vocabulary of size V (F = 3V): the count of each character divided by
 * the text's length, then a one-hot of the first and one of the last character. No order beyond
 * the two ends is seen — that is the point of the baseline: what a recurrent model gains over it
 * is what order buys. Unknown characters at inference count as the vocabulary's unk token.
 *
 * PyTorch equivalent (same parameter names):
 *   self.hidden = nn.Linear(F, H); self.head = nn.Linear(H, C)
 */
import { z } from 'zod';
import { Tensor, tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { relu } from '../autograd/ops/elementwise.ts';
import { crossEntropy } from '../autograd/ops/nn.ts';
import { Module, withEval } from '../nn/module.ts';
import { Dropout, Linear } from '../nn/layers.ts';
import type { BatchSource, StepResult, Task } from '../train/task.ts';
import { type ModelFile } from '../io/model.ts';
import { Vocab, type VocabJSON } from '../data/vocab.ts';
import { CharTokenizer } from '../data/tokenize.ts';
import { ExampleSource } from '../data/batch.ts';
import { argmaxRows } from './metrics.ts';
import { evaluateClassifier, loadVocabTask, splitSources, type LabeledSplits, type LoadTaskOptions } from './common.ts';
import type { Limits } from '../io/limits.ts';
import { linearShapes, parseConfig, type ParamShapes } from './task-options.ts';
import { arch, FIELDS, pick } from './fields.ts';
import type { SameKeys } from '../util/schema.ts';

export class MLPClassifier extends Module {
  readonly hidden: Linear;
  readonly head: Linear;
  readonly drop: Dropout;

  constructor(readonly inFeatures: number, readonly hiddenSize: number, readonly numClasses: number, dropout: number, rng: Rng) {
    super();
    this.hidden = this.registerModule('hidden', new Linear(inFeatures, hiddenSize, { rng }));
    this.drop = this.registerModule('drop', new Dropout(dropout, rng));
    this.head = this.registerModule('head', new Linear(hiddenSize, numClasses, { rng }));
  }

  /** x: [B, F] → logits [B, C] */
  forward(x: Tensor): Tensor {
    return this.head.forward(this.drop.forward(relu(this.hidden.forward(x))));
  }
}

export interface FeedForwardConfig {
  task: string;
  arch: 'bag-of-chars-mlp';
  labels: string[];
  lowercase: boolean;
  hiddenSize: number;
  dropout: number;
}

export interface FeatureBatch {
  /** [B, F] */
  x: Float32Array;
  B: number;
  labels: Int32Array;
}

interface FeatureExample {
  x: Float32Array;
  label: number;
}

export class FeedForwardTask implements Task<FeatureBatch> {
  readonly name: string;
  readonly model: MLPClassifier;
  readonly higherIsBetter = true;
  readonly tokenizer: CharTokenizer;
  readonly numFeatures: number;

  constructor(readonly config: FeedForwardConfig, readonly vocab: Vocab, seed = 0) {
    this.name = config.task;
    vocab.requireSpecial('unk', 'the feed-forward classifier');
    this.tokenizer = new CharTokenizer({ lowercase: config.lowercase });
    this.numFeatures = 3 * vocab.size;
    this.model = new MLPClassifier(this.numFeatures, config.hiddenSize, config.labels.length, config.dropout, new Rng(seed));
  }

  /** The feature vector of one text (see the file comment). */
  features(text: string, what = 'input'): Float32Array {
    const ids = this.vocab.encode(this.tokenizer.tokenize(text));
    if (ids.length === 0) throw new RangeError(`${this.name}: ${what} is empty`);
    const V = this.vocab.size;
    const x = new Float32Array(3 * V);
    for (const i of ids) x[i] += 1 / ids.length;
    x[V + ids[0]] = 1;
    x[2 * V + ids[ids.length - 1]] = 1;
    return x;
  }

  private stack(xs: Float32Array[]): Float32Array {
    const F = this.numFeatures;
    const out = new Float32Array(xs.length * F);
    xs.forEach((x, b) => out.set(x, b * F));
    return out;
  }

  source(examples: FeatureExample[], batchSize: number, seed: number, shuffle: boolean): BatchSource<FeatureBatch> {
    return new ExampleSource(examples, { batchSize, seed, shuffle, collate: (es) => ({ x: this.stack(es.map((e) => e.x)), B: es.length, labels: Int32Array.from(es, (e) => e.label) }) });
  }

  private logits(b: { x: Float32Array; B: number }): Tensor {
    const p = this.model.hidden.weight;
    return this.model.forward(tensor(b.x, [b.B, this.numFeatures], { dtype: p.dtype, backend: p.backend }));
  }

  step(batch: FeatureBatch): StepResult {
    return { loss: crossEntropy(this.logits(batch), batch.labels), count: batch.B };
  }

  evaluate(data: BatchSource<FeatureBatch>): Record<string, number> {
    return evaluateClassifier(this.model, data, this.config.labels.length, (b) => this.logits(b));
  }

  describe(): { config: FeedForwardConfig; vocab: VocabJSON } {
    return { config: { ...this.config }, vocab: this.vocab.toJSON() };
  }

  predict(texts: readonly string[]): string[] {
    const xs = texts.map((t, i) => this.features(t, `input ${i}`));
    if (xs.length === 0) return [];
    return withEval(this.model, () => {
      const logits = this.logits({ x: this.stack(xs), B: xs.length });
      return [...argmaxRows(logits.toArray(), xs.length, this.config.labels.length)].map((k) => this.config.labels[k]);
    });
  }
}

/** What `recur.config` of the feed-forward baseline holds (fields of models/fields.ts). */
const feedForwardConfig = z.strictObject({
  task: FIELDS.task,
  arch: arch('bag-of-chars-mlp'),
  ...pick('labels', 'lowercase', 'hiddenSize', 'dropout'),
}) satisfies z.ZodType<FeedForwardConfig>;
const configTypesMatch: SameKeys<FeedForwardConfig, z.output<typeof feedForwardConfig>> = true;

/** Check a stored feed-forward config; with `limits` (loading a file), sizes against them too. */
export function checkFeedForwardConfig(c: unknown, where = 'feed-forward config', limits: Partial<Limits> | null = null): FeedForwardConfig {
  return parseConfig(where, feedForwardConfig, c, { limits });
}

/** The parameters a feed-forward config implies for a character vocabulary of V (F = 3V features). */
export function feedForwardTensorShapes(c: FeedForwardConfig, V: number): ParamShapes {
  return [...linearShapes('hidden', 3 * V, c.hiddenSize), ...linearShapes('head', c.hiddenSize, c.labels.length)];
}

/** How to build the baseline: its config's model keys, and how batches are made. */
export type FeedForwardBuildOptions = Pick<FeedForwardConfig, 'lowercase' | 'hiddenSize' | 'dropout'> & { batchSize: number; seed: number };

/** Task + sources from labelled texts; the character vocabulary (pad, unk) comes from training texts. */
export function buildFeedForward(name: string, labels: readonly string[], o: FeedForwardBuildOptions, data: LabeledSplits): { task: FeedForwardTask; train: BatchSource<FeatureBatch>; val: BatchSource<FeatureBatch>; test?: BatchSource<FeatureBatch> } {
  const tok = new CharTokenizer({ lowercase: o.lowercase });
  const vocab = Vocab.build(data.train.map((e) => tok.tokenize(e.text)), { specials: { pad: true, unk: true, bos: false, eos: false } });
  const config: FeedForwardConfig = { task: name, arch: 'bag-of-chars-mlp', labels: [...labels], lowercase: o.lowercase, hiddenSize: o.hiddenSize, dropout: o.dropout };
  checkFeedForwardConfig(config);
  const task = new FeedForwardTask(config, vocab, o.seed);
  const enc = (list: { text: string; label: number }[], split: string): FeatureExample[] => list.map((e, i) => ({ x: task.features(e.text, `${split} example ${i}`), label: e.label }));
  return { task, ...splitSources(task, data, enc, o) };
}

/** Rebuild the task from a decoded model file: config, vocabulary and tensors checked before the model is built. */
export function loadFeedForward(file: ModelFile, path = 'model file', opts: LoadTaskOptions = {}): FeedForwardTask {
  return loadVocabTask(file, path, opts, { checkConfig: checkFeedForwardConfig, shapes: feedForwardTensorShapes, make: (config, vocab) => new FeedForwardTask(config, vocab) });
}
