/**
 * The recurrent layers on the wasm backend.
 *
 * 1. wasm vs the js reference, same initial weights and inputs: RNN (tanh, relu), LSTM, GRU × one
 *    or two layers × uni/bidirectional × with/without lengths × with/without initial state —
 *    outputs, final states, and the gradients of the input, the initial states and every parameter.
 *    Tolerances: float64 1e-11 relative (same formulas, different summation order in the GEMMs);
 *    float32 2e-5 relative to (1 + |value|) (the wasm gates use float32 SIMD approximations of
 *    exp/tanh, within a few ulp; the js backend computes them in float64 and rounds).
 *    H = 13 runs the generic time loop (a GEMM and a cell kernel per step); H = 16 (float32) the
 *    backend's fused steps (recurrentForward/Backward: one kernel per step, split by hidden units).
 * 2. Two threads vs one thread at sizes where the GEMMs are split: bit-identical; and the fused
 *    steps vs the generic loop (fusedSteps: false), on 1, 2 and 3 threads: bit-identical.
 * 3. Pipelining across layers: a unidirectional stack run as a wavefront (2 layers on 2 threads, 3 on
 *    3, every cell kind, with lengths and initial states, without biases, a sequence longer than one
 *    wave window) equals the layers run one after another, and both equal the generic loop, bit for
 *    bit; the backend declines where it would not pay (threads ≠ layers, a short sequence); a layer
 *    that fails inside a wave fails the job without hanging the layer waiting on it, and the next
 *    job runs clean.
 * 4. Recurrent layers give their workspaces back (Backend.release).
 * The PyTorch fixtures run on wasm (one and two threads) in the shared parity suite:
 * test/helpers/parity-suite.ts, run by test/torch.parity.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import {
  Adam, BackendError, Embedding, GRU, LSTM, Linear, RNN, Rng, add, backward, crossEntropy, mul, noGrad, setBackend, sum, tensor,
  type DType, type RecurrentBase, type Tensor,
} from '../src/index.ts';
import { sizeClass } from '../src/backend/wasm/memory.ts';
import { JOBS, WAVE_HEADER, WAVE_ROW } from '../src/backend/wasm/threads.ts';
import type { WasmContext } from '../src/backend/wasm/context.ts';
import { getBackend, registerBackend } from '../src/backend/registry.ts';

execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url)), '--if-stale'], { stdio: 'pipe' });
const { createWasmBackend } = await import('../src/backend/wasm/index.ts');

// poisonUninit: buffers from allocUninit start as NaN, so a read-before-write shows in every comparison
const wasm1 = await createWasmBackend({ threads: 1, poisonUninit: true });
// every GEMM split across the threads, however small
const wasm2 = await createWasmBackend({ threads: 2, threadMinWork: 0, poisonUninit: true });
const wasm3 = await createWasmBackend({ threads: 3, threadMinWork: 0, poisonUninit: true });
// the generic time loop: a GEMM and a cell kernel per step
const wasmGeneric = await createWasmBackend({ threads: 1, fusedSteps: false, poisonUninit: true });
// stacks run layer after layer, each step split across the threads (no wavefront)
const wasmLayered = await createWasmBackend({ threads: 2, threadMinWork: 0, pipelineLayers: false, poisonUninit: true });
after(() => {
  for (const b of [wasm1, wasm2, wasm3, wasmGeneric, wasmLayered]) b.dispose();
});
// registered under distinct names so setBackend can pick each
Object.defineProperty(wasm2, 'name', { value: 'wasm-2threads' });
Object.defineProperty(wasm3, 'name', { value: 'wasm-3threads' });
Object.defineProperty(wasmGeneric, 'name', { value: 'wasm-generic-loop' });
Object.defineProperty(wasmLayered, 'name', { value: 'wasm-layered' });
for (const b of [wasm1, wasm2, wasm3, wasmGeneric, wasmLayered]) registerBackend(b);

/** How many stacks each backend ran as a wavefront (forward, backward): wraps its recurrentStack* methods. */
const waves = new Map<string, { forward: number; backward: number }>();
for (const b of [wasm1, wasm2, wasm3, wasmLayered]) {
  const count = { forward: 0, backward: 0 };
  waves.set(b.name, count);
  const fwd = b.recurrentStackForward.bind(b), bwd = b.recurrentStackBackward.bind(b);
  b.recurrentStackForward = (...a) => (fwd(...a) ? (count.forward++, true) : false);
  b.recurrentStackBackward = (...a) => (bwd(...a) ? (count.backward++, true) : false);
}

/** What the failure test reaches inside a backend: its pool, heap and kernels. */
type WasmContextLike = Pick<WasmContext, 'pool' | 'heap' | 'kernels' | 'scratchBase' | 'scratchBytes'>;

type Mode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';
const MODES: Mode[] = ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'];

function make(mode: Mode, o: { I: number; H: number; numLayers: number; bidirectional: boolean; bias?: boolean; dtype: DType; seed: number }): RecurrentBase {
  const base = { inputSize: o.I, hiddenSize: o.H, numLayers: o.numLayers, bidirectional: o.bidirectional, bias: o.bias ?? true, dtype: o.dtype, rng: new Rng(o.seed) };
  if (mode === 'LSTM') return new LSTM(base);
  if (mode === 'GRU') return new GRU(base);
  return new RNN({ ...base, nonlinearity: mode === 'RNN_RELU' ? 'relu' : 'tanh' });
}

/** Runs `fn` with backend `name` as the default for new tensors. */
function withBackend<R>(name: string, fn: () => R): R {
  const prev = getBackend().name;
  setBackend(name);
  try {
    return fn();
  } finally {
    setBackend(prev);
  }
}

interface Run {
  values: Record<string, Float64Array>;
}

/** Build the layer on `backend`, run forward + backward from fixed random data, collect everything. */
function runLayer(backend: string, mode: Mode, cfg: { T: number; B: number; I: number; H: number; numLayers: number; bidirectional: boolean; bias?: boolean; lengths: number[] | null; withState: boolean; dtype: DType; seed: number }): Run {
  return withBackend(backend, () => {
    const { T, B, I, H, numLayers, bidirectional, dtype } = cfg;
    const D = bidirectional ? 2 : 1;
    const layer = make(mode, { I, H, numLayers, bidirectional, bias: cfg.bias, dtype, seed: cfg.seed });
    const rng = new Rng(cfg.seed + 1000);
    const randT = (shape: number[], grad: boolean): Tensor => {
      const n = shape.reduce((a, b) => a * b, 1);
      return tensor(Array.from({ length: n }, () => rng.uniform(-1, 1)), shape, { dtype, requiresGrad: grad });
    };
    const x = randT([T, B, I], true);
    const h0 = cfg.withState ? randT([numLayers * D, B, H], true) : null;
    const c0 = cfg.withState && mode === 'LSTM' ? randT([numLayers * D, B, H], true) : null;
    const out = layer.forward(x, { h: h0, c: c0, lengths: cfg.lengths });
    const gy = randT([T, B, D * H], false), gh = randT([numLayers * D, B, H], false), gc = randT([numLayers * D, B, H], false);
    let L = add(sum(mul(out.output, gy)), sum(mul(out.h, gh)));
    if (out.c) L = add(L, sum(mul(out.c, gc)));
    backward(L);
    const values: Record<string, Float64Array> = {
      y: Float64Array.from(out.output.toArray()),
      hN: Float64Array.from(out.h.toArray()),
      dx: Float64Array.from(x.grad!.toArray()),
    };
    if (out.c) values.cN = Float64Array.from(out.c.toArray());
    if (h0) values.dh0 = Float64Array.from(h0.grad!.toArray());
    if (c0) values.dc0 = Float64Array.from(c0.grad!.toArray());
    for (const [name, p] of layer.namedParameters()) values[`d${name}`] = Float64Array.from(p.grad!.toArray());
    return { values };
  });
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i], a = actual[i];
    const err = Math.abs(a - e);
    if (!(err <= tol * (1 + Math.abs(e)))) assert.fail(`${what}[${i}]: wasm ${a}, reference ${e} (|diff| ${err.toExponential(2)} > tol ${tol})`);
  }
}

function compareRuns(a: Run, b: Run, tol: number, label: string): void {
  assert.deepEqual(Object.keys(a.values).sort(), Object.keys(b.values).sort());
  for (const k of Object.keys(b.values)) {
    if (tol === 0) {
      const x = a.values[k], y = b.values[k];
      assert.equal(x.length, y.length, `${label} ${k}: length`);
      for (let i = 0; i < y.length; i++) if (!Object.is(x[i], y[i])) assert.fail(`${label} ${k}[${i}]: ${x[i]} !== ${y[i]}`);
    } else {
      close(a.values[k], b.values[k], tol, `${label} ${k}`);
    }
  }
}


describe('recurrent layers: wasm vs the js reference', () => {
  let seed = 1;
  for (const dtype of ['float32', 'float64'] as const) {
    const tol = dtype === 'float64' ? 1e-11 : 2e-5;
    for (const mode of MODES) {
      for (const numLayers of [1, 2]) {
        for (const bidirectional of [false, true]) {
          for (const [lengths, withState] of [[null, false], [[6, 2, 5, 1], true], [[3, 6, 6, 4], false]] as const) {
            // H = 13: SIMD gate lanes plus a scalar tail (generic loop); H = 16: the fused steps
            for (const H of dtype === 'float32' ? [13, 16] : [13]) {
              const s = seed++;
              const name = `${mode} ${dtype} H=${H} layers=${numLayers} ${bidirectional ? 'bi' : 'uni'} ${lengths ? 'lengths' : 'full'} ${withState ? 'h0' : 'zero-state'}`;
              test(name, () => {
                const cfg = { T: 6, B: 4, I: 5, H, numLayers, bidirectional, lengths: lengths ? [...lengths] : null, withState, dtype, seed: s };
                compareRuns(runLayer('wasm', mode, cfg), runLayer('js', mode, cfg), tol, name);
              });
            }
          }
        }
      }
    }
  }
});

describe('recurrent layers: two threads give bit-identical results', () => {
  for (const mode of MODES) {
    test(`${mode}, bidirectional, lengths, every GEMM split`, () => {
      const cfg = { T: 5, B: 16, I: 40, H: 33, numLayers: 1, bidirectional: true, lengths: [5, 3, 5, 1, 2, 5, 4, 5, 5, 5, 1, 2, 3, 4, 5, 5], withState: true, dtype: 'float32' as const, seed: 77 };
      compareRuns(runLayer('wasm-2threads', mode, cfg), runLayer('wasm', mode, cfg), 0, `${mode} 2 threads vs 1`);
    });

    test(`${mode}: fused steps on 1, 2 and 3 threads equal the generic loop bit for bit`, () => {
      // H = 24: on 2 threads the units split 16 + 8, on 3 threads 8 + 8 + 8
      const cfg = { T: 5, B: 16, I: 40, H: 24, numLayers: 2, bidirectional: true, lengths: [5, 3, 5, 1, 2, 5, 4, 5, 5, 5, 1, 2, 3, 4, 5, 5], withState: true, dtype: 'float32' as const, seed: 78 };
      const generic = runLayer('wasm-generic-loop', mode, cfg);
      for (const b of ['wasm', 'wasm-2threads', 'wasm-3threads']) compareRuns(runLayer(b, mode, cfg), generic, 0, `${mode} ${b} fused vs generic`);
    });
  }
});

describe('pipelining across layers: the wavefront equals the layers one after another, bit for bit', () => {
  // B = 8: the input GEMM of 2 steps at a time (16 rows), so T = 9 ends on a partial chunk
  const lengths = [9, 3, 7, 1, 2, 9, 4, 0];
  for (const mode of MODES) {
    for (const numLayers of [2, 3]) {
      for (const [withState, lens] of [[true, lengths], [false, null]] as const) {
        test(`${mode}, ${numLayers} layers, ${lens ? 'lengths' : 'full'}, ${withState ? 'h0' : 'zero state'}: on ${numLayers} threads, and declined on ${5 - numLayers}`, () => {
          const cfg = { T: 9, B: 8, I: 12, H: 16, numLayers, bidirectional: false, lengths: lens ? [...lens] : null, withState, dtype: 'float32' as const, seed: 90 + numLayers };
          const layered = runLayer('wasm-layered', mode, cfg);
          // one thread per layer: 2 layers wave on 2 threads, 3 on 3; otherwise layer after layer
          for (const [b, threads] of [['wasm-2threads', 2], ['wasm-3threads', 3]] as const) {
            const before = { ...waves.get(b)! };
            compareRuns(runLayer(b, mode, cfg), layered, 0, `${mode} ${b} vs layered`);
            const n = threads === numLayers ? 1 : 0;
            assert.deepEqual(waves.get(b), { forward: before.forward + n, backward: before.backward + n }, `${b}: ${n ? 'a' : 'no'} wavefront`);
          }
          assert.deepEqual(waves.get('wasm-layered'), { forward: 0, backward: 0 });
          // and both equal the generic loop (a GEMM and a cell kernel per step, one layer at a time)
          compareRuns(layered, runLayer('wasm-generic-loop', mode, cfg), 0, `${mode} layered vs generic loop`);
        });
      }
    }
  }

  test('training: a 2-layer LSTM language model gives the same losses and weights with and without the wavefront', () => {
    const train = (backend: string): { losses: number[]; weights: Float64Array[] } => withBackend(backend, () => {
      const rng = new Rng(7);
      const V = 11, E = 8, H = 16, T = 12, B = 8;
      const emb = new Embedding(V, E, { rng });
      const lstm = new LSTM({ inputSize: E, hiddenSize: H, numLayers: 2, rng });
      const head = new Linear(H, V, { rng });
      const params = [...emb.parameters(), ...lstm.parameters(), ...head.parameters()];
      const opt = new Adam(params, { lr: 0.01 });
      const data = new Rng(8);
      const losses: number[] = [];
      for (let step = 0; step < 6; step++) {
        const ids = Array.from({ length: T * B }, () => data.int(V));
        const targets = Array.from({ length: T * B }, () => data.int(V));
        opt.zeroGrad();
        const { output } = lstm.forward(emb.forward(ids, [T, B]));
        const loss = crossEntropy(head.forward(output), targets);
        backward(loss);
        opt.step();
        losses.push(loss.item());
      }
      return { losses, weights: params.map((p) => Float64Array.from(p.toArray())) };
    });
    const before = { ...waves.get('wasm-2threads')! };
    const waved = train('wasm-2threads'), layered = train('wasm-layered');
    assert.deepEqual(waves.get('wasm-2threads'), { forward: before.forward + 6, backward: before.backward + 6 });
    assert.deepEqual(waved.losses, layered.losses);
    assert.ok(waved.losses[5] < waved.losses[0], `the loss falls: ${waved.losses.join(', ')}`);
    waved.weights.forEach((w, i) => assert.deepEqual(w, layered.weights[i], `parameter ${i}`));
  });

  test('without biases (the input GEMM alone feeds the next layer)', () => {
    for (const mode of ['LSTM', 'GRU'] as const) {
      const cfg = { T: 17, B: 4, I: 8, H: 16, numLayers: 2, bidirectional: false, bias: false, lengths: null, withState: true, dtype: 'float32' as const, seed: 93 };
      const before = waves.get('wasm-2threads')!.forward;
      compareRuns(runLayer('wasm-2threads', mode, cfg), runLayer('wasm-layered', mode, cfg), 0, `${mode} no bias`);
      assert.equal(waves.get('wasm-2threads')!.forward, before + 1);
    }
  });

  test('a layer that fails inside a wave fails the job, and the layer waiting on it does not hang', () => {
    // a hand-made WAVE job on 2 threads: layer 0 names no kernel (index 99), layer 1 waits on it
    const ctx = (wasm2 as unknown as { ctx: WasmContextLike }).ctx;
    const pool = ctx.pool!;
    const L = 2, T = 3, header = WAVE_HEADER.length;
    const rowsBase = L * header, progressBase = (rowsBase + L * T * WAVE_ROW) * 8;
    const [table, bytes] = ctx.heap.alloc(progressBase + 4 * L, false);
    const [block, blockBytes] = ctx.heap.alloc(4096, true); // zeros: B panel, A and C of layer 1's GEMM
    try {
      const f64 = ctx.heap.f64;
      f64.fill(0, table >>> 3, (table + progressBase) >>> 3);
      for (let i = 0; i < L; i++) {
        const h = (table >>> 3) + i * header;
        const rows = table + 8 * (rowsBase + i * T * WAVE_ROW);
        const fields: Partial<Record<(typeof WAVE_HEADER)[number], number>> = {
          steps: T, H: 8, after: i - 1, rows, chunk: 1, split: 0,
          M: 1, K: 8, N: 8, panels: 1, packedB: block, lda: 8, ldc: 8, beta: 0,
        };
        WAVE_HEADER.forEach((name, k) => { f64[h + k] = fields[name] ?? 0; });
        for (let r = (rows >>> 3), t = 0; t < T; t++, r += WAVE_ROW) {
          f64[r] = 99;
          f64[r + WAVE_ROW - 2] = block;
          f64[r + WAVE_ROW - 1] = block + 1024;
        }
      }
      // which thread runs which layer varies: 10 rounds make it near certain that some round fails
      // on both threads at once, which once left the worker's failure flag set for the next job
      const one = wasm2.fromArray(new Float32Array(64).fill(1), 'float32'), out = wasm2.alloc(64, 'float32');
      for (let round = 0; round < 10; round++) {
        ctx.heap.i32.fill(0, (table + progressBase) >>> 2, ((table + progressBase) >>> 2) + L);
        const a = pool.args;
        a[0] = JOBS.WAVE; a[1] = table; a[2] = L; a[3] = ctx.scratchBase; a[4] = ctx.scratchBytes; a[5] = table + progressBase;
        a[6] = 1; a[7] = pool.spin; a[8] = header; a[9] = WAVE_ROW;
        assert.throws(() => pool.run(ctx.kernels, L));
        // the next job (a GEMM split across both threads) runs clean
        wasm2.gemm(false, false, 8, 8, 8, 1, one, 0, 8, one, 0, 8, 0, out, 0, 8);
        assert.deepEqual(Array.from(wasm2.read(out)), new Array(64).fill(8));
      }
    } finally {
      ctx.heap.release(table, bytes);
      ctx.heap.release(block, blockBytes);
    }
    // the pool still works: a stack through the wavefront equals the layered one
    const cfg = { T: 9, B: 8, I: 12, H: 16, numLayers: 2, bidirectional: false, lengths: null, withState: false, dtype: 'float32' as const, seed: 96 };
    compareRuns(runLayer('wasm-2threads', 'GRU', cfg), runLayer('wasm-layered', 'GRU', cfg), 0, 'GRU after a failed wave');
  });

  test('declined where the layers cannot overlap: a short sequence (one streaming step), or one thread', () => {
    for (const T of [1, 7]) {
      const cfg = { T, B: 8, I: 12, H: 16, numLayers: 2, bidirectional: false, lengths: null, withState: false, dtype: 'float32' as const, seed: 94 };
      const before = { ...waves.get('wasm-2threads')! };
      compareRuns(runLayer('wasm-2threads', 'LSTM', cfg), runLayer('wasm-layered', 'LSTM', cfg), 0, `LSTM T=${T}`);
      assert.deepEqual(waves.get('wasm-2threads'), before, `T = ${T} < 4 chunks of 2 steps: layer after layer`);
    }
  });

  test('a sequence longer than one wave window (1024 steps), and a 1-thread backend declines', () => {
    const cfg = { T: 1100, B: 2, I: 8, H: 8, numLayers: 2, bidirectional: false, lengths: null, withState: true, dtype: 'float32' as const, seed: 95 };
    const before = waves.get('wasm-2threads')!.forward;
    compareRuns(runLayer('wasm-2threads', 'LSTM', cfg), runLayer('wasm-layered', 'LSTM', cfg), 0, 'LSTM T=1100 wavefront vs layered');
    assert.equal(waves.get('wasm-2threads')!.forward, before + 1);
    compareRuns(runLayer('wasm', 'LSTM', cfg), runLayer('wasm-layered', 'LSTM', cfg), 0, 'LSTM T=1100 1 thread vs layered');
    assert.equal(waves.get('wasm')!.forward, 0);
  });
});

describe('recurrent layers give their workspaces back (Backend.release)', () => {
  const bytes = (t: Tensor): number => sizeClass(4 * t.size);
  test('a released storage is back in the allocator at once, and using it again is a clear error', () => {
    const s = wasm1.alloc(5000, 'float32');
    const live = wasm1.stats().liveBytes;
    wasm1.release(s);
    assert.equal(wasm1.stats().liveBytes, live - sizeClass(4 * 5000));
    assert.throws(() => wasm1.fill(s, 1, 0, 10), (e: Error) => e instanceof BackendError && /released/.test(e.message));
  });

  for (const mode of MODES) {
    test(`${mode}: forward without gradients keeps only its outputs; backward keeps only gradients`, () => withBackend('wasm', () => {
      const layer = make(mode, { I: 16, H: 32, numLayers: 1, bidirectional: true, dtype: 'float32', seed: 5 });
      const x = tensor(Array.from({ length: 20 * 8 * 16 }, (_, i) => Math.sin(i)), [20, 8, 16], { requiresGrad: true });
      // no gradients: the workspace (far larger than the outputs) goes back right after forward
      let before = wasm1.stats().liveBytes;
      const r0 = noGrad(() => layer.forward(x));
      const outputs = bytes(r0.output) + bytes(r0.h) + (r0.c ? bytes(r0.c) : 0);
      assert.ok(wasm1.stats().liveBytes - before <= outputs, `forward kept ${wasm1.stats().liveBytes - before} bytes, its outputs take ${outputs}`);
      // with gradients: after backward, what is new is the gradients (and the root's gradient copy)
      const r = layer.forward(x);
      const gy = tensor(Array.from({ length: r.output.size }, (_, i) => Math.cos(i)), r.output.shape);
      before = wasm1.stats().liveBytes;
      backward(r.output, gy);
      const grads = bytes(r.output) + bytes(x) + layer.parameters().reduce((n, p) => n + bytes(p), 0);
      assert.ok(wasm1.stats().liveBytes - before <= grads, `backward kept ${wasm1.stats().liveBytes - before} bytes, the gradients take ${grads}`);
    }));
  }
});
