/**
 * Every option and stored-config key of the task models, declared once: its type and range (a Zod
 * schema whose error message is the form expected), its help line, and — for the sizes a model
 * file can ask for — the resource limit it counts against (io/limits.ts). From these come the
 * registry's option sets (`optionSet` in task-options.ts: defaults per task, validation, the CLI's
 * `--set` keys and help) and the schemas of what a model file stores (`recur.config`, checked by
 * `parseConfig` before a model is built).
 *
 * A key means one thing everywhere: `hiddenSize` is the recurrent state size of every task that
 * has one. Keys whose stored form differs from the option (a classifier's `tokenizer` is a kind
 * in the options and the tokenizer's JSON in the file) are declared by the task's config schema.
 *
 * Why the public types (ClassifierConfig …) are still written out beside these schemas: see
 * train/options.ts ("Types"); each task file checks its written type against its schema at compile
 * time, so the two cannot drift.
 */
import { z } from 'zod';
import type { Limits } from '../io/limits.ts';
import type { RecurrentMode } from '../cells/recurrent.ts';

/** What a field's metadata holds beyond Zod's own description. */
interface FieldMeta {
  description?: string;
  /** The form expected, as error messages and help say it. */
  expected?: string;
  /** The resource limit a size counts against when a model file is loaded. */
  limit?: keyof Limits;
}

/** A field's metadata (description, expected form, limit), through the clones `.describe` makes. */
export function fieldMeta(field: z.ZodType): FieldMeta {
  return (field.meta() as FieldMeta | undefined) ?? {};
}

// ---- leaf schemas: each failure says the one form expected -------------------------------------------

function intForm(min: number, max?: number): string {
  if (max !== undefined) return `an integer in [${min}, ${max}]`;
  if (min === 1) return 'a positive integer';
  if (min === 0) return 'a non-negative integer';
  if (min <= Number.MIN_SAFE_INTEGER) return 'an integer';
  return `an integer ≥ ${min}`;
}

/** A safe integer ≥ min (≤ max), counted against `limit` when read from a file. */
export function int(min = 1, o: { max?: number; limit?: keyof Limits } = {}) {
  const expected = intForm(min, o.max);
  const s = z.int({ error: expected }).min(min, { error: expected });
  return (o.max === undefined ? s : s.max(o.max, { error: expected })).meta({ expected, limit: o.limit });
}

/** A finite number in [min, max] ((min, …] with minOpen, […, max) with maxOpen). */
export function num(min: number, o: { max?: number; minOpen?: boolean; maxOpen?: boolean } = {}) {
  const expected = `a finite number in ${o.minOpen ? '(' : '['}${min}, ${o.max === undefined ? '∞)' : `${o.max}${o.maxOpen ? ')' : ']'}`}`;
  let s = z.number({ error: expected });
  s = o.minOpen ? s.gt(min, { error: expected }) : s.min(min, { error: expected });
  if (o.max !== undefined) s = o.maxOpen ? s.lt(o.max, { error: expected }) : s.max(o.max, { error: expected });
  return s.meta({ expected });
}

export function bool() {
  return z.boolean({ error: 'true or false' }).meta({ expected: 'true or false' });
}

/** 'a', 'b' or 'c' */
function quotedChoices(c: readonly string[]): string {
  const q = c.map((x) => `'${x}'`);
  return q.length === 1 ? q[0] : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

/** One of a few strings. */
export function oneOf<const T extends readonly [string, ...string[]]>(choices: T) {
  const expected = quotedChoices(choices);
  return z.enum(choices, { error: expected }).meta({ expected });
}

export function text() {
  return z.string({ error: 'a string' }).meta({ expected: 'a string' });
}

/** A list of at least `minItems` strings (distinct unless `unique` is false), its length counted against `limit`. */
export function strings(minItems: number, o: { limit?: keyof Limits; unique?: boolean } = {}) {
  const unique = o.unique ?? true;
  const expected = `a list of ${minItems > 1 ? `at least ${minItems} ` : ''}${unique ? 'distinct ' : ''}strings`;
  const s = z.array(z.string({ error: expected }), { error: expected }).min(minItems, { error: expected });
  return (unique ? s.refine((a) => new Set(a).size === a.length, { error: expected }) : s).meta({ expected, limit: o.limit });
}

/** A list of finite numbers (each > min with minOpen, else ≥ min). */
export function numbers(min?: number, o: { minOpen?: boolean } = {}) {
  const expected = `a list of finite numbers${min !== undefined ? ` ${o.minOpen ? '>' : '≥'} ${min}` : ''}`;
  const x = z.number({ error: expected });
  const item = min === undefined ? x : o.minOpen ? x.gt(min, { error: expected }) : x.min(min, { error: expected });
  return z.array(item, { error: expected }).meta({ expected });
}

// ---- the fields ------------------------------------------------------------------------------------

export const CELL_KINDS = ['lstm', 'gru', 'rnn'] as const;
export type CellKind = (typeof CELL_KINDS)[number];
/** The recurrent mode (cells/recurrent.ts CELLS) of each cell kind a task can name. */
export const CELL_MODE: Record<CellKind, RecurrentMode> = { lstm: 'LSTM', gru: 'GRU', rnn: 'RNN_TANH' };

/** A classifier's handling of inputs longer than maxLen: cut the end or the start, or refuse them (false; 'none' on a command line). */
const truncate = z
  .preprocess((v) => (v === 'none' || v === 'false' ? false : v), z.union([z.literal(false), z.enum(['end', 'start'])], { error: "false, 'end' or 'start' ('none' for false)" }))
  .meta({ expected: "false, 'end' or 'start' ('none' for false)" });

export const FIELDS = {
  // training (options only: they shape a run, not the model)
  epochs: int(1).describe('passes over the training data (an epoch of a sampled source is stepsPerEpoch batches)'),
  lr: num(0).describe('learning rate of Adam (AdamW when weightDecay is above 0)'),
  cosine: bool().describe('anneal the learning rate along a cosine from lr to lr/100 over the run (CosineAnnealingLR, tMax = epochs × batches per epoch)'),
  weightDecay: num(0).describe('decoupled weight decay: AdamW (as torch.optim.AdamW) instead of Adam when above 0'),
  clipNorm: num(0).describe('clip the global gradient norm to this (0: no clipping, as in the Trainer)'),
  batchSize: int(1).describe('examples (or windows) per batch'),
  seed: int(0).describe('seed of initialisation, dropout and batch order (the data split has its own seed: fixed, or splitSeed where a task has it)'),
  stepsPerEpoch: int(1).describe('random-window batches per epoch'),
  evalBatchSize: int(1).describe('parallel streams in evaluation'),
  // data
  data: text().describe("a file to use instead of the built-in data set (JSONL pairs, plain text or CSV, as the task reads)"),
  encoding: oneOf(['utf-8', 'latin1']).describe("the data file's text encoding: utf-8 (strict: a byte that is not UTF-8 is an error) or latin1"),
  lowercase: bool().describe('lower-case the text first'),
  minCount: int(1).describe('tokens seen fewer times in training become <unk>'),
  maxVocab: int(3).describe('vocabulary size cap (specials included)'),
  maxLen: int(1, { limit: 'sequenceLength' }).describe('longest input (or generated output) in tokens'),
  truncate: truncate.describe("longer inputs: 'end' keeps the first maxLen tokens, 'start' the last, 'none' is an error"),
  seqLen: int(1).describe('steps per training window (and per evaluation chunk)'),
  context: int(1, { limit: 'sequenceLength' }).describe('steps of history read before a held-out segment is scored'),
  splitSeed: int(0).describe('seed of the train/validation/test split of the built-in data (another seed draws another split of the same data: a model measured over several)'),
  testSize: int(1).describe('held-out test examples'),
  valSize: int(1).describe('validation examples'),
  // the model
  cell: oneOf(CELL_KINDS).describe('recurrent cell'),
  embeddingDim: int(1, { limit: 'hiddenSize' }).describe('token embedding size'),
  hiddenSize: int(1, { limit: 'hiddenSize' }).describe('recurrent state size'),
  numLayers: int(1, { limit: 'layers' }).describe('stacked recurrent layers'),
  bidirectional: bool().describe('read the input in both directions'),
  dropout: num(0, { max: 1, maxOpen: true }).describe('dropout probability in training (on pooled features or outputs, and between stacked layers)'),
  tokenizer: oneOf(['word', 'char']).describe('word or char tokens'),
  pooling: oneOf(['mean', 'last', 'max', 'mean+max']).describe("'mean' or 'max' over real steps, 'mean+max' both side by side, or the 'last' state of each direction"),
  conditionDim: int(1, { limit: 'hiddenSize' }).describe('size of the condition embedding concatenated to every input'),
  residual: bool().describe('predict the change from the last value (x̂ = x + Δ)'),
  // generation and search
  temperature: num(0).describe('sampling temperature used by predict'),
  length: int(1).describe('tokens generated by predict'),
  beamWidth: int(1).describe('beam width for evaluation and predict (1 = greedy)'),
  lengthPenalty: num(0).describe('beam-search length normalisation α (score = log p / length^α)'),
  // stored only: what a model file says about itself
  task: text().describe('the task the model belongs to'),
  labels: strings(2, { limit: 'vocab' }).describe('the class names, one per output'),
  vocabSize: int(1, { limit: 'vocab' }).describe('vocabulary entries'),
} as const;

/** The fields of `keys` from a field record, to spread into a config schema. */
export function pickFrom<F extends Record<string, z.ZodType>, const K extends keyof F>(fields: F, ...keys: K[]): Pick<F, K> {
  const out: Partial<Pick<F, K>> = {};
  for (const k of keys) out[k] = fields[k];
  return out as Pick<F, K>;
}

/** The shared fields of `keys`. */
export function pick<const K extends keyof typeof FIELDS>(...keys: K[]): Pick<typeof FIELDS, K> {
  return pickFrom(FIELDS, ...keys);
}

/** The `arch` of a stored config: exactly this name. */
export function arch<const A extends string>(name: A) {
  return z.literal(name, { error: `'${name}'` });
}
