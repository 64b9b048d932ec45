/**
 * The task registry: every end-to-end task by name, with its documented defaults, a builder that
 * returns the task and its data, a loader that rebuilds it from a model file, and a predictor.
 * The CLI (`recur train TASK`, `recur predict …`) goes through this file only.
 *
 *   const spec = getTaskSpec('classify-spam');
 *   const { task, train, val, test, trainOptions } = spec.build({ epochs: 2 });
 *   await new Trainer(task, trainOptions).fit(train, val);
 *   saveTask(task, 'spam.safetensors');                  // saveTask, loadModelFile: recurjs/node
 *   const { task: loaded } = spec.load(loadModelFile('spam.safetensors'));
 *   spec.predict(loaded, ['Subject: cheap meds\n\nBuy now!']);   // → ['spam']
 *
 * Options are validated before anything is built: an unknown key is an error listing the known
 * ones; a value of the wrong type or outside its range is an error naming the key and the expected
 * form. Numbers and booleans may also be given as strings ("64", "true"), as a command line does.
 *
 * Built-in tasks (one per topology and more; the defaults train in a few minutes on two cores with
 * the plain-TypeScript backend):
 *   classify-spam   many-to-one   SpamAssassin e-mail → ham/spam (word GRU, mean pooling)
 *   classify-names  many-to-one   first name → female/male (character biGRU)
 *   feedforward     one-to-one    first name → female/male (bag-of-characters MLP baseline)
 *   namegen         one-to-many   female/male → a generated first name (conditional char GRU)
 *   charlm          many-to-many  Moby-Dick character LM (bits per character)
 *   forecast        many-to-many  sensor-network humidity/temperature, next-step regression
 *
 * Model files: the config a task's describe() returns carries `task: NAME` (the charlm config is
 * CharLM's own, recognised by `arch: 'charlm'`); `taskNameOf(config)` maps a config back to its
 * task, so a saved model can be reloaded without naming the task.
 */
import type { Task } from '../train/task.ts';
import { bool, int, makeSpec, num, str, TaskRegistryError, type Schema, type TaskSpec } from './task-options.ts';
import { encodeModel } from '../io/model.ts';
import { DataError } from '../data/loaders.ts';
import { loadCharCorpus, loadJSONL, loadNumericCSV, type TextEncoding } from '../data/files.ts';
import { emailToTextIfRaw, firstNames, GENDER_LABELS, mobyDick, sensorNetwork, SPAM_LABELS, SPAM_SPLIT_SEED, spamAssassin, splitBySeed, splitSeries } from '../data/datasets.ts';
import { buildClassifier, ClassificationTask, loadClassifier } from './classifier.ts';
import type { LabeledSplits } from './common.ts';
import { buildFeedForward, FeedForwardTask, loadFeedForward } from './feedforward.ts';
import { buildNameGen, loadNameGen, NameGenTask } from './namegen.ts';
import { buildLM, buildLMFromCorpus, LM_UNK, loadLM, LMTask } from './lm.ts';
import { buildForecast, ForecastTask, loadForecast } from './forecaster.ts';
import { seq2seqTaskSpec } from './seq2seq.ts';
import { captionTaskSpec } from './captioner.ts';

export { resolveOptions, TaskRegistryError } from './task-options.ts';
export type { BuiltTask, TaskSpec, Topology, TrainDefaults } from './task-options.ts';

// ---- the registry --------------------------------------------------------------------------------

const specs = new Map<string, TaskSpec>();
let builtinsRegistered = false;

function ensureBuiltins(): void {
  if (builtinsRegistered) return;
  builtinsRegistered = true;
  for (const s of BUILTIN_SPECS) if (!specs.has(s.name)) specs.set(s.name, s);
}

/** Add a task. A name already taken is an error unless `replace` is set. */
export function registerTask(spec: TaskSpec, opts: { replace?: boolean } = {}): void {
  ensureBuiltins();
  if (spec === null || typeof spec !== 'object') throw new TaskRegistryError('registerTask: expected a spec object {name, description, topology, defaults, build, load, predict}');
  if (typeof spec.name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(spec.name)) throw new TaskRegistryError(`registerTask: 'name' must be a word like 'classify-spam', got ${JSON.stringify(spec.name)}`);
  for (const k of ['build', 'load', 'predict'] as const) if (typeof spec[k] !== 'function') throw new TaskRegistryError(`registerTask: task '${spec.name}' needs a function '${k}'`);
  if (!['one-to-one', 'one-to-many', 'many-to-one', 'many-to-many'].includes(spec.topology)) throw new TaskRegistryError(`registerTask: task '${spec.name}' has topology ${JSON.stringify(spec.topology)} (expected one-to-one, one-to-many, many-to-one or many-to-many)`);
  if (spec.defaults === null || typeof spec.defaults !== 'object') throw new TaskRegistryError(`registerTask: task '${spec.name}' needs a defaults object`);
  if (specs.has(spec.name) && !opts.replace) throw new TaskRegistryError(`registerTask: a task named '${spec.name}' is already registered (pass {replace: true} to replace it)`);
  specs.set(spec.name, spec);
}

/** The spec of a task; an unknown name is an error listing the known ones. */
export function getTaskSpec(name: string): TaskSpec {
  ensureBuiltins();
  const s = specs.get(name);
  if (!s) throw new TaskRegistryError(`unknown task ${JSON.stringify(name)} (known tasks: ${[...specs.keys()].join(', ')})`);
  return s;
}

/** Every registered task, built-ins first, in registration order. */
export function listTasks(): TaskSpec[] {
  ensureBuiltins();
  return [...specs.values()];
}

/** The task name a model file's config belongs to (`config.task`, or 'charlm' for a CharLM config), or null. */
export function taskNameOf(config: unknown): string | null {
  if (config === null || typeof config !== 'object') return null;
  const c = config as Record<string, unknown>;
  if (typeof c.task === 'string') return c.task;
  if (c.arch === 'charlm') return 'charlm';
  return null;
}

/** A task's model with its describe() (config + vocabulary) as model-file bytes (`saveTask` in recurjs/node writes them). */
export function encodeTask(task: Task<any>): Uint8Array {
  const d = task.describe();
  return encodeModel(task.model, { config: d.config, vocab: d.vocab, metadata: { 'recur.task': taskNameOf(d.config) ?? task.name } });
}

// ---- options (the schema machinery and makeSpec are in task-options.ts) ----------------------------

/** The text encoding of a task's `data` file: strict UTF-8 (a bad byte is an error naming its offset) or Latin-1. */
const ENCODING = str('utf-8', "the data file's text encoding: utf-8 (strict: a byte that is not UTF-8 is an error) or latin1", ['utf-8', 'latin1']);

const TRAIN_SCHEMA = (epochs: number, lr: number, clipNorm: number, batchSize: number): Schema => ({
  epochs: int(epochs, 'passes over the training data (an epoch of a sampled source is stepsPerEpoch batches)'),
  lr: num(lr, 'Adam learning rate', 0),
  clipNorm: num(clipNorm, 'clip the global gradient norm to this (0: no clipping, as in the Trainer)', 0),
  batchSize: int(batchSize, 'examples (or windows) per batch'),
  seed: int(1, 'seed of initialisation, dropout and batch order (the data split has its own fixed seed)', 0),
});

function expectTask<T>(name: string, task: Task<any>, cls: abstract new (...a: never[]) => T): T {
  if (!(task instanceof cls)) throw new TaskRegistryError(`${name}: predict needs a task built or loaded by '${name}', got task '${task?.name ?? String(task)}'`);
  return task;
}

function checkInputs(name: string, inputs: unknown): string[] {
  if (!Array.isArray(inputs) || !inputs.every((s) => typeof s === 'string')) throw new TaskRegistryError(`${name}: predict inputs must be an array of strings`);
  return inputs;
}

// ---- built-in tasks ------------------------------------------------------------------------------

const RNN_CELLS = ['lstm', 'gru', 'rnn'] as const;

const SPAM_SCHEMA: Schema = {
  data: str('', "a JSONL file of {\"input\": text, \"target\": label} pairs to use instead of SpamAssassin (same seeded 80/10/10 split)"),
  encoding: ENCODING,
  tokenizer: str('word', 'word or char tokens', ['word', 'char']),
  lowercase: bool(true, 'lower-case the text first'),
  minCount: int(2, 'tokens seen fewer times in training become <unk>'),
  maxVocab: int(20000, 'vocabulary size cap (specials included)', 3),
  cell: str('gru', 'recurrent cell', RNN_CELLS),
  embeddingDim: int(64, 'token embedding size'),
  hiddenSize: int(32, 'recurrent state size'),
  numLayers: int(1, 'stacked recurrent layers'),
  bidirectional: bool(false, 'read the text in both directions'),
  pooling: str('mean', "'mean' over real steps or the 'last' state", ['mean', 'last']),
  dropout: num(0.2, 'dropout on the pooled features (and between layers)', 0, 1, true),
  maxLen: int(128, 'longest input in tokens'),
  truncate: str('end', "longer inputs: 'end' keeps the first maxLen tokens, 'start' the last, 'none' is an error", ['end', 'start', 'none']),
  ...TRAIN_SCHEMA(3, 0.005, 1, 32),
};

function classifierOptions(o: Record<string, number | boolean | string>) {
  return {
    tokenizer: o.tokenizer as 'word' | 'char',
    lowercase: o.lowercase as boolean,
    minCount: o.minCount as number,
    maxVocab: o.maxVocab as number,
    cell: o.cell as 'lstm' | 'gru' | 'rnn',
    embeddingDim: o.embeddingDim as number,
    hiddenSize: o.hiddenSize as number,
    numLayers: o.numLayers as number,
    bidirectional: o.bidirectional as boolean,
    pooling: o.pooling as 'mean' | 'last',
    dropout: o.dropout as number,
    maxLen: o.maxLen as number,
    truncate: o.truncate === 'none' ? (false as const) : (o.truncate as 'end' | 'start'),
    batchSize: o.batchSize as number,
    seed: o.seed as number,
  };
}

/** Labelled texts from a JSONL file: labels are the distinct targets in sorted order. */
function jsonlClassification(path: string, encoding: TextEncoding): { labels: string[]; data: LabeledSplits } {
  const pairs = loadJSONL(path, { encoding });
  const labels = [...new Set(pairs.map((p) => p.target))].sort();
  if (labels.length < 2) throw new DataError(`${path}: a classifier needs at least two distinct targets, found ${labels.map((l) => JSON.stringify(l)).join(', ')}`);
  const items = pairs.map((p) => ({ text: p.input, label: labels.indexOf(p.target) }));
  return { labels, data: splitBySeed(items, SPAM_SPLIT_SEED, { val: 0.1, test: 0.1 }) };
}

const classifySpam = makeSpec({
  name: 'classify-spam',
  description: 'SpamAssassin e-mail (subject + body) → ham/spam: word embedding → GRU → mean pool → linear; accuracy and spam F1',
  topology: 'many-to-one',
  schema: SPAM_SCHEMA,
  build(o) {
    if (o.data) {
      const { labels, data } = jsonlClassification(o.data as string, o.encoding as TextEncoding);
      return buildClassifier('classify-spam', labels, classifierOptions(o), data);
    }
    return buildClassifier('classify-spam', SPAM_LABELS, classifierOptions(o), spamAssassin());
  },
  load: (file, where) => ({ task: loadClassifier(file, where ?? 'model file') }),
  // Inputs that start with a mail header block are reduced to Subject + body, as in training.
  predict: (task, inputs) => expectTask('classify-spam', task, ClassificationTask).predict(checkInputs('classify-spam', inputs).map(emailToTextIfRaw)),
});

const NAMES_SCHEMA: Schema = {
  tokenizer: str('char', 'char or word tokens', ['char', 'word']),
  lowercase: bool(true, 'lower-case the name first'),
  minCount: int(1, 'characters seen fewer times in training become <unk>'),
  maxVocab: int(200, 'vocabulary size cap (specials included)', 3),
  cell: str('gru', 'recurrent cell', RNN_CELLS),
  embeddingDim: int(16, 'character embedding size'),
  hiddenSize: int(64, 'recurrent state size'),
  numLayers: int(1, 'stacked recurrent layers'),
  bidirectional: bool(true, 'read the name in both directions'),
  pooling: str('last', "'last' state of each direction or 'mean' over steps", ['mean', 'last']),
  dropout: num(0.2, 'dropout on the pooled features (and between layers)', 0, 1, true),
  maxLen: int(24, 'longest name in characters'),
  truncate: str('none', "longer names: 'none' is an error, 'end'/'start' cut them", ['end', 'start', 'none']),
  ...TRAIN_SCHEMA(12, 0.005, 1, 32),
};

function namesAsTexts(ambiguous: 'drop' | 'keep'): LabeledSplits {
  const s = firstNames({ ambiguous });
  const conv = (l: { name: string; label: number }[]) => l.map((e) => ({ text: e.name, label: e.label }));
  return { train: conv(s.train), val: conv(s.val), test: conv(s.test) };
}

const classifyNames = makeSpec({
  name: 'classify-names',
  description: 'first name → female/male: character embedding → bidirectional GRU → last states → linear; accuracy and F1',
  topology: 'many-to-one',
  schema: NAMES_SCHEMA,
  build: (o) => buildClassifier('classify-names', GENDER_LABELS, classifierOptions(o), namesAsTexts('drop')),
  load: (file, where) => ({ task: loadClassifier(file, where ?? 'model file') }),
  predict: (task, inputs) => expectTask('classify-names', task, ClassificationTask).predict(checkInputs('classify-names', inputs)),
});

const FF_SCHEMA: Schema = {
  lowercase: bool(true, 'lower-case the name first'),
  hiddenSize: int(64, 'hidden layer size'),
  dropout: num(0.2, 'dropout after the hidden layer', 0, 1, true),
  ...TRAIN_SCHEMA(30, 0.003, 5, 64),
};

const feedforward = makeSpec({
  name: 'feedforward',
  description: 'first name → female/male without recurrence: bag of characters + first/last character → MLP; the baseline for classify-names',
  topology: 'one-to-one',
  schema: FF_SCHEMA,
  build: (o) => buildFeedForward('feedforward', GENDER_LABELS, { lowercase: o.lowercase as boolean, hiddenSize: o.hiddenSize as number, dropout: o.dropout as number, batchSize: o.batchSize as number, seed: o.seed as number }, namesAsTexts('drop')),
  load: (file, where) => ({ task: loadFeedForward(file, where ?? 'model file') }),
  predict: (task, inputs) => expectTask('feedforward', task, FeedForwardTask).predict(checkInputs('feedforward', inputs)),
});

const NAMEGEN_SCHEMA: Schema = {
  cell: str('gru', 'recurrent cell', RNN_CELLS),
  embeddingDim: int(16, 'character embedding size'),
  conditionDim: int(8, 'size of the gender embedding concatenated to every input'),
  hiddenSize: int(128, 'recurrent state size'),
  numLayers: int(1, 'stacked recurrent layers'),
  dropout: num(0, 'dropout between stacked layers', 0, 1, true),
  maxLen: int(24, 'longest name in characters (training and generation)'),
  temperature: num(0.8, 'sampling temperature used by predict', 0),
  ...TRAIN_SCHEMA(10, 0.005, 1, 32),
};

const namegen = makeSpec({
  name: 'namegen',
  description: 'gender → a generated first name: conditional character GRU (gender embedding concatenated to each input); held-out NLL per character',
  topology: 'one-to-many',
  schema: NAMEGEN_SCHEMA,
  build: (o) =>
    buildNameGen('namegen', GENDER_LABELS, {
      cell: o.cell as 'gru', embeddingDim: o.embeddingDim as number, conditionDim: o.conditionDim as number, hiddenSize: o.hiddenSize as number, numLayers: o.numLayers as number,
      dropout: o.dropout as number, maxLen: o.maxLen as number, temperature: o.temperature as number, batchSize: o.batchSize as number, seed: o.seed as number,
    }, firstNames({ ambiguous: 'keep' })),
  load: (file, where) => ({ task: loadNameGen(file, where ?? 'model file') }),
  predict: (task, inputs) => expectTask('namegen', task, NameGenTask).predict(checkInputs('namegen', inputs)),
});

const CHARLM_SCHEMA: Schema = {
  data: str('', 'a plain-text file to use instead of Moby-Dick (split by position: first 90% train, next 5% val, last 5% test)'),
  encoding: ENCODING,
  cell: str('lstm', 'recurrent cell', RNN_CELLS),
  embeddingDim: int(32, 'character embedding size'),
  hiddenSize: int(128, 'recurrent state size'),
  numLayers: int(1, 'stacked recurrent layers'),
  seqLen: int(64, 'characters per training window (and per evaluation chunk)'),
  stepsPerEpoch: int(100, 'random-window batches per epoch'),
  evalBatchSize: int(32, 'parallel streams in evaluation'),
  length: int(200, 'characters generated by predict'),
  temperature: num(0.8, 'sampling temperature used by predict', 0),
  ...TRAIN_SCHEMA(2, 0.02, 5, 32),
};

const charlm = makeSpec({
  name: 'charlm',
  description: 'character language model on Moby-Dick (fixed chapter split): embedding → LSTM (or GRU, RNN) → linear; held-out bits per character',
  topology: 'many-to-many',
  schema: CHARLM_SCHEMA,
  build(o) {
    const lmOptions = {
      cell: o.cell as 'lstm' | 'gru' | 'rnn', embeddingDim: o.embeddingDim as number, hiddenSize: o.hiddenSize as number, numLayers: o.numLayers as number, seqLen: o.seqLen as number,
      batchSize: o.batchSize as number, stepsPerEpoch: o.stepsPerEpoch as number, evalBatchSize: o.evalBatchSize as number, seed: o.seed as number,
      generation: { length: o.length as number, temperature: o.temperature as number },
    };
    // A custom text is read in chunks straight into token ids (never one string or a per-character
    // array: a corpus of a gigabyte fits in about a gigabyte of ids) and split by position 90/5/5.
    if (o.data) return buildLMFromCorpus(lmOptions, loadCharCorpus(o.data as string, { unk: LM_UNK, encoding: o.encoding as TextEncoding }));
    return buildLM(lmOptions, mobyDick());
  },
  load: (file, where) => ({ task: loadLM(file, where ?? 'model file') }),
  predict: (task, inputs) => expectTask('charlm', task, LMTask).predict(checkInputs('charlm', inputs)),
});

const FORECAST_SCHEMA: Schema = {
  data: str('', 'a CSV file (one series, numeric columns) to use instead of the sensor network (chronological 70/15/15 split)'),
  columns: str('', "comma-separated CSV columns to model (default: all); only with 'data'"),
  encoding: ENCODING,
  cell: str('lstm', 'recurrent cell', RNN_CELLS),
  hiddenSize: int(16, 'recurrent state size'),
  numLayers: int(1, 'stacked recurrent layers'),
  dropout: num(0, 'dropout between stacked layers', 0, 1, true),
  residual: bool(true, 'predict the change from the last value (x̂ = x + Δ)'),
  seqLen: int(64, 'steps per training window'),
  stepsPerEpoch: int(50, 'random-window batches per epoch'),
  context: int(64, 'steps of history read before a held-out segment is scored'),
  ...TRAIN_SCHEMA(2, 0.003, 1, 32),
};

const forecast = makeSpec({
  name: 'forecast',
  description: 'next-step forecast of sensor-network humidity/temperature (normalised; chronological split): LSTM → linear residual; MSE vs the last-value baseline',
  topology: 'many-to-many',
  schema: FORECAST_SCHEMA,
  build(o) {
    let data;
    if (o.data) {
      const cols = (o.columns as string).split(',').map((c) => c.trim()).filter((c) => c.length > 0);
      const table = loadNumericCSV(o.data as string, { ...(cols.length ? { columns: cols } : {}), encoding: o.encoding as TextEncoding });
      const s = splitSeries([{ name: o.data as string, rows: table.data }]);
      data = { columns: table.columns, ...s };
    } else {
      if (o.columns) throw new TaskRegistryError("forecast: option 'columns' applies only with 'data' (a CSV file)");
      data = sensorNetwork();
    }
    return buildForecast('forecast', {
      cell: o.cell as 'lstm', hiddenSize: o.hiddenSize as number, numLayers: o.numLayers as number, dropout: o.dropout as number, residual: o.residual as boolean,
      seqLen: o.seqLen as number, batchSize: o.batchSize as number, stepsPerEpoch: o.stepsPerEpoch as number, context: o.context as number, seed: o.seed as number,
    }, data);
  },
  load: (file, where) => ({ task: loadForecast(file, where ?? 'model file') }),
  predict: (task, inputs) => expectTask('forecast', task, ForecastTask).predict(checkInputs('forecast', inputs)),
});

const BUILTIN_SPECS: readonly TaskSpec[] = [classifySpam, classifyNames, feedforward, namegen, charlm, forecast, seq2seqTaskSpec, captionTaskSpec];
