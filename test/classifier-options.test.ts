/**
 * The classifier's 'max' pooling: each feature's maximum over a sample's real steps only (the
 * zeros the fused layer writes past a length never win), and 'mean+max', the mean and the maximum
 * side by side, both recomputed here from the recurrent layer's outputs and the head's weights;
 * their gradients reach the parameters; the options are accepted by the task options and map to
 * the ONNX export's pooling steps (test/onnx.export.test.ts runs those). And the names tasks'
 * `splitSeed`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifierTensorShapes, RNNClassifier, type ClassificationTask } from '../src/models/classifier.ts';
import { Rng } from '../src/tensor/rng.ts';
import { withEval } from '../src/nn/module.ts';
import { backward } from '../src/autograd/tape.ts';
import { crossEntropy } from '../src/autograd/ops/nn.ts';
import { classifierExportSpec } from '../src/onnx/export.ts';
import { getTaskSpec } from '../src/models/registry.ts';
import { firstNames, NAMES_SPLIT_SEED } from '../src/data/datasets.ts';


test("pooling 'max' is the maximum over real steps only, for each direction's features; 'mean+max' is [mean ‖ max]", () => {
  for (const [bidirectional, pooling] of [[false, 'max'], [true, 'max'], [false, 'mean+max'], [true, 'mean+max']] as const) {
    const model = new RNNClassifier({ vocabSize: 7, numClasses: 3, embeddingDim: 4, hiddenSize: 5, numLayers: 1, cell: 'gru', bidirectional, pooling, dropout: 0, padId: 0, rng: new Rng(3) });
    const T = 4, B = 3, C = 3, F = (bidirectional ? 2 : 1) * 5;
    const ids = [1, 2, 3, 4, 5, 0, 6, 0, 0, 2, 0, 0]; // [T, B] time-major: lengths 4, 2, 1
    const lengths = [4, 2, 1];
    withEval(model, () => {
      const logits = model.forward(ids, lengths, T, B).toArray();
      const out = model.rnn.forward(model.embedding.forward(ids, [T, B]), { lengths }).output.toArray(); // [T, B, F]
      const W = model.head.weight.toArray(), bias = model.head.bias!.toArray();
      let negativeAlone = 0;
      for (let b = 0; b < B; b++) {
        const steps = (f: number): number[] => Array.from({ length: lengths[b] }, (_, t) => out[(t * B + b) * F + f]);
        const max = Array.from({ length: F }, (_, f) => Math.max(...steps(f)));
        const mean = Array.from({ length: F }, (_, f) => steps(f).reduce((a, v) => a + v, 0) / lengths[b]);
        negativeAlone += max.filter((v) => v < 0).length;
        const feat = pooling === 'max' ? max : [...mean, ...max];
        for (let c = 0; c < C; c++) {
          const want = bias[c] + feat.reduce((s, v, f) => s + W[c * feat.length + f] * v, 0);
          assert.ok(Math.abs(logits[b * C + c] - want) < 1e-5, `${pooling}, bidirectional ${bidirectional}, sample ${b}, class ${c}: ${logits[b * C + c]} ≠ ${want}`);
        }
      }
      // a feature whose real maximum is negative would have been 0 had the padding counted
      assert.ok(negativeAlone > 0, 'the check needs a feature whose maximum is negative');
    });
    // the gradient reaches the embedding and the recurrent weights through the winners
    model.zeroGrad();
    backward(crossEntropy(model.forward(ids, lengths, T, B), [0, 1, 2]));
    assert.ok(model.embedding.weight.grad!.toArray().some((g) => g !== 0));
    assert.ok(model.rnn.namedParameters().every(([, p]) => p.grad !== null && p.grad.toArray().some((g) => g !== 0)));
  }
});

test("pooling 'max' and 'mean+max': options of the classifier tasks, each with its ONNX pooling step", () => {
  assert.throws(() => getTaskSpec('classify-names').build({ pooling: 'min' }), /option 'pooling' must be 'mean', 'last', 'max' or 'mean\+max', got "min"/);
  for (const [pooling, op] of [['last', 'finalState'], ['mean', 'meanOverTime'], ['max', 'maxOverTime'], ['mean+max', 'meanMaxOverTime']] as const) {
    const model = new RNNClassifier({ vocabSize: 5, numClasses: 2, embeddingDim: 2, hiddenSize: 3, numLayers: 1, cell: 'gru', bidirectional: false, pooling, dropout: 0, padId: 0, rng: new Rng(1) });
    assert.deepEqual(classifierExportSpec(model).steps[2], { op });
  }
  // the head reads twice the features with 'mean+max', and a model file says so by its shapes
  const task = getTaskSpec('classify-names').build({ pooling: 'mean+max', hiddenSize: 4, epochs: 1 }).task as ClassificationTask;
  assert.deepEqual(task.model.head.weight.shape, [2, 2 * 2 * 4]);
  const shapes = classifierTensorShapes(task.describe().config, task.vocab.size);
  assert.deepEqual(shapes.find(([name]) => name === 'head.weight')?.[1], [2, 16]);
});

test("option 'splitSeed': the names tasks draw another 80/10/10 split of the same names; the default is the fixed split", () => {
  for (const name of ['classify-names', 'ngram-names', 'feedforward']) {
    const spec = getTaskSpec(name);
    const texts = (o: Record<string, unknown>) => {
      const b = spec.build({ ...o, epochs: 1 });
      return [b.train, b.val, b.test!].map((src) => src.numBatches);
    };
    assert.equal(spec.defaults.splitSeed, NAMES_SPLIT_SEED, name);
    assert.deepEqual(texts({}), texts({ splitSeed: NAMES_SPLIT_SEED }), name);
    assert.throws(() => spec.build({ splitSeed: -1 }), /option 'splitSeed' must be/, name);
  }
  // same names in all, none in two splits, and another split seed moves them
  const split = (k: number) => firstNames({ ambiguous: 'drop', seed: k });
  const a = split(NAMES_SPLIT_SEED), b = split(11);
  const names = (s: typeof a) => [s.train, s.val, s.test].map((l) => new Set(l.map((e) => e.name)));
  const [trA, vaA, teA] = names(a), [trB, vaB, teB] = names(b);
  assert.deepEqual([...trA, ...vaA, ...teA].sort(), [...trB, ...vaB, ...teB].sort());
  for (const [x, y] of [[trB, vaB], [trB, teB], [vaB, teB]]) assert.ok([...x].every((n) => !y.has(n)));
  // about a tenth each (the split is drawn over all names, before those in both lists are left out)
  const total = trB.size + vaB.size + teB.size;
  for (const n of [vaA.size, teA.size, vaB.size, teB.size]) assert.ok(Math.abs(n / total - 0.1) < 0.01, `${n} of ${total}`);
  assert.ok([...teB].filter((n) => teA.has(n)).length < teB.size / 2, 'split 11 holds mostly other test names');
});

test("option 'cosine': the recommended trainer options anneal lr to lr/100 over all of the task's epochs", () => {
  const spec = getTaskSpec('classify-names');
  const on = spec.build({ cosine: true, epochs: 3 });
  assert.deepEqual(on.trainOptions.schedule, { type: 'CosineAnnealingLR', tMax: 3 * on.train.numBatches, etaMin: on.trainOptions.lr / 100 });
  assert.equal(spec.build({ cosine: false }).trainOptions.schedule, undefined);
  assert.throws(() => spec.build({ cosine: 'sometimes' }), /option 'cosine' must be true or false, got "sometimes"/);
});
