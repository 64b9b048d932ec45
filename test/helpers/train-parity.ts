/**
 * A whole training run on a backend against the same run on a reference backend: the char-LM task
 * (embedding → LSTM → linear, Adam, global-norm clipping, seed 7) for 50 steps of `Trainer.fit`, from
 * the same initial weights and batches. The losses must agree step for step within a float32
 * tolerance that grows with the step (rounding differences compound through 50 updates); the
 * gradient norms the trainer logged must agree too. Runs in Node and bundled in a browser page.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { setBackend, getBackend, Trainer } from '../../src/index.ts';
import type { Backend } from '../../src/backend/interface.ts';
import { buildLMFromText } from '../../src/models/lm.ts';

const TEXT = Array.from({ length: 60 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog; ${'abcdefghij'.slice(i % 7)}\n`).join('');
export const TRAIN_STEPS = 50;

/** Losses and gradient norms of the run with `backend` as the default while the model is built. */
export async function trainCharLM(backend: Backend): Promise<{ losses: number[]; norms: number[] }> {
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
  await new Trainer(built.task, {
    optimizer: 'adam', lr: 0.01, clipNorm: 1, maxSteps: TRAIN_STEPS, seed: 7, log: () => {},
    callbacks: [{ onStepEnd: (s) => { losses.push(s.loss); norms.push(s.gradNorm); } }],
  }).fit(built.train);
  return { losses, norms };
}

export function runTrainParity(backend: Backend, reference: Backend, label: string): void {
  describe(`char-LM training: ${label} against ${reference.name}`, () => {
    test(`${TRAIN_STEPS} Trainer.fit steps give the same losses and gradient norms`, async () => {
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
    });
  });
}
