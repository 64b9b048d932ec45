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
 */
import type { BatchSource, Task } from '../train/task.ts';
import type { ModelFile } from '../io/model.ts';

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
  if (def.type === 'int' && !Number.isInteger(n)) return bad(expected);
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
