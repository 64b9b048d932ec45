/**
 * Stop training at the first NaN/Inf, naming where it appeared: the loss, or the first parameter
 * (in the order given) whose gradient or value is non-finite.
 */
import { Tensor } from '../tensor/tensor.ts';
import { collectParams, type Params } from './optim.ts';

export type NonFiniteWhat = 'loss' | 'gradient' | 'value';

const ADVICE = 'lower the learning rate, clip gradients (clipGradNorm), or check the input data';

export class NonFiniteError extends Error {
  /** The training step passed to `checkFinite`. */
  readonly step: number;
  /** What went non-finite: the loss, a parameter's gradient, or a parameter's value. */
  readonly what: NonFiniteWhat;
  /** The parameter's name (its label for a plain list); null for the loss. */
  readonly param: string | null;
  /** Index of the first non-finite element. */
  readonly index: number;
  /** That element (NaN, Infinity or -Infinity). */
  readonly value: number;

  constructor(step: number, what: NonFiniteWhat, param: string | null, index: number, value: number) {
    const where = what === 'loss' ? 'loss' : `${what} in '${param}'`;
    const detail = what === 'loss' && index === 0 ? `${value}` : `first bad element index ${index}: ${value}`;
    super(`non-finite ${where} at step ${step} (${detail}); ${ADVICE}`);
    this.name = 'NonFiniteError';
    this.step = step;
    this.what = what;
    this.param = param;
    this.index = index;
    this.value = value;
  }
}

function firstBad(t: Tensor): number {
  return t.backend.findNonFinite(t.size, t.storage, 0);
}

function valueAt(t: Tensor, i: number): number {
  return t.backend.read(t.storage, i, 1)[0];
}

/**
 * Throw a NonFiniteError if the loss (a tensor, a number, or null to skip), or any parameter's
 * gradient or value, holds NaN or ±Infinity. Parameters are checked in order, each gradient
 * before its value, so the error names the first one that broke. Returns normally when all is finite.
 */
export function checkFinite(loss: Tensor | number | null, params: Params, step: number): void {
  if (typeof loss === 'number') {
    if (!Number.isFinite(loss)) throw new NonFiniteError(step, 'loss', null, 0, loss);
  } else if (loss instanceof Tensor) {
    const i = firstBad(loss);
    if (i >= 0) throw new NonFiniteError(step, 'loss', null, i, valueAt(loss, i));
  } else if (loss !== null) {
    throw new TypeError(`checkFinite: loss must be a Tensor, a number or null, got ${String(loss)}`);
  }
  for (const p of collectParams(params, 'checkFinite').items) {
    const g = p.tensor.grad;
    if (g !== null) {
      const i = firstBad(g);
      if (i >= 0) throw new NonFiniteError(step, 'gradient', p.label, i, valueAt(g, i));
    }
    const i = firstBad(p.tensor);
    if (i >= 0) throw new NonFiniteError(step, 'value', p.label, i, valueAt(p.tensor, i));
  }
}

/**
 * Throw a NonFiniteError naming the first parameter (in order) whose value holds NaN or ±Infinity;
 * gradients are not looked at. One `findNonFinite` pass per parameter: a backend kernel that
 * returns one index (on wasm it runs in the module's memory, nothing is read back), so a scan costs
 * about what one element-wise pass over the weights costs.
 */
export function checkValues(params: Params, step: number): void {
  for (const p of collectParams(params, 'checkValues').items) {
    const i = firstBad(p.tensor);
    if (i >= 0) throw new NonFiniteError(step, 'value', p.label, i, valueAt(p.tensor, i));
  }
}
