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
import { brief } from '../util/options.ts';

export type Topology = 'one-to-one' | 'one-to-many' | 'many-to-one' | 'many-to-many';

/** Recommended Trainer options (pass straight to `new Trainer(task, trainOptions)`). */
export type TrainDefaults = {
  optimizer: 'adam';
  lr: number;
  epochs: number;
  clipNorm: number;
  seed: number;
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
  /** Validate options, load the data, build the task. */
  build(options?: Record<string, unknown>): BuiltTask;
  /** Rebuild a trained task from a model file. */
  load(file: ModelFile, where?: string): { task: Task<any> };
  /** Run a (loaded or trained) task on raw inputs. */
  predict(task: Task<any>, inputs: string[]): string[];
}

export class TaskRegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskRegistryError';
  }
}

// ---- options --------------------------------------------------------------------------------------

/** One option of a task: its default, documentation and accepted values. */
export interface OptionDef {
  default: number | boolean | string;
  help: string;
  /** int / number with optional bounds; string with optional choices. */
  type: 'int' | 'number' | 'boolean' | 'string';
  min?: number;
  max?: number;
  /** The upper bound itself is not allowed. */
  maxOpen?: boolean;
  choices?: readonly string[];
}

/** A task's options by name. */
export type Schema = Record<string, OptionDef>;

export const int = (d: number, help: string, min = 1, max?: number): OptionDef => ({ default: d, help, type: 'int', min, max });
export const num = (d: number, help: string, min = 0, max?: number, maxOpen = false): OptionDef => ({ default: d, help, type: 'number', min, max, maxOpen });
export const bool = (d: boolean, help: string): OptionDef => ({ default: d, help, type: 'boolean' });
export const str = (d: string, help: string, choices?: readonly string[]): OptionDef => ({ default: d, help, type: 'string', choices });

/** One option value checked against its definition (numbers and booleans may be strings). */
export function coerce(task: string, key: string, def: OptionDef, v: unknown): number | boolean | string {
  const bad = (expected: string): never => {
    throw new TaskRegistryError(`${task}: option '${key}' must be ${expected}, got ${JSON.stringify(v)}`);
  };
  if (def.type === 'boolean') {
    if (typeof v === 'boolean') return v;
    if (v === 'true') return true;
    if (v === 'false') return false;
    return bad('true or false');
  }
  if (def.type === 'string') {
    if (typeof v !== 'string') return bad(def.choices ? `one of ${def.choices.join(', ')}` : 'a string');
    if (def.choices && !def.choices.includes(v)) return bad(`one of ${def.choices.join(', ')}`);
    return v;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  const range = `${def.min !== undefined ? ` ≥ ${def.min}` : ''}${def.max !== undefined ? `${def.min !== undefined ? ' and' : ''} ${def.maxOpen ? '<' : '≤'} ${def.max}` : ''}`;
  const expected = `${def.type === 'int' ? 'an integer' : 'a number'}${range}`;
  if (!Number.isFinite(n)) return bad(expected);
  // safe integers only: 2^53 + 2 is an "integer" to Number.isInteger but not a count any loop can reach
  if (def.type === 'int' && !Number.isSafeInteger(n)) return bad(expected);
  if (def.min !== undefined && n < def.min) return bad(expected);
  if (def.max !== undefined && (def.maxOpen ? n >= def.max : n > def.max)) return bad(expected);
  return n;
}

/** Defaults merged with validated options (see the file comment for the rules). */
export function resolveOptions(task: string, schema: Schema, options: Record<string, unknown> | undefined): Record<string, number | boolean | string> {
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) throw new TaskRegistryError(`${task}: options must be an object`);
  const out: Record<string, number | boolean | string> = {};
  for (const [k, d] of Object.entries(schema)) out[k] = d.default;
  for (const [k, v] of Object.entries(options ?? {})) {
    const def = schema[k];
    if (!def) throw new TaskRegistryError(`${task}: unknown option '${k}' (known: ${Object.keys(schema).join(', ')})`);
    if (v === undefined) continue;
    out[k] = coerce(task, k, def, v);
  }
  return out;
}

/** The recommended Trainer options from resolved options (lr, epochs, clipNorm, seed). */
export function trainDefaults(o: Record<string, number | boolean | string>): TrainDefaults {
  return { optimizer: 'adam', lr: o.lr as number, epochs: o.epochs as number, clipNorm: o.clipNorm as number, seed: o.seed as number };
}

/** A registry TaskSpec from a schema: defaults and help from the schema, build validating the options first. */
export function makeSpec(base: { name: string; description: string; topology: Topology; schema: Schema; build: (o: Record<string, number | boolean | string>) => Omit<BuiltTask, 'trainOptions'>; load: TaskSpec['load']; predict: TaskSpec['predict'] }): TaskSpec {
  const defaults = Object.fromEntries(Object.entries(base.schema).map(([k, d]) => [k, d.default]));
  const optionHelp = Object.fromEntries(Object.entries(base.schema).map(([k, d]) => [k, d.help]));
  return {
    name: base.name,
    description: base.description,
    topology: base.topology,
    defaults,
    optionHelp,
    build(options) {
      const o = resolveOptions(base.name, base.schema, options);
      return { ...base.build(o), trainOptions: trainDefaults(o) };
    },
    load: base.load,
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

/** One key of a stored config: its type, range and (for sizes) the resource limit it counts against. */
export type ConfigField =
  | { type: 'int'; min: number; max?: number; limit?: keyof Limits }
  | { type: 'number'; min: number; max?: number; maxOpen?: boolean; minOpen?: boolean }
  | { type: 'boolean' }
  | { type: 'string'; choices?: readonly string[] }
  | { type: 'strings'; minItems: number; limit?: keyof Limits; unique?: boolean }
  | { type: 'numbers'; sameLengthAs?: string; min?: number; minOpen?: boolean }
  | { type: 'custom'; check: (v: unknown, where: string) => void };

/** A task's stored config, key by key. */
export type ConfigSchema = Record<string, ConfigField>;

/** An integer ≥ min (a safe integer), at most `max`, and (when loading) within `limits[limit]`. */
export const cInt = (min: number, limit?: keyof Limits, max?: number): ConfigField => ({ type: 'int', min, limit, max });
/** A finite number in [min, max] (or [min, max) with maxOpen, (min, …] with minOpen). */
export const cNum = (min: number, max?: number, o: { maxOpen?: boolean; minOpen?: boolean } = {}): ConfigField => ({ type: 'number', min, max, ...o });
export const cBool = (): ConfigField => ({ type: 'boolean' });
export const cStr = (choices?: readonly string[]): ConfigField => ({ type: 'string', choices });
/** A list of at least `minItems` strings (distinct with `unique`), its length within `limits[limit]`. */
export const cStrings = (minItems: number, limit?: keyof Limits, unique = true): ConfigField => ({ type: 'strings', minItems, limit, unique });
/** A list of finite numbers, one per entry of the list under `sameLengthAs`. */
export const cNumbers = (sameLengthAs: string, min?: number, minOpen = false): ConfigField => ({ type: 'numbers', sameLengthAs, min, minOpen });
/** Anything a custom check accepts (it throws to refuse). */
export const cCustom = (check: (v: unknown, where: string) => void): ConfigField => ({ type: 'custom', check });

// The one formatter of values for messages (JSON, cut short); models import it from here.
export { brief };

/** 'a', 'b' or 'c' */
function quotedChoices(c: readonly string[]): string {
  const q = c.map((x) => `'${x}'`);
  return q.length === 1 ? q[0] : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

function describeInt(f: { min: number; max?: number }): string {
  if (f.max !== undefined) return `an integer in [${f.min}, ${f.max}]`;
  if (f.min === 1) return 'a positive integer';
  if (f.min === 0) return 'a non-negative integer';
  if (f.min <= Number.MIN_SAFE_INTEGER) return 'an integer';
  return `an integer ≥ ${f.min}`;
}

/**
 * Check a config read from a model file against its schema: an object with exactly the schema's
 * keys, each of its type and range; with `limits`, every size within its limit (a LimitError naming
 * the key). Limits apply to files (untrusted); a config built from the caller's own options is
 * checked without them (`limits` null). Any other problem is an error of class `error` (default
 * TaskConfigError) naming the key, the expected form and what was got.
 */
export function checkConfig(
  where: string,
  schema: ConfigSchema,
  config: unknown,
  o: { limits?: Partial<Limits> | null; error?: new (message: string) => Error } = {},
): Record<string, unknown> {
  const E = o.error ?? TaskConfigError;
  const lim = o.limits === null || o.limits === undefined ? null : resolveLimits(o.limits);
  if (config === null || config === undefined) throw new E(`${where}: missing (the model file has no recur.config metadata)`);
  if (typeof config !== 'object' || Array.isArray(config)) throw new E(`${where}: expected an object, got ${brief(config)}`);
  const c = config as Record<string, unknown>;
  const known = Object.keys(schema);
  for (const k of Object.keys(c)) if (!Object.hasOwn(schema, k)) throw new E(`${where}: unknown field '${k}' (known: ${known.join(', ')})`);
  for (const k of known) if (!Object.hasOwn(c, k)) throw new E(`${where}: missing field '${k}'`);
  for (const k of known) {
    const f = schema[k];
    const v = c[k];
    const bad = (expected: string): never => {
      throw new E(`${where}: '${k}' must be ${expected}, got ${brief(v)}`);
    };
    switch (f.type) {
      case 'int':
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < f.min || (f.max !== undefined && v > f.max)) bad(describeInt(f));
        if (lim && f.limit) checkLimit(lim, f.limit, v as number, `${where}: '${k}'`);
        break;
      case 'number': {
        const range = `${f.minOpen ? '(' : '['}${f.min}, ${f.max === undefined ? '∞)' : `${f.max}${f.maxOpen ? ')' : ']'}`}`;
        if (typeof v !== 'number' || !Number.isFinite(v)) bad(`a finite number in ${range}`);
        const n = v as number;
        if (f.minOpen ? n <= f.min : n < f.min) bad(`a number in ${range}`);
        if (f.max !== undefined && (f.maxOpen ? n >= f.max : n > f.max)) bad(`a number in ${range}`);
        break;
      }
      case 'boolean':
        if (typeof v !== 'boolean') bad('true or false');
        break;
      case 'string': {
        const expected = f.choices ? quotedChoices(f.choices) : 'a string';
        if (typeof v !== 'string' || (f.choices && !f.choices.includes(v))) bad(expected);
        break;
      }
      case 'strings': {
        const what = `a list of ${f.minItems > 1 ? `at least ${f.minItems} ` : ''}${f.unique ? 'distinct ' : ''}strings`;
        if (!Array.isArray(v)) bad(what);
        const a = v as unknown[];
        if (lim && f.limit) checkLimit(lim, f.limit, a.length, `${where}: entries of '${k}'`);
        if (a.length < f.minItems || !a.every((x) => typeof x === 'string')) bad(what);
        if (f.unique && new Set(a).size !== a.length) bad(what);
        break;
      }
      case 'numbers': {
        const n = f.sameLengthAs !== undefined && Array.isArray(c[f.sameLengthAs]) ? (c[f.sameLengthAs] as unknown[]).length : null;
        const what = `a list of ${n === null ? '' : `${n} `}finite numbers${f.min !== undefined ? ` ${f.minOpen ? '>' : '≥'} ${f.min}` : ''}${n === null ? '' : ` (one per entry of '${f.sameLengthAs}')`}`;
        if (!Array.isArray(v) || (n !== null && v.length !== n)) bad(what);
        for (const x of v as unknown[]) {
          if (typeof x !== 'number' || !Number.isFinite(x)) bad(what);
          if (f.min !== undefined && (f.minOpen ? (x as number) <= f.min : (x as number) < f.min)) bad(what);
        }
        break;
      }
      case 'custom':
        f.check(v, `${where}: '${k}'`);
        break;
    }
  }
  return c;
}

/** The parameters a config implies: PyTorch state_dict names and shapes, in registration order. */
export type ParamShapes = [name: string, shape: number[]][];

const GATES = { lstm: 4, gru: 3, rnn: 1 } as const;

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
export function recurrentShapes(prefix: string, cell: 'lstm' | 'gru' | 'rnn', inputSize: number, H: number, numLayers: number, bidirectional: boolean): ParamShapes {
  const G = GATES[cell];
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
export function cellShapes(prefix: string, cell: 'lstm' | 'gru' | 'rnn', inputSize: number, H: number): ParamShapes {
  const G = GATES[cell];
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
