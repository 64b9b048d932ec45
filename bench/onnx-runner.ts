/**
 * recur's ONNX runner (`loadOnnx`) against onnxruntime-node on one exported LSTM (H 256, input 256):
 *
 *   batch forward   T 64, B 32: sequences per second, and recur's share of onnxruntime's throughput
 *   streaming       B 1, one step at a time with the state fed back: microseconds per step
 *
 * Each figure also gives the library's own layer (`LSTM.forward` under noGrad, same backend, same
 * shapes, inputs already on the backend): the runner's time above it is what the interpreter
 * costs around the fused layer (copies in and out, graph bookkeeping).
 *
 * `node --import tsx bench/onnx-runner.ts [wasm] [--ort-threads=N]` (default: the current default backend; `wasm` runs
 * recur on the WebAssembly backend). Each figure is the median of 5 rounds after a warm-up. The
 * numbers are reported, not asserted: speed is measured here, never in tests.
 */
import * as ort from 'onnxruntime-node';
import { LSTM, Rng, Tensor, noGrad, registerBackend, setBackend } from '../src/index.ts';
import { exportOnnx } from '../src/onnx/export.ts';
import { loadOnnx } from '../src/onnx/model.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';

const H = 256, I = 256, T = 64, B = 32, STREAM_STEPS = 64;
const useWasm = process.argv.includes('wasm');

function rnd(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    v[i] = (x / 2 ** 32) * 2 - 1;
  }
  return v;
}
function median(a: number[]): number {
  const b = [...a].sort((p, q) => p - q);
  return b[b.length >> 1];
}
/**
 * Median ms per call of each of `fns` over `rounds` rounds of `reps` calls, after `warm` calls:
 * enough for the JIT to optimise the per-call JavaScript (a batch-1 step is mostly that) and for
 * the backend's memory to reach its working size, as in a long-running server. The rounds of the
 * contenders alternate, so a drift of the machine or of the process's memory state (garbage the
 * one leaves for the other's collections) is shared rather than charged to whichever runs last.
 */
async function time(fns: (() => unknown)[], reps: number, warm: number, rounds = 5): Promise<number[]> {
  for (const fn of fns) for (let i = 0; i < warm; i++) await fn();
  const r: number[][] = fns.map(() => []);
  for (let k = 0; k < rounds; k++) {
    for (const [j, fn] of fns.entries()) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) await fn();
      r[j].push((performance.now() - t0) / reps);
    }
  }
  return r.map(median);
}

const backend = useWasm ? await createWasmBackend() : undefined;
if (backend) {
  // the library layer's parameters live on the same backend as the runner's
  registerBackend(backend);
  setBackend(backend.name);
}
const lstm = new LSTM({ inputSize: I, hiddenSize: H, rng: new Rng(1) });
const bytes = exportOnnx(lstm, { steps: [''], state: true });
const recur = loadOnnx(bytes, backend ? { backend } : {});
// onnxruntime's intra-op threads: --ort-threads=N (default 1; on this 2-core machine 1 thread is
// often its faster configuration, so run both and compare with the faster)
const ortThreads = Number(process.argv.find((a) => a.startsWith('--ort-threads='))?.slice('--ort-threads='.length) ?? 1);
const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: ortThreads, interOpNumThreads: 1 });

// batch forward: one [T, B, I] sequence batch from zero state
const x = rnd(T * B * I, 2), h0 = new Float32Array(B * H), c0 = new Float32Array(B * H);
const feeds = { input: new ort.Tensor('float32', x, [T, B, I]), h0: new ort.Tensor('float32', h0, [1, B, H]), c0: new ort.Tensor('float32', c0, [1, B, H]) };
const xT = new Tensor(recur.backend.fromArray(x, 'float32'), [T, B, I]);
const [recurBatch, ortBatch, layerBatch] = await time([
  () => recur.run({ input: { shape: [T, B, I], data: x }, h0: { shape: [1, B, H], data: h0 }, c0: { shape: [1, B, H], data: c0 } }),
  () => session.run(feeds),
  () => noGrad(() => lstm.forward(xT)),
], 3, 3);

// streaming: B 1, T 1, the state fed back each step
const xs = rnd(STREAM_STEPS * I, 3);
const recurStream = (): void => {
  let h: ArrayLike<number> = new Float32Array(H), c: ArrayLike<number> = new Float32Array(H);
  for (let t = 0; t < STREAM_STEPS; t++) {
    const o = recur.run({ input: { shape: [1, 1, I], data: xs.subarray(t * I, (t + 1) * I) }, h0: { shape: [1, 1, H], data: h }, c0: { shape: [1, 1, H], data: c } });
    h = o.hn.data;
    c = o.cn.data;
  }
};
const ortStream = async (): Promise<void> => {
  let h: ort.Tensor = new ort.Tensor('float32', new Float32Array(H), [1, 1, H]), c: ort.Tensor = new ort.Tensor('float32', new Float32Array(H), [1, 1, H]);
  for (let t = 0; t < STREAM_STEPS; t++) {
    const o = await session.run({ input: new ort.Tensor('float32', xs.slice(t * I, (t + 1) * I), [1, 1, I]), h0: h, c0: c });
    h = o.hn;
    c = o.cn;
  }
};

// the library layer streaming: the state stays a backend tensor, the output is read back each step
const layerStream = (): void => noGrad(() => {
  let state: { h: Tensor; c: Tensor } | undefined;
  for (let t = 0; t < STREAM_STEPS; t++) {
    const xt = new Tensor(recur.backend.fromArray(xs.subarray(t * I, (t + 1) * I), 'float32'), [1, 1, I]);
    const o = lstm.forward(xt, state ?? {});
    o.output.toArray();
    state = { h: o.h, c: o.c! };
  }
});
const [recurStep, ortStep, layerStep] = await time([recurStream, ortStream, layerStream], 2, 30);

const seqPerS = (ms: number): string => (B / (ms / 1000)).toFixed(0);
console.log(`LSTM H ${H}, I ${I}; recur on ${recur.backend.name}, onnxruntime-node ${ortThreads} thread${ortThreads === 1 ? "" : "s"}`);
console.log(`batch forward T ${T} B ${B}:  recur ${recurBatch.toFixed(1)} ms (${seqPerS(recurBatch)} seq/s)   onnxruntime ${ortBatch.toFixed(1)} ms (${seqPerS(ortBatch)} seq/s)   recur/onnxruntime throughput ${(ortBatch / recurBatch).toFixed(2)}x`);
const us = (ms: number): string => ((ms / STREAM_STEPS) * 1000).toFixed(0);
const over = (runner: number, layer: number): string => `${runner >= layer ? '+' : '−'}${Math.abs((runner / layer - 1) * 100).toFixed(0)}%`;
console.log(`streaming B 1, per step:   recur ${us(recurStep)} us   onnxruntime ${us(ortStep)} us   ratio ${(ortStep / recurStep).toFixed(2)}x`);
console.log(`recur's LSTM layer itself: batch ${layerBatch.toFixed(1)} ms (runner ${over(recurBatch, layerBatch)})   streaming ${us(layerStep)} us/step (runner ${over(recurStep, layerStep)})`);
