/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: `loadWebGpuBackend()` finds an adapter, creates the device and registers the
 * backend as 'webgpu'.
 *
 *   import { loadWebGpuBackend } from 'recurjs/webgpu';
 *   const be = await loadWebGpuBackend();            // browsers: navigator.gpu
 *   // Node: import { create } from 'webgpu'; await loadWebGpuBackend({ gpu: create([]) });
 *
 * Without an adapter it throws a BackendError that says why (no WebGPU in this engine, no adapter,
 * a device request refused). Reads are asynchronous: `await tensor.data()`.
 */
import { BackendError } from '../interface.ts';
import { isRecord } from '../../util/options.ts';
import { registerBackend } from '../registry.ts';
import { WebGpuBackend, type WebGpuAdapterInfo } from './backend.ts';
import { GpuRuntime } from './runtime.ts';

export { WebGpuBackend, WebGpuStorage, type WebGpuAdapterInfo } from './backend.ts';

/** The part of the WebGPU entry object (`navigator.gpu`, or `create()` of Node's `webgpu` package) used here. */
export interface GpuEntry {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<unknown>;
}

export interface WebGpuBackendOptions {
  /** The WebGPU entry point; default `navigator.gpu`. In Node, `create([])` from the `webgpu` package. */
  gpu?: GpuEntry;
  /** Adapter preference (default 'high-performance'). */
  powerPreference?: 'low-power' | 'high-performance';
  /**
   * Accept a CPU implementation of WebGPU (SwiftShader, lavapipe) as the adapter (default true:
   * the tests run on them). `false` refuses it with a BackendError before a device is made — the
   * automatic choice's first rule: on a software adapter the wasm backend is always faster.
   */
  allowSoftware?: boolean;
}

const OPTION_KEYS = ['gpu', 'powerPreference', 'allowSoftware'] as const;

/** Limits worth more than the defaults, raised to what the adapter offers. */
const RAISED_LIMITS = ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize'] as const;
/** The most storage bindings one kernel uses (the LSTM step backward: nine float arrays and the lengths). */
const NEEDED_STORAGE_BUFFERS = 10;

function checkOptions(o: unknown): asserts o is WebGpuBackendOptions | undefined {
  if (o === undefined) return;
  if (!isRecord(o)) throw new TypeError(`loadWebGpuBackend: options must be an object, got ${String(o)}`);
  for (const k of Object.keys(o)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k)) throw new TypeError(`loadWebGpuBackend: unknown option '${k}' (expected one of: ${OPTION_KEYS.join(', ')})`);
  }
  const gpu = o.gpu as { requestAdapter?: unknown } | null | undefined;
  if (gpu !== undefined && (typeof gpu !== 'object' || gpu === null || typeof gpu.requestAdapter !== 'function')) {
    throw new TypeError('loadWebGpuBackend: \'gpu\' must be a WebGPU entry object with requestAdapter (navigator.gpu, or create() of the webgpu package)');
  }
  if (o.powerPreference !== undefined && o.powerPreference !== 'low-power' && o.powerPreference !== 'high-performance') {
    throw new TypeError(`loadWebGpuBackend: 'powerPreference' must be 'low-power' or 'high-performance', got ${String(o.powerPreference)}`);
  }
  if (o.allowSoftware !== undefined && typeof o.allowSoftware !== 'boolean') throw new TypeError(`loadWebGpuBackend: 'allowSoftware' must be true or false, got ${String(o.allowSoftware)}`);
}

/** Create a WebGPU backend without registering it. */
export async function createWebGpuBackend(options?: WebGpuBackendOptions): Promise<WebGpuBackend> {
  checkOptions(options);
  const entry = (options?.gpu ?? (globalThis as { navigator?: { gpu?: GpuEntry } }).navigator?.gpu) as GPU | undefined;
  if (!entry || typeof entry.requestAdapter !== 'function') {
    throw new BackendError('webgpu backend: this engine has no WebGPU (no navigator.gpu; in Node pass { gpu: create([]) } from the \'webgpu\' package)');
  }
  const adapter = await entry.requestAdapter({ powerPreference: options?.powerPreference ?? 'high-performance' });
  if (!adapter) throw new BackendError('webgpu backend: no WebGPU adapter (WebGPU disabled, no GPU driver, or a blocklisted GPU)');
  const info = (adapter as { info?: { vendor: string; architecture: string; description: string } }).info ?? { vendor: '', architecture: '', description: '' };
  const adapterInfo: WebGpuAdapterInfo = {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    // the fallback flag is what browsers set for SwiftShader; lavapipe reports itself by name
    software: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe|software/i.test(`${info.vendor} ${info.architecture} ${info.description}`),
  };
  if (adapterInfo.software && options?.allowSoftware === false) {
    throw new BackendError(`webgpu backend: the adapter is a CPU implementation (${adapterInfo.description || adapterInfo.architecture || adapterInfo.vendor}), slower than the wasm backend`);
  }
  if (adapter.limits.maxStorageBuffersPerShaderStage < NEEDED_STORAGE_BUFFERS) {
    throw new BackendError(`webgpu backend: the adapter allows ${adapter.limits.maxStorageBuffersPerShaderStage} storage buffers per shader; the recurrent kernels need ${NEEDED_STORAGE_BUFFERS}`);
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of RAISED_LIMITS) requiredLimits[k] = adapter.limits[k];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits });
  } catch (e) {
    throw new BackendError(`webgpu backend: the adapter refused a device (${(e as Error).message})`);
  }
  return new WebGpuBackend(new GpuRuntime(device, entry), adapterInfo);
}

/** Create the WebGPU backend and register it as 'webgpu'; `setBackend('webgpu')` makes it the default. */
export async function loadWebGpuBackend(options?: WebGpuBackendOptions): Promise<WebGpuBackend> {
  const be = await createWebGpuBackend(options);
  registerBackend(be);
  return be;
}
