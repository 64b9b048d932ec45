/**
 * Character-level language modelling: the vocabulary, the batchers, the CharLM model (learning,
 * save/load, generation) and its config.
 */
import { loadModelFile } from '../src/io/files.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backward, crossEntropy, noGrad, Rng } from '../src/index.ts';
import { saveModel } from '../src/io/files.ts';
import { saveSafetensors } from '../src/io/files.ts';
import { Adam } from '../src/train/optim.ts';
import { clipGradNorm } from '../src/train/clip.ts';
import { CharBatcher, CharVocab, VocabError, streamBatches, unigramEntropy } from '../src/data/text.ts';
import { CharLM, CharLMConfigError, checkCharLMConfig, evaluateCharLM, loadCharLM, sampleLogits, type CharLMState } from '../src/models/charlm.ts';

const TEXT = 'the cat sat on the mat. the rat sat on the cat. '.repeat(12);

function tmp(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'recur-charlm-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function smallModel(vocabSize: number, seed = 0, numLayers = 1): CharLM {
  return new CharLM({ vocabSize, embeddingDim: 8, hiddenSize: 16, numLayers, rng: new Rng(seed) });
}

test('CharVocab: build, encode/decode round trip, JSON round trip', () => {
  const v = CharVocab.fromText('hello, wörld — ok');
  assert.deepEqual([...v.chars], [...new Set('hello, wörld — ok')].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  const s = 'world, hello — ö';
  const ids = v.encode(s);
  assert.ok(ids instanceof Int32Array);
  assert.equal(ids.length, [...s].length);
  assert.equal(v.decode(ids), s);
  const back = CharVocab.fromJSON(JSON.parse(JSON.stringify(v)));
  assert.deepEqual(back.chars, v.chars);
  assert.equal(back.unk, null);
  assert.deepEqual([...back.encode(s)], [...ids]);
  // Code points, not UTF-16 units.
  const e = CharVocab.fromText('a🐋b');
  assert.equal(e.size, 3);
  assert.equal(e.decode(e.encode('🐋ab')), '🐋ab');
});

test('CharVocab: an unknown character is an error naming it and its position; unk maps it', () => {
  const v = CharVocab.fromText('abc');
  assert.throws(() => v.encode('abxc'), (err: Error) => {
    assert.ok(err instanceof VocabError);
    assert.match(err.message, /"x"/);
    assert.match(err.message, /U\+0078/);
    assert.match(err.message, /position 2\b/);
    return true;
  });
  // Positions count characters (code points).
  assert.throws(() => CharVocab.fromText('a🐋').encode('🐋a🐋z'), /position 3\b/);
  const u = CharVocab.fromText('abc', { unk: '?' });
  assert.equal(u.size, 4);
  assert.equal(u.decode(u.encode('abzc')), 'ab?c');
  assert.deepEqual(CharVocab.fromJSON(u.toJSON()).toJSON(), { chars: [...u.chars], unk: '?' });
  assert.throws(() => v.decode([0, 7]), /id 7 at position 1/);
  assert.throws(() => CharVocab.fromJSON({ chars: ['a', 'a'], unk: null }), /appears twice/);
  assert.throws(() => CharVocab.fromJSON({ chars: ['ab'], unk: null }), /single character/);
  assert.throws(() => CharVocab.fromJSON({ chars: ['a'], unk: 'z' }), /not in the vocabulary/);
});

test('CharBatcher: [T, B] time-major windows, targets are the inputs shifted by one, seeded', () => {
  const ids = Int32Array.from({ length: 500 }, (_, i) => i);
  const T = 7, B = 5;
  const b1 = new CharBatcher(ids, { seqLen: T, batchSize: B, rng: new Rng(3) });
  const b2 = new CharBatcher(ids, { seqLen: T, batchSize: B, rng: new Rng(3) });
  for (let k = 0; k < 20; k++) {
    const x = b1.next();
    assert.equal(x.T, T);
    assert.equal(x.B, B);
    assert.equal(x.inputs.length, T * B);
    assert.equal(x.targets.length, T * B);
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) {
        // consecutive ids: each column is a window of the text
        assert.equal(x.targets[t * B + b], x.inputs[t * B + b] + 1);
        if (t > 0) assert.equal(x.inputs[t * B + b], x.inputs[(t - 1) * B + b] + 1);
        if (t + 1 < T) assert.equal(x.targets[t * B + b], x.inputs[(t + 1) * B + b]);
      }
    }
    assert.ok(Math.max(...x.targets) < ids.length);
    const y = b2.next();
    assert.deepEqual(y.inputs, x.inputs);
    assert.deepEqual(y.targets, x.targets);
  }
  assert.throws(() => new CharBatcher(ids.subarray(0, 7), { seqLen: 7, batchSize: 1 }), /at least/);
});

test('streamBatches: B contiguous streams, consecutive chunks continue each stream', () => {
  const ids = Int32Array.from({ length: 103 }, (_, i) => i);
  const chunks = [...streamBatches(ids, 4, 3)];
  // (103 - 1) / 3 = 34 targets per stream: chunks of 4, 4, ..., 2
  assert.equal(chunks.length, 9);
  assert.equal(chunks.at(-1)!.T, 2);
  for (let b = 0; b < 3; b++) {
    const col = chunks.flatMap((c) => Array.from({ length: c.T }, (_, t) => c.inputs[t * c.B + b]));
    assert.deepEqual(col, Array.from({ length: 34 }, (_, i) => b * 34 + i));
    const tgt = chunks.flatMap((c) => Array.from({ length: c.T }, (_, t) => c.targets[t * c.B + b]));
    assert.deepEqual(tgt, col.map((i) => i + 1));
  }
  assert.ok(Math.abs(unigramEntropy([0, 1, 0, 1], 2) - Math.LN2) < 1e-12);
});

test('CharLM: PyTorch parameter names and shapes, config round trip and validation', () => {
  const m = new CharLM({ vocabSize: 11, embeddingDim: 5, hiddenSize: 7, numLayers: 2, rng: new Rng(0) });
  assert.deepEqual(
    m.namedParameters().map(([n, p]) => [n, [...p.shape]]),
    [
      ['embedding.weight', [11, 5]],
      ['lstm.weight_ih_l0', [28, 5]], ['lstm.weight_hh_l0', [28, 7]], ['lstm.bias_ih_l0', [28]], ['lstm.bias_hh_l0', [28]],
      ['lstm.weight_ih_l1', [28, 7]], ['lstm.weight_hh_l1', [28, 7]], ['lstm.bias_ih_l1', [28]], ['lstm.bias_hh_l1', [28]],
      ['head.weight', [11, 7]], ['head.bias', [11]],
    ],
  );
  const cfg = m.config;
  assert.deepEqual(cfg, { arch: 'charlm', vocabSize: 11, embeddingDim: 5, hiddenSize: 7, numLayers: 2, cell: 'lstm' });
  const m2 = CharLM.fromConfig(JSON.parse(JSON.stringify(cfg)));
  assert.deepEqual(m2.config, cfg);
  assert.equal(m2.numParameters(), m.numParameters());
  const bad: [unknown, RegExp][] = [
    [null, /missing/],
    [{ ...cfg, arch: 'gpt' }, /arch/],
    [{ ...cfg, hiddenSize: 0 }, /hiddenSize/],
    [{ ...cfg, vocabSize: 2.5 }, /vocabSize/],
    [{ ...cfg, numLayers: undefined }, /numLayers/],
    [{ ...cfg, cell: 'transformer' }, /cell/],
    [{ ...cfg, extra: 1 }, /unknown field 'extra'/],
  ];
  for (const [c, re] of bad) assert.throws(() => CharLM.fromConfig(c), (e: Error) => e instanceof CharLMConfigError && re.test(e.message));
  assert.throws(() => checkCharLMConfig([1, 2]), CharLMConfigError);
});

test('CharLM: a tiny model learns a tiny repetitive text with Adam', () => {
  const vocab = CharVocab.fromText(TEXT);
  const ids = vocab.encode(TEXT);
  const model = smallModel(vocab.size, 1);
  const opt = new Adam(model.namedParameters(), { lr: 0.02 });
  const batcher = new CharBatcher(ids, { seqLen: 16, batchSize: 8, rng: new Rng(2) });
  const losses: number[] = [];
  for (let step = 0; step < 60; step++) {
    const b = batcher.next();
    const loss = model.loss(b.inputs, b.targets, b.T, b.B);
    opt.zeroGrad();
    backward(loss);
    clipGradNorm(model.namedParameters(), 5);
    opt.step();
    losses.push(loss.item());
  }
  const first = losses[0];
  const last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(Math.abs(first - Math.log(vocab.size)) < 0.5, `initial loss ${first} should be near ln V = ${Math.log(vocab.size)}`);
  assert.ok(last < 0.5 * first, `loss after 60 steps ${last.toFixed(3)} should be well below the first ${first.toFixed(3)}`);
  assert.ok(last < unigramEntropy(ids, vocab.size), 'beats the context-free baseline');
  const ev = evaluateCharLM(model, ids, { seqLen: 16, batchSize: 4 });
  assert.ok(ev.loss < 0.6 * first && Math.abs(ev.bpc - ev.loss / Math.LN2) < 1e-12, `held-in eval ${ev.loss}`);
});

test('CharLM: save -> loadCharLM rebuilds the model with identical logits and vocab', () => {
  const { dir, done } = tmp();
  try {
    const vocab = CharVocab.fromText(TEXT);
    const model = new CharLM({ vocabSize: vocab.size, embeddingDim: 6, hiddenSize: 10, numLayers: 2, rng: new Rng(5) });
    const path = join(dir, 'm.safetensors');
    saveModel(path, model, { config: model.config, vocab: vocab.toJSON() });
    const loaded = loadCharLM(loadModelFile(path));
    assert.deepEqual(loaded.model.config, model.config);
    assert.deepEqual(loaded.vocab!.toJSON(), vocab.toJSON());
    const ids = vocab.encode('the cat sat on the mat');
    const T = 11, B = 2;
    const a = noGrad(() => model.forward(ids, T, B).logits.toArray());
    const b = noGrad(() => loaded.model.forward(ids, T, B).logits.toArray());
    assert.deepEqual(b, a);

    // Files that do not describe a CharLM are refused with the reason.
    const plain = join(dir, 'plain.safetensors');
    saveSafetensors(plain, { w: { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
    assert.throws(() => loadCharLM(loadModelFile(plain)), /no recur\.config/);
    const wrong = join(dir, 'wrong.safetensors');
    saveModel(wrong, model, { config: { ...model.config, hiddenSize: 12 } });
    assert.throws(() => loadCharLM(loadModelFile(wrong)), /lstm\.weight_ih_l0' has shape \[40, 6\], the config implies \[48, 6\]/);
  } finally {
    done();
  }
});

test('CharLM.generate: deterministic for a seed; streaming with carried state equals full re-runs', () => {
  const vocab = CharVocab.fromText(TEXT);
  const model = smallModel(vocab.size, 7, 2);
  const opts = { prime: 'the c', vocab, length: 40, temperature: 1, rng: new Rng(11) };
  const g1 = model.generate({ ...opts, rng: new Rng(11) });
  const g2 = model.generate({ ...opts, rng: new Rng(11) });
  assert.equal(typeof g1, 'string');
  assert.equal([...g1].length, 40);
  assert.equal(g1, g2);
  const g3 = model.generate({ ...opts, rng: new Rng(12) });
  assert.notEqual(g3, g1, 'another seed gives another sample (for this model)');
  // ids in, ids out; topK = 1 and temperature 0 are greedy
  const primeIds = vocab.encode('the c');
  const greedy = model.generate({ prime: primeIds, length: 25, temperature: 0, rng: new Rng(0) });
  assert.ok(greedy instanceof Int32Array);
  assert.deepEqual(model.generate({ prime: primeIds, length: 25, topK: 1, rng: new Rng(99) }), greedy);
  // Greedy decoding with the carried state must pick, at every step, the argmax of the logits of
  // the whole sequence so far run at once.
  const seq = [...primeIds];
  for (let i = 0; i < greedy.length; i++) {
    const logits = noGrad(() => model.forward(seq, seq.length, 1).logits.toArray());
    const last = logits.subarray((seq.length - 1) * vocab.size);
    assert.equal(greedy[i], sampleLogits(last, 0, undefined, new Rng(0)), `step ${i}`);
    seq.push(greedy[i]);
  }
  // Next-token logits: one step at a time with the state carried == the full sequence at once.
  const full = noGrad(() => model.forward(seq, seq.length, 1).logits.toArray());
  let state: CharLMState | null = null;
  noGrad(() => {
    for (let t = 0; t < seq.length; t++) {
      const r = model.forward([seq[t]], 1, 1, state);
      state = { h: r.h, c: r.c };
      const step = r.logits.toArray();
      for (let v = 0; v < vocab.size; v++) {
        const want = full[t * vocab.size + v];
        assert.ok(Math.abs(step[v] - want) <= 1e-5 * (1 + Math.abs(want)), `t=${t} v=${v}: ${step[v]} vs ${want}`);
      }
    }
  });
  assert.throws(() => model.generate({ prime: '', vocab, length: 3, rng: new Rng(0) }), /prime must not be empty/);
  assert.throws(() => model.generate({ prime: 'the z', vocab, length: 3, rng: new Rng(0) }), /unknown character "z".*position 4/);
  assert.throws(() => model.generate({ prime: 'the', vocab, length: 3, temperature: -1, rng: new Rng(0) }), /temperature/);
  assert.equal(model.training, true, 'generate restores training mode');
});

test('sampleLogits: temperature and top-k', () => {
  const logits = [0, 3, 1, 2.9];
  assert.equal(sampleLogits(logits, 0, undefined, new Rng(0)), 1);
  const counts = [0, 0, 0, 0];
  const rng = new Rng(4);
  for (let i = 0; i < 2000; i++) counts[sampleLogits(logits, 1, 2, rng)]++;
  assert.equal(counts[0] + counts[2], 0, 'top-2 never picks the others');
  assert.ok(counts[1] > 800 && counts[3] > 800, `both top tokens are drawn: ${counts}`);
  // a low temperature concentrates on the best
  const cold = [0, 0, 0, 0];
  for (let i = 0; i < 500; i++) cold[sampleLogits(logits, 0.05, undefined, rng)]++;
  assert.ok(cold[1] > 450, `${cold}`);
});

test('evaluateCharLM: equals the mean cross-entropy for one stream and one chunk', () => {
  const vocab = CharVocab.fromText(TEXT);
  const ids = vocab.encode(TEXT.slice(0, 21));
  const model = smallModel(vocab.size, 3);
  const ev = evaluateCharLM(model, ids, { seqLen: 64, batchSize: 1 });
  assert.equal(ev.tokens, 20);
  const direct = noGrad(() => crossEntropy(model.forward(ids.subarray(0, 20), 20, 1).logits, ids.subarray(1, 21)).item());
  assert.ok(Math.abs(ev.loss - direct) < 1e-6, `${ev.loss} vs ${direct}`);
  // chunked with carried state: the same as one long chunk
  const ev2 = evaluateCharLM(model, ids, { seqLen: 3, batchSize: 1 });
  assert.ok(Math.abs(ev2.loss - direct) < 1e-5, `${ev2.loss} vs ${direct}`);
});
