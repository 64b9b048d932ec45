/**
 * A whole training run on a backend against the same run on a reference backend: the char-LM task
 * (embedding → LSTM → linear, Adam, global-norm clipping, seed 7) for 50 steps of `Trainer.fit`, from
 * the same initial weights and batches. The losses must agree step for step within a float32
 * tolerance that grows with the step (rounding differences compound through 50 updates); the
 * gradient norms the trainer logged must agree too. Runs in Node and bundled in a browser page.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { decodeModel, getBackend, memoryStore, setBackend, Trainer, type RunStore } from '../../src/index.ts';
import type { Backend } from '../../src/backend/interface.ts';
import { buildLMFromText } from '../../src/models/lm.ts';

const TEXT = Array.from({ length: 60 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog; ${'abcdefghij'.slice(i % 7)}\n`).join('');
export const TRAIN_STEPS = 50;

interface Run {
  losses: number[];
  norms: number[];
  /** The validation metrics at the end, and the weights of the model file the run wrote. */
  metrics: Record<string, number>;
  weights: Record<string, ArrayLike<number>>;
}

/** The run with `backend` as the default while the model is built: validation at the end, a checkpoint every 25 steps. */
export async function trainCharLM(backend: Backend): Promise<Run> {
  const prev = getBackend().name;
  setBackend(backend.name);
  let built: ReturnType<typeof buildLMFromText>;
  try {
    built = buildLMFromText({ embeddingDim: 16, hiddenSize: 32, numLayers: 1, seqLen: 16, batchSize: 8, stepsPerEpoch: 1000, evalBatchSize: 4, seed: 7 }, TEXT);
  } finally {
    setBackend(prev);
  }
  for (const p of built.task.model.parameters()) assert.ok(p.backend === backend, `a parameter is on '${p.backend.name}', not '${backend.name}'`);
  const losses: number[] = [], norms: number[] = [];
  const store: RunStore = memoryStore();
  const result = await new Trainer(built.task, {
    optimizer: 'adam', lr: 0.01, clipNorm: 1, maxSteps: TRAIN_STEPS, seed: 7, log: () => {}, store, runDir: 'run', checkpoint: { every: 25 },
    callbacks: [{ onStepEnd: (s) => { losses.push(s.loss); norms.push(s.gradNorm); } }],
  }).fit(built.train, built.val);
  for (const p of built.task.model.parameters()) assert.ok(p.backend === backend, 'the parameters are back on the backend after evaluating and saving');
  const file = store.read('run', 'model.safetensors');
  assert.ok(file, 'the run wrote its model file');
  const weights: Record<string, ArrayLike<number>> = {};
  for (const [name, t] of Object.entries(decodeModel(file).tensors)) weights[name] = Array.from(t.data as ArrayLike<number>);
  return { losses, norms, metrics: result.finalMetrics ?? {}, weights };
}

export function runTrainParity(backend: Backend, reference: Backend, label: string): void {
  describe(`char-LM training: ${label} against ${reference.name}`, () => {
    test(`${TRAIN_STEPS} Trainer.fit steps give the same losses, gradient norms, validation loss and model file`, async () => {
      const got = await trainCharLM(backend);
      const want = await trainCharLM(reference);
      assert.equal(got.losses.length, TRAIN_STEPS);
      for (let s = 0; s < TRAIN_STEPS; s++) {
        // float32 rounding, compounding over the updates (measured: at most 1.0e-5 on lavapipe)
        const tol = 2e-5 * (1 + s / 10);
        const dl = Math.abs(got.losses[s] - want.losses[s]) / want.losses[s];
        const dn = Math.abs(got.norms[s] - want.norms[s]) / want.norms[s];
        assert.ok(dl <= tol, `step ${s + 1}: loss ${got.losses[s]} vs ${want.losses[s]} (rel ${dl.toExponential(2)} > ${tol.toExponential(1)})`);
        assert.ok(dn <= 10 * tol, `step ${s + 1}: gradient norm ${got.norms[s]} vs ${want.norms[s]} (rel ${dn.toExponential(2)})`);
      }
      assert.ok(got.losses[TRAIN_STEPS - 1] < 0.7 * got.losses[0], `the model learns: ${got.losses[0]} → ${got.losses[TRAIN_STEPS - 1]}`);
      const tol = 2e-5 * (1 + TRAIN_STEPS / 10);
      assert.deepEqual(Object.keys(got.metrics), Object.keys(want.metrics));
      for (const [k, v] of Object.entries(want.metrics)) assert.ok(Math.abs(got.metrics[k] - v) <= tol * Math.abs(v), `validation ${k}: ${got.metrics[k]} vs ${v}`);
      assert.deepEqual(Object.keys(got.weights).sort(), Object.keys(want.weights).sort());
      for (const [name, w] of Object.entries(want.weights)) {
        const g = got.weights[name];
        assert.equal(g.length, w.length, name);
        let worst = 0;
        for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]) / (1 + Math.abs(w[i])));
        assert.ok(worst <= 1e-3, `${name} in the model file: max |diff|/(1 + |w|) ${worst.toExponential(2)}`);
      }
    });
  });
}
