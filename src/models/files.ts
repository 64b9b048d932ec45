/**
 * Task models by path (Node.js): the node-only part of models/, reached through `recurjs/node`.
 */
import { noGrad } from '../autograd/tape.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { loadModelFile } from '../io/files.ts';
import type { Task } from '../train/task.ts';
import { encodeTask, getTaskSpec, taskNameOf, type TaskSpec } from './registry.ts';

/** Save a task's model with its describe() (config + vocabulary) as a model file, atomically. */
export function saveTask(task: Task<any>, path: string): void {
  writeFileAtomic(path, encodeTask(task));
}

/** Rebuild the task `name` from the model file at `path` (the registry's loader, given the file). */
export function loadTask(name: string, path: string): Task<any> {
  return getTaskSpec(name).load(loadModelFile(path), path).task;
}

/** A loaded task model that answers batches of raw inputs (what `recur predict` prints, one output per input). */
export interface Predictor {
  /** The task's registry name, e.g. 'classify-names'. */
  readonly task: string;
  /** One output per input, in order; throws when the model cannot take an input (the whole batch then fails). */
  predict(inputs: string[]): string[];
}

/**
 * The task model file at `path`, loaded as its task: the one the file names (its config's `task`,
 * or its `recur.task` metadata), or `name` when given (a file of another task is refused by name).
 */
export function loadTaskFile(path: string, name?: string): { name: string; spec: TaskSpec; task: Task<any> } {
  const file = loadModelFile(path);
  const meta = file.metadata['recur.task'];
  const stored = taskNameOf(file.config) ?? (typeof meta === 'string' && meta !== '' ? meta : null);
  if (name !== undefined && stored !== null && stored !== name) throw new Error(`${path}: this is a ${stored} model, not a ${name} model`);
  const taskName = name ?? stored;
  if (taskName === null) throw new Error(`${path}: the model file does not name its task (no config.task, no recur.task metadata)`);
  const spec = getTaskSpec(taskName);
  return { name: taskName, spec, task: spec.load(file, path).task };
}

/** The task's outputs for a batch of raw inputs, one per input, computed without a tape. */
export function predictBatch(spec: TaskSpec, task: Task<any>, inputs: string[]): string[] {
  const outputs = noGrad(() => spec.predict(task, inputs));
  if (!Array.isArray(outputs) || outputs.length !== inputs.length) {
    throw new Error(`${spec.name}: predict returned ${Array.isArray(outputs) ? outputs.length : 'no'} outputs for ${inputs.length} inputs`);
  }
  return outputs;
}

/**
 * Load the model file at `path` for inference (`loadTaskFile`), in eval mode: the same path as
 * `recur predict`, for batch scoring and serving.
 */
export function loadPredictor(path: string, name?: string): Predictor {
  const { name: taskName, spec, task } = loadTaskFile(path, name);
  task.model.eval();
  return { task: taskName, predict: (inputs) => predictBatch(spec, task, inputs) };
}
