/**
 * One-to-many: a conditional character generator (a gender → a first name).
 *
 *   x_t = [ Embedding(V, E)(c_{t−1}) ; Embedding(K, Ec)(condition) ]   (the condition's vector is
 *   concatenated to every step's input)
 *   h_t = RNN(x_t, h_{t−1});   p(c_t | c_<t, condition) = softmax(Linear(H, V)(h_t))
 *
 * Training sequences are `<s> n a m e` → `n a m e </s>` (teacher forcing), padded with per-sample
 * lengths; padded positions have target −100 and add no loss. The held-out metric is the negative
 * log-likelihood per character (nats; `bitsPerChar` = nll / ln 2), counting the end token, and the
 * NLL per name.
 *
 * Generation starts from `<s>` and samples (softmax with temperature, src/infer/sample.ts) until
 * `</s>` or `maxLen` characters; the pad, start and unknown tokens are never sampled. Sampling is
 * seeded: a task loaded from a file generates the same names as the one that saved it.
 *
 * PyTorch equivalent (same parameter names): embedding = nn.Embedding(V, E, padding_idx=0),
 * condition = nn.Embedding(K, Ec), rnn = nn.GRU(E + Ec, H, L) (or LSTM/RNN), head = nn.Linear(H, V).
 */
import { z } from 'zod';
import type { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { crossEntropy } from '../autograd/ops/nn.ts';
import { concat } from '../autograd/ops/shape.ts';
import { Module, withEval } from '../nn/module.ts';
import { Embedding, Linear } from '../nn/layers.ts';
import type { RecurrentBase } from '../nn/recurrent.ts';
import type { BatchSource, StepResult, Task } from '../train/task.ts';
import { type ModelFile } from '../io/model.ts';
import { generate } from '../infer/sample.ts';
import { Vocab, type VocabJSON } from '../data/vocab.ts';
import { CharTokenizer } from '../data/tokenize.ts';
import { ExampleSource, fitLength } from '../data/batch.ts';
import { loadVocabTask, makeRecurrent, splitSources, type CellKind, type LoadTaskOptions } from './common.ts';
import type { Limits } from '../io/limits.ts';
import { embeddingShapes, linearShapes, parseConfig, recurrentShapes, type ParamShapes } from './task-options.ts';
import { arch, FIELDS, int, pick, strings } from './fields.ts';
import type { SameKeys } from '../util/schema.ts';

export interface GeneratorState {
  h: Tensor;
  c: Tensor | null;
}

export class ConditionalCharRNN extends Module {
  readonly embedding: Embedding;
  readonly condition: Embedding;
  readonly rnn: RecurrentBase;
  readonly head: Linear;

  constructor(readonly o: { vocabSize: number; numConditions: number; embeddingDim: number; conditionDim: number; hiddenSize: number; numLayers: number; cell: CellKind; dropout: number; padId: number; rng: Rng }) {
    super();
    const rng = o.rng;
    this.embedding = this.registerModule('embedding', new Embedding(o.vocabSize, o.embeddingDim, { paddingIdx: o.padId, rng }));
    this.condition = this.registerModule('condition', new Embedding(o.numConditions, o.conditionDim, { rng }));
    this.rnn = this.registerModule('rnn', makeRecurrent(o.cell, { inputSize: o.embeddingDim + o.conditionDim, hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: o.dropout, rng }));
    this.head = this.registerModule('head', new Linear(o.hiddenSize, o.vocabSize, { rng }));
  }

  /** ids: [T, B] time-major; conds: [B]. Returns logits [T, B, V] and the final state. */
  forward(ids: ArrayLike<number>, conds: ArrayLike<number>, T: number, B: number, lengths: ArrayLike<number> | null = null, state: GeneratorState | null = null): { logits: Tensor } & GeneratorState {
    if (ids.length !== T * B || conds.length !== B) throw new RangeError(`ConditionalCharRNN: ${ids.length} ids and ${conds.length} conditions do not fit [T = ${T}, B = ${B}]`);
    const condIds = new Int32Array(T * B);
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) condIds[t * B + b] = conds[b];
    const x = concat([this.embedding.forward(ids, [T, B]), this.condition.forward(condIds, [T, B])], 2);
    const r = this.rnn.forward(x, { lengths, h: state?.h ?? null, c: state?.c ?? null });
    return { logits: this.head.forward(r.output), h: r.h, c: r.c };
  }
}

export interface NameGenConfig {
  task: string;
  arch: 'conditional-char-rnn';
  /** The condition names, by index (e.g. ['female', 'male']). */
  conditions: string[];
  lowercase: boolean;
  cell: CellKind;
  embeddingDim: number;
  conditionDim: number;
  hiddenSize: number;
  numLayers: number;
  dropout: number;
  /** Longest name in characters, for training (longer is an error) and generation. */
  maxLen: number;
  /** Default sampling temperature for predict. */
  temperature: number;
  /** Seed of predict's sampling. */
  sampleSeed: number;
}

export interface GenBatch {
  /** [T, B] time-major: <s> c1 … cn, padded */
  inputs: Int32Array;
  /** [T, B]: c1 … cn </s>, −100 at padded positions */
  targets: Int32Array;
  lengths: Int32Array;
  conds: Int32Array;
  T: number;
  B: number;
  /** Real target tokens in the batch. */
  count: number;
}

export interface GenExample {
  /** Character ids of the name (no specials). */
  ids: Int32Array;
  cond: number;
}

export class NameGenTask implements Task<GenBatch> {
  readonly name: string;
  readonly model: ConditionalCharRNN;
  readonly higherIsBetter = false;
  readonly tokenizer: CharTokenizer;
  private readonly bos: number;
  private readonly eos: number;
  private readonly banned: number[];

  constructor(readonly config: NameGenConfig, readonly vocab: Vocab, seed = 0) {
    this.name = config.task;
    this.tokenizer = new CharTokenizer({ lowercase: config.lowercase });
    const pad = vocab.requireSpecial('pad', 'the name generator');
    this.bos = vocab.requireSpecial('bos', 'the name generator');
    this.eos = vocab.requireSpecial('eos', 'the name generator');
    this.banned = [pad, this.bos, ...(vocab.unkId === null ? [] : [vocab.unkId])];
    this.model = new ConditionalCharRNN({
      vocabSize: vocab.size, numConditions: config.conditions.length, embeddingDim: config.embeddingDim, conditionDim: config.conditionDim,
      hiddenSize: config.hiddenSize, numLayers: config.numLayers, cell: config.cell, dropout: config.dropout, padId: pad, rng: new Rng(seed),
    });
  }

  /** The condition index of a name like 'female' (case-insensitive; a unique prefix such as 'f' works). */
  conditionId(s: string): number {
    const k = s.trim().toLowerCase();
    const exact = this.config.conditions.findIndex((c) => c.toLowerCase() === k);
    if (exact >= 0) return exact;
    const pre = this.config.conditions.map((c, i) => [c, i] as const).filter(([c]) => k.length > 0 && c.toLowerCase().startsWith(k));
    if (pre.length === 1) return pre[0][1];
    throw new RangeError(`${this.name}: unknown condition ${JSON.stringify(s)} (known: ${this.config.conditions.join(', ')})`);
  }

  encodeName(name: string, what = 'name'): Int32Array {
    const ids = this.vocab.encode(this.tokenizer.tokenize(name));
    if (ids.length === 0) throw new RangeError(`${this.name}: ${what} is empty`);
    return fitLength(ids, this.config.maxLen, false, `${this.name}: ${what}`);
  }

  collate(examples: GenExample[]): GenBatch {
    const B = examples.length;
    let T = 0;
    for (const e of examples) T = Math.max(T, e.ids.length + 1);
    const inputs = new Int32Array(T * B).fill(this.vocab.padId!);
    const targets = new Int32Array(T * B).fill(-100);
    const lengths = new Int32Array(B);
    let count = 0;
    examples.forEach((e, b) => {
      const n = e.ids.length;
      lengths[b] = n + 1;
      count += n + 1;
      inputs[b] = this.bos;
      for (let t = 0; t < n; t++) {
        inputs[(t + 1) * B + b] = e.ids[t];
        targets[t * B + b] = e.ids[t];
      }
      targets[n * B + b] = this.eos;
    });
    return { inputs, targets, lengths, conds: Int32Array.from(examples, (e) => e.cond), T, B, count };
  }

  source(examples: GenExample[], batchSize: number, seed: number, shuffle: boolean): BatchSource<GenBatch> {
    return new ExampleSource(examples, { batchSize, seed, shuffle, lengthOf: (e) => e.ids.length, collate: (es) => this.collate(es) });
  }

  step(b: GenBatch): StepResult {
    const { logits } = this.model.forward(b.inputs, b.conds, b.T, b.B, b.lengths);
    return { loss: crossEntropy(logits, b.targets), count: b.count };
  }

  evaluate(data: BatchSource<GenBatch>): Record<string, number> {
    let nll = 0, chars = 0, names = 0;
    withEval(this.model, () => {
      for (let i = 0; i < data.numBatches; i++) {
        const b = data.get(0, i);
        const { logits } = this.model.forward(b.inputs, b.conds, b.T, b.B, b.lengths);
        nll += crossEntropy(logits, b.targets, { reduction: 'sum' }).item();
        chars += b.count;
        names += b.B;
      }
    });
    return { nll: nll / chars, bitsPerChar: nll / chars / Math.LN2, nllPerName: nll / names };
  }

  describe(): { config: NameGenConfig; vocab: VocabJSON } {
    return { config: { ...this.config }, vocab: this.vocab.toJSON() };
  }

  /** Sample one name per condition (seeded by `rng`). */
  sampleNames(conditions: readonly string[], opts: { temperature?: number; rng?: Rng } = {}): string[] {
    const rng = opts.rng ?? new Rng(this.config.sampleSeed);
    const temperature = opts.temperature ?? this.config.temperature;
    return withEval(this.model, () =>
      conditions.map((c) => {
        const cond = this.conditionId(c);
        const r = generate<GeneratorState>({
          prime: [this.bos],
          maxLength: this.config.maxLen,
          stopToken: this.eos,
          temperature,
          rng,
          step: (token, state) => {
            const out = this.model.forward([token], [cond], 1, 1, null, state);
            const logits = out.logits.toArray();
            for (const k of this.banned) logits[k] = -Infinity;
            return { logits, state: { h: out.h, c: out.c } };
          },
        });
        return this.tokenizer.detokenize(this.vocab.decode(r.tokens, { skipSpecials: true }));
      }),
    );
  }

  /** predict: each input names a condition ('female', 'male', or a unique prefix); the output is a sampled name. */
  predict(inputs: readonly string[]): string[] {
    return this.sampleNames(inputs);
  }
}

/** What `recur.config` of the name generator holds (fields of models/fields.ts; maxLen bounds the steps of one generated name). */
const nameGenConfig = z.strictObject({
  task: FIELDS.task,
  arch: arch('conditional-char-rnn'),
  conditions: strings(1, { limit: 'vocab' }),
  ...pick('lowercase', 'cell', 'embeddingDim', 'conditionDim', 'hiddenSize', 'numLayers', 'dropout', 'maxLen', 'temperature'),
  sampleSeed: int(Number.MIN_SAFE_INTEGER),
}) satisfies z.ZodType<NameGenConfig>;
const configTypesMatch: SameKeys<NameGenConfig, z.output<typeof nameGenConfig>> = true;

/** Check a stored name-generator config; with `limits` (loading a file), sizes against them too. */
export function checkNameGenConfig(c: unknown, where = 'name generator config', limits: Partial<Limits> | null = null): NameGenConfig {
  return parseConfig(where, nameGenConfig, c, { limits });
}

/** The parameters a name-generator config implies for a character vocabulary of V. */
export function nameGenTensorShapes(c: NameGenConfig, V: number): ParamShapes {
  return [
    ...embeddingShapes('embedding', V, c.embeddingDim),
    ...embeddingShapes('condition', c.conditions.length, c.conditionDim),
    ...recurrentShapes('rnn', c.cell, c.embeddingDim + c.conditionDim, c.hiddenSize, c.numLayers, false),
    ...linearShapes('head', c.hiddenSize, V),
  ];
}

/** How to build the generator: its config's model and sampling keys, and how batches are made. */
export type NameGenBuildOptions = Pick<NameGenConfig, 'cell' | 'embeddingDim' | 'conditionDim' | 'hiddenSize' | 'numLayers' | 'dropout' | 'maxLen' | 'temperature'> & { batchSize: number; seed: number };

export interface ConditionedSplits {
  train: { name: string; label: number }[];
  val: { name: string; label: number }[];
  test?: { name: string; label: number }[];
}

/** Task + sources from (name, condition) examples; the vocabulary comes from training names. */
export function buildNameGen(name: string, conditions: readonly string[], o: NameGenBuildOptions, data: ConditionedSplits): { task: NameGenTask; train: BatchSource<GenBatch>; val: BatchSource<GenBatch>; test?: BatchSource<GenBatch> } {
  const tok = new CharTokenizer({ lowercase: false });
  const vocab = Vocab.build(data.train.map((e) => tok.tokenize(e.name)), { specials: true });
  const config: NameGenConfig = {
    task: name, arch: 'conditional-char-rnn', conditions: [...conditions], lowercase: false, cell: o.cell, embeddingDim: o.embeddingDim,
    conditionDim: o.conditionDim, hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: o.dropout, maxLen: o.maxLen, temperature: o.temperature, sampleSeed: o.seed,
  };
  checkNameGenConfig(config);
  const task = new NameGenTask(config, vocab, o.seed);
  const enc = (list: { name: string; label: number }[], split: string): GenExample[] =>
    list.map((e, i) => {
      if (!(Number.isInteger(e.label) && e.label >= 0 && e.label < conditions.length)) throw new RangeError(`${name}: ${split} example ${i} has condition ${e.label}, outside [0, ${conditions.length})`);
      return { ids: task.encodeName(e.name, `${split} name ${i} (${JSON.stringify(e.name)})`), cond: e.label };
    });
  return { task, ...splitSources(task, data, enc, o) };
}

/** Rebuild the task from a decoded model file: config, vocabulary and tensors checked before the model is built. */
export function loadNameGen(file: ModelFile, path = 'model file', opts: LoadTaskOptions = {}): NameGenTask {
  return loadVocabTask(file, path, opts, { checkConfig: checkNameGenConfig, shapes: nameGenTensorShapes, make: (config, vocab) => new NameGenTask(config, vocab) });
}
