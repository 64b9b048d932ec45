/**
 * float32/float64 GEMM on the wasm kernels: how a matmul is packed, cut up and dispatched.
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
import { BackendError, type Storage } from '../interface.ts';
import { type WasmContext, addressOf, markWritten } from './context.ts';
import type { Heap } from './memory.ts';
import type { WasmStorage } from './storage.ts';
import { JOBS, type ThreadPool } from './threads.ts';

/** GEMM micro-kernel geometry (must match assembly/gemm.ts): NR columns per packed B panel, MR rows per packed A panel. */
export const NR = 8;
export const MR = 4;

/** A block of wasm memory: its byte address and the bytes to give back (0: nothing to give back, e.g. a cached copy). */
export interface Block {
  ptr: number;
  bytes: number;
}

const NO_BLOCK: Block = { ptr: 0, bytes: 0 };

interface PackEntry {
  storageId: number;
  key: string;
  version: number;
  /** 0 until the operand has been seen twice (then a kept packed copy). */
  ptr: number;
  bytes: number;
}

/** The packed-B operands kept between GEMM calls (see the file comment for the rule). */
export class PackCache {
  private readonly entries = new Map<string, PackEntry>();
  /** Keys of the entries of each storage id (to drop them when the storage goes). */
  private readonly keysOf = new Map<number, Set<string>>();
  private packedBytes = 0;
  private readonly heap: Heap;
  readonly limitBytes: number;

  constructor(heap: Heap, limitBytes: number) {
    this.heap = heap;
    this.limitBytes = limitBytes;
  }

  /** Forget (and free) every packed copy of storage `id`. */
  drop(id: number): void {
    const keys = this.keysOf.get(id);
    if (!keys) return;
    for (const k of keys) {
      const e = this.entries.get(k);
      if (e) this.forget(k, e, false);
    }
    this.keysOf.delete(id);
  }

  private forget(k: string, e: PackEntry, unlink = true): void {
    if (e.ptr !== 0) {
      this.heap.release(e.ptr, e.bytes);
      this.packedBytes -= e.bytes;
    }
    this.entries.delete(k);
    if (unlink) this.keysOf.get(e.storageId)?.delete(k);
  }

  stats(): { packedOperands: number; packedBytes: number } {
    let n = 0;
    for (const e of this.entries.values()) if (e.ptr !== 0) n++;
    return { packedOperands: n, packedBytes: this.packedBytes };
  }

  /**
   * op(B) packed for sgemm_compute: the block to read, with bytes to release after the call (0 when
   * it is a kept copy).
   */
  packedB(ctx: WasmContext, B: WasmStorage, bOff: number, ldb: number, transB: boolean, K: number, N: number, pool: ThreadPool | null): Block {
    const panels = Math.ceil(N / NR);
    const bytes = K * panels * NR * 4;
    const key = `${B.id}|${bOff}|${ldb}|${transB ? 1 : 0}|${K}|${N}`;
    const e = this.entries.get(key);
    if (e !== undefined) {
      // most recently used goes last
      this.entries.delete(key);
      this.entries.set(key, e);
      if (e.ptr !== 0 && e.version === B.version) return { ptr: e.ptr, bytes: 0 };
      if (e.ptr !== 0 || e.version === B.version) {
        // seen before: keep a packed copy (a stale one is repacked in place)
        if (e.ptr === 0) {
          this.makeRoom(bytes);
          const [ptr, size] = this.heap.alloc(bytes, false);
          e.ptr = ptr;
          e.bytes = size;
          this.packedBytes += size;
        }
        e.version = B.version;
        packB(ctx, B, bOff, ldb, transB, K, N, e.ptr, pool);
        return { ptr: e.ptr, bytes: 0 };
      }
      e.version = B.version;
    } else {
      this.entries.set(key, { storageId: B.id, key, version: B.version, ptr: 0, bytes: 0 });
      let keys = this.keysOf.get(B.id);
      if (keys === undefined) {
        keys = new Set();
        this.keysOf.set(B.id, keys);
      }
      keys.add(key);
    }
    const [ptr, size] = this.heap.alloc(bytes, false);
    packB(ctx, B, bOff, ldb, transB, K, N, ptr, pool);
    return { ptr, bytes: size };
  }

  /** Drop least recently used copies until `bytes` more fit under the limit. */
  private makeRoom(bytes: number): void {
    for (const [k, e] of this.entries) {
      if (this.packedBytes + bytes <= this.limitBytes) break;
      if (e.ptr !== 0) this.forget(k, e);
    }
  }
}

/** Give a block from `packedB`/`packA` back (nothing for a kept copy). */
export function releaseBlock(ctx: WasmContext, b: Block): void {
  if (b.bytes !== 0) ctx.heap.release(b.ptr, b.bytes);
}

/** C = alpha·op(A)·op(B) + beta·C (Backend.gemm). */
export function gemm(
  ctx: WasmContext, transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  As: Storage, aOff: number, lda: number, Bs: Storage, bOff: number, ldb: number,
  beta: number, Cs: Storage, cOff: number, ldc: number,
): void {
  const kernels = ctx.kernels;
  const C = ctx.own(Cs, 'gemm C');
  const dt = C.dtype;
  for (const [v, what] of [[M, 'M'], [N, 'N'], [K, 'K']] as const) {
    if (!Number.isInteger(v) || v < 0) throw new BackendError(`wasm backend: gemm ${what} must be a non-negative integer, got ${v}`);
  }
  const A = transA ? ctx.matrix(As, aOff, K, M, lda, dt, 'gemm A') : ctx.matrix(As, aOff, M, K, lda, dt, 'gemm A');
  const B = transB ? ctx.matrix(Bs, bOff, N, K, ldb, dt, 'gemm B') : ctx.matrix(Bs, bOff, K, N, ldb, dt, 'gemm B');
  ctx.matrix(C, cOff, M, N, ldc, dt, 'gemm C');
  if (M === 0 || N === 0) return;
  markWritten(C);
  const cPtr = addressOf(C, cOff);
  if (dt === 'float64') {
    kernels.dgemm(+transA, +transB, M, N, K, alpha, addressOf(A, aOff), lda, addressOf(B, bOff), ldb, beta, cPtr, ldc);
    return;
  }
  if (K === 0 || alpha === 0) {
    kernels.sgemm_scale_c(M, N, beta, cPtr, ldc);
    return;
  }
  const pool = ctx.pool;
  const threaded = pool !== null && M * N * K >= ctx.threadThreshold;
  const panels = Math.ceil(N / NR);
  const packedB = ctx.packs.packedB(ctx, B, bOff, ldb, transB, K, N, threaded ? pool : null);
  let packedA = NO_BLOCK;
  try {
    const aPtr = addressOf(A, aOff);
    if (!threaded) {
      kernels.sgemm_compute(+transA, 0, M, 0, panels, K, N, alpha, aPtr, lda, packedB.ptr, beta, cPtr, ldc, ctx.scratchBase);
      return;
    }
    const threads = pool.size;
    const byRows = M >= 64 * threads;
    // a split by column panels packs all of A in every chunk: when A is big (≥ 256 KiB packed, e.g.
    // dlogitsᵀ in dW_out = dlogitsᵀ · h, 65 × 2048), pack it once for all chunks instead
    const Mpad = Math.ceil(M / MR) * MR;
    if (!byRows && M > 1 && Mpad * K >= 2 ** 16) packedA = packA(ctx, pool, transA, M, K, aPtr, lda);
    const args = pool.args; // slot layout: threads.ts
    args[0] = JOBS.GEMM;
    args[1] = +transA; args[2] = K; args[3] = N; args[4] = alpha; args[5] = aPtr; args[6] = lda; args[7] = packedB.ptr; args[8] = beta; args[9] = cPtr; args[10] = ldc;
    args[11] = M; args[12] = panels; args[15] = ctx.scratchBase; args[16] = ctx.scratchBytes; args[17] = packedA.ptr;
    let chunks: number;
    if (byRows) {
      // by rows, in whole MR-row panels; 4 chunks per thread so an idle thread can pick up slack
      const rowsPerChunk = Math.ceil(M / (4 * threads) / MR) * MR;
      args[13] = 0; args[14] = rowsPerChunk;
      chunks = Math.ceil(M / rowsPerChunk);
    } else {
      // by column panels: 2 chunks per thread when every chunk packs A, 4 when A is packed once
      const panelsPerChunk = Math.ceil(panels / ((packedA.ptr !== 0 ? 4 : 2) * threads));
      args[13] = 1; args[14] = panelsPerChunk;
      chunks = Math.ceil(panels / panelsPerChunk);
    }
    pool.run(kernels, chunks);
  } finally {
    releaseBlock(ctx, packedB);
    releaseBlock(ctx, packedA);
  }
}

/**
 * op(A) (M×K) at aPtr packed by sgemm_pack_a into a fresh block, by row panels on the pool when it
 * is big enough.
 */
function packA(ctx: WasmContext, pool: ThreadPool, transA: boolean, M: number, K: number, aPtr: number, lda: number): Block {
  const Mpad = Math.ceil(M / MR) * MR;
  const [ptr, bytes] = ctx.heap.alloc(Mpad * K * 4, false);
  if (Mpad * K < 2 ** 14 || Mpad < 4 * MR) {
    ctx.kernels.sgemm_pack_a(+transA, M, K, aPtr, lda, ptr, 0, M);
    return { ptr, bytes };
  }
  const args = pool.args;
  args[0] = JOBS.PACK_A;
  args[1] = +transA; args[2] = K; args[3] = M; args[4] = aPtr; args[5] = lda; args[6] = ptr;
  const rowsPerChunk = Math.ceil(Mpad / MR / (2 * pool.size)) * MR;
  args[14] = rowsPerChunk;
  pool.run(ctx.kernels, Math.ceil(M / rowsPerChunk));
  return { ptr, bytes };
}

/** op(B) (K×N) packed by sgemm_pack_b into `dst`, by column panels on the pool when it is big enough. */
function packB(ctx: WasmContext, B: WasmStorage, bOff: number, ldb: number, transB: boolean, K: number, N: number, dst: number, pool: ThreadPool | null): void {
  const panels = Math.ceil(N / NR);
  const bPtr = addressOf(B, bOff);
  if (pool === null || K * N < 2 ** 16 || panels < pool.size) {
    ctx.kernels.sgemm_pack_b(+transB, K, N, bPtr, ldb, dst, 0, panels);
    return;
  }
  const args = pool.args;
  args[0] = JOBS.PACK_B;
  args[1] = +transB; args[2] = K; args[3] = N; args[4] = bPtr; args[5] = ldb; args[6] = dst;
  const panelsPerChunk = Math.ceil(panels / (4 * pool.size));
  args[12] = panels; args[14] = panelsPerChunk;
  pool.run(ctx.kernels, Math.ceil(panels / panelsPerChunk));
}
