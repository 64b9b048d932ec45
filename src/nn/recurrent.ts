/**
 * Recurrent layers with PyTorch's interface, parameter names and layouts: RNN (tanh | relu), LSTM,
 * GRU — stacked (`numLayers`), `bidirectional`, `dropout` between layers, `batchFirst`, per-sample
 * `lengths`, initial state in, final state out — and the single-step cells RNNCell, LSTMCell,
 * GRUCell for decoders and streaming.
 *
 * Each layer of the stack is one fused op (cells/recurrent.ts), or a unidirectional stack without
 * dropout between its layers one op for all of them (recurrentStack, which a backend may pipeline
 * across its threads); this file only wires layers, dropout and state slices together.
 *
 * Loading a PyTorch model: `layer.loadStateDict(sd)` with the `state_dict()` of the matching
 * `nn.LSTM` / `nn.GRU` / `nn.RNN` (same sizes) — names and shapes are identical.
 */
import type { DType } from '../backend/interface.ts';
import { Tensor, shapeStr, zeros } from '../tensor/tensor.ts';
import { globalRng, type Rng } from '../tensor/rng.ts';
import { orthogonal_, uniform_ } from '../tensor/init.ts';
import { concat, permute, reshape, slice } from '../autograd/ops/shape.ts';
import { dropout } from '../autograd/ops/nn.ts';
import { CELLS, checkLengths, recurrentLayer, recurrentStack, type CellSpec, type DirectionParams, type RecurrentLayerResult, type RecurrentMode } from '../cells/recurrent.ts';
import { checkOptions, checkPositiveInt, Module } from './module.ts';

export interface RecurrentOptions {
  inputSize: number;
  hiddenSize: number;
  /** Stacked layers (default 1). */
  numLayers?: number;
  /** Use b_ih and b_hh (default true). */
  bias?: boolean;
  /** Input/output as [B, T, ·] instead of [T, B, ·] (default false). */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training (default 0). */
  dropout?: number;
  bidirectional?: boolean;
  /** RNN only: 'tanh' (default) or 'relu'. */
  nonlinearity?: 'tanh' | 'relu';
  /** Recurrent weight init: 'default' (PyTorch's U(−1/√H, 1/√H)) or 'orthogonal' (each gate block). */
  recurrentInit?: 'default' | 'orthogonal';
  /** LSTM only: initial forget-gate bias (b_ih's f block = value, b_hh's f block = 0). */
  forgetBias?: number;
  dtype?: DType;
  rng?: Rng;
}

const RECURRENT_KEYS = ['inputSize', 'hiddenSize', 'numLayers', 'bias', 'batchFirst', 'dropout', 'bidirectional', 'nonlinearity', 'recurrentInit', 'forgetBias', 'dtype', 'rng'] as const;

export interface RecurrentState {
  /** [numLayers·D, B, H] */
  h?: Tensor | null;
  /** [numLayers·D, B, H] (LSTM) */
  c?: Tensor | null;
}

export interface RecurrentForwardOptions extends RecurrentState {
  /** Per-sample valid lengths (ONNX sequence_lens / PyTorch packed sequences). */
  lengths?: ArrayLike<number> | null;
}

export interface RecurrentOutput {
  /** [T, B, D·H] (or [B, T, D·H] with batchFirst); zero past each sample's length. */
  output: Tensor;
  /** [numLayers·D, B, H] final hidden state (at each sample's last real step). */
  h: Tensor;
  /** [numLayers·D, B, H] final cell state (LSTM), else null. */
  c: Tensor | null;
}

/**
 * One direction's parameters (registered as weight_ih+suffix, weight_hh, bias_ih, bias_hh — PyTorch's
 * order) with PyTorch's init U(−1/√H, 1/√H), optionally orthogonal W_hh gate blocks, and an LSTM
 * forget-gate bias (b_ih's f block = value, b_hh's f block = 0).
 */
function initDirection(
  register: (name: string, t: Tensor) => Tensor,
  o: { cell: CellSpec; H: number; inSize: number; bias: boolean; recurrentInit: 'default' | 'orthogonal'; forgetBias?: number; dtype?: DType; rng: Rng },
  suffix: string,
): DirectionParams {
  const { H } = o;
  const G = o.cell.G;
  const k = 1 / Math.sqrt(H);
  const p = (name: string, shape: number[]): Tensor => register(name + suffix, uniform_(zeros(shape, { dtype: o.dtype }), -k, k, o.rng));
  const weightIh = p('weight_ih', [G * H, o.inSize]);
  const weightHh = p('weight_hh', [G * H, H]);
  const biasIh = o.bias ? p('bias_ih', [G * H]) : null;
  const biasHh = o.bias ? p('bias_hh', [G * H]) : null;
  if (o.recurrentInit === 'orthogonal') orthogonal_(weightHh, 1, o.rng, G);
  if (o.forgetBias !== undefined && biasIh && biasHh) {
    // the f gate's block of rows (rows [H, 2H) in LSTM's i, f, g, o layout)
    const f = o.cell.gates.indexOf('f') * H;
    biasIh.backend.fill(biasIh.storage, o.forgetBias, f, H);
    biasHh.backend.fill(biasHh.storage, 0, f, H);
  }
  return { weightIh, weightHh, biasIh, biasHh };
}

export class RecurrentBase extends Module {
  readonly mode: RecurrentMode;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropoutP: number;
  readonly bidirectional: boolean;
  private readonly rng: Rng;
  /** [layer][direction] */
  readonly cells: DirectionParams[][] = [];

  constructor(kind: 'RNN' | 'LSTM' | 'GRU', opts: RecurrentOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw new TypeError(`${kind}: options must be an object like {inputSize, hiddenSize}`);
    checkOptions(kind, opts, RECURRENT_KEYS);
    this.inputSize = checkPositiveInt(kind, 'inputSize', opts.inputSize);
    this.hiddenSize = checkPositiveInt(kind, 'hiddenSize', opts.hiddenSize);
    this.numLayers = checkPositiveInt(kind, 'numLayers', opts.numLayers ?? 1);
    this.bias = opts.bias ?? true;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropoutP = opts.dropout ?? 0;
    this.bidirectional = opts.bidirectional ?? false;
    this.rng = opts.rng ?? globalRng;
    if (!(this.dropoutP >= 0 && this.dropoutP < 1)) throw new RangeError(`${kind}: 'dropout' must be in [0, 1), got ${this.dropoutP}`);
    const nl = opts.nonlinearity ?? 'tanh';
    if (kind !== 'RNN' && opts.nonlinearity !== undefined) throw new TypeError(`${kind}: 'nonlinearity' applies to RNN only`);
    if (nl !== 'tanh' && nl !== 'relu') throw new TypeError(`${kind}: 'nonlinearity' must be 'tanh' or 'relu', got '${String(nl)}'`);
    if (kind !== 'LSTM' && opts.forgetBias !== undefined) throw new TypeError(`${kind}: 'forgetBias' applies to LSTM only`);
    const rInit = opts.recurrentInit ?? 'default';
    if (rInit !== 'default' && rInit !== 'orthogonal') throw new TypeError(`${kind}: 'recurrentInit' must be 'default' or 'orthogonal', got '${String(rInit)}'`);
    this.mode = kind === 'RNN' ? (nl === 'tanh' ? 'RNN_TANH' : 'RNN_RELU') : kind;

    const cell = CELLS[this.mode];
    const H = this.hiddenSize;
    const D = this.bidirectional ? 2 : 1;
    // Registration order = PyTorch's _flat_weights order: per layer, per direction: w_ih, w_hh, b_ih, b_hh.
    for (let l = 0; l < this.numLayers; l++) {
      const inSize = l === 0 ? this.inputSize : H * D;
      const layer: DirectionParams[] = [];
      for (let d = 0; d < D; d++) {
        const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
        layer.push(initDirection((n, t) => this.registerParameter(n, t), { cell, H, inSize, bias: this.bias, recurrentInit: rInit, forgetBias: opts.forgetBias, dtype: opts.dtype, rng: this.rng }, sfx));
      }
      this.cells.push(layer);
    }
  }

  get numDirections(): number {
    return this.bidirectional ? 2 : 1;
  }

  /**
   * x: [T, B, I] (or [B, T, I] with batchFirst). Returns the top layer's outputs and every layer's
   * final states, as PyTorch does.
   */
  forward(x: Tensor, o: RecurrentForwardOptions = {}): RecurrentOutput {
    checkOptions(`${this.mode}.forward`, o, ['h', 'c', 'lengths']);
    if (x.ndim !== 3) {
      throw new RangeError(`${this.mode}: input must be ${this.batchFirst ? '[B, T, I]' : '[T, B, I]'}, got ${shapeStr(x.shape)}`);
    }
    if (x.shape[2] !== this.inputSize) throw new RangeError(`${this.mode}: input feature size must be ${this.inputSize}, got ${x.shape[2]} (input ${shapeStr(x.shape)})`);
    let seq = this.batchFirst ? permute(x, [1, 0, 2]) : x;
    const [T, B] = seq.shape;
    const lengths = checkLengths(o.lengths, T, B);
    const D = this.numDirections;
    const LD = this.numLayers * D;
    const H = this.hiddenSize;
    const hasCell = CELLS[this.mode].hasCell;
    for (const [s, name] of [[o.h, 'h'], [o.c, 'c']] as const) {
      if (!s) continue;
      if (s.ndim !== 3 || s.shape[0] !== LD || s.shape[1] !== B || s.shape[2] !== H) {
        throw new RangeError(`${this.mode}: initial state '${name}' must be [numLayers·D = ${LD}, B = ${B}, H = ${H}], got ${shapeStr(s.shape)}`);
      }
    }
    if (o.c && !hasCell) throw new TypeError(`${this.mode}: has no cell state, but 'c' was given`);
    const r = this.runLayers(seq, o.h ?? null, o.c ?? null, lengths);
    return { output: this.batchFirst ? permute(r.y, [1, 0, 2]) : r.y, h: r.hN, c: r.cN };
  }

  /**
   * The layers over time-major `seq`: a unidirectional stack without dropout between its layers as
   * one op (recurrentStack, which a backend may run as a wavefront across its threads), anything
   * else one op per layer with dropout between them.
   */
  private runLayers(seq: Tensor, h: Tensor | null, c: Tensor | null, lengths: Int32Array | null): RecurrentLayerResult {
    const D = this.numDirections;
    if (this.numLayers > 1 && D === 1 && !(this.dropoutP > 0 && this.training)) {
      return recurrentStack(this.mode, seq, this.cells.map((layer) => layer[0]), h, c, lengths);
    }
    const hs: Tensor[] = [];
    const cs: Tensor[] = [];
    for (let l = 0; l < this.numLayers; l++) {
      if (l > 0 && this.dropoutP > 0 && this.training) seq = dropout(seq, this.dropoutP, true, this.rng);
      const h0 = h ? (this.numLayers === 1 ? h : slice(h, 0, l * D, D)) : null;
      const c0 = c ? (this.numLayers === 1 ? c : slice(c, 0, l * D, D)) : null;
      const r = recurrentLayer(this.mode, seq, this.cells[l], h0, c0, lengths);
      seq = r.y;
      hs.push(r.hN);
      if (r.cN) cs.push(r.cN);
    }
    return {
      y: seq,
      hN: hs.length === 1 ? hs[0] : concat(hs, 0),
      cN: cs.length === 0 ? null : cs.length === 1 ? cs[0] : concat(cs, 0),
    };
  }
}

export class RNN extends RecurrentBase {
  constructor(opts: RecurrentOptions) {
    super('RNN', opts);
  }
}

export class LSTM extends RecurrentBase {
  constructor(opts: Omit<RecurrentOptions, 'nonlinearity'>) {
    super('LSTM', opts);
  }
}

export class GRU extends RecurrentBase {
  constructor(opts: Omit<RecurrentOptions, 'nonlinearity' | 'forgetBias'>) {
    super('GRU', opts);
  }
}

/** A layer kind as model files, importers and converters name it: nn.RNN (tanh or ReLU), nn.LSTM, nn.GRU. */
export const RECURRENT_KINDS = ['rnn', 'rnn-relu', 'lstm', 'gru'] as const;
export type RecurrentKind = (typeof RECURRENT_KINDS)[number];

/** The layer of a kind (the kind says the nonlinearity, so the options do not). */
export function createRecurrent(kind: RecurrentKind, opts: Omit<RecurrentOptions, 'nonlinearity'>): RecurrentBase {
  switch (kind) {
    case 'rnn': return new RNN(opts);
    case 'rnn-relu': return new RNN({ ...opts, nonlinearity: 'relu' });
    case 'lstm': return new LSTM(opts);
    case 'gru': return new GRU(opts);
  }
}

export interface CellOptions {
  inputSize: number;
  hiddenSize: number;
  bias?: boolean;
  nonlinearity?: 'tanh' | 'relu';
  recurrentInit?: 'default' | 'orthogonal';
  forgetBias?: number;
  dtype?: DType;
  rng?: Rng;
}

export interface CellState {
  /** [B, H] */
  h: Tensor;
  /** [B, H] (LSTMCell) */
  c?: Tensor | null;
}

/**
 * One time step, PyTorch's RNNCell / LSTMCell / GRUCell (parameters weight_ih, weight_hh,
 * bias_ih, bias_hh). Runs the same fused kernels as the sequence layers with T = 1.
 */
export class CellBase extends Module {
  readonly mode: RecurrentMode;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly params: DirectionParams;

  constructor(kind: 'RNNCell' | 'LSTMCell' | 'GRUCell', opts: CellOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw new TypeError(`${kind}: options must be an object like {inputSize, hiddenSize}`);
    checkOptions(kind, opts, ['inputSize', 'hiddenSize', 'bias', 'nonlinearity', 'recurrentInit', 'forgetBias', 'dtype', 'rng']);
    this.inputSize = checkPositiveInt(kind, 'inputSize', opts.inputSize);
    this.hiddenSize = checkPositiveInt(kind, 'hiddenSize', opts.hiddenSize);
    if (kind !== 'RNNCell' && opts.nonlinearity !== undefined) throw new TypeError(`${kind}: 'nonlinearity' applies to RNNCell only`);
    if (kind !== 'LSTMCell' && opts.forgetBias !== undefined) throw new TypeError(`${kind}: 'forgetBias' applies to LSTMCell only`);
    const nl = opts.nonlinearity ?? 'tanh';
    if (nl !== 'tanh' && nl !== 'relu') throw new TypeError(`${kind}: 'nonlinearity' must be 'tanh' or 'relu', got '${String(nl)}'`);
    this.mode = kind === 'RNNCell' ? (nl === 'tanh' ? 'RNN_TANH' : 'RNN_RELU') : kind === 'LSTMCell' ? 'LSTM' : 'GRU';
    const cell = CELLS[this.mode];
    const H = this.hiddenSize;
    const rInit = opts.recurrentInit ?? 'default';
    if (rInit !== 'default' && rInit !== 'orthogonal') throw new TypeError(`${kind}: 'recurrentInit' must be 'default' or 'orthogonal', got '${String(rInit)}'`);
    this.params = initDirection((n, t) => this.registerParameter(n, t), { cell, H, inSize: this.inputSize, bias: opts.bias ?? true, recurrentInit: rInit, forgetBias: opts.forgetBias, dtype: opts.dtype, rng: opts.rng ?? globalRng }, '');
  }

  /** x: [B, I]; state: {h: [B, H], c?: [B, H]} or null for zeros. Returns the new state. */
  forward(x: Tensor, state: CellState | null = null): CellState {
    if (x.ndim !== 2 || x.shape[1] !== this.inputSize) throw new RangeError(`${this.mode} cell: input must be [B, ${this.inputSize}], got ${shapeStr(x.shape)}`);
    const B = x.shape[0];
    const H = this.hiddenSize;
    const check = (s: Tensor | null | undefined, name: string): Tensor | null => {
      if (!s) return null;
      if (s.ndim !== 2 || s.shape[0] !== B || s.shape[1] !== H) throw new RangeError(`${this.mode} cell: state '${name}' must be [${B}, ${H}], got ${shapeStr(s.shape)}`);
      return reshape(s, [1, B, H]);
    };
    const h0 = check(state?.h, 'h');
    const c0 = CELLS[this.mode].hasCell ? check(state?.c, 'c') : null;
    const r = recurrentLayer(this.mode, reshape(x, [1, B, this.inputSize]), [this.params], h0, c0, null);
    return { h: reshape(r.hN, [B, H]), c: r.cN ? reshape(r.cN, [B, H]) : null };
  }
}

export class RNNCell extends CellBase {
  constructor(opts: CellOptions) {
    super('RNNCell', opts);
  }
}

export class LSTMCell extends CellBase {
  constructor(opts: Omit<CellOptions, 'nonlinearity'>) {
    super('LSTMCell', opts);
  }
}

export class GRUCell extends CellBase {
  constructor(opts: Omit<CellOptions, 'nonlinearity' | 'forgetBias'>) {
    super('GRUCell', opts);
  }
}
