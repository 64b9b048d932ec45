/**
 * The pieces shared by the ONNX interpreter's operators: runtime values, node attributes with
 * strict checking, and the per-node compile context.
 *
 * A runtime value is either a recur `Tensor` (float32/float64, living on a backend — all math
 * runs through recur's ops and kernels) or a `HostInts` (integer/bool values on the host: ids,
 * lengths, shapes, axes).
 *
 * Every operator is compiled once at load time from its node: the compile step checks the
 * attributes (an attribute the operator does not know, or a value it does not support, is an error
 * naming the attribute and the node — never ignored) and returns a kernel that maps input values
 * to output values at run time.
 */
import type { Backend } from '../backend/interface.ts';
import { Tensor, shapeStr } from '../tensor/tensor.ts';
import type { Limits } from '../io/limits.ts';
import { AttrType, OnnxError, type AttributeProto, type NodeProto, type TensorProto } from './proto.ts';
import { checkedSize, isFloatDType, tensorFromProto, type FloatDType, type IntDType, type OnnxTensor } from './tensor.ts';

/** Integer or bool values on the host (Float64Array of exact integers). */
export class HostInts {
  readonly shape: readonly number[];
  constructor(readonly dtype: IntDType, shape: readonly number[], readonly data: Float64Array) {
    this.shape = Object.freeze([...shape]);
    let n = 1;
    for (const s of shape) n *= s;
    if (n !== data.length) throw new OnnxError(`internal: ${data.length} values for shape ${shapeStr(shape)}`);
  }
  get size(): number { return this.data.length; }
  get ndim(): number { return this.shape.length; }
}

export type Value = Tensor | HostInts;

export function isTensor(v: Value | null | undefined): v is Tensor {
  return v instanceof Tensor;
}

export function describeValue(v: Value): string {
  return `${v instanceof Tensor ? v.dtype : v.dtype} ${shapeStr(v.shape)}`;
}

/** An OnnxTensor as a runtime value on `backend`. */
export function toValue(t: OnnxTensor, backend: Backend): Value {
  if (isFloatDType(t.dtype)) return new Tensor(backend.fromArray(t.data, t.dtype), t.shape);
  return new HostInts(t.dtype as IntDType, t.shape, t.data instanceof Float64Array ? t.data : Float64Array.from(t.data));
}

/** A runtime value as an OnnxTensor (copies out of the backend). */
export function fromValue(v: Value): OnnxTensor {
  if (v instanceof Tensor) return { dtype: v.dtype, shape: [...v.shape], data: v.toArray() };
  return { dtype: v.dtype, shape: [...v.shape], data: Float64Array.from(v.data) };
}

/** Bytes per element of a value's host or backend array (float32: 4; float64 and the host integers: 8). */
export function bytesPerElement(dtype: string): number {
  return dtype === 'float32' ? 4 : 8;
}

/**
 * Thrown by `NodeContext.checkElements` while a node is being constant-folded at load time and
 * the allocation it is about to make would take the bytes folding has produced past
 * limits.foldedConstantBytes. Not an error: the model catches it and leaves the node to run time.
 */
export class FoldDeferred extends Error {
  constructor(readonly label: string, readonly bytes: number) {
    super(`${label}: folding would need ${bytes} more bytes than limits.foldedConstantBytes leaves`);
    this.name = 'FoldDeferred';
  }
}

/**
 * The load-time budget of constant folding (limits.foldedConstantBytes): `used` counts the bytes
 * of folded constants kept so far; while a node is being folded (`active`), every allocation its
 * kernel announces through `checkElements` is added to `pending` and checked BEFORE it is made.
 */
export class FoldBudget {
  used = 0;
  pending = 0;
  active = false;
  constructor(readonly limit: number) {}

  /** Announce an allocation of `bytes` by the node being folded; throws FoldDeferred past the limit. */
  reserve(label: string, bytes: number): void {
    if (!this.active) return;
    this.pending += bytes;
    if (this.used + this.pending > this.limit) throw new FoldDeferred(label, this.used + this.pending - this.limit);
  }
}

export interface CompileOptions {
  backend: Backend;
  /** Opset version of the default ONNX domain. */
  opset: number;
  /** Resource limits (tensorElements caps every tensor read or created). */
  limits: Readonly<Limits>;
  /** Load-time folding budget; absent (or inactive) at run time. */
  fold?: FoldBudget;
  /** 'auto': recur's fused layers where the node has PyTorch semantics; 'general': always the spec transcription. */
  recurrentPath: 'auto' | 'general';
}

export type Kernel = (inputs: readonly (Value | null)[]) => (Value | null)[];

/** What an operator's compile function receives. */
export class NodeContext {
  readonly attrs: Attrs;
  constructor(
    readonly node: NodeProto,
    /** "LSTM node 'lstm_0'" — used in every error about this node. */
    readonly label: string,
    readonly opts: CompileOptions,
    /** Values known at load time (initializers, Constant outputs), by name. */
    private readonly constants: ReadonlyMap<string, Value>,
  ) {
    this.attrs = new Attrs(node.attribute ?? [], label, opts.limits);
  }

  get opset(): number { return this.opts.opset; }
  get backend(): Backend { return this.opts.backend; }
  get inputs(): string[] { return this.node.input ?? []; }
  get outputs(): string[] { return this.node.output ?? []; }

  /** Whether input i is given (present and not the empty name). */
  hasInput(i: number): boolean {
    const n = this.inputs[i];
    return n !== undefined && n !== '';
  }

  /** The load-time value of input i, if it is a constant. */
  constantInput(i: number): Value | undefined {
    return this.hasInput(i) ? this.constants.get(this.inputs[i]) : undefined;
  }

  wantsOutput(i: number): boolean {
    const n = this.outputs[i];
    return n !== undefined && n !== '';
  }

  error(msg: string): OnnxError {
    return new OnnxError(`${this.label}: ${msg}`);
  }

  /** Check the input count is within [min, max] and the output count within [1, maxOut]. */
  arity(min: number, max: number, maxOut = 1, minOut = 1): void {
    const n = this.inputs.length;
    if (n < min || n > max) throw this.error(`expects ${min === max ? min : `${min} to ${max}`} inputs, got ${n}`);
    for (let i = 0; i < min; i++) if (!this.hasInput(i)) throw this.error(`input ${i} is required but missing`);
    const m = this.outputs.length;
    if (m < minOut || m > maxOut) throw this.error(`expects ${minOut === maxOut ? minOut : `${minOut} to ${maxOut}`} outputs, got ${m}`);
  }

  /**
   * Call BEFORE allocating a tensor of `shape` (`bytes` per element; 8 when unsure): throws a
   * LimitError when it has more than limits.tensorElements elements, and, while the node is being
   * constant-folded at load time, FoldDeferred when the allocation would take folding past
   * limits.foldedConstantBytes. Returns the element count.
   */
  checkElements(shape: readonly number[], what = 'output', bytes = 8): number {
    const n = checkedSize(shape, `${this.label}: ${what}`, this.opts.limits);
    this.opts.fold?.reserve(this.label, n * bytes);
    return n;
  }
}

/** Input i as a float tensor, or an error naming the node. */
export function floatInput(ctx: NodeContext, v: Value | null, i: number, name = `input ${i}`): Tensor {
  if (v === null) throw ctx.error(`${name} is missing`);
  if (!(v instanceof Tensor)) throw ctx.error(`${name} must be float or double, got ${v.dtype}`);
  return v;
}

/** Input i as host integers, or an error naming the node. */
export function intInput(ctx: NodeContext, v: Value | null, i: number, name = `input ${i}`): HostInts {
  if (v === null) throw ctx.error(`${name} is missing`);
  if (!(v instanceof HostInts) || v.dtype === 'bool') throw ctx.error(`${name} must be an integer tensor, got ${describeValue(v)}`);
  return v;
}

export function sameFloatDType(ctx: NodeContext, ts: readonly (Tensor | null)[]): FloatDType {
  let d: FloatDType | null = null;
  for (const t of ts) {
    if (!t) continue;
    if (d === null) d = t.dtype;
    else if (t.dtype !== d) throw ctx.error(`inputs mix ${d} and ${t.dtype}; ONNX requires one element type`);
  }
  return d ?? 'float32';
}

function decodeString(b: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(b);
}

const ATTR_TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(AttrType).map(([k, v]) => [v, k]));

/**
 * A node's attributes. Each getter marks the attribute as understood; `done()` then rejects any
 * attribute that no getter asked for, naming it.
 */
export class Attrs {
  private readonly byName = new Map<string, AttributeProto>();
  private readonly used = new Set<string>();

  constructor(list: readonly AttributeProto[], private readonly label: string, private readonly limits: Readonly<Limits>) {
    for (const a of list) {
      const name = a.name ?? '';
      if (name === '') throw new OnnxError(`${label}: an attribute has no name`);
      if (this.byName.has(name)) throw new OnnxError(`${label}: attribute '${name}' is given twice`);
      if (a.ref_attr_name) throw new OnnxError(`${label}: attribute '${name}' refers to a function attribute ('${a.ref_attr_name}'), which is only valid inside functions`);
      this.byName.set(name, a);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  private get(name: string, type: number): AttributeProto | undefined {
    const a = this.byName.get(name);
    this.used.add(name);
    if (!a) return undefined;
    const t = a.type ?? AttrType.UNDEFINED;
    if (t !== AttrType.UNDEFINED && t !== type) {
      throw new OnnxError(`${this.label}: attribute '${name}' must be ${ATTR_TYPE_NAMES[type]}, got ${ATTR_TYPE_NAMES[t] ?? `type ${t}`}`);
    }
    return a;
  }

  int(name: string, dflt: number): number;
  int(name: string, dflt?: number): number | undefined;
  int(name: string, dflt?: number): number | undefined {
    const a = this.get(name, AttrType.INT);
    if (!a) return dflt;
    const v = a.i ?? 0;
    if (!Number.isSafeInteger(v)) throw new OnnxError(`${this.label}: attribute '${name}' = ${v} is out of range`);
    return v;
  }

  float(name: string, dflt: number): number;
  float(name: string, dflt?: number): number | undefined;
  float(name: string, dflt?: number): number | undefined {
    const a = this.get(name, AttrType.FLOAT);
    return a ? a.f ?? 0 : dflt;
  }

  string(name: string, dflt: string): string;
  string(name: string, dflt?: string): string | undefined;
  string(name: string, dflt?: string): string | undefined {
    const a = this.get(name, AttrType.STRING);
    return a ? decodeString(a.s ?? new Uint8Array(0)) : dflt;
  }

  /**
   * An INTS attribute. `clamp`: values past ±2^53 (Slice's INT64_MAX "to the end") become
   * ±Number.MAX_SAFE_INTEGER instead of an error — only for attributes where that means the same.
   */
  ints(name: string, clamp = false): number[] | undefined {
    const a = this.get(name, AttrType.INTS);
    if (!a) return undefined;
    const v = a.ints ?? [];
    const out: number[] = [];
    for (const x of v) {
      if (Number.isSafeInteger(x)) out.push(x);
      else if (clamp && (x === Infinity || x === -Infinity || Number.isInteger(x))) out.push(x > 0 ? Number.MAX_SAFE_INTEGER : -Number.MAX_SAFE_INTEGER);
      else throw new OnnxError(`${this.label}: attribute '${name}' holds ${x}, out of range`);
    }
    return out;
  }

  floats(name: string): number[] | undefined {
    const a = this.get(name, AttrType.FLOATS);
    return a ? [...(a.floats ?? [])] : undefined;
  }

  strings(name: string): string[] | undefined {
    const a = this.get(name, AttrType.STRINGS);
    return a ? (a.strings ?? []).map(decodeString) : undefined;
  }

  tensor(name: string): OnnxTensor | undefined {
    const a = this.get(name, AttrType.TENSOR);
    if (!a) return undefined;
    if (!a.t) throw new OnnxError(`${this.label}: attribute '${name}' holds no tensor`);
    return tensorFromProto(a.t as TensorProto, `${this.label}: attribute '${name}'`, this.limits);
  }

  /** Reject every attribute no getter asked for. */
  done(): void {
    for (const name of this.byName.keys()) {
      if (!this.used.has(name)) throw new OnnxError(`${this.label}: unsupported attribute '${name}'`);
    }
  }
}

/** Normalize a possibly negative axis for rank r; error names the node. */
export function normAxisOf(ctx: NodeContext, axis: number, r: number, what = 'axis'): number {
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(a) || a < 0 || a >= r) throw ctx.error(`${what} ${axis} is out of range for rank ${r}`);
  return a;
}
