/**
 * The option sets beneath the Trainer, each declared once as a schema: the hyper-parameters of
 * every optimizer and the JSON specs of the learning-rate schedules. The machinery that words any
 * option set's failure is in util/schema.ts (shared with the task options of models/). Each schema holds the validation,
 * the defaults and the help text (`.describe`) of its option set.
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
 * no public export mentions Zod (the schemas and builders exported here serve options.ts alone; the
 * entry points hand on only the written types and the parse functions), and the written types are
 * checked against the schemas at compile time: the same keys (`SameKeys`), every value the
 * written type allows accepted by the schema's type, and each schema's output assignable to the
 * type the code reads (`HyperOf`, `ScheduleSpec`, `ResolvedTrainerOptions`). A drift between a
 * type and its schema fails to compile.
 *
 * Messages. Zod's own messages are generic ("Too small: expected number to be >=1"); recur's name
 * the option, the form expected and the value got. So every leaf schema carries the expected form
 * as its error message (`posInt()` says "a positive integer" whatever check failed), and
 * `problemOf` (util/schema.ts) turns Zod's first issue into a `Problem` (the path, what was expected, what was
 * got, or the unknown key and the known ones) that each option set words in its own style: the
 * Trainer's (`Trainer: option 'checkpoint.every' must be a positive integer, got 0`), the
 * optimizers' (`Adam: option 'eps' must be a finite number >= 0, got -1`) and the schedules'
 * (`StepLR: 'stepSize' must be an integer >= 1, got 0`), kept as they were before the schemas.
 *
 * A leaf: this file imports nothing of train/ (optim.ts and schedule.ts take their schemas from
 * here; options.ts builds the Trainer's schema on these and sits above the optimizer classes), so
 * the imports of the training layer point one way.
 */
import { z } from 'zod';
import { brief } from '../util/options.ts';
import { expectedOf, problemOf, sentence, valueAt, type Problem, type SameKeys } from '../util/schema.ts';

// ---- leaf schemas: every failure says the one form expected ---------------------------------------

/** A safe integer >= 1. */
export const posInt = (expected = 'a positive integer') => z.int({ error: expected }).min(1, { error: expected });
/** A finite number > 0 (Zod 4 numbers are finite: NaN and ±Infinity fail). */
export const positive = (expected = 'a finite number > 0') => z.number({ error: expected }).positive({ error: expected });
/** A finite number >= min. */
export const atLeast = (min: number, expected = `a finite number >= ${min}`) => z.number({ error: expected }).min(min, { error: expected });
/** A number in [0, 1]. */
const unit = (expected = 'a number in [0, 1]') => z.number({ error: expected }).min(0, { error: expected }).max(1, { error: expected });
export const bool = () => z.boolean({ error: 'true or false' });
/** An object that passes `test`; `expected` names it. */
export const instance = <T>(test: (v: unknown) => boolean, expected: string) => z.custom<T>(test, { error: expected });

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

export const SCHEDULE_TYPE = 'schedule type';
export const scheduleSpecSchema: z.ZodDiscriminatedUnion<[typeof stepLRSpec, typeof exponentialLRSpec, typeof cosineAnnealingLRSpec, typeof linearWarmupSpec]> =
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

export function scheduleError(p: Problem, spec: unknown): Error {
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
