/**
 * `convertOnnx(bytes)`: turn an exported ONNX recurrent pipeline back into a trainable recur model
 * (a `PipelineModel`, convert-model.ts) with PyTorch's names and layouts:
 *
 *     Gather on an initializer                → nn.Embedding          emb.weight
 *     RNN / GRU / LSTM nodes (stacked, bidi)  → nn.RNN / nn.GRU / nn.LSTM   rnn.weight_ih_l0 …
 *     Gemm, or MatMul (+ Add) on initializers → nn.Linear             fc.weight, fc.bias
 *     y[:, -1] / y[-1]; h[-1] / cat(h[-2], h[-1]); ReduceMean over time   → pooling steps
 *     Relu / Tanh / Sigmoid, Softmax / LogSoftmax on the last axis      → head steps
 *
 * It reads the graph's structure and weights; it does not run the graph. Every node is given a
 * meaning by an abstract walk in graph order: each value is either a known constant, shape
 * bookkeeping ('meta': computed from constants and Shape only), a tensor of zeros (the default
 * initial states PyTorch's exporter builds with ConstantOfShape), or data on the pipeline's path
 * (token ids, a sequence, a recurrent node's raw outputs, a vector per sample) together with the
 * pipeline steps that produced it. A node that fits none of the known patterns is refused with an
 * OnnxConvertError naming the node, its operator and why, and so is any recurrent node whose
 * semantics PyTorch's layers do not have (clip, peepholes, reverse-only direction, GRU with
 * linear_before_reset = 0, non-default activations, sequence_lens, a non-zero initial state).
 *
 * Weights go from the ONNX layout back to PyTorch's with the cell record's gate mappings
 * (`reorderGates` 'onnx' → 'recur'): W [D, G·H, I] → weight_ih_l{k}[_reverse] [G·H, I], R → weight_hh,
 * B [D, 2·G·H] → bias_ih ‖ bias_hh.
 *
 * Module names: PyTorch's exporter keeps the names of Embedding and Linear weights ('emb.weight')
 * and names nodes by module scope ('/rnn/LSTM'); those names are used where present, so the
 * converted file is the original module's state_dict. Elsewhere the names are 'embedding', 'rnn',
 * 'fc' (numbered when repeated).
 */
import { cellForFormat, type CellSpec } from '../cells/recurrent.ts';
import { OnnxError, decodeModelProto, type ModelProto, type NodeProto } from './proto.ts';
import { Attrs } from './runtime.ts';
import { DEFAULT_ACTS, pytorchMode, reorderDirection, type RecOp } from './recurrent.ts';
import type { RecurrentKind } from '../nn/recurrent.ts';
import { tensorFromProto, isFloatDType, dtypeOfCode, type OnnxTensor } from './tensor.ts';
import { resolveLimits, type Limits } from '../io/limits.ts';
import { PipelineModel, parsePipelineConfig, type PipelineConfig, type PipelineStep } from './convert-model.ts';

/** A graph the converter cannot turn into a pipeline; `node` names the node at fault (null: the graph as a whole). */
export class OnnxConvertError extends OnnxError {
  constructor(message: string, readonly node: string | null = null) {
    super(message);
    this.name = 'OnnxConvertError';
  }
}

export interface ConvertedOnnx {
  /** The model, with the graph's weights loaded (training mode, as a new module). */
  model: PipelineModel;
  /** Its config (what `recur.config` stores; `PipelineModel.fromConfig` rebuilds it). */
  config: PipelineConfig;
  /** One line per step, for printing. */
  summary: string;
}

export interface ConvertOnnxOptions {
  /** Resource limits (tensorElements, parameters) for the weights read; defaults DEFAULT_LIMITS. */
  limits?: Partial<Limits>;
}

// ---- abstract values ----------------------------------------------------------------------------------

type Layer = { wih: Float32Array[]; whh: Float32Array[]; bih: (Float32Array | null)[]; bhh: (Float32Array | null)[] };

/** A pipeline step being built; a recurrent one grows a layer per stacked node. */
type Draft =
  | { op: 'embedding'; name: string | null; V: number; E: number; weight: Float32Array }
  | { op: 'recurrent'; id: number; name: string | null; cell: RecurrentKind; spec: CellSpec; I: number; H: number; D: number; bias: boolean; layers: Layer[] }
  | { op: 'linear'; name: string | null; inF: number; outF: number; weight: Float32Array; bias: Float32Array | null; fromMatMul: boolean }
  | { op: 'lastStep' | 'finalState' | 'meanOverTime' | 'softmax' | 'logSoftmax' }
  | { op: 'activation'; fn: 'relu' | 'tanh' | 'sigmoid' };

type Steps = readonly Draft[];
/** One row of a recurrent module's final states: which layer, which direction. */
type Row = { layer: number; dir: number };

type Val =
  | { k: 'const'; t: OnnxTensor }
  | { k: 'meta' }
  | { k: 'zeros' }
  /** token ids, rank 2; flip: laid out the other way from the graph input (a Transpose between). */
  | { k: 'ids'; flip: boolean; steps: Steps }
  /** [T, B, F] or [B, T, F] (flip relative to the input); t1: the time axis was sliced to its last step. */
  | { k: 'seq'; flip: boolean; F: number; steps: Steps; t1?: boolean }
  /** a recurrent node's Y [T, D, B, H], and Y transposed to [T, B, D, H] */
  | { k: 'y4' | 'y4t'; D: number; H: number; steps: Steps }
  /** final states [n, B, H] (Y_h, slices, concatenations), or transposed [B, n, H] */
  | { k: 'hstates' | 'hstatesT'; state: 'h' | 'c'; rows: Row[]; H: number; id: number; steps: Steps }
  /** final-state rows side by side, [B, n·H] */
  | { k: 'hcat'; state: 'h' | 'c'; rows: Row[]; H: number; id: number; steps: Steps }
  /** an initial-state graph input [L·D, B, H] (rows [start, end) of it after a Slice; end null: all) */
  | { k: 'state0'; input: string; start: number; end: number | null }
  /** [B, F] */
  | { k: 'vec'; F: number; steps: Steps }
  /** a value the converter knows but that no pipeline step can take (an LSTM's Y_c) */
  | { k: 'opaque'; what: string };

/** Whether final-state rows are the top layer's, every direction, forward first (what recur's finalState reads). */
const isTopRows = (rows: readonly Row[], rec: Extract<Draft, { op: 'recurrent' }>): boolean =>
  rows.length === rec.D && rows.every((row, d) => row.layer === rec.layers.length - 1 && row.dir === d);

type DataVal = Exclude<Val, { k: 'const' } | { k: 'meta' } | { k: 'zeros' }>;
const isData = (v: Val): v is DataVal => v.k !== 'const' && v.k !== 'meta' && v.k !== 'zeros';

/** Ops through which a tensor of zeros stays zeros (data movement only). */
const ZERO_KEEPING = new Set(['Slice', 'Expand', 'Reshape', 'Unsqueeze', 'Squeeze', 'Concat', 'Identity', 'Transpose', 'Tile', 'Gather', 'Cast', 'Flatten']);
/** Ops that turn any tensor into shape bookkeeping. */
const SHAPE_OF = new Set(['Shape', 'Size']);

/** '/encoder/rnn/LSTM_1' → 'encoder.rnn'; recur's own 'lstm.l0' → 'lstm'; otherwise null. */
function scopeOf(n: NodeProto): string | null {
  const name = n.name ?? '';
  if (name.startsWith('/')) {
    const parts = name.split('/').filter(Boolean);
    parts.pop();
    return parts.length ? parts.join('.') : null;
  }
  const m = /^(.+)\.l\d+$/.exec(name);
  return m ? m[1] : null;
}
/** 'fc.weight' → 'fc' (the module path a PyTorch exporter kept in an initializer's name). */
function ownerOf(initName: string, param: 'weight' | 'bias'): string | null {
  return initName.endsWith(`.${param}`) ? initName.slice(0, -param.length - 1) : null;
}
const isZero = (t: OnnxTensor): boolean => t.data.every((x) => x === 0);

function asF32(t: OnnxTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}
/** A 2-D tensor's data transposed, in the element type it has (a float64 or int64 constant keeps its precision). */
function transpose2<A extends Float32Array | Float64Array>(t: { shape: readonly number[]; data: A }): A {
  const [r, c] = t.shape;
  const out = new (t.data.constructor as new (n: number) => A)(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return out;
}

const ACTIVATIONS: Record<string, 'relu' | 'tanh' | 'sigmoid'> = { Relu: 'relu', Tanh: 'tanh', Sigmoid: 'sigmoid' };
/** The activations each cell has in PyTorch, in ONNX's names (per direction): for the refusal message. */
const PYTORCH_ACTIVATIONS: Record<RecOp, readonly (readonly string[])[]> = {
  RNN: [DEFAULT_ACTS.RNN, ['Relu']],
  GRU: [DEFAULT_ACTS.GRU],
  LSTM: [DEFAULT_ACTS.LSTM],
};

/** Convert ONNX bytes (or a decoded ModelProto) holding a recurrent pipeline; see the file comment. */
export function convertOnnx(bytes: Uint8Array | ModelProto, opts: ConvertOnnxOptions = {}): ConvertedOnnx {
  const proto = bytes instanceof Uint8Array ? decodeModelProto(bytes) : bytes;
  const limits = resolveLimits(opts.limits ?? {});
  const graph = proto.graph;
  if (!graph) throw new OnnxConvertError('ONNX model: it has no graph');
  const opset = (proto.opset_import ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx')?.version ?? 0;
  const vals = new Map<string, Val>();
  let paramCount = 0;
  for (const init of graph.initializer ?? []) {
    const t = tensorFromProto(init, `initializer '${init.name}'`, limits);
    paramCount += t.data.length;
    if (paramCount > limits.parameters) throw new OnnxConvertError(`ONNX model: its initializers hold more than ${limits.parameters} values (limits.parameters)`);
    vals.set(init.name ?? '', { k: 'const', t });
  }

  // the graph input: token ids or float features
  const dataInputs = (graph.input ?? []).filter((i) => !vals.has(i.name ?? ''));
  if (dataInputs.length === 0) throw new OnnxConvertError('the graph has no input');
  const input = dataInputs[0];
  // the others can only be initial states [L·D, B, H] of a recurrent module (checked where they are used)
  for (const extra of dataInputs.slice(1)) {
    const et = extra.type?.tensor_type;
    if (!isFloatDType(dtypeOfCode(et?.elem_type, `input '${extra.name}'`)) || (et?.shape?.dim && et.shape.dim.length !== 3)) {
      throw new OnnxConvertError(`input '${extra.name}' is not a float [L·D, B, H] initial state; a convertible pipeline has one data input (token ids or features) and optionally initial states (no lengths)`);
    }
    vals.set(extra.name ?? '', { k: 'state0', input: extra.name ?? '', start: 0, end: null });
  }
  const tt = input.type?.tensor_type;
  const inDtype = dtypeOfCode(tt?.elem_type, `input '${input.name}'`);
  const inRank = tt?.shape?.dim?.length;
  const inputKind: 'ids' | 'features' = isFloatDType(inDtype) ? 'features' : 'ids';
  if (inRank !== undefined && inRank !== (inputKind === 'ids' ? 2 : 3)) {
    throw new OnnxConvertError(`input '${input.name}' has rank ${inRank}; a pipeline takes ${inputKind === 'ids' ? 'token ids of rank 2 ([B, T] or [T, B])' : 'features of rank 3 ([B, T, I] or [T, B, I])'}`);
  }
  if (inputKind === 'ids') vals.set(input.name ?? '', { k: 'ids', flip: false, steps: [] });
  else {
    const I = tt?.shape?.dim?.[2]?.dim_value;
    vals.set(input.name ?? '', { k: 'seq', flip: false, F: I ? Number(I) : -1, steps: [] });
  }
  const inputT = tt?.shape?.dim;

  /** Whether the graph input is batch-major; fixed by the first recurrent node (it reads time-major). */
  let bf: boolean | null = null;
  let nextId = 0;
  /** Where initial-state inputs feed recurrent nodes (checked against the final pipeline). */
  const stateUses: { input: string; start: number; end: number | null; which: 'h' | 'c'; node: string; id: number; layer: number; D: number }[] = [];

  for (const n of graph.node ?? []) {
    const label = `node '${n.name || (n.output ?? [])[0] || '?'}' (${n.op_type})`;
    const fail = (why: string): never => {
      throw new OnnxConvertError(`${label}: ${why}`, n.name || (n.output ?? [])[0] || null);
    };
    if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') fail(`operator of domain '${n.domain}' is not part of a convertible pipeline`);
    // every attribute is type-checked when read; the converter reads only those it needs (no done())
    const attrs = new Attrs(n.attribute ?? [], label, limits);
    const ins: (Val | null)[] = (n.input ?? []).map((name) => {
      if (name === '') return null;
      const v = vals.get(name);
      if (!v) fail(`input '${name}' is not produced by any earlier node, initializer or graph input`);
      return v!;
    });
    const outs = n.output ?? [];
    const set = (v: Val, k = 0): void => {
      if (outs[k]) vals.set(outs[k], v);
    };
    const op = n.op_type ?? '';
    // (a recurrent node's initial states are checked with the node, not as a second chain)
    const recurrentOp = op === 'RNN' || op === 'GRU' || op === 'LSTM';
    const data = ins.filter((v, k): v is DataVal => v !== null && isData(v) && !(recurrentOp && k >= 5 && v.k === 'state0'));
    const constOf = (k: number, what: string): OnnxTensor => {
      const v = ins[k];
      if (!v) return fail(`${what} is missing`);
      if (v.k !== 'const') return fail(`${what} ('${n.input![k]}') is computed by the graph, not stored; export with constant folding so that weights are initializers`);
      return v.t;
    };
    const intsIn = (k: number, what: string): number[] => Array.from(constOf(k, what).data, Number);
    /** axes from the attribute (older opsets) or the input (newer ones) */
    const axesOf = (k: number): number[] | null => attrs.ints('axes') ?? (ins[k] ? intsIn(k, 'axes') : null);

    // ---- no data among the inputs: constants, zeros, shape bookkeeping
    if (data.length === 0) {
      if (op === 'Constant') {
        const a = n.attribute?.[0];
        if (!a) fail('has no value attribute');
        let t: OnnxTensor;
        if (a!.name === 'value' && a!.t) t = tensorFromProto(a!.t, label, limits);
        else if (a!.name === 'value_float') t = { dtype: 'float32', shape: [], data: Float32Array.of(a!.f ?? 0) };
        else if (a!.name === 'value_floats') t = { dtype: 'float32', shape: [a!.floats?.length ?? 0], data: Float32Array.from(a!.floats ?? []) };
        else if (a!.name === 'value_int') t = { dtype: 'int64', shape: [], data: Float64Array.of(Number(a!.i ?? 0)) };
        else if (a!.name === 'value_ints') t = { dtype: 'int64', shape: [a!.ints?.length ?? 0], data: Float64Array.from((a!.ints ?? []).map(Number)) };
        else { set({ k: 'meta' }); continue; }
        set({ k: 'const', t: t! });
        continue;
      }
      if (op === 'ConstantOfShape') {
        const value = attrs.has('value') ? attrs.tensor('value') : undefined;
        const zero = !value || isZero(value);
        set(zero ? { k: 'zeros' } : { k: 'meta' });
        continue;
      }
      const first = ins[0];
      // a stored matrix transposed by the graph (recur's own exporter writes x · Wᵀ so): still a stored weight
      if (op === 'Transpose' && first?.k === 'const' && first.t.shape.length === 2 && (attrs.ints('perm') ?? [1, 0]).join() === '1,0') {
        const t = first.t;
        set({ k: 'const', t: { dtype: t.dtype, shape: [t.shape[1], t.shape[0]], data: transpose2(t) } });
        continue;
      }
      const zeroIn = first !== null && (first?.k === 'zeros' || (first?.k === 'const' && isFloatDType(first.t.dtype) && isZero(first.t)));
      const allFloatZero = op === 'Concat' ? ins.every((v) => v === null || v.k === 'zeros' || (v.k === 'const' && isFloatDType(v.t.dtype) && isZero(v.t))) : true;
      if (ZERO_KEEPING.has(op) && zeroIn && allFloatZero && (op !== 'Cast' || isFloatDType(dtypeOfCode(attrs.int('to', 1), label)))) {
        set({ k: 'zeros' });
        continue;
      }
      for (let k = 0; k < outs.length; k++) set({ k: 'meta' }, k);
      continue;
    }
    if (SHAPE_OF.has(op)) {
      set({ k: 'meta' });
      continue;
    }
    if (data.length > 1 && op !== 'Concat') fail(`combines two values of the pipeline's path (${data.map((d) => d.k).join(', ')}); a convertible pipeline is one chain`);
    const x = data[0];
    const xi = ins.indexOf(x);

    /** A vector per sample from x: a [B, F] vector, or final-state rows that are the top layer's, every direction. */
    const asVec = (v: DataVal): Extract<Val, { k: 'vec' }> => {
      if (v.k === 'vec') return v;
      if (v.k === 'hcat' || (v.k === 'hstates' && v.rows.length === 1)) {
        const r = v.steps[v.steps.length - 1];
        if (v.state === 'c') fail("takes an LSTM's final cell state as features; recur's finalState is the hidden state h");
        if (r?.op !== 'recurrent' || r.id !== v.id) fail('reads final states that are not the last recurrent layer\'s');
        const rec = r as Extract<Draft, { op: 'recurrent' }>;
        if (!isTopRows(v.rows, rec)) {
          fail(`reads the final state rows ${v.rows.map((q) => `(layer ${q.layer}, ${q.dir ? 'reverse' : 'forward'})`).join(', ')}; recur's finalState is the top layer's final state with every direction, forward first`);
        }
        return { k: 'vec', F: rec.D * rec.H, steps: [...v.steps, { op: 'finalState' }] };
      }
      return fail(`takes ${describe(v)}, where a vector per sample [B, F] was expected`);
    };
    const timeAxisOf = (v: Extract<Val, { k: 'seq' }>): number => {
      if (bf === null) return fail('pools over time before any recurrent layer fixed which axis is time');
      return v.flip === bf ? 0 : 1;
    };
    const lastAxis = (v: DataVal): number => (v.k === 'vec' || v.k === 'hcat' ? 2 : v.k === 'seq' ? 3 : -1);
    const normAxis = (a: number, rank: number): number => (a < 0 ? a + rank : a);

    switch (op) {
      case 'Identity':
        set(x);
        break;
      case 'Dropout': {
        const training = n.input?.[2] ? intsIn(2, 'training_mode')[0] : 0;
        if (training) fail('runs in training mode');
        set(x);
        for (let k = 1; k < outs.length; k++) set({ k: 'opaque', what: 'a dropout mask' }, k);
        break;
      }
      case 'Cast':
        if (x.k !== 'ids' || isFloatDType(dtypeOfCode(attrs.int('to', 1), label))) fail(`casts ${describe(x)}; only token ids may be cast (between integer types)`);
        set(x);
        break;
      case 'Transpose': {
        const perm = (attrs.ints('perm') ?? []).join(',');
        if (x.k === 'ids' && perm === '1,0') set({ ...x, flip: !x.flip });
        else if (x.k === 'seq' && perm === '1,0,2') set({ ...x, flip: !x.flip });
        else if (x.k === 'y4' && perm === '0,2,1,3') set({ ...x, k: 'y4t' });
        else if (x.k === 'hstates' && perm === '1,0,2') set({ ...x, k: 'hstatesT' });
        else fail(`transposes ${describe(x)} with perm [${perm}], which no pipeline step does`);
        break;
      }
      case 'Squeeze': {
        const axes = axesOf(1);
        const ax = axes?.length === 1 ? axes[0] : null;
        if (x.k === 'y4' && x.D === 1 && ax !== null && normAxis(ax, 4) === 1) set({ k: 'seq', flip: bf!, F: x.H, steps: x.steps });
        else if (x.k === 'hstates' && x.rows.length === 1 && ax !== null && normAxis(ax, 3) === 0) set({ k: 'hcat', state: x.state, rows: x.rows, H: x.H, id: x.id, steps: x.steps });
        else if (x.k === 'seq' && x.t1 && ax !== null && normAxis(ax, 3) === timeAxisOf(x)) set({ k: 'vec', F: x.F, steps: [...x.steps, { op: 'lastStep' }] });
        else fail(`squeezes ${describe(x)} on axes [${axes?.join(', ') ?? 'all'}], which no pipeline step does`);
        break;
      }
      case 'Reshape': {
        const shape = intsIn(1, 'shape');
        if (x.k === 'y4t') {
          const DH = x.D * x.H;
          const ok = shape.length === 3 && (shape[2] === -1 || shape[2] === DH) && shape.slice(0, 2).every((d) => d === 0) ;
          if (!ok) fail(`reshapes the recurrent output [T, B, D, H] to [${shape.join(', ')}]; expected [0, 0, -1] (or [0, 0, ${DH}])`);
          set({ k: 'seq', flip: bf!, F: DH, steps: x.steps });
        } else if (x.k === 'hstatesT') {
          const nH = x.rows.length * x.H;
          const ok = shape.length === 2 && ((shape[0] === 0 || shape[0] === -1) && (shape[1] === -1 || shape[1] === nH)) && !(shape[0] === -1 && shape[1] === -1);
          if (!ok) fail(`reshapes final states [B, n, H] to [${shape.join(', ')}]; expected [0, -1]`);
          set({ k: 'hcat', state: x.state, rows: x.rows, H: x.H, id: x.id, steps: x.steps });
        } else fail(`reshapes ${describe(x)} to [${shape.join(', ')}], which no pipeline step does`);
        break;
      }
      case 'Gather': {
        const axis = attrs.int('axis', 0);
        if (xi === 1 && x.k === 'ids') {
          // Gather(weight, ids): an embedding
          const w = constOf(0, 'the embedding table');
          if (!isFloatDType(w.dtype) || w.shape.length !== 2 || axis !== 0) fail('gathers token ids from something other than a float table [V, E] on axis 0');
          const name = ownerOf(n.input![0], 'weight') ?? scopeOf(n);
          set({ k: 'seq', flip: x.flip, F: w.shape[1], steps: [...x.steps, { op: 'embedding', name, V: w.shape[0], E: w.shape[1], weight: asF32(w) }] });
          break;
        }
        if (xi !== 0) fail(`gathers from a constant with ${describe(x)} as the indices`);
        const idx = constOf(1, 'the index');
        if (idx.shape.length !== 0) fail('gathers with an index tensor; only a single index (a scalar) is a pipeline step');
        const k = Number(idx.data[0]);
        if (x.k === 'seq') {
          const ta = timeAxisOf(x);
          const T = inputT?.[bf ? 1 : 0]?.dim_value;
          if (normAxis(axis, 3) !== ta || !(k === -1 || (T !== undefined && k === Number(T) - 1))) {
            fail(`picks index ${k} on axis ${axis} of ${describe(x)}; the pipeline's one gather on a sequence is the last time step (index -1 on the time axis ${ta})`);
          }
          set({ k: 'vec', F: x.F, steps: [...x.steps, { op: 'lastStep' }] });
        } else if (x.k === 'hstates' && normAxis(axis, 3) === 0) {
          const r = x.rows[k < 0 ? k + x.rows.length : k];
          if (!r) fail(`picks row ${k} of ${x.rows.length} final states`);
          set({ k: 'hcat', state: x.state, rows: [r], H: x.H, id: x.id, steps: x.steps });
        } else fail(`gathers on axis ${axis} of ${describe(x)}, which no pipeline step does`);
        break;
      }
      case 'Slice': {
        // opset < 10: starts, ends, axes are attributes
        const starts = attrs.ints('starts', true) ?? intsIn(1, 'starts'), ends = attrs.ints('ends', true) ?? intsIn(2, 'ends');
        const axes = attrs.ints('axes') ?? (ins[3] ? intsIn(3, 'axes') : starts.map((_, i) => i));
        const steps = ins[4] ? intsIn(4, 'steps') : starts.map(() => 1);
        if (steps.some((k) => k < 0)) fail('reverses a tensor (a Slice with a negative step, as a backwards-running layer does); PyTorch\'s layers run forward or bidirectional');
        if (starts.length !== 1 || steps[0] !== 1) fail('slices more than one axis, or with a step');
        const [s, e, a] = [starts[0], ends[0], axes[0]];
        if (x.k === 'state0' && a === 0 && x.start === 0 && x.end === null && s >= 0 && e > s && e < 2 ** 31 - 1) {
          set({ ...x, start: s, end: e });
        } else if (x.k === 'hstates' && normAxis(a, 3) === 0) {
          const n0 = x.rows.length;
          const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + n0 : v, 0), n0);
          set({ ...x, rows: x.rows.slice(clamp(s), clamp(e)) });
        } else if (x.k === 'seq' && normAxis(a, 3) === timeAxisOf(x) && s === -1 && e >= 2 ** 31 - 1) {
          set({ ...x, t1: true });
        } else fail(`slices [${s}, ${e}) on axis ${a} of ${describe(x)}, which no pipeline step does`);
        break;
      }
      case 'Concat': {
        const axis = attrs.int('axis', 0);
        const parts = ins.filter((v): v is DataVal => v !== null);
        if (parts.length !== ins.length || parts.some((p) => p.k !== parts[0].k)) fail('concatenates values of different kinds');
        const first = parts[0];
        if ((first.k === 'hstates' && normAxis(axis, 3) === 0) || (first.k === 'hcat' && normAxis(axis, 2) === 1)) {
          const hs = parts as Extract<Val, { k: 'hstates' | 'hcat' }>[];
          if (hs.some((p) => p.id !== first.id || p.state !== first.state)) fail('concatenates the final states of different recurrent modules, or h with c');
          // the history is that of the deepest layer read
          let deepest = hs[0];
          for (const p of hs) if (p.rows.some((r) => r.layer > Math.max(...deepest.rows.map((q) => q.layer)))) deepest = p;
          set({ k: first.k, state: first.state, rows: hs.flatMap((p) => p.rows), H: first.H, id: first.id, steps: deepest.steps });
        } else fail(`concatenates ${describe(first)} on axis ${axis}, which no pipeline step does`);
        break;
      }
      case 'RNN':
      case 'GRU':
      case 'LSTM': {
        if (x.k !== 'seq' || xi !== 0) fail(`its input X is ${describe(x)}, not a sequence`);
        const sx = x as Extract<Val, { k: 'seq' }>;
        // X is time-major: that fixes the graph input's layout
        if (bf === null) bf = sx.flip;
        else if (bf !== sx.flip) fail('reads a sequence laid out batch-major (layout = 0 recurrent nodes read [T, B, I])');
        const recOp: RecOp = op;
        const spec = cellForFormat('onnx', op);
        const G = spec.G;
        const H = attrs.int('hidden_size', 0);
        const dir = attrs.string('direction') || 'forward';
        if (dir === 'reverse') fail("has direction 'reverse': PyTorch's layers run forward or bidirectional, never backward only");
        if (dir !== 'forward' && dir !== 'bidirectional') fail(`has an unknown direction '${dir}'`);
        const D = dir === 'bidirectional' ? 2 : 1;
        if (attrs.has('clip')) fail(`clips its cell pre-activations (clip = ${attrs.float('clip', 0)}), which PyTorch's layers do not`);
        if (attrs.int('layout', 0) !== 0) fail('has layout = 1 (batch-major); convertible pipelines use layout 0');
        if (op === 'LSTM' && attrs.int('input_forget', 0) !== 0) fail('couples the input and forget gates (input_forget = 1), which PyTorch\'s LSTM does not');
        if (op === 'GRU' && attrs.int('linear_before_reset', 0) !== 1) fail("has linear_before_reset = 0; PyTorch's GRU (and recur's) computes r ⊙ (W_hn·h + b_hn), i.e. linear_before_reset = 1");
        if (attrs.has('activation_alpha') || attrs.has('activation_beta')) fail('sets activation_alpha/beta, which PyTorch\'s layers do not have');
        const acts = attrs.strings('activations') ?? null;
        let cell: RecurrentKind = op === 'LSTM' ? 'lstm' : op === 'GRU' ? 'gru' : 'rnn';
        if (acts !== null && acts.length > 0) {
          // clip, input_forget and linear_before_reset = 0 are refused above
          const mode = pytorchMode(recOp, D, acts, { clip: false, inputForget: false, linearBeforeReset: true });
          if (!mode) fail(`has activations [${acts.join(', ')}], which no PyTorch ${op} layer has (${PYTORCH_ACTIVATIONS[recOp].map((a) => `[${a.join(', ')}]`).join(' or ')} per direction)`);
          if (mode === 'RNN_RELU') cell = 'rnn-relu';
        }
        const W = constOf(1, 'W'), R = constOf(2, 'R');
        const I = sx.F;
        if (W.shape.length !== 3 || W.shape[0] !== D || W.shape[1] !== G * H || (I > 0 && W.shape[2] !== I)) fail(`W has shape [${W.shape.join(', ')}], expected [${D}, ${G * H}, ${I > 0 ? I : 'I'}]`);
        if (R.shape.join() !== [D, G * H, H].join()) fail(`R has shape [${R.shape.join(', ')}], expected [${D}, ${G * H}, ${H}]`);
        const Bt = ins[3] ? constOf(3, 'B') : null;
        if (Bt && Bt.shape.join() !== [D, 2 * G * H].join()) fail(`B has shape [${Bt.shape.join(', ')}], expected [${D}, ${2 * G * H}]`);
        if (ins[4]) fail('takes sequence_lens; convertible pipelines run every sequence to its full length');
        const initialUses: { input: string; start: number; end: number | null; which: 'h' | 'c'; node: string }[] = [];
        for (const [k, what] of [[5, 'initial_h'], [6, 'initial_c']] as const) {
          const v = ins[k];
          if (v?.k === 'state0') initialUses.push({ input: v.input, start: v.start, end: v.end, which: k === 5 ? 'h' : 'c', node: label });
          else if (v && !(v.k === 'zeros' || (v.k === 'const' && isZero(v.t)))) fail(`its ${what} is not zero (${v.k === 'const' ? 'a non-zero constant' : describe(v)}); a converted pipeline starts from zero states or from state inputs`);
        }
        if (ins[7]) fail('has peephole weights P, which PyTorch\'s LSTM does not');
        const In = W.shape[2];
        const layer: Layer = { wih: [], whh: [], bih: [], bhh: [] };
        for (let d = 0; d < D; d++) {
          const h = reorderDirection(spec, W.data, R.data, Bt ? Bt.data : null, d, H, In, (len) => new Float32Array(len));
          layer.wih.push(h.wih);
          layer.whh.push(h.whh);
          layer.bih.push(h.bih);
          layer.bhh.push(h.bhh);
        }
        // stack onto the previous recurrent node when this one reads its output and matches it
        const prev = sx.steps[sx.steps.length - 1];
        const scope = scopeOf(n);
        let steps: Draft[];
        let rec: Extract<Draft, { op: 'recurrent' }>;
        if (prev?.op === 'recurrent' && prev.cell === cell && prev.H === H && prev.D === D && prev.bias === (Bt !== null) && prev.name === scope) {
          rec = { ...prev, layers: [...prev.layers, layer] };
          steps = [...sx.steps.slice(0, -1), rec];
        } else {
          rec = { op: 'recurrent', id: nextId++, name: scope, cell, spec, I: In, H, D, bias: Bt !== null, layers: [layer] };
          steps = [...sx.steps, rec];
        }
        const l = rec.layers.length - 1;
        set({ k: 'y4', D, H, steps }, 0);
        const rows = Array.from({ length: D }, (_, d) => ({ layer: l, dir: d }));
        set({ k: 'hstates', state: 'h', rows, H, id: rec.id, steps }, 1);
        set({ k: 'hstates', state: 'c', rows, H, id: rec.id, steps }, 2);
        for (const use of initialUses) stateUses.push({ ...use, id: rec.id, layer: l, D });
        break;
      }
      case 'ReduceMean': {
        if (x.k !== 'seq') fail(`averages ${describe(x)}; only a mean over time is a pipeline step`);
        const sx = x as Extract<Val, { k: 'seq' }>;
        const axes = attrs.ints('axes') ?? (ins[1] ? intsIn(1, 'axes') : null);
        const keep = attrs.int('keepdims', 1);
        if (!axes || axes.length !== 1 || normAxis(axes[0], 3) !== timeAxisOf(sx) || keep !== 0) {
          fail(`reduces axes [${axes?.join(', ') ?? 'all'}] with keepdims ${keep}; the pipeline's mean is over the time axis ${timeAxisOf(sx)} with keepdims 0`);
        }
        set({ k: 'vec', F: sx.F, steps: [...sx.steps, { op: 'meanOverTime' }] });
        break;
      }
      case 'Gemm': {
        if (xi !== 0) fail('takes the pipeline\'s value as B or C; a linear layer takes it as A');
        const v = asVec(x);
        if (attrs.int('transA', 0) !== 0) fail('has transA = 1');
        if (attrs.float('alpha', 1) !== 1 || attrs.float('beta', 1) !== 1) fail('scales by alpha or beta other than 1');
        const Wt = constOf(1, 'the weight B');
        const transB = attrs.int('transB', 0) === 1;
        if (Wt.shape.length !== 2) fail('has a weight that is not a matrix');
        const [inF, outF] = transB ? [Wt.shape[1], Wt.shape[0]] : Wt.shape;
        if (v.F > 0 && inF !== v.F) fail(`has a weight for ${inF} input features, but its input has ${v.F}`);
        const C = ins[2] ? constOf(2, 'the bias C') : null;
        if (C && C.data.length !== outF) fail(`has a bias C of shape [${C.shape.join(', ')}], expected [${outF}]`);
        const name = ownerOf(n.input![1], 'weight') ?? (C ? ownerOf(n.input![2], 'bias') : null) ?? scopeOf(n);
        set({ k: 'vec', F: outF, steps: [...v.steps, { op: 'linear', name, inF, outF, weight: transB ? asF32(Wt) : asF32({ ...Wt, data: transpose2(Wt) }), bias: C ? asF32(C) : null, fromMatMul: false }] });
        break;
      }
      case 'MatMul': {
        if (xi !== 0) fail('multiplies a constant by the pipeline\'s value from the left; a linear layer is x · W');
        const v = x.k === 'seq' ? x : asVec(x);
        if (v.k === 'seq' && v.t1) fail('multiplies a sequence sliced to one step');
        const Wt = constOf(1, 'the weight');
        if (Wt.shape.length !== 2 || !isFloatDType(Wt.dtype)) fail('multiplies by something other than a float matrix [in, out]');
        const [inF, outF] = Wt.shape;
        if (v.F > 0 && inF !== v.F) fail(`has a weight for ${inF} input features, but its input has ${v.F}`);
        const name = ownerOf(n.input![1], 'weight') ?? scopeOf(n);
        const lin: Draft = { op: 'linear', name, inF, outF, weight: asF32({ ...Wt, data: transpose2(Wt) }), bias: null, fromMatMul: true };
        set(v.k === 'seq' ? { ...v, F: outF, steps: [...v.steps, lin] } : { k: 'vec', F: outF, steps: [...v.steps, lin] });
        break;
      }
      case 'Add': {
        const v = x.k === 'seq' ? x : asVec(x);
        const last = v.steps[v.steps.length - 1];
        const b = constOf(1 - xi, 'the bias');
        if (last?.op !== 'linear' || !last.fromMatMul || last.bias !== null) fail('adds a constant that is not the bias of a MatMul right before it');
        const lin = last as Extract<Draft, { op: 'linear' }>;
        if (b.data.length !== lin.outF || b.shape[b.shape.length - 1] !== lin.outF) fail(`adds a bias of shape [${b.shape.join(', ')}] to a linear layer with ${lin.outF} outputs`);
        const name = lin.name ?? ownerOf(n.input![1 - xi], 'bias') ?? scopeOf(n);
        const owner = ownerOf(n.input![1 - xi], 'bias');
        const steps = [...v.steps.slice(0, -1), { ...lin, name: owner ?? name, bias: asF32(b) }];
        set({ ...v, steps });
        break;
      }
      case 'Relu':
      case 'Tanh':
      case 'Sigmoid': {
        const v = x.k === 'seq' ? x : asVec(x);
        set({ ...v, steps: [...v.steps, { op: 'activation', fn: ACTIVATIONS[op] }] });
        break;
      }
      case 'Softmax':
      case 'LogSoftmax': {
        const v = x.k === 'seq' ? x : asVec(x);
        const rank = lastAxis(v);
        const axis = normAxis(attrs.int('axis', opset >= 13 ? -1 : 1), rank);
        if (axis !== rank - 1) fail(`normalises over axis ${axis} of ${describe(v)}; the pipeline's ${op} is over the last axis`);
        set({ ...v, steps: [...v.steps, { op: op === 'Softmax' ? 'softmax' : 'logSoftmax' }] });
        break;
      }
      default:
        fail(`is not a step of a convertible recurrent pipeline (it operates on ${describe(x)})`);
    }
  }

  const outputs = (graph.output ?? []).map((o) => o.name ?? '');
  if (outputs.length === 0) throw new OnnxConvertError('the graph has no output');
  const outVals = outputs.map((name) => {
    const v = vals.get(name);
    if (!v || !isData(v)) throw new OnnxConvertError(`output '${name}' does not depend on the input`);
    return v;
  });
  // the main output: the first sequence or vector (else the first final-state rows that make one)
  let mainAt = outVals.findIndex((v) => v.k === 'seq' || v.k === 'vec');
  if (mainAt < 0) mainAt = outVals.findIndex((v) => v.k === 'hcat' && v.state === 'h');
  if (mainAt < 0) throw new OnnxConvertError(`no output is a sequence or a vector per sample (outputs: ${outputs.map((o, i) => `'${o}' is ${describe(outVals[i])}`).join('; ')})`);
  const mainName = outputs[mainAt];
  const out = outVals[mainAt];
  let final: Extract<Val, { k: 'seq' | 'vec' }>;
  if (out.k === 'seq') {
    if (out.t1) throw new OnnxConvertError(`output '${mainName}' is a sequence sliced to its last step without the squeeze`);
    if (out.flip) throw new OnnxConvertError(`output '${mainName}' is a sequence laid out ${bf ? 'time-major' : 'batch-major'} while the input is ${bf ? 'batch-major' : 'time-major'}`);
    final = out;
  } else if (out.k === 'vec') {
    final = out;
  } else {
    const v = out as Extract<Val, { k: 'hcat' }>;
    const r = v.steps[v.steps.length - 1];
    const ok = r?.op === 'recurrent' && r.id === v.id && isTopRows(v.rows, r);
    if (!ok) throw new OnnxConvertError(`output '${mainName}' is final states other than the top layer's [B, D·H]`);
    final = { k: 'vec', F: v.rows.length * v.H, steps: [...v.steps, { op: 'finalState' }] };
  }
  const recs = final.steps.filter((s): s is Extract<Draft, { op: 'recurrent' }> => s.op === 'recurrent');
  if (recs.length === 0) throw new OnnxConvertError('the graph has no RNN, GRU or LSTM node on the way from its input to its output: it is not a recurrent pipeline');

  // the other outputs: the recurrent module's final states h_n (c_n), [L·D, B, H], or [B, H] when L·D = 1
  const outputKinds: OutputKind[] = [];
  outVals.forEach((v, i) => {
    if (i === mainAt) return void outputKinds.push('output');
    const name = outputs[i];
    if (recs.length !== 1) throw new OnnxConvertError(`output '${name}': final-state outputs are converted for a pipeline with one recurrent module (this one has ${recs.length})`);
    const rec = recs[0];
    if ((v.k !== 'hstates' && v.k !== 'hcat') || v.id !== rec.id) throw new OnnxConvertError(`output '${name}' is ${describe(v)}; besides the main output, a converted pipeline outputs only its recurrent module's final states`);
    const all: Row[] = [];
    for (let l = 0; l < rec.layers.length; l++) for (let d = 0; d < rec.D; d++) all.push({ layer: l, dir: d });
    const same = v.rows.length === all.length && v.rows.every((q, j) => q.layer === all[j].layer && q.dir === all[j].dir);
    if (!same || (v.k === 'hcat' && all.length !== 1)) throw new OnnxConvertError(`output '${name}' holds ${v.rows.length} of the ${all.length} final-state rows [L·D, B, H]; a converted pipeline outputs all of them, in order`);
    outputKinds.push(v.k === 'hcat' ? (v.state === 'h' ? 'hRow' : 'cRow') : v.state);
  });

  // initial-state inputs: every layer of the one recurrent module starts from its rows of them
  const extras = dataInputs.slice(1).map((i) => i.name ?? '');
  const stateInputs: ('h' | 'c')[] = [];
  if (extras.length) {
    if (recs.length !== 1) throw new OnnxConvertError(`initial-state inputs are converted for a pipeline with one recurrent module (this one has ${recs.length})`);
    const rec = recs[0];
    const uses = stateUses.filter((u) => u.id === rec.id && u.layer < rec.layers.length);
    for (const name of extras) {
      const mine = uses.filter((u) => u.input === name);
      if (mine.length === 0) throw new OnnxConvertError(`input '${name}' is not used as the initial state of the pipeline's recurrent layers`);
      const which = mine[0].which;
      if (mine.some((u) => u.which !== which)) throw new OnnxConvertError(`input '${name}' is used as both initial_h and initial_c`);
      for (let l = 0; l < rec.layers.length; l++) {
        const u = mine.find((q) => q.layer === l);
        if (!u) throw new OnnxConvertError(`input '${name}' gives no initial ${which} to layer ${l}; a converted module starts every layer from its rows of the state input`);
        const ok = u.end === null ? rec.layers.length === 1 && u.start === 0 : u.start === l * rec.D && u.end === (l + 1) * rec.D;
        if (!ok) throw new OnnxConvertError(`${u.node}: its initial ${which} is rows [${u.start}, ${u.end ?? 'end'}) of '${name}'; layer ${l} of ${rec.D === 2 ? 'a bidirectional' : 'a'} module takes rows [${l * rec.D}, ${(l + 1) * rec.D})`);
      }
      stateInputs.push(which);
    }
    if (new Set(stateInputs).size !== stateInputs.length) throw new OnnxConvertError('two inputs give the same initial state');
  }
  return build(final.steps, inputKind, bf ?? false, stateInputs, outputKinds);
}

type OutputKind = 'output' | 'h' | 'c' | 'hRow' | 'cRow';

function describe(v: Val): string {
  switch (v.k) {
    case 'ids': return 'token ids';
    case 'seq': return v.t1 ? 'a sequence sliced to one step' : 'a sequence';
    case 'y4': return "a recurrent node's output Y [T, D, B, H]";
    case 'y4t': return "a recurrent node's output transposed to [T, B, D, H]";
    case 'hstates': return 'final states [n, B, H]';
    case 'hstatesT': return 'final states transposed to [B, n, H]';
    case 'hcat': return 'final-state rows [B, n·H]';
    case 'vec': return 'a vector per sample [B, F]';
    case 'opaque': return v.what;
    case 'state0': return `the initial-state input '${v.input}'`;
    case 'const': return 'a constant';
    case 'meta': return 'shape bookkeeping';
    case 'zeros': return 'zeros';
  }
}

/** Name the modules, make the config and the model, load the weights. */
function build(drafts: Steps, input: 'ids' | 'features', batchFirst: boolean, stateInputs: ('h' | 'c')[], outputs: OutputKind[]): ConvertedOnnx {
  const DEFAULT: Record<string, string> = { embedding: 'embedding', recurrent: 'rnn', linear: 'fc' };
  const named = drafts.filter((d): d is Extract<Draft, { name: string | null }> => 'name' in d);
  // the exporter's names when every module has one, they are distinct, and none is inside another
  const given = named.map((d) => d.name);
  const usable = given.every((g): g is string => g !== null && /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(g))
    && new Set(given).size === given.length
    && !given.some((a) => given.some((b) => a !== b && b!.startsWith(`${a}.`)));
  const names = new Map<Draft, string>();
  const counts = new Map<string, number>();
  for (const d of named) {
    if (usable) names.set(d, d.name!);
    else {
      const base = DEFAULT[d.op];
      const k = counts.get(base) ?? 0;
      counts.set(base, k + 1);
      names.set(d, k === 0 ? base : `${base}${k}`);
    }
  }
  const steps: PipelineStep[] = drafts.map((d): PipelineStep => {
    switch (d.op) {
      case 'embedding': return { op: 'embedding', name: names.get(d)!, numEmbeddings: d.V, embeddingDim: d.E };
      case 'recurrent': return { op: 'recurrent', name: names.get(d)!, cell: d.cell, inputSize: d.I, hiddenSize: d.H, numLayers: d.layers.length, bidirectional: d.D === 2, bias: d.bias };
      case 'linear': return { op: 'linear', name: names.get(d)!, inFeatures: d.inF, outFeatures: d.outF, bias: d.bias !== null };
      case 'activation': return { op: 'activation', fn: d.fn };
      default: return { op: d.op };
    }
  });
  const config = parsePipelineConfig({ arch: 'pipeline', input, batchFirst, stateInputs, outputs, steps });
  const model = new PipelineModel(config);
  const sd: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const d of drafts) {
    const name = names.get(d);
    if (d.op === 'embedding') sd[`${name}.weight`] = { shape: [d.V, d.E], data: d.weight };
    if (d.op === 'linear') {
      sd[`${name}.weight`] = { shape: [d.outF, d.inF], data: d.weight };
      if (d.bias) sd[`${name}.bias`] = { shape: [d.outF], data: d.bias };
    }
    if (d.op === 'recurrent') {
      const GH = d.spec.G * d.H;
      d.layers.forEach((layer, l) => {
        for (let dir = 0; dir < d.D; dir++) {
          const sfx = `_l${l}${dir === 1 ? '_reverse' : ''}`;
          const In = l === 0 ? d.I : d.H * d.D;
          sd[`${name}.weight_ih${sfx}`] = { shape: [GH, In], data: layer.wih[dir] };
          sd[`${name}.weight_hh${sfx}`] = { shape: [GH, d.H], data: layer.whh[dir] };
          if (d.bias) {
            sd[`${name}.bias_ih${sfx}`] = { shape: [GH], data: layer.bih[dir]! };
            sd[`${name}.bias_hh${sfx}`] = { shape: [GH], data: layer.bhh[dir]! };
          }
        }
      });
    }
  }
  model.loadStateDict(sd);
  return { model, config, summary: summarize(config) };
}

/** One line per step: "embedding emb: 11 → 5", "recurrent rnn: lstm 5 → 7 ×2 layers, bidirectional". */
export function summarize(config: PipelineConfig): string {
  const lines = [`input: ${config.input === 'ids' ? 'token ids' : 'features'} ${config.batchFirst ? '[B, T' : '[T, B'}${config.input === 'ids' ? ']' : ', I]'}`];
  for (const s of config.steps) {
    switch (s.op) {
      case 'embedding': lines.push(`embedding ${s.name}: ${s.numEmbeddings} tokens → ${s.embeddingDim}`); break;
      case 'recurrent': lines.push(`${s.cell} ${s.name}: ${s.inputSize} → ${s.hiddenSize}${s.numLayers > 1 ? `, ${s.numLayers} layers` : ''}${s.bidirectional ? ', bidirectional' : ''}${s.bias ? '' : ', no bias'}`); break;
      case 'linear': lines.push(`linear ${s.name}: ${s.inFeatures} → ${s.outFeatures}${s.bias ? '' : ', no bias'}`); break;
      case 'activation': lines.push(s.fn); break;
      default: lines.push(s.op);
    }
  }
  return lines.join('\n') + '\n';
}
