/**
 * Worker threads sharing the backend's memory, driven through a small control block.
 *
 * Each worker instantiates the same kernel module on the same shared WebAssembly.Memory. A job is
 * cut into chunks (row blocks or column panels of a GEMM, row panels of a packed A, element ranges
 * of an Adam update, column ranges of a column sum or scatter-add, row ranges of a cross-entropy);
 * the calling thread publishes it by writing its arguments, resetting the claim word to "0 of n
 * claimed" and the done count to 0, and bumping the generation (Atomics.add + notify).
 * Every thread — the caller included — then claims chunks one at a time with a compare-exchange on
 * the claim word and runs them, and the caller waits (spin, then Atomics.wait) until all n are done.
 * That is the "one cheap barrier per step": a recurrent step's GEMM costs a few atomic operations,
 * no messages.
 *
 * Claiming chunks instead of owning fixed shares matters when the machine is busy: a worker the OS
 * has not scheduled yet simply claims nothing, and the caller runs its chunks itself instead of
 * waiting for it. A claim succeeds only while the job is unfinished, and the arguments are read
 * after a successful claim, so a worker that wakes late can never mix two jobs. Which thread runs
 * which chunk does not change any result: every output element is computed entirely inside one
 * chunk, in a fixed order.
 *
 * Job arguments are float64 slots, laid out per job below and read by `runChunk`, which the caller
 * and (its source embedded in WORKER_BODY) the workers run alike.
 */
import { BackendError } from '../interface.ts';
import type { Kernels, StepKernel } from './loader.ts';
import type { Platform, WorkerHandle } from './platform.ts';

/** Job kinds (slot 0 of the argument table). */
export const JOBS = { GEMM: 1, PACK_B: 2, STEP: 3, PACK_A: 4, ADAM: 5, SUMROWS: 6, SCE: 7, SCATTER: 8, WAVE: 9 } as const;

/**
 * The fused recurrent-step kernels a STEP job runs (assembly/cells.ts), by index. Each takes
 * (j0, j1, scratch, ...its arguments, at most STEP_SLOTS.length): the chunk's hidden units and the
 * thread's scratch.
 */
export const STEP_KERNELS = ['rnnStepFwd_f32', 'lstmStepFwd_f32', 'gruStepFwd_f32', 'rnnStepBwd_f32', 'lstmStepBwd_f32', 'gruStepBwd_f32'] as const;
/** Argument slots of a step kernel's own arguments: 5…22 without 14 (the chunk size). */
export const STEP_SLOTS: readonly number[] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22];

/** Control block slots (Int32). CLAIM = (next chunk << 16) | chunk count. */
const GEN = 0, DONE = 1, FAILED = 2, CLAIM = 3, SHUTDOWN = 4;
/** Number of float64 argument slots. */
export const ARG_SLOTS = 24;

/**
 * Argument layout.
 *   GEMM:   [0] job [1] transA [2] K [3] N [4] alpha [5] A [6] lda [7] packed B [8] beta [9] C
 *           [10] ldc [11] M [12] panels [13] split (0 rows, 1 panels) [14] chunk size
 *           [15] scratch base [16] scratch bytes per thread [17] packed A (0: each chunk packs its A)
 *   PACK_B: [0] job [1] transB [2] K [3] N [4] B [5] ldb [6] destination [12] panels [14] chunk size
 *   STEP:   [0] job [1] kernel (index in STEP_KERNELS) [2] units H [3] scratch base [4] scratch bytes
 *           per thread [14] chunk size (units) [STEP_SLOTS] the kernel's own arguments
 *   PACK_A:  [0] job [1] transA [2] K [3] M [4] A [5] lda [6] destination [14] chunk size (rows, a
 *            multiple of 4)
 *   ADAM:    [0] job [1] n [2] p [3] g [4] m [5] v [6] beta1 [7] beta2 [8] eps [9] weight decay
 *            [10] decoupled [11] step size [12] √bc2 [13] decay [14] chunk size (elements)
 *   SUMROWS: [0] job [1] rows [2] cols [3] X [4] out [14] chunk size (columns)
 *   SCE:     [0] job [1] rows [2] cols [3] logits [4] targets [5] ignore index [6] probs [7] loss
 *            [8] 0 [14] chunk size (rows) [15] scratch base [16] scratch bytes per thread; backward:
 *            [3] probs [4] targets [5] ignore index [6] row gradients [7] dlogits [8] 1 [14] chunk size
 *   SCATTER: [0] job [1] cols [2] dout [3] indices [4] index count [5] dtable [14] chunk size (columns)
 *   WAVE:    [0] job [1] table (byte address) [2] layers (chunks) [3] scratch base [4] scratch bytes per thread
 *            [5] progress words (byte address, one Int32 per chunk) [6] the calling thread may
 *            block (1) or must spin (0) [7] spin count; chunk i is one layer's whole run of steps
 *            [8] WAVE_HEADER.length [9] WAVE_ROW (runWave reads the table as they lay it out)
 */

/**
 * A wavefront's table (time-loop.ts writes it, runWave reads it, by these positions), float64
 * slots. Chunk i's header at table + i·WAVE_HEADER.length: its step count, hidden units H, the
 * chunk whose progress it waits for (−1: none), the GEMM that feeds it, C[M, N] (+)= A[M, K] ·
 * packed B (`panels` column panels of NR; lda, ldc, beta), the bias rows added after it (0: none),
 * the byte address of its first step row, how many steps one GEMM covers (`chunk`), and the panels
 * [0, split) of it that the chunk it waits for computes. A step row: the STEP_KERNELS index, the
 * kernel's own arguments (STEP_SLOTS.length of them), then A and C of the step's GEMM rows (read
 * only by a chunk that waits for another).
 */
export const WAVE_HEADER = ['steps', 'H', 'after', 'M', 'K', 'N', 'panels', 'packedB', 'lda', 'ldc', 'beta', 'bias1', 'bias2', 'rows', 'chunk', 'split'] as const;
export const WAVE_ROW = 1 + 17 + 2;
const WORKER_BODY = `
onMsg((init) => {
  if (!init || init.type !== 'init') return;
  const { module, memory, ctl: ctlBuf, args: argsBuf, index, spin } = init;
  let kernels;
  try {
    kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
  } catch (e) {
    send({ type: 'error', message: String(e && e.message || e) });
    return;
  }
  const ctl = new Int32Array(ctlBuf);
  const args = new Float64Array(argsBuf);
  const steps = ${JSON.stringify(STEP_KERNELS)}.map((n) => kernels[n]);
  const J = ${JSON.stringify(JOBS)};
  const runWave = ${runWave.toString()};
  const runChunk = ${runChunk.toString()};
  let gen = Atomics.load(ctl, ${GEN});
  send({ type: 'ready' });
  for (;;) {
    let g = Atomics.load(ctl, ${GEN});
    for (let s = 0; g === gen && s < spin; s++) g = Atomics.load(ctl, ${GEN});
    while (g === gen) {
      Atomics.wait(ctl, ${GEN}, gen);
      g = Atomics.load(ctl, ${GEN});
    }
    gen = g;
    if (Atomics.load(ctl, ${SHUTDOWN}) !== 0) break;
    for (;;) {
      const v = Atomics.load(ctl, ${CLAIM});
      const next = v >>> 16, n = v & 0xffff;
      if (next >= n) break;
      if (Atomics.compareExchange(ctl, ${CLAIM}, v, v + 0x10000) !== v) continue;
      try {
        runChunk(kernels, args, next, index, steps, J, memory);
      } catch (e) {
        Atomics.store(ctl, ${FAILED}, 1);
      }
      if (Atomics.add(ctl, ${DONE}, 1) + 1 === n) Atomics.notify(ctl, ${DONE});
    }
  }
});
`;

/**
 * Run chunk i of the job described in `a` on thread `thread` (0 = the caller), which uses its own
 * scratch region. The workers run this very function: its source is embedded in WORKER_BODY, so
 * it may use only its parameters and globals (no imports, no module constants).
 */
function runChunk(kernels: Kernels, args: Float64Array, i: number, thread: number, steps: readonly StepKernel[], J: typeof JOBS, memory: WebAssembly.Memory): void {
  const cs = args[14];
  if (args[0] === J.WAVE) {
    runWave(kernels, memory, args, i, thread, steps);
    return;
  }
  if (args[0] === J.GEMM) {
    const byRows = args[13] === 0, M = args[11], panels = args[12];
    const m0 = byRows ? i * cs : 0, m1 = byRows ? Math.min(M, m0 + cs) : M;
    const p0 = byRows ? 0 : i * cs, p1 = byRows ? panels : Math.min(panels, p0 + cs);
    const scratch = args[15] + thread * args[16];
    if (args[17] !== 0) kernels.sgemm_compute_pa(m0, m1, p0, p1, args[2], args[3], args[4], args[17], M, args[7], args[8], args[9], args[10], scratch);
    else kernels.sgemm_compute(args[1], m0, m1, p0, p1, args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9], args[10], scratch);
  } else if (args[0] === J.PACK_B) {
    const p0 = i * cs;
    kernels.sgemm_pack_b(args[1], args[2], args[3], args[4], args[5], args[6], p0, Math.min(args[12], p0 + cs));
  } else if (args[0] === J.STEP) {
    const j0 = i * cs;
    steps[args[1]](j0, Math.min(args[2], j0 + cs), args[3] + thread * args[4], args[5], args[6], args[7], args[8], args[9], args[10], args[11], args[12], args[13], args[15], args[16], args[17], args[18], args[19], args[20], args[21], args[22]);
  } else if (args[0] === J.PACK_A) {
    const r0 = i * cs;
    kernels.sgemm_pack_a(args[1], args[3], args[2], args[4], args[5], args[6], r0, Math.min(args[3], r0 + cs));
  } else if (args[0] === J.ADAM) {
    const e0 = i * cs, o = e0 * 4;
    kernels.adam_f32(Math.min(cs, args[1] - e0), args[2] + o, args[3] + o, args[4] + o, args[5] + o, args[6], args[7], args[8], args[9], args[10], args[11], args[12], args[13]);
  } else if (args[0] === J.SUMROWS) {
    const c0 = i * cs;
    kernels.sumRowsLd_f32(args[1], Math.min(cs, args[2] - c0), args[2], args[3] + c0 * 4, args[4] + c0 * 4);
  } else if (args[0] === J.SCE) {
    const r0 = i * cs, o = r0 * args[2] * 4, n = Math.min(cs, args[1] - r0);
    if (args[8] === 0) kernels.sceRows_f32(n, args[2], args[3] + o, args[4] + r0 * 4, args[5], args[6] + o, args[7] + r0 * 4, args[15] + thread * args[16]);
    else kernels.sceBackward_f32(n, args[2], args[3] + o, args[4] + r0 * 4, args[5], args[6] + r0 * 4, args[7] + o);
  } else if (args[0] === J.SCATTER) {
    const c0 = i * cs;
    kernels.scatterAddLd_f32(Math.min(cs, args[1] - c0), args[1], args[2] + c0 * 4, args[3], args[4], args[5] + c0 * 4);
  } else {
    throw new Error(`wasm backend: unknown job ${args[0]}`);
  }
}

/**
 * Chunk i of a WAVE job: one layer's steps in order, each after the step of the same index of the
 * layer it depends on (its progress word), then its own progress word bumped. Embedded in
 * WORKER_BODY like runChunk, so it may use only its parameters and globals. A layer that fails
 * sets its progress to the maximum so that the layers waiting on it finish (the job then reports
 * the failure) instead of waiting forever.
 */
function runWave(kernels: Kernels, memory: WebAssembly.Memory, args: Float64Array, i: number, thread: number, steps: readonly StepKernel[]): void {
  const f64 = new Float64Array(memory.buffer), i32 = new Int32Array(memory.buffer);
  const rowSlots = args[9];
  const h = (args[1] >>> 3) + i * args[8];
  const T = f64[h], H = f64[h + 1], after = f64[h + 2], M = f64[h + 3], K = f64[h + 4], N = f64[h + 5], panels = f64[h + 6];
  const packedB = f64[h + 7], lda = f64[h + 8], ldc = f64[h + 9], beta = f64[h + 10], bias1 = f64[h + 11], bias2 = f64[h + 12];
  const progress = args[5] >>> 2, scratch = args[3] + thread * args[4];
  const canBlock = thread !== 0 || args[6] !== 0, spin = args[7];
  const chunk = f64[h + 14], rows = f64[h + 13] >>> 3, split = f64[h + 15];
  // the layer fed by this one (waiting on it), whose GEMM's first `split` panels this layer runs
  const hn = h + args[8];
  const feeds = i + 1 < args[2] && f64[hn + 2] === i;
  const chunkN = feeds ? f64[hn + 14] : 1, splitN = feeds ? f64[hn + 15] : 0, rowsN = feeds ? f64[hn + 13] >>> 3 : 0;
  try {
    for (let s = 0, r = rows; s < T; s++, r += rowSlots) {
      if (after >= 0 && s % chunk === 0) {
        // the next `chunk` steps' GEMMs as one: their rows are adjacent (ascending or descending in s)
        const m = Math.min(chunk, T - s);
        // no inner functions here: a bundler may wrap them in helpers the worker does not have
        let v = Atomics.load(i32, progress + after);
        for (let k = 0; v < s + m; k++) {
          if (k > spin && canBlock) Atomics.wait(i32, progress + after, v);
          v = Atomics.load(i32, progress + after);
        }
        const last = r + (m - 1) * rowSlots;
        const a = Math.min(f64[r + 18], f64[last + 18]), c = Math.min(f64[r + 19], f64[last + 19]);
        kernels.sgemm_compute(0, 0, m * M, split, panels, K, N, 1, a, lda, packedB, beta, c, ldc, scratch);
        if (bias1 !== 0) kernels.addRowVector_f32(m * M, N, bias1, c);
        if (bias2 !== 0) kernels.addRowVector_f32(m * M, N, bias2, c);
      }
      steps[f64[r]](0, H, scratch, f64[r + 1], f64[r + 2], f64[r + 3], f64[r + 4], f64[r + 5], f64[r + 6], f64[r + 7], f64[r + 8], f64[r + 9], f64[r + 10], f64[r + 11], f64[r + 12], f64[r + 13], f64[r + 14], f64[r + 15], f64[r + 16], f64[r + 17]);
      if (feeds) {
        if ((s + 1) % chunkN !== 0 && s + 1 !== T) continue;
        // a chunk of the next layer's steps is ready: run its GEMM's first panels before saying so
        const m = (s % chunkN) + 1, first = rowsN + (s + 1 - m) * rowSlots, last = first + (m - 1) * rowSlots;
        const a = Math.min(f64[first + 18], f64[last + 18]), c = Math.min(f64[first + 19], f64[last + 19]);
        kernels.sgemm_compute(0, 0, m * f64[hn + 3], 0, splitN, f64[hn + 4], f64[hn + 5], 1, a, f64[hn + 8], f64[hn + 7], f64[hn + 10], c, f64[hn + 9], scratch);
      }
      Atomics.store(i32, progress + i, s + 1);
      Atomics.notify(i32, progress + i);
    }
  } catch (e) {
    Atomics.store(i32, progress + i, 0x7fffffff);
    Atomics.notify(i32, progress + i);
    throw e;
  }
}

export interface PoolOptions {
  /** Atomic loads a waiting thread spins through before it sleeps (default 4000, a few µs). */
  spin?: number;
}

export class ThreadPool {
  /** Threads including the calling one. */
  readonly size: number;
  /** The argument table; callers fill it, then call `run`. */
  readonly args: Float64Array;
  private readonly ctl: Int32Array;
  private readonly workers: WorkerHandle[];
  /** Whether the calling thread may Atomics.wait (not a browser's main thread). */
  readonly canBlock: boolean;
  /** The shared memory the kernels run on (a WAVE job's table and progress words live in it). */
  private readonly memory: WebAssembly.Memory;
  readonly spin: number;
  private closed = false;

  private constructor(size: number, ctl: Int32Array, args: Float64Array, workers: WorkerHandle[], canBlock: boolean, spin: number, memory: WebAssembly.Memory) {
    this.size = size;
    this.memory = memory;
    this.ctl = ctl;
    this.args = args;
    this.workers = workers;
    this.canBlock = canBlock;
    this.spin = spin;
  }

  /** Start `threads − 1` workers on `memory` and wait until each has instantiated the module. */
  static async start(platform: Platform, module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number, o: PoolOptions = {}): Promise<ThreadPool> {
    const spin = o.spin ?? 4000;
    const ctl = new Int32Array(new SharedArrayBuffer(16 * 4));
    const args = new Float64Array(new SharedArrayBuffer(ARG_SLOTS * 8));
    const workers: WorkerHandle[] = [];
    const ready: Promise<void>[] = [];
    try {
      for (let t = 1; t < threads; t++) {
        const w = platform.spawnWorker(WORKER_BODY);
        workers.push(w);
        ready.push(new Promise<void>((resolve, reject) => {
          w.onMessage((m) => {
            const msg = m as { type?: string; message?: string };
            if (msg.type === 'ready') resolve();
            else if (msg.type === 'error') reject(new BackendError(`wasm backend: worker ${t} failed to start: ${msg.message}`));
          });
          w.onError((e) => reject(new BackendError(`wasm backend: worker ${t} failed: ${(e as Error)?.message ?? String(e)}`)));
        }));
        w.post({ type: 'init', module, memory, ctl: ctl.buffer, args: args.buffer, index: t, spin });
      }
      await Promise.all(ready);
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    for (const w of workers) w.unref();
    return new ThreadPool(threads, ctl, args, workers, platform.canBlock, spin, memory);
  }

  /**
   * Run the job described in `args` as `chunks` chunks (1 ≤ chunks < 65536) on all threads;
   * `kernels` (the calling thread's instance) runs the calling thread's chunks. Returns when every chunk is done.
   */
  run(kernels: Kernels, chunks: number): void {
    if (this.closed) throw new BackendError('wasm backend: the thread pool has been shut down');
    if (!(chunks >= 1 && chunks < 0x10000)) throw new BackendError(`wasm backend: a job needs 1 to 65535 chunks, got ${chunks}`);
    const ctl = this.ctl, args = this.args;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, CLAIM, chunks);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    let failure: unknown = null;
    for (;;) {
      const v = Atomics.load(ctl, CLAIM);
      const next = v >>> 16;
      if (next >= chunks) break;
      if (Atomics.compareExchange(ctl, CLAIM, v, v + 0x10000) !== v) continue;
      try {
        runChunk(kernels, args, next, 0, this.stepKernels(kernels), JOBS, this.memory);
      } catch (e) {
        failure ??= e;
      }
      Atomics.add(ctl, DONE, 1);
    }
    let d = Atomics.load(ctl, DONE);
    for (let s = 0; d !== chunks; s++) {
      if (s > this.spin && this.canBlock) Atomics.wait(ctl, DONE, d);
      d = Atomics.load(ctl, DONE);
    }
    // cleared whatever happened: a job whose chunks failed on this thread and on a worker alike must
    // not leave the flag to fail the next job
    const workerFailed = Atomics.exchange(ctl, FAILED, 0) !== 0;
    if (failure !== null) throw failure;
    if (workerFailed) throw new BackendError('wasm backend: a kernel failed on a worker thread');
  }

  private steps: { kernels: Kernels; steps: StepKernel[] } | null = null;

  /** The step kernels of `kernels` in STEP_KERNELS order (looked up once). */
  private stepKernels(kernels: Kernels): StepKernel[] {
    if (this.steps?.kernels !== kernels) this.steps = { kernels, steps: STEP_KERNELS.map((n) => kernels[n]) };
    return this.steps.steps;
  }

  /** Stop the workers (the pool cannot be used afterwards). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, SHUTDOWN, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
  }
}
