/**
 * Training checkpoints: everything a run needs to continue EXACTLY where it stopped, kept in a
 * RunStore (recurjs/node's `fileStore` is a run directory on disk; `memoryStore()` keeps it in memory).
 *
 * A run directory holds
 *   model.safetensors          the model alone: PyTorch state_dict names, config and vocabulary in
 *                              the metadata (loads with `safetensors.torch.load_file`, `recur info`)
 *   trainer-state.safetensors  the training state: a copy of the weights (`model.<name>`), the
 *                              optimizer buffers (`optimizer.<param>.<buffer>`), and in the
 *                              metadata key `recur.training_state` a JSON object with the rest —
 *                              optimizer step counts and hyper-parameters, scheduler state, every
 *                              RNG's state, step / epoch / batch position, best metric and
 *                              early-stopping counter, the task's carried state (TBPTT), the
 *                              gradient monitor's window, the trainer options and user metadata
 *   best.safetensors           the model at the best validation score (when validating)
 *   metrics.jsonl              the metrics log (metrics-log.ts)
 *
 * The state file carries its own copy of the weights so that it is self-consistent: each file is
 * replaced atomically (temp file + rename), and a crash between writing the two files cannot pair
 * new optimizer state with old weights. Binary tensors instead of JSON keep large optimizer states
 * small and exact (float32 buffers are stored as F32 when every value is a float32).
 */
import type { Module, TensorLike } from '../nn/module.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { RngState } from '../tensor/rng.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type SafeTensor } from '../io/safetensors.ts';
import { encodeModel, moduleTensors } from '../io/model.ts';
import type { OptimizerState } from './optim.ts';
import type { SchedulerState } from './schedule.ts';
import type { GradMonitorState } from './gradlog.ts';

/**
 * Where a run lives: named files in a run folder. The Trainer reads and writes checkpoints, the
 * best model and the metrics log through this and nothing else, so the training loop runs wherever
 * a store can be written — a directory on disk in Node (`fileStore`, recurjs/node), memory in a
 * browser or a test (`memoryStore`).
 */
export interface RunStore {
  /** The bytes of file `name` in run `dir`, or null when there is none. */
  read(dir: string, name: string): Uint8Array | null;
  /** Replace file `name` in run `dir` with `bytes`, atomically (creating the run if needed). */
  write(dir: string, name: string, bytes: Uint8Array): void;
  /** Append `text` to file `name` in run `dir` (creating it if needed). */
  append(dir: string, name: string, text: string): void;
}

/** A RunStore in memory: for browsers, tests, and runs whose checkpoints need not outlive the process. */
export function memoryStore(): RunStore {
  // Each file is a list of chunks: an append adds one (the metrics log grows by a line per entry,
  // and copying the whole file each time would be quadratic); a read joins them once.
  const files = new Map<string, Uint8Array[]>();
  const key = (dir: string, name: string): string => `${dir}\u0000${name}`;
  return {
    read(dir, name) {
      const chunks = files.get(key(dir, name));
      if (!chunks) return null;
      if (chunks.length !== 1) {
        const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          out.set(c, at);
          at += c.length;
        }
        chunks.splice(0, chunks.length, out);
      }
      return chunks[0].slice();
    },
    write: (dir, name, bytes) => void files.set(key(dir, name), [bytes.slice()]),
    append(dir, name, text) {
      const chunks = files.get(key(dir, name)) ?? [];
      chunks.push(new TextEncoder().encode(text));
      files.set(key(dir, name), chunks);
    },
  };
}

export const MODEL_FILE = 'model.safetensors';
export const STATE_FILE = 'trainer-state.safetensors';
export const BEST_FILE = 'best.safetensors';
export const METRICS_FILE = 'metrics.jsonl';

const STATE_KEY = 'recur.training_state';

/** The JSON part of a checkpoint (optimizer buffers travel as tensors beside it). */
export interface TrainingState {
  format: 'recur.training_state';
  version: 1;
  /** The task's name. */
  task: string;
  /** Optimizer steps done. */
  step: number;
  /** The epoch the next batch belongs to (0-based). */
  epoch: number;
  /** The index of the next batch within that epoch. */
  batch: number;
  /** Seconds of training so far (all sessions). */
  elapsed: number;
  /** Units (tokens or samples) processed so far. */
  tokens: number;
  bestMetric: number | null;
  bestStep: number | null;
  /** Evaluations since the last improvement (early stopping). */
  badEvals: number;
  lastEval: Record<string, number> | null;
  optimizer: OptimizerState;
  scheduler: SchedulerState | null;
  /** Every RNG the run uses, by name ('global', 'model.lstm.rng', ...). */
  rngs: Record<string, RngState>;
  /** The task's carried state (TBPTT); absent when the task has none. */
  carry?: unknown;
  gradMonitor: GradMonitorState | null;
  /** The trainer options (JSON form). */
  options: unknown;
  /** User metadata given to the trainer (e.g. the CLI's task options). */
  meta: unknown;
}

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** JSON.stringify that refuses what JSON cannot hold exactly (non-finite numbers, tensors), naming the path. */
export function strictJSON(value: unknown, what: string): string {
  const check = (v: unknown, at: string, depth: number): void => {
    const where = at || 'the value';
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new CheckpointError(`${what}: ${where} is ${v}, which JSON cannot store`);
      return;
    }
    if (v instanceof Tensor) throw new CheckpointError(`${what}: ${where} is a Tensor; return plain data (e.g. tensorToJSON(t)) from getCarry`);
    if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') throw new CheckpointError(`${what}: ${where} is a ${typeof v}, which JSON cannot store`);
    if (v === null || typeof v !== 'object') return;
    if (depth > 64) throw new CheckpointError(`${what}: nested too deeply at ${where}`);
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      check((toJSON as () => unknown).call(v), at, depth + 1);
      return;
    }
    if (ArrayBuffer.isView(v)) throw new CheckpointError(`${what}: ${where} is a typed array; convert it with Array.from first`);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) check(x, at ? `${at}.${k}` : k, depth + 1);
  };
  check(value, '', 0);
  return JSON.stringify(value);
}

/** The smallest float dtype that holds every value exactly. */
function floatTensor(values: readonly number[]): SafeTensor {
  const f32 = values.every((v) => Math.fround(v) === v || Number.isNaN(v));
  return { dtype: f32 ? 'F32' : 'F64', shape: [values.length], data: f32 ? Float32Array.from(values) : Float64Array.from(values) };
}

/** The model file of a task's model (config and vocabulary in the metadata), as bytes. */
export function encodeModelFile(model: Module, describe: { config: unknown; vocab?: unknown }, metadata?: Record<string, string>): Uint8Array {
  return encodeModel(model, { config: describe.config, ...(describe.vocab !== undefined ? { vocab: describe.vocab } : {}), ...(metadata ? { metadata } : {}) });
}

/** Encode the state file: weights, optimizer buffers and the JSON state. */
export function encodeTrainingState(model: Module, state: TrainingState): Uint8Array {
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(moduleTensors(model))) tensors[`model.${name}`] = t;
  const params: Record<string, unknown> = {};
  for (const [key, p] of Object.entries(state.optimizer.params)) {
    const buffers: Record<string, string> = {};
    for (const [bname, values] of Object.entries(p.buffers)) {
      const tname = `optimizer.${key}.${bname}`;
      tensors[tname] = floatTensor(values);
      buffers[bname] = tname;
    }
    params[key] = { ...p, buffers };
  }
  const json = { ...state, optimizer: { ...state.optimizer, params } };
  return encodeSafetensors(tensors, { format: 'pt', [STATE_KEY]: strictJSON(json, 'training state') });
}

/** Write a checkpoint into run `dir` of `store`: the state file, then the model file, each replaced atomically. */
export function saveCheckpoint(store: RunStore, dir: string, model: Module, describe: { config: unknown; vocab?: unknown }, state: TrainingState): void {
  store.write(dir, STATE_FILE, encodeTrainingState(model, state));
  store.write(dir, MODEL_FILE, encodeModelFile(model, describe, { 'recur.task': state.task, 'recur.step': String(state.step) }));
}

export function hasCheckpoint(store: RunStore, dir: string): boolean {
  return store.read(dir, STATE_FILE) !== null;
}

export interface LoadedCheckpoint {
  state: TrainingState;
  /** The model weights by state_dict name, for `Module.loadStateDict`. */
  weights: Record<string, TensorLike>;
}

/** Read and validate the checkpoint in run `dir` of `store`; optimizer buffers are restored into the state. */
export function loadCheckpoint(store: RunStore, dir: string): LoadedCheckpoint {
  const bytes = store.read(dir, STATE_FILE);
  if (bytes === null) throw new CheckpointError(`no checkpoint in '${dir}' (${STATE_FILE} is missing)`);
  return decodeTrainingState(bytes, `${dir}/${STATE_FILE}`);
}

/** Decode and validate a state file's bytes; `path` names it in errors. */
export function decodeTrainingState(bytes: Uint8Array, path: string): LoadedCheckpoint {
  let decoded;
  try {
    decoded = decodeSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(`${path}: ${e.message}`);
    throw e;
  }
  const raw = decoded.metadata[STATE_KEY];
  if (raw === undefined) throw new CheckpointError(`${path}: not a training-state file (no '${STATE_KEY}' metadata)`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(raw) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${path}: the training state is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || json.format !== 'recur.training_state') throw new CheckpointError(`${path}: not a recur training state`);
  if (json.version !== 1) throw new CheckpointError(`${path}: unsupported training-state version ${JSON.stringify(json.version)} (expected 1)`);
  for (const k of ['step', 'epoch', 'batch', 'badEvals'] as const) {
    const v = json[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new CheckpointError(`${path}: '${k}' must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  const opt = json.optimizer as { params?: Record<string, { buffers?: Record<string, unknown> }> } | undefined;
  if (!opt || typeof opt !== 'object' || !opt.params || typeof opt.params !== 'object') throw new CheckpointError(`${path}: the optimizer state is missing`);
  for (const [key, p] of Object.entries(opt.params)) {
    const buffers: Record<string, number[]> = {};
    for (const [bname, ref] of Object.entries(p.buffers ?? {})) {
      const t = typeof ref === 'string' ? decoded.tensors[ref] : undefined;
      if (!t) throw new CheckpointError(`${path}: optimizer buffer '${bname}' of '${key}' is missing`);
      buffers[bname] = Array.from(t.data as Float32Array | Float64Array);
    }
    p.buffers = buffers;
  }
  const weights: Record<string, TensorLike> = {};
  for (const [name, t] of Object.entries(decoded.tensors)) {
    if (name.startsWith('model.')) weights[name.slice('model.'.length)] = { shape: t.shape, data: t.data as Float32Array | Float64Array };
  }
  return { state: json as unknown as TrainingState, weights };
}

