/**
 * seq2seq (grapheme → phoneme on CMUdict): edit-distance and error-rate metrics, the fixed
 * seeded split, batches addressed by (epoch, index), a gradient check of the whole model in
 * float64, and a tiny training run whose loss falls well below its start within seconds; greedy
 * and beam decoding, predict, and a model-file round trip.
 */
import { loadModelFile } from '../src/io/files.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Rng } from '../src/tensor/rng.ts';
import {
  BOS, EOS, G2PBatches, IGNORE, PAD, Seq2Seq, Seq2SeqTask, buildSeq2Seq, loadSeq2Seq, SEQ2SEQ_DEFAULTS, makeG2PBatch, seq2seqTaskSpec,
} from '../src/models/seq2seq.ts';
import { ErrorRates, closestReference, editDistance } from '../src/models/metrics.ts';
import { loadCmudict, type G2PWord } from '../src/data/cmudict.ts';
import { quickFit } from './helpers/quick-fit.ts';
import { taskNameOf } from '../src/models/registry.ts';
import { saveTask } from '../src/models/files.ts';
import { gradcheck } from './helpers/gradcheck.ts';

describe('edit distance and error rates', () => {
  test('edit distance: known values', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('abc', ''), 3);
    assert.equal(editDistance('', ''), 0);
    assert.equal(editDistance('flaw', 'lawn'), 2);
    assert.equal(editDistance([1, 2, 3], [1, 2, 3]), 0);
    assert.equal(editDistance([1, 2, 3], [3, 2, 1]), 2);
    assert.equal(editDistance(['K', 'AE', 'T'], ['K', 'AH', 'T', 'S']), 2);
  });

  test('edit distance is a metric on random sequences (symmetry, triangle inequality, bounds)', () => {
    const rng = new Rng(3);
    const seq = (): number[] => Array.from({ length: rng.int(7) }, () => rng.int(3));
    for (let k = 0; k < 200; k++) {
      const a = seq(), b = seq(), c = seq();
      const ab = editDistance(a, b);
      assert.equal(ab, editDistance(b, a));
      assert.ok(ab <= editDistance(a, c) + editDistance(c, b));
      assert.ok(ab >= Math.abs(a.length - b.length) && ab <= Math.max(a.length, b.length));
    }
  });

  test('closest reference and PER / WER', () => {
    assert.deepEqual(closestReference([1, 2], [[1, 2, 3], [1, 2]]), { distance: 0, refLength: 2 });
    assert.deepEqual(closestReference([9], [[1, 2, 3], [1, 2]]), { distance: 2, refLength: 2 });
    const r = new ErrorRates();
    r.add([1, 2, 3], [[1, 2, 3]]); // right
    r.add([1, 2], [[1, 2, 3, 4]]); // 2 deletions of 4
    r.add([5], [[6], [5, 5]]); // 1 error: the length-1 ref (ties go to the shorter)
    assert.equal(r.wer, 2 / 3);
    assert.equal(r.per, 3 / 8);
    assert.ok(Number.isNaN(new ErrorRates().wer));
  });
});

describe('CMUdict data', () => {
  const data = loadCmudict({ testSize: 500, valSize: 200 });

  test('vocabulary, stress stripped, a known word', () => {
    assert.deepEqual(data.vocab.phonemes.slice(0, 3), ['<pad>', '<s>', '</s>']);
    assert.equal(data.vocab.phonemes.length, 3 + 39);
    assert.equal(data.vocab.graphemes[0], '');
    assert.ok(data.vocab.graphemes.includes("'"));
    const all = [...data.train, ...data.val, ...data.test];
    const w = all.find((x) => x.word === 'PHOENIX')!;
    assert.ok(w, 'PHOENIX is in the dictionary');
    assert.ok(w.prons.some((p) => [...p].map((i) => data.vocab.phonemes[i]).join(' ') === 'F IY N IH K S'));
    assert.ok(all.some((x) => x.prons.length > 1), 'alternative pronunciations are kept');
  });

  test('the split is fixed by the seed, disjoint and word-level', () => {
    const again = loadCmudict({ testSize: 500, valSize: 200 });
    assert.deepEqual(again.test.map((w) => w.word), data.test.map((w) => w.word));
    assert.equal(data.test.length, 500);
    assert.equal(data.val.length, 200);
    const train = new Set(data.train.map((w) => w.word));
    for (const w of [...data.val, ...data.test]) assert.ok(!train.has(w.word));
    const other = loadCmudict({ testSize: 500, valSize: 200, seed: 5 });
    assert.notDeepEqual(other.test.map((w) => w.word), data.test.map((w) => w.word));
  });

  test('batches: padding, targets, (epoch, index) addressing, bucketing', () => {
    const b = makeG2PBatch([{ w: data.train[0], pron: 0 }, { w: data.train[1], pron: 0 }]);
    const n0 = data.train[0].prons[0].length;
    assert.equal(b.tgtIn[0], BOS);
    assert.equal(b.tgtOut[n0 * 2], EOS);
    for (let t = n0 + 1; t < b.T; t++) {
      assert.equal(b.tgtOut[t * 2], IGNORE);
      assert.equal(b.tgtIn[t * 2], PAD);
    }
    const src = new G2PBatches(data.train.slice(0, 3000), 32, true, 7);
    // a batch depends on (epoch, index) only: not on what was read before, nor on the instance
    const b25 = src.get(2, 5).words;
    src.get(3, 5);
    src.get(0, 1);
    assert.deepEqual(src.get(2, 5).words, b25);
    assert.deepEqual(new G2PBatches(data.train.slice(0, 3000), 32, true, 7).get(2, 5).words, b25);
    assert.notDeepEqual(src.get(3, 5).words, src.get(2, 5).words);
    // every pair exactly once per epoch
    const seen = new Map<string, number>();
    for (let i = 0; i < src.numBatches; i++) for (const w of src.get(1, i).words) seen.set(w, (seen.get(w) ?? 0) + 1);
    for (const w of data.train.slice(0, 3000)) assert.equal(seen.get(w.word), w.prons.length);
    // bucketing keeps source lengths within a batch close
    const spread = Array.from({ length: src.numBatches }, (_, i) => {
      const L = src.get(0, i).srcLengths;
      return Math.max(...L) - Math.min(...L);
    });
    assert.ok(spread.reduce((a, c) => a + c, 0) / spread.length <= 1.5, 'mean length spread within batches is small');
    assert.throws(() => src.get(0, src.numBatches), /outside/);
  });
});

describe('Seq2Seq model', () => {
  const words: G2PWord[] = [
    { word: 'AB', src: Int32Array.from([1, 2]), prons: [Int32Array.from([3, 4, 5])] },
    { word: 'BCA', src: Int32Array.from([2, 3, 1]), prons: [Int32Array.from([4])] },
    { word: 'C', src: Int32Array.from([3]), prons: [Int32Array.from([5, 3])] },
  ];

  for (const [cell, attention] of [['lstm', 'additive'], ['gru', 'general'], ['lstm', 'dot']] as const) {
    test(`gradcheck of the whole model (${cell}, ${attention} attention, float64, masked sources)`, () => {
      const model = new Seq2Seq({ srcVocabSize: 4, tgtVocabSize: 6, embeddingDim: 3, encoderHidden: 2, decoderHidden: 4, attnDim: 3, cell, attention }, { dtype: 'float64', rng: new Rng(9) });
      const batch = makeG2PBatch(words.map((w) => ({ w, pron: 0 })));
      gradcheck(() => model.loss(batch), model.parameters(), { name: `seq2seq ${cell}`, atol: 1e-6, rtol: 1e-4 });
    });
  }

  test('registry spec: options validated (strings coerced), trainOptions returned', () => {
    assert.equal(seq2seqTaskSpec.topology, 'many-to-many');
    assert.equal(seq2seqTaskSpec.defaults.cell, 'lstm');
    assert.throws(() => seq2seqTaskSpec.build({ cells: 'gru' }), /unknown option 'cells'/);
    assert.throws(() => seq2seqTaskSpec.build({ cell: 'rnn' }), /'cell' must be 'lstm' or 'gru', got "rnn"/);
    const b = seq2seqTaskSpec.build({ trainLimit: '40', testSize: '50', valSize: '20', embeddingDim: 8, encoderHidden: 8, decoderHidden: 16, attnDim: 8, cell: 'gru', epochs: '2' });
    assert.deepEqual(b.trainOptions, {
      optimizer: 'adam', lr: 0.003, epochs: 2, clipNorm: 5, seed: 1,
      schedule: { type: 'CosineAnnealingLR', tMax: 2 * b.train.numBatches, etaMin: 0.003 / 100 }, // option cosine: true (the default)
    });
    assert.equal(seq2seqTaskSpec.build({ trainLimit: 40, testSize: 50, valSize: 20, cosine: false }).trainOptions.schedule, undefined);
    // labelSmoothing reaches the training loss only
    const lb = seq2seqTaskSpec.build({ trainLimit: 40, testSize: 50, valSize: 20, labelSmoothing: 0.1, dropout: 0 });
    const ls = lb.task as Seq2SeqTask;
    const batch = lb.train.get(0, 0);
    assert.equal(ls.step(batch).loss.item(), ls.model.loss(batch, 0.1).item());
    assert.notEqual(ls.step(batch).loss.item(), ls.model.loss(batch).item());
    assert.throws(() => seq2seqTaskSpec.build({ labelSmoothing: 1 }), /'labelSmoothing' must be a finite number in \[0, 1\)/);
    assert.equal(b.val.numBatches, 1);
    assert.ok(b.test);
    assert.equal((b.task as Seq2SeqTask).model.config.cell, 'gru');
  });

  test('config errors name the field', () => {
    assert.throws(() => new Seq2Seq({ srcVocabSize: 4, tgtVocabSize: 6, cell: 'rnn' as never }), /'cell' must be 'lstm' or 'gru'/);
    assert.throws(() => new Seq2Seq({ srcVocabSize: 4, tgtVocabSize: 6, heads: 2 } as never), /unknown field 'heads'/);
    assert.throws(() => new Seq2Seq({ srcVocabSize: 0, tgtVocabSize: 6 }), /'srcVocabSize'/);
    assert.throws(() => buildSeq2Seq({ batchsize: 3 } as never), /unknown option 'batchsize'/);
    // the library builder takes the registry's names (seed: the model's; splitSeed: the data's)
    assert.throws(() => buildSeq2Seq({ modelSeed: 3 } as never), /unknown option 'modelSeed'/);
    assert.throws(() => buildSeq2Seq({ splitSeed: -1 }), /option 'splitSeed' must be a non-negative integer/);
  });

  test('buildSeq2Seq and the registry entry share one set of defaults', () => {
    assert.deepEqual(seq2seqTaskSpec.defaults, SEQ2SEQ_DEFAULTS);
    assert.equal(SEQ2SEQ_DEFAULTS.splitSeed, 20150101);
    assert.equal(SEQ2SEQ_DEFAULTS.seed, 1);
  });

  test('learns a tiny G2P set within seconds; greedy, beam, predict and a model file agree', () => {
    const { task, train, data } = buildSeq2Seq({ trainLimit: 48, testSize: 300, valSize: 100, embeddingDim: 16, encoderHidden: 24, decoderHidden: 48, attnDim: 24, batchSize: 16, maxWordLength: 6 });
    const { losses } = quickFit(task, train, { steps: 120, lr: 1e-2 });
    const first = losses.slice(0, 3).reduce((a, b) => a + b, 0) / 3;
    const last = losses.slice(-6).reduce((a, b) => a + b, 0) / 6;
    assert.ok(last < 0.35 * first, `loss fell from ${first.toFixed(3)} to ${last.toFixed(3)}`);
    const trainEval = new G2PBatches(data.train, 64, false);
    const greedy = task.evaluate(trainEval);
    // On these 48 training words (model seeds 1–8): greedy WER 0–0.083, PER 0–0.047; beam (width 3)
    // WER 0–0.125, PER 0–0.038. Seed 1, used here: greedy WER 0, PER 0; beam WER 0.042, PER 0.014.
    assert.ok(greedy.per < 0.1, `training-set PER ${greedy.per}`);
    assert.ok(greedy.wer <= 0.1, `training-set WER ${greedy.wer}`);
    task.beamWidth = 3;
    const beam = task.evaluate(trainEval);
    assert.ok(beam.per <= 0.05 && beam.per <= greedy.per + 0.05, `beam PER ${beam.per} vs greedy ${greedy.per}`);
    assert.ok(beam.wer <= 0.15, `beam WER ${beam.wer}`);
    task.beamWidth = 1;
    // predict = decode of the same words
    const words = data.train.slice(0, 5).map((w) => w.word.toLowerCase());
    const pred = task.predict(words);
    assert.equal(pred.length, 5);
    for (const p of pred) assert.match(p, /^([A-Z]+( [A-Z]+)*)?$/);
    assert.throws(() => task.predict(['ab1']), /character '1'/);
    // model file round trip
    const dir = mkdtempSync(join(tmpdir(), 'recur-s2s-'));
    try {
      const path = join(dir, 'g2p.safetensors');
      saveTask(task, path);
      const { task: loaded } = seq2seqTaskSpec.load(loadModelFile(path));
      assert.ok(loaded instanceof Seq2SeqTask);
      assert.deepEqual(loaded.predict(words), pred);
      assert.deepEqual(seq2seqTaskSpec.predict(loaded, words), pred);
      assert.deepEqual(loadSeq2Seq(loadModelFile(path)).task.describe().config, task.describe().config);
      // the registry's saveTask names the task in the config
      assert.equal(taskNameOf(task.describe().config), 'seq2seq');
      saveTask(task, path);
      assert.deepEqual(seq2seqTaskSpec.predict(seq2seqTaskSpec.load(loadModelFile(path)).task, words), pred);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
