/**
 * One data-parallel worker (started by data-parallel-node.ts): builds its replica of the task, then
 * for each step loads the shared weights, runs its shards (runShard, data-parallel.ts) and writes
 * each shard's gradients into the shard's slot of the shared gradient buffer. The reply is posted
 * before the done counter is raised, so the waiting main thread finds it.
 */
import { workerData } from 'node:worker_threads';
import type { WorkerInit, WorkerReply, WorkerRequest } from './data-parallel-node.ts';
import { runShard } from './data-parallel.ts';
import { taskRngs, type Task } from './task.ts';
import { setBackend } from '../backend/registry.ts';

const init = workerData as WorkerInit;
const { port } = init;
const signal = new Int32Array(init.signal);
const weights = new Float64Array(init.weights);

function reply(m: WorkerReply): void {
  port.postMessage(m);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

const message = (e: unknown): string => (e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e));

async function start(): Promise<Task<unknown>> {
  if (init.backend === 'wasm') {
    const { loadWasmBackend } = await import('../backend/wasm/index.ts');
    await loadWasmBackend({ threads: init.threads, relaxedSimd: init.relaxedSimd });
    setBackend('wasm');
  }
  const mod = (await import(init.replica.module)) as Record<string, unknown>;
  const make = mod[init.replica.export];
  if (typeof make !== 'function') throw new TypeError(`${init.replica.module} exports no function '${init.replica.export}'`);
  const task = (await make(init.replica.arg)) as Task<unknown>;
  if (!task || typeof task.step !== 'function' || !task.model) throw new TypeError(`${init.replica.export}() did not return a Task`);
  return task;
}

try {
  const task = await start();
  const named = task.model.namedParameters();
  const rngs = taskRngs(task);
  task.model.train();
  port.on('message', (req: WorkerRequest) => {
    try {
      const grads = new Float64Array(req.grads);
      let off = 0;
      for (const [, p] of named) {
        p.backend.write(p.storage, weights.subarray(off, off + p.size));
        off += p.size;
      }
      const total = off;
      const results = req.shards.map((batch, k) => {
        const m = req.first + k;
        const r = runShard(task, rngs, req.seed, m, batch);
        let o = m * total;
        for (let i = 0; i < named.length; i++) {
          const g = r.grads[i];
          if (g) grads.set(g, o);
          o += named[i][1].size;
        }
        return { loss: r.loss, count: r.count, metrics: r.metrics, has: r.grads.map((g) => g !== null) };
      });
      reply({ type: 'done', results });
    } catch (e) {
      reply({ type: 'error', message: message(e) });
    }
  });
  port.postMessage({ type: 'ready', params: named.map(([n, p]) => [n, p.size]) } satisfies WorkerReply);
} catch (e) {
  port.postMessage({ type: 'error', message: message(e) } satisfies WorkerReply);
}
