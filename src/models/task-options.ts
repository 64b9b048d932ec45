/**
 * The option schema of registry tasks and the spec builder: option definitions (default,
 * documentation, accepted values), their validation, and `makeSpec`, which turns a schema and a
 * builder into a registry `TaskSpec`.
 *
 * Options are validated before anything is built: an unknown key is an error listing the known
 * ones; a value of the wrong type or outside its range is an error naming the key and the expected
 * form. Numbers and booleans may also be given as strings ("64", "true"), as a command line does.
 *
 * A leaf module: task files (seq2seq.ts, captioner.ts) build their specs here, and registry.ts
 * (which imports those task files) re-exports the public part, so there is no import cycle.
 *
 * The second half is the schema of what a task stores in a model file (`recur.config`): a config
 * read from a file is untrusted, so every key is checked for type and range (integers as safe
 * integers, booleans as booleans, strings as strings), sizes against the resource limits
 * (io/limits.ts), and the tensors the config implies (names, shapes, and their parameter count
 * against `limits.parameters`) against the file's tensors — all before a model is built, so a
 * small file cannot make recur allocate gigabytes. Each task declares its config schema and the
 * shapes of its parameters with the helpers below, in the task's own file.
 */
import type { BatchSource, Task } from '../train/task.ts';
import type { ModelFile } from '../io/model.ts';
import { checkLimit, resolveLimits, type Limits } from '../io/limits.ts';
import { z } from 'zod';
import { brief, isRecord } from '../util/options.ts';
import { expectedOf, problemOf, valueAt } from '../util/schema.ts';
import { CELLS } from '../cells/recurrent.ts';
import { CELL_MODE, fieldMeta, type CellKind } from './fields.ts';

export type Topology = 'one-to-one' | 'one-to-many' | 'many-to-one' | 'many-to-many';

/** Recommended Trainer options (pass straight to `new Trainer(task, trainOptions)`). */
export type TrainDefaults = {
  /** Adam; AdamW with its decoupled weight decay when the task option `weightDecay` is above 0. */
  optimizer: 'adam' | { name: 'adamw'; weightDecay: number };
  lr: number;
  epochs: number;
  clipNorm: number;
  seed: number;
  /** With the task option `cosine`: lr annealed to lr/100 over all of the task's epochs. */
  schedule?: { type: 'CosineAnnealingLR'; tMax: number; etaMin: number };
};

export interface BuiltTask {
  task: Task<any>;
  train: BatchSource<any>;
  val: BatchSource<any>;
  test?: BatchSource<any>;
  trainOptions: TrainDefaults;
}

export interface TaskSpec {
  name: string;
  description: string;
  topology: Topology;
  /** Every option with its default value (training options included: epochs, lr, clipNorm, batchSize, seed). */
  defaults: Record<string, unknown>;
  /** One line of documentation per option (same keys as defaults). */
  optionHelp?: Record<string, string>;
  /** The form each option takes, e.g. "a positive integer" (same keys as defaults). */
  optionForms?: Record<string, string>;
  /** Validate options, load the data, build the task. */
  build(options?: Record<string, unknown>): BuiltTask;
  /**
   * Rebuild a trained task from a model file. `options` are the task options it is used with (a
   * run's saved options under the command line's --set): checked as build's are, and those that act
   * at inference (a decoder's beamWidth, lengthPenalty) apply to the loaded task; the model's own
   * shape comes from the file alone.
   */
  load(file: ModelFile, where?: string, options?: Record<string, unknown>): { task: Task<any> };
  /** Run a (loaded or trained) task on raw inputs. */
  predict(task: Task<any>, inputs: string[]): string[];
}

export class TaskRegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskRegistryError';
  }
}

// ---- option sets: defaults over the fields of models/fields.ts ------------------------------------

/** A task's options: parse (validate + fill defaults), the defaults, and per option its help and form. */
export interface OptionSet<O> {
  /** Defaults merged with validated options; numbers and booleans may be strings ("64", "true"). */
  parse(task: string, options: unknown): O;
  readonly defaults: O;
  /** One line of documentation per option. */
  readonly help: Record<string, string>;
  /** The form each option takes ("a positive integer", "'lstm', 'gru' or 'rnn'"). */
  readonly expected: Record<string, string>;
}

/** A string where a number or boolean is wanted, as a command line gives it, becomes one. */
function fromText(field: z.ZodType) {
  return (v: unknown): unknown => {
    if (typeof v !== 'string' || field.safeParse(v).success) return v;
    const t = v.trim();
    if (t === 'true' || t === 'false') return t === 'true';
    return t !== '' && Number.isFinite(Number(t)) ? Number(t) : v;
  };
}

/**
 * The option set of a task: `defaults` names the options (each a key of `fields`, declared once
 * there with its type, range and help) and their default values.
 *
 *   const NAMES = optionSet(FIELDS, { cell: 'gru', hiddenSize: 64, ... });
 *   NAMES.parse('classify-names', { hiddenSize: '128' }).hiddenSize   // 128, typed number
 */
export function optionSet<F extends Record<string, z.ZodType>, K extends keyof F & string>(fields: F, defaults: { [k in K]: z.output<F[k]> }): OptionSet<{ [k in K]: z.output<F[k]> }> {
  type O = { [k in K]: z.output<F[k]> };
  const keys = Object.keys(defaults) as K[];
  const shape = Object.fromEntries(keys.map((k) => [k, z.preprocess(fromText(fields[k]), fields[k]).optional()]));
  const schema = z.strictObject(shape);
  const help = Object.fromEntries(keys.map((k) => [k, fieldMeta(fields[k]).description ?? '']));
  const expected = Object.fromEntries(keys.map((k) => [k, fieldMeta(fields[k]).expected ?? '']));
  return {
    defaults,
    help,
    expected,
    parse(task, options) {
      if (options === undefined) return { ...defaults };
      if (!isRecord(options)) throw new TaskRegistryError(`${task}: options must be an object`);
      const r = schema.safeParse(options);
      if (!r.success) {
        const p = problemOf(schema, r.error, options);
        if (p.kind === 'unknownKey') throw new TaskRegistryError(`${task}: unknown option '${p.key}' (known: ${keys.join(', ')})`);
        if (p.kind === 'sentence') throw new TaskRegistryError(`${task}: ${p.message}`);
        const key = String(p.path[0]);
        throw new TaskRegistryError(`${task}: option '${key}' must be ${expected[key] || expectedOf(p)}, got ${JSON.stringify(valueAt(options, [key]))}`);
      }
      const out: Record<string, unknown> = { ...defaults };
      for (const [k, v] of Object.entries(r.data)) if (v !== undefined) out[k] = v;
      return out as O;
    },
  };
}

/**
 * The recommended Trainer options from a task's parsed options; `batchesPerEpoch` (of the built
 * training source) sizes the cosine schedule when the task option `cosine` is set.
 */
export function trainDefaults(o: TrainKeys, batchesPerEpoch?: number): TrainDefaults {
  const optimizer: TrainDefaults['optimizer'] = o.weightDecay ? { name: 'adamw', weightDecay: o.weightDecay } : 'adam';
  const out: TrainDefaults = { optimizer, lr: o.lr, epochs: o.epochs, clipNorm: o.clipNorm, seed: o.seed };
  if (o.cosine) {
    if (!(Number.isInteger(batchesPerEpoch) && batchesPerEpoch! >= 1)) throw new TaskRegistryError("option 'cosine' needs the number of training batches per epoch");
    out.schedule = { type: 'CosineAnnealingLR', tMax: o.epochs * batchesPerEpoch!, etaMin: o.lr / 100 };
  }
  return out;
}

/** The options every task has: those its recommended Trainer options come from (`cosine`, `weightDecay`: where a task offers them). */
export type TrainKeys = { lr: number; epochs: number; clipNorm: number; seed: number; cosine?: boolean; weightDecay?: number };

/** What makeSpec makes a TaskSpec of. */
export interface SpecBase<O> {
  name: string;
  description: string;
  topology: Topology;
  options: OptionSet<O>;
  build: (o: O) => Omit<BuiltTask, 'trainOptions'>;
  /** `o`: the parsed options, when the caller gave any (TaskSpec.load). */
  load: (file: ModelFile, where: string | undefined, o: O | undefined) => { task: Task<any> };
  predict: TaskSpec['predict'];
}

/** A registry TaskSpec from an option set and a builder: defaults and help from the set, build parsing the options first. */
export function makeSpec<O extends TrainKeys>(base: SpecBase<O>): TaskSpec {
  return {
    name: base.name,
    description: base.description,
    topology: base.topology,
    defaults: { ...base.options.defaults },
    optionHelp: base.options.help,
    optionForms: base.options.expected,
    build(options) {
      const o = base.options.parse(base.name, options);
      const built = base.build(o);
      return { ...built, trainOptions: trainDefaults(o, built.train.numBatches) };
    },
    load: (file, where, options) => base.load(file, where, options === undefined ? undefined : base.options.parse(base.name, options)),
    predict: base.predict,
  };
}

// ---- stored model configs (recur.config) ------------------------------------------------------------

/** A model file's config that is malformed, or that does not match the file's tensors. */
export class TaskConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskConfigError';
  }
}

/**
 * A stored config without its `task` key, which (when present) must name `task`: for the tasks
 * whose model config is the model's own (seq2seq, caption), written with or without the task.
 */
export function withoutTask(config: unknown, task: string, where: string): Record<string, unknown> {
  if (!isRecord(config)) throw new TaskConfigError(`${where}: expected an object, got ${brief(config)}`);
  const { task: named, ...rest } = config;
  if (named !== undefined && named !== task) throw new TaskConfigError(`${where}: task must be '${task}', got ${brief(named)}`);
  return rest;
}

/**
 * Check a config read from a model file against its schema (a strict Zod object built from
 * models/fields.ts): with `limits`, first every size within its limit (a LimitError naming the
 * key: the fields that count against a limit say which in their metadata), before anything else
 * looks at the values; then exactly the schema's keys, each of its form. Limits apply to files
 * (untrusted); a config built from the caller's own options is checked without them (`limits`
 * null). Any other problem is an error of class `error` (default TaskConfigError) naming the key,
 * the expected form and what was got.
 */
export function parseConfig<T>(
  where: string,
  schema: z.ZodObject & z.ZodType<T>,
  config: unknown,
  o: { limits?: Partial<Limits> | null; error?: new (message: string) => Error } = {},
): T {
  const E = o.error ?? TaskConfigError;
  if (config === null || config === undefined) throw new E(`${where}: missing (the model file has no recur.config metadata)`);
  if (!isRecord(config)) throw new E(`${where}: expected an object, got ${brief(config)}`);
  if (o.limits) {
    const lim = resolveLimits(o.limits);
    for (const [k, field] of Object.entries(schema.shape)) {
      const limit = fieldMeta(field as z.ZodType).limit;
      const v = Object.hasOwn(config, k) ? config[k] : undefined;
      if (!limit) continue;
      if (typeof v === 'number' && Number.isSafeInteger(v)) checkLimit(lim, limit, v, `${where}: '${k}'`);
      else if (Array.isArray(v)) {
        // a list counts its entries; a tuple of sizes (a captioner's channels) counts each size
        if ((field as z.ZodType)._zod.def.type !== 'tuple') checkLimit(lim, limit, v.length, `${where}: entries of '${k}'`);
        else v.forEach((x, i) => typeof x === 'number' && Number.isSafeInteger(x) && checkLimit(lim, limit, x, `${where}: '${k}'[${i}]`));
      }
    }
  }
  const r = schema.safeParse(config);
  if (r.success) return r.data;
  const p = problemOf(schema, r.error, config);
  const key = String(p.path[0] ?? '');
  if (p.kind === 'unknownKey') throw new E(`${where}: unknown field '${p.key}' (known: ${Object.keys(schema.shape).join(', ')})`);
  if (p.kind === 'sentence') throw new E(`${where}: ${p.message}`);
  if (!Object.hasOwn(config, key)) throw new E(`${where}: missing field '${key}'`);
  // a field says its whole form (a list's, an enum's), whichever part of the value failed
  const form = fieldMeta(schema.shape[key] as z.ZodType).expected ?? expectedOf(p);
  throw new E(`${where}: '${key}' must be ${form}, got ${brief(config[key])}`);
}

/** The parameters a config implies: PyTorch state_dict names and shapes, in registration order. */
export type ParamShapes = [name: string, shape: number[]][];


/** nn.Linear(inF, outF): weight [outF, inF], bias [outF]. */
export function linearShapes(prefix: string, inF: number, outF: number, bias = true): ParamShapes {
  return bias ? [[`${prefix}.weight`, [outF, inF]], [`${prefix}.bias`, [outF]]] : [[`${prefix}.weight`, [outF, inF]]];
}

/** nn.Embedding(V, E): weight [V, E]. */
export function embeddingShapes(prefix: string, V: number, E: number): ParamShapes {
  return [[`${prefix}.weight`, [V, E]]];
}

/** nn.Conv2d(inC, outC, k): weight [outC, inC, k, k], bias [outC]. */
export function conv2dShapes(prefix: string, inC: number, outC: number, k: number): ParamShapes {
  return [[`${prefix}.weight`, [outC, inC, k, k]], [`${prefix}.bias`, [outC]]];
}

/** nn.LSTM / nn.GRU / nn.RNN (with biases): weight_ih_l{l}[_reverse] [G·H, in], weight_hh [G·H, H], bias_ih, bias_hh [G·H]. */
export function recurrentShapes(prefix: string, cell: CellKind, inputSize: number, H: number, numLayers: number, bidirectional: boolean): ParamShapes {
  const G = CELLS[CELL_MODE[cell]].G;
  const D = bidirectional ? 2 : 1;
  const out: ParamShapes = [];
  for (let l = 0; l < numLayers; l++) {
    const inSize = l === 0 ? inputSize : D * H;
    for (let d = 0; d < D; d++) {
      const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
      out.push([`${prefix}.weight_ih${sfx}`, [G * H, inSize]], [`${prefix}.weight_hh${sfx}`, [G * H, H]], [`${prefix}.bias_ih${sfx}`, [G * H]], [`${prefix}.bias_hh${sfx}`, [G * H]]);
    }
  }
  return out;
}

/** nn.LSTMCell / nn.GRUCell / nn.RNNCell: the same four tensors without a layer suffix. */
export function cellShapes(prefix: string, cell: CellKind, inputSize: number, H: number): ParamShapes {
  const G = CELLS[CELL_MODE[cell]].G;
  return [[`${prefix}.weight_ih`, [G * H, inputSize]], [`${prefix}.weight_hh`, [G * H, H]], [`${prefix}.bias_ih`, [G * H]], [`${prefix}.bias_hh`, [G * H]]];
}

const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * The tensors a config implies against a file's tensors, before the model is built: their
 * parameter count within `limits.parameters` (a LimitError), then exactly those names with exactly
 * those shapes — nothing missing, nothing extra (an error of class `error` listing the first
 * problems). `where` names the file.
 */
export function checkModelTensors(
  where: string,
  expected: ParamShapes,
  tensors: Record<string, { shape: readonly number[] }>,
  o: { limits?: Partial<Limits>; error?: new (message: string) => Error } = {},
): void {
  const E = o.error ?? TaskConfigError;
  const lim = resolveLimits(o.limits);
  let total = 0;
  for (const [, shape] of expected) total += shape.reduce((a, b) => a * b, 1);
  checkLimit(lim, 'parameters', total, `${where}: parameters the config implies`);
  const problems: string[] = [];
  const wanted = new Set<string>();
  for (const [name, shape] of expected) {
    wanted.add(name);
    const t = Object.hasOwn(tensors, name) ? tensors[name] : undefined;
    if (!t) problems.push(`missing tensor '${name}'`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) problems.push(`'${name}' has shape ${shapeText(t.shape)}, the config implies ${shapeText(shape)}`);
  }
  for (const name of Object.keys(tensors)) if (!wanted.has(name)) problems.push(`unexpected tensor '${name.length > 80 ? `${name.slice(0, 77)}...` : name}'`);
  if (problems.length) {
    const shown = problems.slice(0, 10).join('; ');
    throw new E(`${where}: the tensors do not match the config: ${shown}${problems.length > 10 ? `; … (${problems.length} problems in all)` : ''}`);
  }
}

/** A vocabulary's entry count within `limits.vocab`, before the vocabulary is built. */
export function checkVocabSize(where: string, n: number, limits: Partial<Limits> = {}): void {
  checkLimit(resolveLimits(limits), 'vocab', n, `${where}: vocabulary entries`);
}
