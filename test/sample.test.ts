/**
 * Inference utilities: token sampling (greedy, temperature, top-k, top-p), the generic
 * autoregressive loop, and streaming a recurrent stack one step at a time (equal to the full pass,
 * with a state that survives JSON exactly).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Embedding, GRU, LSTM, Linear, RNN, Rng, Tensor, reshape, slice, tensor } from '../src/index.ts';
import { generate, greedy, probabilities, sample } from '../src/infer/sample.ts';
import { StreamState, StreamingRecurrent } from '../src/infer/stream.ts';
import { assertClose, randomTensor } from './helpers/gradcheck.ts';

test('greedy takes the largest logit, the lowest id on ties', () => {
  assert.equal(greedy([0.1, 3, -2, 3]), 1);
  assert.equal(greedy(tensor([5, 1, 2])), 0);
  assert.equal(sample([1, 9, 2], { temperature: 0, rng: new Rng(1) }), 1);
  assert.equal(sample([1, 9, 2], { topK: 1, rng: new Rng(1) }), 1);
});

test('probabilities: softmax with temperature, then top-k, then top-p, renormalised', () => {
  const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
  assertClose(probabilities(logits), [0.5, 0.3, 0.15, 0.05], 1e-12, 'plain softmax');
  const hot = probabilities(logits, { temperature: 0.5 }); // p^2 renormalised
  const z = 0.25 + 0.09 + 0.0225 + 0.0025;
  assertClose(hot, [0.25 / z, 0.09 / z, 0.0225 / z, 0.0025 / z], 1e-12, 'temperature 0.5');
  assertClose(probabilities(logits, { topK: 2 }), [0.5 / 0.8, 0.3 / 0.8, 0, 0], 1e-12, 'top-2');
  // top-p 0.79: 0.5 + 0.3 reaches it → two tokens; 0.81 needs the third.
  assertClose(probabilities(logits, { topP: 0.79 }), [0.5 / 0.8, 0.3 / 0.8, 0, 0], 1e-12, 'top-p 0.79');
  assertClose(probabilities(logits, { topP: 0.81 }), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], 1e-12, 'top-p 0.81');
  assertClose(probabilities(logits, { topP: 0.1 }), [1, 0, 0, 0], 0, 'top-p keeps at least one');
  assertClose(probabilities(logits, { topK: 3, topP: 0.9 }), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], 1e-12, 'top-k then top-p');
  assertClose(probabilities(logits, { temperature: 0 }), [1, 0, 0, 0], 0, 'temperature 0 is one-hot');
  assertClose(probabilities([1e4, 0, -1e4]), [1, 0, 0], 1e-300, 'large logits do not overflow');
});

test('sample draws from that distribution, reproducibly from the seed', () => {
  const logits = [0, Math.log(3), -Infinity, Math.log(6)]; // 0.1, 0.3, 0, 0.6
  const counts = [0, 0, 0, 0];
  const rng = new Rng(7);
  for (let i = 0; i < 20000; i++) counts[sample(logits, { rng })]++;
  assert.equal(counts[2], 0);
  assertClose(counts.map((c) => c / 20000), [0.1, 0.3, 0, 0.6], 0.015, 'empirical frequencies');
  const a = Array.from({ length: 50 }, ((r) => () => sample(logits, { rng: r, topP: 0.9 }))(new Rng(3)));
  const b = Array.from({ length: 50 }, ((r) => () => sample(logits, { rng: r, topP: 0.9 }))(new Rng(3)));
  assert.deepEqual(a, b);
  assert.ok(a.every((t) => t === 1 || t === 3), 'a.every((t) => t === 1 || t === 3)');
});

test('sample rejects bad options, naming them', () => {
  assert.throws(() => sample([1, 2], { temperature: -1 }), /'temperature' must be a finite number ≥ 0/);
  assert.throws(() => sample([1, 2], { topK: 0 }), /'topK' must be a positive integer/);
  assert.throws(() => sample([1, 2], { topP: 1.5 }), /'topP' must be a number in \(0, 1\]/);
  assert.throws(() => sample([1, 2], { top_p: 0.5 } as never), /unknown option 'top_p'/);
  assert.throws(() => sample([], {}), /non-empty/);
});

/** A deterministic toy "model": the next token is (token + 1) mod V, strongly preferred. */
function countingStep(V: number) {
  return (token: number, state: number | null) => {
    const logits = new Float64Array(V).fill(-10);
    logits[(token + 1) % V] = 10;
    return { logits, state: (state ?? 0) + 1 };
  };
}

test('generate: prime, maxLength, stop token, state threading, seeded sampling', () => {
  const step = countingStep(6);
  const r = generate({ step, prime: [0, 1], maxLength: 5, temperature: 0 });
  assert.deepEqual(r.tokens, [2, 3, 4, 5, 0]);
  assert.equal(r.stopped, false);
  assert.equal(r.state, 2 + 4); // two prime tokens, then four generated tokens fed back (not the last)
  const s = generate({ step, prime: [0], maxLength: 10, stopToken: 4, temperature: 0 });
  assert.deepEqual(s.tokens, [1, 2, 3]);
  assert.equal(s.stopped, true);
  assert.deepEqual(generate({ step, prime: [3], maxLength: 0 }).tokens, []);
  // prefill is used for the prime when given
  let prefilled: number[] = [];
  const p = generate({ step, prefill: (toks, st) => ((prefilled = [...toks]), step(toks[toks.length - 1], st)), prime: [2, 3], maxLength: 2, temperature: 0 });
  assert.deepEqual(prefilled, [2, 3]);
  assert.deepEqual(p.tokens, [4, 5]);
  assert.throws(() => generate({ step, prime: [], maxLength: 3 }), /'prime' must hold at least one token/);
  assert.throws(() => generate({ step, prime: [1], maxLength: -1 }), /'maxLength'/);
  assert.throws(() => generate({ step, prime: [1], maxLength: 1, beam: 3 } as never), /unknown option 'beam'/);
});

test('generate with a real recurrent model: same seed, same text; greedy is deterministic', () => {
  const rng = new Rng(2);
  const V = 9;
  const emb = new Embedding(V, 4, { rng });
  const lstm = new LSTM({ inputSize: 4, hiddenSize: 8, rng });
  const head = new Linear(8, V, { rng });
  const stream = new StreamingRecurrent(lstm);
  const step = (token: number, state: StreamState | null) => {
    const { y, state: next } = stream.step(emb.forward([token], [1]), state);
    return { logits: head.forward(y), state: next };
  };
  const run = (seed: number) => generate({ step, prime: [1, 2, 3], maxLength: 20, temperature: 0.9, topP: 0.95, rng: new Rng(seed) }).tokens;
  assert.deepEqual(run(5), run(5));
  assert.notDeepEqual(run(5), run(6));
  const g = generate({ step, prime: [1, 2, 3], maxLength: 10, temperature: 0 }).tokens;
  assert.deepEqual(g, generate({ step, prime: [1, 2, 3], maxLength: 10, temperature: 0 }).tokens);
  assert.equal(g.length, 10);
});

// ---- streaming ----------------------------------------------------------------------------------

for (const [name, make] of [
  ['LSTM', (rng: Rng) => new LSTM({ inputSize: 3, hiddenSize: 5, numLayers: 2, rng })],
  ['GRU', (rng: Rng) => new GRU({ inputSize: 3, hiddenSize: 5, numLayers: 2, rng })],
  ['RNN relu', (rng: Rng) => new RNN({ inputSize: 3, hiddenSize: 5, nonlinearity: 'relu', rng })],
  ['LSTM batchFirst', (rng: Rng) => new LSTM({ inputSize: 3, hiddenSize: 5, batchFirst: true, rng })],
] as const) {
  test(`streaming ${name} one step at a time equals the full-sequence forward`, () => {
    const rng = new Rng(9);
    const layer = make(rng);
    const T = 7, B = 2;
    const xs = randomTensor([T, B, 3], rng);
    const x32 = tensor(xs.toArray(), [T, B, 3]);
    const full = layer.batchFirst ? layer.forward(tensor(permuteTB(x32.toArray(), T, B, 3), [B, T, 3])) : layer.forward(x32);
    const outFull = layer.batchFirst ? permuteTB(full.output.toArray(), B, T, 5) : full.output.toArray();
    const s = new StreamingRecurrent(layer);
    let state: StreamState | null = null;
    const ys: number[] = [];
    for (let t = 0; t < T; t++) {
      const r: { y: Tensor; state: StreamState } = s.step(reshape(slice(x32, 0, t, 1), [B, 3]), state);
      assert.deepEqual(r.y.shape, [B, 5]);
      ys.push(...r.y.toArray());
      // Round-trip the state through JSON every step: it must not change anything.
      state = StreamState.fromJSON(JSON.parse(JSON.stringify(r.state)));
    }
    assertClose(ys, outFull, 1e-6, 'outputs');
    assertClose(state!.h.toArray(), full.h.toArray(), 1e-6, 'final h');
    if (full.c) assertClose(state!.c!.toArray(), full.c.toArray(), 1e-6, 'final c');
  });
}

/** [A, Bn, F] → [Bn, A, F] on flat arrays. */
function permuteTB(a: ArrayLike<number>, A: number, Bn: number, F: number): number[] {
  const out = new Array<number>(A * Bn * F);
  for (let i = 0; i < A; i++) for (let j = 0; j < Bn; j++) for (let f = 0; f < F; f++) out[(j * A + i) * F + f] = a[(i * Bn + j) * F + f];
  return out;
}

test('stream state: JSON is plain nested arrays and restores bit-exactly; mismatches are refused', () => {
  const rng = new Rng(4);
  const lstm = new LSTM({ inputSize: 2, hiddenSize: 3, numLayers: 2, rng });
  const s = new StreamingRecurrent(lstm);
  const { state } = s.step(tensor(randomTensor([4, 2], rng).toArray(), [4, 2]));
  const json = state.toJSON();
  assert.equal(json.h.length, 2);
  assert.equal(json.h[0].length, 4);
  assert.equal(json.h[0][0].length, 3);
  assert.ok(Array.isArray(json.c), 'Array.isArray(json.c)');
  const back = StreamState.fromJSON(JSON.parse(JSON.stringify(json)));
  assert.deepEqual(Array.from(back.h.toArray()), Array.from(state.h.toArray()));
  assert.deepEqual(Array.from(back.c!.toArray()), Array.from(state.c!.toArray()));
  assert.equal(back.h.dtype, 'float32');
  assert.equal(back.h.node, null);
  // Steps run without recording gradients.
  assert.equal(state.h.requiresGrad, false);
  assert.throws(() => s.step(tensor([1, 2, 3, 4], [2, 2]), state), /state is \[2, 4, 3\], this stack needs \[numLayers = 2, B = 2, H = 3\]/);
  assert.throws(() => s.step(tensor([1, 2, 3], [1, 3])), /input must be \[B, 2\]/);
  assert.throws(() => StreamState.fromJSON({ ...json, h: [[[1, 2]]] }), /'c' has shape/);
  assert.throws(() => StreamState.fromJSON({ format: 'x' }), /not a stream state/);
  assert.throws(() => new StreamingRecurrent(new GRU({ inputSize: 2, hiddenSize: 3, bidirectional: true })), /bidirectional/);
  const gru = new StreamingRecurrent(new GRU({ inputSize: 2, hiddenSize: 3, rng }));
  assert.throws(() => gru.step(tensor([1, 2], [1, 2]), new StreamState(tensor([0, 0, 0], [1, 1, 3]), tensor([0, 0, 0], [1, 1, 3]))), /GRU state has no c/);
  const z = s.initialState(3);
  assert.deepEqual(z.h.shape, [2, 3, 3]);
  assert.deepEqual(Array.from(z.c!.toArray()), new Array(18).fill(0));
});
