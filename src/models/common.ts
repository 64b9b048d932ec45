/**
 * Helpers that several task models share: the recurrent layer by cell name, the classifier
 * evaluation (feedforward and the text classifiers), the shape of labelled splits, the size of a
 * stored vocabulary and the loaders' options. They lived in classifier.ts while it was the first
 * task; the other tasks import them from here, not from a sibling task.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import type { DType } from '../backend/interface.ts';
import { crossEntropy } from '../autograd/ops/nn.ts';
import { withEval, type Module } from '../nn/module.ts';
import { createRecurrent, type RecurrentBase } from '../nn/recurrent.ts';
import type { BatchSource } from '../train/task.ts';
import type { Limits } from '../io/limits.ts';
import { TaskConfigError, checkModelTensors, checkVocabSize, type ParamShapes } from './task-options.ts';
import { asStateDict, type ModelFile } from '../io/model.ts';
import { Vocab } from '../data/vocab.ts';
import { argmaxRows, classificationMetrics } from './metrics.ts';

export type { CellKind } from './fields.ts';
import type { CellKind } from './fields.ts';

/** Make a recurrent layer of the given kind (time-major). */
export function makeRecurrent(cell: CellKind, o: { inputSize: number; hiddenSize: number; numLayers?: number; bidirectional?: boolean; dropout?: number; dtype?: DType; rng: Rng }): RecurrentBase {
  const common = { inputSize: o.inputSize, hiddenSize: o.hiddenSize, numLayers: o.numLayers ?? 1, bidirectional: o.bidirectional ?? false, dropout: o.dropout ?? 0, ...(o.dtype ? { dtype: o.dtype } : {}), rng: o.rng };
  if (cell === 'lstm' || cell === 'gru' || cell === 'rnn') return createRecurrent(cell, common);
  throw new TaskConfigError(`unknown cell '${String(cell)}' (expected lstm, gru or rnn)`);
}

export interface LabeledSplits {
  train: { text: string; label: number }[];
  val: { text: string; label: number }[];
  test?: { text: string; label: number }[];
}

/** The number of tokens of a stored Vocab JSON, when it has that form (for the limit check). */
export function vocabJSONSize(v: unknown): number {
  const tokens = v !== null && typeof v === 'object' ? (v as { tokens?: unknown }).tokens : undefined;
  return Array.isArray(tokens) ? tokens.length : 0;
}

/** Options of the task loaders. */
export interface LoadTaskOptions {
  /** Resource limits for the file's config and tensors (io/limits.ts defaults, with these overrides). */
  limits?: Partial<Limits>;
}

/**
 * Rebuild a task whose model file holds a config and a Vocab (classifier, feed-forward, name
 * generator): the config, the vocabulary size and the tensors the config implies are all checked
 * before the model is built, then the weights are loaded.
 */
export function loadVocabTask<C, T extends { model: Module }>(
  file: ModelFile,
  path: string,
  opts: LoadTaskOptions,
  kind: { checkConfig(config: unknown, where: string, limits: Partial<Limits>): C; shapes(config: C, V: number): ParamShapes; make(config: C, vocab: Vocab): T },
): T {
  const limits = opts.limits ?? {};
  const config = kind.checkConfig(file.config, `${path}: config`, limits);
  checkVocabSize(`${path}: recur.vocab`, vocabJSONSize(file.vocab), limits);
  const vocab = Vocab.fromJSON(file.vocab);
  checkModelTensors(path, kind.shapes(config, vocab.size), file.tensors, { limits });
  const task = kind.make(config, vocab);
  task.model.loadStateDict(asStateDict(file));
  return task;
}

/**
 * Accuracy, F1, macro-F1, precision and recall (of class 1 when binary: spam, male; else macro) and mean loss of a classifier over a held-out source (eval mode, no
 * gradients); shared by every classification task.
 */
export function evaluateClassifier<B extends { B: number; labels: ArrayLike<number> }>(
  model: Module, data: BatchSource<B>, C: number, logitsOf: (batch: B) => Tensor,
): Record<string, number> {
  const preds: number[] = [];
  const gold: number[] = [];
  let lossSum = 0;
  withEval(model, () => {
    for (let i = 0; i < data.numBatches; i++) {
      const b = data.get(0, i);
      const logits = logitsOf(b);
      lossSum += crossEntropy(logits, b.labels, { reduction: 'sum' }).item();
      preds.push(...argmaxRows(logits.toArray(), b.B, C));
      for (let k = 0; k < b.labels.length; k++) gold.push(b.labels[k]);
    }
  });
  const m = classificationMetrics(preds, gold, C);
  return { accuracy: m.accuracy, f1: m.f1, macroF1: m.macroF1, precision: m.precision, recall: m.recall, loss: lossSum / gold.length };
}

/**
 * What the sequence-output tasks (seq2seq, caption) evaluate: the teacher-forced loss per token
 * over the data, in eval mode without gradients, while each batch's decoded outputs are scored
 * against its references (`score(prediction, reference)`). Returns the mean loss.
 */
export function decodeAndScore<B extends { tokens: number; refs: readonly unknown[] }, P>(
  model: Module & { loss(batch: B): Tensor },
  data: BatchSource<B>,
  decode: (batch: B) => P[],
  score: (prediction: P, reference: B['refs'][number]) => void,
): number {
  let lossSum = 0, tokens = 0;
  withEval(model, () => {
    for (let i = 0; i < data.numBatches; i++) {
      const b = data.get(0, i);
      lossSum += model.loss(b).item() * b.tokens;
      tokens += b.tokens;
      decode(b).forEach((p, k) => score(p, b.refs[k]));
    }
  });
  return lossSum / tokens;
}

/**
 * A task's batch sources from its data splits: each split's examples encoded (`encode(list,
 * split)`), the training source shuffled, the test source only when there is test data.
 */
export function splitSources<T, E, B>(
  task: { source(examples: E[], batchSize: number, seed: number, shuffle: boolean): BatchSource<B> },
  data: { train: T[]; val: T[]; test?: T[] },
  encode: (list: T[], split: 'train' | 'val' | 'test') => E[],
  o: { batchSize: number; seed: number },
): { train: BatchSource<B>; val: BatchSource<B>; test?: BatchSource<B> } {
  return {
    train: task.source(encode(data.train, 'train'), o.batchSize, o.seed, true),
    val: task.source(encode(data.val, 'val'), o.batchSize, o.seed, false),
    test: data.test && data.test.length ? task.source(encode(data.test, 'test'), o.batchSize, o.seed, false) : undefined,
  };
}
