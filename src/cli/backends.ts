/**
 * Which backend the number-crunching commands run on. RECUR_BACKEND=js|wasm|webgpu forces one; by
 * default the WebAssembly backend when it loads (it is exact to the reference within float32
 * rounding and several times faster), else the plain-TypeScript one. RECUR_THREADS sets the wasm
 * thread count (default: the cores).
 *
 * WebGPU, in Node through the optional `webgpu` package (Dawn), is chosen by measurement
 * (`chooseTrainingBackend`): by default `recur train` times its own training step on the wasm
 * backend and on a hardware WebGPU adapter and trains on the faster. RECUR_BACKEND=webgpu forces
 * it, a software adapter included. The wasm backend is loaded beside it: the Trainer evaluates and
 * writes model files on a host copy of the weights, and after training the model comes back to
 * the host (`toHost`) for what the command does next.
 */
import { getBackend, listBackends, registerBackend, setBackend } from '../backend/registry.ts';
import type { Backend } from '../backend/interface.ts';
import type { WebGpuBackend, WebGpuBackendOptions } from '../backend/webgpu/index.ts';
import type { Module } from '../nn/module.ts';
import { fastestBackend } from '../train/backend-choice.ts';
import type { Task } from '../train/task.ts';
import { CliError, UsageError } from './args.ts';

const NAMES = ['js', 'wasm', 'webgpu'];

export async function selectBackend(print: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<void> {
  const want = process.env.RECUR_BACKEND;
  if (want !== undefined && !NAMES.includes(want)) {
    throw new UsageError(`RECUR_BACKEND must be one of ${NAMES.map((n) => `'${n}'`).join(', ')}, got '${want}'`, 'Unset it to use the fastest backend that loads.');
  }
  if (want === 'js') return;
  const threadsEnv = process.env.RECUR_THREADS;
  const threads = threadsEnv === undefined ? undefined : Number(threadsEnv);
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new UsageError(`RECUR_THREADS must be a positive integer, got '${threadsEnv}'`, 'Unset it to use one thread per core.');
  }
  try {
    const { loadWasmBackend } = await import('../backend/wasm/index.ts');
    await loadWasmBackend(threads === undefined ? {} : { threads });
    setBackend('wasm');
  } catch (e) {
    if (want === 'wasm') throw new CliError(`the wasm backend did not load: ${(e as Error).message}`);
    // Auto mode: fall back to the reference backend silently.
  }
  if (want === 'webgpu') {
    let gpu: WebGpuBackendOptions['gpu'];
    try {
      gpu = await dawn();
    } catch (e) {
      throw new CliError(`RECUR_BACKEND=webgpu needs the 'webgpu' package in Node (npm install webgpu): ${(e as Error).message}`);
    }
    const { loadWebGpuBackend } = await import('../backend/webgpu/index.ts');
    try {
      const be = await loadWebGpuBackend({ gpu });
      setBackend('webgpu');
      if (be.adapter.software) print(`recur: warning: the WebGPU adapter is a CPU implementation (${be.adapter.description || be.adapter.architecture}); the wasm backend is faster here`);
    } catch (e) {
      throw new CliError(`the webgpu backend did not load: ${(e as Error).message}`);
    }
  }
}

/** Dawn's WebGPU entry (the optional `webgpu` package), made once per process. */
let dawnEntry: Promise<WebGpuBackendOptions['gpu']> | null = null;
function dawn(): Promise<WebGpuBackendOptions['gpu']> {
  dawnEntry ??= import('webgpu').then((m) => m.create([]) as WebGpuBackendOptions['gpu']);
  dawnEntry.catch(() => (dawnEntry = null));
  return dawnEntry;
}

/**
 * The automatic choice for a command that trains, when RECUR_BACKEND is unset: if a hardware WebGPU
 * adapter is there (in Node: the `webgpu` package installed and a GPU driver), the task's training
 * step on `batch` is timed on the host backend and on the GPU, and the model stays on the faster
 * (train/backend-choice.ts says how, and why a measurement rather than a fixed crossover). Without
 * the package nothing is said; a software adapter is not timed (it computes on the same cores as
 * the wasm backend, more slowly); each decision is printed with its figures.
 */
export async function chooseTrainingBackend<B>(task: Task<B>, batch: B, print: (line: string) => void): Promise<void> {
  if (process.env.RECUR_BACKEND !== undefined) return;
  const host = getBackend();
  let gpu: WebGpuBackendOptions['gpu'];
  try {
    gpu = await dawn();
  } catch {
    return; // the optional package is not installed: the CPU it is
  }
  const { createWebGpuBackend } = await import('../backend/webgpu/index.ts');
  let be;
  try {
    be = await createWebGpuBackend({ gpu, allowSoftware: false });
  } catch (e) {
    print(`recur: training on ${host.name}, not WebGPU: ${(e as Error).message.replace(/^webgpu backend: /, '')}`);
    return;
  }
  await keepFasterBackend(task, batch, host, be, print);
}

/** The timing itself: `gpu` registered, the task timed on both, the model kept on the faster (the GPU destroyed if not), the figures printed; returns the backend kept. */
export async function keepFasterBackend<B>(task: Task<B>, batch: B, host: Backend, gpu: WebGpuBackend, print: (line: string) => void): Promise<Backend> {
  registerBackend(gpu);
  const { backend, trials } = await fastestBackend(task, batch, [host, gpu]);
  const ms = (s: number): string => `${(s * 1e3).toPrecision(3)} ms`;
  const figures = trials.map((t) => (t.secondsPerStep === null ? `${t.backend} failed (${t.error})` : `${t.backend} ${ms(t.secondsPerStep)}`));
  const a = gpu.adapter;
  print(`recur: training on ${backend === gpu ? `webgpu (${a.description || a.architecture || a.vendor})` : backend.name}: a step takes ${figures.join(', ')} (timed on the first batch)`);
  // the timed steps left buffers in the GPU's pool: a run that stays on the CPU gives them back
  if (backend !== gpu) gpu.destroy();
  return backend;
}

/**
 * Bring a model trained on a backend read asynchronously (WebGPU) back to the host backend (wasm
 * when loaded, else js), which becomes the default: what follows training in a command — test
 * metrics, sampling, saving — reads the model synchronously. Does nothing on a CPU backend.
 */
export async function toHost(model: Module): Promise<void> {
  if (!model.parameters().some((p) => p.backend.readAsync)) return;
  const host = getBackend(listBackends().includes('wasm') ? 'wasm' : 'js');
  await model.to(host);
  setBackend(host.name);
}
