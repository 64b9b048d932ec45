/**
 * Data-parallel training (and gradient accumulation): each batch is cut into a fixed number of
 * shards (`Task.shard`), the forward and backward pass of every shard runs on its own — in this
 * thread (`inProcessShards`) or in N worker replicas (`workerShards`, recurjs/node) — and the
 * shards' gradients are summed here, in shard order, into the one gradient the Trainer's single
 * optimizer step uses. It is a Task wrapper, so the one training loop (Trainer) runs it unchanged:
 * clipping, NaN guards, schedules, checkpoints and resumption all apply as to any task.
 *
 *   const dp = new DataParallelTask(task, { shards: 4 });                       // in this thread
 *   const dp = new DataParallelTask(task, { shards: 4, runner: await workerShards(task, {…}) });
 *   await new Trainer(dp, options).fit(train, val);
 *
 * Exactness. What a step computes depends on the shards, never on where they ran:
 * - shard m's dropout (every RNG of the task and its modules, the global one included) is seeded
 *   from (the step's seed, m, the RNG's name); the step's seed comes from this wrapper's own RNG,
 *   which checkpoints save as 'task.dataParallelRng';
 * - each shard's gradient comes back whole, and the sum Σ_m (count_m / count) · g_m is taken here
 *   in float64 in the order m = 0, 1, …, then rounded once to the parameters' dtype;
 * - the wasm kernels give the same bits on any number of threads (backend/wasm/gemm.ts).
 * So the losses and weights are identical bit for bit for 1, 2 or 3 workers and in-process, at a
 * given number of shards. With one shard and no dropout the step equals the plain Trainer's bit for
 * bit (the weight 1 and the float64 round trip are exact). With several shards it equals the plain
 * step only to rounding: the batch's weight gradients are then sums of per-shard GEMMs instead of
 * one GEMM over all samples, and dropout draws different masks.
 *
 * The loss is the count-weighted mean of the shards' losses, which is the batch's own loss under
 * the shard contract (train/task.ts): a step's loss is a mean over its `count` units. A task's
 * step metrics are combined the same way. Tasks that carry state across batches (TBPTT) cannot be
 * sharded: the carried state belongs to the whole batch.
 */
import { checkStepResult, taskRngs, type BatchSource, type StepResult, type Task } from './task.ts';
import { deriveSeed, globalRng, Rng } from '../tensor/rng.ts';
import { tensor, type Tensor } from '../tensor/tensor.ts';
import type { Data } from '../backend/interface.ts';
import { accumulateGrad, backward, record } from '../autograd/tape.ts';

export class DataParallelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataParallelError';
  }
}

/** What one shard's forward and backward pass gives back. */
export interface ShardResult {
  loss: number;
  count: number;
  metrics?: Record<string, number>;
  /** The shard's gradient of each parameter, in the model's `namedParameters()` order; null where none reached it. */
  grads: (ArrayLike<number> | null)[];
}

/** Where the shards of a step run. */
export interface ShardRunner<B> {
  /**
   * Forward and backward of every shard at the model's current weights, shard m with the task's
   * RNGs seeded by `seedShard(…, seed, m)`; the results in shard order (their gradients may be
   * views the next run overwrites). Synchronous: the Trainer's step is.
   */
  run(shards: readonly B[], seed: number): ShardResult[];
  /** Let go of what the runner holds (worker threads). */
  close?(): Promise<void>;
}

/** A 32-bit FNV-1a hash of an RNG's name (so a replica seeds the RNGs it shares with the original alike). */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Reseed every RNG of a task for shard m of the step with seed `seed`: the RNG named n from (seed, m, hash(n)). */
export function seedShard(rngs: ReadonlyMap<string, Rng>, seed: number, m: number): void {
  for (const [name, r] of rngs) r.seed(deriveSeed(seed, m, nameHash(name)));
}

/**
 * One shard's forward and backward pass on `task` (whose model is in training mode), with the
 * task's RNGs seeded for shard m; the gradients are read back and the parameters' cleared.
 */
export function runShard<B>(task: Task<B>, rngs: ReadonlyMap<string, Rng>, seed: number, m: number, batch: B): ShardResult & { grads: (Data | null)[] } {
  const params = task.model.parameters();
  seedShard(rngs, seed, m);
  task.model.zeroGrad();
  const r = checkStepResult('data-parallel', task as Task<unknown>, task.step(batch));
  if (r.count === 0) throw new DataParallelError(`data-parallel: task '${task.name}'.step counted ${String(r.count)} units in shard ${m}; a shard's loss is weighted by its count, which must be positive`);
  backward(r.loss);
  const result = { loss: r.loss.item(), count: r.count, metrics: r.metrics, grads: params.map((p) => (p.grad ? p.grad.toArray() : null)) };
  task.model.zeroGrad();
  return result;
}

/** The shards run one after another in this thread, on the task's own model (gradient accumulation). */
export function inProcessShards<B>(task: Task<B>): ShardRunner<B> {
  const rngs = taskRngs(task as Task<unknown>);
  return {
    run(shards, seed) {
      // the shards' reseeding must not move the global stream of this thread (a run in workers
      // leaves it alone too), so it is put back afterwards
      const global = globalRng.getState();
      try {
        return shards.map((b, m) => runShard(task, rngs, seed, m, b));
      } finally {
        globalRng.setState(global);
      }
    },
  };
}

/** The batch's loss, metrics and gradients from its shards': Σ_m (count_m / count) · x_m, in float64, in shard order. */
export function combineShards(results: readonly ShardResult[], numParams: number): { loss: number; count: number; metrics?: Record<string, number>; grads: (Float64Array | null)[] } {
  if (results.length === 0) throw new DataParallelError('data-parallel: a step gave no shards');
  const count = results.reduce((s, r) => s + r.count, 0);
  const grads: (Float64Array | null)[] = new Array(numParams).fill(null);
  let loss = 0;
  let metrics: Record<string, number> | undefined;
  for (const r of results) {
    const w = r.count / count;
    loss += w * r.loss;
    if (r.metrics) {
      metrics ??= {};
      for (const [k, v] of Object.entries(r.metrics)) metrics[k] = (metrics[k] ?? 0) + w * v;
    }
    if (r.grads.length !== numParams) throw new DataParallelError(`data-parallel: a shard gave ${r.grads.length} gradients for a model of ${numParams} parameters`);
    for (let i = 0; i < numParams; i++) {
      const g = r.grads[i];
      if (!g) continue;
      let acc = grads[i];
      if (!acc) grads[i] = acc = new Float64Array(g.length);
      for (let j = 0; j < g.length; j++) acc[j] += w * g[j];
    }
  }
  return { loss, count, metrics, grads };
}

/**
 * A one-element tensor holding `value` whose gradient with respect to each parameter is `grads[i]`
 * (times the gradient it receives): how a step whose backward pass ran elsewhere hands its
 * gradients to the one tape the Trainer backpropagates.
 */
function lossWithGradients(value: number, params: readonly Tensor[], grads: readonly (Float64Array | null)[]): Tensor {
  const p0 = params[0];
  const out = tensor([value], [1], { dtype: p0.dtype, backend: p0.backend });
  record('dataParallelStep', params, [out], () => {
    const up = out.grad!.item();
    params.forEach((p, i) => {
      const g = grads[i];
      if (g) accumulateGrad(p, p.backend.fromArray(up === 1 ? g : g.map((x) => x * up), p.dtype), true);
    });
  });
  return out;
}

export interface DataParallelOptions<B> {
  /** Shards per batch (fewer for a batch with fewer samples); the results depend on it, not on where the shards run. */
  shards: number;
  /** Where the shards run (default: in this thread, `inProcessShards`). */
  runner?: ShardRunner<B>;
  /** Seed of the per-step shard seeds (default 0); a checkpoint carries the stream on. */
  seed?: number;
}

/** `task` trained on sharded batches: see the file comment. Evaluation and description are the task's own. */
export class DataParallelTask<B> implements Task<B> {
  readonly name: string;
  readonly model: Task<B>['model'];
  readonly higherIsBetter: boolean;
  readonly shards: number;
  readonly runner: ShardRunner<B>;
  /** Draws each step's shard seed (checkpointed by the Trainer as 'task.dataParallelRng'). */
  readonly dataParallelRng: Rng;
  private readonly params: Tensor[];

  constructor(readonly inner: Task<B>, options: DataParallelOptions<B>) {
    if (typeof inner?.shard !== 'function') throw new DataParallelError(`data-parallel: task '${inner?.name}' cannot cut its batches into shards (it has no shard method)`);
    if (inner.getCarry || inner.setCarry) throw new DataParallelError(`data-parallel: task '${inner.name}' carries state from batch to batch, which belongs to the whole batch; it cannot be sharded`);
    const { shards, runner, seed = 0 } = options;
    if (!Number.isInteger(shards) || shards < 1) throw new DataParallelError(`data-parallel: shards must be a positive integer, got ${String(shards)}`);
    this.name = inner.name;
    this.model = inner.model;
    this.higherIsBetter = inner.higherIsBetter;
    this.shards = shards;
    this.runner = runner ?? inProcessShards(inner);
    this.dataParallelRng = new Rng(seed);
    this.params = inner.model.parameters();
    if (this.params.some((p) => p.backend.readAsync)) throw new DataParallelError(`data-parallel: the model's parameters are on the ${this.params[0].backend.name} backend, which is read asynchronously; shard on a CPU backend`);
  }

  step(batch: B): StepResult {
    const parts = this.inner.shard!(batch, this.shards);
    if (!Array.isArray(parts) || parts.length === 0 || parts.length > this.shards) throw new DataParallelError(`data-parallel: task '${this.name}'.shard gave ${Array.isArray(parts) ? parts.length : String(parts)} shards for ${this.shards} asked`);
    const seed = this.dataParallelRng.nextU32();
    const c = combineShards(this.runner.run(parts, seed), this.params.length);
    return { loss: lossWithGradients(c.loss, this.params, c.grads), count: c.count, metrics: c.metrics };
  }

  evaluate(data: BatchSource<B>): Record<string, number> {
    return this.inner.evaluate(data);
  }

  describe(): { config: unknown; vocab?: unknown } {
    return this.inner.describe();
  }
}
