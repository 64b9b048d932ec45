/**
 * Stop training at the first NaN/Inf, naming where it appeared: the loss, or the first parameter
 * (in the order given) whose gradient or value is non-finite.
 */
import { Tensor } from '../tensor/tensor.ts';
import { firstNonFinite, runSync, values, type Reading } from './host-reads.ts';
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

/**
 * Throw a NonFiniteError if the loss (a tensor, a number, or null to skip), or any parameter's
 * gradient or value, holds NaN or ±Infinity. Parameters are checked in order, each gradient
 * before its value, so the error names the first one that broke. Returns normally when all is finite.
 */
export function checkFinite(loss: Tensor | number | null, params: Params, step: number): void {
  runSync(checkFiniteReading(loss, params, step));
}

/** checkFinite with its reads yielded (src/train/host-reads.ts), for a caller on any backend. */
export function* checkFiniteReading(loss: Tensor | number | null, params: Params, step: number): Reading<void> {
  if (typeof loss === 'number') {
    if (!Number.isFinite(loss)) throw new NonFiniteError(step, 'loss', null, 0, loss);
  } else if (loss instanceof Tensor) {
    yield* throwFirst([loss], [{ what: 'loss', param: null }], step);
  } else if (loss !== null) {
    throw new TypeError(`checkFinite: loss must be a Tensor, a number or null, got ${String(loss)}`);
  }
  const ts: Tensor[] = [];
  const names: { what: NonFiniteWhat; param: string }[] = [];
  for (const p of collectParams(params, 'checkFinite').items) {
    const g = p.tensor.grad;
    if (g !== null) {
      ts.push(g);
      names.push({ what: 'gradient', param: p.label });
    }
    ts.push(p.tensor);
    names.push({ what: 'value', param: p.label });
  }
  yield* throwFirst(ts, names, step);
}

/**
 * Throw a NonFiniteError naming the first parameter (in order) whose value holds NaN or ±Infinity;
 * gradients are not looked at. One `findNonFinite` pass per parameter: a backend kernel that
 * returns one index (on wasm it runs in the module's memory, nothing is read back), so a scan costs
 * about what one element-wise pass over the weights costs.
 */
export function checkValues(params: Params, step: number): void {
  runSync(checkValuesReading(params, step));
}

/** checkValues with its reads yielded, for a caller on any backend. */
export function* checkValuesReading(params: Params, step: number): Reading<void> {
  const items = collectParams(params, 'checkValues').items;
  yield* throwFirst(items.map((p) => p.tensor), items.map((p) => ({ what: 'value' as const, param: p.label })), step);
}

/** One scan of every tensor (one request); throws for the first that holds a non-finite element. */
function* throwFirst(ts: readonly Tensor[], names: readonly { what: NonFiniteWhat; param: string | null }[], step: number): Reading<void> {
  const first = yield* firstNonFinite(ts);
  const k = first.findIndex((i) => i >= 0);
  if (k < 0) return;
  const value = (yield* values(ts[k]))[first[k]];
  throw new NonFiniteError(step, names[k].what, names[k].param, first[k], value);
}
