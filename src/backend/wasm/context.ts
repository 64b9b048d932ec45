/**
 * What every part of the wasm backend shares: the kernel module's exports, the heap, the worker
 * pool, the per-thread GEMM scratch and the packed-operand cache — and the checks every kernel makes
 * before it touches memory.
 *
 * Every kernel checks that its storages belong to this backend, share one dtype, and that every
 * element it will touch lies inside them — a wasm kernel that ran past a storage would silently
 * corrupt its neighbours, where a typed array would just ignore the write. The checks return the
 * storage (or its byte address) so a kernel's call reads as "check, then pass the address".
 *
 * The modules beside this one (storage, gemm, elementwise, rows, cell-steps, time-loop) are the
 * kernels, one concern each, as functions of a `WasmContext`; backend.ts is the facade that
 * implements the Backend interface by calling them.
 */
import { BackendError, elementBytes, type CellStep, type DType, type Storage } from '../interface.ts';
import type { WasmBackend } from './backend.ts';
import { PackCache } from './gemm.ts';
import type { Kernels, Variant } from './loader.ts';
import type { Heap } from './memory.ts';
import type { WeakRegistry } from './platform.ts';
import { type Held, WasmStorage } from './storage.ts';
import type { ThreadPool } from './threads.ts';

/**
 * Multiply-adds below which a GEMM (or a fused time step) stays on the calling thread. 2^17: the
 * batch-1 streaming step's GEMV of an LSTM with H 256 (1 × 1024 × 256 = 2^18) is then split, which
 * took the W1 streaming step from about 30 to 17–20 µs on 2 threads, two layers from about 95 to
 * 50–59 µs, while the W1 and 2-layer training steps stayed within their run-to-run spread
 * (BENCHMARKS.md, "Batch-1 streaming and the threading threshold"). A sleeping worker does not
 * stall a small job: the caller claims the chunks itself until the worker joins (threads.ts).
 */
export const THREAD_MIN_WORK = 2 ** 17;

export interface WasmBackendInternals {
  kernels: Kernels;
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  heap: Heap;
  pool: ThreadPool | null;
  variant: Variant;
  /** Bytes the packed-operand cache may hold (default 64 MiB). */
  packCacheBytes?: number;
  /** Multiply-adds below which a GEMM stays on the calling thread (default 2^17, THREAD_MIN_WORK). */
  threadThreshold?: number;
  /** Whether recurrent layers run their time loop here (recurrentForward/Backward; default true). */
  fusedSteps?: boolean;
  /** Whether a stack of unidirectional layers runs as a wavefront across the threads (recurrentStackForward/Backward; default true). */
  pipelineLayers?: boolean;
  /** Fill allocUninit storage with NaN (a check for the callers; default false). */
  poisonUninit?: boolean;
  /** The platform's FinalizationRegistry (with synchronous reclamation where available). */
  weakRegistry: <T>(cb: (held: T) => void) => WeakRegistry<T>;
}

export class WasmContext {
  /** The backend whose storages these are (ownership checks compare against it). */
  readonly owner: WasmBackend;
  /** The kernel module's exports on this thread. */
  readonly kernels: Kernels;
  readonly heap: Heap;
  readonly threads: number;
  /** Per-thread GEMM scratch: thread t's at scratchBase + t·scratchBytes. */
  readonly scratchBase: number;
  readonly scratchBytes: number;
  /** The one block every empty storage points at. */
  readonly emptyPtr: number;
  readonly packs: PackCache;
  /** Multiply-adds below which a GEMM (or a fused step's GEMM) stays on the calling thread. */
  readonly threadThreshold: number;
  readonly fusedSteps: boolean;
  readonly pipelineLayers: boolean;
  readonly poisonUninit: boolean;
  readonly registry: WeakRegistry<Held>;
  private readonly threadPool: ThreadPool | null;
  /** The scratch block `hostInts` copies integers into (reused, grown on demand). */
  private intsPtr = 0;
  private intsBytes = 0;
  private disposed = false;

  constructor(owner: WasmBackend, o: WasmBackendInternals) {
    this.owner = owner;
    this.kernels = o.kernels;
    this.heap = o.heap;
    this.threadPool = o.pool;
    this.threads = o.pool?.size ?? 1;
    this.packs = new PackCache(o.heap, o.packCacheBytes ?? 64 * 2 ** 20);
    this.threadThreshold = o.threadThreshold ?? THREAD_MIN_WORK;
    this.fusedSteps = o.fusedSteps ?? true;
    this.pipelineLayers = o.pipelineLayers ?? true;
    this.poisonUninit = o.poisonUninit ?? false;
    this.registry = o.weakRegistry((h: Held) => this.reclaim(h));
    this.heap.drain = this.registry.drain;
    this.heap.collect = this.registry.collect;
    this.scratchBytes = Math.ceil(this.kernels.sgemm_scratch_bytes() / 64) * 64;
    this.scratchBase = this.heap.alloc(this.scratchBytes * this.threads, false)[0];
    this.emptyPtr = this.heap.alloc(64, true)[0];
  }

  /** The finalizer's work: give a collected storage's bytes (and its packed copies) back. */
  private reclaim(h: Held): void {
    if (h.released) return;
    this.packs.drop(h.id);
    this.heap.release(h.ptr, h.bytes);
  }

  /** Stop the worker threads; everything runs on the calling thread afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.threadPool?.close();
  }

  /** The pool to split work over, or null once disposed (or single-threaded). */
  get pool(): ThreadPool | null {
    return this.disposed ? null : this.threadPool;
  }

  // ---- operand checks ----------------------------------------------------------------------------

  /** `s` as this backend's live storage. */
  own(s: Storage, what: string): WasmStorage {
    if (!(s instanceof WasmStorage) || s.backend !== this.owner) {
      throw new BackendError(`wasm backend: ${what} is a storage of backend '${s?.backend?.name ?? String(s)}', not of this wasm backend`);
    }
    if (s.released) throw new BackendError(`wasm backend: ${what} was released (its memory was given back) and cannot be used`);
    return s;
  }

  /** Own storage, of the given dtype, with elements [off, off + n) inside it. */
  span(s: Storage, off: number, n: number, dtype: DType, what: string): WasmStorage {
    const ws = this.own(s, what);
    if (ws.dtype !== dtype) throw new BackendError(`wasm backend: ${what} is ${ws.dtype} but the other operands are ${dtype}`);
    if (!(Number.isInteger(off) && Number.isInteger(n) && off >= 0 && n >= 0 && (n === 0 || off + n <= ws.size))) {
      throw new BackendError(`wasm backend: ${what}: elements [${off}, ${off + n}) are outside its ${ws.size} elements`);
    }
    return ws;
  }

  /** A rows×cols matrix with leading dimension ld at off. */
  matrix(s: Storage, off: number, rows: number, cols: number, ld: number, dtype: DType, what: string): WasmStorage {
    if (rows > 0 && cols > 0 && !(ld >= cols)) throw new BackendError(`wasm backend: ${what}: leading dimension ${ld} is less than its ${cols} columns`);
    const n = rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0;
    return this.span(s, off, n, dtype, what);
  }

  /** Check n elements at off (marked written when `write`); returns the byte address of element off. */
  block(s: Storage, off: number, n: number, dt: DType, what: string, write: boolean): number {
    const ws = this.span(s, off, n, dt, what);
    if (write) markWritten(ws);
    return addressOf(ws, off);
  }

  /** Check a [rows, cols] block whose rows lie `stride` apart; its byte address, or 0 for null. */
  strided(s: Storage | null, off: number, stride: number, rows: number, cols: number, dt: DType, what: string, write: boolean): number {
    if (s === null) return 0;
    if (rows > 0 && cols > 0 && !(stride >= cols)) throw new BackendError(`wasm backend: ${what}: row stride ${stride} is less than H = ${cols}`);
    const ws = this.matrix(s, off, rows, cols, stride, dt, what);
    if (write) markWritten(ws);
    return addressOf(ws, off);
  }

  // ---- host views and integer arguments ----------------------------------------------------------

  /** The heap's typed-array view for a dtype (recreated when the memory grows: read it per use). */
  view(dtype: DType): Float32Array | Float64Array {
    return dtype === 'float32' ? this.heap.f32 : this.heap.f64;
  }

  /** Copy host integers into a reusable scratch block; returns its byte address. */
  hostInts(v: Int32Array | ArrayLike<number>, n = v.length): number {
    const bytes = Math.max(4 * n, 4);
    if (bytes > this.intsBytes) {
      if (this.intsPtr !== 0) this.heap.release(this.intsPtr, this.intsBytes);
      const [ptr, size] = this.heap.alloc(Math.max(bytes, 4096), false);
      this.intsPtr = ptr;
      this.intsBytes = size;
    }
    const i32 = this.heap.i32;
    const base = this.intsPtr >>> 2;
    for (let i = 0; i < n; i++) i32[base + i] = v[i];
    return this.intsPtr;
  }

  /** The byte address of a step's per-row lengths in wasm memory (0: every row runs every step). */
  lengthsAddress(step: CellStep): number {
    if (step.lengths === null) return 0;
    if (step.lengths.length < step.B) throw new BackendError(`wasm backend: ${step.lengths.length} lengths for a batch of ${step.B}`);
    return this.hostInts(step.lengths, step.B);
  }
}

/** Byte address of element `off` of s. */
export function addressOf(s: WasmStorage, off: number): number {
  return s.ptr + off * elementBytes(s.dtype);
}

/** Mark s written (its packed copies go stale); returns s. */
export function markWritten(s: WasmStorage): WasmStorage {
  s.version++;
  return s;
}

/** Index of a storage's element 0 in the heap view of its dtype. */
export function firstIndex(s: WasmStorage): number {
  return s.dtype === 'float32' ? s.ptr >>> 2 : s.ptr >>> 3;
}
