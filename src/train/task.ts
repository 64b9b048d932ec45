/**
 * The contract between task models (src/models/*) and the training machinery (Trainer, CLI).
 *
 * A task owns its model and knows how to turn one batch into a loss and how to score held-out
 * data; the Trainer owns the loop (optimizer, clipping, schedules, checkpoints, logging,
 * callbacks). Data comes as a `BatchSource`: batches are addressed by (epoch, index) and derived
 * deterministically from the source's own seed, never from global state — so a run resumed from a
 * checkpoint at (epoch, index) sees exactly the batches an uninterrupted run would have seen.
 */
import { Tensor } from '../tensor/tensor.ts';
import type { Module } from '../nn/module.ts';
import { globalRng, Rng } from '../tensor/rng.ts';
import { brief } from '../util/options.ts';

export interface BatchSource<B> {
  /** Batches per epoch. */
  readonly numBatches: number;
  /** Batch `index` (0 ≤ index < numBatches) of epoch `epoch`; same arguments → same batch. */
  get(epoch: number, index: number): B;
}

export interface StepResult {
  /** Scalar loss to minimise (the Trainer calls backward on it). */
  loss: Tensor;
  /** Units processed (tokens or samples), for throughput. */
  count: number;
  /** Optional extra scalars to log. */
  metrics?: Record<string, number>;
}

export interface Task<B> {
  readonly name: string;
  readonly model: Module;
  /** Forward + loss on one batch. The Trainer sets train/eval mode before calling. */
  step(batch: B): StepResult;
  /** Metrics on held-out data; the first key is the primary metric. Runs under noGrad in eval mode. */
  evaluate(data: BatchSource<B>): Record<string, number>;
  /** Whether a larger primary metric is better (accuracy) or smaller (loss, error rate). */
  readonly higherIsBetter: boolean;
  /** Everything needed to rebuild the model from a file: config (JSON) and vocabulary. */
  describe(): { config: unknown; vocab?: unknown };
  /** Optional state carried across batches (truncated BPTT), serialisable into checkpoints. */
  getCarry?(): unknown;
  setCarry?(state: unknown): void;
  /**
   * Optional, for data-parallel training and gradient accumulation (data-parallel.ts): the batch cut
   * into `parts` batches of its samples, in order, none empty (fewer when the batch has fewer
   * samples than parts). The contract that makes the shards' gradients add up to the batch's:
   * step's loss is a mean over its `count` units, so the batch's loss is Σ (count_m / count) · loss_m.
   */
  shard?(batch: B, parts: number): B[];
}

/** What a task's step returned, checked: a one-element loss and a count ≥ 0 (`who` names the caller in the error). */
export function checkStepResult(who: string, task: Task<unknown>, r: StepResult): StepResult {
  if (!r || !(r.loss instanceof Tensor) || r.loss.size !== 1) throw new TypeError(`${who}: task '${task.name}'.step must return {loss: a one-element Tensor, count, metrics?}`);
  const count = r.count;
  if (typeof count !== 'number' || !Number.isFinite(count) || count < 0) throw new TypeError(`${who}: task '${task.name}'.step returned count ${brief(count, "'")}; expected a number of tokens or samples >= 0`);
  return r;
}

/**
 * Every Rng reachable from the task object's and its modules' own fields, plus the global one
 * (named 'global'), by the names checkpoints store them under ('task.rng', 'model.encoder.rng', …),
 * in the order found; `extra` adds named ones. The Trainer checkpoints these; data-parallel
 * training reseeds them per shard.
 */
export function taskRngs(task: Task<unknown>, extra?: Record<string, Rng>): Map<string, Rng> {
  const byRng = new Map<Rng, string>([[globalRng, 'global']]);
  const scan = (obj: object, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) if (v instanceof Rng && !byRng.has(v)) byRng.set(v, `${prefix}${k}`);
  };
  scan(task, 'task.');
  for (const [path, m] of task.model.namedModules()) scan(m, path ? `model.${path}.` : 'model.');
  for (const [k, r] of Object.entries(extra ?? {})) if (!byRng.has(r)) byRng.set(r, k);
  return new Map([...byRng].map(([r, n]) => [n, r]));
}
