/**
 * Tensor: a shape, a dtype and a storage handle on one backend, plus the autograd links
 * (`requiresGrad`, `grad`, and `node` — the tape entry that produced it). Row-major, contiguous.
 *
 * Tensors never expose their memory directly: `toArray()` copies out, the factories copy in.
 * This keeps the door open for backends whose memory is not the JS heap (wasm, WebGPU).
 */
import { asyncReads, type Backend, type Data, type DType, type Storage } from '../backend/interface.ts';
import { getBackend } from '../backend/registry.ts';
import { globalRng, type Rng } from './rng.ts';
import type { Node } from '../autograd/tape.ts';

import { shapeSize, shapeStrides } from '../util/shape.ts';

export type Shape = readonly number[];
export { shapeSize, shapeStrides };

/**
 * What the embedding op records on its output: the output's rows are `table[ids]`. With gradients
 * on, `table` is a copy of `weight` taken at lookup time (so an in-place update of the weight
 * before backward cannot change what the rows were); with them off it is the weight itself. A consumer that is linear in its rows — a recurrent layer's input
 * projection — may project the V table rows once instead of all T·B rows, and send its gradient
 * straight to `weight` (src/cells/recurrent.ts). Only made when the vocabulary is no larger than
 * the number of rows looked up (`LOOKUP_MAX_VOCAB_FRACTION`): then the copy costs at most what the
 * gather does, and the projection work saved is a factor rows/V.
 */
export interface EmbeddingLookup {
  /** The embedding weight [V, E] the rows came from (gradients go here). */
  readonly weight: Tensor;
  /** Its values at lookup time, [V, E] (the weight's own storage when made without gradients). */
  readonly table: Storage;
  /** One id per row of the output. */
  readonly ids: Int32Array;
  /** The row that receives no gradient (PyTorch padding_idx), or null. */
  readonly paddingIdx: number | null;
}

/** A lookup is recorded when V ≤ this fraction of the rows gathered. */
export const LOOKUP_MAX_VOCAB_FRACTION = 1;

export function checkShape(shape: Shape, what = 'shape'): void {
  if (!Array.isArray(shape)) throw new TypeError(`${what} must be an array of non-negative integers, got ${String(shape)}`);
  for (const s of shape) {
    if (!Number.isSafeInteger(s) || s < 0) throw new RangeError(`${what} must be an array of non-negative integers, got [${shape.join(', ')}]`);
  }
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly shape: Shape;
  readonly storage: Storage;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The tape entry that produced this tensor (null for leaves and for tensors made without grad). */
  node: Node | null = null;
  /** Optional name, used in error messages (e.g. the parameter name). */
  name: string | undefined;
  /** Set by the embedding op: where this tensor's rows came from (see EmbeddingLookup). */
  lookup: EmbeddingLookup | null = null;

  constructor(storage: Storage, shape: Shape) {
    checkShape(shape);
    const n = shapeSize(shape);
    if (n !== storage.size) throw new RangeError(`Tensor shape ${shapeStr(shape)} needs ${n} elements but storage holds ${storage.size}`);
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
  }

  get backend(): Backend { return this.storage.backend; }
  get dtype(): DType { return this.storage.dtype; }
  get size(): number { return this.storage.size; }
  get ndim(): number { return this.shape.length; }

  /** A copy of the values as a host typed array (synchronous: CPU backends; see data()). */
  toArray(): Data {
    return this.backend.read(this.storage);
  }

  /**
   * A copy of the values, on every backend: the one read that works where memory is read
   * asynchronously (WebGPU); on the CPU backends it resolves to what toArray() returns.
   */
  data(): Promise<Data> {
    return asyncReads(this.backend).read(this.storage);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs a one-element tensor, got shape ${shapeStr(this.shape)}`);
    return this.backend.read(this.storage, 0, 1)[0];
  }

  /** Nested arrays (for printing and tests). */
  toNested(): unknown {
    const a = this.toArray();
    const build = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return a[off];
      const inner = shapeSize(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * inner));
    };
    return build(0, 0);
  }

  /** A new leaf tensor with the same values, cut off from the tape. */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape);
  }

  /** A new leaf tensor with a copy of the values. */
  clone(): Tensor {
    const s = this.backend.alloc(this.size, this.dtype);
    this.backend.copy(this.storage, 0, s, 0, this.size);
    return new Tensor(s, this.shape);
  }

  /** Mark as a trainable leaf. */
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  zeroGrad(): void {
    this.grad = null;
  }

  toString(): string {
    return `Tensor(shape=${shapeStr(this.shape)}, dtype=${this.dtype}, backend=${this.backend.name})`;
  }
}

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
  backend?: Backend;
}

function opts(o?: TensorOptions): { dtype: DType; backend: Backend; requiresGrad: boolean } {
  return { dtype: o?.dtype ?? 'float32', backend: o?.backend ?? getBackend(), requiresGrad: o?.requiresGrad ?? false };
}

/** A tensor from flat (row-major) values and a shape; the shape defaults to [values.length]. */
export function tensor(values: ArrayLike<number>, shape?: Shape, o?: TensorOptions): Tensor {
  const { dtype, backend, requiresGrad } = opts(o);
  const sh = shape ?? [values.length];
  checkShape(sh);
  if (shapeSize(sh) !== values.length) {
    throw new RangeError(`tensor: ${values.length} values do not fill shape ${shapeStr(sh)} (${shapeSize(sh)} elements)`);
  }
  const t = new Tensor(backend.fromArray(values, dtype), sh);
  t.requiresGrad = requiresGrad;
  return t;
}

export function zeros(shape: Shape, o?: TensorOptions): Tensor {
  const { dtype, backend, requiresGrad } = opts(o);
  checkShape(shape);
  const t = new Tensor(backend.alloc(shapeSize(shape), dtype), shape);
  t.requiresGrad = requiresGrad;
  return t;
}

export function full(shape: Shape, value: number, o?: TensorOptions): Tensor {
  const t = zeros(shape, o);
  t.backend.fill(t.storage, value, 0, t.size);
  return t;
}

export function ones(shape: Shape, o?: TensorOptions): Tensor {
  return full(shape, 1, o);
}

export function randn(shape: Shape, o?: TensorOptions & { rng?: Rng; std?: number; mean?: number }): Tensor {
  const rng = o?.rng ?? globalRng;
  const n = shapeSize(shape);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal(o?.mean ?? 0, o?.std ?? 1);
  return tensor(v, shape, o);
}

export function uniform(shape: Shape, lo: number, hi: number, o?: TensorOptions & { rng?: Rng }): Tensor {
  const rng = o?.rng ?? globalRng;
  const n = shapeSize(shape);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.uniform(lo, hi);
  return tensor(v, shape, o);
}

/**
 * Point t at other storage of the same size and dtype, possibly on another backend (what moving a
 * model between backends does: `Module.to`, and the Trainer's evaluation of a model trained on a GPU
 * on a host copy of its weights). Not exported from the package: a tensor's storage is otherwise
 * fixed for its life.
 */
export function replaceStorage(t: Tensor, s: Storage): void {
  if (s.size !== t.size || s.dtype !== t.dtype) throw new RangeError(`replaceStorage: a ${t.dtype} tensor of ${t.size} elements cannot take ${s.dtype} storage of ${s.size}`);
  (t as { storage: Storage }).storage = s;
}
