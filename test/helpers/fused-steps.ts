/**
 * The WebGPU backend's fused forward steps (one dispatch per time step: the recurrent product and
 * the cell together) against its own generic loop (a GEMM and a cell kernel per step), for every
 * cell kind, bidirectional, 2 layers, with lengths and an initial state: outputs and every gradient
 * must be the same bit for bit, as the Backend interface requires of a backend's time loop, and the
 * fused run must take fewer dispatches. Runs in Node and bundled in a browser page.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { GRU, LSTM, RNN, Rng, add, backward, getBackend, mul, setBackend, sum, tensor } from '../../src/index.ts';
import type { WebGpuBackend } from '../../src/backend/webgpu/index.ts';

const KINDS = ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'] as const;

/** Outputs, final state and every gradient of one forward and backward, fused steps on or off. */
async function run(be: WebGpuBackend, kind: (typeof KINDS)[number], fused: boolean): Promise<Float32Array[]> {
  const prev = getBackend().name;
  be.fusedSteps = fused;
  setBackend(be.name);
  try {
    const o = { inputSize: 5, hiddenSize: 19, numLayers: 2, bidirectional: true, rng: new Rng(11) };
    const layer = kind === 'LSTM' ? new LSTM(o) : kind === 'GRU' ? new GRU(o) : new RNN({ ...o, nonlinearity: kind === 'RNN_RELU' ? 'relu' : 'tanh' });
    const rng = new Rng(12);
    const rand = (n: number): number[] => Array.from({ length: n }, () => rng.uniform(-1, 1));
    const x = tensor(rand(7 * 3 * 5), [7, 3, 5], { requiresGrad: true });
    const h0 = tensor(rand(4 * 3 * 19), [4, 3, 19]);
    const r = layer.forward(x, { h: h0, c: kind === 'LSTM' ? h0 : null, lengths: [7, 2, 5] });
    backward(add(sum(mul(r.output, tensor(rand(r.output.size), r.output.shape))), sum(r.h)));
    const ts = [r.output, r.h, x.grad!, ...layer.parameters().map((p) => p.grad!)];
    return await Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
  } finally {
    setBackend(prev);
    be.fusedSteps = true;
  }
}

export function runFusedStepsCheck(be: WebGpuBackend, label: string): void {
  describe(`fused time steps: ${label}`, () => {
    for (const kind of KINDS) {
      test(`${kind}: one dispatch per step gives the generic loop's outputs and gradients bit for bit`, async () => {
        const d0 = be.runtime.dispatches;
        const fused = await run(be, kind, true);
        const d1 = be.runtime.dispatches;
        const generic = await run(be, kind, false);
        const d2 = be.runtime.dispatches;
        assert.ok(d1 - d0 < d2 - d1, `fused ${d1 - d0} dispatches, generic ${d2 - d1}`);
        fused.forEach((a, k) => {
          const b = generic[k];
          assert.equal(a.length, b.length);
          for (let i = 0; i < a.length; i++) {
            if (!Object.is(a[i], b[i]) && !(a[i] === 0 && b[i] === 0)) assert.fail(`tensor ${k}, element ${i}: fused ${a[i]}, generic ${b[i]}`);
          }
        });
      });
    }
  });
}
