/**
 * The classifier's 'max' pooling: each feature's maximum over a sample's real steps only (the
 * zeros the fused layer writes past a length never win), recomputed here from the recurrent
 * layer's outputs and the head's weights; its gradient reaches the parameters; and the option is
 * accepted by the task options and refused by the ONNX export by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RNNClassifier } from '../src/models/classifier.ts';
import { Rng } from '../src/tensor/rng.ts';
import { withEval } from '../src/nn/module.ts';
import { backward } from '../src/autograd/tape.ts';
import { crossEntropy } from '../src/autograd/ops/nn.ts';
import { classifierExportSpec } from '../src/onnx/export.ts';
import { getTaskSpec } from '../src/models/registry.ts';


test("pooling 'max' is the maximum over real steps only, for each direction's features", () => {
  for (const bidirectional of [false, true]) {
    const model = new RNNClassifier({ vocabSize: 7, numClasses: 3, embeddingDim: 4, hiddenSize: 5, numLayers: 1, cell: 'gru', bidirectional, pooling: 'max', dropout: 0, padId: 0, rng: new Rng(3) });
    const T = 4, B = 3, C = 3, F = (bidirectional ? 2 : 1) * 5;
    const ids = [1, 2, 3, 4, 5, 0, 6, 0, 0, 2, 0, 0]; // [T, B] time-major: lengths 4, 2, 1
    const lengths = [4, 2, 1];
    withEval(model, () => {
      const logits = model.forward(ids, lengths, T, B).toArray();
      const out = model.rnn.forward(model.embedding.forward(ids, [T, B]), { lengths }).output.toArray(); // [T, B, F]
      const W = model.head.weight.toArray(), bias = model.head.bias!.toArray();
      let negativeAlone = 0;
      for (let b = 0; b < B; b++) {
        const feat = Array.from({ length: F }, (_, f) => Math.max(...Array.from({ length: lengths[b] }, (_, t) => out[(t * B + b) * F + f])));
        negativeAlone += feat.filter((v) => v < 0).length;
        for (let c = 0; c < C; c++) {
          const want = bias[c] + feat.reduce((s, v, f) => s + W[c * F + f] * v, 0);
          assert.ok(Math.abs(logits[b * C + c] - want) < 1e-5, `bidirectional ${bidirectional}, sample ${b}, class ${c}: ${logits[b * C + c]} ≠ ${want}`);
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

test("pooling 'max': an option of the classifier tasks; ONNX export refuses it by name", () => {
  assert.throws(() => getTaskSpec('classify-names').build({ pooling: 'min' }), /option 'pooling' must be 'mean', 'last' or 'max', got "min"/);
  const model = new RNNClassifier({ vocabSize: 5, numClasses: 2, embeddingDim: 2, hiddenSize: 3, numLayers: 1, cell: 'gru', bidirectional: false, pooling: 'max', dropout: 0, padId: 0, rng: new Rng(1) });
  assert.throws(() => classifierExportSpec(model), /pooling 'max' cannot be exported to ONNX yet/);
});

test("option 'cosine': the recommended trainer options anneal lr to lr/100 over all of the task's epochs", () => {
  const spec = getTaskSpec('classify-names');
  const on = spec.build({ cosine: true, epochs: 3 });
  assert.deepEqual(on.trainOptions.schedule, { type: 'CosineAnnealingLR', tMax: 3 * on.train.numBatches, etaMin: on.trainOptions.lr / 100 });
  assert.equal(spec.build({ cosine: false }).trainOptions.schedule, undefined);
  assert.throws(() => spec.build({ cosine: 'sometimes' }), /option 'cosine' must be true or false, got "sometimes"/);
});
