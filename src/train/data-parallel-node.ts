/**
 * Data-parallel shards in Node worker threads (recurjs/node): N workers each hold a replica of the
 * task, and each step runs a contiguous run of the step's shards on each (data-parallel.ts says why
 * the results do not depend on N).
 *
 * Memory is shared, messages are few: the weights go to the workers through one SharedArrayBuffer
 * (written here before each step, read there), and each shard's gradient comes back in its own
 * slot of another (float64, slot m for shard m), so nothing the size of the model is cloned per
 * step. The Trainer's step is synchronous, and Node lets its main thread block: the step waits on
 * an Atomics counter the workers raise when done, and takes their replies (losses, counts, errors)
 * with receiveMessageOnPort. A worker that dies without replying (out of memory) is noticed by the
 * step's time limit, `timeoutSeconds`.
 *
 * A replica is built in the worker by a function the caller names by module URL and export, with a
 * structured-cloneable argument (for the built-in tasks: the registry's `taskReplica` with the
 * model file's bytes). Its parameters must have the names and sizes of the original's, in order.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Task } from './task.ts';
import { DataParallelError, type ShardResult, type ShardRunner } from './data-parallel.ts';

export interface ReplicaSpec {
  /** URL (file: URL or its href) of the module that builds a replica. */
  module: string | URL;
  /** The name of the function it exports: (arg) → Task or Promise<Task>. */
  export: string;
  /** Its argument (anything structured clone copies). */
  arg?: unknown;
}

export interface WorkerShardsOptions {
  /** Worker threads (each computes its shards on one backend of its own). */
  workers: number;
  replica: ReplicaSpec;
  /** The workers' backend: 'wasm' (default) or 'js'. */
  backend?: 'wasm' | 'js';
  /** wasm threads per worker (default 1: the workers are the parallelism). */
  threadsPerWorker?: number;
  /** Whether the workers' wasm backend uses relaxed SIMD (default false; match the main thread's backend for identical results). */
  relaxedSimd?: boolean;
  /** How long a step waits for the workers before it fails (default 600 s). */
  timeoutSeconds?: number;
}

/** What a worker answers (data-parallel-worker.ts). */
export type WorkerReply =
  | { type: 'ready'; params: [string, number][] }
  | { type: 'done'; results: { loss: number; count: number; metrics?: Record<string, number>; has: boolean[] }[] }
  | { type: 'error'; message: string };

/** What the main thread sends. */
export type WorkerRequest = { type: 'step'; seed: number; first: number; shards: unknown[]; grads: SharedArrayBuffer };

/** The data sent when a worker starts. */
export interface WorkerInit {
  port: MessagePort;
  replica: { module: string; export: string; arg?: unknown };
  backend: 'wasm' | 'js';
  threads: number;
  relaxedSimd: boolean;
  weights: SharedArrayBuffer;
  /** Int32 [0]: workers done with the current request. */
  signal: SharedArrayBuffer;
}

/**
 * A worker running data-parallel-worker: built, the .js beside this module; from source (tests and
 * benchmarks under tsx), the .ts through tsx's loader, which a worker thread does not inherit.
 */
function startWorker(options: ConstructorParameters<typeof Worker>[1]): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./data-parallel-worker.js', import.meta.url), options);
  const url = new URL('./data-parallel-worker.ts', import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`, { ...options, eval: true });
}

/** Start `workers` replicas of `task` and return the runner of the shards in them (close() when done). */
export async function workerShards<B>(task: Task<B>, options: WorkerShardsOptions): Promise<ShardRunner<B> & { close(): Promise<void>; readonly workers: number }> {
  const { workers: N, replica, backend = 'wasm', threadsPerWorker = 1, relaxedSimd = false, timeoutSeconds = 600 } = options;
  if (!Number.isInteger(N) || N < 1) throw new DataParallelError(`workerShards: workers must be a positive integer, got ${String(N)}`);
  if (!Number.isInteger(threadsPerWorker) || threadsPerWorker < 1) throw new DataParallelError(`workerShards: threadsPerWorker must be a positive integer, got ${String(threadsPerWorker)}`);
  if (backend !== 'wasm' && backend !== 'js') throw new DataParallelError(`workerShards: backend must be 'wasm' or 'js', got ${String(backend)}`);
  if (!(timeoutSeconds > 0)) throw new DataParallelError(`workerShards: timeoutSeconds must be positive, got ${String(timeoutSeconds)}`);
  if (!replica || typeof replica.export !== 'string' || !(typeof replica.module === 'string' || replica.module instanceof URL)) {
    throw new DataParallelError('workerShards: replica must be {module: URL of a module, export: the name of its function (arg) → Task, arg?}');
  }
  const named = task.model.namedParameters();
  const sizes = named.map(([, p]) => p.size);
  const offsets: number[] = [];
  let total = 0;
  for (const s of sizes) {
    offsets.push(total);
    total += s;
  }
  const weights = new Float64Array(new SharedArrayBuffer(total * 8));
  const signal = new Int32Array(new SharedArrayBuffer(4));
  let grads = new Float64Array(new SharedArrayBuffer(0));

  const pool: { worker: Worker; port: MessagePort }[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(pool.splice(0).map(async ({ worker, port }) => {
      port.close();
      await worker.terminate();
    }));
  };
  const init: Omit<WorkerInit, 'port'> = {
    replica: { module: String(replica.module), export: replica.export, arg: replica.arg }, backend, threads: threadsPerWorker, relaxedSimd, weights: weights.buffer as SharedArrayBuffer, signal: signal.buffer as SharedArrayBuffer,
  };
  try {
    for (let w = 0; w < N; w++) {
      const { port1, port2 } = new MessageChannel();
      const worker = startWorker({ workerData: { ...init, port: port2 } satisfies WorkerInit, transferList: [port2] });
      pool.push({ worker, port: port1 });
    }
    // startup: each worker builds its replica and reports its parameters (or why it could not)
    await Promise.all(pool.map(({ worker, port }, w) => new Promise<void>((resolve, reject) => {
      const fail = (why: string): void => reject(new DataParallelError(`workerShards: worker ${w} did not start: ${why}`));
      worker.once('error', (e) => fail(e.message));
      worker.once('exit', (code) => fail(`it exited (code ${code})`));
      port.once('message', (m: WorkerReply) => {
        worker.removeAllListeners('exit');
        if (m.type === 'error') return fail(m.message);
        if (m.type !== 'ready') return fail(`it answered '${m.type}'`);
        const want = named.map(([n], i) => `${n}:${sizes[i]}`).join(', ');
        const got = m.params.map(([n, s]) => `${n}:${s}`).join(', ');
        if (want !== got) return fail(`its replica's parameters (${got}) are not the model's (${want})`);
        resolve();
      });
    })));
  } catch (e) {
    await close();
    throw e;
  }
  for (const { worker, port } of pool) {
    port.removeAllListeners('message');
    worker.removeAllListeners('error');
    // An idle pool never keeps the process alive. The worker catches every error of a step and
    // replies with it; one that kills the thread (V8 out of memory) shows as the step's time limit.
    // From here on replies are taken with receiveMessageOnPort right after the wait, before the
    // event loop could hand them to a listener.
    worker.on('error', () => {});
    worker.unref();
    port.unref();
  }

  return {
    workers: N,
    close,
    run(shards, seed) {
      if (pool.length === 0) throw new DataParallelError('workerShards: the workers were closed');
      const M = shards.length;
      if (grads.length < M * total) grads = new Float64Array(new SharedArrayBuffer(M * total * 8));
      for (let i = 0; i < named.length; i++) weights.set(named[i][1].toArray(), offsets[i]);
      Atomics.store(signal, 0, 0);
      // worker w takes shards [floor(w·M/N), floor((w+1)·M/N)); with more workers than shards some idle
      const ranges = pool.map((_, w) => [Math.floor((w * M) / N), Math.floor(((w + 1) * M) / N)]);
      pool.forEach(({ port }, w) => {
        const [m0, m1] = ranges[w];
        port.postMessage({ type: 'step', seed, first: m0, shards: shards.slice(m0, m1), grads: grads.buffer as SharedArrayBuffer } satisfies WorkerRequest);
      });
      const deadline = performance.now() + timeoutSeconds * 1000;
      for (let done = Atomics.load(signal, 0); done < N; done = Atomics.load(signal, 0)) {
        const left = deadline - performance.now();
        if (left <= 0) {
          // a late reply would be taken for the next step's: this pool is done
          void close();
          throw new DataParallelError(`workerShards: ${N - done} of ${N} workers did not finish a step within ${timeoutSeconds} s (a worker may have died: out of memory?); the workers are stopped`);
        }
        Atomics.wait(signal, 0, done, left);
      }
      const results: ShardResult[] = new Array(M);
      const errors: string[] = [];
      pool.forEach(({ port }, w) => {
        const reply = receiveMessageOnPort(port)?.message as WorkerReply | undefined;
        if (!reply) return errors.push(`worker ${w} gave no reply`);
        if (reply.type === 'error') return errors.push(`worker ${w}: ${reply.message}`);
        if (reply.type !== 'done') return errors.push(`worker ${w} answered '${reply.type}'`);
        reply.results.forEach((r, k) => {
          const m = ranges[w][0] + k;
          const slot = m * total;
          results[m] = { loss: r.loss, count: r.count, metrics: r.metrics, grads: r.has.map((has, i) => (has ? grads.subarray(slot + offsets[i], slot + offsets[i] + sizes[i]) : null)) };
        });
      });
      if (errors.length) throw new DataParallelError(`data-parallel step failed: ${errors.join('; ')}`);
      return results;
    },
  };
}
