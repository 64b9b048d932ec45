/**
 * The char-LM with each recurrent cell (LSTM, GRU, vanilla RNN): the recurrent module and its
 * tensors are named after the cell; a model file round-trips through the registry's loader with
 * the same logits; ONNX export gives the same logits in recur's ONNX interpreter; a file that
 * names a cell the model does not know is refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeModel, encodeModel } from '../src/io/model.ts';
import { CharLM, checkCharLMConfig } from '../src/models/charlm.ts';
import { buildLM, LMTask } from '../src/models/lm.ts';
import { encodeTask, getTaskSpec } from '../src/models/registry.ts';
import { charLMExportSpec, exportOnnx } from '../src/onnx/export.ts';
import { loadOnnx } from '../src/onnx/model.ts';
import { withEval } from '../src/nn/module.ts';
import { Rng } from '../src/tensor/rng.ts';

const TEXT = 'the quick brown fox jumps over the lazy dog. '.repeat(40);

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

for (const cell of ['lstm', 'gru', 'rnn'] as const) {
  test(`charlm with a ${cell} cell: names, file round trip, ONNX export`, () => {
    const built = buildLM({ cell, embeddingDim: 6, hiddenSize: 10, numLayers: 2, seqLen: 16, batchSize: 4, stepsPerEpoch: 5, evalBatchSize: 2, seed: 3 }, { train: TEXT, val: TEXT.slice(0, 200) });
    const task = built.task;
    assert.equal(task.model.cell, cell);
    assert.equal(task.describe().config.cell, cell);
    const names = task.model.namedParameters().map(([n]) => n);
    assert.ok(names.includes(`${cell}.weight_hh_l1`), names.join(', '));
    assert.ok(!names.some((n) => n.startsWith(cell === 'lstm' ? 'gru.' : 'lstm.')));

    const ids = task.vocab.encode('the lazy fox');
    const T = ids.length;
    const logits = withEval(task.model, () => task.model.forward(ids, T, 1).logits.toArray());
    const loaded = getTaskSpec('charlm').load(decodeModel(encodeTask(task)), 'model').task as LMTask;
    assert.equal(loaded.model.cell, cell);
    const again = withEval(loaded.model, () => loaded.model.forward(ids, T, 1).logits.toArray());
    assert.equal(maxDiff(logits, again), 0);

    const onnx = loadOnnx(exportOnnx(task.model, charLMExportSpec({ cell, state: false })));
    const out = onnx.run({ input: { shape: [T, 1], data: Array.from(ids) } });
    const d = maxDiff(Object.values(out)[0].data, logits);
    assert.ok(d < 1e-5, `ONNX vs recur: ${d}`);
  });
}

test('charlm: a config with an unknown cell is refused by name; old files (cell lstm) still load', () => {
  assert.throws(() => checkCharLMConfig({ arch: 'charlm', vocabSize: 5, embeddingDim: 2, hiddenSize: 3, numLayers: 1, cell: 'transformer' }), /cell/);
  assert.throws(() => new CharLM({ vocabSize: 5, embeddingDim: 2, hiddenSize: 3, cell: 'lstmx' as never }), /cell must be one of lstm, gru, rnn/);
  const m = new CharLM({ vocabSize: 5, embeddingDim: 2, hiddenSize: 3, rng: new Rng(1) });
  const file = decodeModel(encodeModel(m, { config: m.config }));
  assert.deepEqual(Object.keys(file.tensors).filter((n) => n.startsWith('lstm.')).length, 4);
  assert.equal(CharLM.fromConfig(file.config).cell, 'lstm');
});
