/**
 * The WebGPU backend against the wasm backend on the recurrent layer's training step: a stacked
 * LSTM forward and backward (loss Σ y·R, so every gradient is computed), timed until the GPU has
 * finished (one gradient value read back per step, as a training loop reads its loss).
 *
 *   node --import tsx bench/webgpu.ts                 # W1's LSTM (T 64, B 32, I 256, H 256, 1 layer)
 *   node --import tsx bench/webgpu.ts --large         # T 256, B 256, H 1024, 2 layers (a GPU's workload)
 *   node --import tsx bench/webgpu.ts --torch         # also PyTorch (CUDA when it has it) on the same shape
 *   node --import tsx bench/webgpu.ts --gpu           # the one-shot GPU run: both shapes, WebGPU and
 *                                                     # PyTorch (cuDNN), the wasm backend on W1 only
 *   node --import tsx bench/webgpu.ts --crossover     # where WebGPU overtakes wasm: the automatic
 *                                                     # choice (fastestBackend) on a char-LM, H × B
 *   ... --generic                                     # WebGPU without its fused forward steps
 *
 * The --crossover sweep (part of --gpu too) runs the code `recur train` runs when RECUR_BACKEND is
 * unset: the task's training step timed on each backend, the model kept on the faster. On a
 * software adapter it shows the crossover is never reached; on a GPU it is the figure the automatic
 * choice stands on.
 *
 * Then batch-1 streaming: one step at a time with the state carried and the output read back.
 * In Node the adapter comes from the `webgpu` package (Dawn); on a machine without a GPU that is a
 * CPU implementation (lavapipe), and the figure says so: it is not a GPU figure. Tokens/s = T·B per
 * step; the median of 5 timed steps after 2 warm-up steps.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { create } from 'webgpu';

import { LSTM, Rng, add, backward, mul, setBackend, sum, tensor, type Tensor } from '../src/index.ts';
import type { Backend } from '../src/backend/interface.ts';
import { buildLMFromText } from '../src/models/lm.ts';
import { fastestBackend } from '../src/train/backend-choice.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { loadWebGpuBackend } from '../src/backend/webgpu/index.ts';
import { registerBackend } from '../src/backend/registry.ts';

interface Shape { name: string; T: number; B: number; I: number; H: number; L: number }
const W1: Shape = { name: 'W1', T: 64, B: 32, I: 256, H: 256, L: 1 };
const LARGE: Shape = { name: 'large', T: 256, B: 256, I: 1024, H: 1024, L: 2 };
const gpuRun = process.argv.includes('--gpu');
const crossover = gpuRun || process.argv.includes('--crossover');
const shapes = gpuRun ? [W1, LARGE] : crossover ? [] : [process.argv.includes('--large') ? LARGE : W1];
const withTorch = gpuRun || process.argv.includes('--torch');

function median(a: number[]): number { const b = [...a].sort((x, y) => x - y); return b[b.length >> 1]; }

async function stepMs({ T, B, I, H, L }: Shape, be: Backend, label: string): Promise<void> {
  setBackend(be.name);
  const rng = new Rng(1);
  const rand = (n: number): number[] => Array.from({ length: n }, () => rng.uniform(-1, 1));
  const lstm = new LSTM({ inputSize: I, hiddenSize: H, numLayers: L });
  const x = tensor(rand(T * B * I), [T, B, I]);
  const R = tensor(rand(T * B * H), [T, B, H]);
  const step = async (): Promise<void> => {
    for (const p of lstm.parameters()) p.grad = null;
    const { output, h } = lstm.forward(x);
    backward(add(sum(mul(output, R)), sum(h)));
    const g: Tensor = lstm.parameters()[0].grad!;
    await g.data(); // waits for the whole step on an asynchronous backend
  };
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    await step();
    if (i >= 2) times.push(performance.now() - t0);
  }
  const ms = median(times);
  console.log(`${label}: ${ms.toFixed(1)} ms/step, ${Math.round((T * B) / (ms / 1000)).toLocaleString('en-US')} tokens/s (spread ${Math.min(...times).toFixed(1)}–${Math.max(...times).toFixed(1)} ms)`);
}

/** Batch-1 streaming: one step of T 1, the state carried, the output read each step (a sampler needs it). */
async function streamUs({ I, H, L }: Shape, be: Backend, label: string): Promise<void> {
  setBackend(be.name);
  const rng = new Rng(2);
  const lstm = new LSTM({ inputSize: I, hiddenSize: H, numLayers: L });
  lstm.eval();
  const x = tensor(Array.from({ length: I }, () => rng.uniform(-1, 1)), [1, 1, I]);
  let state: { h: Tensor; c: Tensor | null } | null = null;
  const step = async (): Promise<void> => {
    const r = lstm.forward(x, state ? { h: state.h, c: state.c } : {});
    state = { h: r.h, c: r.c ?? null };
    await r.output.data();
  };
  for (let i = 0; i < 20; i++) await step();
  const rounds: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) await step();
    rounds.push(((performance.now() - t0) / 50) * 1000);
  }
  console.log(`${label}: batch-1 streaming ${median(rounds).toFixed(0)} µs/step (spread ${Math.min(...rounds).toFixed(0)}–${Math.max(...rounds).toFixed(0)})`);
}

/** The automatic choice on a char-LM (T 64, 1 layer) for each H × B: both backends' step times, and the one kept. */
async function crossoverSweep(wasm: Backend, gpu: Backend, Hs: number[], Bs: number[]): Promise<void> {
  const text = Array.from({ length: 4000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join('');
  console.log('crossover: char-LM (embedding 64, LSTM, T 64), the training step as fastestBackend times it (median, ≥ 0.5 s or 5 steps)');
  for (const H of Hs) {
    for (const B of Bs) {
      setBackend(wasm.name);
      const { task, train } = buildLMFromText({ embeddingDim: 64, hiddenSize: H, numLayers: 1, seqLen: 64, batchSize: B, stepsPerEpoch: 10, evalBatchSize: 1, seed: 1 }, text);
      const { backend, trials } = await fastestBackend(task, train.get(0, 0), [wasm, gpu], { minSeconds: 0.5, maxSteps: 5 });
      const ms = Object.fromEntries(trials.map((t) => [t.backend, t.secondsPerStep === null ? NaN : t.secondsPerStep * 1e3]));
      console.log(`  H ${String(H).padStart(4)}, B ${String(B).padStart(3)}: wasm (2 threads) ${ms.wasm.toFixed(1)} ms, webgpu ${ms.webgpu.toFixed(1)} ms — wasm ÷ webgpu ${(ms.wasm / ms.webgpu).toFixed(2)}, keeps ${backend.name}`);
    }
  }
}

const wasm = await createWasmBackend({ threads: 2 });
registerBackend(wasm);
const gpu = await loadWebGpuBackend({ gpu: create([]) });
gpu.fusedSteps = !process.argv.includes('--generic');
const a = gpu.adapter;
const gpuLabel = `recur-webgpu${gpu.fusedSteps ? '' : ' generic loop'} (${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ')}${a.software ? ' — a software adapter, not a GPU figure' : ''})`;
for (const sh of shapes) {
  const { T, B, I, H, L } = sh;
  console.log(`${sh.name}: LSTM T ${T}, B ${B}, I ${I}, H ${H}, ${L} layer(s), forward + backward; streaming at batch 1`);
  // the large shape takes minutes a step on the wasm backend: it is the GPU's workload
  if (sh === W1) {
    await stepMs(sh, wasm, 'recur-wasm (2 threads)');
    await streamUs(sh, wasm, 'recur-wasm (2 threads)');
  }
  await stepMs(sh, gpu, gpuLabel);
  await streamUs(sh, gpu, gpuLabel);
  if (withTorch) {
    const script = fileURLToPath(new URL('./webgpu_torch.py', import.meta.url));
    const r = spawnSync('/usr/bin/python3', [script, ...[T, B, I, H, L].map(String)], { encoding: 'utf8' });
    process.stdout.write(r.status === 0 ? r.stdout : `PyTorch: failed (${r.stderr.trim().split('\n').pop()})\n`);
  }
}
if (crossover) {
  // on a software adapter the sweep stays small (every WebGPU step runs on the CPU)
  if (gpuRun || !a.software) await crossoverSweep(wasm, gpu, [64, 128, 256, 512, 1024], [1, 8, 32, 128]);
  else await crossoverSweep(wasm, gpu, [64, 128, 256], [1, 8, 32]);
}
