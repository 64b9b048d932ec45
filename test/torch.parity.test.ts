/**
 * PyTorch parity of the recurrent layers: fixtures from scripts/make_fixtures.py (float64 PyTorch,
 * 2 layers, uni/bidirectional, with and without lengths and initial state). Each PyTorch
 * state_dict is loaded with the one documented call, `layer.loadStateDict(sd)`; outputs, final
 * states and every gradient must match: to 1e-10 when recur runs in float64, to 1e-5 in float32.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GRU, LSTM, RNN, backward, mul, sum, add, tensor, type RecurrentBase, type Tensor, type DType } from '../src/index.ts';

interface T { shape: number[]; data: number[] }
interface Case {
  name: string; mode: 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU'; inputSize: number; hiddenSize: number; numLayers: number;
  bidirectional: boolean; batchFirst: boolean; lengths: number[] | null; hasInitialState: boolean;
  params: Record<string, T>; x: T; h0: T | null; c0: T | null; y: T; hN: T; cN: T | null; gy: T; ghN: T; gcN: T | null;
  grads: Record<string, T>;
}

const fixtures = JSON.parse(readFileSync(new URL('./fixtures/torch_rnn.json', import.meta.url), 'utf8')) as { cases: Case[] };

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i];
    const err = Math.abs(actual[i] - e);
    if (!(err <= tol * (1 + Math.abs(e)))) assert.fail(`${what}[${i}]: got ${actual[i]}, PyTorch ${e} (|diff| ${err.toExponential(2)} > tol ${tol})`);
  }
}

function build(c: Case, dtype: DType): RecurrentBase {
  const o = { inputSize: c.inputSize, hiddenSize: c.hiddenSize, numLayers: c.numLayers, bidirectional: c.bidirectional, batchFirst: c.batchFirst, dtype };
  if (c.mode === 'LSTM') return new LSTM(o);
  if (c.mode === 'GRU') return new GRU(o);
  return new RNN({ ...o, nonlinearity: c.mode === 'RNN_RELU' ? 'relu' : 'tanh' });
}

for (const dtype of ['float64', 'float32'] as const) {
  const tol = dtype === 'float64' ? 1e-10 : 1e-5;
  for (const c of fixtures.cases) {
    test(`PyTorch parity ${c.name} (${dtype})`, () => {
      const layer = build(c, dtype);
      layer.loadStateDict(c.params);
      const t = (v: T, grad = false): Tensor => tensor(v.data, v.shape, { dtype, requiresGrad: grad });
      const x = t(c.x, true);
      const h0 = c.h0 ? t(c.h0, true) : null;
      const c0 = c.c0 ? t(c.c0, true) : null;
      const out = layer.forward(x, { h: h0, c: c0, lengths: c.lengths });
      close(out.output.toArray(), c.y.data, tol, 'y');
      assert.deepEqual([...out.output.shape], c.y.shape);
      close(out.h.toArray(), c.hN.data, tol, 'hN');
      if (c.cN) close(out.c!.toArray(), c.cN.data, tol, 'cN');
      let L = add(sum(mul(out.output, t(c.gy))), sum(mul(out.h, t(c.ghN))));
      if (c.gcN) L = add(L, sum(mul(out.c!, t(c.gcN))));
      backward(L);
      close(x.grad!.toArray(), c.grads.x.data, tol, 'dx');
      if (h0) close(h0.grad!.toArray(), c.grads.h0.data, tol, 'dh0');
      if (c0) close(c0.grad!.toArray(), c.grads.c0.data, tol, 'dc0');
      for (const [name, p] of layer.namedParameters()) {
        assert.ok(c.grads[name], `fixture has gradient for ${name}`);
        close(p.grad!.toArray(), c.grads[name].data, tol, `d${name}`);
      }
    });
  }
}
