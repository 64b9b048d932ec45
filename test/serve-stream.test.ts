// The task stream capability (src/models/stream.ts): stepping a stream gives what one forward pass
// over the whole sequence gives, a batched step gives what each stream stepped alone gives, and a
// state continues exactly through its JSON form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../src/tensor/tensor.ts';
import { noGrad } from '../src/autograd/tape.ts';
import { buildLMFromText } from '../src/models/lm.ts';
import { ForecastTask, type ForecastConfig } from '../src/models/forecaster.ts';
import { buildFeedForward } from '../src/models/feedforward.ts';
import { denormalizeRow } from '../src/data/loaders.ts';
import { streamOf, TaskStreamError, type CharLMStepOutput, type ForecastStepOutput } from '../src/models/stream.ts';

const TEXT = 'the cat sat on the mat. the rat sat on the cat. '.repeat(12);

function lmTask(cell: 'lstm' | 'gru', numLayers: number) {
  return buildLMFromText({ cell, embeddingDim: 6, hiddenSize: 10, numLayers, seqLen: 8, batchSize: 2, stepsPerEpoch: 1, evalBatchSize: 2, seed: 3 }, TEXT).task;
}

/** softmax in float64 and the k best, as the stream computes them (an independent reference). */
function refTop(logits: ArrayLike<number>, k: number, decode: (ids: number[]) => string) {
  const l = Array.from(logits);
  const max = Math.max(...l);
  const total = l.reduce((s, v) => s + Math.exp(v - max), 0);
  return l.map((v, i) => ({ i, v })).sort((a, b) => b.v - a.v || a.i - b.i).slice(0, k).map(({ i, v }) => ({ char: decode([i]), p: Math.exp(v - max) / total }));
}

for (const [cell, L] of [['lstm', 2], ['gru', 1]] as const) {
  test(`charlm stream (${cell}, ${L} layer(s)): step by step = one forward pass over the whole text`, () => {
    const task = lmTask(cell, L);
    const s = streamOf(task, { top: 4 })!;
    assert.equal(s.kind, 'charlm');
    const text = 'the rat sat';
    const ids = task.vocab.encode(text);
    const full = noGrad(() => task.model.forward(ids, ids.length, 1)).logits.toArray(); // [T, 1, V]
    const V = task.model.vocabSize;
    let state: string | null = null;
    for (let t = 0; t < text.length; t++) {
      const r = s.step([text[t]], [state]);
      state = r.states[0];
      assert.deepEqual((r.outputs[0] as CharLMStepOutput).top, refTop(full.subarray(t * V, (t + 1) * V), 4, (i) => task.vocab.decode(i)), `step ${t}`);
    }
    // several characters in one step land on the same state as one character at a time
    const chunked = s.step(['the ra'], [null]);
    const rest = s.step(['t sat'], chunked.states);
    assert.equal(rest.states[0], state);
    assert.deepEqual((rest.outputs[0] as CharLMStepOutput).top, refTop(full.subarray((ids.length - 1) * V), 4, (i) => task.vocab.decode(i)));
  });
}

test('charlm stream: a batched step of streams in different states = each stream stepped alone', () => {
  const task = lmTask('lstm', 2);
  const s = streamOf(task)!;
  const prefixes = ['the', 'a', 'cat sat', '', 'mat.', 'the'];
  const states = prefixes.map((p) => (p ? s.step([p], [null]).states[0] : null));
  const inputs = ['t', 'x', 'on', 'the', ' ', 'e'];  // two lengths: two passes, rows interleaved
  const batched = s.step(inputs, states);
  inputs.forEach((x, b) => {
    const alone = s.step([x], [states[b]]);
    assert.deepEqual(batched.outputs[b], alone.outputs[0], `stream ${b}`);
    assert.equal(batched.states[b], alone.states[0], `stream ${b} state`);
  });
  // outputs are distributions: probabilities in (0, 1], descending
  for (const o of batched.outputs as CharLMStepOutput[]) {
    assert.equal(o.top.length, 5);
    for (let i = 1; i < 5; i++) assert.ok(o.top[i].p <= o.top[i - 1].p);
  }
});

test('charlm stream: input schema limits the text; a state of another model is refused by name', () => {
  const s = streamOf(lmTask('lstm', 2), { maxInputLength: 4 })!;
  assert.equal(s.check('').ok, false);
  assert.equal(s.check('abcde').ok, false);
  assert.equal(s.check(5).ok, false);
  assert.equal(s.check('abcd').ok, true);
  const other = streamOf(lmTask('gru', 1))!;
  const foreign = other.step(['a'], [null]).states[0];
  assert.throws(() => s.step(['a'], [foreign]), (e: Error) => e instanceof TaskStreamError && /this model needs \[2, 1, 10\] with c/.test(e.message));
  assert.throws(() => s.step(['a'], ['{"no":1}']), TaskStreamError);
  assert.throws(() => s.step(['a'], ['not json']), /not JSON/);
});

test('charlm stream: states are stored as base64 bytes (version 2); a version-1 state still continues; damaged states are refused', () => {
  const s = streamOf(lmTask('lstm', 2))!;
  const st = s.step(['the c'], [null]).states[0];
  const j = JSON.parse(st) as { version: number; dtype: string; shape: number[]; h: string; c: string };
  assert.deepEqual([j.version, j.dtype, j.shape], [2, 'float32', [2, 1, 10]]);
  const h = new Float32Array(new Uint8Array(Buffer.from(j.h, 'base64')).buffer);
  const c = new Float32Array(new Uint8Array(Buffer.from(j.c, 'base64')).buffer);
  assert.equal(h.length, 20);
  // the same state in version 1 (nested decimal arrays, as earlier servers stored it) gives the same step
  const rows = (a: Float32Array) => [[Array.from(a.subarray(0, 10))], [Array.from(a.subarray(10))]];
  const v1 = JSON.stringify({ format: 'recur.task_stream', version: 1, rnn: { format: 'recur.stream_state', version: 1, dtype: 'float32', h: rows(h), c: rows(c) } });
  assert.deepEqual(s.step(['at'], [v1]), s.step(['at'], [st]));
  const damaged = (patch: Record<string, unknown>) => JSON.stringify({ ...j, ...patch });
  assert.throws(() => s.step(['a'], [damaged({ h: j.h.slice(4) })]), /'h' must be the base64 of 20 float32 values/);
  assert.throws(() => s.step(['a'], [damaged({ h: `!${j.h.slice(1)}` })]), /'h' must be the base64 of 20 float32 values/);
  assert.throws(() => s.step(['a'], [damaged({ c: 7 })]), /'c' must be base64 or null/);
  assert.throws(() => s.step(['a'], [damaged({ dtype: 'int8' })]), /'dtype' must be 'float32' or 'float64'/);
  assert.throws(() => s.step(['a'], [damaged({ shape: [2, 1] })]), /'shape' must be three positive integers/);
  assert.throws(() => s.step(['a'], [damaged({ version: 3 })]), /version 1 or 2/);
  const nan = Float32Array.from(h);
  nan[3] = NaN;
  assert.throws(() => s.step(['a'], [damaged({ h: Buffer.from(nan.buffer).toString('base64') })]), /'h' holds a value that is not finite/);
});

const FCONFIG: ForecastConfig = {
  task: 'forecast', arch: 'rnn-forecaster', columns: ['hum', 'temp'], norm: { columns: ['hum', 'temp'], mean: [40, 20], std: [5, 2] },
  cell: 'lstm', hiddenSize: 8, numLayers: 2, dropout: 0, residual: true, deltaScale: [0.3, 0.2], context: 4,
};

// FCONFIG has no 'inputs' (as files written before the option): it reads 'level+change'
for (const reads of [undefined, 'change'] as const) test(`forecast stream (inputs ${reads ?? 'absent'}): row by row = one forward pass over the series; batched = alone`, () => {
  const task = new ForecastTask({ ...FCONFIG, ...(reads ? { inputs: reads } : {}) }, 5);
  assert.equal(task.model.rnn.inputSize, reads === 'change' ? 2 : 4);
  const s = streamOf(task)!;
  assert.equal(s.kind, 'forecast');
  const rows = [[41, 20.5], [42.5, 20.1], [40, 19], [39.2, 19.8], [44, 21]];
  const norm = rows.map((r) => r.map((v, f) => (v - FCONFIG.norm.mean[f]) / FCONFIG.norm.std[f]));
  const x = tensor(Float32Array.from(norm.flat()), [rows.length, 1, 2]);
  const full = noGrad(() => task.model.forward(x)).toArray();
  let state: string | null = null;
  const states: (string | null)[] = [null];
  for (let t = 0; t < rows.length; t++) {
    const r = s.step([rows[t]], [state]);
    state = r.states[0];
    states.push(state);
    assert.deepEqual((r.outputs[0] as ForecastStepOutput).next, denormalizeRow(full.subarray(t * 2, t * 2 + 2), FCONFIG.norm), `step ${t}`);
  }
  const inputs = [[40, 20], [41, 21], [39, 19], [45, 22]];
  const from = [states[0], states[2], states[5], states[1]];
  const batched = s.step(inputs, from);
  inputs.forEach((row, b) => {
    const alone = s.step([row], [from[b]]);
    assert.deepEqual(batched.outputs[b], alone.outputs[0]);
    assert.equal(batched.states[b], alone.states[0]);
  });
  assert.equal(s.check([1]).ok, false);
  assert.equal(s.check([1, Infinity]).ok, false);
  assert.equal(s.check([1, 2]).ok, true);
});

test('streamOf: a task that cannot stream (a classifier reads whole texts) gives null', () => {
  const split = { train: [{ text: 'ann', label: 0 }, { text: 'bob', label: 1 }], val: [{ text: 'cy', label: 0 }], test: [] };
  const { task } = buildFeedForward('feedforward', ['f', 'm'], { lowercase: true, hiddenSize: 4, dropout: 0, epochs: 1, lr: 0.01, clipNorm: 1, batchSize: 2, seed: 1 } as never, split);
  assert.equal(streamOf(task), null);
});
