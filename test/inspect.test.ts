/**
 * models/inspect.ts: the playground's views into a model must show what the model computes.
 * traceCharLM recomputes layer 0 (LSTM, GRU, RNN) step by step in float64; its last hidden (and cell)
 * state must equal the fused layer's final state (float32, so to 1e-5), its gates must lie in (0, 1), and the
 * classifier's probabilities must be distributions whose argmax is the label predict gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/tensor/rng.ts';
import { CharLM } from '../src/models/charlm.ts';
import { buildClassifier } from '../src/models/classifier.ts';
import { classifierProbabilities, traceCharLM } from '../src/models/inspect.ts';
import { withEval } from '../src/nn/module.ts';

for (const cell of ['lstm', 'gru', 'rnn'] as const) {
  test(`traceCharLM (${cell}): final state equals the fused layer's; gates in (0, 1)`, () => {
    const model = new CharLM({ vocabSize: 11, embeddingDim: 5, hiddenSize: 7, cell, rng: new Rng(3) });
    const rng = new Rng(4);
    const ids = Array.from({ length: 13 }, () => rng.int(11));
    const tr = traceCharLM(model, ids);
    assert.equal(tr.cell, cell);
    assert.equal(tr.h.length, 13);
    assert.deepEqual(Object.keys(tr.gates), { lstm: ['input', 'forget', 'output'], gru: ['reset', 'update'], rnn: [] }[cell]);
    const out = withEval(model, () => model.forward(ids, 13, 1));
    const h = out.h.toArray();
    let maxDiff = 0;
    for (let j = 0; j < 7; j++) maxDiff = Math.max(maxDiff, Math.abs(h[j] - tr.h[12][j]));
    if (cell === 'lstm') {
      const c = out.c!.toArray();
      for (let j = 0; j < 7; j++) maxDiff = Math.max(maxDiff, Math.abs(c[j] - tr.c[12][j]));
    } else assert.equal(out.c, undefined);
    assert.ok(maxDiff < 1e-5, `trace vs fused ${cell}: max |diff| ${maxDiff}`);
    // a non-trivial state: the comparison above is not between zeros
    assert.ok(tr.h[12].some((v) => Math.abs(v) > 1e-3));
    for (const g of Object.values(tr.gates)) {
      assert.equal(g.length, 13);
      for (const row of g) for (const v of row) assert.ok(v > 0 && v < 1);
    }
    assert.throws(() => traceCharLM(model, [0, 11]), /token 1 is 11, outside the vocabulary \[0, 11\)/);
  });
}

test('classifierProbabilities: rows sum to 1 and agree with predict', () => {
  const names = ['anna', 'maria', 'julia', 'emma', 'bob', 'tom', 'jack', 'peter', 'lisa', 'mark'];
  const data = { train: names.map((text, i) => ({ text, label: i % 2 })), val: names.slice(0, 4).map((text, i) => ({ text, label: i % 2 })) };
  const { task } = buildClassifier('classify-names', ['female', 'male'], {
    tokenizer: 'char', lowercase: true, minCount: 1, maxVocab: 100, cell: 'gru', embeddingDim: 4, hiddenSize: 6, numLayers: 1,
    bidirectional: true, pooling: 'last', dropout: 0, maxLen: 24, truncate: 'end', batchSize: 4, seed: 2,
  }, data);
  const inputs = ['anna', 'tom', 'zoe'];
  const probs = classifierProbabilities(task, inputs);
  const labels = task.predict(inputs);
  assert.equal(probs.length, 3);
  probs.forEach((p, k) => {
    assert.equal(p.length, 2);
    assert.ok(Math.abs(p[0] + p[1] - 1) < 1e-6);
    assert.equal(task.config.labels[p[0] >= p[1] ? 0 : 1], labels[k]);
  });
  assert.deepEqual(classifierProbabilities(task, []), []);
  assert.throws(() => classifierProbabilities(task, [''] ), /no tokens/);
});
