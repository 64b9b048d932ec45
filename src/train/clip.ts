/**
 * Gradient clipping and gradient-norm reports, with torch.nn.utils semantics. Parameters whose
 * `.grad` is null are skipped. All arithmetic on gradients runs through the backend's kernels.
 */
import { Tensor } from '../tensor/tensor.ts';
import { maxAbs, runSync, sumSquares, values, type Reading } from './host-reads.ts';
import { checkGrad, collectParams, type NamedParam, type Params } from './optim.ts';

/** A p-norm order: any p > 0, or Infinity / 'inf' for the max-abs norm. */
export type NormType = number | 'inf';

function parseNormType(who: string, normType: NormType): number {
  const p = normType === 'inf' ? Infinity : normType;
  if (typeof p !== 'number' || Number.isNaN(p) || p <= 0) {
    throw new RangeError(`${who}: normType must be a number > 0 or Infinity ('inf'), got ${String(normType)}`);
  }
  return p;
}

/** The p-norm of each gradient, computed on its backend; only the norms come back to the host. */
function* tensorNorms(gs: readonly Tensor[], p: number): Reading<number[]> {
  if (p === 2) return (yield* sumSquares(gs)).map(Math.sqrt);
  if (p === Infinity) return yield* maxAbs(gs);
  const out: number[] = [];
  for (const g of gs) {
    const be = g.backend, n = g.size;
    if (n === 0) {
      out.push(0);
      continue;
    }
    // Σ|g|^p via |g| → exp(p · log|g|) (log 0 = −∞ gives 0), then a reduction to one element
    const a = be.alloc(n, g.dtype);
    be.unary('abs', n, g.storage, a);
    if (p !== 1) {
      const b = be.alloc(n, g.dtype);
      be.unary('log', n, a, b);
      be.scale(n, p, b, 0);
      be.unary('exp', n, b, a);
    }
    const sum = be.alloc(1, g.dtype);
    be.reduceSum(a, [n], sum, [1]);
    const s = (yield* values(new Tensor(sum, [])))[0];
    out.push(p === 1 ? s : Math.pow(s, 1 / p));
  }
  return out;
}

/** Combine per-parameter norms into the global norm, as torch.norm(torch.stack(norms), p). */
function combine(norms: readonly number[], p: number): number {
  if (norms.length === 0) return 0;
  if (p === Infinity) {
    let m = 0;
    for (const x of norms) {
      if (Number.isNaN(x)) return NaN;
      if (x > m) m = x;
    }
    return m;
  }
  if (p === 1) return norms.reduce((s, x) => s + x, 0);
  if (p === 2) return Math.sqrt(norms.reduce((s, x) => s + x * x, 0));
  return Math.pow(norms.reduce((s, x) => s + Math.pow(x, p), 0), 1 / p);
}

function withGrads(who: string, params: Params): { p: NamedParam; g: Tensor }[] {
  const out: { p: NamedParam; g: Tensor }[] = [];
  for (const p of collectParams(params, who).items) {
    const g = p.tensor.grad;
    if (g === null) continue;
    checkGrad(who, p, g);
    out.push({ p, g });
  }
  return out;
}

/**
 * Scale all gradients together so that their global p-norm is at most `maxNorm`, exactly as
 * torch.nn.utils.clip_grad_norm_: total = ‖(‖g₁‖, ‖g₂‖, …)‖ₚ, coef = maxNorm / (total + 1e-6), and
 * every gradient is multiplied by coef when coef < 1. Returns the total norm BEFORE clipping
 * (0 when no parameter has a gradient). As in PyTorch, a non-finite total makes the gradients
 * non-finite too (NaN total → NaN gradients; use `checkFinite` to stop there).
 */
export function clipGradNorm(params: Params, maxNorm: number, normType: NormType = 2): number {
  return runSync(clipGradNormReading(params, maxNorm, normType));
}

/** clipGradNorm with its reads yielded (src/train/host-reads.ts), for a caller on any backend. */
export function* clipGradNormReading(params: Params, maxNorm: number, normType: NormType = 2): Reading<number> {
  const who = 'clipGradNorm';
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm) || maxNorm < 0) {
    throw new RangeError(`${who}: maxNorm must be a number >= 0, got ${String(maxNorm)}`);
  }
  const p = parseNormType(who, normType);
  const gs = withGrads(who, params);
  const total = combine(yield* tensorNorms(gs.map(({ g }) => g), p), p);
  scaleGrads(gs, maxNorm, total);
  return total;
}

/**
 * The second half of clipGradNorm, for a caller that already has the global norm `total` of the
 * same gradients (e.g. from gradNorms): scale them all by maxNorm / (total + 1e-6) when that is < 1.
 */
export function clipGradNormTo(params: Params, maxNorm: number, total: number): void {
  scaleGrads(withGrads('clipGradNormTo', params), maxNorm, total);
}

function scaleGrads(gs: readonly { g: Tensor }[], maxNorm: number, total: number): void {
  const coef = maxNorm / (total + 1e-6);
  if (!(coef >= 1)) {
    for (const { g } of gs) g.backend.scale(g.size, coef, g.storage, 0);
  }
}

/** Clamp every gradient element to [−clipValue, clipValue] (torch.nn.utils.clip_grad_value_). */
export function clipGradValue(params: Params, clipValue: number): void {
  const who = 'clipGradValue';
  if (typeof clipValue !== 'number' || Number.isNaN(clipValue) || clipValue < 0) {
    throw new RangeError(`${who}: clipValue must be a number >= 0, got ${String(clipValue)}`);
  }
  for (const { g } of withGrads(who, params)) g.backend.clamp(g.size, g.storage, 0, -clipValue, clipValue);
}

export interface GradNorms {
  /** The global norm over all gradients (what clipGradNorm returns). */
  total: number;
  /** Each gradient's norm, keyed by parameter name (or position for a plain list), in order. */
  norms: Record<string, number>;
}

/** Global and per-parameter gradient norms, for logging; changes nothing. */
export function gradNorms(params: Params, normType: NormType = 2): GradNorms {
  return runSync(gradNormsReading(params, normType));
}

/** gradNorms with its reads yielded (src/train/host-reads.ts), for a caller on any backend. */
export function* gradNormsReading(params: Params, normType: NormType = 2): Reading<GradNorms> {
  const p = parseNormType('gradNorms', normType);
  const gs = withGrads('gradNorms', params);
  const list = yield* tensorNorms(gs.map(({ g }) => g), p);
  const norms: Record<string, number> = {};
  gs.forEach(({ p: np }, i) => { norms[np.key] = list[i]; });
  return { total: combine(list, p), norms };
}
