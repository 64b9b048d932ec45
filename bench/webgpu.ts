/**
 * The WebGPU backend against the wasm backend on the recurrent layer's training step: a stacked
 * LSTM forward and backward (loss Σ y·R, so every gradient is computed), timed until the GPU has
 * finished (one gradient value read back per step, as a training loop reads its loss).
 *
 *   node --import tsx bench/webgpu.ts                 # W1's LSTM (T 64, B 32, I 256, H 256, 1 layer)
 *   node --import tsx bench/webgpu.ts --large         # T 256, B 256, H 1024, 2 layers (a GPU's workload)
 *   node --import tsx bench/webgpu.ts --torch         # also PyTorch (CUDA when it has it) on the same shape
 *
 * In Node the adapter comes from the `webgpu` package (Dawn); on a machine without a GPU that is a
 * CPU implementation (lavapipe), and the figure says so: it is not a GPU figure. Tokens/s = T·B per
 * step; the median of 5 timed steps after 2 warm-up steps.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { create } from 'webgpu';

import { LSTM, Rng, add, backward, mul, setBackend, sum, tensor, type Tensor } from '../src/index.ts';
import type { Backend } from '../src/backend/interface.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { loadWebGpuBackend } from '../src/backend/webgpu/index.ts';
import { registerBackend } from '../src/backend/registry.ts';

const large = process.argv.includes('--large');
const shape = large ? { T: 256, B: 256, I: 1024, H: 1024, L: 2 } : { T: 64, B: 32, I: 256, H: 256, L: 1 };
const { T, B, I, H, L } = shape;

function median(a: number[]): number { const b = [...a].sort((x, y) => x - y); return b[b.length >> 1]; }

async function stepMs(be: Backend, label: string): Promise<void> {
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

console.log(`LSTM T ${T}, B ${B}, I ${I}, H ${H}, ${L} layer(s): forward + backward`);
const wasm = await createWasmBackend({ threads: 2 });
registerBackend(wasm);
await stepMs(wasm, 'recur-wasm (2 threads)');
const gpu = await loadWebGpuBackend({ gpu: create([]) });
const a = gpu.adapter;
await stepMs(gpu, `recur-webgpu (${a.vendor} ${a.architecture} ${a.description}${a.software ? ' — a software adapter, not a GPU figure' : ''})`);

if (process.argv.includes('--torch')) {
  const script = fileURLToPath(new URL('./webgpu_torch.py', import.meta.url));
  const r = spawnSync('/usr/bin/python3', [script, ...[T, B, I, H, L].map(String)], { encoding: 'utf8' });
  process.stdout.write(r.status === 0 ? r.stdout : `PyTorch: failed (${r.stderr.trim().split('\n').pop()})\n`);
}
