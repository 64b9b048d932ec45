/**
 * Truncated backpropagation through time for long token streams (language models over a book, a
 * log, a sensor trace).
 *
 * The recipe (Zaremba et al. / PyTorch's word-language-model example):
 *   1. `splitStreams`: cut the stream into B equal contiguous pieces, one per batch row, so row b
 *      of consecutive batches reads consecutive text;
 *   2. `StreamBatches`: serve consecutive [T, B] windows (inputs and next-token targets) as a
 *      `BatchSource`, in order — window i+1 continues where window i stopped, in every row;
 *   3. `StateCarry`: the task keeps the recurrent state between windows, so the model sees the
 *      whole stream as one sequence; the state is reset at the start of each epoch (window 0),
 *      detached every K windows (default 1), and serialises into checkpoints
 *      (`Task.getCarry/setCarry`);
 *   4. `forwardTBPTT`: run a recurrent layer over a window, detaching the state every K time steps.
 *
 * Where gradients stop. With the Trainer the carried state must be detached at every batch
 * boundary (StateCarry's default): the optimizer updates the weights in place after each batch, so
 * a graph spanning two batches would differentiate through weights that no longer exist. A custom
 * loop that backpropagates once over several windows can keep the graph across them
 * (`new StateCarry({detachEvery: K})`; K = Infinity is full BPTT over the concatenated windows).
 * Inside one window `forwardTBPTT` detaches every K time steps; K ≥ T (the default) is full BPTT
 * over the window, identical to running the layer on it in one go. Detaching never changes
 * values — only where gradients flow.
 *
 * Full BPTT in bounded memory (`backwardCheckpointed`, activation checkpointing as in Chen et al.
 * 2016, "Training deep nets with sublinear memory cost"): over a sequence too long for its
 * activations to fit, run the forward pass in segments of k steps with no tape, keeping only the
 * state at each segment's start; then, from the last segment to the first, run the segment again on
 * the tape from its kept state and backpropagate its loss together with the gradient that the
 * segment after it sent back into that state. Memory is O(T/k) states plus one segment's
 * activations (least near k = √T), for one extra forward pass; the gradients are those of one
 * backward pass over the whole sequence.
 */
import { Tensor, shapeStr } from '../tensor/tensor.ts';
import { concat, slice } from '../autograd/ops/shape.ts';
import { add, mul, sum } from '../autograd/ops/elementwise.ts';
import { backward, noGrad } from '../autograd/tape.ts';
import type { RecurrentBase, RecurrentOutput } from '../nn/recurrent.ts';
import type { BatchSource } from './task.ts';
import { tensorFromJSON, tensorToJSON, type TensorJSON } from '../tensor/json.ts';
import { checkOptions } from '../util/options.ts';

function posInt(who: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new RangeError(`${who}: '${key}' must be a positive integer, got ${String(v)}`);
  return v;
}

// ---- streams and windows --------------------------------------------------------------------

export interface Streams {
  /** [B, L] row-major: row b is tokens[b·L, (b+1)·L). */
  data: Int32Array;
  B: number;
  /** Tokens per stream. */
  L: number;
}

/**
 * Split a token stream into B contiguous, equally long streams (the last n mod B tokens are
 * dropped, as in PyTorch's `batchify`).
 */
export function splitStreams(tokens: ArrayLike<number>, B: number): Streams {
  const who = 'splitStreams';
  posInt(who, 'B', B);
  const L = Math.floor(tokens.length / B);
  if (L < 2) throw new RangeError(`${who}: ${tokens.length} tokens cannot make ${B} streams of at least 2 tokens (an input and its target)`);
  const data = new Int32Array(B * L);
  for (let i = 0; i < B * L; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t)) throw new TypeError(`${who}: token ${String(t)} at position ${i} is not an integer`);
    data[i] = t;
  }
  return { data, B, L };
}

/** One window of the streams: time-major inputs and targets ([T, B], flat: x[t·B + b]). */
export interface StreamWindow {
  inputs: Int32Array;
  targets: Int32Array;
  /** Time steps in this window (the last window of an epoch may be shorter than seqLen). */
  T: number;
  B: number;
  epoch: number;
  /** Window index within the epoch. */
  index: number;
  /** True for the first window of an epoch: the carried state must start from zeros. */
  reset: boolean;
}

export interface StreamBatchesOptions {
  /** Parallel streams B (rows per batch). */
  batchSize: number;
  /** Time steps T per window (the truncation length). */
  seqLen: number;
}

/**
 * Consecutive [T, B] windows over B parallel streams: window i holds positions [i·T, i·T + T) of
 * every stream as inputs and the positions one later as targets. Windows must be consumed in
 * order for the carried state to make sense (the Trainer does); `get` itself is a pure function of
 * (epoch, index), so resuming at any window gives the same batch.
 */
export class StreamBatches implements BatchSource<StreamWindow> {
  readonly streams: Streams;
  readonly seqLen: number;
  readonly numBatches: number;

  constructor(tokens: ArrayLike<number>, opts: StreamBatchesOptions) {
    const who = 'StreamBatches';
    if (opts === null || typeof opts !== 'object') throw new TypeError(`${who}: options must be an object {batchSize, seqLen}`);
    checkOptions(who, opts, ['batchSize', 'seqLen']);
    this.seqLen = posInt(who, 'seqLen', opts.seqLen);
    this.streams = splitStreams(tokens, posInt(who, 'batchSize', opts.batchSize));
    this.numBatches = Math.ceil((this.streams.L - 1) / this.seqLen);
  }

  get(epoch: number, index: number): StreamWindow {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.numBatches) throw new RangeError(`StreamBatches.get: index ${index} is outside [0, ${this.numBatches})`);
    const { data, B, L } = this.streams;
    const start = index * this.seqLen;
    const T = Math.min(this.seqLen, L - 1 - start);
    const inputs = new Int32Array(T * B);
    const targets = new Int32Array(T * B);
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) {
        inputs[t * B + b] = data[b * L + start + t];
        targets[t * B + b] = data[b * L + start + t + 1];
      }
    }
    return { inputs, targets, T, B, epoch, index, reset: index === 0 };
  }
}

// ---- the carried state ----------------------------------------------------------------------------

/** A recurrent state: h (and c for an LSTM), [numLayers·D, B, H]. */
export interface CarriedState {
  h: Tensor;
  c?: Tensor | null;
}

export interface CarryJSON {
  h: TensorJSON;
  c: TensorJSON | null;
}

export interface StateCarryOptions {
  /**
   * Cut the gradient path after every K windows (default 1: after each window). K > 1 (or
   * Infinity: never) keeps the graph across windows, which is only valid when ONE backward runs
   * over those K windows before the weights change — a loop that sums the K windows' losses, or a
   * task whose step processes several windows. The Trainer updates after every batch, so with it
   * K must be 1.
   */
  detachEvery?: number;
}

/**
 * The recurrent state a task carries from one window to the next. Use it in `Task.step`:
 *
 *   const init = this.carry.begin(batch);            // {} at an epoch start, else the carried state
 *   const r = this.lstm.forward(x, init);
 *   this.carry.end(r);                                // keeps r.h, r.c (detached) for the next window
 *
 * and in `getCarry/setCarry` return `carry.toJSON()` / call `carry.fromJSON(state)`.
 */
export class StateCarry {
  readonly detachEvery: number;
  private h: Tensor | null = null;
  private c: Tensor | null = null;
  private windows = 0;

  constructor(opts: StateCarryOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('StateCarry: options must be an object {detachEvery?}');
    checkOptions('StateCarry', opts, ['detachEvery']);
    const K = opts.detachEvery ?? 1;
    this.detachEvery = K === Infinity ? K : posInt('StateCarry', 'detachEvery', K);
  }

  /** The state to start `batch` from: empty (zeros) when `batch.reset` (epoch start), else the carried one. */
  begin(batch: { reset: boolean; B?: number }): { h?: Tensor; c?: Tensor } {
    if (batch.reset) this.reset();
    if (this.h === null) return {};
    if (batch.B !== undefined && this.h.shape[1] !== batch.B) {
      throw new RangeError(`StateCarry: the carried state is for ${this.h.shape[1]} streams but the batch has ${batch.B}`);
    }
    return this.c ? { h: this.h, c: this.c } : { h: this.h };
  }

  /** Keep the final state of a window for the next one, cut off from the graph every `detachEvery` windows. */
  end(state: CarriedState): void {
    this.windows++;
    const cut = this.windows % this.detachEvery === 0;
    this.h = cut ? state.h.detach() : state.h;
    this.c = state.c ? (cut ? state.c.detach() : state.c) : null;
  }

  reset(): void {
    this.h = null;
    this.c = null;
    this.windows = 0;
  }

  get state(): CarriedState | null {
    return this.h ? { h: this.h, c: this.c } : null;
  }

  toJSON(): CarryJSON | null {
    return this.h ? { h: tensorToJSON(this.h), c: this.c ? tensorToJSON(this.c) : null } : null;
  }

  fromJSON(json: unknown): void {
    if (json === null || json === undefined) {
      this.reset();
      return;
    }
    if (typeof json !== 'object' || Array.isArray(json)) throw new TypeError(`StateCarry.fromJSON: expected {h, c} or null, got ${JSON.stringify(json)}`);
    const j = json as Record<string, unknown>;
    const h = tensorFromJSON(j.h, "StateCarry.fromJSON: 'h'");
    const c = j.c === null || j.c === undefined ? null : tensorFromJSON(j.c, "StateCarry.fromJSON: 'c'");
    if (h.ndim !== 3) throw new RangeError(`StateCarry.fromJSON: 'h' must be [layers, B, H], got ${shapeStr(h.shape)}`);
    if (c && c.shape.some((s, i) => s !== h.shape[i])) throw new RangeError(`StateCarry.fromJSON: 'c' has shape ${shapeStr(c.shape)} but 'h' has ${shapeStr(h.shape)}`);
    this.h = h;
    this.c = c;
    this.windows = 0;
  }
}

// ---- truncation inside a window ----------------------------------------------------------------------

export interface TBPTTForwardOptions {
  h?: Tensor | null;
  c?: Tensor | null;
  /** Detach the state every K time steps (default: never inside the window — full BPTT over it). */
  detachEvery?: number;
}

/**
 * Run `layer` over x ([T, B, I], or [B, T, I] with batchFirst) in segments of K steps, carrying the
 * state between segments and detaching it at each boundary: outputs and final state equal one
 * pass over the whole window; the gradient of a later segment's loss stops at the boundary.
 */
export function forwardTBPTT(layer: RecurrentBase, x: Tensor, opts: TBPTTForwardOptions = {}): RecurrentOutput {
  const who = 'forwardTBPTT';
  checkOptions(who, opts, ['h', 'c', 'detachEvery']);
  if (x.ndim !== 3) throw new RangeError(`${who}: input must be 3-D, got ${shapeStr(x.shape)}`);
  const axis = layer.batchFirst ? 1 : 0;
  const T = x.shape[axis];
  const K = opts.detachEvery === undefined ? T : posInt(who, 'detachEvery', opts.detachEvery);
  if (K >= T) return layer.forward(x, { h: opts.h ?? null, c: opts.c ?? null });
  if (layer.bidirectional) throw new TypeError(`${who}: a bidirectional layer cannot be truncated in time (its reverse direction runs from the end of the window)`);
  let h = opts.h ?? null;
  let c = opts.c ?? null;
  const outs: Tensor[] = [];
  let last: RecurrentOutput | null = null;
  for (let t0 = 0; t0 < T; t0 += K) {
    const seg = slice(x, axis, t0, Math.min(K, T - t0));
    if (t0 > 0) {
      h = h ? h.detach() : null;
      c = c ? c.detach() : null;
    }
    last = layer.forward(seg, { h, c });
    outs.push(last.output);
    h = last.h;
    c = last.c;
  }
  return { output: concat(outs, axis), h: last!.h, c: last!.c };
}

// ---- full BPTT in bounded memory ------------------------------------------------------------------

/** What one segment of `backwardCheckpointed` returns. */
export interface SegmentResult {
  /** This segment's share of the loss (one element): the total loss is the sum over segments. */
  loss: Tensor;
  /** The state after the segment's last step, tensor for tensor like the state it started from. */
  state: readonly Tensor[];
}

export interface CheckpointedResult {
  /** The total loss (the sum of the segments' losses). */
  loss: number;
  /** Segments of at most k steps the sequence was cut into. */
  segments: number;
}

/**
 * Backpropagate the loss of a T-step sequence as one backward pass would, keeping only every k-th
 * state (see the file's header): parameters' `.grad` receive ∂(Σ segment losses)/∂θ, and the
 * initial state tensors that require grad receive theirs.
 *
 * `segment(t0, t1, state)` runs steps t0 … t1−1 from `state` (any list of tensors: h and c of every
 * layer, say) and returns that stretch's loss and the state after it. It is called twice per
 * segment — once without a tape, once on it — and must give the same result both times: draw
 * dropout masks from an Rng seeded by t0, not from a shared stream. The second run is checked
 * against the first (the state it ends in must equal the one kept), so a segment that is not
 * deterministic is an error rather than a silently wrong gradient.
 *
 *   const { loss } = backwardCheckpointed(T, 316, [h0, c0], (t0, t1, [h, c]) => {
 *     const r = lstm.forward(embed.forward(ids.slice(t0 * B, t1 * B), [t1 - t0, B]), { h, c });
 *     return { loss: crossEntropy(head.forward(r.output), targets.slice(t0 * B, t1 * B), { reduction: 'sum' }), state: [r.h, r.c!] };
 *   });
 *   optimizer.step();
 */
export function backwardCheckpointed(
  T: number,
  k: number,
  init: readonly Tensor[],
  segment: (t0: number, t1: number, state: readonly Tensor[]) => SegmentResult,
): CheckpointedResult {
  const who = 'backwardCheckpointed';
  posInt(who, 'T', T);
  posInt(who, 'k', k);
  if (!Array.isArray(init) || !init.every((t) => t instanceof Tensor)) throw new TypeError(`${who}: the initial state must be an array of tensors`);
  const run = (t0: number, state: readonly Tensor[]): SegmentResult => {
    const t1 = Math.min(T, t0 + k);
    const r = segment(t0, t1, state);
    if (!(r?.loss instanceof Tensor) || r.loss.size !== 1) throw new TypeError(`${who}: segment [${t0}, ${t1}) must return { loss: a one-element tensor, state }`);
    if (!Array.isArray(r.state) || r.state.length !== state.length || r.state.some((s, j) => !(s instanceof Tensor) || s.size !== state[j].size)) {
      throw new TypeError(`${who}: segment [${t0}, ${t1}) must return a state of ${state.length} tensors shaped like the state it was given`);
    }
    return r;
  };

  // Forward without a tape: the loss, and the state at the start of every segment.
  const starts: Tensor[][] = [[...init]];
  let loss = 0;
  noGrad(() => {
    for (let t0 = 0; t0 < T; t0 += k) {
      const r = run(t0, starts[starts.length - 1]);
      loss += r.loss.item();
      if (t0 + k < T) starts.push(r.state.map((s) => s.detach()));
    }
  });

  // Backward, last segment first. carry[j] = ∂(loss of the later segments)/∂(state j at this
  // segment's end); adding Σ state_j · carry_j to the segment's loss sends exactly carry_j into
  // state_j's gradient, so one backward call covers both.
  let carry: Tensor[] | null = null;
  for (let i = starts.length - 1; i >= 0; i--) {
    const t0 = i * k;
    // The first segment starts from the caller's tensors (their gradients are the caller's); later
    // ones from leaves whose gradients become the carry.
    const state = i === 0 ? init : starts[i].map((s) => s.detach().requireGrad());
    const r = run(t0, state);
    if (carry) {
      for (const [j, s] of r.state.entries()) {
        const kept = starts[i + 1][j].toArray() as ArrayLike<number>;
        const again = s.toArray() as ArrayLike<number>;
        for (let e = 0; e < again.length; e++) {
          if (!Object.is(again[e], kept[e])) throw new Error(`${who}: segment [${t0}, ${Math.min(T, t0 + k)}) gave a different state when run again (state ${j}, element ${e}: ${kept[e]} then ${again[e]}); the segment must be deterministic (seed its dropout by t0)`);
        }
      }
      starts[i + 1] = []; // checked, and no later segment needs it: its memory can go
    }
    let objective = r.loss;
    if (carry) for (const [j, s] of r.state.entries()) objective = add(objective, sum(mul(s, carry[j])));
    if (objective.requiresGrad) backward(objective);
    // a state the loss does not reach (an unused c, say) sends back zeros
    carry = i === 0 ? null : state.map((s) => s.grad ?? new Tensor(s.backend.alloc(s.size, s.dtype), s.shape));
  }
  return { loss, segments: starts.length };
}
