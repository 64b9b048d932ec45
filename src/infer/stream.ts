/**
 * Streaming inference over a recurrent stack (RNN / LSTM / GRU, any number of layers): feed one
 * time step at a time and carry the state between calls, e.g. for a live signal, a chat turn or a
 * server that keeps each user's state between requests.
 *
 *   const s = new StreamingRecurrent(lstm);
 *   let state = null;
 *   for (const x of frames) ({ y, state } = s.step(x, state));   // x: [B, I] → y: [B, H]
 *   const saved = JSON.stringify(state);                         // h, c as plain nested arrays
 *   state = StreamState.fromJSON(JSON.parse(saved));             // continue later, bit-exact
 *
 * What it promises: stepping through T inputs one at a time gives the same outputs and final state
 * as one forward pass over the whole [T, B, I] sequence (both run the same fused kernels; each step
 * is the layer with T = 1). A saved state restores exactly (float32 values are exact in JSON numbers).
 *
 * Bidirectional stacks cannot stream (the reverse direction needs the future) and are rejected.
 * Steps run without gradient recording and in eval mode (no inter-layer dropout) unless asked.
 */
import type { DType } from '../backend/interface.ts';
import { Tensor, shapeStr, tensor } from '../tensor/tensor.ts';
import { noGrad } from '../autograd/tape.ts';
import { reshape } from '../autograd/ops/shape.ts';
import type { RecurrentBase } from '../nn/recurrent.ts';
import type { RecurrentMode } from '../cells/recurrent.ts';
import { checkOptions, isRecord } from '../util/options.ts';

// ---- stream state ------------------------------------------------------------------------------

/** The JSON form of a StreamState: h and c as nested arrays [layers][B][H]. */
export interface StreamStateJSON {
  format: 'recur.stream_state';
  version: 1;
  dtype: DType;
  /** [numLayers][B][H] */
  h: number[][][];
  /** [numLayers][B][H] for LSTM, else null. */
  c: number[][][] | null;
}

/** The recurrent state between two steps: h (and c for an LSTM), each [numLayers, B, H]. */
export class StreamState {
  constructor(readonly h: Tensor, readonly c: Tensor | null = null) {
    if (!(h instanceof Tensor) || h.ndim !== 3) throw new TypeError(`StreamState: h must be a [numLayers, B, H] tensor${h instanceof Tensor ? `, got ${shapeStr(h.shape)}` : ''}`);
    if (c !== null && (!(c instanceof Tensor) || c.ndim !== 3 || c.shape.some((s, i) => s !== h.shape[i]))) {
      throw new TypeError(`StreamState: c must be a tensor of h's shape ${shapeStr(h.shape)}`);
    }
  }

  get numLayers(): number {
    return this.h.shape[0];
  }

  get batchSize(): number {
    return this.h.shape[1];
  }

  get hiddenSize(): number {
    return this.h.shape[2];
  }

  toJSON(): StreamStateJSON {
    return stateJSON(this.h.dtype, this.h.shape, this.h.toArray(), this.c ? this.c.toArray() : null);
  }

  /** Rebuild a state from `toJSON()` output (possibly through JSON.parse), validating every field. */
  static fromJSON(json: unknown): StreamState {
    const r = readStateJSON(json);
    return new StreamState(tensor(r.h, r.shape, { dtype: r.dtype }), r.c ? tensor(r.c, r.shape, { dtype: r.dtype }) : null);
  }
}

/** A StreamStateJSON read into host arrays, every field validated (no tensor made). */
export interface StateRows {
  dtype: DType;
  /** [layers, B, H] */
  shape: [number, number, number];
  /** h, flat [layers, B, H] */
  h: Float64Array;
  /** c, flat [layers, B, H], or null */
  c: Float64Array | null;
}

/**
 * Read `StreamState.toJSON()` output into host arrays, validating every field: for a caller that
 * keeps many states as JSON and stacks them itself (a server), so no tensor is made per state.
 */
export function readStateJSON(json: unknown): StateRows {
  const who = 'StreamState.fromJSON';
  if (!isRecord(json)) throw new TypeError(`${who}: expected an object from toJSON(), got ${JSON.stringify(json)}`);
  if (json.format !== 'recur.stream_state') throw new TypeError(`${who}: not a stream state (format is ${JSON.stringify(json.format)})`);
  if (json.version !== 1) throw new TypeError(`${who}: unsupported version ${JSON.stringify(json.version)} (expected 1)`);
  const dtype = json.dtype;
  if (dtype !== 'float32' && dtype !== 'float64') throw new TypeError(`${who}: 'dtype' must be 'float32' or 'float64', got ${JSON.stringify(dtype)}`);
  const h = nestedToArray(json.h, `${who}: 'h'`);
  const c = json.c === null || json.c === undefined ? null : nestedToArray(json.c, `${who}: 'c'`);
  if (c && c.shape.some((s, i) => s !== h.shape[i])) throw new RangeError(`${who}: 'c' has shape ${shapeStr(c.shape)} but 'h' has ${shapeStr(h.shape)}`);
  return { dtype, shape: h.shape, h: h.data, c: c ? c.data : null };
}

/** The JSON form of a state held in host arrays h (and c), flat [layers, B, H]: what toJSON() writes. */
export function stateJSON(dtype: DType, shape: readonly number[], h: ArrayLike<number>, c: ArrayLike<number> | null): StreamStateJSON {
  return { format: 'recur.stream_state', version: 1, dtype, h: layerRows(h, shape), c: c ? layerRows(c, shape) : null };
}

/** A flat [layers, B, H] state as nested rows (its JSON form; nestedToArray reads it back). */
function layerRows(a: ArrayLike<number>, shape: readonly number[]): number[][][] {
  const [L, B, H] = shape;
  const at = (l: number, b: number): number[] => Array.from({ length: H }, (_, j) => a[(l * B + b) * H + j]);
  return Array.from({ length: L }, (_, l) => Array.from({ length: B }, (_, b) => at(l, b)));
}

function nestedToArray(v: unknown, where: string): { shape: [number, number, number]; data: Float64Array } {
  if (!Array.isArray(v) || v.length === 0) throw new TypeError(`${where} must be a non-empty [layers][B][H] array`);
  const L = v.length;
  const B = Array.isArray(v[0]) ? v[0].length : -1;
  const H = B > 0 && Array.isArray(v[0][0]) ? v[0][0].length : -1;
  if (B < 1 || H < 1) throw new TypeError(`${where} must be a non-empty [layers][B][H] array`);
  const flat = new Float64Array(L * B * H);
  let k = 0;
  for (let l = 0; l < L; l++) {
    const rows = v[l];
    if (!Array.isArray(rows) || rows.length !== B) throw new RangeError(`${where}[${l}] must hold ${B} rows`);
    for (let b = 0; b < B; b++) {
      const row = rows[b];
      if (!Array.isArray(row) || row.length !== H) throw new RangeError(`${where}[${l}][${b}] must hold ${H} numbers`);
      for (let j = 0; j < H; j++) {
        const x = row[j];
        if (typeof x !== 'number') throw new TypeError(`${where}[${l}][${b}][${j}] is not a number`);
        flat[k++] = x;
      }
    }
  }
  return { shape: [L, B, H], data: flat };
}

// ---- the streaming wrapper --------------------------------------------------------------------------

export interface StreamingOptions {
  /** Record gradients through the steps (default false: inference). */
  grad?: boolean;
  /** Run the stack in training mode (inter-layer dropout on); default false. */
  training?: boolean;
}

export interface StreamStep {
  /** [B, H]: the top layer's output at this step. */
  y: Tensor;
  /** The state after this step (pass it to the next call). */
  state: StreamState;
}

export class StreamingRecurrent {
  readonly layer: RecurrentBase;
  readonly mode: RecurrentMode;
  private readonly grad: boolean;
  private readonly training: boolean;

  constructor(layer: RecurrentBase, opts: StreamingOptions = {}) {
    if (layer === null || typeof layer !== 'object' || typeof layer.forward !== 'function' || typeof layer.numLayers !== 'number') {
      throw new TypeError('StreamingRecurrent: expected a recurrent layer (RNN, LSTM or GRU)');
    }
    checkOptions('StreamingRecurrent', opts, ['grad', 'training']);
    if (layer.bidirectional) throw new TypeError('StreamingRecurrent: a bidirectional layer cannot run as a stream (its reverse direction needs the future inputs)');
    this.layer = layer;
    this.mode = layer.mode;
    this.grad = opts.grad ?? false;
    this.training = opts.training ?? false;
  }

  /** A zero state for B streams. */
  initialState(B: number, dtype?: DType): StreamState {
    const shape = [this.layer.numLayers, B, this.layer.hiddenSize];
    const dt = dtype ?? this.layer.parameters()[0]?.dtype ?? 'float32';
    const z = (): Tensor => tensor(new Float64Array(shape[0] * shape[1] * shape[2]), shape, { dtype: dt });
    return new StreamState(z(), this.mode === 'LSTM' ? z() : null);
  }

  /**
   * One time step. x: [B, I] (or [1, B, I]); state: the previous step's state, or null for zeros.
   * Returns the top layer's output y [B, H] and the new state.
   */
  step(x: Tensor, state: StreamState | null = null): StreamStep {
    const I = this.layer.inputSize;
    let B: number;
    if (x.ndim === 2 && x.shape[1] === I) B = x.shape[0];
    else if (x.ndim === 3 && x.shape[0] === 1 && x.shape[2] === I) B = x.shape[1];
    else throw new RangeError(`StreamingRecurrent.step: input must be [B, ${I}] (one time step), got ${shapeStr(x.shape)}`);
    if (state !== null) {
      if (!(state instanceof StreamState)) throw new TypeError('StreamingRecurrent.step: state must be a StreamState (use StreamState.fromJSON for saved states) or null');
      const L = this.layer.numLayers, H = this.layer.hiddenSize;
      if (state.numLayers !== L || state.batchSize !== B || state.hiddenSize !== H) {
        throw new RangeError(`StreamingRecurrent.step: state is ${shapeStr(state.h.shape)}, this stack needs [numLayers = ${L}, B = ${B}, H = ${H}]`);
      }
      if ((state.c !== null) !== (this.mode === 'LSTM')) throw new TypeError(`StreamingRecurrent.step: ${this.mode === 'LSTM' ? 'an LSTM state needs c' : `a ${this.mode} state has no c`}`);
    }
    const run = (): StreamStep => {
      const seq = this.layer.batchFirst ? reshape(x, [B, 1, I]) : reshape(x, [1, B, I]);
      const r = this.layer.forward(seq, state ? { h: state.h, c: state.c } : {});
      return { y: reshape(r.output, [B, r.output.shape[2]]), state: new StreamState(r.h, r.c) };
    };
    const was = this.layer.training;
    this.layer.train(this.training);
    try {
      return this.grad ? run() : noGrad(run);
    } finally {
      this.layer.train(was);
    }
  }
}
