/**
 * Run directories on disk (Node.js): `fileStore`, the RunStore whose runs are folders, and the
 * by-path forms of the checkpoint functions in run-store.ts (the layout of a run directory is
 * documented there). Reached through `recurjs/node`.
 */
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/module.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { readInputFile } from '../io/read.ts';
import * as run from './run-store.ts';
import { parseMetricsLog, type ParsedLog } from './metrics-log.ts';

export { BEST_FILE, CheckpointError, METRICS_FILE, MODEL_FILE, STATE_FILE, type LoadedCheckpoint, type TrainingState } from './run-store.ts';

/** The RunStore whose run `dir` is a folder on disk; files are replaced atomically. */
export const fileStore: run.RunStore = {
  read: (dir, name) => {
    const path = join(dir, name);
    return existsSync(path) ? readInputFile(path, 'run file') : null;
  },
  write(dir, name, bytes) {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, name), bytes);
  },
  append(dir, name, text) {
    mkdirSync(dir, { recursive: true });
    appendFileSync(join(dir, name), text);
  },
};

/** Write a checkpoint into the folder `dir` (see run-store.ts). */
export function saveCheckpoint(dir: string, model: Module, describe: { config: unknown; vocab?: unknown }, state: run.TrainingState): void {
  run.saveCheckpoint(fileStore, dir, model, describe, state);
}

export function hasCheckpoint(dir: string): boolean {
  return run.hasCheckpoint(fileStore, dir);
}

export function loadCheckpoint(dir: string): run.LoadedCheckpoint {
  return run.loadCheckpoint(fileStore, dir);
}

/** The JSON part of a checkpoint only (options, meta, position) — e.g. to rebuild the task before resuming. */
export function readTrainingState(dir: string): run.TrainingState {
  return loadCheckpoint(dir).state;
}

/** Read a metrics log (a torn last line is skipped and counted, see metrics-log.ts). */
export function readMetricsLog(path: string): ParsedLog {
  return parseMetricsLog(new TextDecoder().decode(readInputFile(path, 'metrics log')));
}
