/**
 * The recurrent gradient checks for a float32-only backend (WebGPU): every configuration of the
 * float64 finite-difference checks (test/recurrent.gradcheck.test.ts) — cell × layers ×
 * bidirectional × lengths × initial state, plus batch-first and no-bias — run on the backend in
 * float32 and on the js backend in float64 from the same weights and data; outputs, final states
 * and every gradient (input, initial states, each parameter) must agree to float32 precision.
 * The js float64 gradients are themselves the ones the finite differences check, so this carries
 * that check over to a backend that has no float64. Runs in Node and bundled in a browser page.
 */
import { describe, test } from 'node:test';

import { GRU, LSTM, RNN, Rng, add, backward, getBackend, mul, setBackend, sum, tensor, type DType, type RecurrentBase, type Tensor } from '../../src/index.ts';
import type { Backend } from '../../src/backend/interface.ts';
import { assertClose } from './gradcheck.ts';

type Mode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';
const MODES: Mode[] = ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'];
const T = 5, B = 3, I = 4, H = 6;
/** float32 against float64: relative to 1 + |value|, as the parity suite's float32 bar. */
const TOL = { atol: 2e-5, rtol: 2e-5 };

interface Config { mode: Mode; numLayers: number; bidirectional: boolean; lengths: number[] | null; withState: boolean; batchFirst: boolean; bias: boolean }

function configs(): Config[] {
  const out: Config[] = [];
  for (const mode of MODES) for (const numLayers of [1, 2]) for (const bidirectional of [false, true]) for (const lengths of [null, [5, 2, 3]]) for (const withState of [false, true]) {
    out.push({ mode, numLayers, bidirectional, lengths, withState, batchFirst: false, bias: true });
  }
  for (const mode of MODES) {
    out.push({ mode, numLayers: 2, bidirectional: true, lengths: [4, 5, 1], withState: true, batchFirst: true, bias: true });
    out.push({ mode, numLayers: 1, bidirectional: false, lengths: null, withState: true, batchFirst: false, bias: false });
  }
  return out;
}

function make(c: Config, dtype: DType, seed: number): RecurrentBase {
  const o = { inputSize: I, hiddenSize: H, numLayers: c.numLayers, bidirectional: c.bidirectional, batchFirst: c.batchFirst, bias: c.bias, dtype, rng: new Rng(seed) };
  if (c.mode === 'LSTM') return new LSTM(o);
  if (c.mode === 'GRU') return new GRU(o);
  return new RNN({ ...o, nonlinearity: c.mode === 'RNN_RELU' ? 'relu' : 'tanh' });
}

/** Forward and backward on `backend` (the default while it runs); what to compare, by name. */
function run(backend: Backend, dtype: DType, c: Config, seed: number): { layer: RecurrentBase; got: Record<string, Tensor> } {
  const prev = getBackend().name;
  setBackend(backend.name);
  try {
    const rng = new Rng(1000 + seed);
    const rand = (n: number): number[] => Array.from({ length: n }, () => rng.uniform(-1, 1));
    const D = c.bidirectional ? 2 : 1;
    const layer = make(c, dtype, seed);
    const x = tensor(rand(T * B * I), c.batchFirst ? [B, T, I] : [T, B, I], { dtype, requiresGrad: true });
    const sh = [c.numLayers * D, B, H];
    const h0 = c.withState ? tensor(rand(sh[0] * B * H), sh, { dtype, requiresGrad: true }) : null;
    const c0 = c.withState && c.mode === 'LSTM' ? tensor(rand(sh[0] * B * H), sh, { dtype, requiresGrad: true }) : null;
    const r = layer.forward(x, { h: h0, c: c0, lengths: c.lengths });
    // a loss that weights every output and final state differently, so each gradient is checked
    let L = add(sum(mul(r.output, tensor(rand(r.output.size), r.output.shape, { dtype }))), sum(mul(r.h, tensor(rand(r.h.size), r.h.shape, { dtype }))));
    if (r.c) L = add(L, sum(mul(r.c, tensor(rand(r.c.size), r.c.shape, { dtype }))));
    backward(L);
    const got: Record<string, Tensor> = { output: r.output, hN: r.h, dx: x.grad! };
    if (r.c) got.cN = r.c;
    if (h0) got.dh0 = h0.grad!;
    if (c0) got.dc0 = c0.grad!;
    for (const [name, p] of layer.namedParameters()) got[`d${name}`] = p.grad!;
    return { layer, got };
  } finally {
    setBackend(prev);
  }
}

export function runRecurrentVsReference(backend: Backend, label: string): void {
  const js = getBackend('js');
  describe(`recurrent layers against js float64: ${label}`, () => {
    configs().forEach((c, k) => {
      const name = `${c.mode} layers=${c.numLayers} ${c.bidirectional ? 'bi' : 'uni'} ${c.lengths ? 'lengths' : 'full'} ${c.withState ? 'h0' : 'zero-state'}${c.batchFirst ? ' batchFirst' : ''}${c.bias ? '' : ' no-bias'}`;
      test(`${name}: outputs, states and every gradient`, async () => {
        const ref = run(js, 'float64', c, k + 1);
        const mine = run(backend, 'float32', c, k + 1);
        for (const [key, t] of Object.entries(ref.got)) {
          const g = mine.got[key];
          if (!g) throw new Error(`${name}: no ${key} on ${backend.name}`);
          assertClose(await g.data(), t.toArray(), TOL, `${name}: ${key}`);
        }
      });
    });
  });
}
