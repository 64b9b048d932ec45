/**
 * Test helpers: a float64 finite-difference gradient checker, seeded random tensors, and an
 * element-wise closeness assertion with useful failure messages.
 *
 * gradcheck(f, inputs) reduces f's output(s) to the scalar L = Σ_k Σ out_k · R_k with fixed random
 * R_k (so every output element contributes), backpropagates once for the analytic gradients, and
 * compares them with central differences (L(x + eps) − L(x − eps)) / 2eps for EVERY element of every
 * input that requires grad. Inputs are perturbed in place (one element at a time, written through
 * the backend and restored afterwards), so f may close over the same tensors (e.g. a layer's
 * parameters passed as inputs) instead of using its argument.
 */
import assert from 'node:assert/strict';

import type { Backend } from '../../src/backend/interface.ts';
import { getBackend } from '../../src/backend/registry.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { Tensor, shapeSize, shapeStr, type Shape } from '../../src/tensor/tensor.ts';
import { accumulateGrad, backward, noGrad, record } from '../../src/autograd/tape.ts';

/** What f may return: one tensor, or several (null entries are skipped, e.g. an absent c_n). */
export type GradcheckOutput = Tensor | readonly (Tensor | null | undefined)[];

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-7). */
  atol?: number;
  /** Relative tolerance, relative to |numeric| (default 1e-5). */
  rtol?: number;
  /** Seed of the random output weights R (default 1234). */
  seed?: number;
  /**
   * How many tensors f returns. Default: whatever it returns (one tensor, or an array). When given
   * and greater than 1, f must return an array of exactly that length.
   */
  outputs?: number;
  /** A label prefixed to failure messages. */
  name?: string;
  /** Report at most this many mismatching elements in the failure message (default 8). */
  maxReported?: number;
}

/** Uniform random float64 tensor in [lo, hi) (default [-1, 1)). */
export function randomTensor(
  shape: Shape,
  rng: Rng,
  o: { requiresGrad?: boolean; lo?: number; hi?: number; backend?: Backend } = {},
): Tensor {
  const lo = o.lo ?? -1;
  const hi = o.hi ?? 1;
  const n = shapeSize(shape);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.uniform(lo, hi);
  const be = o.backend ?? getBackend();
  const t = new Tensor(be.fromArray(v, 'float64'), shape);
  t.requiresGrad = o.requiresGrad ?? false;
  return t;
}

/**
 * A float64 tensor from values, handy in tests: `t64([1, 2, 3, 4], [2, 2], true)`.
 */
export function t64(values: ArrayLike<number>, shape: Shape = [values.length], requiresGrad = false): Tensor {
  const t = new Tensor(getBackend().fromArray(values, 'float64'), shape);
  t.requiresGrad = requiresGrad;
  return t;
}

/** Relative-and-absolute tolerance: a number t means atol = rtol = t. */
export type Tolerance = number | { atol?: number; rtol?: number };

function tolParts(tol: Tolerance): { atol: number; rtol: number } {
  if (typeof tol === 'number') return { atol: tol, rtol: tol };
  return { atol: tol.atol ?? 0, rtol: tol.rtol ?? 0 };
}

/**
 * Assert |actual[i] − expected[i]| ≤ atol + rtol·|expected[i]| for every i (equal lengths).
 * NaN matches NaN and infinities must match exactly. The message names `what`, the first bad
 * index, both values and how many elements are off.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length}, expected ${expected.length}`);
  const { atol, rtol } = tolParts(tol);
  let bad = 0;
  let first = -1;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    let ok: boolean;
    if (Number.isNaN(e)) ok = Number.isNaN(a);
    else if (!Number.isFinite(e)) ok = a === e;
    else ok = Number.isFinite(a) && Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      if (first < 0) first = i;
      bad++;
      const diff = Math.abs(a - e);
      if (!(diff <= worst)) worst = diff;
    }
  }
  if (bad > 0) {
    assert.fail(
      `${what}: ${bad} of ${expected.length} elements differ (atol ${atol}, rtol ${rtol}); ` +
      `first at index ${first}: actual ${actual[first]}, expected ${expected[first]}; largest |diff| ${worst}`,
    );
  }
}

/** Multi-index of flat element j in a row-major shape, as "[i, j, k]". */
function indexStr(shape: Shape, j: number): string {
  const idx = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a] = j % shape[a];
    j = Math.floor(j / shape[a]);
  }
  return `[${idx.join(', ')}]`;
}

function collectOutputs(r: GradcheckOutput, expected: number | undefined, label: string): (Tensor | null)[] {
  const list = r instanceof Tensor ? [r] : [...r].map((t) => t ?? null);
  if (expected !== undefined) {
    if (expected > 1 && r instanceof Tensor) throw new Error(`${label}: f returned one tensor, expected ${expected} (option outputs)`);
    if (list.length !== expected) throw new Error(`${label}: f returned ${list.length} tensors, expected ${expected} (option outputs)`);
  }
  for (const t of list) {
    if (t && t.dtype !== 'float64') throw new Error(`${label}: outputs must be float64, got ${t.dtype} (${t.toString()})`);
  }
  return list;
}

/** Σ_k Σ out_k · R_k accumulated in float64 on the host. */
function weightedSum(outs: readonly (Tensor | null)[], R: readonly (Float64Array | null)[]): number {
  let L = 0;
  outs.forEach((t, k) => {
    if (!t) return;
    const v = t.toArray();
    const r = R[k]!;
    for (let i = 0; i < v.length; i++) L += v[i] * r[i];
  });
  return L;
}

/**
 * Check the analytic gradients of f with respect to every input that requires grad against
 * central finite differences. Throws an AssertionError naming the input, the element and both
 * values on mismatch. On return each checked input's `.grad` holds the analytic gradient (any
 * gradient it had before is discarded).
 */
export function gradcheck(f: (inputs: Tensor[]) => GradcheckOutput, inputs: Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-7;
  const rtol = opts.rtol ?? 1e-5;
  const label = opts.name ? `gradcheck(${opts.name})` : 'gradcheck';
  const maxReported = opts.maxReported ?? 8;
  inputs.forEach((t, i) => {
    if (t.dtype !== 'float64') throw new Error(`${label}: input ${i} must be float64 for finite differences, got ${t.dtype}`);
  });
  const checked = inputs.map((t) => t.requiresGrad);
  if (!checked.some(Boolean)) throw new Error(`${label}: no input requires grad; nothing to check`);
  for (const t of inputs) t.grad = null;

  // ---- analytic pass -----------------------------------------------------------------------
  const outs = collectOutputs(f(inputs), opts.outputs, label);
  if (outs.every((t) => t === null)) throw new Error(`${label}: f returned no tensors`);
  const rng = new Rng(opts.seed ?? 1234);
  const R = outs.map((t) => {
    if (!t) return null;
    const r = new Float64Array(t.size);
    for (let i = 0; i < r.length; i++) r[i] = rng.uniform(-1, 1);
    return r;
  });
  const L0 = weightedSum(outs, R);
  const live = outs.filter((t): t is Tensor => t !== null && t.requiresGrad);
  if (live.length > 0) {
    const be = live[0].backend;
    const root = new Tensor(be.fromArray([L0], 'float64'), []);
    record('gradcheck.reduce', live, [root], () => {
      const g = root.grad!.item();
      outs.forEach((t, k) => {
        if (!t || !t.requiresGrad) return;
        const s = t.backend.fromArray(R[k]!, 'float64');
        if (g !== 1) t.backend.scale(t.size, g, s, 0);
        accumulateGrad(t, s, true);
      });
    });
    backward(root);
  }
  const analytic = inputs.map((t, i) => {
    if (!checked[i]) return null;
    if (!t.grad) return new Float64Array(t.size); // no path from this input to the outputs
    assert.deepEqual([...t.grad.shape], [...t.shape], `${label}: input ${i} grad shape ${shapeStr(t.grad.shape)} != input shape ${shapeStr(t.shape)}`);
    return Float64Array.from(t.grad.toArray());
  });

  // ---- numeric pass ----------------------------------------------------------------------------
  const evalL = (): number => noGrad(() => weightedSum(collectOutputs(f(inputs), opts.outputs, label), R));
  const again = evalL();
  if (!(Math.abs(again - L0) <= 1e-10 * (1 + Math.abs(L0)))) {
    assert.fail(`${label}: f is not deterministic (or differs with gradients off): L = ${L0} with grad, ${again} without`);
  }
  const problems: string[] = [];
  let nBad = 0;
  inputs.forEach((t, i) => {
    if (!checked[i]) return;
    const be = t.backend;
    const orig = Float64Array.from(be.read(t.storage));
    const an = analytic[i]!;
    for (let j = 0; j < orig.length; j++) {
      const x = orig[j];
      be.write(t.storage, [x + eps], j);
      const Lp = evalL();
      be.write(t.storage, [x - eps], j);
      const Lm = evalL();
      be.write(t.storage, [x], j);
      const num = (Lp - Lm) / (2 * eps);
      const a = an[j];
      const ok = Number.isFinite(a) && Number.isFinite(num) && Math.abs(a - num) <= atol + rtol * Math.abs(num);
      if (!ok) {
        nBad++;
        if (problems.length < maxReported) {
          problems.push(`input ${i} ${shapeStr(t.shape)} element ${j} ${indexStr(t.shape, j)}: analytic ${a}, numeric ${num} (|diff| ${Math.abs(a - num)})`);
        }
      }
    }
    // The restore above writes back exactly the original values; double-check.
    const after = be.read(t.storage);
    for (let j = 0; j < orig.length; j++) {
      if (!Object.is(after[j], orig[j])) throw new Error(`${label}: input ${i} was not restored at element ${j}`);
    }
  });
  if (nBad > 0) {
    assert.fail(`${label}: ${nBad} gradient element(s) differ (eps ${eps}, atol ${atol}, rtol ${rtol}):\n  ${problems.join('\n  ')}`);
  }
}
