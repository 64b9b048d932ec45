/**
 * Which backend the number-crunching commands run on. RECUR_BACKEND=js|wasm|webgpu forces one; by
 * default the WebAssembly backend when it loads (it is exact to the reference within float32
 * rounding and several times faster), else the plain-TypeScript one. RECUR_THREADS sets the wasm
 * thread count (default: the cores).
 *
 * WebGPU is never picked by default: no GPU has measured where it overtakes the wasm backend yet,
 * and on a software adapter (SwiftShader, lavapipe) it is far slower. RECUR_BACKEND=webgpu asks for
 * it; in Node that needs the `webgpu` package (Dawn). The wasm backend is loaded beside it: the
 * Trainer evaluates and writes model files on a host copy of the weights, and after training the
 * model comes back to the host (`toHost`) for what the command does next.
 */
import { getBackend, listBackends, setBackend } from '../backend/registry.ts';
import type { Module } from '../nn/module.ts';
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
    let gpu: unknown;
    try {
      const dawn = await import('webgpu');
      gpu = dawn.create([]);
    } catch (e) {
      throw new CliError(`RECUR_BACKEND=webgpu needs the 'webgpu' package in Node (npm install webgpu): ${(e as Error).message}`);
    }
    const { loadWebGpuBackend } = await import('../backend/webgpu/index.ts');
    try {
      const be = await loadWebGpuBackend({ gpu: gpu as { requestAdapter(): Promise<unknown> } });
      setBackend('webgpu');
      if (be.adapter.software) print(`recur: warning: the WebGPU adapter is a CPU implementation (${be.adapter.description || be.adapter.architecture}); the wasm backend is faster here`);
    } catch (e) {
      throw new CliError(`the webgpu backend did not load: ${(e as Error).message}`);
    }
  }
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
