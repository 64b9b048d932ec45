/**
 * Truncated BPTT helpers: stream splitting and windows, the carried state (reset, detach,
 * serialisation), and where gradients flow — with K = the whole sequence the gradients equal full
 * BPTT over the concatenated windows; with truncation no gradient crosses a boundary while the
 * forward values stay those of one uninterrupted pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Embedding, GRU, LSTM, Linear, Rng, Tensor, add, backward, concat, crossEntropy, dropout, mul, slice, sum } from '../src/index.ts';
import { StateCarry, StreamBatches, backwardCheckpointed, forwardTBPTT, splitStreams } from '../src/train/tbptt.ts';
import { assertClose, randomTensor } from './helpers/gradcheck.ts';

test('splitStreams cuts B equal contiguous streams; StreamBatches serves consecutive [T, B] windows', () => {
  const tokens = Array.from({ length: 23 }, (_, i) => i);
  const s = splitStreams(tokens, 3);
  assert.equal(s.L, 7);
  assert.deepEqual(Array.from(s.data.subarray(7, 14)), [7, 8, 9, 10, 11, 12, 13]);
  const src = new StreamBatches(tokens, { batchSize: 3, seqLen: 4 });
  assert.equal(src.numBatches, 2); // 6 input positions per stream: windows of 4 and 2
  const w0 = src.get(0, 0);
  assert.equal(w0.T, 4);
  assert.equal(w0.reset, true);
  // time-major: inputs[t·B + b]
  assert.deepEqual(Array.from(w0.inputs.subarray(0, 3)), [0, 7, 14]);
  assert.deepEqual(Array.from(w0.targets.subarray(0, 3)), [1, 8, 15]);
  const w1 = src.get(3, 1);
  assert.equal(w1.T, 2);
  assert.equal(w1.reset, false);
  assert.equal(w1.epoch, 3);
  // row 1 continues where window 0 stopped
  assert.deepEqual([w1.inputs[1], w1.inputs[4]], [11, 12]);
  assert.deepEqual([w1.targets[1], w1.targets[4]], [12, 13]);
  // windows depend on (epoch, index) only: a freshly built source serves the same ones
  const fresh = new StreamBatches(tokens, { batchSize: 3, seqLen: 4 });
  assert.deepEqual(src.get(0, 1), fresh.get(0, 1));
  assert.deepEqual(src.get(3, 1), w1);
  assert.notDeepEqual(src.get(0, 1), src.get(0, 0));
  assert.throws(() => src.get(0, 2), /index 2 is outside \[0, 2\)/);
  assert.throws(() => new StreamBatches(tokens, { batchSize: 3, seqLen: 4, shuffle: true } as never), /unknown option 'shuffle'/);
  assert.throws(() => splitStreams([1, 2, 3], 2), /cannot make 2 streams/);
});

/** Gradients of every parameter and of x after backward(loss). */
function grads(layer: LSTM | GRU, x: Tensor): number[][] {
  return [...layer.parameters().map((p) => Array.from(p.grad!.toArray())), Array.from(x.grad!.toArray())];
}

function weightedLoss(y: Tensor, w: Tensor): Tensor {
  return sum(mul(y, w));
}

for (const Kind of [LSTM, GRU]) {
  test(`${Kind.name}: K = whole sequence gives full-BPTT gradients over the concatenated windows`, () => {
    const rng = new Rng(3);
    const layer = new Kind({ inputSize: 3, hiddenSize: 4, numLayers: 2, dtype: 'float64', rng });
    const T = 4, B = 2, W = 3;
    const x = randomTensor([W * T, B, 3], rng, { requiresGrad: true });
    const w = randomTensor([W * T, B, 4], rng);
    // Reference: one pass over the whole (concatenated) sequence.
    layer.zeroGrad();
    backward(weightedLoss(layer.forward(x).output, w));
    const full = grads(layer, x);

    // W windows with the state carried and never detached (K = Infinity), one backward over all.
    x.grad = null;
    layer.zeroGrad();
    const carry = new StateCarry({ detachEvery: Infinity });
    let loss: Tensor | null = null;
    for (let i = 0; i < W; i++) {
      const r = layer.forward(slice(x, 0, i * T, T), carry.begin({ reset: i === 0 }));
      carry.end(r);
      const l = weightedLoss(r.output, slice(w, 0, i * T, T));
      loss = loss ? add(loss, l) : l;
    }
    backward(loss!);
    const windows = grads(layer, x);
    full.forEach((g, i) => assertClose(windows[i], g, 1e-12, `gradient ${i} (windows, K = whole)`));

    // forwardTBPTT with K ≥ T inside one window is the plain pass.
    x.grad = null;
    layer.zeroGrad();
    backward(weightedLoss(forwardTBPTT(layer, x, { detachEvery: W * T }).output, w));
    const k = grads(layer, x);
    full.forEach((g, i) => assertClose(k[i], g, 0, `gradient ${i} (forwardTBPTT)`));

    // With the default K = 1 nothing crosses from window 2 back into window 1.
    x.grad = null;
    layer.zeroGrad();
    const cut = new StateCarry();
    cut.end(layer.forward(slice(x, 0, 0, T)));
    backward(weightedLoss(layer.forward(slice(x, 0, T, T), cut.begin({ reset: false })).output, slice(w, 0, T, T)));
    const gx = x.grad!.toArray();
    for (let i = 0; i < T * B * 3; i++) assert.equal(gx[i], 0, `x element ${i} of window 1 got gradient`);
  });
}

test('truncated: values equal one pass; no gradient crosses a boundary; gradients are the per-segment sums', () => {
  const rng = new Rng(4);
  const layer = new LSTM({ inputSize: 3, hiddenSize: 4, dtype: 'float64', rng });
  const T = 8, K = 3, B = 2;
  const x = randomTensor([T, B, 3], rng, { requiresGrad: true });
  const w = randomTensor([T, B, 4], rng);
  const ref = layer.forward(x);
  const tr = forwardTBPTT(layer, x, { detachEvery: K });
  assertClose(tr.output.toArray(), ref.output.toArray(), 1e-15, 'outputs');
  assertClose(tr.h.toArray(), ref.h.toArray(), 1e-15, 'final h');
  assertClose(tr.c!.toArray(), ref.c!.toArray(), 1e-15, 'final c');

  // A loss on the last segment only: x in earlier segments gets exactly zero gradient.
  layer.zeroGrad();
  x.grad = null;
  const lastOnly = forwardTBPTT(layer, x, { detachEvery: K });
  backward(weightedLoss(slice(lastOnly.output, 0, 6, 2), slice(w, 0, 6, 2)));
  const gx = x.grad!.toArray();
  for (let i = 0; i < 6 * B * 3; i++) assert.equal(gx[i], 0, `x element ${i} (before the boundary) got gradient`);
  assert.ok(Array.from(gx.subarray(6 * B * 3)).some((v) => v !== 0), 'Array.from(gx.subarray(6 * B * 3)).some((v) => v !== 0)');

  // The whole truncated gradient equals the sum over segments, each run from the detached state.
  layer.zeroGrad();
  x.grad = null;
  backward(weightedLoss(forwardTBPTT(layer, x, { detachEvery: K }).output, w));
  const truncated = layer.parameters().map((p) => Array.from(p.grad!.toArray()));
  const acc = layer.parameters().map((p) => new Float64Array(p.size));
  let h: Tensor | null = null, c: Tensor | null = null;
  for (let t0 = 0; t0 < T; t0 += K) {
    const n = Math.min(K, T - t0);
    layer.zeroGrad();
    const xs = slice(x.detach(), 0, t0, n);
    const r = layer.forward(xs, { h: h?.detach() ?? null, c: c?.detach() ?? null });
    backward(weightedLoss(r.output, slice(w, 0, t0, n)));
    layer.parameters().forEach((p, i) => p.grad!.toArray().forEach((v, j) => (acc[i][j] += v)));
    h = r.h;
    c = r.c;
  }
  truncated.forEach((g, i) => assertClose(g, acc[i], 1e-12, `parameter ${i}`));
  // ...and differs from full BPTT (the truncation is real).
  layer.zeroGrad();
  backward(weightedLoss(layer.forward(x.detach()).output, w));
  assert.notDeepEqual(truncated[1], Array.from(layer.parameters()[1].grad!.toArray()));
});

test('StateCarry: carried across windows (same values as one pass), detached at the boundary, reset at epoch start', () => {
  const rng = new Rng(5);
  const layer = new LSTM({ inputSize: 2, hiddenSize: 3, dtype: 'float64', rng });
  const B = 2;
  const x1 = randomTensor([4, B, 2], rng, { requiresGrad: true });
  const x2 = randomTensor([4, B, 2], rng, { requiresGrad: true });
  const whole = layer.forward(concat([x1, x2], 0));
  const carry = new StateCarry();
  assert.deepEqual(carry.begin({ reset: true }), {});
  const r1 = layer.forward(x1, carry.begin({ reset: true }));
  carry.end(r1);
  const init2 = carry.begin({ reset: false, B });
  assert.equal(init2.h!.node, null, 'the carried state is a detached leaf');
  const r2 = layer.forward(x2, init2);
  carry.end(r2);
  assertClose(r2.output.toArray(), slice(whole.output, 0, 4, 4).toArray(), 1e-15, 'second window outputs');
  backward(sum(r2.output));
  assert.equal(x1.grad, null, 'no gradient reached the first window');
  assert.ok(x2.grad !== null, 'x2.grad !== null');
  // Serialisation round trip is exact; a reset empties it.
  const json = JSON.parse(JSON.stringify(carry.toJSON()));
  const again = new StateCarry();
  again.fromJSON(json);
  assert.deepEqual(Array.from(again.state!.h.toArray()), Array.from(r2.h.toArray()));
  assert.deepEqual(Array.from(again.state!.c!.toArray()), Array.from(r2.c!.toArray()));
  assert.equal(again.state!.h.dtype, 'float64');
  assert.deepEqual(again.begin({ reset: true }), {});
  assert.equal(again.toJSON(), null);
  assert.throws(() => carry.begin({ reset: false, B: 5 }), /carried state is for 2 streams but the batch has 5/);
  assert.throws(() => again.fromJSON({ h: { shape: [1, 2], dtype: 'float64', data: [1] } }), /do not fill shape/);
});

test('forwardTBPTT validates its options', () => {
  const layer = new GRU({ inputSize: 2, hiddenSize: 3, bidirectional: true });
  const x = randomTensor([5, 1, 2], new Rng(1));
  assert.throws(() => forwardTBPTT(layer, x, { detachEvery: 0 }), /'detachEvery' must be a positive integer/);
  assert.throws(() => forwardTBPTT(layer, x, { detachEvery: 2 }), /bidirectional/);
  assert.throws(() => forwardTBPTT(layer, x, { k: 2 } as never), /unknown option 'k'/);
  assert.throws(() => new StateCarry({ detachEvery: 0 }), /'detachEvery' must be a positive integer/);
});

// ---- backwardCheckpointed: full BPTT from every k-th state ------------------------------------------

/** A character LM over a [T, B] id sequence: Embedding → 2-layer LSTM → Linear, summed cross-entropy. */
function charLM(seed: number) {
  const rng = new Rng(seed);
  const V = 7, E = 3, H = 4, L = 2, B = 3, T = 23;
  const embed = new Embedding(V, E, { dtype: 'float64', rng });
  const lstm = new LSTM({ inputSize: E, hiddenSize: H, numLayers: L, dtype: 'float64', rng });
  const head = new Linear(H, V, { dtype: 'float64', rng });
  const ids = Int32Array.from({ length: (T + 1) * B }, () => rng.int(V));
  const params = [...embed.parameters(), ...lstm.parameters(), ...head.parameters()];
  const h0 = randomTensor([L, B, H], rng, { requiresGrad: true });
  const c0 = randomTensor([L, B, H], rng, { requiresGrad: true });
  /** Steps t0 … t1−1 from (h, c): the loss of predicting token t+1 at step t. */
  const run = (t0: number, t1: number, [h, c]: readonly Tensor[]) => {
    const r = lstm.forward(embed.forward(ids.subarray(t0 * B, t1 * B), [t1 - t0, B]), { h, c });
    const loss = crossEntropy(head.forward(r.output), ids.subarray((t0 + 1) * B, (t1 + 1) * B), { reduction: 'sum' });
    return { loss, state: [r.h, r.c!] };
  };
  const gradients = () => [...params, h0, c0].map((p) => Array.from(p.grad!.toArray() as Float64Array));
  const zero = () => [...params, h0, c0].forEach((p) => (p.grad = null));
  return { T, run, h0, c0, gradients, zero };
}

test('backwardCheckpointed: the loss and gradients of one backward pass, for every segment length k', () => {
  const m = charLM(11);
  const whole = m.run(0, m.T, [m.h0, m.c0]);
  backward(whole.loss);
  const reference = m.gradients();
  for (const k of [1, 4, 5, 22, 23, 100]) {
    m.zero();
    const r = backwardCheckpointed(m.T, k, [m.h0, m.c0], m.run);
    assert.equal(r.segments, Math.ceil(m.T / k));
    assert.ok(Math.abs(r.loss - whole.loss.item()) <= 1e-12 * Math.abs(r.loss), `k = ${k}: loss ${r.loss} vs ${whole.loss.item()}`);
    // The sums over steps are taken per segment, so the last bits may differ from one backward pass.
    m.gradients().forEach((g, i) => assertClose(g, reference[i], 1e-12, `k = ${k}, gradient ${i}`));
  }
});

test('backwardCheckpointed: a segment that is not deterministic is refused; bad arguments are named', () => {
  const m = charLM(12);
  const rng = new Rng(1);
  // dropout from one shared stream draws a new mask the second time round
  const noisy = (t0: number, t1: number, state: readonly Tensor[]) => {
    const r = m.run(t0, t1, state);
    return { loss: r.loss, state: [dropout(r.state[0], 0.5, true, rng), r.state[1]] };
  };
  assert.throws(() => backwardCheckpointed(m.T, 5, [m.h0, m.c0], noisy), /gave a different state when run again .*must be deterministic/);
  assert.throws(() => backwardCheckpointed(0, 5, [m.h0, m.c0], m.run), /'T' must be a positive integer/);
  assert.throws(() => backwardCheckpointed(m.T, 0.5, [m.h0, m.c0], m.run), /'k' must be a positive integer/);
  assert.throws(() => backwardCheckpointed(m.T, 5, [m.h0, m.c0], (t0, t1, s) => ({ loss: m.run(t0, t1, s).loss, state: [s[0]] })), /a state of 2 tensors/);
});
