/**
 * The WebAssembly SIMD (+ threads) backend: `loadWasmBackend()` compiles the kernel module,
 * creates the memory and the worker threads, and registers the backend as 'wasm'.
 *
 *   import { loadWasmBackend } from 'recur/src/backend/wasm/index.ts';
 *   await loadWasmBackend({ threads: 2 });
 *   setBackend('wasm');
 *
 * Works in Node ≥ 20 and in browsers with WebAssembly SIMD; threads need SharedArrayBuffer (always
 * in Node; cross-origin-isolated pages in browsers) and fall back to one thread without it.
 */
import './wasm-types.ts';
import { BackendError } from '../interface.ts';
import { isRecord } from '../../util/options.ts';
import { getBackend, listBackends, registerBackend } from '../registry.ts';
import { WasmBackend } from './backend.ts';
import { instantiate, readVariant, withSharedMemory, type Variant } from './loader.ts';
import { Heap } from './memory.ts';
import { currentPlatform, type Platform } from './platform.ts';
import { ThreadPool } from './threads.ts';

export { WasmBackend, WasmStorage, type WasmBackendStats } from './backend.ts';
export type { Variant } from './loader.ts';

export interface WasmBackendOptions {
  /**
   * Threads including the calling one: GEMMs above a small size are split across them. Default: the
   * number of cores (at most 8). 1 runs everything on the calling thread. Results are bit-identical
   * for every thread count.
   */
  threads?: number;
  /**
   * Use the relaxed-SIMD build (fused multiply-add in the GEMM) when the engine accepts it; falls
   * back to the plain build otherwise. Faster on most CPUs, but its rounding depends on the CPU, so
   * results are reproducible only on the same kind of machine. Default false (the plain build,
   * bit-reproducible everywhere).
   */
  relaxedSimd?: boolean;
  /** Initial memory in MiB (default 16); it grows on demand. */
  initialMemoryMiB?: number;
  /** Memory limit in MiB (default 4096, the wasm32 maximum). */
  maxMemoryMiB?: number;
  /**
   * GEMMs with fewer multiply-adds than this stay on the calling thread (default 2^17, about
   * 5 µs of work on one core; context.ts says how it was measured).
   */
  threadMinWork?: number;
  /**
   * Run each recurrent time step as one fused kernel call (recurrent GEMM + cell, split by hidden
   * units across the threads) instead of a GEMM and a cell kernel (default true). The results are
   * the same bit for bit; false exists to compare the two.
   */
  fusedSteps?: boolean;
  /**
   * Run a stack of unidirectional recurrent layers as a wavefront: each layer on its own thread,
   * layer l at step t while layer l+1 works on step t−1, forward and backward (default true). The
   * results are the same bit for bit; false runs the layers one after another, each step split
   * across the threads.
   */
  pipelineLayers?: boolean;
  /**
   * Fill storage from `allocUninit` with NaN instead of leaving old bytes (default false): a check
   * that callers really write every element before reading it (used by the tests).
   */
  poisonUninit?: boolean;
}

const OPTION_KEYS = ['threads', 'relaxedSimd', 'initialMemoryMiB', 'maxMemoryMiB', 'threadMinWork', 'fusedSteps', 'pipelineLayers', 'poisonUninit'] as const;
const KNOWN_OPTIONS: ReadonlySet<string> = new Set(OPTION_KEYS);
const MAX_THREADS = 64;

/** What this engine supports (the relaxed build is validated only when asked for). */
export interface WasmSupport {
  simd: boolean;
  relaxedSimd: boolean;
  threads: boolean;
}

const moduleCache = new Map<string, Promise<WebAssembly.Module>>();

async function compiled(platform: Platform, v: Variant, shared: boolean): Promise<WebAssembly.Module | null> {
  const key = `${v}/${shared}`;
  let p = moduleCache.get(key);
  if (!p) {
    p = (async () => {
      const raw = await readVariant(platform, v);
      const bytes = shared ? raw : withSharedMemory(raw, false);
      if (!WebAssembly.validate(bytes)) throw new BackendError(`wasm backend: this engine rejects the ${v} kernel module`);
      return WebAssembly.compile(bytes);
    })();
    moduleCache.set(key, p);
  }
  try {
    return await p;
  } catch (e) {
    moduleCache.delete(key);
    if (v === 'relaxed') return null;
    throw e;
  }
}

/** An integer in [1, max]; a type guard, so what passes is known to be a number. */
function isIntIn(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max;
}

/** Throw a TypeError naming the first bad option; afterwards `o` is known to be WasmBackendOptions (or undefined). */
function checkOptions(o: unknown): asserts o is WasmBackendOptions | undefined {
  if (o === undefined) return;
  if (!isRecord(o)) throw new TypeError(`loadWasmBackend: options must be an object such as {threads: 2}, got ${String(o)}`);
  for (const k of Object.keys(o)) {
    if (!KNOWN_OPTIONS.has(k)) throw new TypeError(`loadWasmBackend: unknown option '${k}' (expected one of: ${OPTION_KEYS.join(', ')})`);
  }
  const posInt = (k: string, max: number): void => {
    const v = o[k];
    if (v !== undefined && !isIntIn(v, max)) throw new TypeError(`loadWasmBackend: '${k}' must be an integer in [1, ${max}], got ${String(v)}`);
  };
  posInt('threads', MAX_THREADS);
  posInt('initialMemoryMiB', 4096);
  posInt('maxMemoryMiB', 4096);
  for (const k of ['fusedSteps', 'pipelineLayers', 'poisonUninit'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw new TypeError(`loadWasmBackend: '${k}' must be true or false, got ${String(o[k])}`);
  }
  if (o.threadMinWork !== undefined && !(typeof o.threadMinWork === 'number' && o.threadMinWork >= 0)) {
    throw new TypeError(`loadWasmBackend: 'threadMinWork' must be a non-negative number, got ${String(o.threadMinWork)}`);
  }
  if (o.relaxedSimd !== undefined && typeof o.relaxedSimd !== 'boolean') throw new TypeError(`loadWasmBackend: 'relaxedSimd' must be a boolean, got ${String(o.relaxedSimd)}`);
}

/** Create a wasm backend without registering it (tests use several side by side). */
export async function createWasmBackend(options?: WasmBackendOptions): Promise<WasmBackend> {
  checkOptions(options);
  const o = options ?? {};
  const platform = await currentPlatform();
  const shared = platform.sharedMemory;
  let variant: Variant = 'simd';
  let module: WebAssembly.Module | null = null;
  if (o.relaxedSimd) {
    platform.enableRelaxedSimd();
    module = await compiled(platform, 'relaxed', shared);
    if (module) variant = 'relaxed';
  }
  module ??= await compiled(platform, 'simd', shared);
  if (!module) throw new BackendError('wasm backend: no kernel module could be compiled');
  const maxPages = (o.maxMemoryMiB ?? 4096) * 16;
  const initial = Math.min(maxPages, (o.initialMemoryMiB ?? 16) * 16);
  const memory = new WebAssembly.Memory(shared ? { initial, maximum: maxPages, shared: true } : { initial, maximum: maxPages });
  const kernels = await instantiate(module, memory);
  // the allocator starts above the module's static data, leaving address 0 unused (0 means "none")
  const heap = new Heap(memory, Math.max(kernels.dataEnd(), 1024), maxPages, kernels.zeroBytes);
  const threads = shared ? Math.min(o.threads ?? Math.min(platform.cores(), 8), MAX_THREADS) : 1;
  const pool = threads > 1 ? await ThreadPool.start(platform, module, memory, threads) : null;
  return new WasmBackend({
    kernels, module, memory, heap, pool, variant, threadThreshold: o.threadMinWork, fusedSteps: o.fusedSteps, pipelineLayers: o.pipelineLayers, poisonUninit: o.poisonUninit, weakRegistry: (cb) => platform.weakRegistry(cb),
  });
}

/**
 * Create the wasm backend and register it under the name 'wasm'. `setBackend('wasm')` then makes it
 * the default for new tensors. Loading again replaces the registered one; the replaced backend's
 * worker threads are stopped (its tensors stay usable, single-threaded).
 */
export async function loadWasmBackend(options?: WasmBackendOptions): Promise<WasmBackend> {
  const be = await createWasmBackend(options);
  if (listBackends().includes('wasm')) {
    const old = getBackend('wasm');
    if (old instanceof WasmBackend && old !== be) old.dispose();
  }
  registerBackend(be);
  return be;
}

/** Feature detection without creating a backend. */
export async function wasmSupport(): Promise<WasmSupport> {
  const platform = await currentPlatform();
  // the smallest module using a v128 (i32x4.splat of a constant, dropped)
  const simdProbe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 9, 1, 7, 0, 65, 0, 253, 17, 26, 11]);
  let relaxed = false;
  try {
    platform.enableRelaxedSimd();
    relaxed = (await compiled(platform, 'relaxed', platform.sharedMemory)) !== null;
  } catch {
    relaxed = false;
  }
  return { simd: WebAssembly.validate(simdProbe), relaxedSimd: relaxed, threads: platform.sharedMemory };
}
