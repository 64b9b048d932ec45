/**
 * Task models by path (Node.js): the node-only part of models/, reached through `recurjs/node`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { noGrad } from '../autograd/tape.ts';
import { withEval } from '../nn/module.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { loadModelFile } from '../io/files.ts';
import type { BatchSource, Task } from '../train/task.ts';
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

// ---- the models that ship inside the package ---------------------------------------------------------

/** The package's pretrained/ folder: two levels above this module (src/models/ in a clone, dist/models/ installed). */
export const PRETRAINED_DIR = fileURLToPath(new URL('../../pretrained/', import.meta.url));

const metrics = z.record(z.string(), z.number());
const pretrainedEntry = z.strictObject({
  /** The registry task the file is a model of. */
  task: z.string().min(1),
  /** File name inside pretrained/. */
  file: z.string().regex(/^[\w.-]+\.safetensors$/),
  bytes: z.int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The task options it was trained with; they rebuild its held-out data, and its decoding ones (beamWidth) apply when it is loaded. */
  options: z.record(z.string(), z.unknown()),
  /** The command that trained it (scripts/train-pretrained.mjs runs it). */
  command: z.string(),
  /** Its figures on the whole test split. */
  test: metrics,
  /** Its figures on the first `batches` test batches: what the package's tests recompute. */
  check: z.strictObject({ batches: z.int().positive(), metrics }),
});
const pretrainedManifest = z.strictObject({ models: z.array(pretrainedEntry) });

/** One shipped model, as pretrained/manifest.json records it. */
export type PretrainedModel = z.output<typeof pretrainedEntry>;

/** The shipped models (pretrained/manifest.json, written by scripts/train-pretrained.mjs). */
export function pretrainedModels(dir = PRETRAINED_DIR): PretrainedModel[] {
  const path = join(dir, 'manifest.json');
  const r = pretrainedManifest.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!r.success) throw new Error(`${path}: not a pretrained-model manifest: ${z.prettifyError(r.error)}`);
  return r.data.models;
}

/** The shipped model of `task`, or null when none ships. */
export function pretrainedModel(task: string, dir = PRETRAINED_DIR): PretrainedModel | null {
  return pretrainedModels(dir).find((m) => m.task === task) ?? null;
}

/**
 * Load a shipped model, with the options it was trained with: the one of a task (e.g.
 * 'classify-names', 'namegen', 'seq2seq'), or the one a manifest entry describes.
 */
export function loadPretrained(model: string | PretrainedModel, dir = PRETRAINED_DIR): Task<any> {
  const entry = typeof model === 'string' ? pretrainedModel(model, dir) : model;
  if (entry === null) throw new Error(`no pretrained ${String(model)} model ships with recur (shipped: ${pretrainedModels(dir).map((m) => m.task).join(', ')})`);
  const path = join(dir, entry.file);
  return getTaskSpec(entry.task).load(loadModelFile(path), path, entry.options).task;
}

/**
 * A shipped model's held-out figures, recomputed: on the whole test split, or on its first
 * `batches` batches (the fixed subset the package's tests check).
 */
export function evaluatePretrained(entry: PretrainedModel, o: { batches?: number; dir?: string } = {}): Record<string, number> {
  const spec = getTaskSpec(entry.task);
  const built = spec.build(entry.options);
  if (!built.test) throw new Error(`${entry.task} has no test split`);
  const test: BatchSource<unknown> = built.test;
  const data = o.batches === undefined ? test : { numBatches: Math.min(o.batches, test.numBatches), get: (e: number, i: number) => test.get(e, i) };
  const task = loadPretrained(entry, o.dir);
  return noGrad(() => withEval(task.model, () => task.evaluate(data)));
}
