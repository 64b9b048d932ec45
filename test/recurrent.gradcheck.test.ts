/**
 * Finite-difference gradient checks (float64) of the fused recurrent layers in every
 * configuration: cell × layers × bidirectional × lengths × initial state, plus batchFirst, no-bias
 * and the single-step cells. Every parameter, the input and the initial states are checked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell, Rng, createWasmBackend, registerBackend, setBackend, type RecurrentBase, type Tensor } from '../src/index.ts';
import { gradcheck, randomTensor } from './helpers/gradcheck.ts';

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
