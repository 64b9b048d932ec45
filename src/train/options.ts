/**
 * The Trainer's options, declared once as a schema (with its nested checkpoint, earlyStopping,
 * optimizer and schedule), and their resolution: defaults filled in, the optimizer and the
 * schedule built from their specs, the options as the JSON a checkpoint stores, and the saved
 * options merged with overrides on restore. How the schemas are declared and their failures
 * worded is in schema.ts, with the optimizers' and the schedules' option sets, which this one
 * nests.
 *
 * Imports point one way: this file sits above the optimizer classes (it builds them, and an
 * `Optimizer` instance is a valid `optimizer` option), the schedules (a spec is built into one)
 * and the callbacks (`progress: true` is a `LineProgress`); those take their own schemas from
 * schema.ts, a leaf, and none imports this file. (Once, optim.ts took its schemas from here while
 * this file imported `Optimizer`: an import cycle that held only because neither used the other
 * while loading.) The one loop left is of types alone, erased at run time: the `callbacks`
 * option's `Callback` hooks receive the `Trainer`, whose constructor takes these options.
 */
import { z } from 'zod';
import { brief, isRecord } from '../util/options.ts';
import { pathText, problemOf, valueAt, type Problem, type SameKeys } from '../util/schema.ts';
import { Rng } from '../tensor/rng.ts';
import { Adagrad, Adam, AdamW, Optimizer, RMSProp, SGD, type Params } from './optim.ts';
import { LineProgress, type Callback, type ProgressSink } from './callbacks.ts';
import type { RunStore } from './run-store.ts';
import { scheduleFromSpec, type LRScheduler, type Schedule } from './schedule.ts';
import {
  atLeast, bool, instance, parseOptimizerOptions, positive, posInt, SCHEDULE_TYPE, scheduleError, scheduleSpecSchema, type ScheduleSpec,
} from './schema.ts';

// ---- the Trainer's options -------------------------------------------------------------------------

export type OptimizerName = 'sgd' | 'adam' | 'adamw' | 'rmsprop' | 'adagrad';
const OPTIMIZER_NAMES = ['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'] as const;
const optimizerNamesMatch: SameKeys<Record<OptimizerName, 0>, Record<(typeof OPTIMIZER_NAMES)[number], 0>> = true;

// An enum's error message is its noun: "unknown optimizer 'adamx' (known: …)". Names are matched
// in any case ('Adam'), as they always were.
const optimizerName = z.preprocess((v: OptimizerName) => (typeof v === 'string' ? v.toLowerCase() : v), z.enum(OPTIMIZER_NAMES, { error: 'optimizer' }));

/** A schedule instance (not its spec): what `lrAt` and `toSpec` make one. */
export const isSchedule = (v: unknown): v is Schedule => isRecord(v) && typeof v.lrAt === 'function' && typeof v.toSpec === 'function';
const isRunStore = (v: unknown): boolean => isRecord(v) && typeof v.read === 'function' && typeof v.write === 'function' && typeof v.append === 'function';
const HOOKS = 'an object with hooks (onFitStart, onStepEnd, onEvalEnd, onEpochEnd, onFitEnd)';

const checkpointOptionsSchema = z.strictObject({
  dir: z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' }).nullish().describe('where checkpoints go (default: runDir)'),
  every: posInt().nullish().describe('write a checkpoint every this many steps (default: only at the end)'),
  saveBest: bool().default(true).describe('keep best.safetensors, the model at the best evaluation'),
});

const earlyStoppingOptionsSchema = z.strictObject({
  patience: posInt().describe('evaluations without improvement of the primary metric before stopping'),
  minDelta: atLeast(0).default(0).describe('the least change that counts as an improvement'),
}, { error: 'an object {patience, minDelta?}' });

const trainerOptionsSchema = z.strictObject({
  optimizer: z.union([
    optimizerName,
    z.looseObject({ name: optimizerName }), // the other keys are the optimizer's, checked by its own schema
    instance<Optimizer>((v) => v instanceof Optimizer, 'an Optimizer'),
  ], { error: `a name (${OPTIMIZER_NAMES.join(', ')}), {name, ...hyper-parameters} or an Optimizer` }).nullish()
    .describe("default 'adam': an optimizer by name (default hyper-parameters), by name with hyper-parameters, or an instance"),
  lr: atLeast(0).optional().describe("learning rate (overrides the optimizer spec's lr; default: the optimizer's default)"),
  schedule: z.union([instance<Schedule>(isSchedule, 'a schedule'), scheduleSpecSchema], { error: SCHEDULE_TYPE }).nullish()
    .describe('a learning-rate schedule (an instance or its JSON spec), stepped after every optimizer step'),
  // 0 means no clipping, as in the task options (a task option is a number and has no null to
  // say "off"); clipping every gradient to norm 0 would zero every update, never what is meant.
  clipNorm: z.union([z.literal(0), positive()], { error: 'a finite number > 0' }).nullish()
    .describe('clip the global gradient 2-norm to this (torch clip_grad_norm_); 0 or null: no clipping'),
  clipValue: positive().nullish().describe('clamp every gradient element to ±this (torch clip_grad_value_), before norm clipping'),
  epochs: z.union([z.literal(Infinity), posInt()], { error: 'a positive integer' }).nullish()
    .describe('passes over the training data (default 1, or unlimited when maxSteps or timeLimitSeconds is given)'),
  maxSteps: posInt().nullish().describe('stop after this many optimizer steps in total (resumed runs count from the start)'),
  timeLimitSeconds: positive().nullish().describe('stop after this many seconds of this fit call'),
  evalEvery: posInt().nullish().describe('evaluate every this many steps (default: at the end of each epoch)'),
  logEvery: posInt().nullish().describe('write a train entry to the metrics log every this many steps (default 10)'),
  earlyStopping: earlyStoppingOptionsSchema.nullish().describe('stop when the primary validation metric stops improving'),
  runDir: z.string({ error: 'a non-empty string' }).min(1, { error: 'a non-empty string' }).nullish()
    .describe('run directory: metrics.jsonl, model.safetensors, checkpoints (metrics go to checkpoint.dir without it)'),
  store: instance<RunStore>(isRunStore, 'a RunStore {read, write, append}').nullish()
    .describe("where run directories live: fileStore (recurjs/node) for folders on disk, memoryStore() for memory; needed when runDir or checkpoint is set"),
  checkpoint: z.union([z.literal(false), checkpointOptionsSchema], { error: 'an object {dir?, every?, saveBest?} or false' }).nullish()
    .describe('checkpointing (default: at the end, into runDir, when runDir is set); false for none'),
  seed: z.int({ error: 'an integer' }).nullish().describe('reseed the global RNG when a fresh fit starts (not when resuming)'),
  progress: z.union([bool(), instance<ProgressSink>((v) => isRecord(v) && typeof v.update === 'function', 'a progress display')], { error: 'true, false or an object with update(stats)' }).optional()
    .describe('show progress: true for plain lines on stderr, or a display of your own'),
  callbacks: z.array(instance<Callback<any>>((v) => v !== null && typeof v === 'object', HOOKS), { error: 'an array of callback objects' }).optional(),
  gradNormLogging: bool().default(false).describe('put per-layer gradient norms in the metrics log (the global norm is always logged)'),
  rngs: z.record(z.string(), instance<Rng>((v) => v instanceof Rng, 'an Rng'), { error: 'an object of named Rng instances' }).optional()
    .describe('more RNGs to save and restore, by name (those on the task and its modules are found automatically)'),
  handleInterrupt: bool().default(false).describe('stop gracefully on the first Ctrl-C (SIGINT), quit on the second'),
  log: instance<(message: string) => void>((v) => typeof v === 'function', 'a function (message) => void').optional()
    .describe('where warnings and notices go (default console.error)'),
  meta: z.unknown().optional().describe('JSON-serialisable data stored in checkpoints (e.g. how to rebuild the task)'),
});

/** An optimizer by name (default hyper-parameters), by name with hyper-parameters, or an instance. */
export type OptimizerSpec = OptimizerName | ({ name: OptimizerName } & Record<string, unknown>) | Optimizer;

export interface EarlyStoppingOptions {
  /** Evaluations without improvement of the primary metric before stopping. */
  patience: number;
  /** The least change that counts as an improvement (default 0). */
  minDelta?: number;
}

export interface CheckpointOptions {
  /** Where checkpoints go (default: runDir). */
  dir?: string;
  /** Write a checkpoint every this many steps (default: only at the end). */
  every?: number;
  /** Keep best.safetensors, the model at the best evaluation (default true). */
  saveBest?: boolean;
}

/** The Trainer's options; the schema above holds their checks, defaults and help text. */
export interface TrainerOptions {
  /** Default 'adam'. */
  optimizer?: OptimizerSpec;
  /** Learning rate (overrides the optimizer spec's lr; default: the optimizer's default). */
  lr?: number;
  /** A learning-rate schedule (an instance or its JSON spec), stepped after every optimizer step. */
  schedule?: Schedule | ScheduleSpec | null;
  /** Clip the global gradient 2-norm to this (torch clip_grad_norm_); 0 or null: no clipping. */
  clipNorm?: number | null;
  /** Clamp every gradient element to ±this (torch clip_grad_value_), before norm clipping. */
  clipValue?: number | null;
  /** Passes over the training data (default 1, or unlimited when maxSteps or timeLimitSeconds is given). */
  epochs?: number;
  /** Stop after this many optimizer steps in total (resumed runs count from the start). */
  maxSteps?: number | null;
  /** Stop after this many seconds of this fit call. */
  timeLimitSeconds?: number | null;
  /** Evaluate every this many steps (default: at the end of each epoch). */
  evalEvery?: number | null;
  /** Write a train entry to the metrics log every this many steps (default 10). */
  logEvery?: number;
  /** Stop when the primary validation metric stops improving. */
  earlyStopping?: EarlyStoppingOptions | null;
  /** Run directory: metrics.jsonl, model.safetensors, checkpoints (metrics go to checkpoint.dir without it). */
  runDir?: string | null;
  /**
   * Where run directories live: `fileStore` (recurjs/node) for folders on disk, `memoryStore()` for
   * memory. Needed when runDir or checkpoint is set; the training loop itself touches no file system.
   */
  store?: RunStore;
  /** Checkpointing (default: at the end, into runDir, when runDir is set); false for none. */
  checkpoint?: CheckpointOptions | false | null;
  /** Reseed the global RNG when a fresh fit starts (not when resuming). */
  seed?: number | null;
  /** Show progress: true for plain lines on stderr, or a display of your own. */
  progress?: boolean | ProgressSink;
  callbacks?: Callback<any>[];
  /** Put per-layer gradient norms in the metrics log (the global norm is always logged). */
  gradNormLogging?: boolean;
  /** More RNGs to save and restore, by name (those on the task and its modules are found automatically). */
  rngs?: Record<string, Rng>;
  /** Stop gracefully on the first Ctrl-C (SIGINT), quit on the second (default false). */
  handleInterrupt?: boolean;
  /** Where warnings and notices go (default console.error). */
  log?: (message: string) => void;
  /** JSON-serialisable data stored in checkpoints (e.g. how to rebuild the task). */
  meta?: unknown;
}

type TrainerTypesMatch = [
  SameKeys<TrainerOptions, z.input<typeof trainerOptionsSchema>>,
  SameKeys<CheckpointOptions, z.input<typeof checkpointOptionsSchema>>,
  SameKeys<EarlyStoppingOptions, z.input<typeof earlyStoppingOptionsSchema>>,
];
const trainerTypesMatch: TrainerTypesMatch = [true, true, true];
// every value the written type allows is one the schema's type takes (the schema takes more:
// null for most options, specs without their defaulted fields)
const schemaTakes: (o: TrainerOptions) => z.input<typeof trainerOptionsSchema> = (o) => o;

/** The Trainer's options with every default and derived value filled in. */
export interface ResolvedTrainerOptions {
  optimizer: OptimizerSpec;
  lr: number | undefined;
  schedule: Schedule | null;
  clipNorm: number | null;
  clipValue: number | null;
  epochs: number;
  maxSteps: number | null;
  timeLimitSeconds: number | null;
  evalEvery: number | null;
  logEvery: number;
  earlyStopping: { patience: number; minDelta: number } | null;
  runDir: string | null;
  checkpointDir: string | null;
  store: RunStore | null;
  checkpointEvery: number | null;
  checkpointOff: boolean;
  saveBest: boolean;
  seed: number | null;
  progress: ProgressSink | null;
  callbacks: Callback<any>[];
  gradNormLogging: boolean;
  rngs: Record<string, Rng> | undefined;
  handleInterrupt: boolean;
  log: (message: string) => void;
  meta: unknown;
}

export class TrainerOptionsError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'TrainerOptionsError';
  }
}

function parseTrainer<S extends z.ZodType>(schema: S, options: unknown): z.output<S> {
  const r = schema.safeParse(options);
  if (r.success) return r.data;
  throw trainerError(problemOf(schema, r.error, options), options);
}

/** Validate the Trainer's options and fill in the defaults, or throw a TrainerOptionsError. */
export function resolveTrainerOptions(options: unknown): ResolvedTrainerOptions {
  const o = parseTrainer(trainerOptionsSchema, options);
  const runDir = o.runDir ?? null;
  let checkpointDir = runDir, checkpointEvery: number | null = null, saveBest = true;
  const checkpointOff = o.checkpoint === false;
  if (o.checkpoint === false) checkpointDir = null;
  else if (o.checkpoint) {
    checkpointDir = o.checkpoint.dir ?? runDir;
    checkpointEvery = o.checkpoint.every ?? null;
    saveBest = o.checkpoint.saveBest;
    if (checkpointDir === null) throw new TrainerOptionsError("Trainer: option 'checkpoint' needs a directory: set 'checkpoint.dir' or 'runDir'");
  }
  const store = o.store ?? null;
  if (store === null && checkpointDir !== null) {
    throw new TrainerOptionsError("Trainer: 'runDir' and 'checkpoint' need a place to write: pass store: fileStore (from 'recurjs/node') for folders on disk, or store: memoryStore()");
  }
  const maxSteps = o.maxSteps ?? null, timeLimitSeconds = o.timeLimitSeconds ?? null;
  const schedule = o.schedule ?? null;
  return {
    optimizer: o.optimizer ?? 'adam',
    lr: o.lr,
    schedule: schedule === null || isSchedule(schedule) ? schedule : scheduleFromSpec(schedule),
    clipNorm: o.clipNorm || null,
    clipValue: o.clipValue ?? null,
    epochs: o.epochs ?? (maxSteps !== null || timeLimitSeconds !== null ? Infinity : 1),
    maxSteps,
    timeLimitSeconds,
    evalEvery: o.evalEvery ?? null,
    logEvery: o.logEvery ?? 10,
    earlyStopping: o.earlyStopping ?? null,
    runDir,
    checkpointDir,
    store,
    checkpointEvery,
    checkpointOff,
    saveBest,
    seed: o.seed ?? null,
    progress: o.progress === true ? new LineProgress() : o.progress || null,
    callbacks: [...(o.callbacks ?? [])],
    gradNormLogging: o.gradNormLogging,
    rngs: o.rngs,
    handleInterrupt: o.handleInterrupt,
    log: o.log ?? ((m: string) => console.error(m)),
    meta: o.meta ?? null,
  };
}

const optimizerOnly = trainerOptionsSchema.pick({ optimizer: true, lr: true });

/** Build an optimizer from a spec over `params`; `lr` (when given) overrides the spec's. */
export function createOptimizer(spec: OptimizerSpec, params: Params, lr?: number): Optimizer {
  const o = parseTrainer(optimizerOnly, { optimizer: spec, lr });
  const s = o.optimizer ?? 'adam';
  if (s instanceof Optimizer) {
    if (o.lr !== undefined) s.lr = o.lr;
    return s;
  }
  const { name, ...rest } = typeof s === 'string' ? { name: s } : s;
  const hyper = o.lr === undefined ? rest : { ...rest, lr: o.lr };
  // Each optimizer parses its hyper-parameters with its schema (messages start with its name).
  switch (name) {
    case 'sgd':
      if (hyper.lr === undefined) throw new TrainerOptionsError("Trainer: SGD needs a learning rate: set option 'lr'");
      return new SGD(params, parseOptimizerOptions('SGD', hyper, 'SGD'));
    case 'adam':
      return new Adam(params, parseOptimizerOptions('Adam', hyper, 'Adam'));
    case 'adamw':
      return new AdamW(params, parseOptimizerOptions('AdamW', hyper, 'AdamW'));
    case 'rmsprop':
      return new RMSProp(params, parseOptimizerOptions('RMSProp', hyper, 'RMSProp'));
    case 'adagrad':
      return new Adagrad(params, parseOptimizerOptions('Adagrad', hyper, 'Adagrad'));
  }
}

/**
 * The options as JSON (what checkpoints store; valid input for a new Trainer): the resolved
 * options, with the optimizer and schedule as the trainer built them.
 */
export function trainerOptionsJSON(o: ResolvedTrainerOptions, optimizer: Optimizer, scheduler: LRScheduler | null): Record<string, unknown> {
  return {
    // The base learning rate (a schedule changes the optimizer's current one).
    optimizer: { name: optimizer.type.toLowerCase(), ...optimizer.hyper, ...(scheduler ? { lr: scheduler.baseLr } : {}) },
    schedule: scheduler ? scheduler.schedule.toSpec() : null,
    clipNorm: o.clipNorm,
    clipValue: o.clipValue,
    epochs: Number.isFinite(o.epochs) ? o.epochs : null,
    maxSteps: o.maxSteps,
    timeLimitSeconds: o.timeLimitSeconds,
    evalEvery: o.evalEvery,
    logEvery: o.logEvery,
    earlyStopping: o.earlyStopping,
    runDir: o.runDir,
    checkpoint: o.checkpointOff ? false : o.checkpointDir ? { dir: o.checkpointDir, ...(o.checkpointEvery ? { every: o.checkpointEvery } : {}), saveBest: o.saveBest } : null,
    seed: o.seed,
    gradNormLogging: o.gradNormLogging,
    meta: o.meta,
  };
}

/**
 * The options of a trainer restored from the run in `dir`: those its checkpoint saved, writing
 * into `dir`, merged with `overrides`. A budget in `overrides` (epochs, maxSteps,
 * timeLimitSeconds) replaces the saved budget as a whole.
 */
export function restoredOptions(saved: unknown, dir: string, overrides: TrainerOptions): TrainerOptions {
  const s = { ...(saved as Record<string, unknown>) } as TrainerOptions & Record<string, unknown>;
  const opts: Record<string, unknown> = {
    ...s,
    runDir: dir,
    checkpoint: s.checkpoint === false ? false : { ...((s.checkpoint ?? {}) as CheckpointOptions), dir },
    ...overrides,
  };
  const budget = ['epochs', 'maxSteps', 'timeLimitSeconds'] as const;
  if (budget.some((k) => k in overrides)) for (const k of budget) if (!(k in overrides)) opts[k] = null;
  return opts as TrainerOptions;
}

/** The run directory: where the metrics log goes (runDir, else the checkpoint directory), or null. */
export function logDirOf(o: ResolvedTrainerOptions): string | null {
  return o.runDir ?? o.checkpointDir;
}

/** A trainer without a directory of its own keeps writing into the one it resumed from. */
export function adoptRunDir(o: ResolvedTrainerOptions, dir: string): void {
  if (o.runDir === null && o.checkpointDir === null && !o.checkpointOff) {
    o.runDir = dir;
    o.checkpointDir = dir;
  }
}

/** The store the options name, or a TrainerOptionsError for `who` (a method that needs one). */
export function requireStore(o: ResolvedTrainerOptions, who: string): RunStore {
  if (!o.store) throw new TrainerOptionsError(`${who}: the trainer has no store; pass store: fileStore (from 'recurjs/node') or store: memoryStore()`);
  return o.store;
}

export interface FitOptions {
  /** Continue from the checkpoint in this directory. */
  resume?: string;
}

/** Check the options of one `fit` call (and those of the Trainer's that need its validation data). */
export function checkFitOptions(o: ResolvedTrainerOptions, fitOpts: FitOptions, hasVal: boolean): void {
  if (fitOpts === null || typeof fitOpts !== 'object' || Array.isArray(fitOpts)) throw new TypeError('Trainer.fit: the third argument must be an object {resume?}');
  for (const k of Object.keys(fitOpts)) if (k !== 'resume') throw new TypeError(`Trainer.fit: unknown option '${k}' (known: resume)`);
  if (o.earlyStopping && !hasVal) throw new TrainerOptionsError("Trainer: option 'earlyStopping' needs validation data: fit(train, val)");
}

function trainerError(p: Problem, options: unknown): TrainerOptionsError {
  const where = pathText(p.path);
  // a bad schedule (spec) reads as the schedule's own message, after the option's name
  if (p.path[0] === 'schedule') {
    const inner = { ...p, path: p.path.slice(1) };
    return new TrainerOptionsError(`Trainer: option 'schedule': ${scheduleError(inner, valueAt(options, ['schedule'])).message}`);
  }
  switch (p.kind) {
    case 'unknownKey':
      return new TrainerOptionsError(`Trainer: unknown option '${pathText([...p.path, p.key])}' (known: ${p.known.join(', ')})`);
    case 'unknownValue':
      return new TrainerOptionsError(`Trainer: unknown ${p.noun} ${brief(p.got, "'")} (known: ${p.known.join(', ')})`);
    case 'sentence':
      return new TrainerOptionsError(`Trainer: ${p.message}`);
    default:
      if (p.path.length === 0) return new TrainerOptionsError('Trainer: options must be an object');
      return new TrainerOptionsError(`Trainer: option '${where}' must be ${p.expected}, got ${brief(p.got, "'")}`);
  }
}
