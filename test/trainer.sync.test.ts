/**
 * Trainer.fitSync: the same loop as fit (one generator drives both), run without yielding to the
 * event loop — for synchronous callers such as runDiagnose. Same seed, same data: the same losses,
 * metrics and weights bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Linear, Rng, Tensor, mseLoss, tensor } from '../src/index.ts';
import type { BatchSource, StepResult, Task } from '../src/train/task.ts';
import { Trainer } from '../src/train/trainer.ts';
import { LossRecorder } from '../src/train/callbacks.ts';

interface Batch {
  x: Tensor;
  y: Tensor;
}

function regression(seed: number): Task<Batch> {
  const model = new Linear(3, 1, { rng: new Rng(seed) });
  return {
    name: 'regression',
    model,
    higherIsBetter: false,
    step: (b): StepResult => ({ loss: mseLoss(model.forward(b.x), b.y), count: b.x.shape[0] }),
    evaluate(data) {
      let s = 0;
      for (let i = 0; i < data.numBatches; i++) s += mseLoss(model.forward(data.get(0, i).x), data.get(0, i).y).item();
      return { mse: s / data.numBatches };
    },
    describe: () => ({ config: {} }),
  };
}

function data(seed: number, numBatches: number): BatchSource<Batch> {
  return {
    numBatches,
    get(epoch, i) {
      const rng = new Rng(seed * 7919 + epoch * 131 + i);
      const x = Array.from({ length: 8 * 3 }, () => rng.normal());
      const y = Array.from({ length: 8 }, (_, k) => 0.5 * x[3 * k] - x[3 * k + 1] + 2 * x[3 * k + 2] + 0.1 * rng.normal());
      return { x: tensor(x, [8, 3]), y: tensor(y, [8, 1]) };
    },
  };
}

const options = () => ({ optimizer: 'adam' as const, lr: 0.05, clipNorm: 1, epochs: 3, evalEvery: 4, log: () => {} });

test('fitSync and fit give the same losses, metrics and weights bit for bit', async () => {
  const a = regression(3), b = regression(3);
  const ra = new LossRecorder(), rb = new LossRecorder();
  const async = await new Trainer(a, { ...options(), callbacks: [ra] }).fit(data(1, 5), data(2, 2));
  const sync = new Trainer(b, { ...options(), callbacks: [rb] }).fitSync(data(1, 5), data(2, 2));
  assert.equal(ra.losses.length, 15);
  assert.deepEqual(rb.losses, ra.losses);
  assert.deepEqual(sync.finalMetrics, async.finalMetrics);
  assert.equal(sync.stopReason, 'epochs');
  assert.equal(sync.step, async.step);
  for (const [[name, p], [, q]] of a.model.namedParameters().map((e, i) => [e, b.model.namedParameters()[i]] as const)) {
    assert.deepEqual(q.toArray(), p.toArray(), name);
  }
});

test('fitSync never hands the event loop a turn, however long it runs', () => {
  let ran = false;
  setImmediate(() => (ran = true));
  const task = regression(1);
  const slow = { onStepEnd() { const t = performance.now(); while (performance.now() - t < 15); } };
  const r = new Trainer(task, { ...options(), callbacks: [slow] }).fitSync(data(1, 4));
  assert.equal(r.step, 12); // ≈ 180 ms: fit would have yielded several times
  assert.equal(ran, false);
});

test('fitSync checks its data as fit does', () => {
  const t = new Trainer(regression(1), options());
  assert.throws(() => t.fitSync({ numBatches: 0, get: () => { throw new Error('unreachable'); } }), /the training data must be a BatchSource/);
  const es = new Trainer(regression(1), { ...options(), earlyStopping: { patience: 2 } });
  assert.throws(() => es.fitSync(data(1, 2)), /'earlyStopping' needs validation data/);
});
