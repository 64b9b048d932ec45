/**
 * Optimizers: SGD (momentum, Nesterov), RMSProp, Adagrad, Adam and AdamW, with PyTorch's (1.13+)
 * update rules, defaults and per-parameter state.
 *
 * Every update runs on the parameter's backend through its kernels, and every state buffer
 * (momentum, running averages) is allocated there with `backend.alloc`, so a backend that keeps
 * its memory outside the JS heap keeps the optimizer state too. Values cross to the host only in
 * `stateDict()` / `loadStateDict()`.
 *
 * Parameters are given as a list of tensors or as `[name, tensor]` pairs (a module's
 * `namedParameters()`); names appear in error messages and key the saved state. A parameter whose
 * `.grad` is null is skipped by `step()` (its state, including its step count, is untouched), as in
 * PyTorch.
 */
import { elementBytes, type Storage } from '../backend/interface.ts';
import { Tensor, shapeStr } from '../tensor/tensor.ts';
import { StateDictError } from '../nn/module.ts';
import { brief, isRecord } from '../util/options.ts';
import { runSync, values, type Reading } from './host-reads.ts';
import {
  checkLearningRate, parseOptimizerOptions,
  type AdagradHyper, type AdagradOptions, type AdamHyper, type AdamOptions, type RMSPropHyper, type RMSPropOptions, type SGDHyper, type SGDOptions,
} from './schema.ts';

// The hyper-parameters of each optimizer are declared once, as a schema in schema.ts; the types
// come from there.
export type { AdagradHyper, AdagradOptions, AdamHyper, AdamOptions, RMSPropHyper, RMSPropOptions, SGDHyper, SGDOptions };

// ---- parameters -------------------------------------------------------------------------------

/** Parameters: tensors, or `[name, tensor]` pairs in a fixed order (e.g. `model.namedParameters()`). */
export type Params = Iterable<Tensor> | Iterable<readonly [string, Tensor]>;

export interface NamedParam {
  /** Key in state dicts and norm reports: the given name, or the position ("0", "1", ...). */
  readonly key: string;
  /** For messages: the given name, else the tensor's own `name`, else `params[i]`. */
  readonly label: string;
  readonly tensor: Tensor;
}

export interface ParamList {
  /** 'name' when the parameters came as `[name, tensor]` pairs, 'index' for a plain list. */
  readonly keyedBy: 'name' | 'index';
  readonly items: readonly NamedParam[];
}

/**
 * Normalise parameters given as tensors or `[name, tensor]` pairs. Rejects mixed forms, entries
 * that are neither, duplicate names and a tensor given twice. `who` prefixes error messages.
 */
export function collectParams(params: Params, who: string): ParamList {
  if (params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`${who}: parameters must be an array of tensors or of [name, tensor] pairs, got ${brief(params, "'")}`);
  }
  const items: NamedParam[] = [];
  let keyedBy: 'name' | 'index' | null = null;
  const seenTensors = new Map<Tensor, string>();
  const seenNames = new Set<string>();
  let i = 0;
  for (const entry of params as Iterable<unknown>) {
    let item: NamedParam;
    let form: 'name' | 'index';
    if (entry instanceof Tensor) {
      form = 'index';
      item = { key: String(i), label: entry.name ?? `params[${i}]`, tensor: entry };
    } else if (Array.isArray(entry) && entry.length === 2 && typeof entry[0] === 'string' && entry[1] instanceof Tensor) {
      form = 'name';
      const name = entry[0];
      if (seenNames.has(name)) throw new Error(`${who}: parameter name '${name}' appears twice`);
      seenNames.add(name);
      item = { key: name, label: name, tensor: entry[1] };
    } else {
      throw new TypeError(`${who}: parameter entry ${i} must be a Tensor or a [name, Tensor] pair, got ${brief(entry, "'")}`);
    }
    if (keyedBy !== null && keyedBy !== form) {
      throw new TypeError(`${who}: parameters mix plain tensors and [name, tensor] pairs (entry ${i}); use one form`);
    }
    keyedBy = form;
    const before = seenTensors.get(item.tensor);
    if (before !== undefined) throw new Error(`${who}: the same tensor is given twice ('${before}' and '${item.label}')`);
    seenTensors.set(item.tensor, item.label);
    items.push(item);
    i++;
  }
  return { keyedBy: keyedBy ?? 'index', items };
}

/** Check that a parameter's gradient can be used with it (same size, backend and dtype). */
export function checkGrad(who: string, p: NamedParam, g: Tensor): void {
  const t = p.tensor;
  if (!(g instanceof Tensor)) throw new TypeError(`${who}: the gradient of '${p.label}' is not a Tensor (got ${brief(g, "'")})`);
  if (g.size !== t.size) {
    throw new RangeError(`${who}: the gradient of '${p.label}' has shape ${shapeStr(g.shape)} (${g.size} elements) but the parameter has shape ${shapeStr(t.shape)} (${t.size} elements)`);
  }
  if (g.backend !== t.backend) throw new Error(`${who}: the gradient of '${p.label}' is on backend '${g.backend.name}' but the parameter is on '${t.backend.name}'`);
  if (g.dtype !== t.dtype) throw new TypeError(`${who}: the gradient of '${p.label}' is ${g.dtype} but the parameter is ${t.dtype}`);
}

// ---- state dicts ------------------------------------------------------------------------------

export type OptimizerType = 'SGD' | 'RMSProp' | 'Adagrad' | 'Adam' | 'AdamW';
export type HyperValue = number | boolean | readonly number[];

/** Saved state of one parameter. `buffers` is empty until the parameter's first update. */
export interface ParamStateDict {
  /** Number of elements (checked on load). */
  size: number;
  /** Number of updates applied to this parameter (steps where its gradient was null don't count). */
  step: number;
  /** Optimizer buffers (e.g. `expAvg`, `expAvgSq`) as plain numbers, row-major. */
  buffers: Record<string, number[]>;
}

/** A JSON-serialisable optimizer state. */
export interface OptimizerState {
  format: 'recur.optimizer';
  version: 1;
  type: OptimizerType;
  /** All hyper-parameters, `lr` included. Loading restores them (as PyTorch does). */
  hyper: Record<string, HyperValue>;
  /** Number of `step()` calls. */
  stepCount: number;
  /** Whether `params` is keyed by parameter names or by positions ("0", "1", ...). */
  keyedBy: 'name' | 'index';
  params: Record<string, ParamStateDict>;
}

// A state dict that does not fit the optimizer it is loaded into is a StateDictError, the same
// error class modules use for their state dicts.
export { StateDictError };

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// ---- the base class --------------------------------------------------------------------------------

/** Per-parameter state: step count, state buffers and (unsaved) scratch space. */
export interface Slot {
  step: number;
  readonly buffers: Map<string, Storage>;
  readonly scratch: Storage[];
}

export abstract class Optimizer<H extends { lr: number } = { lr: number }> {
  readonly type: OptimizerType;
  protected readonly params: ParamList;
  protected cfg: H;
  private readonly slots: Slot[];
  private steps = 0;

  protected constructor(type: OptimizerType, params: Params, options: unknown) {
    this.type = type;
    this.params = collectParams(params, type);
    if (this.params.items.length === 0) throw new Error(`${type}: got an empty parameter list`);
    for (const p of this.params.items) {
      if (p.tensor.node !== null) {
        throw new Error(`${type}: '${p.label}' is not a leaf tensor (it was computed by '${p.tensor.node.name}'); optimize the leaves it came from`);
      }
    }
    this.cfg = this.parse(options, type);
    this.slots = this.params.items.map(() => ({ step: 0, buffers: new Map<string, Storage>(), scratch: [] }));
  }

  /**
   * Validate options (or saved hyper-parameters) into the resolved hyper-parameters, with the
   * schema of this optimizer's type (schema.ts).
   */
  protected parse(options: unknown, who: string): H {
    // Every optimizer here is an Optimizer<HyperOf[its type]>; the class's type parameter cannot
    // name its `type`, hence the cast.
    return parseOptimizerOptions(this.type, options, who) as unknown as H;
  }
  /** Names of the state buffers a parameter holds once it has been updated, under `cfg`. */
  protected abstract bufferNames(cfg: H): string[];
  /** Apply one update to p given its gradient g; `slot.step` is already incremented. */
  protected abstract update(p: Tensor, g: Tensor, slot: Slot): void;

  /** The learning rate used by the next `step()` (what schedules change). */
  get lr(): number {
    return this.cfg.lr;
  }

  set lr(v: number) {
    this.cfg = { ...this.cfg, lr: checkLearningRate(this.type, v) };
  }

  /** The resolved hyper-parameters (a copy). */
  get hyper(): Readonly<H> {
    const h = { ...this.cfg } as Record<string, unknown>;
    for (const [k, v] of Object.entries(h)) if (Array.isArray(v)) h[k] = [...v];
    return h as H;
  }

  /** Bytes of the state buffers once every parameter has been updated (what training holds besides weights and gradients). */
  stateBytes(): number {
    const perElement = this.bufferNames(this.cfg).length;
    return this.params.items.reduce((n, p) => n + perElement * p.tensor.size * elementBytes(p.tensor.dtype), 0);
  }

  /** Number of `step()` calls so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** The parameters, in order, with their keys and labels. */
  get parameters(): readonly NamedParam[] {
    return this.params.items;
  }

  /** Update every parameter that has a gradient; parameters whose `.grad` is null are skipped. */
  step(): void {
    const who = `${this.type}.step`;
    const items = this.params.items;
    for (const p of items) if (p.tensor.grad !== null) checkGrad(who, p, p.tensor.grad);
    for (let i = 0; i < items.length; i++) {
      const p = items[i].tensor;
      const g = p.grad;
      if (g === null) continue;
      const slot = this.slots[i];
      slot.step++;
      this.update(p, g, slot);
    }
    this.steps++;
  }

  /** Drop every parameter's gradient (sets `.grad` to null). */
  zeroGrad(): void {
    for (const p of this.params.items) p.tensor.grad = null;
  }

  /** Buffer `name` of the slot, allocated (zeros, or `fill`) on p's backend on first use. */
  protected buffer(slot: Slot, name: string, p: Tensor, fill = 0): Storage {
    let s = slot.buffers.get(name);
    if (s === undefined) {
      s = p.backend.alloc(p.size, p.dtype);
      if (fill !== 0) p.backend.fill(s, fill, 0, p.size);
      slot.buffers.set(name, s);
    }
    return s;
  }

  /** Scratch buffer i of the slot (not part of the state; contents are garbage between uses). */
  protected scratch(slot: Slot, i: number, p: Tensor): Storage {
    while (slot.scratch.length <= i) slot.scratch.push(p.backend.alloc(p.size, p.dtype));
    return slot.scratch[i];
  }

  /** g + wd·p (PyTorch's coupled weight decay) in scratch buffer i, or g itself when wd = 0. */
  protected decayedGrad(slot: Slot, i: number, p: Tensor, g: Tensor, weightDecay: number): Storage {
    if (weightDecay === 0) return g.storage;
    const t = this.scratch(slot, i, p);
    p.backend.copy(g.storage, 0, t, 0, p.size);
    p.backend.axpy(p.size, weightDecay, p.storage, 0, t, 0);
    return t;
  }

  stateDict(): OptimizerState {
    return runSync(this.stateDictReading());
  }

  /** stateDict with its reads yielded (src/train/host-reads.ts), for a caller on any backend. */
  *stateDictReading(): Reading<OptimizerState> {
    const params: Record<string, ParamStateDict> = {};
    const names = this.bufferNames(this.cfg);
    for (const [i, p] of this.params.items.entries()) {
      const slot = this.slots[i];
      const buffers: Record<string, number[]> = {};
      for (const name of names) {
        const s = slot.buffers.get(name);
        if (s !== undefined) buffers[name] = Array.from(yield* values(new Tensor(s, [s.size])));
      }
      params[p.key] = { size: p.tensor.size, step: slot.step, buffers };
    }
    const hyper: Record<string, HyperValue> = {};
    for (const [k, v] of Object.entries(this.cfg)) hyper[k] = Array.isArray(v) ? [...v] : v;
    return { format: 'recur.optimizer', version: 1, type: this.type, hyper, stepCount: this.steps, keyedBy: this.params.keyedBy, params };
  }

  /**
   * Restore a state from `stateDict()` (possibly through JSON). Everything is checked before
   * anything changes: the optimizer type, the hyper-parameters (which replace the current ones,
   * `lr` included), the parameter keys, sizes, step counts and buffers.
   */
  loadStateDict(state: unknown): void {
    const who = `${this.type}.loadStateDict`;
    // a declared function, so that TypeScript narrows the values it has checked
    function fail(msg: string): never {
      throw new StateDictError(`${who}: ${msg}`);
    }
    const s = state;
    if (!isRecord(s)) fail(`expected an object from stateDict(), got ${brief(s, "'")}`);
    if (s.format !== 'recur.optimizer') fail(`not an optimizer state (format is ${brief(s.format, "'")}, expected 'recur.optimizer')`);
    if (s.version !== 1) fail(`unsupported state version ${brief(s.version, "'")} (expected 1)`);
    if (s.type !== this.type) fail(`the state is from a ${brief(s.type, "'")} optimizer, not '${this.type}'`);
    let cfg: H;
    try {
      cfg = this.parse(s.hyper, `${who}: saved 'hyper'`);
    } catch (e) {
      throw new StateDictError((e as Error).message);
    }
    const stepCount = s.stepCount;
    if (!isCount(stepCount)) fail(`'stepCount' must be a non-negative integer, got ${brief(stepCount, "'")}`);
    if (s.keyedBy !== this.params.keyedBy) {
      const how = (k: unknown): string => (k === 'name' ? 'parameter names' : k === 'index' ? 'parameter positions' : brief(k, "'"));
      fail(`the state is keyed by ${how(s.keyedBy)} but this optimizer's parameters are keyed by ${how(this.params.keyedBy)}; `
        + `give the parameters in the same form as when saving (named pairs such as model.namedParameters(), or a plain list)`);
    }
    const saved = s.params;
    if (!isRecord(saved)) fail(`'params' must be an object keyed by parameter, got ${brief(saved, "'")}`);
    const items = this.params.items;
    const keys = new Set(items.map((p) => p.key));
    for (const k of Object.keys(saved)) {
      if (!keys.has(k)) {
        const list = items.map((p) => p.key).join(', ');
        fail(`the state has an entry for '${k}', which is not one of this optimizer's parameters (${list})`);
      }
    }
    const names = this.bufferNames(cfg);
    const loaded: { step: number; buffers: Map<string, number[]> }[] = [];
    for (const p of items) {
      const entry = saved[p.key];
      if (entry === undefined) fail(`the state has no entry for parameter '${p.label}'`);
      if (!isRecord(entry)) fail(`the entry for '${p.label}' must be an object {size, step, buffers}, got ${brief(entry, "'")}`);
      if (entry.size !== p.tensor.size) {
        fail(`parameter '${p.label}' has ${p.tensor.size} elements (shape ${shapeStr(p.tensor.shape)}) but the state holds ${brief(entry.size, "'")}`);
      }
      const step = entry.step;
      if (!isCount(step)) fail(`'step' of '${p.label}' must be a non-negative integer, got ${brief(step, "'")}`);
      const bufs = entry.buffers;
      if (!isRecord(bufs)) fail(`'buffers' of '${p.label}' must be an object, got ${brief(bufs, "'")}`);
      const expected = step === 0 ? [] : names;
      for (const b of Object.keys(bufs)) {
        if (!expected.includes(b)) {
          fail(step === 0
            ? `parameter '${p.label}' has step 0 (never updated) but the state holds buffer '${b}'`
            : `unexpected buffer '${b}' for '${p.label}' (a ${this.type} with these hyper-parameters keeps: ${names.join(', ') || 'none'})`);
        }
      }
      const buffers = new Map<string, number[]>();
      for (const b of expected) {
        const arr = bufs[b];
        if (arr === undefined) fail(`buffer '${b}' of '${p.label}' is missing (it has been updated ${step} times)`);
        if (!Array.isArray(arr)) fail(`buffer '${b}' of '${p.label}' must be an array of numbers, got ${brief(arr, "'")}`);
        if (arr.length !== p.tensor.size) fail(`buffer '${b}' of '${p.label}' has ${arr.length} values, expected ${p.tensor.size}`);
        const values: number[] = [];
        for (let j = 0; j < arr.length; j++) {
          const x: unknown = arr[j];
          if (typeof x !== 'number') {
            fail(`buffer '${b}' of '${p.label}' holds ${brief(x, "'")} at index ${j}, not a number (NaN and Infinity do not survive JSON)`);
          }
          values.push(x);
        }
        buffers.set(b, values);
      }
      loaded.push({ step, buffers });
    }
    // All checked: apply.
    this.cfg = cfg;
    this.steps = stepCount;
    items.forEach((p, i) => {
      const slot = this.slots[i];
      slot.step = loaded[i].step;
      for (const b of [...slot.buffers.keys()]) if (!loaded[i].buffers.has(b)) slot.buffers.delete(b);
      for (const [b, values] of loaded[i].buffers) p.tensor.backend.write(this.buffer(slot, b, p.tensor), values);
    });
  }
}

// ---- SGD ----------------------------------------------------------------------------------------

/**
 * Stochastic gradient descent, as torch.optim.SGD:
 *   g ← g + wd·p
 *   buf ← g on the first update, then buf ← μ·buf + (1 − dampening)·g      (when μ ≠ 0)
 *   d ← g + μ·buf (Nesterov) or buf                                        (when μ ≠ 0), else d ← g
 *   p ← p − lr·d
 */
export class SGD extends Optimizer<SGDHyper> {
  constructor(params: Params, options: SGDOptions) {
    super('SGD', params, options);
  }


  protected bufferNames(cfg: SGDHyper): string[] {
    return cfg.momentum !== 0 ? ['momentumBuffer'] : [];
  }

  protected update(p: Tensor, g: Tensor, slot: Slot): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = this.cfg;
    const be = p.backend, n = p.size;
    let d = this.decayedGrad(slot, 0, p, g, weightDecay);
    if (momentum !== 0) {
      let buf = slot.buffers.get('momentumBuffer');
      if (buf === undefined) {
        buf = this.buffer(slot, 'momentumBuffer', p);
        be.copy(d, 0, buf, 0, n);
      } else {
        be.scale(n, momentum, buf, 0);
        be.axpy(n, 1 - dampening, d, 0, buf, 0);
      }
      if (nesterov) {
        if (d === g.storage) {
          const t = this.scratch(slot, 0, p);
          be.copy(g.storage, 0, t, 0, n);
          d = t;
        }
        be.axpy(n, momentum, buf, 0, d, 0);
      } else {
        d = buf;
      }
    }
    be.axpy(n, -lr, d, 0, p.storage, 0);
  }
}

// ---- RMSProp ------------------------------------------------------------------------------------

/**
 * RMSProp, as torch.optim.RMSprop:
 *   g ← g + wd·p
 *   s ← α·s + (1 − α)·g²
 *   centered: a ← α·a + (1 − α)·g;  denom ← √(s − a²) + eps      else denom ← √s + eps
 *   momentum μ > 0: buf ← μ·buf + g/denom;  p ← p − lr·buf          else p ← p − lr·g/denom
 */
export class RMSProp extends Optimizer<RMSPropHyper> {
  constructor(params: Params, options: RMSPropOptions = {}) {
    super('RMSProp', params, options);
  }


  protected bufferNames(cfg: RMSPropHyper): string[] {
    const names = ['squareAvg'];
    if (cfg.momentum > 0) names.push('momentumBuffer');
    if (cfg.centered) names.push('gradAvg');
    return names;
  }

  protected update(p: Tensor, g: Tensor, slot: Slot): void {
    const { lr, alpha, eps, weightDecay, momentum, centered } = this.cfg;
    const be = p.backend, n = p.size, sh = [n];
    const gs = this.decayedGrad(slot, 2, p, g, weightDecay);
    const a = this.scratch(slot, 0, p), b = this.scratch(slot, 1, p);
    const sq = this.buffer(slot, 'squareAvg', p);
    // s ← α·s + (1 − α)·g²
    be.binary('mul', gs, sh, gs, sh, a, sh);
    be.scale(n, alpha, sq, 0);
    be.axpy(n, 1 - alpha, a, 0, sq, 0);
    if (centered) {
      const ga = this.buffer(slot, 'gradAvg', p);
      be.scale(n, alpha, ga, 0);
      be.axpy(n, 1 - alpha, gs, 0, ga, 0);
      be.binary('mul', ga, sh, ga, sh, a, sh);
      be.binary('sub', sq, sh, a, sh, b, sh);
      be.unary('sqrt', n, b, a);
    } else {
      be.unary('sqrt', n, sq, a);
    }
    // denom ← √· + eps (in b), then a ← g / denom
    be.fill(b, eps, 0, n);
    be.axpy(n, 1, a, 0, b, 0);
    be.binary('div', gs, sh, b, sh, a, sh);
    if (momentum > 0) {
      const buf = this.buffer(slot, 'momentumBuffer', p);
      be.scale(n, momentum, buf, 0);
      be.axpy(n, 1, a, 0, buf, 0);
      be.axpy(n, -lr, buf, 0, p.storage, 0);
    } else {
      be.axpy(n, -lr, a, 0, p.storage, 0);
    }
  }
}

// ---- Adagrad ------------------------------------------------------------------------------------

/**
 * Adagrad, as torch.optim.Adagrad (t = this parameter's update count, from 1):
 *   g ← g + wd·p;  clr ← lr / (1 + (t − 1)·lrDecay)
 *   sum ← sum + g²   (sum starts at initialAccumulatorValue)
 *   p ← p − clr·g / (√sum + eps)
 */
export class Adagrad extends Optimizer<AdagradHyper> {
  constructor(params: Params, options: AdagradOptions = {}) {
    super('Adagrad', params, options);
  }


  protected bufferNames(): string[] {
    return ['sum'];
  }

  protected update(p: Tensor, g: Tensor, slot: Slot): void {
    const { lr, lrDecay, weightDecay, initialAccumulatorValue, eps } = this.cfg;
    const be = p.backend, n = p.size, sh = [n];
    const gs = this.decayedGrad(slot, 2, p, g, weightDecay);
    const clr = lr / (1 + (slot.step - 1) * lrDecay);
    const a = this.scratch(slot, 0, p), b = this.scratch(slot, 1, p);
    const sum = this.buffer(slot, 'sum', p, initialAccumulatorValue);
    be.binary('mul', gs, sh, gs, sh, a, sh);
    be.axpy(n, 1, a, 0, sum, 0);
    be.unary('sqrt', n, sum, a);
    be.fill(b, eps, 0, n);
    be.axpy(n, 1, a, 0, b, 0);
    be.binary('div', gs, sh, b, sh, a, sh);
    be.axpy(n, -clr, a, 0, p.storage, 0);
  }
}

// ---- Adam / AdamW -------------------------------------------------------------------------------

abstract class AdamBase extends Optimizer<AdamHyper> {
  protected bufferNames(): string[] {
    return ['expAvg', 'expAvgSq'];
  }

  protected update(p: Tensor, g: Tensor, slot: Slot): void {
    const { lr, betas, eps, weightDecay } = this.cfg;
    const m = this.buffer(slot, 'expAvg', p);
    const v = this.buffer(slot, 'expAvgSq', p);
    p.backend.adamUpdate(p.size, p.storage, g.storage, m, v, lr, betas[0], betas[1], eps, weightDecay, this.type === 'AdamW', slot.step);
  }
}

/**
 * Adam, as torch.optim.Adam without amsgrad (t = this parameter's update count, from 1):
 *   g ← g + wd·p (L2 penalty folded into the gradient)
 *   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
 */
export class Adam extends AdamBase {
  constructor(params: Params, options: AdamOptions = {}) {
    super('Adam', params, options);
  }
}

/**
 * AdamW, as torch.optim.AdamW: p ← p·(1 − lr·wd) (decoupled decay), then the Adam update
 * without the L2 term. Default weightDecay 1e-2.
 */
export class AdamW extends AdamBase {
  constructor(params: Params, options: AdamOptions = {}) {
    super('AdamW', params, options);
  }
}
