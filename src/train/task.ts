/**
 * The contract between task models (src/models/*) and the training machinery (Trainer, CLI).
 *
 * A task owns its model and knows how to turn one batch into a loss and how to score held-out
 * data; the Trainer owns the loop (optimizer, clipping, schedules, checkpoints, logging,
 * callbacks). Data comes as a `BatchSource`: batches are addressed by (epoch, index) and derived
 * deterministically from the source's own seed, never from global state — so a run resumed from a
 * checkpoint at (epoch, index) sees exactly the batches an uninterrupted run would have seen.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { Module } from '../nn/module.ts';

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
}
