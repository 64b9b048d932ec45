/**
 * PyTorch parity on every CPU backend: the shared suite (test/helpers/parity-suite.ts) — the
 * recurrent layer fixtures and the char-LM training run — once per entry of `PARITY_BACKENDS` (js,
 * wasm on one thread, wasm on two threads), each in float64 and float32. The WebGPU backend runs the
 * same suite in test/webgpu.node.test.ts and test/webgpu.browser.test.ts.
 */
import { after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import type { DType } from '../src/index.ts';
import type { Backend } from '../src/backend/interface.ts';
import { getBackend, registerBackend } from '../src/backend/registry.ts';
import { runParitySuite } from './helpers/parity-suite.ts';

interface ParityBackend {
  /** Shown in the test tree, e.g. `wasm 2 threads`. */
  label: string;
  dtypes: readonly DType[];
  /** Creates the backend, registered under a name no other entry uses; `dispose` lets it go. */
  create(): Promise<{ backend: Backend; dispose?: () => void }>;
}

/** The wasm kernel module is built by `npm run build:wasm`; if its sources changed since, rebuild it first. */
async function wasmBackend(name: string, options: { threads: number; threadMinWork?: number }): Promise<{ backend: Backend; dispose: () => void }> {
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url)), '--if-stale'], { stdio: 'pipe' });
  const { createWasmBackend } = await import('../src/backend/wasm/index.ts');
  // poisonUninit: buffers from allocUninit start as NaN, so a read-before-write fails the comparison
  const b = await createWasmBackend({ ...options, poisonUninit: true });
  // distinct names so that setBackend can pick each configuration
  if (b.name !== name) Object.defineProperty(b, 'name', { value: name });
  registerBackend(b);
  return { backend: b, dispose: () => b.dispose() };
}

/** Every backend the parity suite runs on, in both dtypes. */
const PARITY_BACKENDS: readonly ParityBackend[] = [
  { label: 'js', dtypes: ['float64', 'float32'], create: async () => ({ backend: getBackend('js') }) },
  { label: 'wasm 1 thread', dtypes: ['float64', 'float32'], create: () => wasmBackend('wasm', { threads: 1 }) },
  // threadMinWork 0: every GEMM is split across the two threads, however small the fixture
  { label: 'wasm 2 threads', dtypes: ['float64', 'float32'], create: () => wasmBackend('wasm-2threads', { threads: 2, threadMinWork: 0 }) },
];

/** Creates each backend of `backends` and runs the whole suite on it in each of its dtypes. */
async function runParitySuites(backends: readonly ParityBackend[]): Promise<void> {
  for (const entry of backends) {
    const { backend, dispose } = await entry.create();
    if (dispose) after(dispose);
    for (const dtype of entry.dtypes) runParitySuite(backend, dtype, `${entry.label} ${dtype}`);
  }
}

// ---- the fixtures -------------------------------------------------------------------------------

await runParitySuites(PARITY_BACKENDS);
