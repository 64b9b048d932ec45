/**
 * What the ONNX operator families (ops/float.ts, ops/shape.ts, ops/host.ts) share: the compiler
 * type, broadcasting, host copies of values, integer-list inputs, the opset gate, and the host
 * element-wise machinery (float64 over broadcast copies, rounded once to the output type).
 */
import { Tensor, shapeStr } from '../../tensor/tensor.ts';
import { reshape } from '../../autograd/ops/shape.ts';
import { isFloatDType, type IntDType, type OnnxDType } from '../tensor.ts';
import { HostInts, describeValue, intInput, type Kernel, type NodeContext, type Value } from '../runtime.ts';
import { shapeSize, shapeStrides, stridedCopy } from '../../util/shape.ts';

/** Compiles one node (attributes checked once, at load) into the kernel that runs it. */
export type OpCompiler = (ctx: NodeContext) => Kernel;

// ---- host helpers ---------------------------------------------------------------------------------

export function broadcastShape(ctx: NodeContext, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw ctx.error(`shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast together`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Broadcast `data` (shape) to outShape (same or higher rank). */
export function broadcastTo(data: ArrayLike<number>, shape: readonly number[], outShape: readonly number[], out: { [i: number]: number; length: number }): void {
  const r = outShape.length;
  const padded = [...new Array<number>(r - shape.length).fill(1), ...shape];
  const st = shapeStrides(padded).map((s, i) => (padded[i] === 1 ? 0 : s));
  stridedCopy(data, 0, st, outShape, out);
}

/** Pull a float tensor to the host, transform, and push back (for the rare shapes recur's ops lack). */
function viaHost(x: Tensor, outShape: readonly number[], fn: (src: ArrayLike<number>, out: Float64Array) => void): Tensor {
  const out = new Float64Array(shapeSize(outShape));
  fn(x.toArray(), out);
  return new Tensor(x.backend.fromArray(out, x.dtype), outShape);
}

export function mapValue(v: Value, outShape: readonly number[], fn: (src: ArrayLike<number>, out: Float64Array) => void): Value {
  if (v instanceof Tensor) return viaHost(v, outShape, fn);
  const out = new Float64Array(shapeSize(outShape));
  fn(v.data, out);
  return new HostInts(v.dtype, outShape, out);
}

export function reshapeValue(v: Value, shape: readonly number[]): Value {
  return v instanceof Tensor ? reshape(v, shape) : new HostInts(v.dtype, shape, v.data);
}

/** An integer list from a constant-or-runtime int input (axes, shapes, starts…). */
export function intList(ctx: NodeContext, v: Value | null, i: number, name: string): number[] {
  const t = intInput(ctx, v, i, name);
  if (t.ndim > 1) throw ctx.error(`${name} must be a 1-D integer tensor, got ${describeValue(t)}`);
  return Array.from(t.data);
}

export function needInput(ctx: NodeContext, v: Value | null, i: number): Value {
  if (v === null) throw ctx.error(`input ${i} ('${ctx.inputs[i] ?? ''}') is missing`);
  return v;
}

/** An operator that the ONNX spec introduces at `opset`: in an older model it is an error, as in other runtimes. */
export function since(opset: number, compile: OpCompiler): OpCompiler {
  return (ctx) => {
    if (ctx.opset < opset) throw ctx.error(`${ctx.node.op_type} is defined from opset ${opset}; this model imports opset ${ctx.opset}`);
    return compile(ctx);
  };
}

// ---- host element-wise: comparisons, logic, selection, the math recur's ops lack ----------------------
//
// These run on the host in float64 over broadcast copies of their inputs and round once to the
// output type. The graphs that use them (masks, shape arithmetic, a clip or pow in a head) are small
// next to the recurrent layers, and exact element types matter more here than speed: a comparison
// of int64 shape values or a bool mask never touches the backend.

export function hostData(v: Value): ArrayLike<number> {
  return v instanceof Tensor ? v.toArray() : v.data;
}

/** A host array as a runtime value of `dtype` (floats go to the backend, rounded once). */
export function makeValue(ctx: NodeContext, dtype: OnnxDType, shape: readonly number[], data: Float64Array): Value {
  return isFloatDType(dtype) ? new Tensor(ctx.backend.fromArray(data, dtype), shape) : new HostInts(dtype as IntDType, shape, data);
}

/**
 * Numpy-style broadcasting of `vs` on the host, then out[i] = f(a[i], b[i], c[i]). Announces the
 * output and the broadcast copies to checkElements before allocating any of them.
 */
export function broadcastHost(ctx: NodeContext, vs: readonly Value[], outDtype: OnnxDType, f: (a: number, b: number, c: number) => number, to: readonly number[] = []): Value {
  let shape = [...to];
  for (const v of vs) shape = broadcastShape(ctx, shape, v.shape);
  const n = ctx.checkElements(shape, 'output', 8 * (vs.length + 1));
  const full = vs.map((v) => {
    const d = hostData(v);
    if (v.shape.length === shape.length && d.length === n) return d;
    const out = new Float64Array(n);
    if (n > 0) broadcastTo(d, v.shape, shape, out);
    return out;
  });
  const out = new Float64Array(n);
  const [a, b = a, c = a] = full;
  for (let i = 0; i < n; i++) out[i] = f(a[i], b[i], c[i]);
  return makeValue(ctx, outDtype, shape, out);
}

/** The element type of a value, checked to be one of `allowed` ('float', 'int', 'bool'). */
function kindOf(v: Value): 'float' | 'int' | 'bool' {
  return v instanceof Tensor ? 'float' : v.dtype === 'bool' ? 'bool' : 'int';
}

export function sameType(ctx: NodeContext, vs: readonly Value[], allowed: readonly ('float' | 'int' | 'bool')[], what = 'inputs'): OnnxDType {
  const d = vs[0].dtype;
  for (const v of vs) {
    if (!allowed.includes(kindOf(v))) throw ctx.error(`${what} must be ${allowed.join(' or ')}, got ${describeValue(v)}`);
    if (v.dtype !== d) throw ctx.error(`${what} mix ${d} and ${v.dtype}; ONNX requires one element type`);
  }
  return d;
}

