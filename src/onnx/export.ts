/**
 * `exportOnnx(module, spec)`: write a recur model as an ONNX model (opset 14, IR version 7) that
 * onnxruntime and other ONNX runtimes run, and that `loadOnnx` reads back.
 *
 * ## The exportable model
 *
 * An exportable model is a pipeline of steps applied to one input, described by an `ExportSpec`:
 *
 *     [Embedding] → RNN | LSTM | GRU (one or more) → [Linear …] → [Softmax | LogSoftmax]
 *
 * with an optional `finalState` step after a recurrent layer that turns the sequence into one
 * vector per sample (many-to-one). Steps name sub-modules of `module` by their path (the prefix of
 * their parameters in `namedParameters()`, '' for the module itself) or are operations:
 *
 *   - `'embedding'` (an Embedding): token ids → vectors (ONNX Gather). The graph input is then
 *     int64 ids [T, B] (or [B, T] with batchFirst); otherwise it is float features [T, B, I].
 *   - `'lstm'` (an RNN, LSTM or GRU with any numLayers, bidirectional or not): one ONNX RNN / GRU /
 *     LSTM node per layer, gates reordered to ONNX order (LSTM i,o,f,c; GRU z,r,h with
 *     linear_before_reset = 1), B = [b_ih ‖ b_hh], direction "bidirectional" for two directions;
 *     between layers Y [T, D, B, H] becomes [T, B, D·H] (Squeeze, or Transpose + Reshape).
 *   - `'head'` (a Linear): y = x·Wᵀ + b (Gemm on vectors, MatMul + Add on sequences).
 *   - `{ op: 'finalState' }`: the last recurrent layer's final hidden state with its directions
 *     concatenated, [B, D·H] — the state at each sample's last real step when lengths are given.
 *   - `{ op: 'meanOverTime' }`: the mean of the sequence over time, [B, F] — over each sample's
 *     real steps when lengths are given (Σ_t x_t / length; padded steps are 0).
 *   - `{ op: 'maxOverTime' }`: each feature's maximum over time, [B, F] — over each sample's real
 *     steps when lengths are given (Where(t < length, x, −∞), then ReduceMax: a padded 0 never wins).
 *   - `{ op: 'meanMaxOverTime' }`: the two side by side, [B, 2·F] (a classifier's 'mean+max').
 *   - `{ op: 'softmax' }`, `{ op: 'logSoftmax' }`: over the last axis.
 *
 * Options: `batchFirst` (input and sequence output [B, T, …]; done with Transpose nodes, because
 * onnxruntime's recurrent kernels do not implement layout = 1), `lengths` (an int32 input
 * `lengths` [B] fed to every recurrent node's sequence_lens), `state` (initial-state inputs `h0`,
 * `c0` [numLayers·D, B, H] and final-state outputs `hn`, `cn`, for streaming; prefixed with the
 * module path when the pipeline has more than one recurrent module). Batch size and sequence
 * length are symbolic ('B', 'T') in the graph.
 *
 * A character language model (CharLM: embedding → lstm → head) is `charLMExportSpec()`; a sequence
 * classifier is e.g. `{ steps: ['embedding', 'gru', { op: 'finalState' }, 'fc', { op: 'softmax' }],
 * lengths: true }`. `referenceForward(module, spec, inputs)` computes what the exported graph
 * computes with recur's own modules (in eval mode), which is what the tests hold the exported
 * graph to, in onnxruntime and in recur's interpreter.
 *
 * Steps `{ op: 'relu' | 'tanh' | 'sigmoid' }` (or a Sequential's Lambda of that label) apply an
 * activation; a Dropout step is the identity. With `vectorInput` the input is one float vector per
 * sample [B, I] (feed-forward models). Spec helpers for the task models: `classifierExportSpec`
 * (RNNClassifier, with lengths), `feedForwardExportSpec` (MLPClassifier), `sequentialExportSpec`.
 * The models whose graph is not such a pipeline have their own exporters: `exportNameGen` (the
 * condition's embedding broadcast over time), `exportForecaster` (the level-and-change input
 * and the residual output), and for the seq2seq model two graphs, `exportSeq2SeqEncoder` (source →
 * attention memory and initial decoder state) and `exportSeq2SeqDecoderStep` (one token with
 * attention → logits and the next state), which a caller runs in a loop (greedy or beam search).
 *
 * Dropout is an identity at inference and is not exported; the model is exported as in `eval()`.
 */
import { Tensor, shapeStr, tensor } from '../tensor/tensor.ts';
import { noGrad } from '../autograd/tape.ts';
import { concat, permute, reshape } from '../autograd/ops/shape.ts';
import { logSoftmax, softmax } from '../autograd/ops/nn.ts';
import { mul, relu, sigmoid, sum, tanh } from '../autograd/ops/elementwise.ts';
import { Module } from '../nn/module.ts';
import { Dropout, Embedding, Lambda, Linear, Sequential } from '../nn/layers.ts';
import { RecurrentBase, type CellBase } from '../nn/recurrent.ts';
import { AttrType, DataType, OnnxError, encodeModelProto, type AttributeProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.ts';
import { tensorToProto, type OnnxTensor } from './tensor.ts';
import { CELLS, reorderGates, type CellSpec } from '../cells/recurrent.ts';
import type { OnnxInput } from './model.ts';
import { RNNClassifier, type Pooling } from '../models/classifier.ts';
import { MLPClassifier } from '../models/feedforward.ts';
import { ConditionalCharRNN } from '../models/namegen.ts';
import { RNNForecaster } from '../models/forecaster.ts';
import { Seq2Seq } from '../models/seq2seq.ts';
import { AdditiveAttention, LuongAttention, MASK_VALUE } from '../nn/attention.ts';

export const EXPORT_OPSET = 14;
export const EXPORT_IR_VERSION = 7;

export type ExportStep = string | Module | { op: 'finalState' } | { op: 'meanOverTime' } | { op: 'maxOverTime' } | { op: 'meanMaxOverTime' } | { op: 'softmax' } | { op: 'logSoftmax' } | { op: 'relu' } | { op: 'tanh' } | { op: 'sigmoid' };

/** The pooling steps over time of ExportStep, by the classifier pooling each computes (models/classifier.ts). */
const OVER_TIME_OPS = { meanOverTime: 'mean', maxOverTime: 'max', meanMaxOverTime: 'mean+max' } as const satisfies Record<Extract<ExportStep, { op: string }>['op'] & `${string}OverTime`, Pooling>;
type OverTimeOp = keyof typeof OVER_TIME_OPS;
const isOverTime = (s: unknown): s is OverTimeOp => typeof s === 'string' && Object.hasOwn(OVER_TIME_OPS, s);

/** The activations a pipeline step (or a Sequential's Lambda of that label) can be. */
const ACTIVATION_OPS = { relu: 'Relu', tanh: 'Tanh', sigmoid: 'Sigmoid' } as const;
type ActivationName = keyof typeof ACTIVATION_OPS;
const isActivation = (s: unknown): s is ActivationName => typeof s === 'string' && Object.hasOwn(ACTIVATION_OPS, s);

export interface ExportSpec {
  /** The pipeline, in order (see the file comment). */
  steps: ExportStep[];
  /** Input (and sequence output) batch-major [B, T, …] instead of time-major [T, B, …] (default: the first recurrent module's batchFirst). */
  batchFirst?: boolean;
  /**
   * The input is one float vector per sample [B, I] (a feed-forward model: Linear and activation
   * steps only), not a sequence (default false).
   */
  vectorInput?: boolean;
  /** Add an int32 input `lengths` [B] (per-sample valid lengths, ONNX sequence_lens) (default false). */
  lengths?: boolean;
  /** Add initial-state inputs h0 (c0) and final-state outputs hn (cn) (default false). */
  state?: boolean;
  /** Graph input / output names (defaults 'input', 'output'). */
  inputName?: string;
  outputName?: string;
  /**
   * Float type of the graph (default 'float32': float64 parameters are rounded, because
   * onnxruntime has no double kernels for LSTM and RNN). 'float64' keeps double precision for
   * runtimes that support it (recur's interpreter does).
   */
  dtype?: 'float32' | 'float64';
  /** Graph name (default 'recur'). */
  graphName?: string;
  /** Extra model metadata (metadata_props). */
  metadata?: Record<string, string>;
}

/** The spec for recur's CharLM (models/charlm.ts): ids [T, B] → logits [T, B, V], with state. */
export function charLMExportSpec(opts: { state?: boolean; softmax?: boolean; cell?: 'lstm' | 'gru' | 'rnn' } = {}): ExportSpec {
  return {
    // the recurrent module is named after its cell (models/charlm.ts)
    steps: ['embedding', opts.cell ?? 'lstm', 'head', ...(opts.softmax ? [{ op: 'softmax' } as const] : [])],
    state: opts.state ?? true,
  };
}

/** A sequence classifier (models/classifier.ts): ids [T, B] + lengths [B] → logits [B, C] (probabilities with softmax). */
export function classifierExportSpec(model: RNNClassifier, opts: { softmax?: boolean } = {}): ExportSpec {
  if (!(model instanceof RNNClassifier)) throw new OnnxError('classifierExportSpec: expected an RNNClassifier');
  const p = model.opts.pooling;
  const pool = p === 'last' ? { op: 'finalState' as const } : { op: (Object.keys(OVER_TIME_OPS) as OverTimeOp[]).find((op) => OVER_TIME_OPS[op] === p)! };
  return {
    steps: ['embedding', 'rnn', pool, 'drop', 'head', ...(opts.softmax ? [{ op: 'softmax' } as const] : [])],
    lengths: true,
  };
}

/** The feed-forward baseline (models/feedforward.ts): features [B, F] → logits [B, C]. */
export function feedForwardExportSpec(model: MLPClassifier, opts: { softmax?: boolean } = {}): ExportSpec {
  if (!(model instanceof MLPClassifier)) throw new OnnxError('feedForwardExportSpec: expected an MLPClassifier');
  return { steps: ['hidden', { op: 'relu' }, 'drop', 'head', ...(opts.softmax ? [{ op: 'softmax' } as const] : [])], vectorInput: true };
}

/**
 * A Sequential of Embedding / Linear / RNN / LSTM / GRU / Dropout / activation Lambdas, in order.
 * The input is a vector per sample [B, I] when the first layer is a Linear, else a sequence.
 */
export function sequentialExportSpec(model: Sequential, opts: Omit<ExportSpec, 'steps'> = {}): ExportSpec {
  if (!(model instanceof Sequential)) throw new OnnxError('sequentialExportSpec: expected a Sequential');
  const first = model.layers.find((m) => !(m instanceof Dropout));
  return { vectorInput: first instanceof Linear, ...opts, steps: [...model.layers] };
}

// ---- resolving the pipeline -------------------------------------------------------------------------

type Resolved =
  | { kind: 'embedding'; path: string; m: Embedding }
  | { kind: 'recurrent'; path: string; m: RecurrentBase }
  | { kind: 'linear'; path: string; m: Linear }
  | { kind: 'finalState' }
  | { kind: 'overTime'; pool: (typeof OVER_TIME_OPS)[OverTimeOp] }
  | { kind: 'softmax'; log: boolean }
  | { kind: 'activation'; fn: ActivationName }
  | { kind: 'identity' };

const SPEC_KEYS = ['steps', 'vectorInput', 'batchFirst', 'lengths', 'state', 'dtype', 'inputName', 'outputName', 'graphName', 'metadata'];

function resolve(module: Module, spec: ExportSpec): Resolved[] {
  if (!(module instanceof Module)) throw new OnnxError('exportOnnx: the first argument must be a recur Module');
  if (spec === null || typeof spec !== 'object') throw new OnnxError('exportOnnx: spec must be an object { steps: [...] }');
  for (const k of Object.keys(spec)) if (!SPEC_KEYS.includes(k)) throw new OnnxError(`exportOnnx: unknown spec option '${k}' (known: ${SPEC_KEYS.join(', ')})`);
  if (!Array.isArray(spec.steps) || spec.steps.length === 0) throw new OnnxError('exportOnnx: spec.steps must be a non-empty array');
  const modules = module.namedModules();
  const byPath = new Map(modules);
  const pathOf = new Map(modules.map(([p, m]) => [m, p]));
  return spec.steps.map((step, i): Resolved => {
    if (step !== null && typeof step === 'object' && !(step instanceof Module)) {
      const op = (step as { op?: unknown }).op;
      if (op === 'finalState') return { kind: 'finalState' };
      if (isOverTime(op)) return { kind: 'overTime', pool: OVER_TIME_OPS[op] };
      if (op === 'softmax' || op === 'logSoftmax') return { kind: 'softmax', log: op === 'logSoftmax' };
      if (isActivation(op)) return { kind: 'activation', fn: op };
      throw new OnnxError(`exportOnnx: steps[${i}]: unknown op ${JSON.stringify(op)} (known: finalState, ${Object.keys(OVER_TIME_OPS).join(', ')}, softmax, logSoftmax, relu, tanh, sigmoid)`);
    }
    let m: Module | undefined, path: string;
    if (typeof step === 'string') {
      m = byPath.get(step);
      path = step;
      if (!m) throw new OnnxError(`exportOnnx: steps[${i}]: no sub-module '${step}' (modules: ${modules.map(([p]) => `'${p}'`).join(', ')})`);
    } else {
      m = step;
      path = pathOf.get(step) ?? `step${i}`;
    }
    if (m instanceof Embedding) return { kind: 'embedding', path, m };
    if (m instanceof RecurrentBase) return { kind: 'recurrent', path, m };
    if (m instanceof Linear) return { kind: 'linear', path, m };
    if (m instanceof Lambda && isActivation(m.label)) return { kind: 'activation', fn: m.label };
    // dropout is the identity at inference
    if (m instanceof Dropout) return { kind: 'identity' };
    throw new OnnxError(`exportOnnx: steps[${i}] ('${path}') is a ${m instanceof Lambda ? `Lambda labelled '${m.label}'` : m.constructor.name}; exportable modules are Embedding, Linear, RNN, LSTM, GRU, Dropout, and Lambdas labelled relu, tanh or sigmoid`);
  });
}

/** Check the pipeline's order and shapes; returns whether the input is token ids. */
function checkPipeline(steps: Resolved[], spec: ExportSpec): { tokens: boolean; recurrents: number } {
  let kind: 'ids' | 'seq' | 'vec' = spec.vectorInput ? 'vec' : steps[0].kind === 'embedding' ? 'ids' : 'seq';
  let width: number | null = null;
  let lastRecurrent = false;
  let recurrents = 0;
  steps.forEach((s, i) => {
    const where = `exportOnnx: steps[${i}]${'path' in s ? ` ('${s.path}')` : ''}`;
    const need = (w: number): void => {
      if (width !== null && width !== w) throw new OnnxError(`${where}: expects features of size ${w}, but the previous step produces ${width}`);
    };
    switch (s.kind) {
      case 'embedding':
        if (i !== 0 || spec.vectorInput) throw new OnnxError(`${where}: an Embedding must be the first step (of a pipeline without vectorInput)`);
        kind = 'seq';
        width = s.m.embeddingDim;
        break;
      case 'recurrent':
        if (kind !== 'seq') throw new OnnxError(`${where}: a recurrent layer needs a sequence input (it comes after finalState)`);
        need(s.m.inputSize);
        width = s.m.hiddenSize * s.m.numDirections;
        lastRecurrent = true;
        recurrents++;
        return;
      case 'linear':
        if (kind === 'ids') throw new OnnxError(`${where}: a Linear cannot take token ids; start with an Embedding`);
        need(s.m.inFeatures);
        width = s.m.outFeatures;
        break;
      case 'finalState':
        if (!lastRecurrent) throw new OnnxError(`${where}: finalState must directly follow a recurrent layer`);
        kind = 'vec';
        break;
      case 'overTime':
        if (kind !== 'seq') throw new OnnxError(`${where}: a pooling over time needs a sequence`);
        kind = 'vec';
        if (s.pool === 'mean+max' && width !== null) width *= 2;
        break;
      case 'softmax':
      case 'activation':
        if (kind === 'ids') throw new OnnxError(`${where}: ${s.kind} needs float inputs`);
        break;
      case 'identity':
        return;
    }
    lastRecurrent = false;
  });
  if (spec.lengths && recurrents === 0) throw new OnnxError('exportOnnx: lengths needs a recurrent layer to apply to');
  if (spec.state && recurrents === 0) throw new OnnxError('exportOnnx: state needs a recurrent layer');
  if (spec.vectorInput && (spec.batchFirst || spec.state)) throw new OnnxError('exportOnnx: vectorInput takes no batchFirst or state (there is no time axis)');
  return { tokens: steps[0].kind === 'embedding', recurrents };
}

/** spec.batchFirst, defaulting to the first recurrent module's own batchFirst. */
function batchFirstOf(steps: Resolved[], spec: ExportSpec): boolean {
  if (spec.batchFirst !== undefined) return spec.batchFirst;
  const r = steps.find((s) => s.kind === 'recurrent');
  return r && r.kind === 'recurrent' ? r.m.batchFirst : false;
}

/** The ONNX operator for a layer's cell (from its record), and the RNN op's activation. */
function modeInfo(m: Pick<RecurrentBase, 'mode'>): { op: string; cell: CellSpec; activation?: string } {
  const cell = CELLS[m.mode];
  if (!cell.onnx) throw new OnnxError(`exportOnnx: ONNX has no operator for ${m.mode} layers`);
  const activation = m.mode === 'RNN_TANH' ? 'Tanh' : m.mode === 'RNN_RELU' ? 'Relu' : undefined;
  return { op: cell.onnx.name, cell, activation };
}

function stateNames(path: string, multi: boolean): { h0: string; c0: string; hn: string; cn: string } {
  const p = multi ? `${path}.` : '';
  return { h0: `${p}h0`, c0: `${p}c0`, hn: `${p}hn`, cn: `${p}cn` };
}

// ---- graph building -------------------------------------------------------------------------------

const attr = {
  int: (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints }),
  string: (name: string, s: string): AttributeProto => ({ name, type: AttrType.STRING, s: new TextEncoder().encode(s) }),
  strings: (name: string, ss: string[]): AttributeProto => ({ name, type: AttrType.STRINGS, strings: ss.map((s) => new TextEncoder().encode(s)) }),
};

type Dim = number | string;

function valueInfo(name: string, elemType: number, dims: Dim[]): ValueInfoProto {
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } };
}

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly names = new Set<string>();

  unique(base: string): string {
    let n = base, k = 1;
    while (this.names.has(n)) n = `${base}_${k++}`;
    this.names.add(n);
    return n;
  }

  reserve(name: string): string {
    if (this.names.has(name)) throw new OnnxError(`exportOnnx: the name '${name}' is used twice`);
    this.names.add(name);
    return name;
  }

  init(name: string, t: OnnxTensor): string {
    const n = this.reserve(name);
    this.initializers.push(tensorToProto(t, n));
    return n;
  }

  private readonly intConsts = new Map<string, string>();

  /** A small int64 initializer (shared between nodes that need the same values). */
  int64s(name: string, values: number[]): string {
    const key = `${name}:${values.join(',')}`;
    const known = this.intConsts.get(key);
    if (known) return known;
    const n = this.unique(name);
    this.intConsts.set(key, n);
    this.initializers.push(tensorToProto({ dtype: 'int64', shape: [values.length], data: Float64Array.from(values) }, n));
    return n;
  }

  /** A scalar initializer (shape []) under a fresh name from `name`. */
  scalar(name: string, dtype: OnnxTensor['dtype'], value: number): string {
    const n = this.unique(name);
    this.initializers.push(tensorToProto({ dtype, shape: [], data: Float64Array.of(value) }, n));
    return n;
  }

  node(op: string, inputs: string[], outputs: string[], attributes: AttributeProto[] = [], name?: string): string[] {
    this.nodes.push({ op_type: op, name: name ?? this.unique(`${op}_${this.nodes.length}`), input: inputs, output: outputs, attribute: attributes });
    return outputs;
  }

  /** One-output node with a generated output name. */
  op(op: string, inputs: string[], attributes: AttributeProto[] = [], out?: string): string {
    return this.node(op, inputs, [out ?? this.unique(`${op.toLowerCase()}_${this.nodes.length}`)], attributes)[0];
  }
}

/** The int64 steps 0 … T−1 along x's first axis, [T] (T read from the graph, where it is symbolic). */
function stepRange(g: GraphBuilder, x: string): string {
  const T = g.op('Squeeze', [g.op('Gather', [g.op('Shape', [x]), g.int64s('zero', [0])], [attr.int('axis', 0)]), g.int64s('axes0', [0])]);
  return g.op('Range', [g.scalar('range_start', 'int64', 0), T, g.scalar('range_step', 'int64', 1)]);
}

function paramTensor(t: Tensor, dtype: 'float32' | 'float64'): OnnxTensor {
  const d = t.toArray();
  return { dtype, shape: [...t.shape], data: dtype === 'float32' ? Float32Array.from(d) : Float64Array.from(d) };
}

/**
 * One ONNX RNN / GRU / LSTM node per layer of `m` reading x [T, B, I] (time-major), gates in ONNX
 * order; returns the top layer's output [T, B, D·H] and each layer's Y_h (Y_c) [D, B, H]. h0 / c0:
 * names of [L·D, B, H] initial states ('' for zeros); lengths: the sequence_lens input or ''.
 */
/** What emitRecurrent reads of a layer: a RecurrentBase, or a single cell seen as a one-layer, one-direction layer. */
type RecurrentWeights = Pick<RecurrentBase, 'mode' | 'inputSize' | 'hiddenSize' | 'numLayers' | 'numDirections' | 'bias' | 'cells'>;

function cellAsLayer(c: CellBase): RecurrentWeights {
  return { mode: c.mode, inputSize: c.inputSize, hiddenSize: c.hiddenSize, numLayers: 1, numDirections: 1, bias: c.params.biasIh !== null, cells: [[c.params]] };
}

function emitRecurrent(g: GraphBuilder, m: RecurrentWeights, x: string, o: { dtype: 'float32' | 'float64'; path: string; lengths: string; h0: string; c0: string }): { y: string; hn: string[]; cn: string[] } {
  const { dtype, path, lengths } = o;
  const { op, cell, activation } = modeInfo(m);
  const H = m.hiddenSize, D = m.numDirections, L = m.numLayers;
  const GH = cell.G * H;
  const pre = path ? `${path}.` : '';
  let cur = x;
  const hNames: string[] = [], cNames: string[] = [];
  for (let l = 0; l < L; l++) {
    const I = l === 0 ? m.inputSize : H * D;
    const mk = (n: number): Float32Array | Float64Array => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
    const W = mk(D * GH * I), R = mk(D * GH * H), B = mk(D * 2 * GH);
    for (let d = 0; d < D; d++) {
      const p = m.cells[l][d];
      const toOnnx = (t: Tensor, cols: number, dst: Float32Array | Float64Array, dstOffset: number): void => {
        reorderGates(t.toArray(), 'recur', 'onnx', { cell, H, cols, dst, dstOffset });
      };
      toOnnx(p.weightIh, I, W, d * GH * I);
      toOnnx(p.weightHh, H, R, d * GH * H);
      if (p.biasIh) toOnnx(p.biasIh, 1, B, d * 2 * GH);
      if (p.biasHh) toOnnx(p.biasHh, 1, B, d * 2 * GH + GH);
    }
    const wN = g.init(`${pre}W_l${l}`, { dtype, shape: [D, GH, I], data: W });
    const rN = g.init(`${pre}R_l${l}`, { dtype, shape: [D, GH, H], data: R });
    const bN = m.bias ? g.init(`${pre}B_l${l}`, { dtype, shape: [D, 2 * GH], data: B }) : '';
    const sliceState = (name: string): string => (L === 1 ? name : g.op('Slice', [name, g.int64s('starts', [l * D]), g.int64s('ends', [(l + 1) * D]), g.int64s('axes', [0])]));
    const h0 = o.h0 ? sliceState(o.h0) : '';
    const c0 = o.c0 && op === 'LSTM' ? sliceState(o.c0) : '';
    const nodeIn = [cur, wN, rN, bN, lengths, h0];
    if (op === 'LSTM') nodeIn.push(c0);
    while (nodeIn[nodeIn.length - 1] === '') nodeIn.pop();
    const base = `${path || op.toLowerCase()}.l${l}`;
    const y = g.unique(`${base}.Y`), yh = g.unique(`${base}.Y_h`), yc = g.unique(`${base}.Y_c`);
    const attrs: AttributeProto[] = [attr.int('hidden_size', H)];
    if (D === 2) attrs.push(attr.string('direction', 'bidirectional'));
    if (activation) attrs.push(attr.strings('activations', new Array<string>(D).fill(activation)));
    if (op === 'GRU') attrs.push(attr.int('linear_before_reset', 1));
    g.node(op, nodeIn, op === 'LSTM' ? [y, yh, yc] : [y, yh], attrs, g.unique(`${base}`));
    hNames.push(yh);
    cNames.push(yc);
    // Y [T, D, B, H] → [T, B, D·H]
    cur = D === 1
      ? g.op('Squeeze', [y, g.int64s('axes1', [1])], [], g.unique(`${base}.output`))
      : g.op('Reshape', [g.op('Transpose', [y], [attr.ints('perm', [0, 2, 1, 3])]), g.int64s('shape_tb_flat', [0, 0, -1])], [], g.unique(`${base}.output`));
  }
  return { y: cur, hn: hNames, cn: cNames };
}

/** y = x·Wᵀ + b: Gemm on vectors [B, F], MatMul (+ Add) on sequences. */
function emitLinear(g: GraphBuilder, m: Linear, x: string, vec: boolean, dtype: 'float32' | 'float64', path: string): string {
  const pre = path ? `${path}.` : '';
  const w = g.init(`${pre}weight`, paramTensor(m.weight, dtype));
  const b = m.bias ? g.init(`${pre}bias`, paramTensor(m.bias, dtype)) : null;
  const out = g.unique(`${path || 'linear'}.output`);
  if (vec) return g.op('Gemm', b ? [x, w, b] : [x, w], [attr.int('transB', 1)], out);
  const wt = g.op('Transpose', [w], [attr.ints('perm', [1, 0])], g.unique(`${pre}weight_t`));
  return b ? g.op('Add', [g.op('MatMul', [x, wt]), b], [], out) : g.op('MatMul', [x, wt], [], out);
}

/** Serialize a recur module as an ONNX model (see the file comment for the spec). */
export function exportOnnx(module: Module, spec: ExportSpec): Uint8Array {
  return encodeModelProto(buildOnnxModel(module, spec));
}

/** The ModelProto `exportOnnx` encodes (for inspection). */
export function buildOnnxModel(module: Module, spec: ExportSpec): ModelProto {
  const steps = resolve(module, spec);
  const { tokens, recurrents } = checkPipeline(steps, spec);
  const { dtype, elem } = graphDType(spec.dtype ?? 'float32', 'exportOnnx');
  const g = new GraphBuilder();
  const inputs: ValueInfoProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const bf = batchFirstOf(steps, spec);

  const inputName = g.reserve(spec.inputName ?? 'input');
  const outputName = spec.outputName ?? 'output';
  const firstModule = steps.find((s) => s.kind === 'recurrent' || s.kind === 'linear' || s.kind === 'embedding');
  const firstIn = firstModule?.kind === 'recurrent' ? firstModule.m.inputSize : firstModule?.kind === 'linear' ? firstModule.m.inFeatures : 0;
  inputs.push(tokens
    ? valueInfo(inputName, DataType.INT64, bf ? ['B', 'T'] : ['T', 'B'])
    : spec.vectorInput ? valueInfo(inputName, elem, ['B', firstIn])
      : valueInfo(inputName, elem, bf ? ['B', 'T', firstIn] : ['T', 'B', firstIn]));
  const lengthsName = spec.lengths ? g.reserve('lengths') : '';
  if (spec.lengths) inputs.push(valueInfo(lengthsName, DataType.INT32, ['B']));

  // Internally everything is time-major: [T, B] ids, [T, B, F] sequences, [B, F] vectors.
  let cur = inputName;
  let kind = (tokens ? 'ids' : spec.vectorInput ? 'vec' : 'seq') as 'ids' | 'seq' | 'vec';
  if (bf) cur = g.op('Transpose', [cur], [attr.ints('perm', tokens ? [1, 0] : [1, 0, 2])], g.unique('input_time_major'));
  let width = firstIn;
  let lastY_h = null as { names: string[]; D: number; H: number } | null;
  const multi = recurrents > 1;

  for (const s of steps) {
    switch (s.kind) {
      case 'embedding': {
        const w = g.init(`${s.path ? `${s.path}.` : ''}weight`, paramTensor(s.m.weight, dtype));
        cur = g.op('Gather', [w, cur], [attr.int('axis', 0)], g.unique(`${s.path || 'embedding'}.output`));
        kind = 'seq';
        width = s.m.embeddingDim;
        break;
      }
      case 'linear': {
        cur = emitLinear(g, s.m, cur, kind === 'vec', dtype, s.path);
        width = s.m.outFeatures;
        break;
      }
      case 'softmax':
        cur = g.op(s.log ? 'LogSoftmax' : 'Softmax', [cur], [attr.int('axis', -1)]);
        break;
      case 'activation':
        cur = g.op(ACTIVATION_OPS[s.fn], [cur]);
        break;
      case 'identity':
        break;
      case 'finalState': {
        const { names, D, H } = lastY_h!;
        const top = names[names.length - 1];
        cur = D === 1
          ? g.op('Squeeze', [top, g.int64s('axes0', [0])])
          : g.op('Reshape', [g.op('Transpose', [top], [attr.ints('perm', [1, 0, 2])]), g.int64s('shape_b_flat', [0, -1])]);
        kind = 'vec';
        width = D * H;
        break;
      }
      case 'overTime': {
        const x = cur;
        // Σ_t x_t / length (outputs past a sample's length are 0), or the plain mean over T
        const mean = (): string => {
          if (!spec.lengths) return g.op('ReduceMean', [x], [attr.ints('axes', [0]), attr.int('keepdims', 0)], g.unique('mean_over_time'));
          const total = g.op('ReduceSum', [x, g.int64s('axes0', [0])], [attr.int('keepdims', 0)]);
          const len = g.op('Unsqueeze', [g.op('Cast', [lengthsName], [attr.int('to', elem)]), g.int64s('axes1', [1])]);
          return g.op('Div', [total, len], [], g.unique('mean_over_time'));
        };
        // the maximum over steps t < length: the padded steps become −∞ first (their 0 could win)
        const max = (): string => {
          if (!spec.lengths) return g.op('ReduceMax', [x], [attr.ints('axes', [0]), attr.int('keepdims', 0)], g.unique('max_over_time'));
          const valid = g.op('Unsqueeze', [g.op('Less', [g.op('Unsqueeze', [stepRange(g, x), g.int64s('axes1', [1])]), g.op('Unsqueeze', [g.op('Cast', [lengthsName], [attr.int('to', DataType.INT64)]), g.int64s('axes0', [0])])]), g.int64s('axes2', [2])]); // [T, B, 1]
          return g.op('ReduceMax', [g.op('Where', [valid, x, g.scalar('minus_infinity', dtype, -Infinity)])], [attr.ints('axes', [0]), attr.int('keepdims', 0)], g.unique('max_over_time'));
        };
        cur = s.pool === 'mean' ? mean() : s.pool === 'max' ? max() : g.op('Concat', [mean(), max()], [attr.int('axis', 1)], g.unique('mean_max_over_time'));
        kind = 'vec';
        if (s.pool === 'mean+max') width *= 2;
        break;
      }
      case 'recurrent': {
        const m = s.m;
        const { op } = modeInfo(m);
        const H = m.hiddenSize, D = m.numDirections;
        const st = stateNames(s.path || op.toLowerCase(), multi);
        const { h0, c0 } = spec.state ? stateInputs(g, inputs, m, elem, st) : NO_STATE;
        const r = emitRecurrent(g, m, cur, { dtype, path: s.path, lengths: lengthsName, h0, c0 });
        cur = r.y;
        if (spec.state) stateOutputs(g, outputs, m, r, elem, st);
        lastY_h = { names: r.hn, D, H };
        kind = 'seq';
        width = H * D;
        break;
      }
    }
  }
  if (kind === 'seq' && bf) cur = g.op('Transpose', [cur], [attr.ints('perm', [1, 0, 2])]);
  g.node('Identity', [cur], [g.reserve(outputName)]);
  outputs.unshift(valueInfo(outputName, elem, kind === 'vec' ? ['B', width] : bf ? ['B', 'T', width] : ['T', 'B', width]));
  return taskModel(g, spec.graphName ?? 'recur', inputs, outputs, spec.metadata);
}

// ---- reference: the same pipeline through recur's modules -------------------------------------------

/**
 * Compute what the graph `exportOnnx(module, spec)` computes, with recur's own modules (eval mode,
 * no gradient). `inputs` uses the exported graph's input names; returns its outputs by name.
 */
export function referenceForward(module: Module, spec: ExportSpec, inputs: Record<string, OnnxInput>): Record<string, OnnxTensor> {
  const steps = resolve(module, spec);
  const { tokens, recurrents } = checkPipeline(steps, spec);
  const bf = batchFirstOf(steps, spec);
  const inName = spec.inputName ?? 'input';
  const x0 = inputs[inName];
  if (!x0) throw new OnnxError(`referenceForward: missing input '${inName}'`);
  const params = module.parameters();
  const dtype = params.length ? params[0].dtype : 'float32';
  const backend = params.length ? params[0].backend : undefined;
  const wasTraining = module.training;
  module.eval();
  try {
    return noGrad(() => {
      const out: Record<string, OnnxTensor> = {};
      const lengths = spec.lengths ? inputs.lengths?.data : undefined;
      if (spec.lengths && !lengths) throw new OnnxError("referenceForward: missing input 'lengths'");
      let ids: ArrayLike<number> | null = null;
      let T: number, B: number;
      let x: Tensor | null = null;
      if (tokens) {
        if (x0.shape.length !== 2) throw new OnnxError(`referenceForward: token input must be rank 2, got ${shapeStr(x0.shape)}`);
        [T, B] = bf ? [x0.shape[1], x0.shape[0]] : [x0.shape[0], x0.shape[1]];
        ids = x0.data;
        if (bf) {
          const tm = new Float64Array(T * B);
          for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) tm[t * B + b] = x0.data[b * T + t];
          ids = tm;
        }
      } else {
        x = tensor(x0.data, x0.shape, { dtype, backend });
        if (bf && !spec.vectorInput) x = permute(x, [1, 0, 2]);
      }
      let lastState: Tensor | null = null;
      let lastD = 1;
      for (const s of steps) {
        switch (s.kind) {
          case 'embedding':
            x = s.m.forward(ids!, [T!, B!]);
            break;
          case 'linear':
            x = s.m.forward(x!);
            break;
          case 'softmax':
            x = s.log ? logSoftmax(x!) : softmax(x!);
            break;
          case 'activation':
            x = s.fn === 'relu' ? relu(x!) : s.fn === 'tanh' ? tanh(x!) : sigmoid(x!);
            break;
          case 'identity':
            break;
          case 'finalState': {
            // the top layer's final state, directions concatenated per sample: [B, D·H]
            const [LD, Bn, H] = lastState!.shape;
            const parts: Tensor[] = [];
            for (let d = 0; d < lastD; d++) parts.push(reshape(sliceRows(lastState!, LD - lastD + d), [Bn, H]));
            x = parts.length === 1 ? parts[0] : concat(parts, 1);
            break;
          }
          case 'overTime': {
            const y = x!;
            const [T2, Bn, F] = y.shape;
            const steps = (b: number): number => (lengths ? lengths[b] : T2);
            const mean = (): Tensor => {
              const inv = new Float64Array(Bn);
              for (let b = 0; b < Bn; b++) inv[b] = 1 / steps(b);
              return mul(sum(y, 0), tensor(inv, [Bn, 1], { dtype, backend }));
            };
            // the maximum over each sample's steps, on the host (the reference needs no gradient)
            const max = (): Tensor => {
              const v = y.toArray();
              const top = new Float64Array(Bn * F).fill(-Infinity);
              for (let t = 0; t < T2; t++) for (let b = 0; b < Bn; b++) if (t < steps(b)) for (let f = 0; f < F; f++) top[b * F + f] = Math.max(top[b * F + f], v[(t * Bn + b) * F + f]);
              return tensor(top, [Bn, F], { dtype, backend });
            };
            x = s.pool === 'mean' ? mean() : s.pool === 'max' ? max() : concat([mean(), max()], 1);
            break;
          }
          case 'recurrent': {
            const st = stateNames(s.path || modeInfo(s.m).op.toLowerCase(), recurrents > 1);
            const h = spec.state ? tensorOf(inputs[st.h0], st.h0, dtype, backend) : null;
            const c = spec.state && s.m.mode === 'LSTM' ? tensorOf(inputs[st.c0], st.c0, dtype, backend) : null;
            // the module is batch-first or not; the pipeline is time-major
            const xin = s.m.batchFirst ? permute(x!, [1, 0, 2]) : x!;
            const r = s.m.forward(xin, { h, c, lengths: lengths ?? null });
            x = s.m.batchFirst ? permute(r.output, [1, 0, 2]) : r.output;
            lastState = r.h;
            lastD = s.m.numDirections;
            if (spec.state) {
              out[st.hn] = asOnnx(r.h);
              if (r.c) out[st.cn] = asOnnx(r.c);
            }
            break;
          }
        }
      }
      let y = x!;
      if (bf && y.ndim === 3) y = permute(y, [1, 0, 2]);
      return { [spec.outputName ?? 'output']: asOnnx(y), ...out };
    });
  } finally {
    module.train(wasTraining);
  }
}

function sliceRows(t: Tensor, k: number): Tensor {
  const [, B, H] = t.shape;
  const s = t.backend.alloc(B * H, t.dtype);
  t.backend.copy(t.storage, k * B * H, s, 0, B * H);
  return new Tensor(s, [1, B, H]);
}

function tensorOf(v: OnnxInput | undefined, name: string, dtype: 'float32' | 'float64', backend: Tensor['backend'] | undefined): Tensor {
  if (!v) throw new OnnxError(`referenceForward: missing input '${name}'`);
  return tensor(v.data, v.shape, { dtype, backend });
}

function asOnnx(t: Tensor): OnnxTensor {
  return { dtype: t.dtype, shape: [...t.shape], data: t.toArray() };
}

// ---- task models whose graphs are not a plain pipeline ------------------------------------------------

/** Options of the task-model exporters below. */
export interface TaskExportOptions {
  /** Initial-state inputs h0 (c0) [L, B, H] and final-state outputs hn (cn), for streaming (default true for the name generator, false for the forecaster). */
  state?: boolean;
  /** Float type of the graph (default 'float32'; see ExportSpec.dtype). */
  dtype?: 'float32' | 'float64';
  /** Extra model metadata (metadata_props). */
  metadata?: Record<string, string>;
}

function taskModel(g: GraphBuilder, name: string, inputs: ValueInfoProto[], outputs: ValueInfoProto[], metadata: Record<string, string> = {}): ModelProto {
  return {
    ir_version: EXPORT_IR_VERSION,
    opset_import: [{ domain: '', version: EXPORT_OPSET }],
    producer_name: 'recur',
    producer_version: '0.1.0',
    graph: { name, node: g.nodes, initializer: g.initializers, input: inputs, output: outputs },
    metadata_props: Object.entries(metadata).map(([key, value]) => ({ key, value: String(value) })),
  };
}

/** The graph's float type, as recur's dtype and as the ONNX element type. */
function graphDType(dtype: unknown, who: string): { dtype: 'float32' | 'float64'; elem: number } {
  if (dtype !== 'float32' && dtype !== 'float64') throw new OnnxError(`${who}: dtype must be 'float32' or 'float64', got ${JSON.stringify(dtype)}`);
  return { dtype, elem: dtype === 'float32' ? DataType.FLOAT : DataType.DOUBLE };
}

/** emitRecurrent's h0 / c0 arguments when the graph has no state inputs. */
const NO_STATE: { h0: string; c0: string } = { h0: '', c0: '' };

/** The initial-state inputs h0 (c0) [rows, B, H] (rows: L·D unless given); returns their names, c0 '' but for an LSTM. */
function stateInputs(g: GraphBuilder, inputs: ValueInfoProto[], m: RecurrentBase, elem: number, names: { h0: string; c0: string } = { h0: 'h0', c0: 'c0' }, rows = m.numLayers * m.numDirections): { h0: string; c0: string } {
  const declare = (name: string): string => {
    inputs.push(valueInfo(g.reserve(name), elem, [rows, 'B', m.hiddenSize]));
    return name;
  };
  const h0 = declare(names.h0);
  return { h0, c0: m.mode === 'LSTM' ? declare(names.c0) : '' };
}

/** The final-state outputs hn (cn) [L·D, B, H] from each layer's Y_h (Y_c). */
function stateOutputs(g: GraphBuilder, outputs: ValueInfoProto[], m: RecurrentBase, r: { hn: string[]; cn: string[] }, elem: number, names: { hn: string; cn: string } = { hn: 'hn', cn: 'cn' }): void {
  const rows = m.numLayers * m.numDirections;
  const join = (parts: string[], out: string): void => {
    if (parts.length === 1) g.node('Identity', [parts[0]], [g.reserve(out)]);
    else g.node('Concat', parts, [g.reserve(out)], [attr.int('axis', 0)]);
    outputs.push(valueInfo(out, elem, [rows, 'B', m.hiddenSize]));
  };
  join(r.hn, names.hn);
  if (m.mode === 'LSTM') join(r.cn, names.cn);
}

/**
 * The conditional name generator (models/namegen.ts ConditionalCharRNN): inputs `input` int64 ids
 * [T, B] and `condition` int64 [B] (+ h0, c0 [L, B, H] with state); outputs `logits` [T, B, V]
 * (+ hn, cn). The condition's embedding is broadcast over time (Unsqueeze + Expand) and
 * concatenated to each step's character embedding, as ConditionalCharRNN.forward does.
 */
export function exportNameGen(model: ConditionalCharRNN, opts: TaskExportOptions = {}): Uint8Array {
  return encodeModelProto(buildNameGenModel(model, opts));
}

export function buildNameGenModel(model: ConditionalCharRNN, opts: TaskExportOptions = {}): ModelProto {
  if (!(model instanceof ConditionalCharRNN)) throw new OnnxError('exportNameGen: expected a ConditionalCharRNN (models/namegen.ts)');
  const { dtype, elem } = graphDType(opts.dtype ?? 'float32', 'exportNameGen');
  const state = opts.state ?? true;
  const g = new GraphBuilder();
  const m = model.rnn;
  const ids = g.reserve('input'), cond = g.reserve('condition');
  const inputs = [valueInfo(ids, DataType.INT64, ['T', 'B']), valueInfo(cond, DataType.INT64, ['B'])];
  const { h0, c0 } = state ? stateInputs(g, inputs, m, elem, undefined, m.numLayers) : NO_STATE;
  const x = g.op('Gather', [g.init('embedding.weight', paramTensor(model.embedding.weight, dtype)), ids], [attr.int('axis', 0)]); // [T, B, E]
  const c = g.op('Gather', [g.init('condition.weight', paramTensor(model.condition.weight, dtype)), cond], [attr.int('axis', 0)]); // [B, Ec]
  // [B, Ec] → [1, B, Ec] → [T, B, Ec]: the target shape is [T, B] of the ids with Ec appended
  const Ec = model.condition.embeddingDim;
  const shape = g.op('Concat', [g.op('Shape', [ids]), g.int64s('cond_dim', [Ec])], [attr.int('axis', 0)]);
  const cT = g.op('Expand', [g.op('Unsqueeze', [c, g.int64s('axes0', [0])]), shape]);
  const xin = g.op('Concat', [x, cT], [attr.int('axis', 2)], g.unique('rnn.input'));
  const r = emitRecurrent(g, m, xin, { dtype, path: 'rnn', lengths: '', h0, c0 });
  const logits = emitLinear(g, model.head, r.y, false, dtype, 'head');
  g.node('Identity', [logits], [g.reserve('logits')]);
  const outputs = [valueInfo('logits', elem, ['T', 'B', model.head.outFeatures])];
  if (state) stateOutputs(g, outputs, m, r, elem);
  return taskModel(g, 'recur-namegen', inputs, outputs, opts.metadata);
}

/**
 * The forecaster (models/forecaster.ts RNNForecaster): input `input` float [T, B, F] levels;
 * output `output` [T, B, F] next-step predictions (+ hn, cn with state). As RNNForecaster.forward:
 * the recurrent input is (x_t − x_{t−1}) / deltaScale (0 change at t = 0), after x_t with inputs
 * 'level+change', and with
 * `residual` the head's Δ (in deltaScale units) is added back to x_t.
 */
export function exportForecaster(model: RNNForecaster, opts: TaskExportOptions = {}): Uint8Array {
  return encodeModelProto(buildForecasterModel(model, opts));
}

export function buildForecasterModel(model: RNNForecaster, opts: TaskExportOptions = {}): ModelProto {
  if (!(model instanceof RNNForecaster)) throw new OnnxError('exportForecaster: expected an RNNForecaster (models/forecaster.ts)');
  const { dtype, elem } = graphDType(opts.dtype ?? 'float32', 'exportForecaster');
  const state = opts.state ?? false;
  const g = new GraphBuilder();
  const m = model.rnn;
  const F = model.o.features;
  const x = g.reserve('input');
  const inputs = [valueInfo(x, elem, ['T', 'B', F])];
  const { h0, c0 } = state ? stateInputs(g, inputs, m, elem, undefined, m.numLayers) : NO_STATE;
  const vec = (name: string, v: readonly number[]): string => g.init(name, { dtype, shape: [v.length], data: dtype === 'float32' ? Float32Array.from(v) : Float64Array.from(v) });
  const slice0 = (start: number, end: number): string => g.op('Slice', [x, g.int64s('starts', [start]), g.int64s('ends', [end]), g.int64s('axes', [0])]);
  const END = Number.MAX_SAFE_INTEGER;
  // dx: [0 at t = 0, x_t − x_{t−1} after], in deltaScale units
  const first = slice0(0, 1);
  const zero = g.op('Sub', [first, first]); // [1, B, F] of zeros
  const dx = g.op('Concat', [zero, g.op('Sub', [slice0(1, END), slice0(0, -1)])], [attr.int('axis', 0)]);
  const levelToo = model.inputs === 'level+change';
  const change = g.op('Mul', [dx, vec('inv_delta_scale', model.o.deltaScale.map((v) => 1 / v))], [], levelToo ? undefined : g.unique('rnn.input'));
  const xin = levelToo ? g.op('Concat', [x, change], [attr.int('axis', 2)], g.unique('rnn.input')) : change;
  const r = emitRecurrent(g, m, xin, { dtype, path: 'rnn', lengths: '', h0, c0 });
  const d = emitLinear(g, model.head, r.y, false, dtype, 'head');
  const y = model.o.residual ? g.op('Add', [x, g.op('Mul', [d, vec('delta_scale', model.o.deltaScale)])]) : d;
  g.node('Identity', [y], [g.reserve('output')]);
  const outputs = [valueInfo('output', elem, ['T', 'B', F])];
  if (state) stateOutputs(g, outputs, m, r, elem);
  return taskModel(g, 'recur-forecaster', inputs, outputs, opts.metadata);
}

/**
 * The attention's key-side projection (additive: key, [K] → [A]; Luong 'general': key, [K] → [Hd];
 * Luong 'dot': none, the keys themselves) and the width P of `proj`.
 */
function keyProjection(model: Seq2Seq): { lin: Linear | null; dim: number } {
  const att = model.attention, c = model.config;
  if (att instanceof AdditiveAttention) return { lin: att.key, dim: att.attnDim };
  if (att instanceof LuongAttention && att.key) return { lin: att.key, dim: c.decoderHidden };
  return { lin: null, dim: 2 * c.encoderHidden };
}

/**
 * The seq2seq encoder (models/seq2seq.ts Seq2Seq.encode): inputs `src` int64 [S, B] and `lengths`
 * int32 [B]; outputs the attention memory `keys` [B, S, K] (the encoder outputs, 0 past each
 * length), `proj` [B, S, P] (the attention's key-side projection), `mask` [B, S] (0, or −1e9 past
 * each length) and the decoder's initial state `h` [B, Hd] (+ `c`, zeros, for an LSTM).
 * Decoding runs `exportSeq2SeqDecoderStep`'s graph once per output token with these.
 */
export function exportSeq2SeqEncoder(model: Seq2Seq, opts: Omit<TaskExportOptions, 'state'> = {}): Uint8Array {
  return encodeModelProto(buildSeq2SeqEncoderModel(model, opts));
}

export function buildSeq2SeqEncoderModel(model: Seq2Seq, opts: Omit<TaskExportOptions, 'state'> = {}): ModelProto {
  if (!(model instanceof Seq2Seq)) throw new OnnxError('exportSeq2SeqEncoder: expected a Seq2Seq (models/seq2seq.ts)');
  const { dtype, elem } = graphDType(opts.dtype ?? 'float32', 'exportSeq2SeqEncoder');
  const c = model.config;
  const K = 2 * c.encoderHidden, Hd = c.decoderHidden, L = c.encoderLayers;
  const g = new GraphBuilder();
  const src = g.reserve('src'), lengths = g.reserve('lengths');
  const inputs = [valueInfo(src, DataType.INT64, ['S', 'B']), valueInfo(lengths, DataType.INT32, ['B'])];
  const x = g.op('Gather', [g.init('src_embedding.weight', paramTensor(model.srcEmbedding.weight, dtype)), src], [attr.int('axis', 0)]); // [S, B, E]
  const r = emitRecurrent(g, model.encoder, x, { dtype, path: 'encoder', lengths, h0: '', c0: '' });
  g.node('Transpose', [r.y], [g.reserve('keys')], [attr.ints('perm', [1, 0, 2])]); // [B, S, K]
  // the top layer's final forward and backward states [2, B, He] → [B, 2·He] → tanh(bridge)
  const summary = g.op('Reshape', [g.op('Transpose', [r.hn[L - 1]], [attr.ints('perm', [1, 0, 2])]), g.int64s('shape_b_flat', [0, -1])]);
  const h = g.op('Tanh', [emitLinear(g, model.bridge, summary, true, dtype, 'bridge')], [], g.reserve('h'));
  const outputs = [valueInfo('keys', elem, ['B', 'S', K])];
  // the key-side projection, computed once per source sentence
  const key = keyProjection(model);
  const proj = key.lin ? emitLinear(g, key.lin, 'keys', false, dtype, 'attention.key') : 'keys';
  g.node('Identity', [proj], [g.reserve('proj')]);
  outputs.push(valueInfo('proj', elem, ['B', 'S', key.dim]));
  // mask[b, s] = 0 where s < lengths[b], else −1e9
  const valid = g.op('Less', [g.op('Unsqueeze', [stepRange(g, src), g.int64s('axes0', [0])]), g.op('Unsqueeze', [g.op('Cast', [lengths], [attr.int('to', DataType.INT64)]), g.int64s('axes1', [1])])]); // [B, S]
  g.node('Where', [valid, g.scalar('mask_keep', dtype, 0), g.scalar('mask_value', dtype, MASK_VALUE)], [g.reserve('mask')]);
  outputs.push(valueInfo('mask', elem, ['B', 'S']));
  outputs.push(valueInfo(h, elem, ['B', Hd]));
  if (c.cell === 'lstm') {
    g.node('Sub', [h, h], [g.reserve('c')]); // zeros [B, Hd]
    outputs.push(valueInfo('c', elem, ['B', Hd]));
  }
  return taskModel(g, 'recur-seq2seq-encoder', inputs, outputs, opts.metadata);
}

/**
 * One seq2seq decoder step with attention (Seq2Seq.decodeStep + the output layer): inputs `token`
 * int64 [B] (the previous output token), `h` [B, Hd] (+ `c`), and the encoder's `keys`, `proj`,
 * `mask`; outputs `logits` [B, V], the new state `h_out` (+ `c_out`) and the attention `weights`
 * [B, S].
 */
export function exportSeq2SeqDecoderStep(model: Seq2Seq, opts: Omit<TaskExportOptions, 'state'> = {}): Uint8Array {
  return encodeModelProto(buildSeq2SeqDecoderStepModel(model, opts));
}

export function buildSeq2SeqDecoderStepModel(model: Seq2Seq, opts: Omit<TaskExportOptions, 'state'> = {}): ModelProto {
  if (!(model instanceof Seq2Seq)) throw new OnnxError('exportSeq2SeqDecoderStep: expected a Seq2Seq (models/seq2seq.ts)');
  const { dtype, elem } = graphDType(opts.dtype ?? 'float32', 'exportSeq2SeqDecoderStep');
  const c = model.config;
  const K = 2 * c.encoderHidden, Hd = c.decoderHidden;
  const lstm = c.cell === 'lstm';
  const att = model.attention;
  const P = keyProjection(model).dim;
  const g = new GraphBuilder();
  const token = g.reserve('token'), h = g.reserve('h'), cIn = lstm ? g.reserve('c') : '';
  const keys = g.reserve('keys'), proj = g.reserve('proj'), mask = g.reserve('mask');
  const inputs = [valueInfo(token, DataType.INT64, ['B']), valueInfo(h, elem, ['B', Hd])];
  if (lstm) inputs.push(valueInfo(cIn, elem, ['B', Hd]));
  inputs.push(valueInfo(keys, elem, ['B', 'S', K]), valueInfo(proj, elem, ['B', 'S', P]), valueInfo(mask, elem, ['B', 'S']));
  const emb = g.op('Gather', [g.init('tgt_embedding.weight', paramTensor(model.tgtEmbedding.weight, dtype)), token], [attr.int('axis', 0)]); // [B, E]
  // scores [B, S]
  let scores: string;
  if (att instanceof AdditiveAttention) {
    // e = v · tanh(proj + W_q·h broadcast over S)
    const q = g.op('Unsqueeze', [emitLinear(g, att.query, h, true, dtype, 'attention.query'), g.int64s('axes1', [1])]); // [B, 1, A]
    const hidden = g.op('Tanh', [g.op('Add', [proj, q])]);
    scores = g.op('Squeeze', [emitLinear(g, att.v, hidden, false, dtype, 'attention.v'), g.int64s('axes2', [2])]);
  } else {
    // e[b] = proj[b] · h[b]
    scores = g.op('Squeeze', [g.op('MatMul', [proj, g.op('Unsqueeze', [h, g.int64s('axes2', [2])])]), g.int64s('axes2', [2])]);
  }
  const weights = g.op('Softmax', [g.op('Add', [scores, mask])], [attr.int('axis', -1)], g.reserve('weights'));
  const context = g.op('Squeeze', [g.op('MatMul', [g.op('Unsqueeze', [weights, g.int64s('axes1', [1])]), keys]), g.int64s('axes1', [1])]); // [B, K]
  // the decoder cell: a one-step ONNX recurrent node
  const x = g.op('Unsqueeze', [g.op('Concat', [emb, context], [attr.int('axis', 1)]), g.int64s('axes0', [0])]); // [1, B, E + K]
  const h0 = g.op('Unsqueeze', [h, g.int64s('axes0', [0])]);
  const c0 = lstm ? g.op('Unsqueeze', [cIn, g.int64s('axes0', [0])]) : '';
  const r = emitRecurrent(g, cellAsLayer(model.decoder), x, { dtype, path: 'decoder', lengths: '', h0, c0 });
  const hOut = g.op('Squeeze', [r.hn[0], g.int64s('axes0', [0])], [], g.reserve('h_out'));
  const features = g.op('Concat', [hOut, context], [attr.int('axis', 1)]);
  g.node('Identity', [emitLinear(g, model.out, features, true, dtype, 'out')], [g.reserve('logits')]);
  const outputs = [valueInfo('logits', elem, ['B', c.tgtVocabSize]), valueInfo(hOut, elem, ['B', Hd])];
  if (lstm) {
    g.node('Squeeze', [r.cn[0], g.int64s('axes0', [0])], [g.reserve('c_out')]);
    outputs.push(valueInfo('c_out', elem, ['B', Hd]));
  }
  outputs.push(valueInfo(weights, elem, ['B', 'S']));
  return taskModel(g, 'recur-seq2seq-decoder-step', inputs, outputs, opts.metadata);
}
