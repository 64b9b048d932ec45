/**
 * Learning-rate schedules.
 *
 * A `Schedule` is a pure function of the step: `lrAt(step, baseLr)` is the learning rate to use
 * after `step` scheduler steps (step 0 is the rate before any update), in PyTorch's closed forms.
 * `LRScheduler` holds the step count and writes the rate into an optimizer's `lr`:
 *
 *   const sched = new LRScheduler(opt, new CosineAnnealingLR(1000));  // sets opt.lr = lrAt(0)
 *   for (...) { ...; opt.step(); sched.step(); }                       // as in PyTorch
 *
 * Schedules and schedulers are serialisable: `toSpec()` / `scheduleFromSpec()`, and
 * `stateDict()` / `loadStateDict()` on the scheduler.
 */

import { brief, isRecord } from '../util/options.ts';
import { checkScheduleValue, parseScheduleSpec, type ScheduleSpec } from './schema.ts';

// The JSON specs are declared once, as schemas in schema.ts: their types, checks and defaults
// come from there, and the constructors check their arguments with the same field schemas.
export type { ScheduleSpec };

export interface Schedule {
  /** The learning rate after `step` (a non-negative integer) scheduler steps, from base rate `baseLr`. */
  lrAt(step: number, baseLr: number): number;
  toSpec(): ScheduleSpec;
  toString(): string;
}

/**
 * A schedule's spec as its type and values, `StepLR(stepSize=10, gamma=0.5)`: the toString of the
 * schedules whose spec is flat, so their values are listed once, in toSpec.
 */
function specText({ type, ...values }: ScheduleSpec): string {
  return `${type}(${Object.entries(values).map(([k, v]) => `${k}=${String(v)}`).join(', ')})`;
}

function checkStep(who: string, step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`${who}: step must be an integer >= 0, got ${brief(step, "'")}`);
}

/** lr = baseLr · γ^⌊step / stepSize⌋ (torch.optim.lr_scheduler.StepLR). */
export class StepLR implements Schedule {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(stepSize: number, gamma = 0.1) {
    this.stepSize = checkScheduleValue('StepLR', 'stepSize', stepSize);
    this.gamma = checkScheduleValue('StepLR', 'gamma', gamma);
  }

  lrAt(step: number, baseLr: number): number {
    checkStep('StepLR', step);
    return baseLr * Math.pow(this.gamma, Math.floor(step / this.stepSize));
  }

  toSpec(): ScheduleSpec {
    return { type: 'StepLR', stepSize: this.stepSize, gamma: this.gamma };
  }

  toString(): string {
    return specText(this.toSpec());
  }
}

/** lr = baseLr · γ^step (torch.optim.lr_scheduler.ExponentialLR). */
export class ExponentialLR implements Schedule {
  readonly gamma: number;

  constructor(gamma: number) {
    this.gamma = checkScheduleValue('ExponentialLR', 'gamma', gamma);
  }

  lrAt(step: number, baseLr: number): number {
    checkStep('ExponentialLR', step);
    return baseLr * Math.pow(this.gamma, step);
  }

  toSpec(): ScheduleSpec {
    return { type: 'ExponentialLR', gamma: this.gamma };
  }

  toString(): string {
    return specText(this.toSpec());
  }
}

/**
 * lr = etaMin + (baseLr − etaMin) · (1 + cos(π · step / tMax)) / 2, PyTorch's documented closed
 * form of CosineAnnealingLR. It reaches etaMin at step tMax and, like PyTorch's, rises again
 * after (no restarts).
 */
export class CosineAnnealingLR implements Schedule {
  readonly tMax: number;
  readonly etaMin: number;

  constructor(tMax: number, etaMin = 0) {
    this.tMax = checkScheduleValue('CosineAnnealingLR', 'tMax', tMax);
    this.etaMin = checkScheduleValue('CosineAnnealingLR', 'etaMin', etaMin);
  }

  lrAt(step: number, baseLr: number): number {
    checkStep('CosineAnnealingLR', step);
    return this.etaMin + ((baseLr - this.etaMin) * (1 + Math.cos((Math.PI * step) / this.tMax))) / 2;
  }

  toSpec(): ScheduleSpec {
    return { type: 'CosineAnnealingLR', tMax: this.tMax, etaMin: this.etaMin };
  }

  toString(): string {
    return specText(this.toSpec());
  }
}

/**
 * Linear warm-up over `warmupSteps` steps, then `then` (or the constant base rate):
 *   step < W:  lr = baseLr · (step + 1) / W      (the first update uses baseLr / W; step W − 1 uses baseLr)
 *   step ≥ W:  lr = then.lrAt(step − W, baseLr)  (the following schedule starts from its own step 0)
 * Equivalent to PyTorch's SequentialLR([LinearLR(start_factor=1/W, total_iters=W−1), then], milestones=[W]).
 */
export class LinearWarmup implements Schedule {
  readonly warmupSteps: number;
  readonly then: Schedule | null;

  constructor(warmupSteps: number, then?: Schedule | null) {
    this.warmupSteps = checkScheduleValue('LinearWarmup', 'warmupSteps', warmupSteps);
    if (then !== undefined && then !== null && (typeof then !== 'object' || typeof then.lrAt !== 'function' || typeof then.toSpec !== 'function')) {
      throw new TypeError(`LinearWarmup: 'then' must be a schedule (e.g. new CosineAnnealingLR(1000)) or omitted, got ${brief(then, "'")}`);
    }
    this.then = then ?? null;
  }

  lrAt(step: number, baseLr: number): number {
    checkStep('LinearWarmup', step);
    const W = this.warmupSteps;
    if (step < W) return (baseLr * (step + 1)) / W;
    return this.then ? this.then.lrAt(step - W, baseLr) : baseLr;
  }

  toSpec(): ScheduleSpec {
    return { type: 'LinearWarmup', warmupSteps: this.warmupSteps, then: this.then ? this.then.toSpec() : null };
  }

  toString(): string {
    return `LinearWarmup(warmupSteps=${this.warmupSteps}${this.then ? `, then=${this.then.toString()}` : ''})`;
  }
}

/** Rebuild a schedule from `toSpec()` output (e.g. parsed JSON), validating it. */
export function scheduleFromSpec(spec: unknown): Schedule {
  return buildSchedule(parseScheduleSpec(spec));
}

/** A schedule from a spec its schema has passed (defaults filled in). */
function buildSchedule(s: ScheduleSpec): Schedule {
  switch (s.type) {
    case 'StepLR': return new StepLR(s.stepSize, s.gamma);
    case 'ExponentialLR': return new ExponentialLR(s.gamma);
    case 'CosineAnnealingLR': return new CosineAnnealingLR(s.tMax, s.etaMin);
    case 'LinearWarmup': return new LinearWarmup(s.warmupSteps, s.then === null ? null : buildSchedule(s.then));
  }
}

/** Anything with a writable learning rate (an Optimizer). */
export interface LrTarget {
  lr: number;
}

export interface SchedulerState {
  format: 'recur.lr_scheduler';
  version: 1;
  baseLr: number;
  /** Scheduler steps taken (PyTorch's last_epoch). */
  step: number;
  schedule: ScheduleSpec;
}

/**
 * Drives an optimizer's `lr` from a schedule. The base rate is the optimizer's `lr` at
 * construction unless `baseLr` is given; construction sets `optimizer.lr = lrAt(0)`, and each
 * `step()` (called after `optimizer.step()`) advances one step and sets the new rate.
 */
export class LRScheduler {
  readonly optimizer: LrTarget;
  readonly schedule: Schedule;
  private base: number;
  private steps = 0;

  constructor(optimizer: LrTarget, schedule: Schedule, options: { baseLr?: number } = {}) {
    if (optimizer === null || typeof optimizer !== 'object' || typeof optimizer.lr !== 'number') {
      throw new TypeError(`LRScheduler: expected an optimizer (an object with a numeric 'lr'), got ${brief(optimizer, "'")}`);
    }
    if (schedule === null || typeof schedule !== 'object' || typeof schedule.lrAt !== 'function') {
      throw new TypeError(`LRScheduler: expected a schedule (e.g. new StepLR(10, 0.5)), got ${brief(schedule, "'")}`);
    }
    for (const k of Object.keys(options)) {
      if (k !== 'baseLr') throw new TypeError(`LRScheduler: unknown option '${k}' (expected: baseLr)`);
    }
    this.optimizer = optimizer;
    this.schedule = schedule;
    this.base = checkScheduleValue('LRScheduler', 'baseLr', options.baseLr ?? optimizer.lr);
    this.apply();
  }

  get baseLr(): number {
    return this.base;
  }

  /** Scheduler steps taken so far. */
  get lastStep(): number {
    return this.steps;
  }

  /** The current rate (the one last written to the optimizer). */
  get lr(): number {
    return this.schedule.lrAt(this.steps, this.base);
  }

  /** Advance one step, set the optimizer's rate, and return it. */
  step(): number {
    this.steps++;
    return this.apply();
  }

  private apply(): number {
    const lr = this.lr;
    this.optimizer.lr = lr;
    return lr;
  }

  stateDict(): SchedulerState {
    return { format: 'recur.lr_scheduler', version: 1, baseLr: this.base, step: this.steps, schedule: this.schedule.toSpec() };
  }

  /**
   * Restore the step count and base rate and set the optimizer's rate accordingly. The saved
   * schedule must equal this scheduler's (rebuild with `scheduleFromSpec(state.schedule)` to
   * resume a schedule you no longer have).
   */
  loadStateDict(state: unknown): void {
    const who = 'LRScheduler.loadStateDict';
    const s = state;
    if (!isRecord(s)) throw new TypeError(`${who}: expected an object from stateDict(), got ${brief(s, "'")}`);
    if (s.format !== 'recur.lr_scheduler') throw new TypeError(`${who}: not a scheduler state (format is ${brief(s.format, "'")}, expected 'recur.lr_scheduler')`);
    if (s.version !== 1) throw new TypeError(`${who}: unsupported state version ${brief(s.version, "'")} (expected 1)`);
    const step = checkScheduleValue(who, 'step', s.step);
    const baseLr = checkScheduleValue(who, 'baseLr', s.baseLr);
    let saved: Schedule;
    try {
      saved = scheduleFromSpec(s.schedule);
    } catch (e) {
      throw new TypeError(`${who}: saved 'schedule': ${(e as Error).message}`);
    }
    if (JSON.stringify(saved.toSpec()) !== JSON.stringify(this.schedule.toSpec())) {
      throw new Error(`${who}: the state is for ${saved.toString()} but this scheduler runs ${this.schedule.toString()}`);
    }
    this.base = baseLr;
    this.steps = step;
    this.apply();
  }
}
