/**
 * The ONNX recurrent operators RNN, GRU and LSTM (opset 7 and 14+), with every attribute:
 * hidden_size, direction (forward | reverse | bidirectional), activations with activation_alpha /
 * activation_beta, clip, input_forget (LSTM), linear_before_reset (GRU), layout (0: time-major,
 * 1: batch-major), and every optional input and output (B, sequence_lens, initial_h, initial_c,
 * P; Y, Y_h, Y_c).
 *
 * Two implementations:
 *
 * 1. Fast path — recur's fused `recurrentLayer` (one GEMM for the input projection of all steps,
 *    fused gate kernels on the backend) when the node means exactly what PyTorch's layers compute:
 *    default activations (RNN: all Tanh or all Relu; GRU: Sigmoid, Tanh; LSTM: Sigmoid, Tanh,
 *    Tanh), no clip, no input_forget, no (or all-zero) peepholes, and for GRU
 *    linear_before_reset = 1. Weights are reordered once per weight tensor (cached, so graph
 *    initializers are reordered once per model):
 *       ONNX LSTM gates i, o, f, c  →  recur i, f, g, o
 *       ONNX GRU  gates z, r, h     →  recur r, z, n
 *    (the orders live in the cell records, src/cells/, and reorderGates moves the blocks)
 *    and B = [Wb ‖ Rb] splits into b_ih and b_hh. A unidirectional `reverse` node runs forward over
 *    each sequence reversed within its own length.
 *
 * 2. General path — everything else: a direct, inference-only transcription of the equations in
 *    the ONNX operator specification, in float64 on the host, one batch row at a time (rows are
 *    independent). Slower, but it has no special cases to get wrong:
 *
 *    RNN:   H_t = f(X_t·Wᵀ + H_{t−1}·Rᵀ + Wb + Rb)
 *    GRU:   z = f(X·Wzᵀ + H·Rzᵀ + Wbz + Rbz)        r = f(X·Wrᵀ + H·Rrᵀ + Wbr + Rbr)
 *           h = g(X·Whᵀ + (r ⊙ H)·Rhᵀ + Rbh + Wbh)          (linear_before_reset = 0)
 *           h = g(X·Whᵀ + r ⊙ (H·Rhᵀ + Rbh) + Wbh)          (linear_before_reset ≠ 0)
 *           H_t = (1 − z) ⊙ h + z ⊙ H_{t−1}
 *    LSTM:  i = f(X·Wiᵀ + H·Riᵀ + Pi ⊙ C_{t−1} + Wbi + Rbi)
 *           f = f(X·Wfᵀ + H·Rfᵀ + Pf ⊙ C_{t−1} + Wbf + Rbf)   (f = 1 − i with input_forget)
 *           c = g(X·Wcᵀ + H·Rcᵀ + Wbc + Rbc)
 *           C_t = f ⊙ C_{t−1} + i ⊙ c
 *           o = f(X·Woᵀ + H·Roᵀ + Po ⊙ C_t + Wbo + Rbo)
 *           H_t = o ⊙ h(C_t)
 *
 *    `clip` bounds every gate pre-activation to [−clip, clip] before its activation (not C_t
 *    before h), which is how the ONNX text ("applied to the input of activations") is read by
 *    onnxruntime; the tests check this implementation against onnxruntime attribute by attribute.
 *
 * Shared semantics: with sequence_lens, row b runs for len[b] steps (the reverse direction starts
 * at step len[b] − 1), Y is 0 at t ≥ len[b] and Y_h / Y_c hold the state after the last real step.
 *
 * activation_alpha / activation_beta are consumed in order by the activations that take them
 * (Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu), across both directions; an
 * activation whose value list has run out takes its ONNX default (LeakyRelu α = 0.01, HardSigmoid
 * α = 0.2, β = 0.5, Elu α = 1). Affine, ScaledTanh and ThresholdedRelu have no default that
 * runtimes agree on, so they must be given explicitly — leaving them out is an error, not a guess.
 */
import { Tensor, shapeStr } from '../tensor/tensor.ts';
import { permute, reshape } from '../autograd/ops/shape.ts';
import { cellForFormat, recurrentLayer, reorderGates, type CellSpec, type DirectionParams, type RecurrentMode } from '../cells/recurrent.ts';
import type { FloatDType } from './tensor.ts';
import { HostInts, describeValue, floatInput, type Kernel, type NodeContext, type Value } from './runtime.ts';

export type RecOp = 'RNN' | 'GRU' | 'LSTM';

const NUM_ACTS: Record<RecOp, number> = { RNN: 1, GRU: 2, LSTM: 3 };
/** ONNX's default activations per direction (PyTorch's, for RNN its tanh nonlinearity). */
export const DEFAULT_ACTS: Readonly<Record<RecOp, readonly string[]>> = { RNN: ['Tanh'], GRU: ['Sigmoid', 'Tanh'], LSTM: ['Sigmoid', 'Tanh', 'Tanh'] };

/**
 * recur's fused mode for a recurrent node when it means what PyTorch computes, else null: no clip,
 * every direction with the same PyTorch activations (`acts`: all directions' names, any case), an
 * LSTM without input_forget, a GRU with linear_before_reset.
 */
export function pytorchMode(op: RecOp, D: number, acts: readonly string[], o: { clip: boolean; inputForget: boolean; linearBeforeReset: boolean }): RecurrentMode | null {
  if (o.clip || acts.length !== NUM_ACTS[op] * D) return null;
  const all = (want: readonly string[]): boolean => acts.every((act, k) => act.toLowerCase() === want[k % want.length].toLowerCase());
  if (op === 'RNN') return all(['Tanh']) ? 'RNN_TANH' : all(['Relu']) ? 'RNN_RELU' : null;
  if (op === 'GRU') return o.linearBeforeReset && all(DEFAULT_ACTS.GRU) ? 'GRU' : null;
  return !o.inputForget && all(DEFAULT_ACTS.LSTM) ? 'LSTM' : null;
}

// ---- activations ---------------------------------------------------------------------------------

interface ActivationSpec {
  name: string;
  usesAlpha: boolean;
  usesBeta: boolean;
  /** Defaults; undefined = no agreed default (must be given). */
  alpha?: number;
  beta?: number;
  make(alpha: number, beta: number): (x: number) => number;
}

const sigmoidFn = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplusFn = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

const ACTIVATIONS: Record<string, ActivationSpec> = {
  relu: { name: 'Relu', usesAlpha: false, usesBeta: false, make: () => (x) => (x > 0 ? x : 0) },
  tanh: { name: 'Tanh', usesAlpha: false, usesBeta: false, make: () => Math.tanh },
  sigmoid: { name: 'Sigmoid', usesAlpha: false, usesBeta: false, make: () => sigmoidFn },
  affine: { name: 'Affine', usesAlpha: true, usesBeta: true, make: (a, b) => (x) => a * x + b },
  leakyrelu: { name: 'LeakyRelu', usesAlpha: true, usesBeta: false, alpha: 0.01, make: (a) => (x) => (x >= 0 ? x : a * x) },
  thresholdedrelu: { name: 'ThresholdedRelu', usesAlpha: true, usesBeta: false, make: (a) => (x) => (x >= a ? x : 0) },
  scaledtanh: { name: 'ScaledTanh', usesAlpha: true, usesBeta: true, make: (a, b) => (x) => a * Math.tanh(b * x) },
  hardsigmoid: { name: 'HardSigmoid', usesAlpha: true, usesBeta: true, alpha: 0.2, beta: 0.5, make: (a, b) => (x) => Math.min(Math.max(a * x + b, 0), 1) },
  elu: { name: 'Elu', usesAlpha: true, usesBeta: false, alpha: 1, make: (a) => (x) => (x >= 0 ? x : a * (Math.exp(x) - 1)) },
  softsign: { name: 'Softsign', usesAlpha: false, usesBeta: false, make: () => (x) => x / (1 + Math.abs(x)) },
  softplus: { name: 'Softplus', usesAlpha: false, usesBeta: false, make: () => softplusFn },
};

interface Activation {
  name: string;
  f: (x: number) => number;
}

function resolveActivations(ctx: NodeContext, names: string[], alphas: number[], betas: number[]): Activation[] {
  let ai = 0, bi = 0;
  const out = names.map((raw, k) => {
    const spec = ACTIVATIONS[raw.toLowerCase()];
    if (!spec) throw ctx.error(`unsupported activation '${raw}' (activations[${k}]; supported: ${Object.values(ACTIVATIONS).map((s) => s.name).join(', ')})`);
    let alpha = 0, beta = 0;
    if (spec.usesAlpha) {
      if (ai < alphas.length) alpha = alphas[ai++];
      else if (spec.alpha !== undefined) alpha = spec.alpha;
      else throw ctx.error(`activation ${spec.name} (activations[${k}]) needs a value in activation_alpha: runtimes disagree on its default`);
    }
    if (spec.usesBeta) {
      if (bi < betas.length) beta = betas[bi++];
      else if (spec.beta !== undefined) beta = spec.beta;
      else throw ctx.error(`activation ${spec.name} (activations[${k}]) needs a value in activation_beta: runtimes disagree on its default`);
    }
    return { name: spec.name, f: spec.make(alpha, beta) };
  });
  if (ai < alphas.length) throw ctx.error(`activation_alpha has ${alphas.length} values but the activations use ${ai}`);
  if (bi < betas.length) throw ctx.error(`activation_beta has ${betas.length} values but the activations use ${bi}`);
  return out;
}

// ---- compile ---------------------------------------------------------------------------------------

interface RecAttrs {
  op: RecOp;
  hiddenSize: number | undefined;
  direction: 'forward' | 'reverse' | 'bidirectional';
  D: number;
  acts: Activation[];
  clip: number | undefined;
  inputForget: boolean;
  linearBeforeReset: boolean;
  layout: 0 | 1;
  /** recur's fused mode when the attributes match PyTorch semantics, else null. */
  fastMode: RecurrentMode | null;
}

function parseAttrs(ctx: NodeContext, op: RecOp): RecAttrs {
  const a = ctx.attrs;
  const hiddenSize = a.int('hidden_size');
  if (hiddenSize !== undefined && hiddenSize < 1) throw ctx.error(`hidden_size must be positive, got ${hiddenSize}`);
  const direction = a.string('direction', 'forward');
  if (direction !== 'forward' && direction !== 'reverse' && direction !== 'bidirectional') {
    throw ctx.error(`unsupported direction '${direction}' (expected forward, reverse or bidirectional)`);
  }
  const D = direction === 'bidirectional' ? 2 : 1;
  const nAct = NUM_ACTS[op];
  const names = a.strings('activations') ?? Array.from({ length: D }, () => DEFAULT_ACTS[op]).flat();
  if (names.length !== nAct * D) {
    throw ctx.error(`activations must list ${nAct * D} functions (${nAct} per direction, ${D} direction${D > 1 ? 's' : ''}), got ${names.length}: [${names.join(', ')}]`);
  }
  const acts = resolveActivations(ctx, names, a.floats('activation_alpha') ?? [], a.floats('activation_beta') ?? []);
  const clip = a.float('clip');
  if (clip !== undefined && !(clip > 0)) throw ctx.error(`clip must be a positive threshold, got ${clip}`);
  const inputForget = op === 'LSTM' ? a.int('input_forget', 0) !== 0 : false;
  const linearBeforeReset = op === 'GRU' ? a.int('linear_before_reset', 0) !== 0 : false;
  const layout = a.int('layout', 0);
  if (layout !== 0 && layout !== 1) throw ctx.error(`layout must be 0 or 1, got ${layout}`);
  a.done();

  const auto = ctx.opts.recurrentPath !== 'general';
  const fastMode = auto ? pytorchMode(op, D, acts.map((act) => act.name), { clip: clip !== undefined, inputForget, linearBeforeReset }) : null;
  return { op, hiddenSize, direction, D, acts, clip, inputForget, linearBeforeReset, layout: layout as 0 | 1, fastMode };
}

interface RecInputs {
  X: Tensor;
  W: Tensor;
  R: Tensor;
  B: Tensor | null;
  lens: Int32Array | null;
  h0: Tensor | null;
  c0: Tensor | null;
  P: Tensor | null;
  T: number;
  N: number; // batch
  I: number;
  H: number;
  dtype: FloatDType;
}

function checkInputs(ctx: NodeContext, at: RecAttrs, inputs: readonly (Value | null)[]): RecInputs {
  const { op, D, layout } = at;
  const G = cellForFormat('onnx', op).G;
  const X = floatInput(ctx, inputs[0], 0, 'X');
  const W = floatInput(ctx, inputs[1], 1, 'W');
  const R = floatInput(ctx, inputs[2], 2, 'R');
  const opt = (i: number, name: string): Tensor | null => (inputs[i] ? floatInput(ctx, inputs[i], i, name) : null);
  const B = opt(3, 'B');
  const h0 = opt(5, 'initial_h');
  const c0 = op === 'LSTM' ? opt(6, 'initial_c') : null;
  const P = op === 'LSTM' ? opt(7, 'P') : null;
  for (const [t, name] of [[X, 'X'], [W, 'W'], [R, 'R']] as const) {
    if (t.ndim !== 3) throw ctx.error(`${name} must have rank 3, got ${shapeStr(t.shape)}`);
  }
  const [T, N] = layout === 0 ? [X.shape[0], X.shape[1]] : [X.shape[1], X.shape[0]];
  const I = X.shape[2];
  const H = R.shape[2];
  if (at.hiddenSize !== undefined && at.hiddenSize !== H) {
    throw ctx.error(`hidden_size = ${at.hiddenSize} but R has shape ${shapeStr(R.shape)} (hidden size ${H})`);
  }
  if (H < 1) throw ctx.error(`R ${shapeStr(R.shape)} implies hidden size 0`);
  const expect = (t: Tensor | null, shape: number[], name: string, hint: string): void => {
    if (t && (t.ndim !== shape.length || t.shape.some((s, i) => s !== shape[i]))) {
      throw ctx.error(`inconsistent shapes: ${name} must be ${shapeStr(shape)} (${hint}), got ${shapeStr(t.shape)}`);
    }
  };
  expect(W, [D, G * H, I], 'W', `[num_directions, ${G}·hidden_size, input_size]`);
  expect(R, [D, G * H, H], 'R', `[num_directions, ${G}·hidden_size, hidden_size]`);
  expect(B, [D, 2 * G * H], 'B', `[num_directions, ${2 * G}·hidden_size]`);
  const stateShape = layout === 0 ? [D, N, H] : [N, D, H];
  const stateHint = layout === 0 ? '[num_directions, batch_size, hidden_size]' : '[batch_size, num_directions, hidden_size] for layout = 1';
  expect(h0, stateShape, 'initial_h', stateHint);
  expect(c0, stateShape, 'initial_c', stateHint);
  expect(P, [D, 3 * H], 'P', '[num_directions, 3·hidden_size]');
  const dtype = X.dtype;
  for (const t of [W, R, B, h0, c0, P]) if (t && t.dtype !== dtype) throw ctx.error(`inputs mix ${dtype} and ${t.dtype}`);
  let lens: Int32Array | null = null;
  const sl = inputs[4];
  if (sl) {
    if (!(sl instanceof HostInts) || sl.dtype === 'bool') throw ctx.error(`sequence_lens must be an integer tensor, got ${describeValue(sl)}`);
    if (sl.ndim !== 1 || sl.shape[0] !== N) throw ctx.error(`sequence_lens must be [batch_size = ${N}], got ${shapeStr(sl.shape)}`);
    lens = new Int32Array(N);
    for (let b = 0; b < N; b++) {
      const l = sl.data[b];
      if (!(Number.isInteger(l) && l >= 0 && l <= T)) throw ctx.error(`sequence_lens[${b}] = ${l} must be in [0, ${T}] (the sequence length)`);
      lens[b] = l;
    }
  }
  ctx.checkElements([T, D, N, H], 'Y');
  ctx.checkElements([G * H, Math.max(I, H)], 'weights');
  return { X, W, R, B, lens, h0, c0, P, T, N, I, H, dtype };
}

function anyNonZero(t: Tensor): boolean {
  const d = t.toArray();
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) return true;
  return false;
}

/** Compile an RNN, GRU or LSTM node. */
export function compileRecurrent(ctx: NodeContext): Kernel {
  const op = ctx.node.op_type as RecOp;
  ctx.arity(3, op === 'LSTM' ? 8 : 6, op === 'LSTM' ? 3 : 2, 0);
  const at = parseAttrs(ctx, op);
  let cache: { W: Tensor; R: Tensor; B: Tensor | null; params: DirectionParams[] } | null = null;
  let zeroP: Tensor | null = null;

  return (inputs) => {
    const inp = checkInputs(ctx, at, inputs);
    let peepholes = false;
    if (inp.P && inp.P !== zeroP) {
      peepholes = anyNonZero(inp.P);
      if (!peepholes) zeroP = inp.P;
    }
    if (at.fastMode && !peepholes) {
      if (!cache || cache.W !== inp.W || cache.R !== inp.R || cache.B !== inp.B) {
        cache = { W: inp.W, R: inp.R, B: inp.B, params: reorderParams(op, at.D, inp) };
      }
      return runFast(ctx, at, inp, cache.params);
    }
    return runGeneral(ctx, at, inp);
  };
}

// ---- fast path ------------------------------------------------------------------------------------

/** One direction's recur weights as host arrays: the gate blocks of ONNX W, R, B reordered to recur's, B split. */
export interface HostDirection<A extends Float32Array | Float64Array> {
  wih: A;
  whh: A;
  bih: A | null;
  bhh: A | null;
}

/**
 * Direction d of ONNX W [D, G·H, I], R [D, G·H, H], B [D, 2·G·H] (flat host data) with the gate blocks
 * in recur's order (the cell record's mapping); `alloc` makes each destination array.
 */
export function reorderDirection<A extends Float32Array | Float64Array>(
  cell: CellSpec,
  w: ArrayLike<number>,
  r: ArrayLike<number>,
  b: ArrayLike<number> | null,
  d: number,
  H: number,
  I: number,
  alloc: (n: number) => A,
): HostDirection<A> {
  const GH = cell.G * H;
  // one direction's G gate blocks of H rows, each row `cols` wide, from ONNX order to recur's
  const blocks = (src: ArrayLike<number>, srcOffset: number, cols: number): A => reorderGates(src, 'onnx', 'recur', { cell, H, cols, srcOffset, dst: alloc(GH * cols) });
  return {
    wih: blocks(w, d * GH * I, I),
    whh: blocks(r, d * GH * H, H),
    bih: b ? blocks(b, d * 2 * GH, 1) : null,
    bhh: b ? blocks(b, d * 2 * GH + GH, 1) : null,
  };
}

/** Per-direction recur parameters from ONNX W, R, B (gate blocks reordered, B split). */
function reorderParams(op: RecOp, D: number, inp: RecInputs): DirectionParams[] {
  const { W, R, B, H, I, dtype } = inp;
  const be = W.backend;
  const cell = cellForFormat('onnx', op);
  const GH = cell.G * H;
  const w = W.toArray(), r = R.toArray(), b = B ? B.toArray() : null;
  const alloc = (n: number): Float32Array | Float64Array => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
  const tensor = (a: Float32Array | Float64Array, cols: number): Tensor => new Tensor(be.fromArray(a, dtype), cols === 1 ? [GH] : [GH, cols]);
  const params: DirectionParams[] = [];
  for (let d = 0; d < D; d++) {
    const h = reorderDirection(cell, w, r, b, d, H, I, alloc);
    params.push({
      weightIh: tensor(h.wih, I),
      weightHh: tensor(h.whh, H),
      biasIh: h.bih ? tensor(h.bih, 1) : null,
      biasHh: h.bhh ? tensor(h.bhh, 1) : null,
    });
  }
  return params;
}

function runFast(ctx: NodeContext, at: RecAttrs, inp: RecInputs, params: DirectionParams[]): (Value | null)[] {
  const { T, N, H } = inp;
  const D = at.D;
  const toTimeMajor = (t: Tensor | null): Tensor | null => (t && at.layout === 1 ? permute(t, [1, 0, 2]) : t);
  const x = toTimeMajor(inp.X)!;
  const h0 = toTimeMajor(inp.h0), c0 = toTimeMajor(inp.c0);
  // direction="reverse": the layer's own reverse walk (within each sequence's length, outputs in time order)
  const dirs = at.direction === 'reverse' ? [{ ...params[0], reverse: true }] : params;
  const r = recurrentLayer(at.fastMode!, x, dirs, h0, at.op === 'LSTM' ? c0 : null, inp.lens);
  const outs: (Value | null)[] = [null, null, null];
  if (ctx.wantsOutput(0)) {
    if (D === 1) {
      // [T, B, H] is already [T, 1, B, H] in memory; layout 1 needs one transpose
      outs[0] = at.layout === 0 ? reshape(r.y, [T, 1, N, H]) : reshape(permute(r.y, [1, 0, 2]), [N, T, 1, H]);
    } else {
      const y4 = reshape(r.y, [T, N, D, H]);
      outs[0] = permute(y4, at.layout === 0 ? [0, 2, 1, 3] : [1, 0, 2, 3]);
    }
  }
  const state = (s: Tensor | null): Tensor | null => (s && at.layout === 1 ? permute(s, [1, 0, 2]) : s);
  if (ctx.wantsOutput(1)) outs[1] = state(r.hN);
  if (ctx.wantsOutput(2)) outs[2] = state(r.cN);
  return outs.slice(0, ctx.outputs.length);
}

// ---- general path ---------------------------------------------------------------------------------

function runGeneral(ctx: NodeContext, at: RecAttrs, inp: RecInputs): (Value | null)[] {
  const { op, D, layout, acts, clip, inputForget, linearBeforeReset } = at;
  const { T, N, I, H, dtype, lens } = inp;
  const G = cellForFormat('onnx', op).G;
  const GH = G * H;
  const nAct = NUM_ACTS[op];
  const X = inp.X.toArray(), W = inp.W.toArray(), R = inp.R.toArray();
  const Bv = inp.B ? inp.B.toArray() : null;
  const P = inp.P ? inp.P.toArray() : null;
  const h0 = inp.h0 ? inp.h0.toArray() : null;
  const c0 = inp.c0 ? inp.c0.toArray() : null;
  const wantY = ctx.wantsOutput(0);
  const Y = new Float64Array(wantY ? T * D * N * H : 0);
  const Yh = new Float64Array(D * N * H);
  const Yc = new Float64Array(D * N * H);
  const xAt = (t: number, b: number): number => (layout === 0 ? (t * N + b) * I : (b * T + t) * I);
  const yAt = (t: number, d: number, b: number): number => (layout === 0 ? ((t * D + d) * N + b) * H : ((b * T + t) * D + d) * H);
  const sAt = (d: number, b: number): number => (layout === 0 ? (d * N + b) * H : (b * D + d) * H);
  const cl = clip === undefined ? (v: number): number => v : (v: number): number => (v > clip ? clip : v < -clip ? -clip : v);

  const h = new Float64Array(H), c = new Float64Array(H);
  const gx = new Float64Array(GH), gh = new Float64Array(GH);
  const z = new Float64Array(H), rg = new Float64Array(H), rh = new Float64Array(H);

  // gx = W_d · x + Wb_d (all gates); gh[rows lo…hi) = R_d · v + Rb_d
  const inputProj = (d: number, xo: number): void => {
    const wo = d * GH * I, bo = d * 2 * GH;
    for (let j = 0; j < GH; j++) {
      let s = Bv ? Bv[bo + j] : 0;
      const row = wo + j * I;
      for (let i = 0; i < I; i++) s += W[row + i] * X[xo + i];
      gx[j] = s;
    }
  };
  const recProj = (d: number, v: Float64Array, lo: number, hi: number): void => {
    const ro = d * GH * H, bo = d * 2 * GH + GH;
    for (let j = lo; j < hi; j++) {
      let s = Bv ? Bv[bo + j] : 0;
      const row = ro + j * H;
      for (let k = 0; k < H; k++) s += R[row + k] * v[k];
      gh[j] = s;
    }
  };

  for (let d = 0; d < D; d++) {
    const reverse = at.direction === 'reverse' || d === 1;
    const fAct = acts[d * nAct].f;
    const gAct = nAct > 1 ? acts[d * nAct + 1].f : fAct;
    const hAct = nAct > 2 ? acts[d * nAct + 2].f : fAct;
    const po = d * 3 * H;
    for (let b = 0; b < N; b++) {
      const L = lens ? lens[b] : T;
      const so = sAt(d, b);
      for (let k = 0; k < H; k++) {
        h[k] = h0 ? h0[so + k] : 0;
        c[k] = c0 ? c0[so + k] : 0;
      }
      for (let s = 0; s < L; s++) {
        const t = reverse ? L - 1 - s : s;
        inputProj(d, xAt(t, b));
        if (op === 'RNN') {
          recProj(d, h, 0, H);
          for (let k = 0; k < H; k++) h[k] = fAct(cl(gx[k] + gh[k]));
        } else if (op === 'LSTM') {
          // ONNX gate blocks: i = 0, o = 1, f = 2, c = 3; P blocks: i = 0, o = 1, f = 2
          recProj(d, h, 0, GH);
          for (let k = 0; k < H; k++) {
            const ig = fAct(cl(gx[k] + gh[k] + (P ? P[po + k] * c[k] : 0)));
            const fg = inputForget ? 1 - ig : fAct(cl(gx[2 * H + k] + gh[2 * H + k] + (P ? P[po + 2 * H + k] * c[k] : 0)));
            const cc = gAct(cl(gx[3 * H + k] + gh[3 * H + k]));
            const cn = fg * c[k] + ig * cc;
            const og = fAct(cl(gx[H + k] + gh[H + k] + (P ? P[po + H + k] * cn : 0)));
            c[k] = cn;
            h[k] = og * hAct(cn);
          }
        } else {
          // ONNX gate blocks: z = 0, r = 1, h = 2
          if (linearBeforeReset) recProj(d, h, 0, GH);
          else recProj(d, h, 0, 2 * H);
          for (let k = 0; k < H; k++) {
            z[k] = fAct(cl(gx[k] + gh[k]));
            rg[k] = fAct(cl(gx[H + k] + gh[H + k]));
          }
          if (!linearBeforeReset) {
            for (let k = 0; k < H; k++) rh[k] = rg[k] * h[k];
            recProj(d, rh, 2 * H, GH);
          }
          for (let k = 0; k < H; k++) {
            const pre = linearBeforeReset ? gx[2 * H + k] + rg[k] * gh[2 * H + k] : gx[2 * H + k] + gh[2 * H + k];
            const hh = gAct(cl(pre));
            h[k] = (1 - z[k]) * hh + z[k] * h[k];
          }
        }
        if (wantY) Y.set(h, yAt(t, d, b));
      }
      Yh.set(h, so);
      if (op === 'LSTM') Yc.set(c, so);
    }
  }
  const be = inp.X.backend;
  const stateShape = layout === 0 ? [D, N, H] : [N, D, H];
  const outs: (Value | null)[] = [
    wantY ? new Tensor(be.fromArray(Y, dtype), layout === 0 ? [T, D, N, H] : [N, T, D, H]) : null,
    ctx.wantsOutput(1) ? new Tensor(be.fromArray(Yh, dtype), stateShape) : null,
    ctx.wantsOutput(2) ? new Tensor(be.fromArray(Yc, dtype), stateShape) : null,
  ];
  return outs.slice(0, ctx.outputs.length);
}
