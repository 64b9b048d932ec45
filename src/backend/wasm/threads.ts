/**
 * Worker threads sharing the backend's memory, driven through a small control block.
 *
 * Each worker instantiates the same kernel module on the same shared WebAssembly.Memory, then
 * loops: wait until the job generation changes (a short spin of atomic loads, then Atomics.wait),
 * run its part of the job, decrement `pending`, and notify when it was the last. The calling
 * thread publishes a job by writing its arguments, setting `pending` to the number of workers and
 * bumping the generation (Atomics.add, then Atomics.notify); it runs share 0 itself and then spins
 * (and, where it may, waits) until `pending` is 0. That is the "one cheap barrier per step": a
 * recurrent step's GEMM costs two atomic handshakes, no messages. Every worker takes part in every
 * job (an empty range is fine), so no worker can miss or repeat a generation.
 *
 * Jobs are numbered; their arguments are float64 slots: [0] job, [1..15] shared arguments,
 * [16 + 8·t ..] thread t's own range. The same table is interpreted by `WORKER_BODY` and `runShare`.
 */
import { BackendError } from '../interface.ts';
import type { Kernels } from './loader.ts';
import type { Platform, WorkerHandle } from './platform.ts';

export const JOB_GEMM = 1;
export const JOB_PACK_B = 2;

/** Control block slots (Int32). */
const GEN = 0, PENDING = 1, FAILED = 2, SHUTDOWN = 4;
export const SHARED_ARGS = 16;
export const PER_THREAD = 8;

/**
 * The worker's code (a classic script; `onMsg` and `send` come from the platform prelude). Kept
 * in plain JavaScript, in step with `runShare` below.
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
  const r = ${SHARED_ARGS} + ${PER_THREAD} * index;
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
    try {
      switch (a[0]) {
        case ${JOB_GEMM}:
          ex.sgemm_compute(a[1], a[r], a[r + 1], a[r + 2], a[r + 3], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[r + 4]);
          break;
        case ${JOB_PACK_B}:
          ex.sgemm_pack_b(a[1], a[2], a[3], a[4], a[5], a[6], a[r + 2], a[r + 3]);
          break;
      }
    } catch (e) {
      Atomics.store(ctl, ${FAILED}, 1);
    }
    if (Atomics.sub(ctl, ${PENDING}, 1) === 1) Atomics.notify(ctl, ${PENDING});
  }
});
`;

/** Run thread t's share of the job currently in `a` (the calling thread's copy of the table). */
function runShare(ex: Kernels, a: Float64Array, t: number): void {
  const r = SHARED_ARGS + PER_THREAD * t;
  switch (a[0]) {
    case JOB_GEMM:
      ex.sgemm_compute(a[1], a[r], a[r + 1], a[r + 2], a[r + 3], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[r + 4]);
      break;
    case JOB_PACK_B:
      ex.sgemm_pack_b(a[1], a[2], a[3], a[4], a[5], a[6], a[r + 2], a[r + 3]);
      break;
    default:
      throw new BackendError(`wasm backend: unknown job ${a[0]}`);
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
    const ctl = new Int32Array(new SharedArrayBuffer(64 * 4));
    const args = new Float64Array(new SharedArrayBuffer((SHARED_ARGS + PER_THREAD * threads) * 8));
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
   * Run the job described in `args` (slot 0 = job id) on every thread; `ex` runs the calling
   * thread's share (index 0). Returns when all shares are done.
   */
  run(ex: Kernels): void {
    if (this.closed) throw new BackendError('wasm backend: the thread pool has been shut down');
    const ctl = this.ctl;
    Atomics.store(ctl, PENDING, this.size - 1);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    let failure: unknown = null;
    try {
      runShare(ex, this.args, 0);
    } catch (e) {
      failure = e;
    }
    let p = Atomics.load(ctl, PENDING);
    for (let s = 0; p !== 0; s++) {
      if (s > this.spin && this.canBlock) Atomics.wait(ctl, PENDING, p);
      p = Atomics.load(ctl, PENDING);
    }
    if (failure !== null) throw failure;
    if (Atomics.load(ctl, FAILED) !== 0) {
      Atomics.store(ctl, FAILED, 0);
      throw new BackendError('wasm backend: a kernel failed on a worker thread');
    }
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
