/**
 * What one training step needs in memory, found before training (`recur train … --dry-run`):
 *
 *   parameters    the weights                          (counted from the model)
 *   gradients     one per trainable weight             (counted)
 *   optimizer     the optimizer's state buffers        (counted: Adam's two moments, …)
 *   activations   what the forward pass keeps for the backward pass: the tape's saved tensors
 *                 and the recurrent layers' workspaces (states and gates of every step) —
 *                 measured: the bytes still in use after the forward pass, garbage collected
 *   workspaces    the rest of the step's peak: backward scratch (gate gradients of every step),
 *                 temporaries, packed GEMM operands — measured: peak − activations − gradients
 *
 * One forward and backward pass on a real batch runs on the model's backend, which must measure
 * its memory (Backend.memoryUse: the wasm backend); no optimizer step is taken and no weight
 * changes. Activations grow with batch × sequence length; when they do not fit, full BPTT over
 * shorter pieces (`backwardCheckpointed`, tbptt.ts) or a smaller batch is the way.
 */
import { elementBytes } from '../backend/interface.ts';
import { backward } from '../autograd/tape.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { Optimizer } from './optim.ts';
import type { Task } from './task.ts';

export interface StepMemory {
  parameters: number;
  gradients: number;
  optimizer: number;
  activations: number;
  workspaces: number;
  /** parameters + optimizer + the step's peak (activations, gradients and workspaces at once). */
  total: number;
  /** The bytes in use at the step's peak beyond the parameters (and whatever else lived before the step). */
  stepPeak: number;
}

/** Measure one forward + backward pass of `task` on `batch` (see the file comment); `optimizer` is the one training would use. */
export function measureStepMemory<B>(task: Task<B>, batch: B, optimizer: Optimizer): StepMemory {
  const params = task.model.parameters();
  const be = params[0]?.backend;
  if (!be) throw new TypeError(`measureStepMemory: task '${task.name}' has no parameters`);
  if (!be.memoryUse || !be.resetMemoryPeak) throw new TypeError(`measureStepMemory: the ${be.name} backend does not measure its memory (the wasm backend does)`);
  const bytes = (ts: readonly Tensor[]): number => ts.reduce((n, t) => n + t.size * elementBytes(t.dtype), 0);
  task.model.train();
  task.model.zeroGrad();
  be.resetMemoryPeak();
  const before = be.memoryUse().live;
  const r = task.step(batch);
  if (!(r?.loss instanceof Tensor) || r.loss.size !== 1) throw new TypeError(`measureStepMemory: task '${task.name}'.step must return {loss: a one-element Tensor}`);
  const afterForward = be.memoryUse().live;
  backward(r.loss);
  const { peak } = be.memoryUse();
  const parameters = bytes(params);
  const gradients = bytes(params.filter((p) => p.requiresGrad));
  const optimizerBytes = optimizer.stateBytes();
  task.model.zeroGrad();
  const activations = afterForward - before;
  const stepPeak = peak - before;
  return {
    parameters,
    gradients,
    optimizer: optimizerBytes,
    activations,
    workspaces: Math.max(0, stepPeak - activations - gradients),
    total: parameters + optimizerBytes + stepPeak,
    stepPeak,
  };
}
