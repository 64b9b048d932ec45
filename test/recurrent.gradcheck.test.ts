/**
 * Finite-difference gradient checks (float64) of the fused recurrent layers in every
 * configuration: cell × layers × bidirectional × lengths × initial state, plus batchFirst, no-bias
 * and the single-step cells. Every parameter, the input and the initial states are checked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Embedding, GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell, Rng, backward, mul, noGrad, registerBackend, setBackend, sum, type RecurrentBase, type Tensor,
} from '../src/index.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { assertClose, gradcheck, randomTensor } from './helpers/gradcheck.ts';

type Mode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';
const MODES: Mode[] = ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'];

function make(mode: Mode, o: { numLayers: number; bidirectional: boolean; batchFirst?: boolean; bias?: boolean; seed: number }): RecurrentBase {
  const base = { inputSize: 2, hiddenSize: 3, numLayers: o.numLayers, bidirectional: o.bidirectional, batchFirst: o.batchFirst ?? false, bias: o.bias ?? true, dtype: 'float64' as const, rng: new Rng(o.seed) };
  if (mode === 'LSTM') return new LSTM(base);
  if (mode === 'GRU') return new GRU(base);
  return new RNN({ ...base, nonlinearity: mode === 'RNN_RELU' ? 'relu' : 'tanh' });
}

// The same checks run on every backend that supports float64: the reference backend, and the
// WebAssembly backend (its float64 kernels are scalar twins of the float32 SIMD ones).
const backends: string[] = ['js'];
try {
  registerBackend(await createWasmBackend({ threads: 1 }));
  backends.push('wasm');
} catch (e) {
  test('wasm backend unavailable: recurrent gradchecks run on js only', { skip: (e as Error).message }, () => {});
}

for (const backend of backends) {
  describe(`recurrent gradchecks on ${backend}`, () => {
    before(() => setBackend(backend));
    after(() => setBackend('js'));
    let seed = 1;
    for (const mode of MODES) {
      for (const numLayers of [1, 2]) {
        for (const bidirectional of [false, true]) {
          for (const withLengths of [false, true]) {
            for (const withState of [false, true]) {
              const name = `${mode} layers=${numLayers} ${bidirectional ? 'bi' : 'uni'} ${withLengths ? 'lengths' : 'full'} ${withState ? 'h0' : 'zero-state'}`;
              const s = seed++;
              test(`gradcheck ${name}`, () => {
                const rng = new Rng(100 + s);
                const T = 4, B = 3, D = bidirectional ? 2 : 1;
                const layer = make(mode, { numLayers, bidirectional, seed: s });
                const x = randomTensor([T, B, 2], rng, { requiresGrad: true });
                const h0 = withState ? randomTensor([numLayers * D, B, 3], rng, { requiresGrad: true }) : null;
                const c0 = withState && mode === 'LSTM' ? randomTensor([numLayers * D, B, 3], rng, { requiresGrad: true }) : null;
                const lengths = withLengths ? [4, 1, 2] : null;
                const inputs = [x, ...(h0 ? [h0] : []), ...(c0 ? [c0] : []), ...layer.parameters()];
                gradcheck(() => {
                  const r = layer.forward(x, { h: h0, c: c0, lengths });
                  return [r.output, r.h, r.c];
                }, inputs, { outputs: 3, name, atol: 1e-6, rtol: 1e-5 });
              });
            }
          }
        }
      }
    }

    for (const mode of MODES) {
      test(`gradcheck ${mode} batchFirst, no bias, lengths`, () => {
        const rng = new Rng(7);
        const layer = make(mode, { numLayers: 2, bidirectional: true, batchFirst: true, bias: false, seed: 3 });
        assert.equal(layer.namedParameters().filter(([n]) => n.startsWith('bias')).length, 0);
        assert.equal(layer.parameters()[0].backend.name, backend, 'runs on the backend under test');
        const x = randomTensor([3, 4, 2], rng, { requiresGrad: true });
        gradcheck(() => {
          const r = layer.forward(x, { lengths: [2, 4, 3] });
          return [r.output, r.h, r.c];
        }, [x, ...layer.parameters()], { outputs: 3, name: `${mode} batchFirst`, atol: 1e-6 });
      });
    }

    // Embedding input: the layer projects the V table rows instead of the T·B gathered rows and
    // sends the gradient straight to the embedding weight (src/cells/recurrent.ts).
    for (const mode of MODES) {
      test(`gradcheck ${mode} on an embedding lookup (table projection), with a second consumer`, () => {
        const rng = new Rng(21);
        const T = 4, B = 3;
        // (no padding row here: by design it gets no gradient, which finite differences would disagree with)
        const emb = new Embedding(3, 2, { dtype: 'float64', rng: new Rng(4) });
        const layer = make(mode, { numLayers: 2, bidirectional: true, seed: 9 });
        const ids = [0, 1, 2, 2, 0, 1, 1, 2, 0, 0, 2, 1];
        const r = randomTensor([T, B, 2], rng);
        assert.ok(emb.forward(ids, [T, B]).lookup, 'a 3-word vocabulary over 12 rows is recorded as a lookup');
        gradcheck(() => {
          const x = emb.forward(ids, [T, B]);
          const out = layer.forward(x, { lengths: [4, 2, 3] });
          // x also feeds a second consumer, whose gradient reaches the weight through the embedding op.
          return [out.output, out.h, out.c, mul(x, r)];
        }, [emb.weight, ...layer.parameters()], { outputs: 4, name: `${mode} embedding`, atol: 1e-6, rtol: 1e-5 });
      });

      test(`${mode}: the table projection equals the row projection, values and gradients`, () => {
        const emb = new Embedding(5, 2, { paddingIdx: 3, dtype: 'float64', rng: new Rng(6) });
        const layer = make(mode, { numLayers: 1, bidirectional: true, seed: 10 });
        const ids = Array.from({ length: 6 * 4 }, (_, i) => (i * 7) % 5);
        const run = (fused: boolean): number[][] => {
          emb.zeroGrad();
          layer.zeroGrad();
          const x = emb.forward(ids, [6, 4]);
          assert.ok(x.lookup);
          if (!fused) x.lookup = null;
          const out = layer.forward(x, { lengths: [6, 1, 4, 5] });
          backward(sum(mul(out.output, out.output)));
          return [out.output.toArray(), ...[emb.weight, ...layer.parameters()].map((p) => p.grad!.toArray())].map((a) => Array.from(a));
        };
        const fused = run(true), plain = run(false);
        fused.forEach((a, i) => assertClose(a, plain[i], { atol: 1e-12, rtol: 1e-10 }, `${mode} tensor ${i}`));
        assert.ok(fused[1].some((v) => v !== 0), 'the embedding weight gets a gradient');
        assert.deepEqual(fused[1].slice(3 * 2, 4 * 2), [0, 0], 'the padding row gets no gradient');
      });
    }

    test('a lookup keeps the values it was made from when the weight changes in place afterwards', () => {
      const emb = new Embedding(2, 2, { dtype: 'float64', rng: new Rng(1) });
      const layer = make('LSTM', { numLayers: 1, bidirectional: false, seed: 2 });
      const ids = [0, 1, 1, 0, 0, 0, 1, 1];
      const x = emb.forward(ids, [4, 2]);
      const before = noGrad(() => layer.forward(x).output.toArray());
      emb.weight.backend.fill(emb.weight.storage, 5, 0, 4); // an in-place update after the lookup
      const plain = noGrad(() => layer.forward(Object.assign(x, { lookup: null })).output.toArray());
      assertClose(before, plain, { atol: 1e-12 }, 'output');
    });

    for (const [label, make1] of [
      ['RNNCell tanh', () => new RNNCell({ inputSize: 2, hiddenSize: 3, dtype: 'float64', rng: new Rng(5) })],
      ['RNNCell relu', () => new RNNCell({ inputSize: 2, hiddenSize: 3, nonlinearity: 'relu', dtype: 'float64', rng: new Rng(5) })],
      ['LSTMCell', () => new LSTMCell({ inputSize: 2, hiddenSize: 3, dtype: 'float64', rng: new Rng(5) })],
      ['GRUCell', () => new GRUCell({ inputSize: 2, hiddenSize: 3, dtype: 'float64', rng: new Rng(5) })],
    ] as const) {
      test(`gradcheck ${label} over three unrolled steps`, () => {
        const cell = make1();
        const rng = new Rng(11);
        const xs = [0, 1, 2].map(() => randomTensor([2, 2], rng, { requiresGrad: true }));
        const h = randomTensor([2, 3], rng, { requiresGrad: true });
        const c = randomTensor([2, 3], rng, { requiresGrad: true });
        const isLSTM = label === 'LSTMCell';
        gradcheck(() => {
          let st = { h, c: isLSTM ? c : null } as { h: Tensor; c?: Tensor | null };
          const hs: Tensor[] = [];
          for (const x of xs) {
            st = cell.forward(x, st);
            hs.push(st.h);
          }
          return [...hs, st.c ?? null];
        }, [...xs, h, ...(isLSTM ? [c] : []), ...cell.parameters()], { outputs: 4, name: label, atol: 1e-6 });
      });
    }
  });
}
