/**
 * Trainer: the training loop around a `Task` (task.ts), with everything users expect from one —
 * optimizer and learning-rate schedule, gradient clipping, NaN guards, gradient-norm monitoring,
 * periodic evaluation with early stopping, a JSON-lines metrics log, atomic checkpoints and exact
 * resumption, callbacks, a progress display and graceful Ctrl-C.
 *
 *   const trainer = new Trainer(task, { optimizer: 'adam', lr: 1e-3, clipNorm: 5, epochs: 10,
 *                                        runDir: 'runs/tagger', earlyStopping: { patience: 3 } });
 *   const result = await trainer.fit(trainData, valData);
 *   // later, after a crash or Ctrl-C, with a freshly built task:
 *   await new Trainer(task2, sameOptions).fit(trainData, valData, { resume: 'runs/tagger' });
 *
 * One step, in this order:
 *   zeroGrad → task.step(batch) → checkFinite(loss) → backward → gradient norms (global and per
 *   layer; non-finite → NonFiniteError naming the parameter; warnings on persistent clipping or a
 *   spike) → clipGradValue → clipGradNorm → optimizer.step → scheduler.step
 * then, between steps: the metrics log (every `logEvery` steps), onStepEnd, evaluation (every
 * `evalEvery` steps, or at each epoch end by default) with onEvalEnd and early stopping, epoch end
 * (onEpochEnd), and a checkpoint (every `checkpoint.every` steps). Stop conditions (epochs,
 * maxSteps, timeLimitSeconds, early stopping, a callback, Ctrl-C) are checked before each step.
 * When training stops, the final checkpoint is written first and then the model is evaluated a
 * last time (reported in the result; it does not change the saved state), so a run stopped at step
 * k and resumed reproduces the uninterrupted run's losses bit for bit on the same backend.
 *
 * Exactness. Batches are a pure function of (epoch, index) (task.ts), and a checkpoint holds every
 * other input of the next step: weights, optimizer buffers and step counts, the schedule position,
 * the state of the global RNG and of every `Rng` found on the task or its modules (dropout,
 * sampling), the task's carried state (TBPTT), and the position (epoch, batch).
 *
 * `fit` is async: it yields to the event loop every ~50 ms so progress displays redraw, timers run
 * and Ctrl-C is seen; the work itself is synchronous. Checkpoints, the best model and the metrics
 * log go through the `store` option (a RunStore), so the loop itself touches no file system and
 * the Trainer runs where there is none.
 */
import { checkStepResult, taskRngs, type BatchSource, type StepResult, type Task } from './task.ts';
import type { Optimizer } from './optim.ts';
import { LRScheduler } from './schedule.ts';
import {
  adoptRunDir, checkFitOptions, createOptimizer, logDirOf, requireStore, resolveTrainerOptions, restoredOptions, TrainerOptionsError, trainerOptionsJSON,
  type FitOptions, type ResolvedTrainerOptions, type TrainerOptions,
} from './options.ts';
import { clipGradNormReading, clipGradNormTo, clipGradValue, gradNormsReading } from './clip.ts';
import { checkFinite, checkFiniteReading, checkValues, checkValuesReading, NonFiniteError } from './guard.ts';
import { answerAsync, answerSync, both, hostWeights, runAsync, runSync, values, type HostRead, type Reading } from './host-reads.ts';
import { GradMonitor, layerNorms } from './gradlog.ts';
import type { Callback, EvalInfo, HookResult, StepInfo } from './callbacks.ts';
import { BEST_FILE, CheckpointError, encodeModelFile, loadCheckpoint, saveCheckpoint, type RunStore, type TrainingState } from './run-store.ts';
import { MetricsLog, TrainWindow, type MetricsEntry } from './metrics-log.ts';
import { Module } from '../nn/module.ts';
import { brief, isRecord } from '../util/options.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Rng, globalRng, type RngState } from '../tensor/rng.ts';
import { backward, noGrad } from '../autograd/tape.ts';

// The options are declared once, as a schema, in options.ts (types, checks, defaults and help),
// which also resolves them; the trainer reads only the resolved options.
export {
  createOptimizer, TrainerOptionsError,
  type CheckpointOptions, type EarlyStoppingOptions, type FitOptions, type OptimizerName, type OptimizerSpec, type TrainerOptions,
} from './options.ts';

export type StopReason = 'epochs' | 'maxSteps' | 'time' | 'earlyStopping' | 'callback' | 'interrupted' | (string & {});

export interface FitResult {
  stopReason: StopReason;
  /** Optimizer steps done in total, and in this fit call. */
  step: number;
  stepsThisFit: number;
  /** Position of the next batch. */
  epoch: number;
  batch: number;
  /** Mean loss over the last (up to 100) steps; null when no step ran. */
  trainLoss: number | null;
  lastLoss: number | null;
  /** The evaluation at the end of the fit (null without validation data). */
  finalMetrics: Record<string, number> | null;
  bestMetric: number | null;
  bestStep: number | null;
  /** Seconds in this fit call, and in the whole run. */
  seconds: number;
  totalSeconds: number;
  tokens: number;
  runDir: string | null;
}

/** Steps at the start of a fit whose median loss is compared with the last steps' (warnIfDiverged). */
const DIVERGE_HEAD = 10;
/** The last steps' median loss over this many times the first steps' is divergence. */
const DIVERGE_FACTOR = 2;

function now(): number {
  return performance.now() / 1000;
}

const yieldToEventLoop = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));


// ---- the trainer --------------------------------------------------------------------------------------

export class Trainer<B> {
  readonly task: Task<B>;
  readonly optimizer: Optimizer;
  readonly scheduler: LRScheduler | null;
  private readonly opts: ResolvedTrainerOptions;
  private readonly params: [string, Tensor][];
  private readonly rngs: Map<string, Rng>;
  private readonly monitor = new GradMonitor();

  // The resumable state.
  private stepCount = 0;
  private epochIndex = 0;
  private batchIndex = 0;
  private elapsedBefore = 0;
  private tokenCount = 0;
  private bestMetric: number | null = null;
  private bestStep: number | null = null;
  private badEvals = 0;
  private lastEval: Record<string, number> | null = null;

  private started = false;
  private resumedFrom: string | null = null;
  private stopRequest: string | null = null;
  /** Work queued by afterStepOnHost, run after the current step's hooks. */
  private hostWork: (() => void)[] = [];
  private sessionStart = 0;
  private log: MetricsLog | null = null;

  constructor(task: Task<B>, options: TrainerOptions = {}) {
    if (task === null || typeof task !== 'object' || typeof task.step !== 'function' || typeof task.evaluate !== 'function' || !(task.model instanceof Module)) {
      throw new TypeError('Trainer: expected a Task (an object with model, step(batch), evaluate(data), higherIsBetter, describe())');
    }
    if (typeof task.higherIsBetter !== 'boolean') throw new TypeError(`Trainer: task '${task.name}' must say whether its primary metric is better higher (higherIsBetter: boolean)`);
    const opts = resolveTrainerOptions(options);
    if ((typeof task.getCarry === 'function') !== (typeof task.setCarry === 'function')) {
      throw new TypeError(`Trainer: task '${task.name}' must define both getCarry and setCarry, or neither`);
    }
    this.task = task;
    this.opts = opts;
    this.params = task.model.namedParameters();
    if (this.params.length === 0) throw new TypeError(`Trainer: the model of task '${task.name}' has no parameters`);
    this.optimizer = createOptimizer(opts.optimizer, this.params, opts.lr);
    this.scheduler = opts.schedule ? new LRScheduler(this.optimizer, opts.schedule) : null;
    this.rngs = taskRngs(task as Task<unknown>, opts.rngs);
  }

  /**
   * A trainer for `task` with the options saved in the checkpoint in `dir` (merged with
   * `overrides`), with the checkpoint loaded: `await (await Trainer.restore(task, dir)).fit(train, val)`
   * continues the run. A budget in `overrides` (epochs, maxSteps, timeLimitSeconds) replaces the
   * saved budget as a whole. Callbacks, progress and log are not saved: pass them again.
   */
  static async restore<B>(task: Task<B>, dir: string, overrides: TrainerOptions = {}): Promise<Trainer<B>> {
    const store = overrides.store;
    if (!store) throw new TrainerOptionsError("Trainer.restore: pass the run's store in the overrides (store: fileStore from 'recurjs/node', or the memoryStore the run used)");
    const trainer = new Trainer(task, restoredOptions(loadCheckpoint(store, dir).state.options, dir, overrides));
    await trainer.resume(dir);
    return trainer;
  }

  /** Optimizer steps done. */
  get step(): number {
    return this.stepCount;
  }

  /** The epoch of the next batch (0-based). */
  get epoch(): number {
    return this.epochIndex;
  }

  /** The resolved run directory (metrics log, checkpoints), or null. */
  get runDir(): string | null {
    return logDirOf(this.opts);
  }

  /** Names of the RNGs saved in checkpoints. */
  get rngNames(): string[] {
    return [...this.rngs.keys()];
  }

  /** Ask the loop to stop after the current step. */
  stop(reason: StopReason = 'callback'): void {
    if (this.stopRequest === null) this.stopRequest = reason;
  }

  /** The options as JSON (what checkpoints store; valid input for a new Trainer). */
  optionsJSON(): Record<string, unknown> {
    return trainerOptionsJSON(this.opts, this.optimizer, this.scheduler);
  }

  /** Metrics of the task on `data`, in eval mode without gradients; the task's carried state is kept. */
  evaluate(data: BatchSource<B>): Record<string, number> {
    const model = this.task.model;
    const wasTraining = model.training;
    const carry = this.task.getCarry ? this.task.getCarry() : undefined;
    model.eval();
    try {
      const m = noGrad(() => this.task.evaluate(data));
      if (!isRecord(m) || Object.keys(m).length === 0) throw new TypeError(`Trainer: task '${this.task.name}'.evaluate must return an object of named numbers (the first is the primary metric), got ${brief(m, "'")}`);
      for (const [k, v] of Object.entries(m)) if (typeof v !== 'number') throw new TypeError(`Trainer: task '${this.task.name}'.evaluate returned a non-number for '${k}': ${brief(v, "'")}`);
      return m as Record<string, number>;
    } finally {
      model.train(wasTraining);
      if (this.task.setCarry) this.task.setCarry(carry);
    }
  }

  /** The resumable training state (what a checkpoint stores, without the weights). */
  trainingState(): TrainingState {
    return runSync(this.trainingStateReading());
  }

  private *trainingStateReading(): Reading<TrainingState> {
    const optimizer = yield* this.optimizer.stateDictReading();
    const rngs: Record<string, RngState> = {};
    for (const [name, r] of this.rngs) rngs[name] = r.getState();
    const s: TrainingState = {
      format: 'recur.training_state',
      version: 1,
      task: this.task.name,
      step: this.stepCount,
      epoch: this.epochIndex,
      batch: this.batchIndex,
      elapsed: this.totalSeconds(),
      tokens: this.tokenCount,
      bestMetric: this.bestMetric,
      bestStep: this.bestStep,
      badEvals: this.badEvals,
      lastEval: this.lastEval,
      optimizer,
      scheduler: this.scheduler ? this.scheduler.stateDict() : null,
      rngs,
      gradMonitor: this.monitor.getState(),
      options: this.optionsJSON(),
      meta: this.opts.meta,
    };
    if (this.task.getCarry) s.carry = this.task.getCarry() ?? null;
    return s;
  }

  /**
   * Run fn once the current step's hooks are done, with the weights readable on the host: a copy
   * of them on a CPU backend when they live on a GPU (see onHost). For a callback that evaluates or
   * samples mid-run (its hook itself runs inside the step, where a GPU's weights cannot be read).
   */
  afterStepOnHost(fn: () => void): void {
    this.hostWork.push(fn);
  }

  /** Write a checkpoint now (default: into the checkpoint directory). */
  async saveCheckpoint(dir?: string): Promise<string> {
    const target = dir ?? this.opts.checkpointDir;
    if (!target) throw new Error('Trainer.saveCheckpoint: no directory (set runDir or checkpoint.dir, or pass one)');
    await runAsync(this.writeCheckpoint(requireStore(this.opts, 'Trainer.saveCheckpoint'), target));
    return target;
  }

  /** The state file and the model file, written from a host copy of the weights where they live on a GPU. */
  private *writeCheckpoint(store: RunStore, dir: string): Reading<void> {
    const state = yield* this.trainingStateReading();
    yield* this.onHost(() => {
      this.checkSavable();
      saveCheckpoint(store, dir, this.task.model, this.task.describe(), state);
    });
  }

  /** fn with the weights readable on the host (see hostWeights in host-reads.ts). */
  private *onHost<R>(fn: () => R): Reading<R> {
    return yield* hostWeights(this.task.model, fn);
  }

  /**
   * Load the checkpoint in `dir` into this trainer (weights, optimizer, schedule, RNGs, carried
   * state, counters); the next `fit` continues from it. The task must be built like the original
   * (same architecture and names); its initial weights do not matter. As in PyTorch, the saved
   * optimizer state brings its hyper-parameters (the learning rate included) with it; the
   * schedule must be the same as the checkpoint's. Entries of the directory's metrics log past
   * the checkpoint's step are dropped (the resumed run logs them again).
   */
  async resume(dir: string): Promise<void> {
    const store = requireStore(this.opts, 'Trainer.resume');
    const { state, weights } = loadCheckpoint(store, dir);
    const where = `resume from '${dir}'`;
    if (state.task !== this.task.name) throw new CheckpointError(`${where}: the checkpoint is of task '${state.task}', not '${this.task.name}'`);
    const rngStates = state.rngs ?? {};
    for (const name of Object.keys(rngStates)) {
      if (!this.rngs.has(name)) throw new CheckpointError(`${where}: the checkpoint has the state of RNG '${name}' but this task has no RNG by that name (it has: ${[...this.rngs.keys()].join(', ')})`);
    }
    if ((state.scheduler === null) !== (this.scheduler === null)) {
      throw new CheckpointError(`${where}: the checkpoint was ${state.scheduler ? 'made with' : 'made without'} a learning-rate schedule, this trainer ${this.scheduler ? 'has one' : 'has none'}`);
    }
    if (state.carry !== undefined && !this.task.setCarry) throw new CheckpointError(`${where}: the checkpoint holds a carried state but task '${this.task.name}' has no setCarry`);
    if (state.optimizer?.type !== this.optimizer.type) {
      throw new CheckpointError(`${where}: the checkpoint's optimizer is ${String(state.optimizer?.type)}, this trainer's is ${this.optimizer.type}`);
    }
    // The checks that can fail on a mismatch have run (loadStateDict validates before it writes).
    this.task.model.loadStateDict(weights);
    this.optimizer.loadStateDict(state.optimizer);
    if (this.scheduler && state.scheduler) this.scheduler.loadStateDict(state.scheduler);
    for (const [name, r] of this.rngs) {
      const s = rngStates[name];
      if (s) r.setState(s);
      else this.opts.log(`recur: warning: the checkpoint has no state for RNG '${name}'; it continues from its current state`);
    }
    if (this.task.setCarry && state.carry !== undefined) this.task.setCarry(state.carry);
    if (state.gradMonitor) this.monitor.setState(state.gradMonitor);
    this.stepCount = state.step;
    this.epochIndex = state.epoch;
    this.batchIndex = state.batch;
    this.elapsedBefore = typeof state.elapsed === 'number' ? state.elapsed : 0;
    this.tokenCount = typeof state.tokens === 'number' ? state.tokens : 0;
    this.bestMetric = state.bestMetric ?? null;
    this.bestStep = state.bestStep ?? null;
    this.badEvals = state.badEvals;
    this.lastEval = state.lastEval ?? null;
    this.started = true;
    this.resumedFrom = dir;
    adoptRunDir(this.opts, dir);
    const logDir = logDirOf(this.opts);
    if (logDir) new MetricsLog(store, logDir).truncateAfter(this.stepCount);
  }

  private totalSeconds(): number {
    return this.elapsedBefore + (this.sessionStart ? now() - this.sessionStart : 0);
  }

  private writeLog(entry: MetricsEntry): void {
    this.log?.append(entry);
  }

  private notice(kind: string, message: string): void {
    const line = kind === 'interrupt' ? `recur: ${message}` : `recur: warning: ${message}`;
    if (this.opts.progress?.print) this.opts.progress.print(line);
    else this.opts.log(line);
    this.writeLog({ type: 'warning', step: this.stepCount, epoch: this.epochIndex, time: this.totalSeconds(), kind, message });
  }

  /**
   * A model file is never written with non-finite weights (whatever made them so: the last
   * update, a callback, a resumed state): the write fails naming the first bad parameter.
   */
  private checkSavable(): void {
    checkValues(this.params, this.stepCount);
  }

  /**
   * A run whose training loss ends well above where it started has diverged (a learning rate far
   * too high gives finite but useless weights, not NaN): say so on the console and in the log, as
   * the run would otherwise end looking like a success.
   */
  private warnIfDiverged(first: readonly number[], recent: readonly number[]): void {
    if (first.length < DIVERGE_HEAD || recent.length < DIVERGE_HEAD) return;
    // medians, so that one bad batch (a spike the explosion warning already reports) is not divergence
    const median = (xs: readonly number[]): number => {
      const s = [...xs].sort((x, y) => x - y), m = s.length >> 1;
      return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
    };
    // the start is the lower of the first step's loss (the model before any update of this fit)
    // and the first steps' median: a rate high enough to break the model in one update would
    // otherwise make the start look as bad as the end
    const a = Math.min(first[0], median(first)), b = median(recent);
    if (b > DIVERGE_FACTOR * a && b - a > 1e-3) {
      this.notice('divergence', `training diverged: the median training loss rose from ${a.toPrecision(4)} (at the start) to ${b.toPrecision(4)} (last ${recent.length} steps); the model is likely useless — lower the learning rate (it ended at ${this.optimizer.lr}) or set/lower clipNorm`);
    }
  }

  /** Run one hook of every callback, in the order given; one that returns 'stop' (or true) stops the loop. */
  private runHooks(hook: (cb: Callback<B>) => HookResult | undefined): void {
    for (const cb of this.opts.callbacks) {
      const r = hook(cb);
      if (r === true || r === 'stop') this.stop('callback');
    }
  }

  /** One optimizer step on the next batch. */
  private *trainStep(train: BatchSource<B>): Reading<StepInfo & { layerNorms?: Record<string, number>; metrics?: Record<string, number> }> {
    const stepNo = this.stepCount + 1;
    const epoch = this.epochIndex, batchIdx = this.batchIndex;
    const batch = train.get(epoch, batchIdx);
    const model = this.task.model;
    model.train();
    model.zeroGrad();
    this.optimizer.zeroGrad();
    const r = checkStepResult('Trainer', this.task as Task<unknown>, this.task.step(batch));
    const count = r.count;
    // Every value this step needs on the host is yielded (src/train/host-reads.ts): answered at
    // once by fitSync, awaited by fit — so the same step runs on a backend read asynchronously.
    // Backward is recorded before the loss is read, and the loss and the gradient norms are read
    // together (`both`): on a GPU one wait covers the step's work, instead of a stall between
    // forward and backward and another for the norms. (A non-finite loss makes non-finite
    // gradients, but nothing is updated before the checks below.)
    backward(r.loss);
    const [lossValues, gn] = yield* both(values(r.loss), gradNormsReading(this.params));
    const loss = lossValues[0];
    if (!Number.isFinite(loss)) {
      // weights broken before this step (loaded or resumed so) are the cause to name, not the loss
      yield* checkValuesReading(this.params, stepNo);
      checkFinite(loss, [], stepNo);
    }
    const lr = this.optimizer.lr;
    if (!Number.isFinite(gn.total)) {
      yield* checkFiniteReading(null, this.params, stepNo); // names the parameter
      throw new NonFiniteError(stepNo, 'gradient', '(global norm)', 0, gn.total);
    }
    for (const w of this.monitor.observe(stepNo, gn.total, this.opts.clipNorm)) this.notice(`grad-${w.kind}`, w.message);
    let clipped = false;
    if (this.opts.clipValue !== null) {
      clipGradValue(this.params, this.opts.clipValue);
      // value clipping changed the gradients: their norm must be measured again
      if (this.opts.clipNorm !== null) clipped = (yield* clipGradNormReading(this.params, this.opts.clipNorm)) > this.opts.clipNorm;
    } else if (this.opts.clipNorm !== null) {
      // the norm just measured for the log is the one clipGradNorm would compute
      clipGradNormTo(this.params, this.opts.clipNorm, gn.total);
      clipped = gn.total > this.opts.clipNorm;
    }
    this.optimizer.step();
    // A finite gradient can still give non-finite weights (a huge learning rate, an overflowing
    // update), and after the last step no later loss would show it: scan the weights after every
    // update, so the run stops at the step that broke them, naming the parameter. The scan is one
    // backend pass per parameter returning one index (see guard.ts), cheaper than the update
    // itself, which reads the weights, gradients and optimizer buffers; scanning only when the
    // gradient norm is non-finite would miss exactly the overflowing-update case.
    yield* checkValuesReading(this.params, stepNo);
    this.scheduler?.step();
    this.stepCount = stepNo;
    this.batchIndex++;
    this.tokenCount += count;
    return {
      step: stepNo, epoch, batch: batchIdx, loss, lr, count, gradNorm: gn.total, clipped,
      metrics: r.metrics, time: this.totalSeconds(),
      layerNorms: this.opts.gradNormLogging ? layerNorms(gn.norms) : undefined,
    };
  }

  /** Evaluate, update best/early stopping, log, save best.safetensors, run hooks. */
  private runEval(val: BatchSource<B>): Record<string, number> {
    const metrics = this.evaluate(val);
    const primary = Object.keys(metrics)[0];
    const value = metrics[primary];
    const es = this.opts.earlyStopping;
    const delta = es ? es.minDelta : 0;
    const improved = Number.isFinite(value) && (this.bestMetric === null || (this.task.higherIsBetter ? value > this.bestMetric + delta : value < this.bestMetric - delta));
    if (improved) {
      this.bestMetric = value;
      this.bestStep = this.stepCount;
      this.badEvals = 0;
      if (this.opts.checkpointDir && this.opts.saveBest && this.opts.store) {
        this.checkSavable();
        this.opts.store.write(this.opts.checkpointDir, BEST_FILE, encodeModelFile(this.task.model, this.task.describe(), {
          'recur.task': this.task.name,
          'recur.step': String(this.stepCount),
          [`recur.metric.${primary}`]: String(value),
        }));
      }
    } else {
      this.badEvals++;
    }
    this.lastEval = metrics;
    const time = this.totalSeconds();
    this.writeLog({ type: 'eval', step: this.stepCount, epoch: this.epochIndex, time, metrics, primary, best: this.bestMetric });
    const info: EvalInfo = { step: this.stepCount, epoch: this.epochIndex, metrics, primary, value, best: this.bestMetric, improved, time };
    this.runHooks((cb) => cb.onEvalEnd?.(info, this));
    if (es && this.badEvals >= es.patience) this.stop('earlyStopping');
    return metrics;
  }

  async fit(train: BatchSource<B>, val?: BatchSource<B> | null, fitOpts: FitOptions = {}): Promise<FitResult> {
    const valData = this.checkFitData(train, val, fitOpts);
    if (fitOpts.resume !== undefined) await this.resume(fitOpts.resume);
    const loop = this.loop(train, valData);
    let r = loop.next();
    while (!r.done) {
      if (r.value) r = loop.next(await answerAsync(r.value));
      else {
        await yieldToEventLoop();
        r = loop.next();
      }
    }
    return r.value;
  }

  /**
   * `fit` for callers that cannot await (a synchronous API such as `runDiagnose`): the same loop,
   * run to the end without yielding to the event loop — so no timer, progress redraw or Ctrl-C
   * is seen while it runs. Resuming is `fit`'s (or `Trainer.restore`'s) job.
   */
  fitSync(train: BatchSource<B>, val?: BatchSource<B> | null): FitResult {
    const be = this.task.model.parameters().find((p) => p.backend.readAsync)?.backend;
    if (be) throw new TypeError(`Trainer.fitSync: the model is on the '${be.name}' backend, whose memory is read asynchronously: use await fit()`);
    const loop = this.loop(train, this.checkFitData(train, val));
    let r = loop.next();
    while (!r.done) r = loop.next(r.value ? answerSync(r.value) : undefined);
    return r.value;
  }

  private checkFitData(train: BatchSource<B>, val: BatchSource<B> | null | undefined, fitOpts: FitOptions = {}): BatchSource<B> | null {
    if (!train || typeof train.get !== 'function' || !Number.isSafeInteger(train.numBatches) || train.numBatches < 1) {
      throw new TypeError('Trainer.fit: the training data must be a BatchSource {numBatches >= 1, get(epoch, index)}');
    }
    if (val !== undefined && val !== null && (typeof val.get !== 'function' || !Number.isSafeInteger(val.numBatches))) {
      throw new TypeError('Trainer.fit: the validation data must be a BatchSource {numBatches, get(epoch, index)}');
    }
    checkFitOptions(this.opts, fitOpts, !!val);
    return val ?? null;
  }

  /**
   * The one training loop (fit and fitSync drive it): a generator that yields where the caller may
   * give the event loop a turn (~every 50 ms), so the async and the synchronous fit share every line.
   */
  private *loop(train: BatchSource<B>, valData: BatchSource<B> | null): Generator<HostRead | undefined, FitResult, unknown> {
    const o = this.opts;
    const resumed = this.resumedFrom !== null;
    this.resumedFrom = null;
    const fresh = !this.started;
    if (fresh && o.seed !== null) globalRng.seed(o.seed);
    this.started = true;
    this.stopRequest = null;

    const store = o.store;
    const logDir = logDirOf(o);
    if (store && logDir) {
      this.log = new MetricsLog(store, logDir);
      if (fresh && this.stepCount === 0) this.log.clear();
    }

    this.sessionStart = now();
    const startStep = this.stepCount;
    const startTokens = this.tokenCount;
    const numBatches = train.numBatches;
    const fractionDone = (): number => {
      let f = 0;
      if (Number.isFinite(o.epochs)) f = Math.max(f, (this.epochIndex + this.batchIndex / numBatches) / o.epochs);
      if (o.maxSteps !== null) f = Math.max(f, this.stepCount / o.maxSteps);
      if (o.timeLimitSeconds !== null) f = Math.max(f, (now() - this.sessionStart) / o.timeLimitSeconds);
      return Math.min(1, f);
    };
    const startFraction = fractionDone();
    this.writeLog({ type: 'fit', step: this.stepCount, epoch: this.epochIndex, time: this.totalSeconds(), resumed, options: this.optionsJSON() });
    this.runHooks((cb) => cb.onFitStart?.(this));

    // Ctrl-C: stop after this step; a second one quits at once.
    const proc = (globalThis as { process?: NodeJS.Process }).process;
    let interrupts = 0;
    const onSigint = (): void => {
      interrupts++;
      if (interrupts > 1) proc!.exit(130);
      this.stop('interrupted');
      this.notice('interrupt', 'interrupted: stopping after this step and saving (press Ctrl-C again to quit at once)');
    };
    if (o.handleInterrupt && proc?.on) proc.on('SIGINT', onSigint);

    const recent: number[] = []; // last 100 losses
    let lastLoss: number | null = null;
    const firstLosses: number[] = [];
    const trainWindow = new TrainWindow(now, o.clipNorm !== null);
    let epochLoss = 0, epochSteps = 0;
    let ema: number | null = null;
    let lastEvalStep = -1;
    let lastYield = now();
    let stopReason: StopReason = 'epochs';
    const flushTrainLog = (): void => trainWindow.flush(this.stepCount, this.totalSeconds(), (e) => this.writeLog(e));

    try {
      for (;;) {
        if (this.stopRequest !== null) {
          stopReason = this.stopRequest;
          break;
        }
        if (this.batchIndex >= numBatches) {
          // The data shrank since the checkpoint: start the next epoch.
          this.epochIndex++;
          this.batchIndex = 0;
        }
        if (this.epochIndex >= o.epochs) {
          stopReason = 'epochs';
          break;
        }
        if (o.maxSteps !== null && this.stepCount >= o.maxSteps) {
          stopReason = 'maxSteps';
          break;
        }
        if (o.timeLimitSeconds !== null && now() - this.sessionStart >= o.timeLimitSeconds) {
          stopReason = 'time';
          break;
        }

        const info = yield* this.trainStep(train);
        lastLoss = info.loss;
        if (firstLosses.length < DIVERGE_HEAD) firstLosses.push(info.loss);
        recent.push(info.loss);
        if (recent.length > 100) recent.shift();
        ema = ema === null ? info.loss : 0.95 * ema + 0.05 * info.loss;
        epochLoss += info.loss;
        epochSteps++;
        trainWindow.add(info);
        if (this.stepCount % o.logEvery === 0) flushTrainLog();
        const stepInfo: StepInfo = { ...info };
        delete (stepInfo as { layerNorms?: unknown }).layerNorms;
        this.runHooks((cb) => cb.onStepEnd?.(stepInfo, this));
        for (const fn of this.hostWork.splice(0)) yield* this.onHost(fn);

        const epochEnded = this.batchIndex >= numBatches;
        let epochEval: Record<string, number> | null = null;
        if (valData && (o.evalEvery !== null ? this.stepCount % o.evalEvery === 0 : epochEnded)) {
          epochEval = yield* this.onHost(() => this.runEval(valData));
          lastEvalStep = this.stepCount;
        }
        if (epochEnded) {
          const ended = this.epochIndex;
          const meanLoss = epochSteps ? epochLoss / epochSteps : NaN;
          epochLoss = 0;
          epochSteps = 0;
          this.epochIndex++;
          this.batchIndex = 0;
          const einfo = { step: this.stepCount, epoch: ended, meanLoss, evalMetrics: o.evalEvery === null ? epochEval : null, time: this.totalSeconds() };
          this.runHooks((cb) => cb.onEpochEnd?.(einfo, this));
        }
        if (store && o.checkpointDir && o.checkpointEvery !== null && this.stepCount % o.checkpointEvery === 0) {
          yield* this.writeCheckpoint(store, o.checkpointDir);
        }

        if (o.progress) {
          const elapsed = now() - this.sessionStart;
          const f = fractionDone();
          const rate = elapsed > 0 ? (f - startFraction) / elapsed : 0;
          o.progress.update({
            step: this.stepCount,
            loss: ema ?? NaN,
            tokensPerSec: elapsed > 0 ? (this.tokenCount - startTokens) / elapsed : 0,
            elapsed,
            fraction: f,
            eta: rate > 0 ? (1 - f) / rate : NaN,
          });
        }
        if (now() - lastYield > 0.05) {
          yield undefined;
          lastYield = now();
        }
      }
      flushTrainLog();
      // work queued after the last step (the loop stopped before the next one's hooks)
      for (const fn of this.hostWork.splice(0)) yield* this.onHost(fn);
      // The final checkpoint holds the state as of the last step — before the final evaluation,
      // so resuming from it replays exactly what an uninterrupted run would have done.
      if (store && o.checkpointDir) {
        yield* this.writeCheckpoint(store, o.checkpointDir);
      }
      this.warnIfDiverged(firstLosses, recent);
      let finalMetrics: Record<string, number> | null = this.lastEval;
      if (valData && lastEvalStep !== this.stepCount && this.stepCount > startStep) {
        finalMetrics = yield* this.onHost(() => this.evaluate(valData));
        const primary = Object.keys(finalMetrics)[0];
        this.writeLog({ type: 'eval', step: this.stepCount, epoch: this.epochIndex, time: this.totalSeconds(), metrics: finalMetrics, primary, best: this.bestMetric });
      } else if (valData && this.stepCount === startStep && this.lastEval === null) {
        finalMetrics = yield* this.onHost(() => this.evaluate(valData));
      }
      if (o.progress) {
        const elapsed = now() - this.sessionStart;
        o.progress.update({ step: this.stepCount, loss: ema ?? NaN, tokensPerSec: elapsed > 0 ? (this.tokenCount - startTokens) / elapsed : 0, elapsed, fraction: fractionDone(), eta: 0 }, true);
        o.progress.done?.();
      }
      const seconds = now() - this.sessionStart;
      const result: FitResult = {
        stopReason,
        step: this.stepCount,
        stepsThisFit: this.stepCount - startStep,
        epoch: this.epochIndex,
        batch: this.batchIndex,
        trainLoss: recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null,
        lastLoss,
        finalMetrics,
        bestMetric: this.bestMetric,
        bestStep: this.bestStep,
        seconds,
        totalSeconds: this.totalSeconds(),
        tokens: this.tokenCount,
        runDir: this.runDir,
      };
      this.elapsedBefore = this.totalSeconds();
      this.sessionStart = 0;
      for (const cb of o.callbacks) cb.onFitEnd?.(result, this);
      return result;
    } finally {
      if (o.handleInterrupt && proc?.off) proc.off('SIGINT', onSigint);
      if (this.sessionStart) {
        this.elapsedBefore = this.totalSeconds();
        this.sessionStart = 0;
      }
      this.log = null;
    }
  }
}
