/**
 * The shared PyTorch parity suite: every fixture of scripts/make_fixtures.py, run on one backend in
 * one dtype. Like the kernel suite (./kernel-suite.ts), it is written once and run for every backend:
 * the CPU backends in test/torch.parity.test.ts (`PARITY_BACKENDS`: a new one adds an entry there),
 * WebGPU in test/webgpu.node.test.ts and, bundled, in Chromium (test/webgpu.browser.test.ts). Values
 * are read with `await tensor.data()`, which every backend has.
 *
 * - test/fixtures/torch_rnn.json: 2-layer RNN (tanh, relu), LSTM and GRU, uni/bidirectional, with
 *   and without lengths and initial state (float64 PyTorch). Each state_dict is loaded with the one
 *   documented call, `layer.loadStateDict(sd)`; outputs, final states and every gradient (input,
 *   initial states, each parameter) must match.
 * - test/fixtures/torch_charlm.json: the first 20 losses of a tiny character LM (Embedding → LSTM →
 *   Linear → cross-entropy) trained with Adam and global-norm clipping from the same initial weights
 *   and batches; the clip threshold is chosen so that clipping fires on most steps.
 *
 * Tolerances depend on the dtype only, so every backend is held to the same bar: layers 1e-10 in
 * float64 and 1e-5 in float32 (relative to 1 + |value|); char-LM losses 1e-9 in float64 and 1e-5 in
 * float32 (relative), gradient norms 1e-9 (relative) in float64.
 *
 * The optimizer trajectories (torch_optim.json) are not here: they drive the optimizers with
 * gradients computed on the host, on the js backend only (test/optim.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  Embedding, GRU, LSTM, Linear, Module, RNN, add, backward, crossEntropy, mul, reshape, setBackend, sum, tensor,
  type DType, type RecurrentBase, type Tensor,
} from '../../src/index.ts';
import type { Backend } from '../../src/backend/interface.ts';
import { getBackend } from '../../src/backend/registry.ts';
import { Adam } from '../../src/train/optim.ts';
import { clipGradNormReading } from '../../src/train/clip.ts';
import { runAsync } from '../../src/train/host-reads.ts';
import rnnJson from '../fixtures/torch_rnn.json' with { type: 'json' };
import charLmJson from '../fixtures/torch_charlm.json' with { type: 'json' };

// ---- the backends ---------------------------------------------------------------------------------

interface T { shape: number[]; data: number[] }
interface RnnCase {
  name: string; mode: 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU'; inputSize: number; hiddenSize: number; numLayers: number;
  bidirectional: boolean; batchFirst: boolean; lengths: number[] | null; hasInitialState: boolean;
  params: Record<string, T>; x: T; h0: T | null; c0: T | null; y: T; hN: T; cN: T | null; gy: T; ghN: T; gcN: T | null;
  grads: Record<string, T>;
}
interface CharLmFixture {
  V: number; E: number; H: number; T: number; B: number; lr: number; maxNorm: number;
  params: Record<string, T>; inputs: number[][]; targets: number[][]; losses64: number[]; losses32: number[]; gradNorms64: number[];
}

// imported, not read from disk: the suite also runs bundled in a browser (test/webgpu.browser.test.ts)
const rnnFixtures = rnnJson as unknown as { cases: RnnCase[] };
const lm = charLmJson as unknown as CharLmFixture;

const LAYER_TOL: Record<DType, number> = { float64: 1e-10, float32: 1e-5 };
const LOSS_TOL: Record<DType, number> = { float64: 1e-9, float32: 1e-5 };
const GRAD_NORM_TOL_64 = 1e-9;

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i];
    const err = Math.abs(actual[i] - e);
    if (!(err <= tol * (1 + Math.abs(e)))) assert.fail(`${what}[${i}]: got ${actual[i]}, PyTorch ${e} (|diff| ${err.toExponential(2)} > tol ${tol})`);
  }
}

function buildLayer(c: RnnCase, dtype: DType): RecurrentBase {
  const o = { inputSize: c.inputSize, hiddenSize: c.hiddenSize, numLayers: c.numLayers, bidirectional: c.bidirectional, batchFirst: c.batchFirst, dtype };
  if (c.mode === 'LSTM') return new LSTM(o);
  if (c.mode === 'GRU') return new GRU(o);
  return new RNN({ ...o, nonlinearity: c.mode === 'RNN_RELU' ? 'relu' : 'tanh' });
}

class TinyLM extends Module {
  readonly embedding: Embedding;
  readonly lstm: LSTM;
  readonly linear: Linear;
  constructor(dtype: DType) {
    super();
    this.embedding = this.registerModule('embedding', new Embedding(lm.V, lm.E, { dtype }));
    this.lstm = this.registerModule('lstm', new LSTM({ inputSize: lm.E, hiddenSize: lm.H, dtype }));
    this.linear = this.registerModule('linear', new Linear(lm.H, lm.V, { dtype }));
  }
}

// ---- the suite ----------------------------------------------------------------------------------

/** Runs `fn` with `backend` as the default for new tensors, whatever it was before. */
function on<R>(backend: Backend, fn: () => R): R {
  const prev = getBackend().name;
  setBackend(backend.name);
  try {
    return fn();
  } finally {
    setBackend(prev);
  }
}

/**
 * Every one of `tensors` lives on `backend`: the suite must not pass by running on another one.
 * (Compared with ===, not assert.equal: a failing assert.equal prints both backends, wasm memory and all.)
 */
function assertOn(backend: Backend, tensors: readonly Tensor[], what: string): void {
  for (const t of tensors) assert.ok(t.backend === backend, `${what} on backend '${t.backend.name}', not '${backend.name}'`);
}

/** The whole PyTorch parity suite on `backend` (registered) in `dtype`. */
export function runParitySuite(backend: Backend, dtype: DType, label = `${backend.name} ${dtype}`): void {
  assert.ok(getBackend(backend.name) === backend, `backend '${backend.name}' is registered`);
  const tol = LAYER_TOL[dtype];

  describe(`PyTorch parity: ${label}`, () => {
    for (const c of rnnFixtures.cases) {
      test(`${c.name}: outputs, final states and every gradient`, async () => {
        // everything runs on the backend first; the values are read afterwards, asynchronously, so
        // the same test holds for a backend whose memory is read that way (WebGPU)
        const r = on(backend, () => {
          const layer = buildLayer(c, dtype);
          layer.loadStateDict(c.params);
          assertOn(backend, layer.parameters(), 'a parameter is');
          const t = (v: T, grad = false): Tensor => tensor(v.data, v.shape, { dtype, requiresGrad: grad });
          const x = t(c.x, true);
          assertOn(backend, [x], 'the input is');
          const h0 = c.h0 ? t(c.h0, true) : null;
          const c0 = c.c0 ? t(c.c0, true) : null;
          const out = layer.forward(x, { h: h0, c: c0, lengths: c.lengths });
          let L = add(sum(mul(out.output, t(c.gy))), sum(mul(out.h, t(c.ghN))));
          if (c.gcN) L = add(L, sum(mul(out.c!, t(c.gcN))));
          backward(L);
          return { layer, out, x, h0, c0 };
        });
        const { layer, out, x, h0, c0 } = r;
        close(await out.output.data(), c.y.data, tol, 'y');
        assert.deepEqual([...out.output.shape], c.y.shape);
        close(await out.h.data(), c.hN.data, tol, 'hN');
        if (c.cN) close(await out.c!.data(), c.cN.data, tol, 'cN');
        close(await x.grad!.data(), c.grads.x.data, tol, 'dx');
        if (h0) close(await h0.grad!.data(), c.grads.h0.data, tol, 'dh0');
        if (c0) close(await c0.grad!.data(), c.grads.c0.data, tol, 'dc0');
        for (const [name, p] of layer.namedParameters()) {
          assert.ok(c.grads[name], `fixture has gradient for ${name}`);
          close(await p.grad!.data(), c.grads[name].data, tol, `d${name}`);
        }
      });
    }

    const expected = dtype === 'float64' ? lm.losses64 : lm.losses32;
    test(`char LM: first ${expected.length} losses match PyTorch (Adam, clip ${lm.maxNorm})`, async () => {
      const prev = getBackend().name;
      setBackend(backend.name);
      const losses: number[] = [];
      const norms: number[] = [];
      try {
        const m = new TinyLM(dtype);
        m.loadStateDict(lm.params);
        assertOn(backend, m.parameters(), 'a parameter is');
        const opt = new Adam(m.namedParameters(), { lr: lm.lr });
        for (let s = 0; s < expected.length; s++) {
          const x = m.embedding.forward(lm.inputs[s], [lm.T, lm.B]);
          // V ≤ T·B, so the embedding output is recorded as a lookup. The LSTM projects the V table rows
          // instead of the T·B gathered ones when the lookup has one id per row of x and the table's rows
          // have the LSTM's input size (src/cells/recurrent.ts); both hold here, so the losses below
          // compare that fused path with PyTorch.
          assert.ok(x.lookup, 'the embedding output is recorded as a lookup');
          assert.equal(x.lookup.weight, m.embedding.weight);
          assert.equal(x.lookup.ids.length, lm.T * lm.B, 'one id per row of the LSTM input');
          assert.equal(x.lookup.weight.shape[1], m.lstm.inputSize, "the table's rows have the LSTM's input size");
          assert.deepEqual([...x.shape], [lm.T, lm.B, m.lstm.inputSize]);
          const { output } = m.lstm.forward(x);
          const logits = m.linear.forward(output);
          const loss = crossEntropy(reshape(logits, [lm.T * lm.B, lm.V]), lm.targets[s]);
          // the loss and the norm are read as the Trainer reads them (src/train/host-reads.ts), so a
          // backend read asynchronously runs this test too
          losses.push((await loss.data())[0]);
          opt.zeroGrad();
          backward(loss);
          norms.push(await runAsync(clipGradNormReading(m.parameters(), lm.maxNorm)));
          opt.step();
        }
      } finally {
        setBackend(prev);
      }
      for (let s = 0; s < expected.length; s++) {
        const err = Math.abs(losses[s] - expected[s]) / Math.abs(expected[s]);
        assert.ok(err <= LOSS_TOL[dtype], `step ${s}: loss ${losses[s]} vs PyTorch ${expected[s]} (rel err ${err.toExponential(2)} > ${LOSS_TOL[dtype]})`);
      }
      if (dtype === 'float64') {
        for (let s = 0; s < norms.length; s++) assert.ok(Math.abs(norms[s] - lm.gradNorms64[s]) <= GRAD_NORM_TOL_64 * lm.gradNorms64[s], `grad norm at step ${s}`);
        assert.ok(norms.filter((n) => n > lm.maxNorm).length >= 10, 'clipping fired on most steps');
      }
      assert.ok(losses[losses.length - 1] < losses[0] * 0.7, 'the model learns');
    });
  });
}
