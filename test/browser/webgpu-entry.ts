/**
 * The page script of test/webgpu.browser.test.ts, bundled by esbuild with `node:test` and
 * `node:assert/strict` replaced by ./node-test-shim.ts and ./assert-shim.ts: loads the WebGPU backend
 * from navigator.gpu, collects the shared kernel suite, the PyTorch parity suite (float32) and a 50-step char-LM
 * Trainer run against the js backend,
 * runs them, and publishes the adapter and each test's result as `window.__recurWebGpu`.
 */
import { loadWebGpuBackend } from '../../src/backend/webgpu/index.ts';
import { runKernelSuite } from '../helpers/kernel-suite.ts';
import { runParitySuite } from '../helpers/parity-suite.ts';
import { runTrainParity } from '../helpers/train-parity.ts';
import { runRecurrentVsReference } from '../helpers/recurrent-vs-reference.ts';
import { runFusedStepsCheck } from '../helpers/fused-steps.ts';
import { getBackend } from '../../src/backend/registry.ts';
import { runCollected, type CollectedResult } from './node-test-shim.ts';

export type WebGpuPageResult =
  | { ok: true; adapter: { vendor: string; architecture: string; description: string; software: boolean }; results: CollectedResult[]; ms: number }
  | { ok: false; error: string };

async function main(): Promise<WebGpuPageResult> {
  const t0 = performance.now();
  const be = await loadWebGpuBackend();
  const label = `webgpu in Chromium (${be.adapter.architecture || be.adapter.vendor}) float32`;
  runKernelSuite(be, 'float32', { label });
  runParitySuite(be, 'float32', label);
  runRecurrentVsReference(be, label);
  runFusedStepsCheck(be, label);
  runTrainParity(be, getBackend('js'), label);
  const results = await runCollected();
  return { ok: true, adapter: be.adapter, results, ms: Math.round(performance.now() - t0) };
}

const w = globalThis as { __recurWebGpu?: WebGpuPageResult };
main().then(
  (r) => { w.__recurWebGpu = r; },
  (e: unknown) => { w.__recurWebGpu = { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }; },
);
