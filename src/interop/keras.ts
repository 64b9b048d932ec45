/**
 * Keras / TensorFlow.js layers-model import: `model.json` (the layers-model topology plus a
 * `weightsManifest`) and its binary weight shards (little-endian float32, the shards of each
 * manifest group concatenated in order, the weights laid out one after another in manifest order).
 *
 * Supported: Sequential models of InputLayer, Embedding, SimpleRNN, LSTM, GRU (reset_after true
 * and false), Dense, Activation, Bidirectional (merge_mode concat | sum | mul | ave),
 * TimeDistributed(Dense) and Dropout (identity at inference), with return_sequences, go_backwards,
 * activations tanh | relu | sigmoid | hard_sigmoid | linear | softmax (softmax: Dense/Activation
 * only). Anything else is an error naming the layer and the option.
 *
 * Layout conversion. Keras stores kernel [I, G·H], recurrent_kernel [H, G·H] and bias [G·H]
 * (GRU reset_after=true: bias [2, G·H] = [input_bias; recurrent_bias]) with gate blocks
 *   LSTM i, f, c, o        GRU z, r, h
 * recur (PyTorch) wants weight_ih [G·H, I], weight_hh [G·H, H], b_ih, b_hh with
 *   LSTM i, f, g, o        GRU r, z, n
 * so the import transposes and reorders the blocks (the orders live in the cell records of
 * src/cells/, and reorderGates moves the blocks). When a layer means exactly what PyTorch's
 * layer computes — SimpleRNN tanh|relu; LSTM tanh with sigmoid gates; GRU reset_after=true, tanh
 * with sigmoid gates — it runs on recur's fused recurrent kernels. Everything else (GRU
 * reset_after=false, whose reset gate multiplies h BEFORE the recurrent product and has no PyTorch
 * equivalent; hard_sigmoid gates; other activations) runs on a float64 host implementation of the
 * Keras equations below, which the fused layers are also cross-checked against in the tests:
 *
 *   SimpleRNN  h = act(x·K + h₋·R + b)
 *   LSTM       [i f c o] = x·K + h₋·R + b;  i,f,o ← rec(·);  c = f⊙c₋ + i⊙act(c);  h = o⊙act(c)
 *   GRU        reset_after = false:  z = rec(x·K_z + h₋·R_z + b_z),  r = rec(x·K_r + h₋·R_r + b_r),
 *                                    ĥ = act(x·K_h + b_h + (r⊙h₋)·R_h)
 *              reset_after = true:   z = rec(x·K_z + b_z + h₋·R_z + b'_z), r likewise,
 *                                    ĥ = act(x·K_h + b_h + r⊙(h₋·R_h + b'_h))
 *              h = z⊙h₋ + (1 − z)⊙ĥ
 *
 * go_backwards: the layer reads the sequence last step first, and (with return_sequences) its
 * outputs come out in that processing order, as in Keras. Bidirectional flips the backward
 * layer's sequence output back into time order before merging, as Keras does.
 *
 * hard_sigmoid differs between Keras versions: Keras 2 and TensorFlow.js compute
 * clip(0.2·x + 0.5, 0, 1); Keras 3 computes relu6(x + 3) / 6 = clip(x/6 + 0.5, 0, 1). The import
 * follows the file's `keras_version` (3.x → Keras 3; 2.x, tfjs-layers or absent → Keras 2) unless
 * the `hardSigmoid` option says otherwise.
 *
 * This module has no Node-only imports (parseKerasModel takes a shard reader); `loadKerasModel`,
 * which reads files, lives in keras-file.ts.
 */
import { shapeSize, tensor } from '../tensor/tensor.ts';
import type { DType } from '../backend/interface.ts';
import { noGrad } from '../autograd/tape.ts';
import { permute } from '../autograd/ops/shape.ts';
import { cellForFormat, recurrentLayer, reorderGates, type DirectionParams, type RecurrentMode } from '../cells/recurrent.ts';
import { checkLimit, LimitError, resolveLimits, type Limits } from '../io/limits.ts';
import { z } from 'zod';
import { brief } from '../util/options.ts';

export class KerasImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KerasImportError';
  }
}

/** A host array: shape + flat row-major values. */
export interface KerasArray {
  shape: number[];
  data: Float64Array;
}

export interface KerasInput {
  shape: readonly number[];
  data: ArrayLike<number>;
}

export type HardSigmoidConvention = 'keras2' | 'keras3';

export interface KerasLoadOptions {
  /** Which hard_sigmoid to use; default from the file's keras_version (see the file comment). */
  hardSigmoid?: HardSigmoidConvention;
  /** Run every recurrent layer on the host reference implementation (for cross-checks). */
  forceReference?: boolean;
  /** Precision of the fused recurrent layers (default float64). */
  dtype?: DType;
  /**
   * Resource limits for the file (model.json bytes, shard bytes, weights, elements, parameters,
   * layers, units, vocabulary); the defaults of io/limits.ts, with these overrides.
   */
  limits?: Partial<Limits>;
}

/**
 * Where the weight shards come from. A plain function `(path) => bytes` is the simple form (the
 * caller owns the bytes, e.g. in memory). A source with `size` is asked for every shard's byte
 * size first, so that sizes are checked against the limits and against what the manifest's
 * weights need BEFORE anything is read: a shard path naming a huge or endless file is refused
 * without reading a byte of it. `read(path, bytes)` must then return exactly `bytes` bytes.
 */
export interface KerasShardSource {
  size(path: string): number;
  read(path: string, bytes: number): Uint8Array;
}

export type KerasShardReader = ((path: string) => Uint8Array) | KerasShardSource;

export interface KerasLayerInfo {
  name: string;
  className: string;
  /** e.g. "LSTM(units=4, return_sequences)". */
  description: string;
  outputShape: (number | null)[];
  params: number;
  /** Recurrent layers: which implementation runs them. */
  engine?: 'fused' | 'reference';
}

export interface KerasModel {
  name: string;
  kerasVersion: string | null;
  hardSigmoid: HardSigmoidConvention;
  inputShape: (number | null)[] | null;
  layers: KerasLayerInfo[];
  numParameters: number;
  /** A printable summary (one line per layer). */
  summary: string;
  /** x: [B, T] token ids (Embedding first), [B, T, F] (recurrent first) or [B, …, F] (Dense first). */
  predict(x: KerasInput): KerasArray;
}

/** A weight as read from the shards. */
export interface KerasWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

// ---- model.json and shards -------------------------------------------------------------------------

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A value from the file, printable whatever it is (String() throws on an object without a prototype). */
const show = (v: unknown): string => {
  try {
    return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    return '(unprintable value)';
  }
};

const fmtShape = (s: readonly (number | null)[]): string => `[${s.map((d) => (d === null ? 'null' : String(d))).join(', ')}]`;

// ---- the parts of model.json the importer reads, each declared once -------------------------------
//
// Each leaf carries the form it expects as its error message (as in train/options.ts), so a bad
// value reads "layer 'dense': 'units' must be a positive integer, got 0". The schemas name only
// the fields they type; the rest of a layer's config (activations, unsupported options) is read
// by the builders, which name what they reject.

const positiveInt = () => z.int({ error: 'a positive integer' }).min(1, { error: 'a positive integer' });

/** A weightsManifest entry. dtype and quantization are checked by readKerasWeights, which names them. */
const manifestWeightSchema = z.object({
  name: z.string(),
  shape: z.array(z.int().min(0)),
  dtype: z.unknown().optional(),
  quantization: z.unknown().optional(),
});

const denseConfigSchema = z.object({ units: positiveInt() });

const recurrentConfigSchema = z.object({
  units: positiveInt(),
  // null: Keras's default (true), as is an absent key
  reset_after: z.boolean({ error: 'true or false' }).nullish(),
});

const embeddingConfigSchema = z.object({ input_dim: positiveInt(), output_dim: positiveInt() });

/** The typed fields of a layer's config, or an error naming the layer, the key, the form and the value. */
function configOf<T>(layer: string, schema: z.ZodType<T>, cfg: Record<string, unknown>): T {
  const r = schema.safeParse(cfg);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = issue.path.map(String).join('.');
  throw new KerasImportError(`layer '${layer}': '${key}' must be ${issue.message}, got ${brief(cfg[String(issue.path[0])])}`);
}

/** A batch shape from a layer config: integers, null for an axis of any size. */
function isBatchShape(s: unknown): s is ShapeN {
  return Array.isArray(s) && s.every((d) => d === null || Number.isSafeInteger(d));
}

/** product(shape), or null when it is not a safe integer (a shape no file can back). */
function safeCount(shape: readonly number[]): number | null {
  let n = 1;
  for (const d of shape) {
    if (d === 0) return 0;
    if (n > Number.MAX_SAFE_INTEGER / d) return null;
    n *= d;
  }
  return n;
}

/**
 * Read the weights of a parsed model.json. `readShard` gives a shard's bytes (see
 * KerasShardReader; with a size-reporting source every size is checked before any shard is
 * read); `where` names the file in messages. The manifest's own claims (weights, elements,
 * parameters) are checked against `limits` before any shard is touched.
 */
export function readKerasWeights(modelJson: unknown, readShard: KerasShardReader, where = 'model.json', limits: Partial<Limits> = {}): Map<string, KerasWeight> {
  const lim = resolveLimits(limits);
  if (!isObj(modelJson)) throw new KerasImportError(`${where}: expected a JSON object with modelTopology and weightsManifest`);
  const manifest = modelJson.weightsManifest;
  if (!Array.isArray(manifest)) throw new KerasImportError(`${where}: 'weightsManifest' is missing or not an array`);
  const readFn = typeof readShard === 'function' ? readShard : null;
  const source: KerasShardSource | null = typeof readShard === 'function' ? null : readShard;
  const out = new Map<string, KerasWeight>();
  const seen = new Set<string>();
  let numWeights = 0;
  let numParameters = 0;
  manifest.forEach((group, gi) => {
    const g = `${where}: weightsManifest[${gi}]`;
    if (!isObj(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) throw new KerasImportError(`${g} must be {paths: [...], weights: [...]}`);
    numWeights += group.weights.length;
    checkLimit(lim, 'tensors', numWeights, `${where}: weights listed in the weightsManifest`);
    const entries: (ManifestEntry & { count: number })[] = group.weights.map((w, wi) => {
      const parsed = manifestWeightSchema.safeParse(w);
      if (!parsed.success) throw new KerasImportError(`${g}.weights[${wi}] must be {name, shape: [non-negative integers], dtype}`);
      const { name, shape } = parsed.data;
      const dtype = parsed.data.dtype === undefined ? 'float32' : parsed.data.dtype;
      if (dtype !== 'float32') throw new KerasImportError(`${g}: weight '${name}' has dtype ${show(dtype)}; only float32 weights are supported`);
      if (parsed.data.quantization !== undefined) throw new KerasImportError(`${g}: weight '${name}' is quantized; quantized weights are not supported`);
      if (seen.has(name)) throw new KerasImportError(`${g}: weight '${name}' is listed twice in the manifest`);
      seen.add(name);
      const count = safeCount(shape);
      // an overflowing shape is over any limit: report it as such rather than as a wrong number
      checkLimit(lim, 'tensorElements', count ?? Number.MAX_SAFE_INTEGER, `${g}: weight '${name}' of shape ${fmtShape(shape)}: elements`);
      numParameters += count!;
      checkLimit(lim, 'parameters', numParameters, `${where}: parameters of the weights in the weightsManifest (up to weight '${name}')`);
      return { name: name, shape, dtype, count: count! };
    });
    const need = entries.reduce((n, e) => n + 4 * e.count, 0);
    const paths: string[] = group.paths.map((p, pi) => {
      if (typeof p !== 'string' || p === '') throw new KerasImportError(`${g}.paths[${pi}] must be a file name`);
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) throw new KerasImportError(`${g}: shard '${p}' is a URL; only local shard files are supported`);
      return p;
    });
    const sizeError = (total: number): KerasImportError =>
      // The message says whether the shards are short or long but not their size: a shard path
      // must not become a way to learn the size of a file.
      new KerasImportError(`${g}: the shards (${paths.join(', ')}) ${total < need ? 'hold fewer' : 'hold more'} bytes than the ${need} bytes (${need / 4} float32 values) the listed weights need${total < need ? ' — a shard is short or missing' : ''}`);
    let parts: Uint8Array[];
    if (source) {
      // sizes first: every shard within the file limit and the group's total exactly what its
      // weights need, before a byte is read
      const sizes = paths.map((p) => {
        const n = source.size(p);
        if (n > lim.fileBytes) throw new LimitError('fileBytes', lim.fileBytes, n, `${g}: weight shard '${p}' is larger than the limit of ${lim.fileBytes} bytes (fileBytes); raise it with the 'fileBytes' limit if the file is trusted`);
        return n;
      });
      const total = sizes.reduce((a, b) => a + b, 0);
      if (total !== need) throw sizeError(total);
      parts = paths.map((p, i) => {
        const b = source.read(p, sizes[i]);
        if (b.length !== sizes[i]) throw new KerasImportError(`${g}: weight shard '${p}' changed while it was being read`);
        return b;
      });
    } else {
      parts = paths.map((p) => readFn!(p));
      const total = parts.reduce((n, b) => n + b.length, 0);
      if (total !== need) throw sizeError(total);
    }
    const bytes = new Uint8Array(need);
    let off = 0;
    for (const b of parts) {
      bytes.set(b, off);
      off += b.length;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    off = 0;
    for (const e of entries) {
      const n = e.count;
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(off + 4 * i, true);
      off += 4 * n;
      out.set(e.name, { name: e.name, shape: e.shape, data });
    }
  });
  return out;
}

// ---- activations ---------------------------------------------------------------------------------

type Act = (x: number) => number;
const sigmoid: Act = (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const hardSigmoid2: Act = (x) => Math.min(1, Math.max(0, 0.2 * x + 0.5));
const hardSigmoid3: Act = (x) => Math.min(6, Math.max(0, x + 3)) / 6;

const ACT_NAMES: Record<string, string> = {
  tanh: 'tanh', relu: 'relu', sigmoid: 'sigmoid', hard_sigmoid: 'hard_sigmoid', hardsigmoid: 'hard_sigmoid',
  linear: 'linear', softmax: 'softmax', hardSigmoid: 'hard_sigmoid',
};

/** The canonical activation name, or an error naming the layer and option. */
function activationName(layer: string, option: string, v: unknown, dflt: string, allowSoftmax: boolean): string {
  let name: unknown = v === undefined || v === null ? dflt : v;
  // Keras 3 may serialise an activation as {class_name, config} or {module, class_name, config}
  if (isObj(name)) name = name.class_name ?? (isObj(name.config) ? name.config.name : undefined);
  const canon = typeof name === 'string' ? ACT_NAMES[name] : undefined;
  if (!canon || (canon === 'softmax' && !allowSoftmax)) {
    throw new KerasImportError(`layer '${layer}': unsupported ${option} ${JSON.stringify(name)} (supported: tanh, relu, sigmoid, hard_sigmoid, linear${allowSoftmax ? ', softmax' : ''})`);
  }
  return canon;
}

function scalarAct(name: string, hs: HardSigmoidConvention): Act {
  switch (name) {
    case 'tanh': return Math.tanh;
    case 'relu': return (x) => (x > 0 ? x : 0);
    case 'sigmoid': return sigmoid;
    case 'hard_sigmoid': return hs === 'keras3' ? hardSigmoid3 : hardSigmoid2;
    case 'linear': return (x) => x;
    default: throw new KerasImportError(`internal: no scalar activation '${name}'`);
  }
}

/** Apply an activation over the last axis (softmax) or elementwise, in place. */
function applyActivation(a: KerasArray, name: string, hs: HardSigmoidConvention): void {
  const d = a.data;
  if (name === 'linear') return;
  if (name === 'softmax') {
    const n = a.shape[a.shape.length - 1];
    for (let off = 0; off < d.length; off += n) {
      let m = -Infinity;
      for (let i = 0; i < n; i++) m = Math.max(m, d[off + i]);
      let s = 0;
      for (let i = 0; i < n; i++) s += d[off + i] = Math.exp(d[off + i] - m);
      for (let i = 0; i < n; i++) d[off + i] /= s;
    }
    return;
  }
  const f = scalarAct(name, hs);
  for (let i = 0; i < d.length; i++) d[i] = f(d[i]);
}

// ---- layers --------------------------------------------------------------------------------------

type ShapeN = (number | null)[];

interface BuiltLayer {
  info: KerasLayerInfo;
  apply(x: KerasArray): KerasArray;
}

interface BuildContext {
  weights: Map<string, KerasWeight>;
  used: Set<string>;
  hs: HardSigmoidConvention;
  opts: KerasLoadOptions;
}

/** Reject options that change the meaning of a layer in ways the importer does not implement. */
function rejectOptions(layer: string, cfg: Record<string, unknown>, checks: [string, (v: unknown) => boolean, string][]): void {
  for (const [key, ok, why] of checks) {
    if (cfg[key] !== undefined && !ok(cfg[key])) throw new KerasImportError(`layer '${layer}': unsupported option ${key}=${JSON.stringify(cfg[key])} (${why})`);
  }
}
const falsy = (v: unknown): boolean => v === false || v === null || v === 0;

/** The weights under `prefix/` whose last name segment is `leaf` (":0" suffixes ignored). */
function findWeight(ctx: BuildContext, layer: string, candidates: string[], leaf: string, required: boolean): KerasWeight | null {
  const hits = candidates.filter((n) => n.split('/').pop()!.replace(/:\d+$/, '') === leaf);
  if (hits.length > 1) throw new KerasImportError(`layer '${layer}': several weights could be its '${leaf}': ${hits.join(', ')}`);
  if (hits.length === 0) {
    if (required) throw new KerasImportError(`layer '${layer}': weight '${leaf}' is missing from the weightsManifest (weights found under it: ${candidates.length ? candidates.join(', ') : 'none'})`);
    return null;
  }
  ctx.used.add(hits[0]);
  return ctx.weights.get(hits[0])!;
}

function weightsUnder(ctx: BuildContext, prefix: string): string[] {
  return [...ctx.weights.keys()].filter((n) => n.startsWith(`${prefix}/`));
}

function expectShape(layer: string, w: KerasWeight, shape: number[]): void {
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new KerasImportError(`layer '${layer}': weight '${w.name}' has shape ${fmtShape(w.shape)}, but the layer's configuration needs ${fmtShape(shape)}`);
  }
}

function lastDim(layer: string, inShape: ShapeN | null, what: string): number | null {
  if (!inShape) return null;
  const f = inShape[inShape.length - 1];
  if (f === undefined) throw new KerasImportError(`layer '${layer}': ${what} needs an input with a feature axis, got ${fmtShape(inShape)}`);
  return f;
}

// Dense ----------------------------------------------------------------------------------------------

function denseParts(ctx: BuildContext, layer: string, cfg: Record<string, unknown>, candidates: string[], inShape: ShapeN | null): { K: KerasWeight; b: KerasWeight | null; units: number; act: string } {
  const { units } = configOf(layer, denseConfigSchema, cfg);
  const act = activationName(layer, 'activation', cfg.activation, 'linear', true);
  rejectOptions(layer, cfg, [['lora_rank', falsy, 'LoRA layers are not supported']]);
  const useBias = cfg.use_bias !== false;
  const K = findWeight(ctx, layer, candidates, 'kernel', true)!;
  const I = lastDim(layer, inShape, 'Dense') ?? K.shape[0];
  expectShape(layer, K, [I, units]);
  const b = useBias ? findWeight(ctx, layer, candidates, 'bias', true) : null;
  if (b) expectShape(layer, b, [units]);
  return { K, b, units, act };
}

function denseApply(x: KerasArray, K: KerasWeight, b: KerasWeight | null, act: string, hs: HardSigmoidConvention, layer: string): KerasArray {
  const [I, U] = K.shape;
  const f = x.shape[x.shape.length - 1];
  if (x.shape.length < 2 || f !== I) throw new KerasImportError(`layer '${layer}': input must be [..., ${I}], got ${fmtShape(x.shape)}`);
  const rows = x.data.length / I;
  const y = new Float64Array(rows * U);
  for (let r = 0; r < rows; r++) {
    const yo = r * U;
    if (b) for (let u = 0; u < U; u++) y[yo + u] = b.data[u];
    for (let i = 0; i < I; i++) {
      const xv = x.data[r * I + i];
      if (xv === 0) continue;
      const ko = i * U;
      for (let u = 0; u < U; u++) y[yo + u] += xv * K.data[ko + u];
    }
  }
  const out = { shape: [...x.shape.slice(0, -1), U], data: y };
  applyActivation(out, act, hs);
  return out;
}

// Recurrent ------------------------------------------------------------------------------------------

type RecKind = 'SimpleRNN' | 'LSTM' | 'GRU';

interface RecSpec {
  kind: RecKind;
  layer: string;
  units: number;
  inputSize: number;
  act: string;
  recAct: string;
  resetAfter: boolean;
  returnSequences: boolean;
  goBackwards: boolean;
  K: KerasWeight;
  R: KerasWeight;
  /** [G·H], or [2, G·H] for GRU reset_after. */
  b: KerasWeight | null;
}

function parseRecurrent(ctx: BuildContext, kind: RecKind, layer: string, cfg: Record<string, unknown>, candidates: string[], inShape: ShapeN | null): RecSpec {
  const { units: H, reset_after } = configOf(layer, recurrentConfigSchema, cfg);
  rejectOptions(layer, cfg, [
    ['return_state', falsy, 'return_state=true returns several tensors; only single-output Sequential models are supported'],
    ['stateful', falsy, 'stateful layers are not supported'],
    ['time_major', falsy, 'time-major recurrent layers are not supported'],
    ['use_cudnn', (v) => v === 'auto' || typeof v === 'boolean', 'expected auto, true or false'],
  ]);
  if (kind !== 'GRU' && cfg.reset_after !== undefined) throw new KerasImportError(`layer '${layer}': option reset_after applies to GRU only`);
  const act = activationName(layer, 'activation', cfg.activation, 'tanh', false);
  const recAct = kind === 'SimpleRNN' ? 'sigmoid' : activationName(layer, 'recurrent_activation', cfg.recurrent_activation, 'sigmoid', false);
  // Keras 2.3+ and Keras 3 default reset_after to true; TF.js (and Keras < 2.3) wrote false explicitly.
  const resetAfter = kind === 'GRU' && (reset_after ?? true);
  const G = cellForFormat('keras', kind).G;
  const K = findWeight(ctx, layer, candidates, 'kernel', true)!;
  const I = lastDim(layer, inShape, kind) ?? K.shape[0];
  if (inShape && inShape.length !== 3) throw new KerasImportError(`layer '${layer}': ${kind} needs a 3-D input [batch, time, features], but the previous layer gives ${fmtShape(inShape)}`);
  expectShape(layer, K, [I, G * H]);
  const R = findWeight(ctx, layer, candidates, 'recurrent_kernel', true)!;
  expectShape(layer, R, [H, G * H]);
  const useBias = cfg.use_bias !== false;
  const b = useBias ? findWeight(ctx, layer, candidates, 'bias', true) : null;
  if (b) expectShape(layer, b, resetAfter ? [2, G * H] : [G * H]);
  return {
    kind, layer, units: H, inputSize: I, act, recAct, resetAfter,
    returnSequences: cfg.return_sequences === true, goBackwards: cfg.go_backwards === true, K, R, b,
  };
}

/** The recur fused mode that computes exactly this layer, or null. */
function fusedMode(s: RecSpec): RecurrentMode | null {
  if (s.kind === 'SimpleRNN') return s.act === 'tanh' ? 'RNN_TANH' : s.act === 'relu' ? 'RNN_RELU' : null;
  if (s.act !== 'tanh' || s.recAct !== 'sigmoid') return null;
  if (s.kind === 'LSTM') return 'LSTM';
  return s.resetAfter ? 'GRU' : null;
}

/** Keras [rows, G·H] (gate blocks in Keras order) → recur [G·H, rows] (recur order). */
function toRecurMatrix(w: KerasWeight, kind: RecKind, H: number): Float64Array {
  const cell = cellForFormat('keras', kind);
  const rows = w.shape[0], GH = cell.G * H;
  const transposed = new Float64Array(GH * rows); // [G·H, rows], still in Keras gate order
  for (let r = 0; r < rows; r++) for (let k = 0; k < GH; k++) transposed[k * rows + r] = w.data[r * GH + k];
  return reorderGates(transposed, 'keras', 'recur', { cell, H, cols: rows, dst: new Float64Array(GH * rows) });
}

/** One Keras bias vector [G·H] from `srcOffset` → recur gate order. */
function toRecurBias(data: Float32Array, srcOffset: number, kind: RecKind, H: number): Float64Array {
  const cell = cellForFormat('keras', kind);
  return reorderGates(data, 'keras', 'recur', { cell, H, cols: 1, srcOffset, dst: new Float64Array(cell.G * H) });
}

interface RecRunner {
  engine: 'fused' | 'reference';
  /** x: [B, T, I] in processing order. Returns outputs [B, T, H] in processing order. */
  run(x: KerasArray): KerasArray;
}

function makeFused(s: RecSpec, mode: RecurrentMode, dtype: DType): RecRunner {
  const H = s.units;
  const G = cellForFormat('keras', s.kind).G;
  const o = { dtype };
  const params: DirectionParams = {
    weightIh: tensor(toRecurMatrix(s.K, s.kind, H), [G * H, s.inputSize], o),
    weightHh: tensor(toRecurMatrix(s.R, s.kind, H), [G * H, H], o),
    biasIh: s.b ? tensor(toRecurBias(s.b.data, 0, s.kind, H), [G * H], o) : null,
    biasHh: s.b ? tensor(s.resetAfter ? toRecurBias(s.b.data, G * H, s.kind, H) : new Float64Array(G * H), [G * H], o) : null,
  };
  return {
    engine: 'fused',
    run(x) {
      const [B, T] = x.shape;
      // batch-major in and out; the layer runs time-major
      const y = noGrad(() => permute(recurrentLayer(mode, permute(tensor(x.data, x.shape, o), [1, 0, 2]), [params], null, null, null).y, [1, 0, 2]));
      return { shape: [B, T, H], data: Float64Array.from(y.toArray()) };
    },
  };
}

/** The Keras equations on the host in float64 (see the file comment). */
function makeReference(s: RecSpec, hs: HardSigmoidConvention): RecRunner {
  const H = s.units;
  const G = cellForFormat('keras', s.kind).G;
  const GH = G * H;
  const act = scalarAct(s.act, hs);
  const rec = scalarAct(s.recAct, hs);
  const K = Float64Array.from(s.K.data);
  const R = Float64Array.from(s.R.data);
  const bIn = new Float64Array(GH);
  const bRec = new Float64Array(GH);
  if (s.b) {
    for (let i = 0; i < GH; i++) bIn[i] = s.b.data[i];
    if (s.resetAfter) for (let i = 0; i < GH; i++) bRec[i] = s.b.data[GH + i];
  }
  return {
    engine: 'reference',
    run(x) {
      const [B, T, I] = x.shape;
      const out = new Float64Array(B * T * H);
      const gx = new Float64Array(GH);
      const gh = new Float64Array(GH);
      for (let b = 0; b < B; b++) {
        let h = new Float64Array(H);
        const c = new Float64Array(H);
        for (let t = 0; t < T; t++) {
          // gx = x_t·K + b_in
          gx.set(bIn);
          const xo = (b * T + t) * I;
          for (let i = 0; i < I; i++) {
            const xv = x.data[xo + i];
            for (let k = 0; k < GH; k++) gx[k] += xv * K[i * GH + k];
          }
          // gh = h·R + b_rec, over all gates except GRU reset_after=false's candidate block
          const matCols = s.kind === 'GRU' && !s.resetAfter ? 2 * H : GH;
          gh.fill(0);
          for (let k = 0; k < matCols; k++) gh[k] = bRec[k];
          for (let i = 0; i < H; i++) {
            const hv = h[i];
            for (let k = 0; k < matCols; k++) gh[k] += hv * R[i * GH + k];
          }
          const hn = new Float64Array(H);
          if (s.kind === 'SimpleRNN') {
            for (let j = 0; j < H; j++) hn[j] = act(gx[j] + gh[j]);
          } else if (s.kind === 'LSTM') {
            for (let j = 0; j < H; j++) {
              const i_ = rec(gx[j] + gh[j]);
              const f = rec(gx[H + j] + gh[H + j]);
              const cc = act(gx[2 * H + j] + gh[2 * H + j]);
              const o = rec(gx[3 * H + j] + gh[3 * H + j]);
              c[j] = f * c[j] + i_ * cc;
              hn[j] = o * act(c[j]);
            }
          } else {
            const z = new Float64Array(H);
            const r = new Float64Array(H);
            for (let j = 0; j < H; j++) {
              z[j] = rec(gx[j] + gh[j]);
              r[j] = rec(gx[H + j] + gh[H + j]);
            }
            let cand: Float64Array;
            if (s.resetAfter) {
              cand = new Float64Array(H);
              for (let j = 0; j < H; j++) cand[j] = gx[2 * H + j] + r[j] * gh[2 * H + j];
            } else {
              // (r ⊙ h)·R_h
              cand = Float64Array.from(gx.subarray(2 * H, 3 * H));
              for (let i = 0; i < H; i++) {
                const rh = r[i] * h[i];
                for (let j = 0; j < H; j++) cand[j] += rh * R[i * GH + 2 * H + j];
              }
            }
            for (let j = 0; j < H; j++) hn[j] = z[j] * h[j] + (1 - z[j]) * act(cand[j]);
          }
          h = hn;
          out.set(h, (b * T + t) * H);
        }
      }
      return { shape: [B, T, H], data: out };
    },
  };
}

function makeRunner(ctx: BuildContext, s: RecSpec): RecRunner {
  const mode = ctx.opts.forceReference ? null : fusedMode(s);
  return mode ? makeFused(s, mode, ctx.opts.dtype ?? 'float64') : makeReference(s, ctx.hs);
}

function reverseTime(x: KerasArray): KerasArray {
  const [B, T] = x.shape;
  const F = x.data.length / (B * T);
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out.set(x.data.subarray((b * T + t) * F, (b * T + t + 1) * F), (b * T + (T - 1 - t)) * F);
  return { shape: [...x.shape], data: out };
}

function lastStep(y: KerasArray): KerasArray {
  const [B, T, H] = y.shape;
  const out = new Float64Array(B * H);
  for (let b = 0; b < B; b++) out.set(y.data.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
  return { shape: [B, H], data: out };
}

function checkSeqInput(layer: string, x: KerasArray, I: number): void {
  if (x.shape.length !== 3 || x.shape[2] !== I) throw new KerasImportError(`layer '${layer}': input must be [batch, time, ${I}], got ${fmtShape(x.shape)}`);
  if (x.shape[1] === 0) throw new KerasImportError(`layer '${layer}': the input has no time steps`);
}

/** Run one recurrent direction: processing-order outputs [B, T, H] (go_backwards reverses first). */
function runDirection(s: RecSpec, runner: RecRunner, x: KerasArray): KerasArray {
  checkSeqInput(s.layer, x, s.inputSize);
  return runner.run(s.goBackwards ? reverseTime(x) : x);
}

function describeRec(s: RecSpec): string {
  const opts = [`units=${s.units}`];
  if (s.act !== 'tanh') opts.push(`activation=${s.act}`);
  if (s.kind !== 'SimpleRNN') opts.push(`recurrent_activation=${s.recAct}`);
  if (s.kind === 'GRU') opts.push(`reset_after=${s.resetAfter}`);
  if (s.returnSequences) opts.push('return_sequences');
  if (s.goBackwards) opts.push('go_backwards');
  if (!s.b) opts.push('use_bias=false');
  return `${s.kind}(${opts.join(', ')})`;
}

const recParams = (s: RecSpec): number => s.K.data.length + s.R.data.length + (s.b ? s.b.data.length : 0);

// ---- model building --------------------------------------------------------------------------------

interface LayerCfg {
  className: string;
  config: Record<string, unknown>;
}

function layerCfg(v: unknown, where: string): LayerCfg {
  if (!isObj(v) || typeof v.class_name !== 'string' || !isObj(v.config)) throw new KerasImportError(`${where}: expected {class_name, config}`);
  return { className: v.class_name, config: v.config };
}

function batchShapeOf(cfg: Record<string, unknown>): ShapeN | null {
  const s = cfg.batch_input_shape ?? cfg.batch_shape;
  return isBatchShape(s) ? s : null;
}

const SUPPORTED = 'InputLayer, Embedding, SimpleRNN, LSTM, GRU, Dense, Activation, Dropout, Bidirectional, TimeDistributed(Dense)';

function buildLayer(ctx: BuildContext, lc: LayerCfg, index: number, inShape: ShapeN | null): { layer: BuiltLayer; outShape: ShapeN | null } {
  const cfg = lc.config;
  const name = typeof cfg.name === 'string' ? cfg.name : `layer_${index}`;
  const cls = lc.className;
  const info = (description: string, outShape: ShapeN | null, params: number, engine?: 'fused' | 'reference'): KerasLayerInfo =>
    ({ name, className: cls, description, outputShape: outShape ?? [], params, ...(engine ? { engine } : {}) });
  const under = weightsUnder(ctx, name);

  switch (cls) {
    case 'InputLayer':
      return { layer: { info: info('InputLayer', inShape, 0), apply: (x) => x }, outShape: inShape };
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
      return { layer: { info: info(`${cls}(inference: identity)`, inShape, 0), apply: (x) => x }, outShape: inShape };
    case 'Activation': {
      const act = activationName(name, 'activation', cfg.activation, 'linear', true);
      return { layer: { info: info(`Activation(${act})`, inShape, 0), apply: (x) => (applyActivation(x, act, ctx.hs), x) }, outShape: inShape };
    }
    case 'Embedding': {
      const { input_dim: V, output_dim: E } = configOf(name, embeddingConfigSchema, cfg);
      rejectOptions(name, cfg, [['mask_zero', falsy, 'masking is not supported'], ['sparse', falsy, 'sparse gradients do not apply'], ['lora_rank', falsy, 'LoRA layers are not supported']]);
      const W = findWeight(ctx, name, under, 'embeddings', true)!;
      expectShape(name, W, [V, E]);
      const out: ShapeN | null = inShape ? [...inShape, E] : null;
      const apply = (x: KerasArray): KerasArray => {
        const n = x.data.length;
        const y = new Float64Array(n * E);
        for (let i = 0; i < n; i++) {
          const id = x.data[i];
          if (!Number.isInteger(id) || id < 0 || id >= V) throw new KerasImportError(`layer '${name}': token id ${id} at position ${i} is outside [0, ${V})`);
          for (let e = 0; e < E; e++) y[i * E + e] = W.data[id * E + e];
        }
        return { shape: [...x.shape, E], data: y };
      };
      return { layer: { info: info(`Embedding(${V} → ${E})`, out, W.data.length), apply }, outShape: out };
    }
    case 'Dense': {
      const d = denseParts(ctx, name, cfg, under, inShape);
      const out: ShapeN | null = inShape ? [...inShape.slice(0, -1), d.units] : null;
      return {
        layer: { info: info(`Dense(${d.units}${d.act !== 'linear' ? `, ${d.act}` : ''})`, out, d.K.data.length + (d.b?.data.length ?? 0)), apply: (x) => denseApply(x, d.K, d.b, d.act, ctx.hs, name) },
        outShape: out,
      };
    }
    case 'TimeDistributed': {
      const inner = layerCfg(cfg.layer, `layer '${name}': option layer`);
      if (inner.className !== 'Dense') throw new KerasImportError(`layer '${name}': TimeDistributed wraps ${inner.className}; only TimeDistributed(Dense) is supported (option layer)`);
      if (inShape && inShape.length !== 3) throw new KerasImportError(`layer '${name}': TimeDistributed needs a 3-D input, but the previous layer gives ${fmtShape(inShape)}`);
      const d = denseParts(ctx, name, inner.config, under, inShape);
      const out: ShapeN | null = inShape ? [...inShape.slice(0, -1), d.units] : null;
      return {
        layer: { info: info(`TimeDistributed(Dense(${d.units}${d.act !== 'linear' ? `, ${d.act}` : ''}))`, out, d.K.data.length + (d.b?.data.length ?? 0)), apply: (x) => denseApply(x, d.K, d.b, d.act, ctx.hs, name) },
        outShape: out,
      };
    }
    case 'SimpleRNN':
    case 'LSTM':
    case 'GRU': {
      const s = parseRecurrent(ctx, cls, name, cfg, under, inShape);
      const runner = makeRunner(ctx, s);
      const out: ShapeN | null = inShape ? (s.returnSequences ? [inShape[0], inShape[1], s.units] : [inShape[0], s.units]) : null;
      const apply = (x: KerasArray): KerasArray => {
        const y = runDirection(s, runner, x);
        return s.returnSequences ? y : lastStep(y);
      };
      return { layer: { info: info(describeRec(s), out, recParams(s), runner.engine), apply }, outShape: out };
    }
    case 'Bidirectional': {
      const fwdCfg = layerCfg(cfg.layer, `layer '${name}': option layer`);
      const mergeMode = cfg.merge_mode === undefined ? 'concat' : cfg.merge_mode;
      if (mergeMode !== 'concat' && mergeMode !== 'sum' && mergeMode !== 'mul' && mergeMode !== 'ave') {
        throw new KerasImportError(`layer '${name}': unsupported option merge_mode=${JSON.stringify(mergeMode)} (supported: concat, sum, mul, ave)`);
      }
      if (fwdCfg.className !== 'SimpleRNN' && fwdCfg.className !== 'LSTM' && fwdCfg.className !== 'GRU') {
        throw new KerasImportError(`layer '${name}': Bidirectional wraps ${fwdCfg.className}; supported: SimpleRNN, LSTM, GRU (option layer)`);
      }
      let bwdCfg: LayerCfg;
      if (cfg.backward_layer !== undefined && cfg.backward_layer !== null) {
        bwdCfg = layerCfg(cfg.backward_layer, `layer '${name}': option backward_layer`);
        if (bwdCfg.className !== fwdCfg.className) throw new KerasImportError(`layer '${name}': backward_layer is ${bwdCfg.className} but layer is ${fwdCfg.className}; mixed directions are not supported (option backward_layer)`);
      } else {
        bwdCfg = { className: fwdCfg.className, config: { ...fwdCfg.config, go_backwards: !(fwdCfg.config.go_backwards === true) } };
      }
      const seg = (dir: 'forward' | 'backward'): string[] => under.filter((n) => n.slice(name.length + 1).split('/').some((p) => p.startsWith(dir)));
      let fw = seg('forward'), bw = seg('backward');
      if (fw.length === 0 && bw.length === 0 && under.length % 2 === 0) {
        fw = under.slice(0, under.length / 2);
        bw = under.slice(under.length / 2);
      }
      const kind = fwdCfg.className;
      const f = parseRecurrent(ctx, kind, `${name}/forward`, fwdCfg.config, fw, inShape);
      const b = parseRecurrent(ctx, kind, `${name}/backward`, bwdCfg.config, bw, inShape);
      if (f.returnSequences !== b.returnSequences) throw new KerasImportError(`layer '${name}': the forward and backward layers disagree on return_sequences`);
      if (f.units !== b.units && mergeMode !== 'concat') throw new KerasImportError(`layer '${name}': merge_mode=${mergeMode} needs equal units in both directions`);
      const fr = makeRunner(ctx, f), br = makeRunner(ctx, b);
      const width = mergeMode === 'concat' ? f.units + b.units : f.units;
      const out: ShapeN | null = inShape ? (f.returnSequences ? [inShape[0], inShape[1], width] : [inShape[0], width]) : null;
      const apply = (x: KerasArray): KerasArray => {
        let yf = runDirection(f, fr, x);
        let yb = runDirection(b, br, x);
        if (f.returnSequences) yb = reverseTime(yb);
        else {
          yf = lastStep(yf);
          yb = lastStep(yb);
        }
        const rows = yf.data.length / f.units;
        const y = new Float64Array(rows * width);
        for (let r = 0; r < rows; r++) {
          const a = yf.data.subarray(r * f.units, (r + 1) * f.units);
          const c = yb.data.subarray(r * b.units, (r + 1) * b.units);
          const o = r * width;
          if (mergeMode === 'concat') {
            y.set(a, o);
            y.set(c, o + f.units);
          } else {
            for (let j = 0; j < width; j++) y[o + j] = mergeMode === 'sum' ? a[j] + c[j] : mergeMode === 'mul' ? a[j] * c[j] : (a[j] + c[j]) / 2;
          }
        }
        return { shape: [...yf.shape.slice(0, -1), width], data: y };
      };
      const engine = fr.engine === 'fused' && br.engine === 'fused' ? 'fused' : 'reference';
      return { layer: { info: info(`Bidirectional(${describeRec(f)}, merge_mode=${mergeMode})`, out, recParams(f) + recParams(b), engine), apply }, outShape: out };
    }
    default:
      throw new KerasImportError(`layer '${name}': unsupported layer type ${cls} (supported: ${SUPPORTED})`);
  }
}

/** Find the Sequential topology inside a model.json's modelTopology (at most `limits.layers` layers). */
function sequentialOf(modelJson: Record<string, unknown>, where: string, lim: Limits = resolveLimits()): { name: string; layers: LayerCfg[]; kerasVersion: string | null } {
  let topo = modelJson.modelTopology;
  if (!isObj(topo)) throw new KerasImportError(`${where}: 'modelTopology' is missing or not an object (is this a TF.js layers-model model.json?)`);
  const kerasVersion = typeof topo.keras_version === 'string' ? topo.keras_version : null;
  if (isObj(topo.model_config)) topo = topo.model_config;
  const t = topo as Record<string, unknown>;
  if (t.class_name !== 'Sequential') {
    throw new KerasImportError(`${where}: the model is a ${JSON.stringify(t.class_name)}; only Sequential models are supported`);
  }
  const cfg = t.config;
  const layersRaw = Array.isArray(cfg) ? cfg : isObj(cfg) ? cfg.layers : undefined;
  if (!Array.isArray(layersRaw)) throw new KerasImportError(`${where}: the Sequential model has no 'layers' list`);
  if (layersRaw.length === 0) throw new KerasImportError(`${where}: the Sequential model has no layers`);
  // Every layer counts (Dropout and Activation too): a list of a million no-op layers costs time
  // on every predict even though it holds no weights.
  checkLimit(lim, 'layers', layersRaw.length, `${where}: layer count of the Sequential model`);
  const name = isObj(cfg) && typeof cfg.name === 'string' ? cfg.name : 'sequential';
  return { name, layers: layersRaw.map((l, i) => layerCfg(l, `${where}: layer ${i}`)), kerasVersion };
}

/**
 * The sizes a layer configuration asks for, against the limits, before any shard is read or any
 * array allocated: recurrent units and Embedding output_dim against hiddenSize; Embedding
 * input_dim and Dense units against vocab (an output Dense is as wide as the vocabulary or the
 * class list). Values of the wrong type are left to the layer builders, which name them.
 */
function checkLayerLimits(layers: LayerCfg[], lim: Limits, where: string): void {
  const visit = (lc: LayerCfg, at: string): void => {
    const c = lc.config;
    const name = typeof c.name === 'string' ? c.name : at;
    const check = (key: string, limit: keyof Limits): void => {
      const v = c[key];
      if (typeof v === 'number') checkLimit(lim, limit, v, `${where}: layer '${name}': ${key}`);
    };
    switch (lc.className) {
      case 'SimpleRNN':
      case 'LSTM':
      case 'GRU':
        check('units', 'hiddenSize');
        break;
      case 'Dense':
        check('units', 'vocab');
        break;
      case 'Embedding':
        check('input_dim', 'vocab');
        check('output_dim', 'hiddenSize');
        break;
      case 'Bidirectional':
      case 'TimeDistributed':
        if (isObj(c.layer)) visit(layerCfg(c.layer, `layer '${name}': option layer`), `${name}/layer`);
        if (isObj(c.backward_layer)) visit(layerCfg(c.backward_layer, `layer '${name}': option backward_layer`), `${name}/backward_layer`);
        break;
    }
  };
  layers.forEach((lc, i) => visit(lc, `layer_${i}`));
}

function versionConvention(kerasVersion: string | null): HardSigmoidConvention {
  return kerasVersion !== null && /^3\./.test(kerasVersion.trim()) ? 'keras3' : 'keras2';
}

/** Build a model from a parsed model.json and its weights (see readKerasWeights). */
export function buildKerasModel(modelJson: unknown, weights: Map<string, KerasWeight>, opts: KerasLoadOptions = {}, where = 'model.json'): KerasModel {
  if (!isObj(modelJson)) throw new KerasImportError(`${where}: expected a JSON object with modelTopology and weightsManifest`);
  const lim = resolveLimits(opts.limits);
  const seq = sequentialOf(modelJson, where, lim);
  checkLayerLimits(seq.layers, lim, where);
  const hs = opts.hardSigmoid ?? versionConvention(seq.kerasVersion);
  if (hs !== 'keras2' && hs !== 'keras3') throw new KerasImportError(`hardSigmoid must be 'keras2' or 'keras3', got ${JSON.stringify(hs)}`);
  const ctx: BuildContext = { weights, used: new Set(), hs, opts };
  const inputShape = batchShapeOf(seq.layers[0].config);
  let shape: ShapeN | null = inputShape;
  const built: BuiltLayer[] = [];
  seq.layers.forEach((lc, i) => {
    const { layer, outShape } = buildLayer(ctx, lc, i, shape);
    built.push(layer);
    shape = outShape;
  });
  const unused = [...weights.keys()].filter((n) => !ctx.used.has(n));
  if (unused.length) throw new KerasImportError(`${where}: weights in the manifest that no layer uses: ${unused.join(', ')}`);
  const layers = built.map((b) => b.info);
  const numParameters = layers.reduce((n, l) => n + l.params, 0);
  const lines = [
    `Sequential '${seq.name}'${seq.kerasVersion ? ` (${seq.kerasVersion})` : ''}, input ${inputShape ? fmtShape(inputShape) : '(unknown)'}, hard_sigmoid: ${hs === 'keras3' ? 'Keras 3 (relu6(x+3)/6)' : 'Keras 2 / TF.js (clip(0.2x+0.5, 0, 1))'}`,
    ...layers.map((l) => `  ${l.name.padEnd(28)} ${l.description.padEnd(60)} → ${l.outputShape.length ? fmtShape(l.outputShape) : '?'}  ${l.params} params${l.engine ? ` [${l.engine}]` : ''}`),
    `  total: ${numParameters} parameters`,
  ];
  const first = seq.layers[0].className;
  return {
    name: seq.name,
    kerasVersion: seq.kerasVersion,
    hardSigmoid: hs,
    inputShape,
    layers,
    numParameters,
    summary: lines.join('\n') + '\n',
    predict(x: KerasInput): KerasArray {
      if (!x || !Array.isArray(x.shape) || x.data === undefined) throw new KerasImportError('predict: expected {shape, data}');
      if (!x.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new KerasImportError(`predict: bad shape ${JSON.stringify(x.shape)}`);
      if (shapeSize(x.shape) !== x.data.length) throw new KerasImportError(`predict: ${x.data.length} values do not fill shape ${fmtShape(x.shape)}`);
      if (inputShape) {
        const ok = x.shape.length === inputShape.length && inputShape.every((d, i) => i === 0 || d === null || d === x.shape[i]);
        if (!ok) throw new KerasImportError(`predict: the model expects input ${fmtShape(inputShape)}${first === 'Embedding' ? ' (token ids)' : ''}, got ${fmtShape(x.shape)}`);
      }
      let a: KerasArray = { shape: [...x.shape], data: Float64Array.from(x.data) };
      for (const l of built) a = l.apply(a);
      return a;
    },
  };
}

/**
 * Parse a model.json (its text, or its bytes: then the size is checked against
 * `limits.headerBytes` and the bytes must be valid UTF-8) and read its shards with `readShard`.
 * The topology and its sizes are checked before any shard is read.
 */
export function parseKerasModel(json: string | Uint8Array, readShard: KerasShardReader, opts: KerasLoadOptions = {}, where = 'model.json'): KerasModel {
  const lim = resolveLimits(opts.limits);
  let text: string;
  if (typeof json === 'string') {
    // a string's UTF-16 length bounds its UTF-8 byte length from below: a string over the limit
    // is over it in bytes too
    checkLimit(lim, 'headerBytes', json.length, `${where}: characters of the model.json`);
    text = json;
  } else {
    checkLimit(lim, 'headerBytes', json.length, `${where}: bytes of the model.json`);
    try {
      // fatal: a byte sequence that is not UTF-8 is an error, not a silent U+FFFD
      text = new TextDecoder('utf-8', { fatal: true }).decode(json);
    } catch {
      throw new KerasImportError(`${where} is not valid UTF-8 text (a model.json is UTF-8 JSON)`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new KerasImportError(`${where} is not valid JSON (${(e as Error).message})`);
  }
  if (isObj(parsed)) checkLayerLimits(sequentialOf(parsed, where, lim).layers, lim, where); // topology errors before shard errors
  const weights = readKerasWeights(parsed, readShard, where, lim);
  return buildKerasModel(parsed, weights, opts, where);
}
