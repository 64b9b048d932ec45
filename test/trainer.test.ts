/**
 * The Trainer: option validation, the step pipeline (schedule, clipping, NaN guards), stop
 * conditions, evaluation and early stopping, callbacks, gradient warnings, the metrics log,
 * progress and Ctrl-C handling. Uses a linear-regression task so every test runs in milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Linear, Rng, Tensor, isGradEnabled, mseLoss, mul, sqrt, sub, sum, tensor } from '../src/index.ts';
import type { BatchSource, StepResult, Task } from '../src/train/task.ts';
import { Trainer, TrainerOptionsError, createOptimizer } from '../src/train/trainer.ts';
import { LossRecorder, type ProgressStats } from '../src/train/callbacks.ts';
import { GradMonitor, layerNorms } from '../src/train/gradlog.ts';
import { NonFiniteError } from '../src/train/guard.ts';
import { SGD } from '../src/train/optim.ts';
import { parseMetricsLog } from '../src/train/metrics-log.ts';

const root = mkdtempSync(join(tmpdir(), 'recur-trainer-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

interface Batch {
  x: Tensor;
  y: Tensor;
}

class Regression implements Task<Batch> {
  readonly name = 'regression';
  readonly model: Linear;
  readonly higherIsBetter = false;
  /** Test hooks: replace the loss of a given step. */
  lossHook: ((loss: Tensor, stepIndex: number) => Tensor) | null = null;
  evalHook: (() => Record<string, number>) | null = null;
  steps = 0;
  evalGradEnabled: boolean | null = null;
  evalTraining: boolean | null = null;
  carry: unknown = { n: 0 };
  constructor(seed = 1) {
    this.model = new Linear(2, 1, { rng: new Rng(seed) });
  }
  step(b: Batch): StepResult {
    this.steps++;
    let loss = mseLoss(this.model.forward(b.x), b.y);
    if (this.lossHook) loss = this.lossHook(loss, this.steps);
    (this.carry as { n: number }).n++;
    return { loss, count: b.x.shape[0], metrics: { twice: 2 * loss.item() } };
  }
  evaluate(data: BatchSource<Batch>): Record<string, number> {
    this.evalGradEnabled = isGradEnabled();
    this.evalTraining = this.model.training;
    (this.carry as { n: number }).n = -1; // evaluation must not disturb the training carry
    if (this.evalHook) return this.evalHook();
    let s = 0;
    for (let i = 0; i < data.numBatches; i++) {
      const b = data.get(0, i);
      s += mseLoss(this.model.forward(b.x), b.y).item();
    }
    return { mse: s / data.numBatches, other: 1 };
  }
  describe() {
    return { config: { arch: 'regression' } };
  }
  getCarry(): unknown {
    return JSON.parse(JSON.stringify(this.carry));
  }
  setCarry(s: unknown): void {
    this.carry = s;
  }
}

class Data implements BatchSource<Batch> {
  private readonly xs: number[][] = [];
  private readonly ys: number[] = [];
  constructor(readonly numBatches: number, private readonly bs = 8, seed = 3) {
    const rng = new Rng(seed);
    for (let i = 0; i < numBatches * bs; i++) {
      const a = rng.normal(), b = rng.normal();
      this.xs.push([a, b]);
      this.ys.push(2 * a - b + 0.5 + 0.01 * rng.normal());
    }
  }
  get(epoch: number, index: number): Batch {
    const o = index * this.bs;
    return { x: tensor(this.xs.slice(o, o + this.bs).flat(), [this.bs, 2]), y: tensor(this.ys.slice(o, o + this.bs), [this.bs, 1]) };
  }
}

const quiet = { log: () => {} };

test('options are validated early, naming the key and the expected form', () => {
  const t = new Regression();
  assert.throws(() => new Trainer(t, { epoch: 3 } as never), (e: Error) => e instanceof TrainerOptionsError && /unknown option 'epoch' \(known: optimizer, lr/.test(e.message));
  assert.throws(() => new Trainer(t, { epochs: 0 }), /option 'epochs' must be a positive integer, got 0/);
  assert.throws(() => new Trainer(t, { clipNorm: -1 }), /option 'clipNorm' must be a finite number > 0/);
  assert.throws(() => new Trainer(t, { lr: Number.NaN }), /option 'lr'/);
  assert.throws(() => new Trainer(t, { earlyStopping: { patience: 2, patients: 1 } as never }), /unknown option 'earlyStopping.patients'/);
  assert.throws(() => new Trainer(t, { earlyStopping: {} as never }), /'earlyStopping.patience' must be a positive integer/);
  assert.throws(() => new Trainer(t, { checkpoint: { every: 5 } }), /needs a directory/);
  assert.throws(() => new Trainer(t, { checkpoint: { dir: 'x', keep: 2 } as never }), /unknown option 'checkpoint.keep'/);
  assert.throws(() => new Trainer(t, { runDir: 'x' }), /need a place to write: pass store: fileStore/);
  assert.throws(() => new Trainer(t, { optimizer: 'adamx' as never }), /unknown optimizer 'adamx' \(known: sgd, adam, adamw, rmsprop, adagrad\)/);
  assert.throws(() => new Trainer(t, { optimizer: { name: 'adam', beta: 0.9 } as never }), /unknown option 'beta'/);
  assert.throws(() => new Trainer(t, { optimizer: 'sgd' }), /SGD needs a learning rate/);
  assert.throws(() => new Trainer(t, { schedule: { type: 'StepLR', stepSize: 0, gamma: 0.5 } }), /option 'schedule'.*stepSize/);
  assert.throws(() => new Trainer(t, { progress: 5 as never }), /option 'progress'/);
  assert.throws(() => new Trainer(t, { seed: 1.5 }), /option 'seed' must be an integer/);
  assert.throws(() => new Trainer({} as never), /expected a Task/);
  // Defaults: one epoch of Adam; an optimizer by name, with hyper-parameters, or an instance.
  assert.equal(new Trainer(t).optimizer.type, 'Adam');
  const sgd = new Trainer(t, { optimizer: { name: 'SGD' as 'sgd', momentum: 0.9 }, lr: 0.1 }).optimizer;
  assert.equal(sgd.type, 'SGD');
  assert.deepEqual(sgd.hyper, { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 });
  const mine = new SGD(t.model.namedParameters(), { lr: 0.3 });
  assert.equal(new Trainer(t, { optimizer: mine, lr: 0.2 }).optimizer, mine);
  assert.equal(mine.lr, 0.2);
  assert.equal(createOptimizer('adamw', t.model.namedParameters(), 0.01).type, 'AdamW');
});

test('fit learns; result, step count and stop reason; evaluation runs in eval mode without gradients', async () => {
  const task = new Regression();
  const train = new Data(6), val = new Data(2, 8, 9);
  const rec = new LossRecorder();
  const res = await new Trainer(task, { lr: 0.1, epochs: 8, callbacks: [rec], ...quiet }).fit(train, val);
  assert.equal(res.stopReason, 'epochs');
  assert.equal(res.step, 48);
  assert.equal(res.stepsThisFit, 48);
  assert.equal(res.epoch, 8);
  assert.equal(res.batch, 0);
  assert.equal(res.tokens, 48 * 8);
  assert.ok(rec.losses[47] < rec.losses[0] / 10, `loss fell: ${rec.losses[0]} → ${rec.losses[47]}`);
  assert.ok(res.finalMetrics && res.finalMetrics.mse < 0.5, 'res.finalMetrics && res.finalMetrics.mse < 0.5');
  assert.equal(res.bestMetric, res.finalMetrics!.mse, 'the last epoch-end evaluation is the final one');
  assert.equal(res.bestStep, 48);
  assert.equal(task.evalGradEnabled, false);
  assert.equal(task.evalTraining, false);
  assert.equal(task.model.training, true, 'train mode restored');
  assert.deepEqual(task.carry, { n: 48 }, 'evaluation left the carried state alone');
  assert.ok(res.trainLoss! > 0 && res.lastLoss! > 0, 'res.trainLoss! > 0 && res.lastLoss! > 0');
  assert.equal(res.runDir, null);
});

test('schedule and clipping run every step: recorded lrs follow the schedule; clipped flag', async () => {
  const task = new Regression();
  const lrs: number[] = [];
  const clipped: boolean[] = [];
  await new Trainer(task, {
    optimizer: 'sgd', lr: 0.1, schedule: { type: 'StepLR', stepSize: 3, gamma: 0.5 }, clipNorm: 1e-3, epochs: 2,
    callbacks: [{ onStepEnd: (i) => void (lrs.push(i.lr), clipped.push(i.clipped)) }], ...quiet,
  }).fit(new Data(4));
  assert.deepEqual(lrs, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]);
  assert.ok(clipped.every(Boolean), 'clipped.every(Boolean)');
  // The SGD step with clipping moves the weights by at most lr · clipNorm per step.
  const before = Array.from(task.model.weight.toArray());
  await new Trainer(task, { optimizer: 'sgd', lr: 1, clipNorm: 1e-3, maxSteps: 1, ...quiet }).fit(new Data(1));
  const after = Array.from(task.model.weight.toArray());
  const moved = Math.hypot(...after.map((v, i) => v - before[i]));
  assert.ok(moved <= 1e-3 + 1e-7, `moved ${moved}`);
});

test('stop conditions: maxSteps mid-epoch (then a final evaluation), time limit, epochs', async () => {
  const task = new Regression();
  let evals = 0;
  task.evalHook = () => ({ mse: ++evals });
  const r1 = await new Trainer(task, { maxSteps: 5, ...quiet }).fit(new Data(4), new Data(1));
  assert.equal(r1.stopReason, 'maxSteps');
  assert.equal(r1.step, 5);
  assert.equal(r1.epoch, 1);
  assert.equal(r1.batch, 1);
  assert.equal(evals, 2, 'one evaluation at the end of epoch 0, one final');
  assert.deepEqual(r1.finalMetrics, { mse: 2 });
  assert.equal(r1.bestMetric, 1, 'the final evaluation is reported, not booked');
  const slow = new Regression();
  slow.lossHook = (l) => {
    const until = Date.now() + 30;
    while (Date.now() < until);
    return l;
  };
  const r2 = await new Trainer(slow, { timeLimitSeconds: 0.1, ...quiet }).fit(new Data(100));
  assert.equal(r2.stopReason, 'time');
  assert.ok(r2.step >= 1 && r2.step < 100, `ran ${r2.step} steps`);
});

test('evalEvery, early stopping on the primary metric (higherIsBetter), onEvalEnd info', async () => {
  const task = new Regression();
  const scores = [0.5, 0.4, 0.45, 0.41, 0.3];
  let k = 0;
  task.evalHook = () => ({ mse: scores[k++], extra: 7 });
  const infos: { step: number; improved: boolean; best: number | null; primary: string }[] = [];
  const res = await new Trainer(task, {
    epochs: 100, evalEvery: 2, earlyStopping: { patience: 2, minDelta: 0.01 }, ...quiet,
    callbacks: [{ onEvalEnd: (i) => void infos.push({ step: i.step, improved: i.improved, best: i.best, primary: i.primary }) }],
  }).fit(new Data(3), new Data(1));
  assert.equal(res.stopReason, 'earlyStopping');
  assert.deepEqual(infos, [
    { step: 2, improved: true, best: 0.5, primary: 'mse' },
    { step: 4, improved: true, best: 0.4, primary: 'mse' },
    { step: 6, improved: false, best: 0.4, primary: 'mse' },
    { step: 8, improved: false, best: 0.4, primary: 'mse' }, // 0.39 would be needed (minDelta 0.01)
  ]);
  assert.equal(res.step, 8);
  assert.equal(res.bestMetric, 0.4);
  assert.equal(res.bestStep, 4);
  await assert.rejects(new Trainer(new Regression(), { earlyStopping: { patience: 1 }, ...quiet }).fit(new Data(2)), /'earlyStopping' needs validation data/);
});

test('callbacks: hook order, epoch info, stop requests from a hook or trainer.stop()', async () => {
  const events: string[] = [];
  const res = await new Trainer(new Regression(), {
    epochs: 5, ...quiet,
    callbacks: [{
      onFitStart: () => void events.push('start'),
      onStepEnd: (i) => void events.push(`step${i.step}@${i.epoch}.${i.batch}`),
      onEvalEnd: (i) => void events.push(`eval${i.step}`),
      onEpochEnd: (i, tr) => {
        events.push(`epoch${i.epoch}:${i.evalMetrics ? 'withEval' : 'noEval'}:${Number.isFinite(i.meanLoss)}`);
        if (i.epoch === 1) tr.stop();
      },
      onFitEnd: (r) => void events.push(`end:${r.stopReason}`),
    }],
  }).fit(new Data(2), new Data(1));
  assert.deepEqual(events, [
    'start', 'step1@0.0', 'step2@0.1', 'eval2', 'epoch0:withEval:true', 'step3@1.0', 'step4@1.1', 'eval4', 'epoch1:withEval:true', 'end:callback',
  ]);
  assert.equal(res.step, 4);
  const r2 = await new Trainer(new Regression(), { epochs: 5, callbacks: [{ onStepEnd: (i) => (i.step === 3 ? 'stop' : undefined) }], ...quiet }).fit(new Data(2));
  assert.equal(r2.stopReason, 'callback');
  assert.equal(r2.step, 3);
});

test('a non-finite loss or gradient stops training with an error naming it', async () => {
  const t1 = new Regression();
  t1.lossHook = (l, i) => (i === 3 ? mul(l, Number.NaN) : l);
  await assert.rejects(new Trainer(t1, { epochs: 2, ...quiet }).fit(new Data(4)), (e: Error) => e instanceof NonFiniteError && e.what === 'loss' && e.step === 3);
  const t2 = new Regression();
  // sqrt at 0 has an infinite derivative: finite loss, non-finite gradient in 'weight'.
  t2.lossHook = (l, i) => (i === 2 ? sum(sqrt(sub(t2.model.weight, t2.model.weight.detach()))) : l);
  await assert.rejects(new Trainer(t2, { epochs: 2, ...quiet }).fit(new Data(4)), (e: Error) => e instanceof NonFiniteError && e.what === 'gradient' && e.param === 'weight' && e.step === 2);
});

test('gradient monitoring: per-layer grouping, warnings once each for persistent clipping and explosions', async () => {
  assert.deepEqual(
    Object.keys(layerNorms({ 'lstm.weight_ih_l0': 3, 'lstm.weight_hh_l0': 4, 'lstm.bias_ih_l1_reverse': 1, 'head.weight': 2, 'head.bias': 0, w: 1 })),
    ['lstm.l0', 'lstm.l1_reverse', 'head', 'w'],
  );
  assert.equal(layerNorms({ 'lstm.weight_ih_l0': 3, 'lstm.weight_hh_l0': 4 })['lstm.l0'], 5);
  const m = new GradMonitor({ window: 10, minHistory: 5 });
  for (let i = 1; i <= 8; i++) assert.deepEqual(m.observe(i, 1 + 0.01 * i, null), []);
  assert.equal(m.observe(9, 5000, null)[0].kind, 'explosion');
  assert.deepEqual(m.observe(10, 1e9, null), [], 'each warning only once');

  const dir = join(root, 'warn');
  const messages: string[] = [];
  const task = new Regression();
  task.lossHook = (l, i) => (i === 70 ? mul(l, 1e8) : l);
  await new Trainer(task, { optimizer: 'sgd', lr: 1e-4, clipNorm: 1e-4, epochs: 12, runDir: dir, store: fileStore, log: (s) => void messages.push(s) }).fit(new Data(6));
  assert.equal(messages.length, 2, messages.join('\n'));
  assert.match(messages[0], /recur: warning: gradient clipping \(clipNorm 0\.0001\) fired on 50 of the last 50 steps/);
  assert.match(messages[1], /gradient norm .* at step 70 is over 1000× its running median/);
  const warnings = parseMetricsLog(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).entries.filter((e) => e.type === 'warning');
  assert.deepEqual(warnings.map((w) => (w as { kind: string }).kind), ['grad-clipping', 'grad-explosion']);
});

test('metrics.jsonl: a fit entry, train entries every logEvery steps, eval entries', async () => {
  const dir = join(root, 'log');
  await new Trainer(new Regression(), { lr: 0.05, epochs: 2, logEvery: 3, runDir: dir, store: fileStore, gradNormLogging: true, ...quiet }).fit(new Data(4), new Data(1));
  const { entries, skipped } = parseMetricsLog(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'));
  assert.equal(skipped, 0);
  assert.deepEqual(entries.map((e) => `${e.type}${e.step}`), ['fit0', 'train3', 'eval4', 'train6', 'eval8', 'train8']);
  const tr = entries[1] as Extract<(typeof entries)[number], { type: 'train' }>;
  assert.equal(tr.epoch, 0);
  assert.ok(tr.loss > 0 && tr.lr === 0.05 && tr.tokensPerSec > 0 && tr.gradNorm > 0 && tr.time >= 0, 'tr.loss > 0 && tr.lr === 0.05 && tr.tokensPerSec > 0 && tr.gradNorm > 0 && tr.time >= 0');
  assert.deepEqual(Object.keys(tr.gradNorms!), ['weight', 'bias']);
  assert.ok(Math.abs(tr.metrics!.twice - 2 * tr.loss) < 1e-6, 'Math.abs(tr.metrics!.twice - 2 * tr.loss) < 1e-6');
  const ev = entries[2] as Extract<(typeof entries)[number], { type: 'eval' }>;
  assert.deepEqual(Object.keys(ev.metrics), ['mse', 'other']);
  assert.equal(ev.primary, 'mse');
  assert.equal(ev.best, ev.metrics.mse);
  // Torn lines (a killed run) are skipped and counted.
  assert.equal(parseMetricsLog('{"type":"train","step":1}\n{"type":"tr').skipped, 1);
  // A fresh fit into the same directory starts a new log.
  await new Trainer(new Regression(), { epochs: 1, runDir: dir, store: fileStore, ...quiet }).fit(new Data(1));
  assert.deepEqual(parseMetricsLog(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).entries.map((e) => e.type), ['fit', 'train']);
});

test('progress: the sink sees every step, a fraction reaching 1, and done()', async () => {
  const seen: ProgressStats[] = [];
  let done = 0;
  await new Trainer(new Regression(), { epochs: 2, progress: { update: (s) => void seen.push(s), done: () => void done++ }, ...quiet }).fit(new Data(3));
  assert.equal(seen.length, 7); // six steps and a forced final update
  assert.deepEqual(seen.map((s) => s.step), [1, 2, 3, 4, 5, 6, 6]);
  assert.ok(Math.abs(seen[2].fraction - 0.5) < 1e-12, 'Math.abs(seen[2].fraction - 0.5) < 1e-12');
  assert.equal(seen[6].fraction, 1);
  assert.equal(done, 1);
});

test('handleInterrupt: the first SIGINT stops after the step; the listener is removed afterwards', async () => {
  const before = process.listenerCount('SIGINT');
  const msgs: string[] = [];
  const res = await new Trainer(new Regression(), {
    epochs: 10, handleInterrupt: true, log: (s) => void msgs.push(s),
    callbacks: [{ onStepEnd: (i) => void (i.step === 3 && process.emit('SIGINT')) }],
  }).fit(new Data(4));
  assert.equal(res.stopReason, 'interrupted');
  assert.equal(res.step, 3);
  assert.match(msgs[0], /interrupted: stopping after this step/);
  assert.equal(process.listenerCount('SIGINT'), before);
});

// ---- the CLI glue (recur train / eval / predict) with a registry passed in -------------------------

import { evalCommand, extractSets, parseSetValue, predictCommand, trainCommand, type TaskRegistry } from '../src/cli/train-commands.ts';
import { UsageError, CliError } from '../src/cli/args.ts';
import { TaskRegistryError } from '../src/models/task-options.ts';
import { loadModelFile } from '../src/io/files.ts';
import { asStateDict } from '../src/io/model.ts';
import { readTrainingState, fileStore } from '../src/train/checkpoint.ts';
import { existsSync } from 'node:fs';

const builds: Record<string, unknown>[] = [];
const registry: TaskRegistry = {
  listTasks: () => [{ name: 'regression' }],
  getTaskSpec: (name) =>
    name !== 'regression'
      ? undefined
      : {
          name: 'regression',
          description: 'fit a plane to noisy points',
          defaults: { batches: 4, seed: 0, lr: 0.05 },
          build: (o) => {
            builds.push(o);
            // as every TaskSpec must (the registry's do it with their option schema): values are checked here
            if (!Number.isSafeInteger(o.batches) || (o.batches as number) < 1) throw new TaskRegistryError(`regression: option 'batches' must be a positive integer, got ${JSON.stringify(o.batches)}`);
            return { task: new Regression(o.seed as number), train: new Data(o.batches as number), val: new Data(1, 8, 9), test: new Data(1, 8, 10) };
          },
          load: (file) => {
            const task = new Regression();
            task.model.loadStateDict(asStateDict(file));
            return { task };
          },
          predict: (task, inputs) =>
            inputs.map((s) => {
              const [a, b] = s.split(',').map(Number);
              // as the registry's tasks do: a bad input throws (and fails the whole batch)
              if (!/^-?[\d.]+,-?[\d.]+$/.test(s)) throw new Error(`regression: expected 'a,b', got ${JSON.stringify(s)}`);
              return (task.model as Linear).forward(tensor([a, b], [1, 2])).item().toFixed(1);
            }),
        },
};

function capture() {
  const out: string[] = [];
  return { out, deps: { registry, stdout: (t: string) => void out.push(t), stderr: () => {}, progress: false as const } };
}

test('cli: --set parsing', () => {
  assert.deepEqual(extractSets('x', ['a', '--set', 'k=1', '--set=j={"a":[1]}', 'b', '--', '--set', 'z=1']), { rest: ['a', 'b', '--', '--set', 'z=1'], sets: [['k', '1'], ['j', '{"a":[1]}']] });
  assert.throws(() => extractSets('x', ['--set', 'novalue']), /--set expects key=value/);
  assert.throws(() => extractSets('x', ['--set']), /--set needs key=value/);
  assert.equal(parseSetValue('0.5'), 0.5);
  assert.equal(parseSetValue('true'), true);
  assert.equal(parseSetValue('adam'), 'adam');
  assert.deepEqual(parseSetValue('{"patience":3}'), { patience: 3 });
});

test('cli: recur train writes a run directory, evaluates on val and test, and resumes', async () => {
  const dir = join(root, 'cli-run');
  const c = capture();
  builds.length = 0;
  const code = await trainCommand(['regression', '--epochs', '3', '--run-dir', dir, '--set', 'batches=5', '--set', 'clipNorm=10', '--seed', '4', '--lr', '0.3'], c.deps);
  assert.equal(code, 0);
  assert.deepEqual(builds, [{ batches: 5, seed: 4, lr: 0.3 }]);
  for (const f of ['model.safetensors', 'best.safetensors', 'trainer-state.safetensors', 'metrics.jsonl']) assert.ok(existsSync(join(dir, f)), f);
  const text = c.out.join('');
  assert.match(text, /recur train regression: 3 parameters, 5 batches per epoch, 1 validation batches/);
  assert.match(text, /all epochs done: 15 steps, 3 epochs/);
  assert.match(text, /validation: mse [\d.e-]+, other 1/);
  assert.match(text, /test: mse/);
  const st = readTrainingState(dir);
  assert.deepEqual(st.meta, { task: 'regression', taskOptions: { batches: 5, seed: 4, lr: 0.3 } });
  assert.equal((st.options as { clipNorm: number }).clipNorm, 10);
  assert.deepEqual((st.options as { checkpoint: unknown }).checkpoint, { dir, every: 5, saveBest: true });

  await assert.rejects(trainCommand(['regression', '--run-dir', dir], c.deps), (e: Error) => e instanceof CliError && /already holds a run; continue it with --resume/.test(e.message));
  // Resume with a larger budget: the same task options are rebuilt from the checkpoint.
  builds.length = 0;
  const r = capture();
  assert.equal(await trainCommand(['regression', '--resume', dir, '--epochs', '12'], r.deps), 0);
  assert.deepEqual(builds, [{ batches: 5, seed: 4, lr: 0.3 }]);
  assert.match(r.out.join(''), /\(resuming\)/);
  assert.equal(readTrainingState(dir).step, 60);
  await assert.rejects(trainCommand(['regression', '--resume', dir, '--set', 'batches=2'], r.deps), (e: Error) => e instanceof UsageError && /cannot change when resuming/.test(e.message));
  await assert.rejects(trainCommand(['regression', '--resume', join(root, 'none')], r.deps), /holds no checkpoint/);
});

test('cli: recur train usage errors name the problem', async () => {
  const c = capture();
  await assert.rejects(trainCommand(['nope'], c.deps), (e: Error) => e instanceof UsageError && /unknown task 'nope' \(tasks: regression\)/.test(e.message));
  await assert.rejects(trainCommand(['regression', '--set', 'hidden=3'], c.deps), /unknown key 'hidden' \(task options: batches, seed, lr; trainer options: optimizer/);
  await assert.rejects(trainCommand(['regression', '--set', 'batches=many'], c.deps), (e: Error) => e instanceof UsageError && /regression: option 'batches' must be a positive integer, got "many"/.test(e.message));
  await assert.rejects(trainCommand(['regression', '--set', 'clipNorm=-1', '--run-dir', join(root, 'bad')], c.deps), (e: Error) => e instanceof UsageError && /'clipNorm' must be a finite number > 0/.test(e.message));
  await assert.rejects(trainCommand(['regression', '--epochs', 'x'], c.deps), /--epochs must be a positive integer/);
  await assert.rejects(trainCommand([], c.deps), /missing the TASK argument/);
  assert.equal(await trainCommand(['--list'], c.deps), 0);
  assert.match(c.out.join(''), /regression +fit a plane to noisy points\n +options: batches=4 seed=0 lr=0\.05/);
  assert.equal(await trainCommand(['--help'], c.deps), 0);
});

test('cli: recur eval and recur predict load the model file', async () => {
  const model = join(root, 'cli-run', 'model.safetensors');
  const e = capture();
  assert.equal(await evalCommand(['regression', '--model', model, '--json'], e.deps), 0);
  const j = JSON.parse(e.out.join(''));
  assert.equal(j.split, 'test');
  assert.ok(j.metrics.mse < 0.1, `test mse ${j.metrics.mse}`);
  const e2 = capture();
  assert.equal(await evalCommand(['regression', '--model', model, '--split', 'val'], e2.deps), 0);
  assert.match(e2.out.join(''), /regression on the validation data \(1 batches\):\n  mse +[\d.e-]+\n  other +1\n/);
  await assert.rejects(evalCommand(['regression'], e.deps), /--model FILE is required/);
  await assert.rejects(evalCommand(['regression', '--model', join(root, 'missing.safetensors')], e.deps), /no such file or directory/);
  const p = capture();
  assert.equal(await predictCommand(['regression', '--model', model, '1,0', '0,1'], p.deps), 0);
  const direct = (registry.getTaskSpec('regression')!.predict as (t: unknown, i: string[]) => string[])((registry.getTaskSpec('regression')!.load(loadModelFile(model)) as { task: unknown }).task, ['1,0', '0,1']);
  assert.deepEqual(p.out, direct.map((o) => `${o}\n`));
  assert.ok(Math.abs(Number(direct[0]) - 2.5) <= 0.31 && Math.abs(Number(direct[1]) + 0.5) <= 0.31, `learnt y = 2a − b + 0.5: ${direct.join(', ')}`);
  const s = capture();
  assert.equal(await predictCommand(['regression', '--model', model], { ...s.deps, readStdin: async () => '0,0\n\n1,1\n' }), 0);
  assert.equal(s.out.length, 2, 'one output per non-empty input line');
  await assert.rejects(predictCommand(['regression', '--model', model], { ...s.deps, readStdin: async () => null }), /give the inputs as arguments/);
});

test('cli: recur predict answers the good inputs and reports a bad one on stderr', async () => {
  const model = join(root, 'cli-run', 'model.safetensors');
  const good = capture();
  assert.equal(await predictCommand(['regression', '--model', model, '1,0', '0,1'], good.deps), 0);
  const out: string[] = [];
  const err: string[] = [];
  const deps = { registry, stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), progress: false as const };
  assert.equal(await predictCommand(['regression', `--model=${model}`, '1,0', 'oops', '0,1'], deps), 1);
  assert.deepEqual(out, good.out, 'the good inputs are answered, in order');
  assert.deepEqual(err, [`recur predict: input 2 ("oops"): regression: expected 'a,b', got "oops"\n`]);
  // a single input that fails is an error as before (nothing to answer)
  await assert.rejects(predictCommand(['regression', '--model', model, 'oops'], deps), (e: Error) => e instanceof CliError && e.message === `regression: expected 'a,b', got "oops"`);
});

test('cli: recur train refuses a run folder that holds files unless --overwrite', async () => {
  const { writeFileSync, mkdirSync, readdirSync } = await import('node:fs');
  const dir = join(root, 'busy');
  mkdirSync(dir);
  writeFileSync(join(dir, 'model.safetensors'), 'another run');
  writeFileSync(join(dir, 'metrics.jsonl'), '{"type":"train","step":1,"epoch":0,"time":0,"loss":9,"lr":1}\n');
  writeFileSync(join(dir, 'notes.txt'), 'kept');
  const c = capture();
  await assert.rejects(trainCommand(['regression', '--epochs', '1', '--run-dir', dir], c.deps), (e: Error) =>
    e instanceof CliError && e.exitCode === 1 && e.message === `--run-dir '${dir}' is not empty (metrics.jsonl, model.safetensors, notes.txt); pass --overwrite to replace the run files in it, or choose another --run-dir`);
  assert.equal(readFileSync(join(dir, 'model.safetensors'), 'utf8'), 'another run', 'untouched');
  assert.equal(await trainCommand(['regression', '--epochs', '1', `--run-dir=${dir}`, '--overwrite'], c.deps), 0);
  const log = parseMetricsLog(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).entries;
  assert.equal(log.filter((e) => e.type === 'fit').length, 1, 'the metrics log is the new run\'s alone');
  assert.ok(!log.some((e) => e.type === 'train' && e.loss === 9), 'the old entry is gone');
  assert.ok(readdirSync(dir).includes('notes.txt'), 'files a run does not write are left alone');
  assert.notEqual(readFileSync(join(dir, 'model.safetensors'), 'utf8'), 'another run');
  // a folder with a checkpoint points to --resume and --overwrite
  await assert.rejects(trainCommand(['regression', '--run-dir', dir], c.deps), /already holds a run; continue it with --resume .*, start over with --overwrite/);
  await assert.rejects(trainCommand(['regression', '--resume', dir, '--overwrite'], c.deps), (e: Error) => e instanceof UsageError && /--overwrite starts a new run/.test(e.message));
});

test('cli: option values that are negative numbers reach the range checks; --opt=value works', async () => {
  const c = capture();
  await assert.rejects(trainCommand(['regression', '--epochs', '-5'], c.deps), (e: Error) => e instanceof UsageError && e.message === "--epochs must be a positive integer, got '-5'");
  await assert.rejects(trainCommand(['regression', '--epochs=-5'], c.deps), (e: Error) => e instanceof UsageError && e.message === "--epochs must be a positive integer, got '-5'");
  await assert.rejects(trainCommand(['regression', '--lr', '-0.5'], c.deps), (e: Error) => e instanceof UsageError && e.message === "--lr must be a number ≥ 0, got '-0.5'");
  // a value starting with '-' that is not a number still needs the = form, and says so
  await assert.rejects(trainCommand(['regression', '--run-dir', '-x'], c.deps), (e: Error) => e instanceof UsageError && /--run-dir needs a value; one that starts with '-' is written --run-dir=VALUE/.test(e.message));
  await assert.rejects(trainCommand(['regression', '--set=batches=many'], c.deps), /regression: option 'batches' must be a positive integer, got "many"/);
  const e = capture();
  assert.equal(await evalCommand(['regression', `--model=${join(root, 'cli-run', 'model.safetensors')}`, '--split=val', '--json'], e.deps), 0);
  assert.equal(JSON.parse(e.out.join('')).split, 'val');
});

test('cli: task errors carry the task name once', async () => {
  const { taskMessage } = await import('../src/cli/train-commands.ts');
  assert.equal(taskMessage('classify-names', new Error("classify-names: option 'hiddenSize' must be an integer ≥ 1, got -1")), "classify-names: option 'hiddenSize' must be an integer ≥ 1, got -1");
  assert.equal(taskMessage('classify-names', new Error('no data')), 'classify-names: no data');
});
