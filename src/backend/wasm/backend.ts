/**
 * The WebAssembly backend: every kernel of interface.ts on storage that lives in one
 * WebAssembly.Memory, computed by the AssemblyScript kernels in ./assembly.
 *
 * Storage is a byte range of the memory (see memory.ts for the allocator). A `WasmStorage` is
 * registered with a FinalizationRegistry; when the storage object is garbage-collected its bytes go
 * back to the allocator (and any packed copy of it is dropped). Users never free anything.
 * Engines run finalizers as separate tasks, i.e. only when the event loop turns, which a training
 * loop may never do. On Node 20 the registry therefore comes with synchronous reclamation
 * (platform-node.ts): collected storages are reclaimed before each allocation, and a full GC runs
 * before the memory would grow. Elsewhere (browsers, other Node versions) a loop that never yields
 * gets its memory back only when it does; the heap grows meanwhile (up to `maxMemoryMiB`).
 *
 * Every kernel checks that its storages belong to this backend, share one dtype, and that every
 * element it will touch lies inside them — a wasm kernel that ran past a storage would silently
 * corrupt its neighbours, where a typed array would just ignore the write.
 *
 * GEMM (float32): B is packed into the micro-kernel's panel layout (assembly/gemm.ts). A packed copy
 * is kept (keyed by storage, offset, layout and the storage's write version) once the same operand
 * has been used twice without being written in between — in a recurrent layer that is W_hh from the
 * second time step on, so each step's GEMM reads pre-packed weights (repacked once per optimizer
 * step). Work above a threshold is cut into chunks — blocks of rows of C when M is large, column
 * panels otherwise — that the threads of the pool claim one at a time (threads.ts); the summation
 * order of every element is the same for any split, so threaded results are bit-identical to
 * single-threaded ones.
 */
import {
  type Activation, type Backend, BackendError, type BackwardScratch, type BinaryOp, type CellStep, type Data,
  type DirectionWeights, type DirectionWorkspace, type DType, type FusedStepKernel, type LayerDims, type Storage, type UnaryOp,
  stepOffsets,
} from '../interface.ts';
import type { Kernels, Variant } from './loader.ts';
import { Heap, type HeapStats } from './memory.ts';
import type { WeakRegistry } from './platform.ts';
import {
  JOBS, STEP_KERNELS, STEP_SLOTS,
  ThreadPool,
} from './threads.ts';
import { shapeSize, shapeStrides } from '../../util/shape.ts';

const UNARY: Record<UnaryOp, number> = { neg: 0, exp: 1, log: 2, tanh: 3, sigmoid: 4, relu: 5, sqrt: 6, square: 7, abs: 8, softplus: 9 };
const BINARY: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3 };

/** GEMM micro-kernel geometry (must match assembly/gemm.ts). */
const NR = 8;
const MR = 4;

let nextStorageId = 1;

export class WasmStorage implements Storage {
  readonly backend: WasmBackend;
  readonly dtype: DType;
  readonly size: number;
  /** Byte address of element 0 in the backend's memory. */
  readonly ptr: number;
  /** Bumped by every kernel that writes this storage (keys the packed-operand cache). */
  version = 0;
  readonly id = nextStorageId++;
  /** What the finalizer gives back (null for the shared empty block); shared with `release`. */
  held: Held | null = null;
  /** Given back by `release`: any later use is an error. */
  released = false;

  constructor(backend: WasmBackend, dtype: DType, size: number, ptr: number) {
    this.backend = backend;
    this.dtype = dtype;
    this.size = size;
    this.ptr = ptr;
  }
}

/** What the finalizer needs to give a storage's bytes back (never the storage itself). */
interface Held {
  ptr: number;
  bytes: number;
  id: number;
  /** Already given back by `release` (the finalizer then has nothing to do). */
  released: boolean;
}

/** How a recurrent direction's steps run: on the pool in `chunks` chunks of `cs` hidden units, or inline. */
interface StepPlan {
  pool: ThreadPool | null;
  cs: number;
  chunks: number;
}

/** Byte addresses (and sizes) of one forward step's operands; 0 for an operand the cell lacks. */
interface StepForwardArgs {
  B: number; H: number; t: number; lengths: number;
  /** Packed W_hh, and b_hh for cells that keep the recurrent products apart. */
  wHh: number; bHh: number;
  gx: number; gh: number;
  hPrev: number; hNext: number; cPrev: number; cNext: number;
  y: number; yStride: number;
}

/** Byte addresses of one BPTT step's operands; dgNext: the previous step's dG (0 at the first). */
interface StepBackwardArgs {
  B: number; H: number; t: number; lengths: number;
  wHh: number; dgNext: number;
  gates: number; gh: number;
  hPrev: number; hNext: number; cPrev: number; cNext: number;
  dh: number; dy: number; dyStride: number; dc: number;
  dgx: number; dgh: number; dcPrev: number; dhPrev: number;
}

type StepKernel = (typeof STEP_KERNELS)[number];

/**
 * This backend's fused steps, keyed by the kernel names the cell records (src/cells/) hand down —
 * the backend sits below the cells layer and cannot read the records themselves. Each entry says
 * which workspace buffers the cell uses (checked against what the caller passed) and lays out its
 * kernel's arguments (assembly/cells.ts) from named operands.
 */
const FUSED_STEPS: Record<FusedStepKernel, {
  hasCell: boolean;
  /** Whether the cell keeps gh = h·W_hhᵀ + b_hh apart from gx (GRU). */
  recurrentProducts: boolean;
  forward(a: StepForwardArgs): [StepKernel, number[]];
  backward(a: StepBackwardArgs): [StepKernel, number[]];
}> = {
  rnnTanh: rnnSteps(0),
  rnnRelu: rnnSteps(1),
  lstm: {
    hasCell: true,
    recurrentProducts: false,
    forward: (a) => ['lstmStepFwd_f32', [a.B, a.H, a.t, a.lengths, a.wHh, a.gx, a.hPrev, a.cPrev, a.cNext, a.hNext, a.y, a.yStride]],
    backward: (a) => ['lstmStepBwd_f32', [a.B, a.H, a.t, a.lengths, a.wHh, a.dgNext, a.gates, a.cPrev, a.cNext, a.dh, a.dy, a.dyStride, a.dc, a.dgx, a.dcPrev, a.dhPrev]],
  },
  gru: {
    hasCell: false,
    recurrentProducts: true,
    forward: (a) => ['gruStepFwd_f32', [a.B, a.H, a.t, a.lengths, a.wHh, a.bHh, a.gx, a.gh, a.hPrev, a.hNext, a.y, a.yStride]],
    backward: (a) => ['gruStepBwd_f32', [a.B, a.H, a.t, a.lengths, a.wHh, a.dgNext, a.gates, a.gh, a.hPrev, a.dh, a.dy, a.dyStride, a.dgx, a.dgh, a.dhPrev]],
  },
};

/** The vanilla RNN's steps; relu selects the activation inside the kernel (0 tanh, 1 relu). */
function rnnSteps(relu: 0 | 1): (typeof FUSED_STEPS)[FusedStepKernel] {
  return {
    hasCell: false,
    recurrentProducts: false,
    forward: (a) => ['rnnStepFwd_f32', [a.B, a.H, a.t, a.lengths, relu, a.wHh, a.gx, a.hPrev, a.hNext, a.y, a.yStride]],
    backward: (a) => ['rnnStepBwd_f32', [a.B, a.H, a.t, a.lengths, relu, a.wHh, a.dgNext, a.hNext, a.dh, a.dy, a.dyStride, a.dgx, a.dhPrev]],
  };
}

interface PackEntry {
  storageId: number;
  key: string;
  version: number;
  /** 0 until the operand has been seen twice (then a kept packed copy). */
  ptr: number;
  bytes: number;
}

export interface WasmBackendInternals {
  kernels: Kernels;
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  heap: Heap;
  pool: ThreadPool | null;
  variant: Variant;
  /** Bytes the packed-operand cache may hold (default 64 MiB). */
  packCacheBytes?: number;
  /** Multiply-adds below which a GEMM stays on the calling thread (default 2^21). */
  threadThreshold?: number;
  /** Whether recurrent layers run their time loop here (recurrentForward/Backward; default true). */
  fusedSteps?: boolean;
  /** Fill allocUninit storage with NaN (a check for the callers; default false). */
  poisonUninit?: boolean;
  /** The platform's FinalizationRegistry (with synchronous reclamation where available). */
  weakRegistry: <T>(cb: (held: T) => void) => WeakRegistry<T>;
}

export interface WasmBackendStats extends HeapStats {
  /** Packed GEMM operands kept, and their bytes. */
  packedOperands: number;
  packedBytes: number;
  threads: number;
  variant: Variant;
}

/**
 * Describe an element-wise loop over `shape` in which each operand k is read with `strides[k]`
 * (0 on broadcast axes), with size-1 axes dropped and neighbouring axes merged wherever every
 * operand walks them contiguously. Returns the merged dims and per-operand strides.
 */
function mergeLoops(shape: readonly number[], strides: readonly (readonly number[])[]): { dims: number[]; st: number[][] } {
  const dims: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k][last] === s[i] * shape[i])) {
      dims[last] *= shape[i];
      strides.forEach((s, k) => { st[k][last] = s[i]; });
    } else {
      dims.push(shape[i]);
      strides.forEach((s, k) => st[k].push(s[i]));
    }
  }
  return { dims, st };
}

/** Strides of an operand of shape `own` read along `full` (0 where it broadcasts). */
function bcastStrides(own: readonly number[], full: readonly number[]): number[] {
  const s = shapeStrides(own);
  return own.map((d, i) => (d === 1 && full[i] !== 1 ? 0 : s[i]));
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly variant: Variant;
  readonly threads: number;
  /** The kernel module (so callers can start more instances on the same memory). */
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  private readonly ex: Kernels;
  private readonly heap: Heap;
  private readonly pool: ThreadPool | null;
  private readonly registry: WeakRegistry<Held>;
  /** Per-thread GEMM scratch: thread t's at scratch + t·scratchBytes. */
  private readonly scratch: number;
  private readonly scratchBytes: number;
  private readonly emptyPtr: number;
  private intsPtr = 0;
  private intsBytes = 0;
  private readonly packs = new Map<string, PackEntry>();
  private readonly packsOf = new Map<number, Set<string>>();
  private packedBytes = 0;
  private readonly packLimit: number;
  private readonly threadThreshold: number;
  private readonly fusedSteps: boolean;
  private readonly poisonUninit: boolean;
  private disposed = false;

  constructor(o: WasmBackendInternals) {
    this.ex = o.kernels;
    this.module = o.module;
    this.memory = o.memory;
    this.heap = o.heap;
    this.pool = o.pool;
    this.variant = o.variant;
    this.threads = o.pool?.size ?? 1;
    this.packLimit = o.packCacheBytes ?? 64 * 2 ** 20;
    this.threadThreshold = o.threadThreshold ?? 2 ** 21;
    this.fusedSteps = o.fusedSteps ?? true;
    this.poisonUninit = o.poisonUninit ?? false;
    this.registry = o.weakRegistry((h: Held) => this.reclaim(h));
    this.heap.drain = this.registry.drain;
    this.heap.collect = this.registry.collect;
    this.scratchBytes = Math.ceil(this.ex.sgemm_scratch_bytes() / 64) * 64;
    this.scratch = this.heap.alloc(this.scratchBytes * this.threads, false)[0];
    this.emptyPtr = this.heap.alloc(64, true)[0];
  }

  // ---- bookkeeping -------------------------------------------------------------------------------

  private reclaim(h: Held): void {
    if (h.released) return;
    this.dropPacks(h.id);
    this.heap.release(h.ptr, h.bytes);
  }

  private dropPacks(id: number): void {
    const keys = this.packsOf.get(id);
    if (!keys) return;
    for (const k of keys) {
      const e = this.packs.get(k);
      if (e) this.forgetPack(k, e, false);
    }
    this.packsOf.delete(id);
  }

  private forgetPack(k: string, e: PackEntry, unlink = true): void {
    if (e.ptr !== 0) {
      this.heap.release(e.ptr, e.bytes);
      this.packedBytes -= e.bytes;
    }
    this.packs.delete(k);
    if (unlink) this.packsOf.get(e.storageId)?.delete(k);
  }

  stats(): WasmBackendStats {
    let n = 0;
    for (const e of this.packs.values()) if (e.ptr !== 0) n++;
    return { ...this.heap.stats(), packedOperands: n, packedBytes: this.packedBytes, threads: this.threads, variant: this.variant };
  }

  /** Stop the worker threads. The backend still works afterwards, single-threaded. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool?.close();
  }

  private get usePool(): ThreadPool | null {
    return this.disposed ? null : this.pool;
  }

  private own(s: Storage, what: string): WasmStorage {
    if (!(s instanceof WasmStorage) || s.backend !== this) {
      throw new BackendError(`wasm backend: ${what} is a storage of backend '${s?.backend?.name ?? String(s)}', not of this wasm backend`);
    }
    if (s.released) throw new BackendError(`wasm backend: ${what} was released (its memory was given back) and cannot be used`);
    return s;
  }

  /** Own storage, of the given dtype, with elements [off, off + n) inside it. */
  private span(s: Storage, off: number, n: number, dtype: DType, what: string): WasmStorage {
    const w = this.own(s, what);
    if (w.dtype !== dtype) throw new BackendError(`wasm backend: ${what} is ${w.dtype} but the other operands are ${dtype}`);
    if (!(Number.isInteger(off) && Number.isInteger(n) && off >= 0 && n >= 0 && (n === 0 || off + n <= w.size))) {
      throw new BackendError(`wasm backend: ${what}: elements [${off}, ${off + n}) are outside its ${w.size} elements`);
    }
    return w;
  }

  /** A rows×cols matrix with leading dimension ld at off. */
  private mat(s: Storage, off: number, rows: number, cols: number, ld: number, dtype: DType, what: string): WasmStorage {
    if (rows > 0 && cols > 0 && !(ld >= cols)) throw new BackendError(`wasm backend: ${what}: leading dimension ${ld} is less than its ${cols} columns`);
    const n = rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0;
    return this.span(s, off, n, dtype, what);
  }

  /** Address of element `off`. */
  private at(s: WasmStorage, off: number): number {
    return s.ptr + off * (s.dtype === 'float32' ? 4 : 8);
  }

  /** Mark written. */
  private w(s: WasmStorage): WasmStorage {
    s.version++;
    return s;
  }

  private view(dtype: DType): Float32Array | Float64Array {
    return dtype === 'float32' ? this.heap.f32 : this.heap.f64;
  }

  /** Element index of a storage's element 0 in the view of its dtype. */
  private index(s: WasmStorage): number {
    return s.dtype === 'float32' ? s.ptr >>> 2 : s.ptr >>> 3;
  }

  /** Copy host integers into a reusable scratch area; returns its address. */
  private ints(v: Int32Array | ArrayLike<number>, n = v.length): number {
    const bytes = Math.max(4 * n, 4);
    if (bytes > this.intsBytes) {
      if (this.intsPtr !== 0) this.heap.release(this.intsPtr, this.intsBytes);
      const [p, size] = this.heap.alloc(Math.max(bytes, 4096), false);
      this.intsPtr = p;
      this.intsBytes = size;
    }
    const i32 = this.heap.i32;
    const base = this.intsPtr >>> 2;
    for (let i = 0; i < n; i++) i32[base + i] = v[i];
    return this.intsPtr;
  }

  private lengthsPtr(s: CellStep): number {
    if (s.lengths === null) return 0;
    if (s.lengths.length < s.B) throw new BackendError(`wasm backend: ${s.lengths.length} lengths for a batch of ${s.B}`);
    return this.ints(s.lengths, s.B);
  }

  // ---- memory -----------------------------------------------------------------------------------

  private make(size: number, dtype: DType, zero: boolean): WasmStorage {
    if (dtype !== 'float32' && dtype !== 'float64') throw new BackendError(`wasm backend: unknown dtype '${String(dtype)}' (expected 'float32' or 'float64')`);
    if (!Number.isSafeInteger(size) || size < 0) throw new BackendError(`wasm backend: cannot allocate ${size} elements`);
    if (size === 0) return new WasmStorage(this, dtype, 0, this.emptyPtr);
    const bytes = size * (dtype === 'float32' ? 4 : 8);
    let ptr: number, cls: number;
    try {
      [ptr, cls] = this.heap.alloc(bytes, zero);
    } catch (e) {
      throw new BackendError((e as Error).message);
    }
    const s = new WasmStorage(this, dtype, size, ptr);
    s.held = { ptr, bytes: cls, id: s.id, released: false };
    this.registry.register(s, s.held);
    return s;
  }

  /** Give s's block back now (Backend.release); s becomes unusable. */
  release(st: Storage): void {
    const s = this.own(st, 'release');
    s.released = true;
    const h = s.held;
    if (h === null) return;
    h.released = true;
    this.dropPacks(h.id);
    this.heap.release(h.ptr, h.bytes);
  }

  alloc(size: number, dtype: DType): Storage {
    return this.make(size, dtype, true);
  }

  allocUninit(size: number, dtype: DType): Storage {
    const s = this.make(size, dtype, false);
    if (this.poisonUninit) this.fill(s, NaN, 0, size);
    return s;
  }

  fromArray(data: ArrayLike<number>, dtype: DType): Storage {
    const s = this.make(data.length, dtype, false);
    if (s.size > 0) this.view(dtype).set(data, this.index(s));
    return s;
  }

  read(s: Storage, offset = 0, n = s.size - offset): Data {
    const w = this.own(s, 'read');
    this.span(w, offset, n, w.dtype, 'read');
    const i = this.index(w) + offset;
    return this.view(w.dtype).slice(i, i + n);
  }

  write(s: Storage, data: ArrayLike<number>, offset = 0): void {
    const w = this.own(s, 'write');
    this.span(w, offset, data.length, w.dtype, 'write');
    if (data.length === 0) return;
    this.view(w.dtype).set(data, this.index(this.w(w)) + offset);
  }

  copy(src: Storage, srcOff: number, dst: Storage, dstOff: number, n: number): void {
    const d = this.own(dst, 'copy dst');
    const s = this.span(src, srcOff, n, d.dtype, 'copy src');
    this.span(d, dstOff, n, d.dtype, 'copy dst');
    if (n === 0) return;
    const es = d.dtype === 'float32' ? 4 : 8;
    this.ex.copyBytes(this.at(this.w(d), dstOff), this.at(s, srcOff), n * es);
  }

  fill(dst: Storage, value: number, offset: number, n: number): void {
    const d = this.own(dst, 'fill');
    this.span(d, offset, n, d.dtype, 'fill');
    if (n === 0) return;
    (d.dtype === 'float32' ? this.ex.fill_f32 : this.ex.fill_f64)(this.at(this.w(d), offset), n, value);
  }

  // ---- dense linear algebra ---------------------------------------------------------------------------

  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    As: Storage, aOff: number, lda: number, Bs: Storage, bOff: number, ldb: number,
    beta: number, Cs: Storage, cOff: number, ldc: number,
  ): void {
    const C = this.own(Cs, 'gemm C');
    const dt = C.dtype;
    for (const [v, what] of [[M, 'M'], [N, 'N'], [K, 'K']] as const) {
      if (!Number.isInteger(v) || v < 0) throw new BackendError(`wasm backend: gemm ${what} must be a non-negative integer, got ${v}`);
    }
    const A = transA ? this.mat(As, aOff, K, M, lda, dt, 'gemm A') : this.mat(As, aOff, M, K, lda, dt, 'gemm A');
    const B = transB ? this.mat(Bs, bOff, N, K, ldb, dt, 'gemm B') : this.mat(Bs, bOff, K, N, ldb, dt, 'gemm B');
    this.mat(C, cOff, M, N, ldc, dt, 'gemm C');
    if (M === 0 || N === 0) return;
    this.w(C);
    const pC = this.at(C, cOff);
    if (dt === 'float64') {
      this.ex.dgemm(+transA, +transB, M, N, K, alpha, this.at(A, aOff), lda, this.at(B, bOff), ldb, beta, pC, ldc);
      return;
    }
    if (K === 0 || alpha === 0) {
      this.ex.sgemm_scale_c(M, N, beta, pC, ldc);
      return;
    }
    const pool = this.usePool;
    const threaded = pool !== null && M * N * K >= this.threadThreshold;
    const panels = Math.ceil(N / NR);
    const packed = this.packedB(B, bOff, ldb, transB, K, N, threaded ? pool : null);
    let packedA: [number, number] = [0, 0];
    try {
      const pA = this.at(A, aOff);
      if (!threaded) {
        this.ex.sgemm_compute(+transA, 0, M, 0, panels, K, N, alpha, pA, lda, packed[0], beta, pC, ldc, this.scratch);
        return;
      }
      const T = pool.size;
      const byRows = M >= 64 * T;
      // a split by column panels packs all of A in every chunk: when A is big (≥ 256 KiB packed, e.g.
      // dlogitsᵀ in dW_out = dlogitsᵀ · h, 65 × 2048), pack it once for all chunks instead
      const Mpad = Math.ceil(M / MR) * MR;
      if (!byRows && M > 1 && Mpad * K >= 2 ** 16) packedA = this.packA(pool, transA, M, K, pA, lda);
      const a = pool.args;
      a[0] = JOBS.GEMM;
      a[1] = +transA; a[2] = K; a[3] = N; a[4] = alpha; a[5] = pA; a[6] = lda; a[7] = packed[0]; a[8] = beta; a[9] = pC; a[10] = ldc;
      a[11] = M; a[12] = panels; a[15] = this.scratch; a[16] = this.scratchBytes; a[17] = packedA[0];
      let chunks: number;
      if (byRows) {
        // by rows, in whole MR-row panels; 4 chunks per thread so an idle thread can pick up slack
        const cs = Math.ceil(M / (4 * T) / MR) * MR;
        a[13] = 0; a[14] = cs;
        chunks = Math.ceil(M / cs);
      } else {
        // by column panels: 2 chunks per thread when every chunk packs A, 4 when A is packed once
        const cs = Math.ceil(panels / ((packedA[0] !== 0 ? 4 : 2) * T));
        a[13] = 1; a[14] = cs;
        chunks = Math.ceil(panels / cs);
      }
      pool.run(this.ex, chunks);
    } finally {
      if (packed[1] !== 0) this.heap.release(packed[0], packed[1]);
      if (packedA[1] !== 0) this.heap.release(packedA[0], packedA[1]);
    }
  }

  /**
   * op(A) (M×K) packed by sgemm_pack_a into a fresh block, by row panels on the pool when it is big
   * enough: [address, bytes to release].
   */
  private packA(pool: ThreadPool, transA: boolean, M: number, K: number, pA: number, lda: number): [number, number] {
    const ex = this.ex;
    const Mpad = Math.ceil(M / MR) * MR;
    const [p, size] = this.heap.alloc(Mpad * K * 4, false);
    if (Mpad * K < 2 ** 14 || Mpad < 4 * MR) {
      ex.sgemm_pack_a(+transA, M, K, pA, lda, p, 0, M);
      return [p, size];
    }
    const a = pool.args;
    a[0] = JOBS.PACK_A;
    a[1] = +transA; a[2] = K; a[3] = M; a[4] = pA; a[5] = lda; a[6] = p;
    const cs = Math.ceil(Mpad / MR / (2 * pool.size)) * MR;
    a[14] = cs;
    pool.run(this.ex, Math.ceil(M / cs));
    return [p, size];
  }

  /**
   * op(B) packed for sgemm_compute: [address, bytes to release after the call (0 when cached)].
   * See the file comment for the caching rule.
   */
  private packedB(B: WasmStorage, bOff: number, ldb: number, transB: boolean, K: number, N: number, pool: ThreadPool | null): [number, number] {
    const panels = Math.ceil(N / NR);
    const bytes = K * panels * NR * 4;
    const key = `${B.id}|${bOff}|${ldb}|${transB ? 1 : 0}|${K}|${N}`;
    const e = this.packs.get(key);
    if (e !== undefined) {
      // most recently used goes last
      this.packs.delete(key);
      this.packs.set(key, e);
      if (e.ptr !== 0 && e.version === B.version) return [e.ptr, 0];
      if (e.ptr !== 0 || e.version === B.version) {
        // seen before: keep a packed copy (a stale one is repacked in place)
        if (e.ptr === 0) {
          this.makeRoom(bytes);
          const [p, size] = this.heap.alloc(bytes, false);
          e.ptr = p;
          e.bytes = size;
          this.packedBytes += size;
        }
        e.version = B.version;
        this.pack(B, bOff, ldb, transB, K, N, e.ptr, pool);
        return [e.ptr, 0];
      }
      e.version = B.version;
    } else {
      this.packs.set(key, { storageId: B.id, key, version: B.version, ptr: 0, bytes: 0 });
      let set = this.packsOf.get(B.id);
      if (set === undefined) {
        set = new Set();
        this.packsOf.set(B.id, set);
      }
      set.add(key);
    }
    const [p, size] = this.heap.alloc(bytes, false);
    this.pack(B, bOff, ldb, transB, K, N, p, pool);
    return [p, size];
  }

  private makeRoom(bytes: number): void {
    for (const [k, e] of this.packs) {
      if (this.packedBytes + bytes <= this.packLimit) break;
      if (e.ptr !== 0) this.forgetPack(k, e);
    }
  }

  private pack(B: WasmStorage, bOff: number, ldb: number, transB: boolean, K: number, N: number, dst: number, pool: ThreadPool | null): void {
    const panels = Math.ceil(N / NR);
    const pB = this.at(B, bOff);
    if (pool === null || K * N < 2 ** 16 || panels < pool.size) {
      this.ex.sgemm_pack_b(+transB, K, N, pB, ldb, dst, 0, panels);
      return;
    }
    const a = pool.args;
    a[0] = JOBS.PACK_B;
    a[1] = +transB; a[2] = K; a[3] = N; a[4] = pB; a[5] = ldb; a[6] = dst;
    const cs = Math.ceil(panels / (4 * pool.size));
    a[12] = panels; a[14] = cs;
    pool.run(this.ex, Math.ceil(panels / cs));
  }

  axpy(n: number, alpha: number, xs: Storage, xOff: number, ys: Storage, yOff: number): void {
    const y = this.own(ys, 'axpy y');
    const x = this.span(xs, xOff, n, y.dtype, 'axpy x');
    this.span(y, yOff, n, y.dtype, 'axpy y');
    if (n === 0) return;
    (y.dtype === 'float32' ? this.ex.axpy_f32 : this.ex.axpy_f64)(n, alpha, this.at(x, xOff), this.at(this.w(y), yOff));
  }

  scale(n: number, alpha: number, xs: Storage, xOff: number): void {
    const x = this.own(xs, 'scale x');
    this.span(x, xOff, n, x.dtype, 'scale x');
    if (n === 0) return;
    (x.dtype === 'float32' ? this.ex.scale_f32 : this.ex.scale_f64)(n, alpha, this.at(this.w(x), xOff));
  }

  addRowVector(rows: number, cols: number, bias: Storage, bOff: number, Xs: Storage, xOff: number): void {
    const X = this.own(Xs, 'addRowVector X');
    this.span(X, xOff, rows * cols, X.dtype, 'addRowVector X');
    const b = this.span(bias, bOff, rows > 0 ? cols : 0, X.dtype, 'addRowVector bias');
    if (rows * cols === 0) return;
    (X.dtype === 'float32' ? this.ex.addRowVector_f32 : this.ex.addRowVector_f64)(rows, cols, this.at(b, bOff), this.at(this.w(X), xOff));
  }

  sumRowsBackward(rows: number, cols: number, Xs: Storage, xOff: number, out: Storage, oOff: number): void {
    const o = this.own(out, 'sumRowsBackward out');
    const X = this.span(Xs, xOff, rows * cols, o.dtype, 'sumRowsBackward X');
    this.span(o, oOff, rows > 0 ? cols : 0, o.dtype, 'sumRowsBackward out');
    if (rows * cols === 0) return;
    if (o.dtype === 'float32') this.sumRowsF32(rows, cols, this.at(X, xOff), this.at(this.w(o), oOff));
    else this.ex.sumRows_f64(rows, cols, this.at(X, xOff), this.at(this.w(o), oOff));
  }

  /**
   * out[c] += column sums of a rows×cols float32 block (sumRowsLd_f32: each column in row order,
   * so any split is bit-identical), split by column ranges across the pool when it is big enough.
   */
  private sumRowsF32(rows: number, cols: number, pX: number, pO: number): void {
    const ex = this.ex;
    const pool = this.usePool;
    if (pool === null || rows * cols < 2 ** 16 || cols < 128) {
      ex.sumRowsLd_f32(rows, cols, cols, pX, pO);
      return;
    }
    // one column range per thread: narrower ranges cut the rows into short pieces and stream worse
    // (2048 × 1024: 64 µs in 2 chunks, 128 µs in 8)
    const cs = Math.max(64, Math.ceil(cols / pool.size / 16) * 16);
    const a = pool.args;
    a[0] = JOBS.SUMROWS; a[1] = rows; a[2] = cols; a[3] = pX; a[4] = pO; a[14] = cs;
    pool.run(this.ex, Math.ceil(cols / cs));
  }

  // ---- element-wise -------------------------------------------------------------------------------

  unary(op: UnaryOp, n: number, xs: Storage, outs: Storage): void {
    const code = UNARY[op];
    if (code === undefined) throw new BackendError(`wasm backend: unknown unary op '${String(op)}'`);
    const o = this.own(outs, `unary ${op} out`);
    const x = this.span(xs, 0, n, o.dtype, `unary ${op} x`);
    this.span(o, 0, n, o.dtype, `unary ${op} out`);
    if (n === 0) return;
    (o.dtype === 'float32' ? this.ex.unary_f32 : this.ex.unary_f64)(code, n, x.ptr, this.w(o).ptr);
  }

  unaryBackward(op: UnaryOp, n: number, xs: Storage, ys: Storage, dys: Storage, dxs: Storage): void {
    const code = UNARY[op];
    if (code === undefined) throw new BackendError(`wasm backend: unknown unary op '${String(op)}'`);
    const dx = this.own(dxs, `unaryBackward ${op} dx`);
    const dt = dx.dtype;
    this.span(dx, 0, n, dt, `unaryBackward ${op} dx`);
    const x = this.span(xs, 0, n, dt, `unaryBackward ${op} x`);
    const y = this.span(ys, 0, n, dt, `unaryBackward ${op} y`);
    const dy = this.span(dys, 0, n, dt, `unaryBackward ${op} dy`);
    if (n === 0) return;
    (dt === 'float32' ? this.ex.unaryBackward_f32 : this.ex.unaryBackward_f64)(code, n, x.ptr, y.ptr, dy.ptr, this.w(dx).ptr);
  }

  binary(op: BinaryOp, as: Storage, aShape: readonly number[], bs: Storage, bShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
    const code = BINARY[op];
    if (code === undefined) throw new BackendError(`wasm backend: unknown binary op '${String(op)}'`);
    const rank = outShape.length;
    if (aShape.length !== rank || bShape.length !== rank) {
      throw new BackendError(`wasm backend: binary expects equal ranks, got ${aShape.length}, ${bShape.length}, ${rank}`);
    }
    for (let i = 0; i < rank; i++) {
      for (const [s, what] of [[aShape, 'a'], [bShape, 'b']] as const) {
        if (s[i] !== outShape[i] && s[i] !== 1) throw new BackendError(`wasm backend: binary: ${what} shape [${s.join(', ')}] does not broadcast to [${outShape.join(', ')}]`);
      }
    }
    const o = this.own(outs, `binary ${op} out`);
    const dt = o.dtype;
    const n = shapeSize(outShape);
    this.span(o, 0, n, dt, `binary ${op} out`);
    const a = this.span(as, 0, shapeSize(aShape), dt, `binary ${op} a`);
    const b = this.span(bs, 0, shapeSize(bShape), dt, `binary ${op} b`);
    if (n === 0) return;
    this.w(o);
    const { dims, st } = mergeLoops(outShape, [bcastStrides(aShape, outShape), bcastStrides(bShape, outShape)]);
    const f32 = dt === 'float32';
    if (dims.length <= 1) {
      const len = dims.length === 0 ? 1 : dims[0];
      const sa = dims.length === 0 ? 1 : st[0][0], sb = dims.length === 0 ? 1 : st[1][0];
      if (sa === 1 && sb === 1) (f32 ? this.ex.binaryRows_f32 : this.ex.binaryRows_f64)(code, 1, len, a.ptr, 0, b.ptr, 0, o.ptr);
      else (f32 ? this.ex.binary2d_f32 : this.ex.binary2d_f64)(code, 1, len, a.ptr, sa, 0, b.ptr, sb, 0, o.ptr);
      return;
    }
    if (dims.length === 2) {
      const [R, Cn] = dims;
      const [[ar, ac], [br, bc]] = st;
      if (ac === 1 && bc === 1 && (ar === 0 || ar === Cn) && (br === 0 || br === Cn)) {
        (f32 ? this.ex.binaryRows_f32 : this.ex.binaryRows_f64)(code, R, Cn, a.ptr, ar, b.ptr, br, o.ptr);
      } else {
        (f32 ? this.ex.binary2d_f32 : this.ex.binary2d_f64)(code, R, Cn, a.ptr, ac, ar, b.ptr, bc, br, o.ptr);
      }
      return;
    }
    // three or more irreducible axes: a strided loop on the host
    const v = this.view(dt);
    const ai = this.index(a), bi = this.index(b), oi = this.index(o);
    const fn = code === 0 ? (x: number, y: number) => x + y : code === 1 ? (x: number, y: number) => x - y : code === 2 ? (x: number, y: number) => x * y : (x: number, y: number) => x / y;
    const total = shapeSize(dims);
    const idx = new Array<number>(dims.length).fill(0);
    let pa = ai, pb = bi;
    for (let i = 0; i < total; i++) {
      v[oi + i] = fn(v[pa], v[pb]);
      for (let ax = dims.length - 1; ax >= 0; ax--) {
        pa += st[0][ax];
        pb += st[1][ax];
        if (++idx[ax] < dims[ax]) break;
        pa -= st[0][ax] * dims[ax];
        pb -= st[1][ax] * dims[ax];
        idx[ax] = 0;
      }
    }
  }

  reduceSum(xs: Storage, xShape: readonly number[], outs: Storage, outShape: readonly number[]): void {
    const rank = xShape.length;
    if (outShape.length !== rank) throw new BackendError(`wasm backend: reduceSum expects equal ranks, got ${rank} and ${outShape.length}`);
    for (let i = 0; i < rank; i++) {
      if (outShape[i] !== xShape[i] && outShape[i] !== 1) throw new BackendError(`wasm backend: reduceSum: [${outShape.join(', ')}] is not a reduction of [${xShape.join(', ')}]`);
    }
    const o = this.w(this.own(outs, 'reduceSum out'));
    const dt = o.dtype;
    const no = shapeSize(outShape);
    this.span(o, 0, no, dt, 'reduceSum out');
    const x = this.span(xs, 0, shapeSize(xShape), dt, 'reduceSum x');
    const v = this.view(dt);
    const oi = this.index(o), xi = this.index(x);
    if (no > 0) (dt === 'float32' ? this.ex.fill_f32 : this.ex.fill_f64)(o.ptr, no, 0);
    const n = shapeSize(xShape);
    if (n === 0) return;
    const { dims, st } = mergeLoops(xShape, [shapeStrides(xShape), bcastStrides(outShape, xShape)]);
    const os = st[1];
    if (dims.length === 2 && os[0] === 0 && os[1] === 1) {
      // column sums of a [R, C] block, rows in order (as the reference accumulates)
      if (dt === 'float32') this.sumRowsF32(dims[0], dims[1], x.ptr, o.ptr);
      else this.ex.sumRows_f64(dims[0], dims[1], x.ptr, o.ptr);
      return;
    }
    const idx = new Array<number>(dims.length).fill(0);
    let po = oi;
    for (let i = 0; i < n; i++) {
      v[po] += v[xi + i];
      for (let ax = dims.length - 1; ax >= 0; ax--) {
        po += os[ax];
        if (++idx[ax] < dims[ax]) break;
        po -= os[ax] * dims[ax];
        idx[ax] = 0;
      }
    }
  }

  sumSquares(n: number, xs: Storage, xOff: number): number {
    const x = this.own(xs, 'sumSquares x');
    this.span(x, xOff, n, x.dtype, 'sumSquares x');
    if (n === 0) return 0;
    return (x.dtype === 'float32' ? this.ex.sumSquares_f32 : this.ex.sumSquares_f64)(n, this.at(x, xOff));
  }

  findNonFinite(n: number, xs: Storage, xOff: number): number {
    const x = this.own(xs, 'findNonFinite x');
    this.span(x, xOff, n, x.dtype, 'findNonFinite x');
    if (n === 0) return -1;
    return (x.dtype === 'float32' ? this.ex.findNonFinite_f32 : this.ex.findNonFinite_f64)(n, this.at(x, xOff));
  }

  maxAbs(n: number, xs: Storage, xOff: number): number {
    const x = this.own(xs, 'maxAbs x');
    this.span(x, xOff, n, x.dtype, 'maxAbs x');
    if (n === 0) return 0;
    return (x.dtype === 'float32' ? this.ex.maxAbs_f32 : this.ex.maxAbs_f64)(n, this.at(x, xOff));
  }

  clamp(n: number, xs: Storage, xOff: number, lo: number, hi: number): void {
    const x = this.own(xs, 'clamp x');
    this.span(x, xOff, n, x.dtype, 'clamp x');
    if (n === 0) return;
    (x.dtype === 'float32' ? this.ex.clamp_f32 : this.ex.clamp_f64)(n, this.at(this.w(x), xOff), lo, hi);
  }

  // ---- shape movement ---------------------------------------------------------------------------------

  permute(xs: Storage, shape: readonly number[], perm: readonly number[], outs: Storage): void {
    const rank = shape.length;
    if (perm.length !== rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
      throw new BackendError(`wasm backend: permute: [${perm.join(', ')}] is not a permutation of ${rank} axes`);
    }
    const o = this.w(this.own(outs, 'permute out'));
    const n = shapeSize(shape);
    this.span(o, 0, n, o.dtype, 'permute out');
    const x = this.span(xs, 0, n, o.dtype, 'permute x');
    if (n === 0) return;
    const inSt = shapeStrides(shape);
    const outShape = perm.map((p) => shape[p]);
    const { dims, st } = mergeLoops(outShape, [perm.map((p) => inSt[p])]);
    const s = st[0];
    const es = o.dtype === 'float32' ? 4 : 8;
    if (dims.length <= 1) {
      this.ex.copyBytes(o.ptr, x.ptr, n * es);
      return;
    }
    const v = this.view(o.dtype);
    const oi = this.index(o), xi = this.index(x);
    const last = dims.length - 1;
    const inner = dims[last], sIn = s[last];
    const outer = n / inner;
    const idx = new Array<number>(last).fill(0);
    let px = xi, po = oi;
    for (let r = 0; r < outer; r++) {
      if (sIn === 1) this.ex.copyBytes(po * es, px * es, inner * es);
      else for (let j = 0, q = px; j < inner; j++, q += sIn) v[po + j] = v[q];
      po += inner;
      for (let ax = last - 1; ax >= 0; ax--) {
        px += s[ax];
        if (++idx[ax] < dims[ax]) break;
        px -= s[ax] * dims[ax];
        idx[ax] = 0;
      }
    }
  }

  sliceAxis(xs: Storage, shape: readonly number[], axis: number, start: number, len: number, outs: Storage): void {
    const dim = shape[axis];
    if (!(axis >= 0 && axis < shape.length && start >= 0 && len >= 0 && start + len <= dim)) {
      throw new BackendError(`wasm backend: sliceAxis: [${start}, ${start + len}) on axis ${axis} of [${shape.join(', ')}]`);
    }
    const o = this.w(this.own(outs, 'sliceAxis out'));
    const outer = shapeSize(shape.slice(0, axis)), inner = shapeSize(shape.slice(axis + 1));
    this.span(o, 0, outer * len * inner, o.dtype, 'sliceAxis out');
    const x = this.span(xs, 0, shapeSize(shape), o.dtype, 'sliceAxis x');
    const chunk = len * inner;
    if (chunk === 0) return;
    const es = o.dtype === 'float32' ? 4 : 8;
    for (let p = 0; p < outer; p++) this.ex.copyBytes(this.at(o, p * chunk), this.at(x, (p * dim + start) * inner), chunk * es);
  }

  addIntoAxis(srcs: Storage, srcShape: readonly number[], dsts: Storage, dstShape: readonly number[], axis: number, start: number): void {
    const len = srcShape[axis], dim = dstShape[axis];
    if (!(axis >= 0 && axis < srcShape.length && srcShape.length === dstShape.length && start >= 0 && start + len <= dim)) {
      throw new BackendError(`wasm backend: addIntoAxis: [${srcShape.join(', ')}] at ${start} on axis ${axis} of [${dstShape.join(', ')}]`);
    }
    const d = this.w(this.own(dsts, 'addIntoAxis dst'));
    this.span(d, 0, shapeSize(dstShape), d.dtype, 'addIntoAxis dst');
    const s = this.span(srcs, 0, shapeSize(srcShape), d.dtype, 'addIntoAxis src');
    const outer = shapeSize(srcShape.slice(0, axis)), inner = shapeSize(srcShape.slice(axis + 1));
    const chunk = len * inner;
    if (chunk === 0) return;
    const axpy = d.dtype === 'float32' ? this.ex.axpy_f32 : this.ex.axpy_f64;
    for (let p = 0; p < outer; p++) axpy(chunk, 1, this.at(s, p * chunk), this.at(d, (p * dim + start) * inner));
  }

  // ---- rows: softmax, losses, embeddings -----------------------------------------------------------

  softmax(rows: number, cols: number, xs: Storage, outs: Storage, log: boolean): void {
    const o = this.own(outs, 'softmax out');
    this.span(o, 0, rows * cols, o.dtype, 'softmax out');
    const x = this.span(xs, 0, rows * cols, o.dtype, 'softmax x');
    if (rows * cols === 0) return;
    (o.dtype === 'float32' ? this.ex.softmax_f32 : this.ex.softmax_f64)(rows, cols, x.ptr, this.w(o).ptr, +log);
  }

  softmaxBackward(rows: number, cols: number, ys: Storage, dys: Storage, dxs: Storage, log: boolean): void {
    const dx = this.own(dxs, 'softmaxBackward dx');
    const n = rows * cols;
    this.span(dx, 0, n, dx.dtype, 'softmaxBackward dx');
    const y = this.span(ys, 0, n, dx.dtype, 'softmaxBackward y');
    const dy = this.span(dys, 0, n, dx.dtype, 'softmaxBackward dy');
    if (n === 0) return;
    (dx.dtype === 'float32' ? this.ex.softmaxBackward_f32 : this.ex.softmaxBackward_f64)(rows, cols, y.ptr, dy.ptr, this.w(dx).ptr, +log);
  }

  softmaxCrossEntropy(rows: number, cols: number, logits: Storage, targets: Int32Array, ignoreIndex: number, probs: Storage, loss: Storage): void {
    const p = this.own(probs, 'softmaxCrossEntropy probs');
    const dt = p.dtype;
    this.span(p, 0, rows * cols, dt, 'softmaxCrossEntropy probs');
    const x = this.span(logits, 0, rows * cols, dt, 'softmaxCrossEntropy logits');
    const l = this.span(loss, 0, rows, dt, 'softmaxCrossEntropy loss');
    if (targets.length < rows) throw new BackendError(`wasm backend: softmaxCrossEntropy: ${targets.length} targets for ${rows} rows`);
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t !== ignoreIndex && !(t >= 0 && t < cols)) {
        throw new BackendError(`softmaxCrossEntropy: target ${t} at row ${r} is outside [0, ${cols}) and is not the ignore index ${ignoreIndex}`);
      }
    }
    if (rows === 0) return;
    const tp = this.ints(targets, rows);
    this.w(p);
    this.w(l);
    if (dt === 'float64') {
      this.ex.sce_f64(rows, cols, x.ptr, tp, ignoreIndex, p.ptr, l.ptr);
      return;
    }
    // sceRows_f32 keeps a row's exponentials in the thread's GEMM scratch (8·cols bytes)
    if (8 * cols > this.scratchBytes) {
      this.ex.sce_f32(rows, cols, x.ptr, tp, ignoreIndex, p.ptr, l.ptr);
      return;
    }
    const pool = this.usePool;
    if (pool === null || rows * cols < 2 ** 14 || rows < 4 * pool.size) {
      this.ex.sceRows_f32(rows, cols, x.ptr, tp, ignoreIndex, p.ptr, l.ptr, this.scratch);
      return;
    }
    const cs = Math.ceil(rows / (4 * pool.size));
    const a = pool.args;
    a[0] = JOBS.SCE; a[1] = rows; a[2] = cols; a[3] = x.ptr; a[4] = tp; a[5] = ignoreIndex; a[6] = p.ptr; a[7] = l.ptr; a[8] = 0;
    a[14] = cs; a[15] = this.scratch; a[16] = this.scratchBytes;
    pool.run(this.ex, Math.ceil(rows / cs));
  }

  softmaxCrossEntropyBackward(rows: number, cols: number, probs: Storage, targets: Int32Array, ignoreIndex: number, rowGrad: Storage, dlogits: Storage): void {
    const dx = this.own(dlogits, 'softmaxCrossEntropyBackward dlogits');
    const dt = dx.dtype;
    this.span(dx, 0, rows * cols, dt, 'softmaxCrossEntropyBackward dlogits');
    const p = this.span(probs, 0, rows * cols, dt, 'softmaxCrossEntropyBackward probs');
    const g = this.span(rowGrad, 0, rows, dt, 'softmaxCrossEntropyBackward rowGrad');
    if (targets.length < rows) throw new BackendError(`wasm backend: softmaxCrossEntropyBackward: ${targets.length} targets for ${rows} rows`);
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t !== ignoreIndex && !(t >= 0 && t < cols)) {
        throw new BackendError(`softmaxCrossEntropyBackward: target ${t} at row ${r} is outside [0, ${cols}) and is not the ignore index ${ignoreIndex}`);
      }
    }
    if (rows === 0) return;
    const tp = this.ints(targets, rows);
    this.w(dx);
    const pool = this.usePool;
    if (dt === 'float64' || pool === null || rows * cols < 2 ** 15 || rows < 4 * pool.size) {
      (dt === 'float32' ? this.ex.sceBackward_f32 : this.ex.sceBackward_f64)(rows, cols, p.ptr, tp, ignoreIndex, g.ptr, dx.ptr);
      return;
    }
    // float32 by row ranges on the pool (rows are independent; memory-bound, cold in a training step)
    const cs = Math.ceil(rows / (4 * pool.size));
    const a = pool.args;
    a[0] = JOBS.SCE; a[1] = rows; a[2] = cols; a[3] = p.ptr; a[4] = tp; a[5] = ignoreIndex; a[6] = g.ptr; a[7] = dx.ptr; a[8] = 1; a[14] = cs;
    pool.run(this.ex, Math.ceil(rows / cs));
  }

  private checkIndices(what: string, idx: Int32Array, rows: number): void {
    for (let i = 0; i < idx.length; i++) {
      const k = idx[i];
      if (!(k >= 0 && k < rows)) throw new BackendError(`${what}: index ${k} at position ${i} is outside [0, ${rows})`);
    }
  }

  gatherRows(cols: number, table: Storage, idx: Int32Array, out: Storage): void {
    const o = this.own(out, 'gatherRows out');
    const w = this.own(table, 'gatherRows table');
    if (w.dtype !== o.dtype) throw new BackendError(`wasm backend: gatherRows table is ${w.dtype} but out is ${o.dtype}`);
    const rows = cols > 0 ? Math.floor(w.size / cols) : 0;
    this.span(o, 0, idx.length * cols, o.dtype, 'gatherRows out');
    this.checkIndices('gatherRows', idx, rows);
    if (idx.length === 0 || cols === 0) return;
    const esize = o.dtype === 'float32' ? 4 : 8;
    this.ex.gatherRows(cols * esize, w.ptr, this.ints(idx), idx.length, this.w(o).ptr);
  }

  scatterAddRows(cols: number, dout: Storage, idx: Int32Array, dtable: Storage): void {
    const dw = this.own(dtable, 'scatterAddRows dtable');
    const rows = cols > 0 ? Math.floor(dw.size / cols) : 0;
    const g = this.span(dout, 0, idx.length * cols, dw.dtype, 'scatterAddRows dout');
    this.checkIndices('scatterAddRows', idx, rows);
    if (idx.length === 0 || cols === 0) return;
    const pIdx = this.ints(idx);
    this.w(dw);
    if (dw.dtype === 'float64') {
      this.ex.scatterAdd_f64(cols, g.ptr, pIdx, idx.length, dw.ptr);
      return;
    }
    const ex = this.ex;
    const pool = this.usePool;
    if (pool === null || idx.length * cols < 2 ** 16 || cols < 128) {
      ex.scatterAddLd_f32(cols, cols, g.ptr, pIdx, idx.length, dw.ptr);
      return;
    }
    // one column range per thread (every element still sums in index order: bit-identical)
    const cs = Math.max(64, Math.ceil(cols / pool.size / 16) * 16);
    const a = pool.args;
    a[0] = JOBS.SCATTER; a[1] = cols; a[2] = g.ptr; a[3] = pIdx; a[4] = idx.length; a[5] = dw.ptr; a[14] = cs;
    pool.run(this.ex, Math.ceil(cols / cs));
  }

  // ---- recurrent cells -----------------------------------------------------------------------------------

  /** Validate a strided [B, H] block (rows yStride apart); returns its address or 0 for null. */
  private strided(s: Storage | null, off: number, stride: number, B: number, H: number, dt: DType, what: string, write: boolean): number {
    if (s === null) return 0;
    if (B > 0 && H > 0 && !(stride >= H)) throw new BackendError(`wasm backend: ${what}: row stride ${stride} is less than H = ${H}`);
    const w = this.mat(s, off, B, H, stride, dt, what);
    if (write) this.w(w);
    return this.at(w, off);
  }

  private block(s: Storage, off: number, n: number, dt: DType, what: string, write: boolean): number {
    const w = this.span(s, off, n, dt, what);
    if (write) this.w(w);
    return this.at(w, off);
  }

  rnnCellForward(s: CellStep, act: Activation, pre: Storage, gOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    if (act !== 'tanh' && act !== 'relu') throw new BackendError(`wasm backend: unknown activation '${String(act)}'`);
    const { B, H, t } = s;
    const dt = this.own(h, 'rnnCellForward h').dtype;
    const n = B * H;
    const pP = this.block(pre, gOff, n, dt, 'rnnCellForward pre', false);
    const pHp = this.block(hPrev, hPrevOff, n, dt, 'rnnCellForward hPrev', false);
    const pH = this.block(h, hOff, n, dt, 'rnnCellForward h', true);
    const pY = this.strided(y, yOff, yStride, B, H, dt, 'rnnCellForward y', true);
    if (n === 0) return;
    (dt === 'float32' ? this.ex.rnnFwd_f32 : this.ex.rnnFwd_f64)(B, H, t, this.lengthsPtr(s), +(act === 'relu'), pP, pHp, pH, pY, yStride);
  }

  rnnCellBackward(s: CellStep, act: Activation, h: Storage, hOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dpre: Storage, gOff: number, dhPrev: Storage, dhPrevOff: number): void {
    if (act !== 'tanh' && act !== 'relu') throw new BackendError(`wasm backend: unknown activation '${String(act)}'`);
    const { B, H, t } = s;
    const dt = this.own(dpre, 'rnnCellBackward dpre').dtype;
    const n = B * H;
    const pH = this.block(h, hOff, n, dt, 'rnnCellBackward h', false);
    const pDh = this.block(dh, dhOff, n, dt, 'rnnCellBackward dh', false);
    const pDy = this.strided(dy, dyOff, dyStride, B, H, dt, 'rnnCellBackward dy', false);
    const pDp = this.block(dpre, gOff, n, dt, 'rnnCellBackward dpre', true);
    const pDhp = this.block(dhPrev, dhPrevOff, n, dt, 'rnnCellBackward dhPrev', true);
    if (n === 0) return;
    (dt === 'float32' ? this.ex.rnnBwd_f32 : this.ex.rnnBwd_f64)(B, H, t, this.lengthsPtr(s), +(act === 'relu'), pH, pDh, pDy, dyStride, pDp, pDhp);
  }

  lstmCellForward(s: CellStep, gates: Storage, gOff: number, hPrev: Storage, hPrevOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    const { B, H, t } = s;
    const dt = this.own(h, 'lstmCellForward h').dtype;
    const n = B * H;
    const pG = this.block(gates, gOff, 4 * n, dt, 'lstmCellForward gates', true);
    const pHp = this.block(hPrev, hPrevOff, n, dt, 'lstmCellForward hPrev', false);
    const pCp = this.block(cPrev, cPrevOff, n, dt, 'lstmCellForward cPrev', false);
    const pC = this.block(c, cOff, n, dt, 'lstmCellForward c', true);
    const pH = this.block(h, hOff, n, dt, 'lstmCellForward h', true);
    const pY = this.strided(y, yOff, yStride, B, H, dt, 'lstmCellForward y', true);
    if (n === 0) return;
    (dt === 'float32' ? this.ex.lstmFwd_f32 : this.ex.lstmFwd_f64)(B, H, t, this.lengthsPtr(s), pG, pHp, pCp, pC, pH, pY, yStride);
  }

  lstmCellBackward(s: CellStep, gates: Storage, gOff: number, cPrev: Storage, cPrevOff: number, c: Storage, cOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dc: Storage, dcOff: number, dgates: Storage, dgOff: number, dcPrev: Storage, dcPrevOff: number, dhPrev: Storage, dhPrevOff: number): void {
    const { B, H, t } = s;
    const dt = this.own(dgates, 'lstmCellBackward dgates').dtype;
    const n = B * H;
    const pG = this.block(gates, gOff, 4 * n, dt, 'lstmCellBackward gates', false);
    const pCp = this.block(cPrev, cPrevOff, n, dt, 'lstmCellBackward cPrev', false);
    const pC = this.block(c, cOff, n, dt, 'lstmCellBackward c', false);
    const pDh = this.block(dh, dhOff, n, dt, 'lstmCellBackward dh', false);
    const pDy = this.strided(dy, dyOff, dyStride, B, H, dt, 'lstmCellBackward dy', false);
    const pDc = this.block(dc, dcOff, n, dt, 'lstmCellBackward dc', false);
    const pDg = this.block(dgates, dgOff, 4 * n, dt, 'lstmCellBackward dgates', true);
    const pDcp = this.block(dcPrev, dcPrevOff, n, dt, 'lstmCellBackward dcPrev', true);
    const pDhp = this.block(dhPrev, dhPrevOff, n, dt, 'lstmCellBackward dhPrev', true);
    if (n === 0) return;
    (dt === 'float32' ? this.ex.lstmBwd_f32 : this.ex.lstmBwd_f64)(B, H, t, this.lengthsPtr(s), pG, pCp, pC, pDh, pDy, dyStride, pDc, pDg, pDcp, pDhp);
  }

  gruCellForward(s: CellStep, gx: Storage, gxOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, h: Storage, hOff: number, y: Storage | null, yOff: number, yStride: number): void {
    const { B, H, t } = s;
    const dt = this.own(h, 'gruCellForward h').dtype;
    const n = B * H;
    const pGx = this.block(gx, gxOff, 3 * n, dt, 'gruCellForward gx', true);
    const pGh = this.block(gh, ghOff, 3 * n, dt, 'gruCellForward gh', false);
    const pHp = this.block(hPrev, hPrevOff, n, dt, 'gruCellForward hPrev', false);
    const pH = this.block(h, hOff, n, dt, 'gruCellForward h', true);
    const pY = this.strided(y, yOff, yStride, B, H, dt, 'gruCellForward y', true);
    if (n === 0) return;
    (dt === 'float32' ? this.ex.gruFwd_f32 : this.ex.gruFwd_f64)(B, H, t, this.lengthsPtr(s), pGx, pGh, pHp, pH, pY, yStride);
  }

  gruCellBackward(s: CellStep, gates: Storage, gOff: number, gh: Storage, ghOff: number, hPrev: Storage, hPrevOff: number, dh: Storage, dhOff: number, dy: Storage | null, dyOff: number, dyStride: number, dgx: Storage, dgxOff: number, dgh: Storage, dghOff: number, dhPrev: Storage, dhPrevOff: number): void {
    const { B, H, t } = s;
    const dt = this.own(dgx, 'gruCellBackward dgx').dtype;
    const n = B * H;
    const pG = this.block(gates, gOff, 3 * n, dt, 'gruCellBackward gates', false);
    const pGh = this.block(gh, ghOff, 3 * n, dt, 'gruCellBackward gh', false);
    const pHp = this.block(hPrev, hPrevOff, n, dt, 'gruCellBackward hPrev', false);
    const pDh = this.block(dh, dhOff, n, dt, 'gruCellBackward dh', false);
    const pDy = this.strided(dy, dyOff, dyStride, B, H, dt, 'gruCellBackward dy', false);
    const pDgx = this.block(dgx, dgxOff, 3 * n, dt, 'gruCellBackward dgx', true);
    const pDgh = this.block(dgh, dghOff, 3 * n, dt, 'gruCellBackward dgh', true);
    const pDhp = this.block(dhPrev, dhPrevOff, n, dt, 'gruCellBackward dhPrev', true);
    if (n === 0) return;
    (dt === 'float32' ? this.ex.gruBwd_f32 : this.ex.gruBwd_f64)(B, H, t, this.lengthsPtr(s), pG, pGh, pHp, pDh, pDy, dyStride, pDgx, pDgh, pDhp);
  }

  // ---- a recurrent direction's whole time loop (Backend.recurrentForward / recurrentBackward) ----------
  //
  // One call per time step of a fused kernel (assembly/cells.ts *Step*_f32): the recurrent GEMM
  // and the cell together, split by hidden units into one chunk per thread when threaded — one job
  // and one barrier per step, the cell math spread over the threads too, and W_hh packed once per
  // call. float32 with H a multiple of 8 only (each gate block then starts on a packed panel);
  // anything else is declined and runs the generic loop. Results equal the generic loop's bit for
  // bit (same GEMM sums, same cell code).

  /** How the steps of a direction run: the pool (or null) and the chunk width in hidden units. */
  private stepPlan(dims: LayerDims, dt: DType): StepPlan | null {
    const { T, B, H, G } = dims;
    if (!this.fusedSteps || dt !== 'float32' || H % NR !== 0 || T === 0 || B === 0 || H === 0) return null;
    const pool = this.usePool;
    if (pool === null || B * G * H * H < this.threadThreshold) return { pool: null, cs: H, chunks: 1 };
    const cs = Math.ceil(H / pool.size / NR) * NR;
    return { pool, cs, chunks: Math.ceil(H / cs) };
  }

  /** Run a fused step kernel over all hidden units with its arguments `args`. */
  private runStep(plan: StepPlan, kernel: StepKernel, H: number, args: readonly number[]): void {
    const pool = plan.pool;
    if (pool === null) {
      this.ex[kernel](0, H, this.scratch, ...args);
      return;
    }
    const a = pool.args;
    a[0] = JOBS.STEP; a[1] = STEP_KERNELS.indexOf(kernel); a[2] = H; a[3] = this.scratch; a[4] = this.scratchBytes; a[14] = plan.cs;
    for (let i = 0; i < args.length; i++) a[STEP_SLOTS[i]] = args[i];
    pool.run(this.ex, plan.chunks);
  }

  recurrentForward(kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, y: Storage | null, yCol: number, yStride: number): boolean {
    const cell = FUSED_STEPS[kernel];
    if (!cell) return false; // a cell kind this backend has no fused steps for: the generic loop runs it
    const dt = this.own(ws.hs, 'recurrent hs').dtype;
    const plan = this.stepPlan(dims, dt);
    if (plan === null) return false;
    const { T, B, H, G } = dims;
    const GH = G * H, BH = B * H;
    const pHs = this.block(ws.hs, 0, (T + 1) * BH, dt, 'recurrent hs', true);
    const pCs = ws.cs ? this.block(ws.cs, 0, (T + 1) * BH, dt, 'recurrent cs', true) : 0;
    const pGx = this.block(ws.gx, 0, T * B * GH, dt, 'recurrent gx', true);
    const pGh = ws.gh ? this.block(ws.gh, 0, T * B * GH, dt, 'recurrent gh', true) : 0;
    const pY = this.strided(y, yCol, yStride, T * B, H, dt, 'recurrent y', true);
    const whh = this.span(wt.wHh, 0, GH * H, dt, 'recurrent weight_hh');
    const pBhh = wt.bHh && cell.recurrentProducts ? this.block(wt.bHh, 0, GH, dt, 'recurrent bias_hh', false) : 0;
    if (cell.hasCell !== (pCs !== 0) || cell.recurrentProducts !== (pGh !== 0)) throw new BackendError(`wasm backend: recurrentForward: the workspace does not fit a '${kernel}' layer`);
    const lens = this.lengthsPtr({ B, H, t: 0, lengths: dims.lengths });
    const [pW, release] = this.packedB(whh, 0, H, true, H, GH, plan.pool);
    try {
      for (let s = 0; s < T; s++) {
        const t = ws.reverse ? T - 1 - s : s;
        const o = stepOffsets(dims, ws.reverse, t); // elements; the kernels take byte addresses (float32)
        const [name, args] = cell.forward({
          B, H, t, lengths: lens, wHh: pW, bHh: pBhh,
          gx: pGx + 4 * o.gates, gh: pGh + 4 * o.gates,
          hPrev: pHs + 4 * o.prev, hNext: pHs + 4 * o.next, cPrev: pCs + 4 * o.prev, cNext: pCs + 4 * o.next,
          y: pY === 0 ? 0 : pY + 4 * t * B * yStride, yStride,
        });
        this.runStep(plan, name, H, args);
      }
    } finally {
      if (release !== 0) this.heap.release(pW, release);
    }
    return true;
  }

  recurrentBackward(kernel: FusedStepKernel, dims: LayerDims, wt: DirectionWeights, ws: DirectionWorkspace, sc: BackwardScratch, dy: Storage | null, dyCol: number, dyStride: number): boolean {
    const cell = FUSED_STEPS[kernel];
    if (!cell) return false;
    const dt = this.own(ws.hs, 'recurrent hs').dtype;
    const plan = this.stepPlan(dims, dt);
    if (plan === null) return false;
    const { T, B, H, G } = dims;
    const GH = G * H, BH = B * H;
    const pHs = this.block(ws.hs, 0, (T + 1) * BH, dt, 'recurrent hs', false);
    const pCs = ws.cs ? this.block(ws.cs, 0, (T + 1) * BH, dt, 'recurrent cs', false) : 0;
    const pGx = this.block(ws.gx, 0, T * B * GH, dt, 'recurrent gx', false);
    const pGh = ws.gh ? this.block(ws.gh, 0, T * B * GH, dt, 'recurrent gh', false) : 0;
    const pDy = this.strided(dy, dyCol, dyStride, T * B, H, dt, 'recurrent dy', false);
    const pDgx = this.block(sc.dgx, 0, T * B * GH, dt, 'recurrent dgx', true);
    const pDgh = this.block(sc.dgh, 0, T * B * GH, dt, 'recurrent dgh', true);
    let pDh = this.block(sc.dh, 0, BH, dt, 'recurrent dh', true), pDhp = this.block(sc.dhPrev, 0, BH, dt, 'recurrent dhPrev', true);
    let pDc = sc.dc ? this.block(sc.dc, 0, BH, dt, 'recurrent dc', true) : 0;
    let pDcp = sc.dcPrev ? this.block(sc.dcPrev, 0, BH, dt, 'recurrent dcPrev', true) : 0;
    const whh = this.span(wt.wHh, 0, GH * H, dt, 'recurrent weight_hh');
    if (cell.hasCell !== (pCs !== 0 && pDc !== 0 && pDcp !== 0) || cell.recurrentProducts !== (pGh !== 0)) throw new BackendError(`wasm backend: recurrentBackward: the workspace does not fit a '${kernel}' layer`);
    const lens = this.lengthsPtr({ B, H, t: 0, lengths: dims.lengths });
    const [pW, release] = this.packedB(whh, 0, H, false, GH, H, plan.pool);
    try {
      let dgNext = 0;
      for (let s = T - 1; s >= 0; s--) {
        const t = ws.reverse ? T - 1 - s : s;
        const o = stepOffsets(dims, ws.reverse, t); // elements; the kernels take byte addresses (float32)
        const [name, args] = cell.backward({
          B, H, t, lengths: lens, wHh: pW, dgNext,
          gates: pGx + 4 * o.gates, gh: pGh + 4 * o.gates,
          hPrev: pHs + 4 * o.prev, hNext: pHs + 4 * o.next, cPrev: pCs + 4 * o.prev, cNext: pCs + 4 * o.next,
          dh: pDh, dy: pDy === 0 ? 0 : pDy + 4 * t * B * dyStride, dyStride, dc: pDc,
          dgx: pDgx + 4 * o.gates, dgh: pDgh + 4 * o.gates, dcPrev: pDcp, dhPrev: pDhp,
        });
        this.runStep(plan, name, H, args);
        dgNext = pDgh + 4 * o.gates;
        [pDh, pDhp] = [pDhp, pDh];
        [sc.dh, sc.dhPrev] = [sc.dhPrev, sc.dh];
        if (sc.dc && sc.dcPrev) {
          [pDc, pDcp] = [pDcp, pDc];
          [sc.dc, sc.dcPrev] = [sc.dcPrev, sc.dc];
        }
      }
      // the gradient into the initial state: dh_0 += dG_0 · W_hh
      this.ex.sgemm_compute(0, 0, B, 0, H / NR, GH, H, 1, dgNext, GH, pW, 1, pDh, H, this.scratch);
    } finally {
      if (release !== 0) this.heap.release(pW, release);
    }
    return true;
  }

  // ---- optimizers -------------------------------------------------------------------------------------

  adamUpdate(n: number, ps: Storage, gs: Storage, ms: Storage, vs: Storage, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, step: number): void {
    const p = this.own(ps, 'adamUpdate p');
    const dt = p.dtype;
    this.span(p, 0, n, dt, 'adamUpdate p');
    const g = this.span(gs, 0, n, dt, 'adamUpdate g');
    const m = this.span(ms, 0, n, dt, 'adamUpdate m');
    const v = this.span(vs, 0, n, dt, 'adamUpdate v');
    if (n === 0) return;
    // the per-step scalars exactly as the reference computes them
    const bc1 = 1 - Math.pow(beta1, step);
    const bc2 = 1 - Math.pow(beta2, step);
    const stepSize = lr / bc1;
    const bc2Sqrt = Math.sqrt(bc2);
    const decay = decoupled ? 1 - lr * weightDecay : 1;
    this.w(p);
    this.w(m);
    this.w(v);
    const pool = this.usePool;
    if (dt === 'float64' || pool === null || n < 2 ** 14) {
      (dt === 'float32' ? this.ex.adam_f32 : this.ex.adam_f64)(n, p.ptr, g.ptr, m.ptr, v.ptr, beta1, beta2, eps, weightDecay, +decoupled, stepSize, bc2Sqrt, decay);
      return;
    }
    // float32 on the pool by element ranges (every element is independent: bit-identical to one thread)
    const cs = Math.ceil(n / (4 * pool.size) / 16) * 16;
    const a = pool.args;
    a[0] = JOBS.ADAM; a[1] = n; a[2] = p.ptr; a[3] = g.ptr; a[4] = m.ptr; a[5] = v.ptr; a[6] = beta1; a[7] = beta2; a[8] = eps;
    a[9] = weightDecay; a[10] = +decoupled; a[11] = stepSize; a[12] = bc2Sqrt; a[13] = decay; a[14] = cs;
    pool.run(this.ex, Math.ceil(n / cs));
  }
}
