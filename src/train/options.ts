/**
 * The option sets of the training layer, each declared once as a schema: the Trainer's options
 * (with its nested checkpoint, earlyStopping, optimizer and schedule), the hyper-parameters of
 * every optimizer, and the JSON specs of the learning-rate schedules. Each schema holds the
 * validation, the defaults and the help text (`.describe`) of its option set.
 *
 * Why Zod 4 (and not hand-written checks, nor Valibot): one object schema gives all of the above
 * at once, with issue paths (`checkpoint.every`) and unknown-key detection (`z.strictObject`) that
 * make the messages below; its JSON-schema export (`z.toJSONSchema`) can later feed the command
 * line's flags and help from the same declaration; its objects keep their shape (`.shape`), so a
 * message can name the known keys; and it runs anywhere (no Node built-ins), so the browser-safe
 * core keeps bundling. Valibot is smaller per import, but its pipelines spread one option over
 * several function calls, and a few kilobytes do not matter to a library that ships a
 * WebAssembly backend.
 *
 * Types. The public option types are written out here, not exported as `z.input<typeof schema>`:
 * Zod's own declarations name the DOM/Node `URL` type, and recurjs promises TypeScript users a
 * core whose declarations compile with neither (test/consumer.test.ts, without skipLibCheck). So
 * no export of this file mentions Zod (the schemas stay private), and the written types are
 * checked against the schemas at compile time: the same keys (`SameKeys`), every value the
 * written type allows accepted by the schema's type, and each schema's output assignable to the
 * type the code reads (`HyperOf`, `ScheduleSpec`, `ResolvedTrainerOptions`). A drift between a
 * type and its schema fails to compile.
 *
 * Messages. Zod's own messages are generic ("Too small: expected number to be >=1"); recur's name
 * the option, the form expected and the value got. So every leaf schema carries the expected form
 * as its error message (`posInt()` says "a positive integer" whatever check failed), and
 * `problemOf` turns Zod's first issue into a `Problem` (the path, what was expected, what was
 * got, or the unknown key and the known ones) that each option set words in its own style: the
 * Trainer's (`Trainer: option 'checkpoint.every' must be a positive integer, got 0`), the
 * optimizers' (`Adam: option 'eps' must be a finite number >= 0, got -1`) and the schedules'
 * (`StepLR: 'stepSize' must be an integer >= 1, got 0`), kept as they were before the schemas.
 *
 * Import cycle, on purpose: optim.ts imports its hyper-parameter schemas from here, and this file
 * imports `Optimizer` for one `instanceof` test. Neither file touches the other's exports while
 * it is being evaluated (the test runs only when options are parsed), so either may load first.
 */
import { z } from 'zod';
import { brief, isRecord } from '../util/options.ts';
import { expectedOf, pathText, problemOf, sentence, valueAt, type Problem, type SameKeys } from '../util/schema.ts';
import { Rng } from '../tensor/rng.ts';
import { Adagrad, Adam, AdamW, Optimizer, RMSProp, SGD, type Params } from './optim.ts';
import { LineProgress, type Callback, type ProgressSink } from './callbacks.ts';
import type { RunStore } from './run-store.ts';
import type { Schedule } from './schedule.ts';

// ---- leaf schemas: every failure says the one form expected ---------------------------------------

/** A safe integer >= 1. */
const posInt = (expected = 'a positive integer') => z.int({ error: expected }).min(1, { error: expected });
/** A finite number > 0 (Zod 4 numbers are finite: NaN and ±Infinity fail). */
const positive = (expected = 'a finite number > 0') => z.number({ error: expected }).positive({ error: expected });
/** A finite number >= min. */
const atLeast = (min: number, expected = `a finite number >= ${min}`) => z.number({ error: expected }).min(min, { error: expected });
/** A number in [0, 1]. */
const unit = (expected = 'a number in [0, 1]') => z.number({ error: expected }).min(0, { error: expected }).max(1, { error: expected });
const bool = () => z.boolean({ error: 'true or false' });
/** An object that passes `test`; `expected` names it. */
const instance = <T>(test: (v: unknown) => boolean, expected: string) => z.custom<T>(test, { error: expected });

// ---- optimizer hyper-parameters (PyTorch's defaults) -----------------------------------------------

const lr = () => atLeast(0).describe('learning rate');
const weightDecay = (def: number) => atLeast(0).default(def).describe('L2 penalty (coupled; decoupled for AdamW)');

const sgdOptionsSchema = z.strictObject({
  lr: lr(),
  momentum: atLeast(0).default(0).describe('momentum factor'),
  dampening: unit().default(0).describe('dampening of the momentum'),
  nesterov: bool().default(false).describe('Nesterov momentum (needs momentum > 0 and dampening = 0)'),
  weightDecay: weightDecay(0),
}).check((ctx) => {
  const { nesterov, momentum, dampening } = ctx.value;
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    ctx.issues.push(sentence(ctx.value, `option 'nesterov' requires momentum > 0 and dampening = 0 (got momentum ${momentum}, dampening ${dampening})`));
  }
});

const rmspropOptionsSchema = z.strictObject({
  lr: lr().default(0.01),
  alpha: unit().default(0.99).describe('smoothing constant of the squared-gradient average'),
  eps: atLeast(0).default(1e-8).describe('added to the denominator'),
  weightDecay: weightDecay(0),
  momentum: atLeast(0).default(0).describe('momentum factor'),
  centered: bool().default(false).describe('normalise by the estimated variance of the gradient'),
});

const adagradOptionsSchema = z.strictObject({
  lr: lr().default(0.01),
  lrDecay: atLeast(0).default(0).describe('learning-rate decay per update'),
  weightDecay: weightDecay(0),
  initialAccumulatorValue: atLeast(0).default(0).describe('start value of the squared-gradient sum'),
  eps: atLeast(0).default(1e-10).describe('added to the denominator'),
});

const BETAS = 'a pair [beta1, beta2] of numbers in [0, 1)';
const beta = () => z.number({ error: BETAS }).min(0, { error: BETAS }).lt(1, { error: BETAS });

const adamOptionsSchema = z.strictObject({
  lr: lr().default(1e-3),
  betas: z.tuple([beta(), beta()], { error: BETAS }).default((): [number, number] => [0.9, 0.999]).describe('decay rates of the moment averages'),
  eps: atLeast(0).default(1e-8).describe('added to the denominator'),
  weightDecay: weightDecay(0),
});

const adamwOptionsSchema = adamOptionsSchema.extend({ weightDecay: weightDecay(1e-2) });

// The public types are written out (see "Types" above) and checked against the schemas here:
// a key added to one and not the other, or an output the optimizer could not use, fails to compile.
export interface SGDOptions { lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }
export interface SGDHyper { lr: number; momentum: number; dampening: number; nesterov: boolean; weightDecay: number }
export interface RMSPropOptions { lr?: number; alpha?: number; eps?: number; weightDecay?: number; momentum?: number; centered?: boolean }
export interface RMSPropHyper { lr: number; alpha: number; eps: number; weightDecay: number; momentum: number; centered: boolean }
export interface AdagradOptions { lr?: number; lrDecay?: number; weightDecay?: number; initialAccumulatorValue?: number; eps?: number }
export interface AdagradHyper { lr: number; lrDecay: number; weightDecay: number; initialAccumulatorValue: number; eps: number }
export interface AdamOptions { lr?: number; betas?: readonly [number, number]; eps?: number; weightDecay?: number }
export interface AdamHyper { lr: number; betas: [number, number]; eps: number; weightDecay: number }

/** The resolved hyper-parameters of each optimizer type. */
export interface HyperOf { SGD: SGDHyper; RMSProp: RMSPropHyper; Adagrad: AdagradHyper; Adam: AdamHyper; AdamW: AdamHyper }

const HYPER_SCHEMAS: { [K in keyof HyperOf]: z.ZodType<HyperOf[K]> } = {
  SGD: sgdOptionsSchema, RMSProp: rmspropOptionsSchema, Adagrad: adagradOptionsSchema, Adam: adamOptionsSchema, AdamW: adamwOptionsSchema,
};
type TypesMatch = [
  SameKeys<SGDOptions, z.input<typeof sgdOptionsSchema>>, SameKeys<RMSPropOptions, z.input<typeof rmspropOptionsSchema>>,
  SameKeys<AdagradOptions, z.input<typeof adagradOptionsSchema>>, SameKeys<AdamOptions, z.input<typeof adamOptionsSchema>>,
];
const typesMatch: TypesMatch = [true, true, true, true];

/**
 * Parse optimizer options (or saved hyper-parameters) with the schema of `type`; `who` starts the
 * message. A value of the right type out of its range (NaN and ±Infinity included) is a
 * RangeError, a value of the wrong type a TypeError.
 */
export function parseOptimizerOptions<K extends keyof HyperOf>(type: K, options: unknown, who: string): HyperOf[K] {
  const schema: z.ZodType<HyperOf[K]> = HYPER_SCHEMAS[type];
  const raw = options === undefined ? {} : options;
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const p = problemOf(schema, r.error, raw);
  switch (p.kind) {
    case 'unknownKey':
      throw new TypeError(`${who}: unknown option '${p.key}' (expected one of: ${p.known.join(', ')})`);
    case 'sentence':
      throw new RangeError(`${who}: ${p.message}`);
    default: {
      if (p.path.length === 0) throw new TypeError(`${who}: options must be an object such as {lr: 0.01}, got ${brief(raw, "'")}`);
      const expected = expectedOf(p);
      // hyper-parameters are flat: name the option, and show its whole value (both betas)
      const key = String(p.path[0]);
      const got = valueAt(raw, [key]);
      if (got === undefined) throw new TypeError(`${who}: option '${key}' is required (${expected})`);
      const E = p.kind === 'value' && p.outOfRange ? RangeError : TypeError;
      throw new E(`${who}: option '${key}' must be ${expected}, got ${brief(got, "'")}`);
    }
  }
}

/** A learning rate on its own (what a schedule writes into an optimizer). */
export function checkLearningRate(who: string, v: unknown): number {
  const r = LEARNING_RATE.safeParse(v);
  if (!r.success) throw new RangeError(`${who}: lr must be a finite number >= 0, got ${brief(v, "'")}`);
  return r.data;
}
const LEARNING_RATE = lr();

// ---- learning-rate schedule specs ---------------------------------------------------------------

/** The values of schedules and of the scheduler, each declared once (spec fields and constructor arguments). */
const SCHEDULE_VALUES = {
  stepSize: posInt('an integer >= 1').describe('steps between decays'),
  gamma: positive().describe('decay factor'),
  tMax: posInt('an integer >= 1').describe('steps from the base rate down to etaMin'),
  etaMin: atLeast(0).describe('the lowest rate'),
  warmupSteps: posInt('an integer >= 1').describe('steps of linear warm-up'),
  step: z.int({ error: 'an integer >= 0' }).min(0, { error: 'an integer >= 0' }).describe('scheduler steps taken'),
  baseLr: atLeast(0).describe('the base learning rate'),
};
export type ScheduleValue = 'stepSize' | 'gamma' | 'tMax' | 'etaMin' | 'warmupSteps' | 'step' | 'baseLr';
const scheduleValuesMatch: SameKeys<Record<ScheduleValue, unknown>, typeof SCHEDULE_VALUES> = true;

const stepLRSpec = z.strictObject({ type: z.literal('StepLR'), stepSize: SCHEDULE_VALUES.stepSize, gamma: SCHEDULE_VALUES.gamma.default(0.1) });
const exponentialLRSpec = z.strictObject({ type: z.literal('ExponentialLR'), gamma: SCHEDULE_VALUES.gamma });
const cosineAnnealingLRSpec = z.strictObject({ type: z.literal('CosineAnnealingLR'), tMax: SCHEDULE_VALUES.tMax, etaMin: SCHEDULE_VALUES.etaMin.default(0) });
// The schedule that follows a warm-up is itself a spec: a recursive schema (the getter defers the
// reference until the union below exists).
const linearWarmupSpec = z.strictObject({
  type: z.literal('LinearWarmup'),
  warmupSteps: SCHEDULE_VALUES.warmupSteps,
  get then(): z.ZodDefault<z.ZodNullable<typeof scheduleSpecSchema>> {
    return scheduleSpecSchema.nullable().default(null).describe('the schedule after the warm-up (default: the constant base rate)');
  },
});

const SCHEDULE_TYPE = 'schedule type';
const scheduleSpecSchema: z.ZodDiscriminatedUnion<[typeof stepLRSpec, typeof exponentialLRSpec, typeof cosineAnnealingLRSpec, typeof linearWarmupSpec]> =
  z.discriminatedUnion('type', [stepLRSpec, exponentialLRSpec, cosineAnnealingLRSpec, linearWarmupSpec], { error: SCHEDULE_TYPE });

/** JSON form of a schedule (what `toSpec()` returns). */
export type ScheduleSpec =
  | { type: 'StepLR'; stepSize: number; gamma: number }
  | { type: 'ExponentialLR'; gamma: number }
  | { type: 'CosineAnnealingLR'; tMax: number; etaMin: number }
  | { type: 'LinearWarmup'; warmupSteps: number; then: ScheduleSpec | null };

/**
 * Parse a schedule spec (defaults filled in); a bad one throws with the message of a schedule:
 * the structure (not an object, an unknown type, an unknown key) as `scheduleFromSpec: …`
 * TypeErrors, a bad value as `StepLR: 'stepSize' must be …` RangeErrors naming the (nested)
 * schedule it is in.
 */
export function parseScheduleSpec(spec: unknown): ScheduleSpec {
  const r = scheduleSpecSchema.safeParse(spec);
  if (r.success) return r.data;
  throw scheduleError(problemOf(scheduleSpecSchema, r.error, spec), spec);
}

function scheduleError(p: Problem, spec: unknown): Error {
  const who = 'scheduleFromSpec';
  switch (p.kind) {
    case 'unknownKey':
      return new TypeError(`${who}: unknown key '${p.key}' for ${String(valueAt(spec, [...p.path, 'type']))} (expected: ${p.known.join(', ')})`);
    case 'unknownValue':
      return new TypeError(`${who}: unknown ${p.noun} ${brief(p.got, "'")} (expected one of: ${p.known.join(', ')})`);
    case 'sentence':
      return new RangeError(`${who}: ${p.message}`);
    default:
      if (p.expected === SCHEDULE_TYPE) return new TypeError(`${who}: expected an object such as {type: 'StepLR', stepSize: 10, gamma: 0.5}, got ${brief(p.got, "'")}`);
      return new RangeError(`${String(valueAt(spec, [...p.path.slice(0, -1), 'type']))}: '${String(p.path[p.path.length - 1])}' must be ${p.expected}, got ${brief(p.got, "'")}`);
  }
}

/** One value of a schedule or of the scheduler (a constructor argument, a saved step), or a RangeError. */
export function checkScheduleValue(who: string, key: ScheduleValue, v: unknown): number {
  const schema = SCHEDULE_VALUES[key];
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  throw new RangeError(`${who}: '${key}' must be ${expectedOf(problemOf(schema, r.error, v))}, got ${brief(v, "'")}`);
}

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

/**
 * Validate the Trainer's options and fill in the defaults, or throw a TrainerOptionsError.
 * `buildSchedule` turns a schedule spec (valid: the schema has checked it) into a schedule.
 */
export function resolveTrainerOptions(options: unknown, buildSchedule: (spec: ScheduleSpec) => Schedule): ResolvedTrainerOptions {
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
    schedule: schedule === null || isSchedule(schedule) ? schedule : buildSchedule(schedule),
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
