/**
 * Task models by path (Node.js): the node-only part of models/, reached through `recurjs/node`.
 */
import { writeFileAtomic } from '../io/atomic.ts';
import { loadModelFile } from '../io/files.ts';
import type { Task } from '../train/task.ts';
import { encodeTask, getTaskSpec } from './registry.ts';

/** Save a task's model with its describe() (config + vocabulary) as a model file, atomically. */
export function saveTask(task: Task<any>, path: string): void {
  writeFileAtomic(path, encodeTask(task));
}

/** Rebuild the task `name` from the model file at `path` (the registry's loader, given the file). */
export function loadTask(name: string, path: string): Task<any> {
  return getTaskSpec(name).load(loadModelFile(path), path).task;
}
