/**
 * `loadOnnx(bytes)`: decode an ONNX model, check it whole, and compile it into an `OnnxModel`
 * whose `run(inputs)` interprets the graph on a recur backend.
 *
 * Everything that can be checked without input data is checked at load time, so a model that
 * loads is one recur can run: the opset of the default domain (7 … MAX_OPSET), every node's
 * operator and attributes (an unknown operator, domain or attribute is an error naming the node),
 * every initializer (declared sizes against the bytes present, before allocating), that every
 * value a node reads is defined (nodes are sorted topologically; cycles are errors) and every graph
 * output is produced. At run time, inputs are checked against the declared element types and
 * shapes, and any failure inside a node is reported with the node's name.
 *
 * The file is untrusted: what it may ask for is bounded by the shared resource limits
 * (io/limits.ts) — file size, node count, initializer count and total elements, elements of every
 * tensor, and the bytes constant folding may keep — each checked before the work it bounds (a
 * running total before its next step).
 * Going over a limit is a `LimitError`; anything else wrong with the file is an `OnnxError`. Every
 * pass over the graph is linear in its size (no per-node copies of growing lists, no recursion),
 * so a large graph costs time in proportion to its file.
 */
import type { Backend, Storage } from '../backend/interface.ts';
import { getBackend } from '../backend/registry.ts';
import { Tensor, shapeStr } from '../tensor/tensor.ts';
import { noGrad } from '../autograd/tape.ts';
import { LimitError, checkLimit, resolveLimits, type Limits } from '../io/limits.ts';
import { OnnxError, decodeModelProto, type ModelProto, type NodeProto, type ValueInfoProto } from './proto.ts';
import { checkedSize, dtypeOfCode, isFloatDType, tensorFromProto, type FloatDType, type OnnxDType, type OnnxTensor } from './tensor.ts';
import { FoldBudget, FoldDeferred, HostInts, NodeContext, bytesPerElement, fromValue, toValue, type CompileOptions, type Kernel, type Value } from './runtime.ts';
import { STANDARD_OPS, type OpCompiler } from './ops.ts';
import { compileRecurrent } from './recurrent.ts';
import { isShapeKernel } from './ops/shape.ts';

/** The oldest and newest opsets of the default ONNX domain this interpreter accepts. */
export const MIN_OPSET = 7;
export const MAX_OPSET = 24;

const OPS: Record<string, OpCompiler> = { ...STANDARD_OPS, RNN: compileRecurrent, GRU: compileRecurrent, LSTM: compileRecurrent };

/** The operators `loadOnnx` supports (default domain). */
export const SUPPORTED_OPERATORS: readonly string[] = Object.freeze(Object.keys(OPS).sort());

export interface LoadOnnxOptions {
  /** Backend to run float math on (default: the current default backend). */
  backend?: Backend;
  /**
   * Resource limits for this file; keys left out take DEFAULT_LIMITS. Used here: fileBytes,
   * graphNodes, tensors (initializers), parameters (initializer elements, summed),
   * tensorElements (every tensor read or created, at load and at run time) and
   * foldedConstantBytes (what constant folding may keep).
   */
  limits?: Partial<Limits>;
  /** The older name of `limits.tensorElements` (which wins when both are given). */
  maxElements?: number;
  /**
   * How RNN/GRU/LSTM nodes run: 'auto' (default) uses recur's fused recurrent layers when a node
   * has PyTorch semantics and the general implementation otherwise; 'general' always uses the
   * general one (for cross-checking).
   */
  recurrentPath?: 'auto' | 'general';
}

/** A graph input or output as declared in the model. */
export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDType;
  /** Declared dimensions: a number, a symbolic name, or null when unknown. Null shape: unknown rank. */
  shape: (number | string | null)[] | null;
}

/** What `run` accepts for one input: values and a shape (dtype defaults to the declared one). */
export interface OnnxInput {
  shape: readonly number[];
  data: ArrayLike<number>;
  dtype?: OnnxDType;
}

interface CompiledNode {
  label: string;
  inputs: string[];
  outputs: string[];
  kernel: Kernel;
  /** A Shape node: its output joins the run's shape key (see ShapeMemo). */
  readsShape?: boolean;
  /** Shape arithmetic: computes only from constants and Shape outputs; memoised per shape key. */
  shapeOnly?: boolean;
  /** Its kernel's tensors are always new storage (see FRESH_OUTPUT_OPS). */
  freshOutputs?: boolean;
}

/**
 * Operators whose kernels always return new storage: never an input, a constant, a view of either,
 * or a tensor kept across runs (the recurrent kernels allocate Y, Y_h and Y_c on every run; their
 * weight cache holds only copies). Nothing outlives a run that could still read these storages once
 * the graph outputs are copied out, so run() gives them back to the backend then (the inputs'
 * storages are kept for the next run instead: see inputStorage). That is MiBs per batch run that
 * the wasm backend would otherwise reclaim only through the garbage collector (a forced full
 * collection when its memory would grow, a visible share of a batch forward).
 */
const FRESH_OUTPUT_OPS: ReadonlySet<string> = new Set(['RNN', 'GRU', 'LSTM']);

/**
 * Shape arithmetic, computed once per input shape rather than on every run.
 *
 * Exporters compute sizes in the graph: PyTorch's zero initial state is
 * Shape(x) → Gather(batch axis) → Unsqueeze → Concat([L·D], batch, [H]) → ConstantOfShape, and
 * Keras converters build the same from Shape/Gather/Concat/Expand. Two things keep that off the
 * per-run path:
 *
 * 1. At load, constant folding runs every node whose inputs are all constants — and a Shape node
 *    whose input is a graph input with a fully static declared shape counts as constant (run()
 *    rejects inputs that do not match the declared dimensions), so with static shapes the whole
 *    chain folds away.
 * 2. With dynamic axes, the load marks the nodes that compute only from constants and Shape
 *    outputs (transitively) as shape-only. A shape-only node's result is a function of the
 *    constants and the Shape outputs before it in the run order. So each run compares every Shape
 *    output with the same node's output in the previous run (O(rank) per Shape node, so a run stays
 *    linear in the graph); until the first one differs, shape-only nodes reuse the previous run's
 *    outputs instead of executing, and from there on they execute and are stored again. The memo
 *    holds one result per node (the previous run's), never more than one run's worth of shape
 *    values; a run that failed part-way leaves it inconsistent, so the next run starts over.
 */
class ShapeMemo {
  /** Shape-only node executions so far (the rest were reuses). */
  evaluations = 0;
  reuses = 0;
  /** Whether the previous run finished (then every stored value is from that run). */
  complete = false;
  private readonly last = new Map<CompiledNode, (Value | null)[]>();

  /** The previous run's outputs of a shape-only node, if stored. */
  reuse(n: CompiledNode): (Value | null)[] | undefined {
    const outs = this.last.get(n);
    if (outs) this.reuses++;
    return outs;
  }

  /** Store a shape-only node's freshly computed outputs. */
  store(n: CompiledNode, outs: (Value | null)[]): void {
    this.evaluations++;
    this.last.set(n, outs);
  }

  /** Store a Shape node's output; true when it equals the previous run's. */
  sameShape(n: CompiledNode, outs: (Value | null)[]): boolean {
    const prev = this.last.get(n)?.[0];
    const now = outs[0];
    this.last.set(n, outs);
    if (!(prev instanceof HostInts) || !(now instanceof HostInts) || prev.size !== now.size) return false;
    for (let i = 0; i < now.size; i++) if (prev.data[i] !== now.data[i]) return false;
    return true;
  }
}

/** What the shape memo has done so far (see ShapeMemo). */
export interface ShapeArithmeticStats {
  /** Nodes that compute only from constants and Shape outputs (left after load-time folding). */
  readonly nodes: number;
  /** How many times such nodes have executed over all runs. */
  readonly evaluations: number;
  /** How many times a run reused the outputs of the previous run with the same shapes. */
  readonly reuses: number;
}

function nodeLabel(n: NodeProto, index: number): string {
  const op = n.op_type || '(no op_type)';
  if (n.name) return `${op} node '${n.name}'`;
  const out = (n.output ?? []).find((o) => o !== '');
  return `${op} node #${index}${out ? ` (output '${out}')` : ''}`;
}

function valueInfo(v: ValueInfoProto, what: string): OnnxValueInfo {
  const name = v.name ?? '';
  if (!name) throw new OnnxError(`${what} has no name`);
  const tt = v.type?.tensor_type;
  if (!tt) {
    const kind = v.type?.sequence_type ? 'a sequence' : v.type?.map_type ? 'a map' : v.type?.optional_type ? 'an optional' : 'of unknown type';
    throw new OnnxError(`${what} '${name}' is ${kind}; only tensors are supported`);
  }
  const dtype = dtypeOfCode(tt.elem_type, `${what} '${name}'`);
  const shape = tt.shape ? (tt.shape.dim ?? []).map((d) => (d.dim_value !== undefined ? d.dim_value : d.dim_param ? d.dim_param : null)) : null;
  return { name, dtype, shape };
}

/**
 * Kahn's algorithm over the nodes; checks every read value is defined. Linear in nodes + edges:
 * the users of a node are appended in place (a graph where 40,000 nodes read one value must not
 * copy a growing list per reader) and the ready queue is consumed by index, not by shift().
 */
function sortNodes(nodes: readonly NodeProto[], available: ReadonlySet<string>): number[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) {
      if (o === '') continue;
      if (producer.has(o) || available.has(o)) throw new OnnxError(`${nodeLabel(n, i)}: value '${o}' is produced more than once`);
      producer.set(o, i);
    }
  });
  const indegree = new Int32Array(nodes.length);
  const users: (number[] | undefined)[] = new Array(nodes.length);
  nodes.forEach((n, i) => {
    for (const name of new Set(n.input ?? [])) {
      if (name === '' || available.has(name)) continue;
      const p = producer.get(name);
      if (p === undefined) throw new OnnxError(`${nodeLabel(n, i)}: input '${name}' is not a graph input, an initializer, or the output of any node`);
      indegree[i]++;
      (users[p] ??= []).push(i);
    }
  });
  const order: number[] = [];
  for (let i = 0; i < nodes.length; i++) if (indegree[i] === 0) order.push(i);
  // `order` doubles as the queue: entries before `head` are done, the rest are ready.
  for (let head = 0; head < order.length; head++) {
    for (const u of users[order[head]] ?? []) if (--indegree[u] === 0) order.push(u);
  }
  if (order.length !== nodes.length) {
    const stuck = indegree.findIndex((d) => d > 0);
    throw new OnnxError(`the graph has a cycle (through ${nodeLabel(nodes[stuck], stuck)})`);
  }
  return order;
}

/** The array behind a value (shared by a Reshape or Identity output and its input). */
function bufferOf(v: Value): object {
  return v instanceof Tensor ? v.storage : v.data;
}

/** What load-time constant folding did. */
export interface FoldingStats {
  /** Nodes computed once at load time. */
  readonly nodes: number;
  /** Bytes of new constants they produced (what limits.foldedConstantBytes bounds). */
  readonly bytes: number;
  /** Nodes with only constant inputs left to run at run time because folding them would pass the limit. */
  readonly deferred: readonly string[];
}

export class OnnxModel {
  /** Graph inputs the caller provides (initializers excluded). */
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  /** Opset version of the default domain. */
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;
  readonly graphName: string;
  /** model.metadata_props as a record. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly backend: Backend;
  /** The limits this model was loaded under (they apply to its runs too). */
  readonly limits: Readonly<Limits>;
  /** How many nodes of each operator the graph has, in order of first use ("LSTM" → 2). */
  readonly operators: ReadonlyMap<string, number>;
  /** What load-time constant folding did (see FoldingStats). */
  readonly folding: FoldingStats;
  private readonly constants: Map<string, Value>;
  private readonly nodes: CompiledNode[];
  /** Inputs that have an initializer as their default (IR < 4 style); optional in run(). */
  private readonly overridable: Set<string>;
  private readonly shapeMemo = new ShapeMemo();
  /** The graph input names (run() rejects any other key but an overridable one). */
  private readonly inputNames: Set<string>;
  /**
   * Per node (in run order), the values to drop from a run's environment after it: those it is
   * the last reader of, other than constants and graph outputs. Fixed by the graph, so computed
   * once here rather than on every run (it is a visible share of a batch-1 step).
   */
  private readonly releaseAfter: string[][];
  /** Each float input's backend storage, reused by the next run (see inputStorage). */
  private readonly inputSlots = new Map<string, Storage>();

  /** @internal use loadOnnx */
  constructor(proto: ModelProto, opts: LoadOnnxOptions = {}) {
    this.backend = opts.backend ?? getBackend();
    const limits = limitsOf(opts);
    this.limits = Object.freeze(limits);
    this.irVersion = proto.ir_version ?? 0;
    if (this.irVersion < 3) throw new OnnxError(`ONNX model: IR version ${this.irVersion} is not supported (need 3 or later; is this an ONNX model file?)`);
    this.producer = [proto.producer_name, proto.producer_version].filter(Boolean).join(' ');
    this.metadata = Object.fromEntries((proto.metadata_props ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const opsets = proto.opset_import ?? [];
    const main = opsets.find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
    if (!main) throw new OnnxError('ONNX model: it imports no opset of the default ONNX domain');
    this.opset = main.version ?? 0;
    if (this.opset < MIN_OPSET || this.opset > MAX_OPSET) {
      throw new OnnxError(`ONNX model: opset ${this.opset} is not supported (supported: ${MIN_OPSET} to ${MAX_OPSET})`);
    }
    const graph = proto.graph;
    if (!graph) throw new OnnxError('ONNX model: it has no graph');
    this.graphName = graph.name ?? '';
    const gnodes = graph.node ?? [];
    // Before anything is built per node.
    checkLimit(limits, 'graphNodes', gnodes.length, 'ONNX model: nodes in the graph');
    const operators = new Map<string, number>();
    for (const n of gnodes) {
      const op = `${n.domain ? `${n.domain}.` : ''}${n.op_type ?? '?'}`;
      operators.set(op, (operators.get(op) ?? 0) + 1);
    }
    this.operators = operators;

    // Initializers (constants), checked before allocation.
    const initializers = graph.initializer ?? [];
    checkLimit(limits, 'tensors', initializers.length, 'ONNX model: initializers');
    this.constants = new Map();
    let parameters = 0;
    for (const [i, tp] of initializers.entries()) {
      const name = tp.name ?? '';
      if (!name) throw new OnnxError(`ONNX model: initializer #${i} has no name`);
      if (this.constants.has(name)) throw new OnnxError(`ONNX model: initializer '${name}' is defined twice`);
      // One tensor is bounded by tensorElements and by the bytes the file holds for it; the sum is
      // checked after each, so the total never passes `parameters` by more than one tensor.
      const t = tensorFromProto(tp, 'initializer', limits);
      parameters += t.data.length;
      checkLimit(limits, 'parameters', parameters, `ONNX model: elements of the initializers up to '${name}'`);
      this.constants.set(name, toValue(t, this.backend));
    }
    const inputs: OnnxValueInfo[] = [];
    this.overridable = new Set();
    const seen = new Set<string>();
    for (const v of graph.input ?? []) {
      const info = valueInfo(v, 'graph input');
      if (seen.has(info.name)) throw new OnnxError(`ONNX model: graph input '${info.name}' is listed twice`);
      seen.add(info.name);
      if (this.constants.has(info.name)) this.overridable.add(info.name);
      else inputs.push(info);
    }
    this.inputs = inputs;
    this.outputs = (graph.output ?? []).map((v) => valueInfo(v, 'graph output'));
    if (this.outputs.length === 0) throw new OnnxError('ONNX model: the graph has no outputs');

    // Nodes: sort, then compile each (checks operators and attributes).
    const available = new Set<string>(seen);
    for (const k of this.constants.keys()) available.add(k);
    const order = sortNodes(gnodes, available);
    const staticShapes = new Map<string, number[]>();
    for (const info of inputs) {
      if (info.shape && info.shape.every((d) => typeof d === 'number')) staticShapes.set(info.name, info.shape as number[]);
    }
    const budget = new FoldBudget(limits.foldedConstantBytes);
    const opts2: CompileOptions = { backend: this.backend, opset: this.opset, limits, fold: budget, recurrentPath: opts.recurrentPath ?? 'auto' };
    let folded = 0;
    const deferred: string[] = [];
    this.nodes = [];
    for (const i of order) {
      const n = gnodes[i];
      const label = nodeLabel(n, i);
      const domain = n.domain ?? '';
      if (domain !== '' && domain !== 'ai.onnx') throw new OnnxError(`${label}: operator domain '${domain}' is not supported (only the default ONNX domain)`);
      const compile = OPS[n.op_type ?? ''];
      if (!compile) throw new OnnxError(`${label}: unsupported operator '${n.op_type ?? ''}' (supported: ${SUPPORTED_OPERATORS.join(', ')})`);
      const ctx = new NodeContext(n, label, opts2, this.constants);
      let kernel: Kernel;
      try {
        kernel = compile(ctx);
      } catch (e) {
        throw e instanceof OnnxError || e instanceof LimitError ? e : new OnnxError(`${label}: ${(e as Error).message}`);
      }
      const node: CompiledNode = { label, inputs: n.input ?? [], outputs: n.output ?? [], kernel, readsShape: n.op_type === 'Shape', freshOutputs: FRESH_OUTPUT_OPS.has(n.op_type ?? '') };
      // A Shape of a graph input whose declared shape is all numbers is a constant (see ShapeMemo).
      const shapeOf = n.op_type === 'Shape' ? staticShapes.get(node.inputs[0] ?? '') : undefined;
      if (shapeOf && isShapeKernel(kernel)) {
        // The Shape kernel's output from the declared shape alone; no values of the input are needed.
        const ofShape = kernel.ofShape;
        const outs = this.fold(node, [], budget, false, () => [ofShape(shapeOf)]);
        if (outs) {
          folded++;
          this.constants.set(node.outputs[0], outs[0]!);
          continue;
        }
      }
      // Constant folding: a node whose inputs are all constants (Constant nodes, or e.g. the
      // Transpose of an initializer weight) runs once, here, and later nodes see its outputs as
      // constants (so recurrent weights are reordered once per model, not per run).
      const ins = node.inputs.filter((x) => x !== '');
      if (ins.every((x) => this.constants.has(x) && !this.overridable.has(x)) && (ins.length > 0 || n.op_type === 'Constant')) {
        const args = ins.length ? node.inputs.map((x) => (x === '' ? null : this.constants.get(x)!)) : [];
        const outs = this.fold(node, args, budget, n.op_type === 'Constant');
        if (outs) {
          folded++;
          node.outputs.forEach((o, k) => {
            if (o !== '' && outs[k]) this.constants.set(o, outs[k]!);
          });
          continue;
        }
        deferred.push(label);
      }
      this.nodes.push(node);
    }
    this.folding = Object.freeze({ nodes: folded, bytes: budget.used, deferred: Object.freeze(deferred) });
    // Mark the shape arithmetic that folding could not remove (see ShapeMemo).
    const shapeValues = new Set<string>();
    for (const node of this.nodes) {
      const ins = node.inputs.filter((x) => x !== '');
      if (!node.readsShape) {
        node.shapeOnly = ins.length > 0 && ins.some((x) => shapeValues.has(x))
          && ins.every((x) => shapeValues.has(x) || (this.constants.has(x) && !this.overridable.has(x)));
      }
      if (node.readsShape || node.shapeOnly) for (const o of node.outputs) if (o !== '') shapeValues.add(o);
    }
    const produced = new Set<string>(available);
    for (const k of this.constants.keys()) produced.add(k);
    for (const n of this.nodes) for (const o of n.outputs) produced.add(o);
    for (const o of this.outputs) if (!produced.has(o.name)) throw new OnnxError(`ONNX model: graph output '${o.name}' is not produced by any node`);
    this.inputNames = new Set(this.inputs.map((i) => i.name));
    const lastUse = new Map<string, number>();
    this.nodes.forEach((n, k) => n.inputs.forEach((name) => lastUse.set(name, k)));
    const keep = new Set(this.constants.keys());
    for (const o of this.outputs) keep.add(o.name);
    this.releaseAfter = this.nodes.map(() => []);
    for (const [name, k] of lastUse) if (name !== '' && !keep.has(name)) this.releaseAfter[k].push(name);
  }

  /**
   * Fold one node whose inputs are all constants, within limits.foldedConstantBytes; null when
   * the node must run at run time instead.
   *
   * Why leave it to run time rather than refuse the model: the limit bounds what a small file can
   * make the LOADER allocate, and a legitimate model can have more constant work than the budget
   * (a large model whose weights pass through Transpose nodes). Such a node simply
   * runs on each call, as it would in a runtime without folding, where the run's own limits apply.
   * A fold that passes tensorElements is an error instead: its inputs are constants, so every run
   * would fail the same way, and a model that loads is one recur can run.
   */
  private fold(node: CompiledNode, args: (Value | null)[], budget: FoldBudget, isConstant: boolean, kernel: Kernel = node.kernel): (Value | null)[] | null {
    let outs: (Value | null)[];
    budget.active = true;
    budget.pending = 0;
    try {
      outs = this.execute(node, args, kernel);
    } catch (e) {
      if (e instanceof FoldDeferred) return null;
      throw e;
    } finally {
      budget.active = false;
      budget.pending = 0;
    }
    // Charge what the node keeps: new arrays only (a Reshape, Squeeze or Identity output shares
    // its input's), and nothing for a Constant, whose value is file data bounded like an initializer.
    let bytes = 0;
    if (!isConstant) {
      const inputBuffers = new Set<object>();
      for (const a of args) if (a) inputBuffers.add(bufferOf(a));
      const counted = new Set<object>();
      for (const v of outs) {
        if (!v) continue;
        const buf = bufferOf(v);
        if (inputBuffers.has(buf) || counted.has(buf)) continue;
        counted.add(buf);
        bytes += v.size * bytesPerElement(v.dtype);
      }
    }
    // A kernel that allocated without announcing it through checkElements still cannot make the
    // model keep more than the limit: its result is dropped and the node runs at run time.
    if (budget.used + bytes > budget.limit) return null;
    budget.used += bytes;
    return outs;
  }

  /** What the per-shape memo of shape arithmetic has done (see ShapeMemo). */
  get shapeArithmetic(): ShapeArithmeticStats {
    return { nodes: this.nodes.filter((n) => n.shapeOnly).length, evaluations: this.shapeMemo.evaluations, reuses: this.shapeMemo.reuses };
  }

  /**
   * Run the graph. `inputs` maps every graph input name to its values; returns every graph
   * output. Float outputs come back as Float32Array/Float64Array, integer outputs as Float64Array.
   */
  run(inputs: Record<string, OnnxInput>): Record<string, OnnxTensor> {
    if (inputs === null || typeof inputs !== 'object') throw new OnnxError('run: inputs must be an object { name: { shape, data } }');
    for (const k of Object.keys(inputs)) {
      if (!this.inputNames.has(k) && !this.overridable.has(k)) throw new OnnxError(`run: unknown input '${k}' (the model's inputs: ${this.inputs.map((i) => i.name).join(', ') || 'none'})`);
    }
    const env = new Map<string, Value>(this.constants);
    for (const info of this.inputs) {
      const v = inputs[info.name];
      if (v === undefined) throw new OnnxError(`run: missing input '${info.name}' (${info.dtype} ${describeShape(info.shape)})`);
      env.set(info.name, this.inputValue(info, v));
    }
    for (const name of this.overridable) {
      const v = inputs[name];
      if (v !== undefined) {
        const c = this.constants.get(name)!;
        env.set(name, this.inputValue({ name, dtype: c.dtype, shape: [...c.shape] }, v));
      }
    }
    // Tensors only this run holds: the fresh outputs (see FRESH_OUTPUT_OPS).
    const owned: Tensor[] = [];
    const release = this.releaseAfter;
    noGrad(() => {
      // Whether every Shape output so far equals the previous run's (see ShapeMemo).
      const memo = this.shapeMemo;
      let sameShapes = memo.complete;
      memo.complete = false;
      this.nodes.forEach((n, k) => {
        let outs = n.shapeOnly && sameShapes ? memo.reuse(n) : undefined;
        if (!outs) {
          const args = n.inputs.map((name) => (name === '' ? null : env.get(name) ?? null));
          outs = this.execute(n, args);
          if (n.shapeOnly) memo.store(n, outs);
        }
        if (n.readsShape && !memo.sameShape(n, outs)) sameShapes = false;
        n.outputs.forEach((name, i) => {
          if (name !== '' && outs[i]) env.set(name, outs[i]!);
        });
        if (n.freshOutputs) for (const v of outs) if (v instanceof Tensor) owned.push(v);
        for (const name of release[k]) env.delete(name);
      });
      memo.complete = true;
    });
    const result: Record<string, OnnxTensor> = {};
    for (const o of this.outputs) {
      const v = env.get(o.name);
      if (!v) throw new OnnxError(`run: graph output '${o.name}' was not computed (its producer left that optional output out)`);
      result[o.name] = fromValue(v);
    }
    // Every graph output is a host copy now; give the fresh storages back (once each: views share one).
    const released = new Set<object>();
    for (const t of owned) {
      if (released.has(t.storage)) continue;
      released.add(t.storage);
      t.backend.release?.(t.storage);
    }
    return result;
  }

  /** Run one node's kernel without gradient recording, naming the node in any failure. */
  private execute(n: CompiledNode, args: (Value | null)[], kernel: Kernel = n.kernel): (Value | null)[] {
    try {
      return noGrad(() => kernel(args));
    } catch (e) {
      if (e instanceof OnnxError || e instanceof LimitError || e instanceof FoldDeferred) throw e;
      const msg = e instanceof RangeError && /allocation|Invalid typed array length|Array buffer/i.test(e.message) ? `out of memory (${e.message})` : (e as Error).message;
      throw new OnnxError(`${n.label}: ${msg}`);
    }
  }

  /**
   * Backend storage holding a copy of a float input's values (converted to the dtype in one pass,
   * no host copy before it). Each input keeps its storage from run to run and is overwritten in
   * place when the next run's has the same size and dtype: a batch-1 step then allocates nothing
   * for its inputs. Safe because runs do not overlap, and what may outlive a run never holds an
   * input's storage: shape arithmetic reads no input values, and kernels that cache by input
   * (the recurrent weights) compare Tensor objects, which are new on every run. A backend's own
   * caches of a storage's contents follow its writes (Backend.write).
   */
  private inputStorage(name: string, data: ArrayLike<number>, dtype: FloatDType): Storage {
    const be = this.backend;
    const slot = this.inputSlots.get(name);
    if (slot && slot.size === data.length && slot.dtype === dtype) {
      be.write(slot, data, 0);
      return slot;
    }
    const s = be.fromArray(data, dtype);
    this.inputSlots.set(name, s);
    // the old slot's last reader was the previous run, which has finished
    if (slot) be.release?.(slot);
    return s;
  }

  private inputValue(info: OnnxValueInfo, v: OnnxInput): Value {
    const what = `run: input '${info.name}'`;
    if (v === null || typeof v !== 'object' || !Array.isArray(v.shape) && !ArrayBuffer.isView(v.shape)) {
      throw new OnnxError(`${what} must be { shape, data }`);
    }
    const shape = Array.from(v.shape);
    const n = checkedSize(shape, what, this.limits);
    if (!v.data || typeof v.data.length !== 'number') throw new OnnxError(`${what}: data must be an array of numbers`);
    if (v.data.length !== n) throw new OnnxError(`${what}: ${v.data.length} values do not fill shape ${shapeStr(shape)} (${n} elements)`);
    if (v.dtype !== undefined && v.dtype !== info.dtype) throw new OnnxError(`${what}: dtype ${v.dtype} given, the model declares ${info.dtype}`);
    if (info.shape) {
      if (info.shape.length !== shape.length) throw new OnnxError(`${what}: shape ${shapeStr(shape)} has rank ${shape.length}, the model declares ${describeShape(info.shape)}`);
      info.shape.forEach((d, i) => {
        if (typeof d === 'number' && d !== shape[i]) throw new OnnxError(`${what}: shape ${shapeStr(shape)} does not match the declared ${describeShape(info.shape)}`);
      });
    }
    if (isFloatDType(info.dtype)) {
      return new Tensor(this.inputStorage(info.name, v.data, info.dtype), shape);
    }
    const data = Float64Array.from(v.data);
    for (let i = 0; i < n; i++) {
      if (!Number.isInteger(data[i])) throw new OnnxError(`${what}: value ${data[i]} at position ${i} is not an integer (${info.dtype})`);
      if (info.dtype === 'bool' && data[i] !== 0 && data[i] !== 1) throw new OnnxError(`${what}: value ${data[i]} at position ${i} is not 0 or 1 (bool)`);
    }
    return toValue({ dtype: info.dtype, shape, data }, this.backend);
  }
}

/** The limits a load runs under: DEFAULT_LIMITS, then `limits`, with `maxElements` standing in for an unset tensorElements. */
function limitsOf(opts: LoadOnnxOptions): Limits {
  return resolveLimits({ ...opts.limits, tensorElements: opts.limits?.tensorElements ?? opts.maxElements });
}

function describeShape(shape: (number | string | null)[] | null): string {
  return shape ? `[${shape.map((d) => d ?? '?').join(', ')}]` : '(any shape)';
}

/**
 * Decode, check and compile an ONNX model. Throws OnnxError with a clear message on bad input,
 * and LimitError (io/limits.ts) when the file asks for more than `opts.limits` allow.
 */
export function loadOnnx(bytes: Uint8Array, opts: LoadOnnxOptions = {}): OnnxModel {
  if (bytes instanceof Uint8Array && bytes.length === 0) throw new OnnxError('ONNX model: the input is empty (0 bytes)');
  const limits = limitsOf(opts);
  if (bytes instanceof Uint8Array) checkLimit(limits, 'fileBytes', bytes.length, 'ONNX model: bytes of the file');
  const proto = decodeModelProto(bytes);
  try {
    return new OnnxModel(proto, { ...opts, limits });
  } catch (e) {
    if (e instanceof OnnxError || e instanceof LimitError) throw e;
    const err = e as Error;
    throw new OnnxError(`ONNX model: ${err instanceof RangeError && /allocation|Array buffer/i.test(err.message) ? 'out of memory' : err.message}`);
  }
}
