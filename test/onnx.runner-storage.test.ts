/**
 * The runner reuses each float input's backend storage from run to run and gives the recurrent
 * nodes' outputs back to the backend once the graph outputs are copied out (model.ts). On the
 * wasm backend, where a given-back storage is reused by the next allocation, a sequence of runs
 * with changing values and shapes must still give what a freshly loaded model gives for each
 * run alone (on the js backend, general recurrent path), and a constant that is also a graph
 * output must survive every run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/index.ts';
import { buildModel } from '../src/onnx/builder.ts';
import { loadOnnx, type OnnxInput } from '../src/onnx/model.ts';
import { wasmBackendOrSkip } from './helpers/wasm.ts';


const I = 3, H = 4, G = 4;

function model(): Uint8Array {
  const k = Float32Array.from({ length: 5 }, (_, i) => i + 0.5);
  return buildModel({
    nodes: [
      { op: 'LSTM', inputs: ['X', 'W', 'R', 'B', '', 'h0'], outputs: ['Y', 'Yh'], attrs: { hidden_size: H } },
      { op: 'Identity', inputs: ['Y'], outputs: ['y'] },
      { op: 'Identity', inputs: ['X'], outputs: ['x'] },
      { op: 'Identity', inputs: ['K'], outputs: ['k'] },
    ],
    inputs: [
      { name: 'X', dtype: 'float32', shape: ['T', 'N', I] },
      { name: 'W', dtype: 'float32', shape: [1, G * H, I] },
      { name: 'R', dtype: 'float32', shape: [1, G * H, H] },
      { name: 'B', dtype: 'float32', shape: [1, 2 * G * H] },
      { name: 'h0', dtype: 'float32', shape: [1, 'N', H] },
    ],
    outputs: [
      { name: 'y', dtype: 'float32' },
      { name: 'Yh', dtype: 'float32' },
      { name: 'x', dtype: 'float32' },
      { name: 'k', dtype: 'float32' },
    ],
    initializers: { K: { dtype: 'float32', shape: [5], data: k } },
  });
}

function feeds(rng: Rng, T: number, N: number, sameWeights: Record<string, OnnxInput> | null): Record<string, OnnxInput> {
  const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.random() * 2 - 1);
  return {
    X: { shape: [T, N, I], data: rand(T * N * I) },
    h0: { shape: [1, N, H], data: rand(N * H) },
    ...(sameWeights ?? {
      W: { shape: [1, G * H, I], data: rand(G * H * I) },
      R: { shape: [1, G * H, H], data: rand(G * H * H) },
      B: { shape: [1, 2 * G * H], data: rand(2 * G * H) },
    }),
  };
}

test('runs on wasm with reused input storage and given-back outputs match fresh single runs', async (t) => {
  const backend = await wasmBackendOrSkip(t);
  if (!backend) return;
  const bytes = model();
  const m = loadOnnx(bytes, { backend });
  const rng = new Rng(7);
  let prev: Record<string, OnnxInput> | null = null;
  // the same shapes twice (storage reused), then new T and N (storage replaced), then back;
  // weights change on some runs and stay on others (the recurrent weight cache)
  const plan: [number, number, boolean][] = [[5, 2, false], [5, 2, false], [5, 2, true], [7, 3, true], [1, 1, false], [1, 1, true], [5, 2, false]];
  for (const [run, [T, N, keepWeights]] of plan.entries()) {
    const f = feeds(rng, T, N, keepWeights && prev ? { W: prev.W, R: prev.R, B: prev.B } : null);
    prev = f;
    const got = m.run(f);
    const want = loadOnnx(bytes, { recurrentPath: 'general' }).run(f);
    for (const name of ['y', 'Yh', 'x', 'k']) {
      assert.deepEqual(got[name].shape, want[name].shape, `run ${run}: ${name} shape`);
      const g = got[name].data, w = want[name].data;
      for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) <= 1e-5 + 1e-5 * Math.abs(w[i]), `run ${run}: ${name}[${i}] = ${g[i]}, want ${w[i]}`);
    }
    assert.deepEqual(Array.from(got.x.data), Array.from(f.X.data as Float32Array), `run ${run}: X passes through`);
    assert.deepEqual(Array.from(got.k.data), [0.5, 1.5, 2.5, 3.5, 4.5], `run ${run}: the constant output`);
  }
});
