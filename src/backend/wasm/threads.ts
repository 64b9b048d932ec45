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
export const JOBS = { GEMM: 1, PACK_B: 2, STEP: 3, PACK_A: 4, ADAM: 5, SUMROWS: 6, SCE: 7, SCATTER: 8 } as const;

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
 */
const WORKER_BODY = `
onMsg((init) => {
  if (!init || init.type !== 'init') return;
  const { module, memory, ctl: ctlBuf, args: argsBuf, index, spin } = init;
  let ex;
  try {
    ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
  } catch (e) {
    send({ type: 'error', message: String(e && e.message || e) });
    return;
  }
  const ctl = new Int32Array(ctlBuf);
  const a = new Float64Array(argsBuf);
  const steps = ${JSON.stringify(STEP_KERNELS)}.map((n) => ex[n]);
  const J = ${JSON.stringify(JOBS)};
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
        runChunk(ex, a, next, index, steps, J);
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
function runChunk(ex: Kernels, a: Float64Array, i: number, thread: number, steps: readonly StepKernel[], J: typeof JOBS): void {
  const cs = a[14];
  if (a[0] === J.GEMM) {
    const rows = a[13] === 0, M = a[11], P = a[12];
    const m0 = rows ? i * cs : 0, m1 = rows ? Math.min(M, m0 + cs) : M;
    const p0 = rows ? 0 : i * cs, p1 = rows ? P : Math.min(P, p0 + cs);
    const scratch = a[15] + thread * a[16];
    if (a[17] !== 0) ex.sgemm_compute_pa(m0, m1, p0, p1, a[2], a[3], a[4], a[17], M, a[7], a[8], a[9], a[10], scratch);
    else ex.sgemm_compute(a[1], m0, m1, p0, p1, a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], scratch);
  } else if (a[0] === J.PACK_B) {
    const p0 = i * cs;
    ex.sgemm_pack_b(a[1], a[2], a[3], a[4], a[5], a[6], p0, Math.min(a[12], p0 + cs));
  } else if (a[0] === J.STEP) {
    const j0 = i * cs;
    steps[a[1]](j0, Math.min(a[2], j0 + cs), a[3] + thread * a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22]);
  } else if (a[0] === J.PACK_A) {
    const r0 = i * cs;
    ex.sgemm_pack_a(a[1], a[3], a[2], a[4], a[5], a[6], r0, Math.min(a[3], r0 + cs));
  } else if (a[0] === J.ADAM) {
    const e0 = i * cs, o = e0 * 4;
    ex.adam_f32(Math.min(cs, a[1] - e0), a[2] + o, a[3] + o, a[4] + o, a[5] + o, a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13]);
  } else if (a[0] === J.SUMROWS) {
    const c0 = i * cs;
    ex.sumRowsLd_f32(a[1], Math.min(cs, a[2] - c0), a[2], a[3] + c0 * 4, a[4] + c0 * 4);
  } else if (a[0] === J.SCE) {
    const r0 = i * cs, o = r0 * a[2] * 4, n = Math.min(cs, a[1] - r0);
    if (a[8] === 0) ex.sceRows_f32(n, a[2], a[3] + o, a[4] + r0 * 4, a[5], a[6] + o, a[7] + r0 * 4, a[15] + thread * a[16]);
    else ex.sceBackward_f32(n, a[2], a[3] + o, a[4] + r0 * 4, a[5], a[6] + r0 * 4, a[7] + o);
  } else if (a[0] === J.SCATTER) {
    const c0 = i * cs;
    ex.scatterAddLd_f32(Math.min(cs, a[1] - c0), a[1], a[2] + c0 * 4, a[3], a[4], a[5] + c0 * 4);
  } else {
    throw new Error(`wasm backend: unknown job ${a[0]}`);
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
  private readonly canBlock: boolean;
  private readonly spin: number;
  private closed = false;

  private constructor(size: number, ctl: Int32Array, args: Float64Array, workers: WorkerHandle[], canBlock: boolean, spin: number) {
    this.size = size;
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
    return new ThreadPool(threads, ctl, args, workers, platform.canBlock, spin);
  }

  /**
   * Run the job described in `args` as `chunks` chunks (1 ≤ chunks < 65536) on all threads; `ex`
   * runs the calling thread's chunks. Returns when every chunk is done.
   */
  run(ex: Kernels, chunks: number): void {
    if (this.closed) throw new BackendError('wasm backend: the thread pool has been shut down');
    if (!(chunks >= 1 && chunks < 0x10000)) throw new BackendError(`wasm backend: a job needs 1 to 65535 chunks, got ${chunks}`);
    const ctl = this.ctl, a = this.args;
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
        runChunk(ex, a, next, 0, this.stepKernels(ex), JOBS);
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
    if (failure !== null) throw failure;
    if (Atomics.load(ctl, FAILED) !== 0) {
      Atomics.store(ctl, FAILED, 0);
      throw new BackendError('wasm backend: a kernel failed on a worker thread');
    }
  }

  private steps: { ex: Kernels; kernels: StepKernel[] } | null = null;

  /** The step kernels of `ex` in STEP_KERNELS order (looked up once). */
  private stepKernels(ex: Kernels): StepKernel[] {
    if (this.steps?.ex !== ex) this.steps = { ex, kernels: STEP_KERNELS.map((n) => ex[n]) };
    return this.steps.kernels;
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
