/**
 * Module: the base of every layer and model. Parameters and sub-modules are registered by name in
 * construction order, so `namedParameters()` and `stateDict()` list exactly the names, order and
 * shapes of the equivalent PyTorch module's `state_dict()` (e.g. `lstm.weight_ih_l0`).
 */
import { Tensor, replaceStorage, shapeStr } from '../tensor/tensor.ts';
import type { Backend } from '../backend/interface.ts';
import { noGrad } from '../autograd/tape.ts';
import { checkOptions } from '../util/options.ts';

export { checkOptions };

/** Anything with a shape and flat values: a Tensor, a safetensors entry, a JSON fixture. */
export interface TensorLike {
  shape: readonly number[];
  data: ArrayLike<number>;
}

export type StateDictInput = Record<string, Tensor | TensorLike>;

export class StateDictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateDictError';
  }
}

export class Module {
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly ownModules = new Map<string, Module>();

  protected registerParameter(name: string, t: Tensor): Tensor {
    if (name.includes('.')) throw new Error(`parameter name '${name}' must not contain '.'`);
    t.requiresGrad = true;
    t.name = name;
    this.ownParams.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    if (name.includes('.')) throw new Error(`module name '${name}' must not contain '.'`);
    this.ownModules.set(name, m);
    return m;
  }

  /** [name, tensor] for every parameter, depth-first in registration order (PyTorch order). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.ownParams) out.push([prefix + n, p]);
    for (const [n, m] of this.ownModules) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, m] of this.ownModules) out.push(...m.namedModules(`${prefix}${n}.`));
    return out;
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** The parameters by PyTorch state_dict name. The tensors are the live parameters (not copies). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedParameters());
  }

  /**
   * Copy values into the parameters by name. Every name must match and every shape must agree
   * (strict, as PyTorch); with strict = false, missing and unexpected names are skipped but shapes
   * are still checked. Nothing is changed unless the whole dict validates.
   */
  loadStateDict(sd: StateDictInput, opts: { strict?: boolean } = {}): void {
    const strict = opts.strict ?? true;
    const own = new Map(this.namedParameters());
    const missing = [...own.keys()].filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missing.length) problems.push(`missing: ${missing.join(', ')}`);
    if (strict && unexpected.length) problems.push(`unexpected: ${unexpected.join(', ')}`);
    const plan: [Tensor, ArrayLike<number>][] = [];
    for (const [name, p] of own) {
      const v = sd[name];
      if (v === undefined) continue;
      const shape = v.shape;
      if (shape.length !== p.ndim || shape.some((s, i) => s !== p.shape[i])) {
        problems.push(`'${name}' has shape ${shapeStr(shape)}, the model expects ${shapeStr(p.shape)}`);
        continue;
      }
      const data = v instanceof Tensor ? v.toArray() : v.data;
      if (data.length !== p.size) {
        problems.push(`'${name}' holds ${data.length} values, expected ${p.size}`);
        continue;
      }
      plan.push([p, data]);
    }
    if (problems.length) throw new StateDictError(`loadStateDict: ${problems.join('; ')}`);
    noGrad(() => {
      for (const [p, data] of plan) p.backend.write(p.storage, data);
    });
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Move every parameter to `backend` (as PyTorch's `module.to(device)`): its values are read from
   * where they are — asynchronously, so a model trained on WebGPU comes back to a CPU backend — and
   * each parameter tensor keeps its identity with new storage; gradients are dropped. An optimizer
   * made before the move still holds its state on the old backend: make a new one.
   */
  async to(backend: Backend): Promise<this> {
    const params = this.parameters().filter((p) => p.backend !== backend);
    const data = await Promise.all(params.map((p) => p.data()));
    params.forEach((p, i) => {
      replaceStorage(p, backend.fromArray(data[i], p.dtype));
      p.grad = null;
    });
    return this;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
}

/**
 * Run fn in eval mode without gradient recording, restoring the model's previous training flag
 * after (also when fn throws).
 */
export function withEval<T>(model: Module, fn: () => T): T {
  const was = model.training;
  model.eval();
  try {
    return noGrad(fn);
  } finally {
    model.train(was);
  }
}

/** A positive integer option, or a TypeError naming it. */
export function checkPositiveInt(where: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TypeError(`${where}: '${name}' must be a positive integer, got ${String(v)}`);
  return v;
}
