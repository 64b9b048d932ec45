/**
 * Where a training step of the harness's workloads goes, by backend call: every method of the wasm
 * backend is wrapped with a timer, and one step of W1 (Embedding(65, 256) → LSTM 256 → Linear,
 * T 64, B 32, Adam, clipping at 5, as bench/run.ts) or L2 (the same with 2 layers) is timed call by
 * call. GEMMs are reported by shape, with their GFLOP/s (2·M·N·K flops a call), the fused time
 * loops with theirs (the recurrent products, plus inside a wavefront the upper layers' input
 * projections or dX); compare them with the single-core SIMD128 peak that bench/simd-peak.ts
 * measures (times the threads). The wrapping adds a few µs a call; the step's total is also given
 * unwrapped.
 *
 *   node --import tsx bench/profile-step.ts [--workload W1|L2] [--threads 2] [--steps 10]
 *
 * Reported, not asserted (speed is never a timed test).
 */
import { parseArgs } from 'node:util';
import { Adam, Embedding, LSTM, Linear, Rng, backward, clipGradNorm, crossEntropy } from '../src/index.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { registerBackend, setBackend } from '../src/backend/registry.ts';
import type { LayerDims } from '../src/backend/interface.ts';
import { median } from './lib/measure.ts';

const { values } = parseArgs({ options: { workload: { type: 'string', default: 'L2' }, threads: { type: 'string', default: '2' }, steps: { type: 'string', default: '10' }, layered: { type: 'boolean', default: false } } });
const layers = values.workload === 'W1' ? 1 : values.workload === 'L2' ? 2 : NaN;
if (Number.isNaN(layers)) throw new Error(`--workload: W1 or L2, got ${values.workload}`);
const V = 65, H = 256, T = 64, B = 32, STEPS = Number(values.steps);

const be = await createWasmBackend({ threads: Number(values.threads), pipelineLayers: !values.layered });
registerBackend(be);
setBackend(be.name);

const rng = new Rng(0);
const emb = new Embedding(V, H, { rng });
const lstm = new LSTM({ inputSize: H, hiddenSize: H, numLayers: layers, rng });
const head = new Linear(H, V, { rng });
const params = [...emb.parameters(), ...lstm.parameters(), ...head.parameters()];
const opt = new Adam(params, { lr: 1e-3 });
const data = new Rng(1);
const x = Array.from({ length: T * B }, () => data.int(V));
const y = Array.from({ length: T * B }, () => data.int(V));
const step = (): void => {
  opt.zeroGrad();
  const { output } = lstm.forward(emb.forward(x, [T, B]));
  backward(crossEntropy(head.forward(output), y));
  clipGradNorm(params, 5);
  opt.step();
};
for (let i = 0; i < 3; i++) step();
const plain: number[] = [];
for (let i = 0; i < STEPS; i++) {
  const t0 = performance.now();
  step();
  plain.push(performance.now() - t0);
}

/** Per label: total ms and flops over the timed steps, and the calls. */
const acc = new Map<string, { ms: number; flops: number; calls: number }>();
const add = (label: string, ms: number, flops: number): void => {
  const a = acc.get(label) ?? { ms: 0, flops: 0, calls: 0 };
  a.ms += ms;
  a.flops += flops;
  a.calls++;
  acc.set(label, a);
};
const recurrentFlops = (d: LayerDims, extra: boolean): number => 2 * d.T * d.B * d.G * d.H * (d.H + (extra ? d.I : 0));
const target = be as unknown as Record<string, unknown>;
for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(be))) {
  const fn = target[name];
  if (name === 'constructor' || typeof fn !== 'function') continue;
  const bound = (fn as (...a: unknown[]) => unknown).bind(be);
  target[name] = (...a: unknown[]): unknown => {
    const t0 = performance.now();
    const r = bound(...a);
    const ms = performance.now() - t0;
    if (name === 'gemm') {
      const [ta, tb, M, N, K] = a as [boolean, boolean, number, number, number];
      add(`gemm ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}×${N}×${K}`, ms, 2 * M * N * K);
    } else if (name === 'recurrentForward' || name === 'recurrentBackward') {
      add(`${name} (one layer)`, ms, r ? recurrentFlops(a[1] as LayerDims, false) : 0);
    } else if (name === 'recurrentStackForward' || name === 'recurrentStackBackward') {
      const dims = a[1] as LayerDims[];
      add(`${name} (${r ? 'wavefront' : 'declined'})`, ms, r ? dims.reduce((f, d, l) => f + recurrentFlops(d, l > 0), 0) : 0);
    } else {
      add(name, ms, 0);
    }
    return r;
  };
}
// inside alloc: the forced full GCs the heap runs when it would otherwise grow (memory.ts, `collect`)
const heap = (be as unknown as { ctx: { heap: { collect?: () => void } } }).ctx.heap;
const collect = heap.collect;
if (collect) {
  heap.collect = (): void => {
    const t0 = performance.now();
    collect();
    add('  of which heap.collect (a forced full GC)', performance.now() - t0, 0);
  };
}
const wrapped: number[] = [];
for (let i = 0; i < STEPS; i++) {
  const t0 = performance.now();
  step();
  wrapped.push(performance.now() - t0);
}

const total = wrapped.reduce((s, v) => s + v, 0);
console.log(`${values.workload} on wasm, ${be.threads} thread(s)${values.layered ? ', pipelineLayers: false' : ''}: step ${median(plain).toFixed(1)} ms (median of ${STEPS}), ${median(wrapped).toFixed(1)} ms wrapped\n`);
console.log('| call | ms per step | share | calls per step | GFLOP/s |');
console.log('|---|---:|---:|---:|---:|');
let inCalls = 0;
for (const [label, a] of [...acc].sort((p, q) => q[1].ms - p[1].ms)) {
  if (!label.startsWith(' ')) inCalls += a.ms; // the GC line is part of alloc's
  if (a.ms / total < 0.005) continue;
  const gflops = a.flops > 0 ? (a.flops / (a.ms / 1000) / 1e9).toFixed(1) : '';
  console.log(`| ${label} | ${(a.ms / STEPS).toFixed(2)} | ${((100 * a.ms) / total).toFixed(1)}% | ${(a.calls / STEPS).toFixed(a.calls < STEPS ? 1 : 0)} | ${gflops} |`);
}
const listed = [...acc].filter(([label, a]) => !label.startsWith(' ') && a.ms / total >= 0.005).reduce((s, [, a]) => s + a.ms, 0);
console.log(`| (calls under 0.5% each) | | ${((100 * (inCalls - listed)) / total).toFixed(1)}% | | |`);
console.log(`| (outside backend calls: JavaScript, autograd) | ${((total - inCalls) / STEPS).toFixed(2)} | ${((100 * (total - inCalls)) / total).toFixed(1)}% | | |`);
be.dispose();
