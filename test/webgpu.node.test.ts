/**
 * The WebGPU backend in Node, through the `webgpu` package (Dawn) on whatever Vulkan driver the
 * machine has — Mesa's lavapipe on CI (.ci/run installs it from bookworm-backports: the bookworm
 * version is too old for Dawn). The shared kernel suite runs on it against the float64 references.
 * Without an adapter this test fails rather than skips, naming the package to install.
 */
import { create } from 'webgpu';

import { loadWebGpuBackend } from '../src/backend/webgpu/index.ts';
import { runKernelSuite } from './helpers/kernel-suite.ts';
import { runParitySuite } from './helpers/parity-suite.ts';
import { runTrainParity } from './helpers/train-parity.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { registerBackend } from '../src/backend/registry.ts';

const be = await loadWebGpuBackend({ gpu: create([]) }).catch((e: Error) => {
  throw new Error(`${e.message}: this test needs a Vulkan driver for Dawn — Mesa's lavapipe (mesa-vulkan-drivers from bookworm-backports; .ci/run installs it)`);
});
const label = `webgpu (${be.adapter.description || be.adapter.architecture}) float32`;
runKernelSuite(be, 'float32', { label });
runParitySuite(be, 'float32', label);
const wasm = await createWasmBackend({ threads: 1 });
registerBackend(wasm);
runTrainParity(be, wasm, label);
