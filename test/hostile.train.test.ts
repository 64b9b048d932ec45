/**
 * Training that goes wrong without crashing: an update that makes the weights non-finite (also at
 * the very last step), a learning rate so high the loss climbs, and the clipNorm the task options
 * allow. Each test here failed before the fix it guards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Linear, Rng, Tensor, mseLoss, tensor } from '../src/index.ts';
import type { BatchSource, StepResult, Task } from '../src/train/task.ts';
import { Trainer } from '../src/train/trainer.ts';
import { NonFiniteError } from '../src/train/guard.ts';
import { memoryStore } from '../src/train/run-store.ts';
import { MODEL_FILE, BEST_FILE } from '../src/train/checkpoint.ts';
import { getTaskSpec } from '../src/models/registry.ts';

interface Batch {
  x: Tensor;
  y: Tensor;
}

/** y = 2a − b + 0.5 with a linear model: each step takes microseconds. */
class Fit implements Task<Batch> {
  readonly name = 'fit';
  readonly higherIsBetter = false;
  readonly model = new Linear(2, 1, { rng: new Rng(1) });
  step(b: Batch): StepResult {
    return { loss: mseLoss(this.model.forward(b.x), b.y), count: b.x.shape[0] };
  }
  evaluate(data: BatchSource<Batch>): Record<string, number> {
    let s = 0;
    for (let i = 0; i < data.numBatches; i++) {
      const b = data.get(0, i);
      s += mseLoss(this.model.forward(b.x), b.y).item();
    }
    return { mse: s / data.numBatches };
  }
  describe() {
    return { config: { arch: 'fit' } };
  }
}

function data(numBatches: number, bs = 8): BatchSource<Batch> {
  const rng = new Rng(3);
  const batches = Array.from({ length: numBatches }, () => {
    const xs: number[] = [], ys: number[] = [];
    for (let i = 0; i < bs; i++) {
      const a = rng.normal(), b = rng.normal();
      xs.push(a, b);
      ys.push(2 * a - b + 0.5);
    }
    return { x: tensor(xs, [bs, 2]), y: tensor(ys, [bs, 1]) };
  });
  return { numBatches, get: (_e, i) => batches[i] };
}

test('an update that makes the weights non-finite fails the run at that step, naming the parameter — the last step too — and writes no model', async () => {
  for (const steps of [1, 3]) {
    const store = memoryStore();
    // SGD on a gradient of order 1, the rate jumped to 1e300 for the final step only (StepLR): the
    // update overflows float32 to ±Infinity while that step's loss and gradient are finite
    const trainer = new Trainer(new Fit(), {
      optimizer: 'sgd', lr: 1e-3, schedule: steps > 1 ? { type: 'StepLR', stepSize: steps - 1, gamma: 1e303 } : null, maxSteps: steps, runDir: 'run', store, log: () => {},
    });
    if (steps === 1) (trainer as unknown as { optimizer: { lr: number } }).optimizer.lr = 1e300;
    await assert.rejects(trainer.fit(data(4), data(1)), (e: Error) =>
      e instanceof NonFiniteError && e.what === 'value' && (e.param === 'weight' || e.param === 'bias') && e.step === steps && e.message.includes(`'${e.param}'`) && e.message.includes(`step ${steps}`));
    assert.equal(store.read('run', MODEL_FILE), null, 'no final model is written');
  }
});

test('a model file is never written with non-finite weights: the checkpoint refuses, naming the parameter', async () => {
  const store = memoryStore();
  const task = new Fit();
  const trainer = new Trainer(task, { optimizer: 'sgd', lr: 1e-3, maxSteps: 1, runDir: 'run', store, log: () => {} });
  await trainer.fit(data(2));
  const bias = task.model.namedParameters().find(([n]) => n === 'bias')![1];
  bias.backend.write(bias.storage, [Number.NaN], 0);
  await assert.rejects(trainer.saveCheckpoint('other'), (e: Error) => e instanceof NonFiniteError && e.param === 'bias' && /non-finite value in 'bias'/.test(e.message));
  assert.equal(store.read('other', MODEL_FILE), null);
  assert.equal(store.read('other', BEST_FILE), null);
});

test('a loss made non-finite by already-broken weights names the parameter, not the loss', async () => {
  const task = new Fit();
  const w = task.model.namedParameters().find(([n]) => n === 'weight')![1];
  w.backend.write(w.storage, [Number.POSITIVE_INFINITY], 1);
  await assert.rejects(new Trainer(task, { optimizer: 'sgd', lr: 1e-3, maxSteps: 2, log: () => {} }).fit(data(2)), (e: Error) =>
    e instanceof NonFiniteError && e.what === 'value' && e.param === 'weight' && e.index === 1 && e.step === 1);
});

test('a learning rate so high the loss climbs ends with a divergence warning on the console and in the log', async () => {
  const store = memoryStore();
  const messages: string[] = [];
  // SGD at lr 1.5 on this quadratic overshoots further every step: the loss grows geometrically but stays finite for 40 steps
  const r = await new Trainer(new Fit(), { optimizer: 'sgd', lr: 1.5, maxSteps: 40, runDir: 'run', store, log: (m) => void messages.push(m) }).fit(data(40));
  assert.ok(Number.isFinite(r.lastLoss!) && r.lastLoss! > 100, `loss ${r.lastLoss}`);
  assert.ok(messages.some((m) => /warning: training diverged: the median training loss rose from .* \(at the start\)/.test(m)), messages.join('\n'));
  const log = new TextDecoder().decode(store.read('run', 'metrics.jsonl')!);
  assert.match(log, /"kind":"divergence"/);
  // an ordinary run says nothing of the kind
  const calm: string[] = [];
  await new Trainer(new Fit(), { optimizer: 'sgd', lr: 0.05, maxSteps: 40, log: (m) => void calm.push(m) }).fit(data(40));
  assert.ok(!calm.some((m) => /diverged/.test(m)), calm.join('\n'));
});

test('clipNorm 0 means no clipping for the task options and the Trainer alike', async () => {
  const built = getTaskSpec('feedforward').build({ clipNorm: 0, epochs: 1 });
  assert.equal(built.trainOptions.clipNorm, 0);
  const store = memoryStore();
  await new Trainer(built.task, { ...built.trainOptions, maxSteps: 2, logEvery: 1, runDir: 'run', store, log: () => {} }).fit(built.train);
  // a run that clips logs the fraction of clipped steps; one without clipping does not
  const log = new TextDecoder().decode(store.read('run', 'metrics.jsonl')!);
  assert.match(log, /"type":"train"/);
  assert.doesNotMatch(log, /"clipped"/);
  assert.throws(() => new Trainer(new Fit(), { clipNorm: -1 }), /option 'clipNorm' must be a finite number > 0/);
});
