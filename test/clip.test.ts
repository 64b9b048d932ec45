import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { clipGradNorm, clipGradValue, gradNorms, type NormType } from '../src/train/clip.ts';
import { checkFinite, NonFiniteError } from '../src/train/guard.ts';
import { Tensor, tensor, zeros } from '../src/tensor/tensor.ts';
import type { DType } from '../src/backend/interface.ts';

interface ClipFixture {
  grads: Record<string, { shape: number[]; data: number[] }>;
  norm: { normType: number | 'inf'; maxNorm: number; total: number; after: Record<string, number[]> }[];
  value: { clipValue: number; after: Record<string, number[]> };
}
const fx = (JSON.parse(readFileSync(new URL('./fixtures/torch_optim.json', import.meta.url), 'utf8')) as { clip: ClipFixture }).clip;
const NAMES = Object.keys(fx.grads);

function params(dtype: DType = 'float64'): [string, Tensor][] {
  return NAMES.map((n) => {
    const g = fx.grads[n];
    const p = zeros(g.shape, { dtype, requiresGrad: true });
    p.grad = tensor(g.data, g.shape, { dtype });
    return [n, p];
  });
}

function withGrad(values: number[], dtype: DType = 'float64'): Tensor {
  const p = zeros([values.length], { dtype, requiresGrad: true });
  p.grad = tensor(values, [values.length], { dtype });
  return p;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('clipGradNorm matches torch.nn.utils.clip_grad_norm_', () => {
  for (const c of fx.norm) {
    test(`normType ${c.normType}, maxNorm ${c.maxNorm}`, () => {
      const ps = params();
      const total = clipGradNorm(ps, c.maxNorm, c.normType as NormType);
      assert.ok(Math.abs(total - c.total) <= 1e-12 * c.total, `total ${total} vs ${c.total}`);
      for (const [n, p] of ps) assertClose(p.grad!.toArray(), c.after[n], 1e-12, n);
    });
  }

  test('the fixture has cases that clip and cases that do not, for every norm type', () => {
    const types = new Set(fx.norm.map((c) => String(c.normType)));
    assert.deepEqual([...types].sort(), ['1', '2', '3', 'inf']);
    for (const t of types) {
      const cs = fx.norm.filter((c) => String(c.normType) === t);
      assert.ok(cs.some((c) => c.total > c.maxNorm) && cs.some((c) => c.total < c.maxNorm));
    }
  });

  test('float32 gradients', () => {
    const c = fx.norm.find((k) => k.normType === 2 && k.total > k.maxNorm)!;
    const ps = params('float32');
    const total = clipGradNorm(ps, c.maxNorm);
    assert.ok(Math.abs(total - c.total) < 1e-5 * c.total);
    for (const [n, p] of ps) assertClose(p.grad!.toArray(), c.after[n], 1e-6, n);
  });
});

describe('clipGradNorm semantics', () => {
  test('returns the pre-clip norm and scales by maxNorm / (norm + 1e-6) above the limit', () => {
    const p = withGrad([3, 4]);
    const total = clipGradNorm([p], 1);
    assert.equal(total, 5);
    const coef = 1 / (5 + 1e-6);
    assert.deepEqual(Array.from(p.grad!.toArray()), [3 * coef, 4 * coef]);
  });

  test('leaves gradients bit-identical below the limit', () => {
    const p = withGrad([0.1, -0.2, 0.3]);
    const before = p.grad!.toArray();
    const total = clipGradNorm([p], 10);
    assert.ok(Math.abs(total - Math.sqrt(0.14)) < 1e-15);
    assert.deepEqual(p.grad!.toArray(), before);
  });

  test('the global norm spans all parameters', () => {
    const a = withGrad([3]), b = withGrad([4]);
    assert.equal(clipGradNorm([a, b], 100), 5);
  });

  test('infinity norm (Infinity or "inf")', () => {
    const a = withGrad([1, -7, 2]), b = withGrad([5, 6]);
    const total = clipGradNorm([a, b], 3.5, 'inf');
    assert.equal(total, 7);
    const coef = 3.5 / (7 + 1e-6);
    assert.deepEqual(Array.from(a.grad!.toArray()), [1 * coef, -7 * coef, 2 * coef]);
    const c = withGrad([-2, 1]);
    assert.equal(clipGradNorm([c], 10, Infinity), 2);
    assert.deepEqual(Array.from(c.grad!.toArray()), [-2, 1]);
  });

  test('1-norm and 3-norm', () => {
    assert.equal(clipGradNorm([withGrad([1, -2]), withGrad([3])], 100, 1), 6);
    const t = clipGradNorm([withGrad([1, -2, 3])], 100, 3);
    assert.ok(Math.abs(t - Math.cbrt(36)) < 1e-14);
  });

  test('parameters without gradients are skipped; none at all gives 0', () => {
    const a = withGrad([3, 4]);
    const b = zeros([2], { dtype: 'float64', requiresGrad: true });
    assert.equal(clipGradNorm([a, b], 100), 5);
    assert.equal(b.grad, null);
    assert.equal(clipGradNorm([b], 1), 0);
    assert.equal(clipGradNorm([], 1), 0);
  });

  test('a NaN gradient gives a NaN norm (and, as in PyTorch, NaN gradients)', () => {
    const a = withGrad([1, NaN]), b = withGrad([1]);
    assert.ok(Number.isNaN(clipGradNorm([a, b], 1)));
    assert.ok(Number.isNaN(b.grad!.item()));
    assert.ok(Number.isNaN(clipGradNorm([withGrad([1, NaN])], 1, 'inf')));
  });

  test('bad arguments', () => {
    assert.throws(() => clipGradNorm([withGrad([1])], -1), /clipGradNorm: maxNorm must be a number >= 0, got -1/);
    assert.throws(() => clipGradNorm([withGrad([1])], NaN), /clipGradNorm: maxNorm must be a number >= 0, got NaN/);
    assert.throws(() => clipGradNorm([withGrad([1])], 1, 0), /clipGradNorm: normType must be a number > 0 or Infinity \('inf'\), got 0/);
    assert.throws(() => clipGradNorm([withGrad([1])], 1, 'max' as never), /normType must be a number > 0 or Infinity/);
    const p = zeros([2], { dtype: 'float64', requiresGrad: true });
    p.grad = tensor([1, 2, 3], [3], { dtype: 'float64' });
    assert.throws(() => clipGradNorm([['lstm.bias', p]], 1), /clipGradNorm: the gradient of 'lstm.bias' has shape \[3\]/);
  });
});

describe('clipGradValue', () => {
  test('matches torch.nn.utils.clip_grad_value_', () => {
    const ps = params();
    clipGradValue(ps, fx.value.clipValue);
    for (const [n, p] of ps) assert.deepEqual(Array.from(p.grad!.toArray()), fx.value.after[n]);
    assert.ok(Object.values(fx.value.after).flat().some((v) => Math.abs(v) === fx.value.clipValue));
  });

  test('clamps to [−c, c] and skips null gradients', () => {
    const a = withGrad([-3, -0.5, 0, 0.5, 3]);
    const b = zeros([1], { requiresGrad: true });
    clipGradValue([a, b], 1);
    assert.deepEqual(Array.from(a.grad!.toArray()), [-1, -0.5, 0, 0.5, 1]);
    assert.equal(b.grad, null);
    assert.throws(() => clipGradValue([a], -1), /clipGradValue: clipValue must be a number >= 0, got -1/);
  });
});

describe('gradNorms', () => {
  test('global and per-parameter norms, keyed by name, without changing anything', () => {
    const ps = params();
    const before = ps.map(([, p]) => p.grad!.toArray());
    const r = gradNorms(ps);
    assert.deepEqual(Object.keys(r.norms), NAMES);
    for (const n of NAMES) {
      const want = Math.sqrt(fx.grads[n].data.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(r.norms[n] - want) < 1e-12);
    }
    const c2 = fx.norm.find((c) => c.normType === 2)!;
    assert.ok(Math.abs(r.total - c2.total) < 1e-12 * c2.total);
    ps.forEach(([, p], k) => assert.deepEqual(p.grad!.toArray(), before[k]));
  });

  test('plain lists are keyed by position; null gradients are left out; other norm types', () => {
    const r = gradNorms([withGrad([3, 4]), zeros([1], { requiresGrad: true }), withGrad([-12])], 'inf');
    assert.deepEqual(r, { total: 12, norms: { 0: 4, 2: 12 } });
  });
});

// ---------------------------------------------------------------------------

describe('checkFinite', () => {
  const named = (): [string, Tensor][] => {
    const mk = (n: number) => {
      const p = zeros([n], { dtype: 'float32', requiresGrad: true });
      p.grad = zeros([n], { dtype: 'float32' });
      return p;
    };
    return [['embedding.weight', mk(8)], ['lstm.weight_ih_l0', mk(16)], ['lstm.weight_hh_l0', mk(64)], ['head.bias', mk(4)]];
  };

  function catchError(f: () => void): NonFiniteError {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof NonFiniteError, `expected NonFiniteError, got ${String(e)}`);
      return e;
    }
    assert.fail('expected checkFinite to throw');
  }

  test('finite loss and parameters pass', () => {
    const ps = named();
    ps[0][1].grad = null;
    checkFinite(1.5, ps, 3);
    checkFinite(tensor([0.25]), ps, 3);
    checkFinite(null, ps, 3);
  });

  test('NaN loss (number) names the loss and the step', () => {
    const e = catchError(() => checkFinite(NaN, named(), 3));
    assert.equal(e.name, 'NonFiniteError');
    assert.ok(e instanceof Error);
    assert.equal(e.step, 3);
    assert.equal(e.what, 'loss');
    assert.equal(e.param, null);
    assert.match(e.message, /^non-finite loss at step 3 \(NaN\); lower the learning rate, clip gradients \(clipGradNorm\), or check the input data$/);
  });

  test('Inf loss (tensor) is caught before the parameters are looked at', () => {
    const ps = named();
    ps[1][1].grad = tensor(new Array(16).fill(NaN), [16], { dtype: 'float32' });
    const e = catchError(() => checkFinite(tensor([Infinity]), ps, 0));
    assert.equal(e.what, 'loss');
    assert.match(e.message, /non-finite loss at step 0 \(Infinity\)/);
  });

  test('a non-finite gradient names the FIRST bad parameter, the element and the step', () => {
    const ps = named();
    const g = new Array(64).fill(0.5);
    g[42] = NaN;
    g[50] = Infinity;
    ps[2][1].grad = tensor(g, [64], { dtype: 'float32' });
    const h = [0, 0, 0, -Infinity];
    ps[3][1].grad = tensor(h, [4], { dtype: 'float32' });
    const e = catchError(() => checkFinite(2.3, ps, 17));
    assert.equal(e.message, "non-finite gradient in 'lstm.weight_hh_l0' at step 17 (first bad element index 42: NaN); lower the learning rate, clip gradients (clipGradNorm), or check the input data");
    assert.equal(e.what, 'gradient');
    assert.equal(e.param, 'lstm.weight_hh_l0');
    assert.equal(e.step, 17);
    assert.equal(e.index, 42);
    assert.ok(Number.isNaN(e.value));
    // fix that one: now the next bad parameter is named
    ps[2][1].grad = null;
    const e2 = catchError(() => checkFinite(2.3, ps, 18));
    assert.match(e2.message, /^non-finite gradient in 'head\.bias' at step 18 \(first bad element index 3: -Infinity\)/);
  });

  test('a non-finite parameter value is reported too, in parameter order', () => {
    const ps = named();
    ps[1][1].backend.fill(ps[1][1].storage, Infinity, 5, 1);
    ps[3][1].grad = tensor([0, NaN, 0, 0], [4], { dtype: 'float32' });
    const e = catchError(() => checkFinite(1, ps, 9));
    assert.equal(e.what, 'value');
    assert.equal(e.param, 'lstm.weight_ih_l0');
    assert.match(e.message, /^non-finite value in 'lstm\.weight_ih_l0' at step 9 \(first bad element index 5: Infinity\)/);
  });

  test('plain parameter lists use the tensor name or the position', () => {
    const a = withGrad([1, 2]);
    const b = withGrad([1, Infinity]);
    assert.match(catchError(() => checkFinite(0, [a, b], 1)).message, /gradient in 'params\[1\]'/);
    b.name = 'decoder.weight';
    assert.match(catchError(() => checkFinite(0, [a, b], 1)).message, /gradient in 'decoder\.weight' at step 1 \(first bad element index 1: Infinity\)/);
  });
});
