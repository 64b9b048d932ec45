/**
 * Task streams: one small interface through which a loaded task model is stepped as a stream — the
 * next input of each of B streams in, their outputs and new states out — so that a server (or any
 * caller that keeps per-user state) needs to know nothing of the task.
 *
 *   const s = streamOf(task);                        // null when the task cannot stream
 *   let state: string | null = null;                 // null: a fresh stream
 *   const c = s.check('Call me');                    // {ok: true, value} or {ok: false, error}
 *   if (c.ok) ({ outputs: [out], states: [state] } = s.step([c.value], [state]));
 *
 * Which tasks stream, and what a step is:
 *   charlm    input: text (one or more characters, fed in order); output: the distribution of the
 *             NEXT character after it, as the `top` most likely characters with probabilities —
 *             what a keyboard's suggestion bar needs.
 *   forecast  input: one row of the series (raw units, the model's columns); output: the forecast
 *             of the next row (raw units). The state carries the previous row too, because the
 *             model reads each row's change since the last one.
 * The others do not: a classifier reads a whole text (many-to-one; a biGRU needs the future), the
 * name generator and seq2seq decode whole sequences.
 *
 * A state is a JSON string (the recurrent state's bytes in base64: StateJSON below), so it can be
 * kept anywhere — a Map, Redis — and continued bit-exactly by another process.
 *
 * Batching: `step` stacks the states of all B streams along the batch axis and runs ONE forward pass
 * for the streams whose inputs have the same length (a keyboard sends one character a step, so one
 * pass per call in practice); the results are the same as stepping each stream alone (each row of a
 * batch is computed by the same kernels, independently of the others — test/serve-stream.test.ts
 * checks that it is bit-identical on the reference backend).
 */
import { z } from 'zod';
import type { Task } from '../train/task.ts';
import { Tensor, tensor } from '../tensor/tensor.ts';
import { noGrad } from '../autograd/tape.ts';
import { add, mul, sub } from '../autograd/ops/elementwise.ts';
import { concat, reshape, slice } from '../autograd/ops/shape.ts';
import { withEval } from '../nn/module.ts';
import type { RecurrentBase } from '../nn/recurrent.ts';
import { readStateJSON, type StateRows } from '../infer/stream.ts';
import { elementBytes, type DType } from '../backend/interface.ts';
import { fromBase64, toBase64 } from '../util/base64.ts';
import { denormalizeRow } from '../data/loaders.ts';
import { LMTask } from './lm.ts';
import { ForecastTask } from './forecaster.ts';
import { isRecord } from '../util/options.ts';

/** A task stepped as a stream: B streams per call; states are opaque JSON strings (null: fresh). */
export interface TaskStream<In = unknown, Out = unknown> {
  /** The task kind ('charlm', 'forecast'). */
  readonly kind: string;
  /** Check one step's input (as JSON; a Zod schema inside); `step` takes only inputs it accepted. */
  check(input: unknown): { ok: true; value: In } | { ok: false; error: string };
  /** One line on what a step takes and returns (for a server's model list). */
  readonly describe: string;
  step(inputs: readonly In[], states: readonly (string | null)[]): { outputs: Out[]; states: string[] };
}

export interface StreamOfOptions {
  /** Longest text one charlm step may take (default 1024 characters). */
  maxInputLength?: number;
  /** How many of the most likely next characters a charlm step returns (default 5). */
  top?: number;
}

export class TaskStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskStreamError';
  }
}

/** A schema's verdict on an input, without Zod's types in the public signature. */
function checker<T>(schema: z.ZodType<T>): (x: unknown) => { ok: true; value: T } | { ok: false; error: string } {
  return (x) => {
    const r = schema.safeParse(x);
    return r.success ? { ok: true, value: r.data } : { ok: false, error: r.error.issues[0]!.message };
  };
}

/** The stream of a loaded task, or null when its kind cannot stream (see the file comment). */
export function streamOf(task: Task<any>, opts: StreamOfOptions = {}): TaskStream | null {
  const maxLen = opts.maxInputLength ?? 1024;
  const top = opts.top ?? 5;
  if (!(Number.isInteger(maxLen) && maxLen >= 1)) throw new RangeError(`streamOf: maxInputLength must be a positive integer, got ${maxLen}`);
  if (!(Number.isInteger(top) && top >= 1)) throw new RangeError(`streamOf: top must be a positive integer, got ${top}`);
  if (task instanceof LMTask) return charLMStream(task, maxLen, top);
  if (task instanceof ForecastTask) return forecastStream(task);
  return null;
}

// ---- state: the recurrent state of one stream, plus what the task carries besides ----------------

/**
 * A stream's state as stored (an opaque string to the caller). Version 2, written: the recurrent
 * state as the bytes of its dtype in base64 (little-endian, as typed arrays are on every platform
 * JavaScript runs on): a quarter of the text of version 1's decimal numbers, and read without
 * parsing a number per element — with 1,000 streams per tick, the JSON of version 1 took two thirds
 * of a batched step (bench/multi-stream.ts). Version 1 ({rnn: StreamStateJSON}) is still read, so
 * states stored by an earlier server continue.
 */
interface StateJSON {
  format: 'recur.task_stream';
  version: 2;
  dtype: DType;
  /** [layers, 1, H] */
  shape: [number, number, number];
  /** base64 of h's values ([layers, 1, H]) */
  h: string;
  /** base64 of c's values (LSTM), else null */
  c: string | null;
  /** forecast: the previous row, normalised (its change is part of the next input). */
  prev?: number[];
}

function decodeState(s: string, where: string): { rnn: StateRows; prev?: number[] } {
  let json: unknown;
  try {
    json = JSON.parse(s);
  } catch {
    throw new TaskStreamError(`${where}: a stored stream state is not JSON`);
  }
  if (!isRecord(json) || json.format !== 'recur.task_stream' || (json.version !== 1 && json.version !== 2)) throw new TaskStreamError(`${where}: not a stream state (format recur.task_stream, version 1 or 2)`);
  const rnn = json.version === 1 ? readStateJSON(json.rnn) : readBinaryState(json, where);
  const prev = json.prev;
  if (prev !== undefined && !(Array.isArray(prev) && prev.every((v) => typeof v === 'number'))) throw new TaskStreamError(`${where}: 'prev' must be a list of numbers`);
  return { rnn, ...(prev !== undefined ? { prev: prev as number[] } : {}) };
}

function readBinaryState(json: Record<string, unknown>, where: string): StateRows {
  const { dtype, shape } = json;
  if (dtype !== 'float32' && dtype !== 'float64') throw new TaskStreamError(`${where}: a stored state's 'dtype' must be 'float32' or 'float64', got ${JSON.stringify(dtype)}`);
  if (!(Array.isArray(shape) && shape.length === 3 && shape.every((d) => Number.isSafeInteger(d) && d >= 1))) throw new TaskStreamError(`${where}: a stored state's 'shape' must be three positive integers, got ${JSON.stringify(shape)}`);
  const n = shape[0] * shape[1] * shape[2];
  const values = (key: 'h' | 'c'): Float64Array => {
    const bytes = typeof json[key] === 'string' ? fromBase64(json[key]) : null;
    if (!bytes || bytes.length !== n * elementBytes(dtype)) throw new TaskStreamError(`${where}: a stored state's '${key}' must be the base64 of ${n} ${dtype} values`);
    const a = Float64Array.from(dtype === 'float32' ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer));
    for (const v of a) if (!Number.isFinite(v)) throw new TaskStreamError(`${where}: a stored state's '${key}' holds a value that is not finite`);
    return a;
  };
  if (json.c !== null && json.c !== undefined && typeof json.c !== 'string') throw new TaskStreamError(`${where}: a stored state's 'c' must be base64 or null`);
  return { dtype, shape: shape as [number, number, number], h: values('h'), c: typeof json.c === 'string' ? values('c') : null };
}

/** One stream's state rows ([L, 1, H] in the model's dtype) as the stored string. */
function encodeState(rows: StreamRows, prev?: number[]): string {
  const bytes = (a: Float32Array | Float64Array): string => toBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const j: StateJSON = { format: 'recur.task_stream', version: 2, dtype: rows.dtype, shape: rows.shape, h: bytes(rows.h), c: rows.c ? bytes(rows.c) : null, ...(prev ? { prev } : {}) };
  return JSON.stringify(j);
}

/** One stream's h (and c) rows, [L, 1, H], in the dtype of the model that made them. */
interface StreamRows {
  dtype: DType;
  shape: [number, number, number];
  h: Float32Array | Float64Array;
  c: Float32Array | Float64Array | null;
}

/**
 * The states of B streams stacked along the batch axis: h (and c) [L, B, H]; a fresh stream's rows
 * are zeros. Values are copied exactly (float32 → float64 → float32 is the identity), from the
 * decoded states straight into the batch: no tensor per stream.
 */
function stackStates(layer: RecurrentBase, states: readonly (StateRows | null)[], dtype: Tensor['dtype']): { h: Tensor; c: Tensor | null } {
  const L = layer.numLayers, H = layer.hiddenSize, B = states.length;
  const lstm = layer.mode === 'LSTM';
  const h = new Float64Array(L * B * H); // [L, B, H]
  const c = lstm ? new Float64Array(L * B * H) : null;
  states.forEach((s, b) => {
    if (s === null) return;
    if (s.shape[0] !== L || s.shape[1] !== 1 || s.shape[2] !== H || (s.c !== null) !== lstm) {
      throw new TaskStreamError(`a stored state has shape [${s.shape.join(', ')}]${s.c ? ' with c' : ''}; this model needs [${L}, 1, ${H}]${lstm ? ' with c' : ''} (was it saved by another model?)`);
    }
    for (let l = 0; l < L; l++) {
      h.set(s.h.subarray(l * H, (l + 1) * H), (l * B + b) * H);
      if (c && s.c) c.set(s.c.subarray(l * H, (l + 1) * H), (l * B + b) * H);
    }
  });
  return { h: tensor(h, [L, B, H], { dtype }), c: c ? tensor(c, [L, B, H], { dtype }) : null };
}

/** Stacked states h (and c) [L, B, H] as B streams' rows [L, 1, H] (each tensor read once). */
function unstackStates(h: Tensor, c: Tensor | null): StreamRows[] {
  const [L, B, H] = h.shape;
  const ha = h.toArray(), ca = c ? c.toArray() : null;
  const pick = (a: Float32Array | Float64Array, b: number): Float32Array | Float64Array => {
    const out = a instanceof Float32Array ? new Float32Array(L * H) : new Float64Array(L * H);
    for (let l = 0; l < L; l++) out.set(a.subarray((l * B + b) * H, (l * B + b + 1) * H), l * H);
    return out;
  };
  return Array.from({ length: B }, (_, b) => ({ dtype: h.dtype, shape: [L, 1, H], h: pick(ha, b), c: ca ? pick(ca, b) : null }));
}

/** Indices of the items grouped by a key, in first-seen order (one forward pass per group). */
function groupBy<T>(items: readonly T[], key: (t: T) => number): number[][] {
  const groups = new Map<number, number[]>();
  items.forEach((t, i) => {
    const k = key(t);
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  return [...groups.values()];
}

// ---- charlm: text in, the next character's distribution out --------------------------------------

export interface CharLMStepOutput {
  /** The most likely next characters, most likely first (ties: lower token id first). */
  top: { char: string; p: number }[];
}

function charLMStream(task: LMTask, maxLen: number, topK: number): TaskStream<string, CharLMStepOutput> {
  const { model, vocab } = task;
  const layer = model.lstm;
  const V = model.vocabSize;
  const k = Math.min(topK, V);
  const input = z
    .string({ error: 'a string of one or more characters' })
    .min(1, { error: 'a string of one or more characters' })
    .max(maxLen, { error: `at most ${maxLen} characters` });
  return {
    kind: 'charlm',
    check: checker(input),
    describe: `input: text (1..${maxLen} characters); output: the ${k} most likely next characters with probabilities`,
    step(inputs, stateStrings) {
      if (inputs.length !== stateStrings.length) throw new RangeError(`charlm stream: ${inputs.length} inputs for ${stateStrings.length} states`);
      const states = stateStrings.map((s) => (s === null ? null : decodeState(s, 'charlm stream').rnn));
      const ids = inputs.map((t) => vocab.encode(t));
      const outputs: CharLMStepOutput[] = new Array(inputs.length);
      const next: string[] = new Array(inputs.length);
      const dtype = model.head.weight.dtype;
      withEval(model, () => noGrad(() => {
        // one forward pass per input length: [T, B] ids with the stacked states
        for (const group of groupBy(ids, (a) => a.length)) {
          const T = ids[group[0]].length, B = group.length;
          const x = new Int32Array(T * B); // [T, B] time-major
          group.forEach((i, b) => { for (let t = 0; t < T; t++) x[t * B + b] = ids[i][t]; });
          const s0 = stackStates(layer, group.map((i) => states[i]), dtype);
          const r = layer.forward(model.embedding.forward(x, [T, B]), { h: s0.h, c: s0.c });
          const logits = model.head.forward(reshape(slice(r.output, 0, T - 1, 1), [B, model.hiddenSize])).toArray(); // [B, V]
          const after = unstackStates(r.h, r.c);
          group.forEach((i, b) => {
            outputs[i] = { top: topChars(logits.subarray(b * V, (b + 1) * V), k, vocab.decode.bind(vocab)) };
            next[i] = encodeState(after[b]);
          });
        }
      }));
      return { outputs, states: next };
    },
  };
}

/** The k most likely tokens of softmax(logits) (in float64), most likely first. */
function topChars(logits: ArrayLike<number>, k: number, decode: (ids: ArrayLike<number>) => string): { char: string; p: number }[] {
  const V = logits.length;
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[v]);
  let total = 0;
  for (let v = 0; v < V; v++) total += Math.exp(logits[v] - max);
  // the k best by insertion (no sort of all V per stream): a later token goes after an equal
  // logit, so ties keep the lower id first
  const top: number[] = [];
  for (let v = 0; v < V; v++) {
    let p = top.length;
    while (p > 0 && logits[v] > logits[top[p - 1]]) p--;
    if (p < k) {
      top.splice(p, 0, v);
      if (top.length > k) top.pop();
    }
  }
  return top.map((v) => ({ char: decode([v]), p: Math.exp(logits[v] - max) / total }));
}

// ---- forecast: a row in, the next row's forecast out ---------------------------------------------

export interface ForecastStepOutput {
  /** The forecast of the next row, raw units, in the model's column order. */
  next: number[];
}

function forecastStream(task: ForecastTask): TaskStream<number[], ForecastStepOutput> {
  const { model, config } = task;
  const F = task.F;
  const layer = model.rnn;
  const w = model.head.weight;
  const norm = config.norm;
  const input = z
    .array(z.number({ error: 'a finite number' }).refine(Number.isFinite, { error: 'a finite number' }), { error: `a list of ${F} numbers (${config.columns.join(', ')})` })
    .length(F, { error: `a list of ${F} numbers (${config.columns.join(', ')})` });
  return {
    kind: 'forecast',
    check: checker(input),
    describe: `input: one row [${config.columns.join(', ')}] (raw units); output: the forecast of the next row`,
    step(inputs, stateStrings) {
      if (inputs.length !== stateStrings.length) throw new RangeError(`forecast stream: ${inputs.length} inputs for ${stateStrings.length} states`);
      const B = inputs.length;
      const states = stateStrings.map((s) => (s === null ? null : decodeState(s, 'forecast stream')));
      for (const s of states) if (s && (s.prev === undefined || s.prev.length !== F)) throw new TaskStreamError(`forecast stream: a stored state has no previous row of ${F} values`);
      const rows = inputs.map((r) => r.map((v, f) => (v - norm.mean[f]) / norm.std[f]));
      const xs = Float32Array.from(rows.flat());
      const x = tensor(xs, [1, B, F], { dtype: w.dtype, backend: w.backend });
      // a fresh stream's previous row is its first row: its change is 0, as at t = 0 of forward
      const prevFlat = new Float32Array(B * F);
      states.forEach((s, b) => prevFlat.set(s ? s.prev! : xs.subarray(b * F, (b + 1) * F), b * F));
      const prev = tensor(prevFlat, [1, B, F], { dtype: w.dtype, backend: w.backend });
      // the model's own input and output steps (recurrentInput, forecast), so a step is its forward with T = 1
      let pred: Float32Array | Float64Array;
      let h: Tensor, c: Tensor | null;
      ({ pred, h, c } = withEval(model, () => noGrad(() => {
        const s0 = stackStates(layer, states.map((s) => (s ? s.rnn : null)), w.dtype);
        const r = layer.forward(model.recurrentInput(x, sub(x, prev)), { h: s0.h, c: s0.c });
        return { pred: model.forecast(x, model.head.forward(r.output)).toArray(), h: r.h, c: r.c ?? null };
      })));
      const outputs = inputs.map((_, b) => ({ next: denormalizeRow(pred.subarray(b * F, (b + 1) * F), norm) }));
      const after = unstackStates(h, c);
      const next = inputs.map((_, b) => encodeState(after[b], Array.from(xs.subarray(b * F, (b + 1) * F))));
      return { outputs, states: next };
    },
  };
}
