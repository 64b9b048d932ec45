/**
 * Finite-difference gradient checks (float64) for every differentiable op, plus forward values
 * checked against hand computation and error messages for bad shapes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { Rng } from '../src/tensor/rng.ts';
import { Tensor, tensor, type Shape } from '../src/tensor/tensor.ts';
import { backward } from '../src/autograd/tape.ts';
import {
  abs, add, div, exp, log, mean, mul, neg, relu, sigmoid, softplus, sqrt, square, sub, sum, tanh,
} from '../src/autograd/ops/elementwise.ts';
import { linear, matmul } from '../src/autograd/ops/linalg.ts';
import { concat, permute, reshape, slice, split, stack, transpose } from '../src/autograd/ops/shape.ts';
import {
  bceWithLogits, crossEntropy, dropout, embedding, logSoftmax, maxOverTime, mseLoss, softmax, type Reduction,
} from '../src/autograd/ops/nn.ts';
import { assertClose, gradcheck, randomTensor, t64 } from './helpers/gradcheck.ts';

const rng = new Rng(20240611);

/** A random float64 leaf that requires grad. */
function r(shape: Shape, lo = -1, hi = 1): Tensor {
  return randomTensor(shape, rng, { requiresGrad: true, lo, hi });
}

/** Random values bounded away from zero: |x| in [lo, hi], random sign. */
function awayFromZero(shape: Shape, lo = 0.2, hi = 1.5): Tensor {
  const t = randomTensor(shape, rng, { requiresGrad: true, lo, hi });
  const v = t.toArray();
  for (let i = 0; i < v.length; i++) if (rng.random() < 0.5) v[i] = -v[i];
  t.backend.write(t.storage, v);
  return t;
}

/** Nested → flat helper for expected values. */
function flat(t: Tensor): number[] {
  return [...t.toArray()];
}

// ---------------------------------------------------------------------------------------------
describe('gradcheck helper', () => {
  test('catches a wrong gradient and names the input and element', () => {
    // A deliberately wrong "square": the right forward, but we check against a linear op by
    // feeding a function whose gradient path (mul by constant) disagrees with the perturbed path.
    const x = r([3]);
    const c = t64([1, 2, 3]);
    let calls = 0;
    assert.throws(
      () => gradcheck(([a]) => {
        calls++;
        // First call (analytic) is a·c; later calls (numeric) are a·2c: gradients disagree.
        return mul(a, calls === 1 ? c : mul(c, 2));
      }, [x]),
      /not deterministic/,
    );
    // Deterministic but wrong: gradient path cut by detach while the value depends on x.
    const y = r([2, 2]);
    assert.throws(
      () => gradcheck(([a]) => mul(a, a.detach()), [y]),
      (e: Error) => /input 0 \[2, 2\] element 0 \[0, 0\]: analytic .*numeric/.test(e.message),
    );
  });

  test('several outputs, one of them null', () => {
    const x = r([2, 3]);
    gradcheck(([a]) => [tanh(a), null, sum(square(a), 1)], [x], { outputs: 3 });
    assert.throws(() => gradcheck(([a]) => tanh(a), [x], { outputs: 2 }), /expected 2/);
  });

  test('refuses float32 inputs and inputs without requiresGrad', () => {
    const x32 = tensor([1, 2], [2], { requiresGrad: true });
    assert.throws(() => gradcheck(([a]) => tanh(a), [x32]), /float64/);
    assert.throws(() => gradcheck(([a]) => tanh(a), [randomTensor([2], rng)]), /no input requires grad/);
  });

  test('assertClose tolerances and messages', () => {
    assertClose([1, 2, NaN, Infinity], [1 + 1e-9, 2, NaN, Infinity], 1e-8, 'ok');
    assert.throws(() => assertClose([1, 2.1], [1, 2], 1e-3, 'vals'), /vals: 1 of 2 elements differ.*index 1: actual 2.1, expected 2/);
    assert.throws(() => assertClose([1], [1, 2], 1e-3, 'len'), /len: length 1, expected 2/);
    assert.throws(() => assertClose([NaN], [0], 1, 'nan'), /nan/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('elementwise binary ops with broadcasting', () => {
  const cases: [string, Shape, Shape][] = [
    ['same shape', [2, 3], [2, 3]],
    ['[2,3] with [3]', [2, 3], [3]],
    ['[3] with [2,3]', [3], [2, 3]],
    ['[2,1,4] with [3,1]', [2, 1, 4], [3, 1]],
    ['[2,3] with [2,1]', [2, 3], [2, 1]],
    ['[1] with [2,3]', [1], [2, 3]],
    ['0-d with [2,2]', [], [2, 2]],
    ['[4,1] with [1,5]', [4, 1], [1, 5]],
  ];
  for (const [label, sa, sb] of cases) {
    test(`add ${label}`, () => gradcheck(([a, b]) => add(a, b), [r(sa), r(sb)]));
    test(`sub ${label}`, () => gradcheck(([a, b]) => sub(a, b), [r(sa), r(sb)]));
    test(`mul ${label}`, () => gradcheck(([a, b]) => mul(a, b), [r(sa), r(sb)]));
    test(`div ${label}`, () => gradcheck(([a, b]) => div(a, b), [r(sa), awayFromZero(sb, 0.5, 2)]));
  }

  test('scalar operands (numbers)', () => {
    gradcheck(([a]) => add(a, 2.5), [r([2, 3])]);
    gradcheck(([a]) => sub(a, -1.25), [r([2, 3])]);
    gradcheck(([a]) => mul(a, -3), [r([2, 3])]);
    gradcheck(([a]) => div(a, 0.7), [r([2, 3])]);
    gradcheck(([a]) => mul(a, 2), [r([])]);
  });

  test('only one operand requires grad', () => {
    const b = randomTensor([3], rng);
    gradcheck(([a]) => mul(a, b), [r([2, 3])]);
    const a = randomTensor([2, 3], rng);
    gradcheck(([bb]) => div(a, bb), [awayFromZero([3], 0.5, 2)]);
    gradcheck(([bb]) => sub(a, bb), [r([2, 1])]);
  });

  test('the same tensor on both sides', () => {
    gradcheck(([a]) => mul(a, a), [r([2, 3])]);
    gradcheck(([a]) => add(a, a), [r([3])]);
    gradcheck(([a]) => sub(a, a), [r([3])]);
    gradcheck(([a]) => div(a, a), [awayFromZero([4], 0.5, 2)]);
  });

  test('forward values with broadcasting', () => {
    const a = t64([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = t64([10, 20, 30]);
    assert.deepEqual(flat(add(a, b)), [11, 22, 33, 14, 25, 36]);
    assert.deepEqual(flat(sub(b, a)), [9, 18, 27, 6, 15, 24]);
    const c = t64([1, 2], [2, 1]);
    assert.deepEqual(flat(mul(a, c)), [1, 2, 3, 8, 10, 12]);
    assert.deepEqual(flat(div(a, c)), [1, 2, 3, 2, 2.5, 3]);
    assert.deepEqual([...mul(t64([1, 2], [2, 1, 1]), t64([1, 10, 100], [3, 1])).shape], [2, 3, 1]);
  });

  test('bad broadcast names both shapes', () => {
    assert.throws(() => add(r([2, 3]), r([4])), /add.*\[2, 3\].*\[4\]/);
    assert.throws(() => mul(r([2, 1, 4]), r([3, 2])), /mul.*\[2, 1, 4\].*\[3, 2\]/);
    assert.throws(() => div(r([5]), r([2, 3])), /div.*\[5\].*\[2, 3\]/);
  });

  test('dtype mismatch is refused', () => {
    assert.throws(() => add(tensor([1, 2]), t64([1, 2])), /different dtypes/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('elementwise unary ops', () => {
  const shape = [3, 4];
  test('neg', () => gradcheck(([x]) => neg(x), [r(shape)]));
  test('exp', () => gradcheck(([x]) => exp(x), [r(shape, -2, 2)]));
  test('log', () => gradcheck(([x]) => log(x), [r(shape, 0.3, 3)]));
  test('tanh', () => gradcheck(([x]) => tanh(x), [r(shape, -2, 2)]));
  test('sigmoid', () => gradcheck(([x]) => sigmoid(x), [r(shape, -4, 4)]));
  test('relu (away from 0)', () => gradcheck(([x]) => relu(x), [awayFromZero(shape, 0.05, 2)]));
  test('sqrt', () => gradcheck(([x]) => sqrt(x), [r(shape, 0.2, 3)]));
  test('square', () => gradcheck(([x]) => square(x), [r(shape, -2, 2)]));
  test('abs (away from 0)', () => gradcheck(([x]) => abs(x), [awayFromZero(shape, 0.05, 2)]));
  test('softplus (incl. large |x|)', () => {
    gradcheck(([x]) => softplus(x), [r(shape, -3, 3)]);
    gradcheck(([x]) => softplus(x), [t64([-40, -20, -5, 5, 20, 40], [6], true)]);
  });

  test('forward values', () => {
    const x = t64([-2, -0.5, 0, 0.5, 2]);
    assertClose(flat(relu(x)), [0, 0, 0, 0.5, 2], 0, 'relu');
    assertClose(flat(abs(x)), [2, 0.5, 0, 0.5, 2], 0, 'abs');
    assertClose(flat(sigmoid(x)), [-2, -0.5, 0, 0.5, 2].map((v) => 1 / (1 + Math.exp(-v))), 1e-15, 'sigmoid');
    assertClose(flat(softplus(x)), [-2, -0.5, 0, 0.5, 2].map((v) => Math.log(1 + Math.exp(v))), 1e-15, 'softplus');
    assertClose(flat(softplus(t64([1000, -1000]))), [1000, 0], 1e-15, 'softplus extremes');
    assertClose(flat(sigmoid(t64([1000, -1000]))), [1, 0], 0, 'sigmoid extremes');
  });

  test('composition', () => gradcheck(([x, y]) => mul(tanh(add(x, y)), sigmoid(sub(x, y))), [r([2, 3]), r([3])]));
});

// ---------------------------------------------------------------------------------------------
describe('reductions', () => {
  test('sum of all', () => gradcheck(([x]) => sum(x), [r([2, 3, 4])]));
  test('sum axis 0 / -1 / [0, 2]', () => {
    gradcheck(([x]) => sum(x, 0), [r([2, 3, 4])]);
    gradcheck(([x]) => sum(x, -1), [r([2, 3, 4])]);
    gradcheck(([x]) => sum(x, [0, 2]), [r([2, 3, 4])]);
  });
  test('sum keepDims', () => {
    gradcheck(([x]) => sum(x, 1, true), [r([2, 3, 4])]);
    gradcheck(([x]) => sum(x, [0, 2], true), [r([2, 3, 4])]);
    gradcheck(([x]) => sum(x, undefined, true), [r([2, 3])]);
  });
  test('mean variants', () => {
    gradcheck(([x]) => mean(x), [r([2, 3, 4])]);
    gradcheck(([x]) => mean(x, 1), [r([2, 3, 4])]);
    gradcheck(([x]) => mean(x, [0, -1], true), [r([2, 3, 4])]);
  });
  test('forward values and shapes', () => {
    const x = t64([1, 2, 3, 4, 5, 6], [2, 3]);
    assert.deepEqual(flat(sum(x)), [21]);
    assert.deepEqual([...sum(x).shape], []);
    assert.deepEqual(flat(sum(x, 0)), [5, 7, 9]);
    assert.deepEqual(flat(sum(x, 1)), [6, 15]);
    assert.deepEqual([...sum(x, 1, true).shape], [2, 1]);
    assert.deepEqual(flat(mean(x, 0)), [2.5, 3.5, 4.5]);
    assert.deepEqual(flat(mean(x)), [3.5]);
    assert.deepEqual([...mean(x, [0, 1], true).shape], [1, 1]);
  });
  test('duplicate axes reduce once (sum and mean agree)', () => {
    const x = t64([1, 2, 3, 4, 5, 6], [2, 3]);
    assert.deepEqual(flat(sum(x, [0, -2])), [5, 7, 9]);
    assert.deepEqual(flat(mean(x, [0, 0])), [2.5, 3.5, 4.5]);
    assert.deepEqual(flat(mean(x, [1, -1])), [2, 5]);
  });
  test('bad axis is refused', () => {
    assert.throws(() => sum(r([2, 3]), 2), /axis 2 is out of range for a tensor of rank 2/);
    assert.throws(() => mean(r([2, 3]), -3), /axis -3 is out of range/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('matmul and linear', () => {
  const mm: [string, Shape, Shape][] = [
    ['2D', [3, 4], [4, 5]],
    ['2D with 1s', [1, 4], [4, 1]],
    ['2D inner 1', [3, 1], [1, 2]],
    ['batched · 2D', [2, 3, 4], [4, 5]],
    ['batched · 2D size-1 dims', [2, 1, 3], [3, 1]],
    ['batch 1 · 2D', [1, 3, 4], [4, 2]],
    ['4-D · 2D', [2, 2, 3, 4], [4, 3]],
    ['batched · batched', [2, 3, 4], [2, 4, 5]],
    ['batched · batched size-1 dims', [1, 1, 3], [1, 3, 1]],
    ['batched · batched M=1', [3, 1, 4], [3, 4, 2]],
    ['4-D · 4-D', [2, 2, 3, 4], [2, 2, 4, 3]],
  ];
  for (const [label, sa, sb] of mm) {
    test(`matmul ${label}`, () => gradcheck(([a, b]) => matmul(a, b), [r(sa), r(sb)]));
  }
  test('matmul with only one side requiring grad', () => {
    const b = randomTensor([4, 5], rng);
    gradcheck(([a]) => matmul(a, b), [r([2, 3, 4])]);
    const a = randomTensor([2, 3, 4], rng);
    gradcheck(([bb]) => matmul(a, bb), [r([2, 4, 2])]);
  });
  test('matmul forward value', () => {
    const a = t64([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = t64([7, 8, 9, 10, 11, 12], [3, 2]);
    assert.deepEqual(flat(matmul(a, b)), [58, 64, 139, 154]);
    const ab = t64([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    const bb = t64([1, 0, 0, 1, 0, 1, 1, 0], [2, 2, 2]);
    assert.deepEqual(flat(matmul(ab, bb)), [1, 2, 3, 4, 6, 5, 8, 7]);
  });
  test('matmul errors name both shapes', () => {
    assert.throws(() => matmul(r([2, 3]), r([4, 5])), /\[2, 3\].*\[4, 5\]/);
    assert.throws(() => matmul(r([2, 3, 4]), r([3, 4, 5])), /batch.*\[2, 3, 4\].*\[3, 4, 5\]/);
    assert.throws(() => matmul(r([3]), r([3, 2])), /rank.*\[3\].*\[3, 2\]/);
  });

  test('linear with bias on 3-D input', () => gradcheck(([x, w, b]) => linear(x, w, b), [r([2, 3, 4]), r([5, 4]), r([5])]));
  test('linear without bias on 3-D input', () => gradcheck(([x, w]) => linear(x, w), [r([2, 3, 4]), r([5, 4])]));
  test('linear with null bias, 1-D input, O=1', () => {
    gradcheck(([x, w]) => linear(x, w, null), [r([4]), r([1, 4])]);
  });
  test('linear with frozen weight', () => {
    const w = randomTensor([3, 4], rng);
    gradcheck(([x, b]) => linear(x, w, b), [r([5, 4]), r([3])]);
  });
  test('linear forward value and errors', () => {
    const x = t64([1, 2, 3, 4], [2, 2]);
    const w = t64([1, 0, 1, 1, 0, 2], [3, 2]);
    const b = t64([0.5, -1, 0]);
    assert.deepEqual(flat(linear(x, w, b)), [1.5, 2, 4, 3.5, 6, 8]);
    assert.throws(() => linear(r([2, 3]), r([5, 4])), /\[5, 4\].*\[2, 3\]/);
    assert.throws(() => linear(r([2, 4]), r([5, 4]), r([4])), /bias must be \[5\].*\[4\]/);
    assert.throws(() => linear(r([2, 4]), r([4])), /weight must be \[out, in\]/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('shape ops', () => {
  test('reshape (incl. -1)', () => {
    gradcheck(([x]) => reshape(x, [3, 4]), [r([2, 6])]);
    gradcheck(([x]) => mul(reshape(x, [4, -1]), t64([1, 2, 3], [3])), [r([2, 6])]);
  });
  test('permute of rank 3', () => {
    gradcheck(([x]) => permute(x, [2, 0, 1]), [r([2, 3, 4])]);
    gradcheck(([x]) => permute(x, [1, 2, 0]), [r([2, 3, 4])]);
    gradcheck(([x]) => permute(x, [0, 2, 1]), [r([2, 1, 4])]);
  });
  test('transpose', () => {
    gradcheck(([x]) => transpose(x), [r([3, 4])]);
    gradcheck(([x]) => transpose(x, 0, 2), [r([2, 3, 4])]);
  });
  test('concat on the middle axis', () => {
    gradcheck(([a, b, c]) => concat([a, b, c], 1), [r([2, 1, 3]), r([2, 3, 3]), r([2, 2, 3])]);
  });
  test('concat on first / last axis, one input frozen', () => {
    gradcheck(([a, b]) => concat([a, b], 0), [r([2, 3]), r([1, 3])]);
    const frozen = randomTensor([2, 2], rng);
    gradcheck(([a]) => concat([frozen, a, frozen], -1), [r([2, 3])]);
  });
  test('concat of the same tensor twice', () => gradcheck(([a]) => concat([a, a], 0), [r([2, 2])]));
  test('slice on each axis', () => {
    gradcheck(([x]) => slice(x, 0, 1, 1), [r([2, 3, 4])]);
    gradcheck(([x]) => slice(x, 1, 1, 2), [r([2, 3, 4])]);
    gradcheck(([x]) => slice(x, -1, 0, 3), [r([2, 3, 4])]);
  });
  test('split', () => {
    gradcheck(([x]) => split(x, [1, 3, 2], 1), [r([2, 6, 2])], { outputs: 3 });
    gradcheck(([x]) => split(x, [2, 2]), [r([3, 4])]);
  });
  test('split pieces used in one expression', () => {
    gradcheck(([x]) => {
      const [a, b] = split(x, [2, 2], -1);
      return mul(tanh(a), b);
    }, [r([3, 4])]);
  });
  test('stack on axis 0, 1 and last', () => {
    gradcheck(([a, b, c]) => stack([a, b, c], 0), [r([2, 3]), r([2, 3]), r([2, 3])]);
    gradcheck(([a, b]) => stack([a, b], 1), [r([2, 3]), r([2, 3])]);
    gradcheck(([a, b]) => stack([a, b], -1), [r([2, 3]), r([2, 3])]);
  });

  test('forward layouts', () => {
    const a = t64([1, 2, 3, 4], [2, 1, 2]);
    const b = t64([5, 6, 7, 8, 9, 10, 11, 12], [2, 2, 2]);
    const c = concat([a, b], 1);
    assert.deepEqual([...c.shape], [2, 3, 2]);
    assert.deepEqual(c.toNested(), [[[1, 2], [5, 6], [7, 8]], [[3, 4], [9, 10], [11, 12]]]);
    const x = t64([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23], [2, 3, 4]);
    const p = permute(x, [2, 0, 1]);
    assert.deepEqual([...p.shape], [4, 2, 3]);
    // p[k, i, j] = x[i, j, k] = 12i + 4j + k
    const pv = p.toArray();
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
      assert.equal(pv[k * 6 + i * 3 + j], 12 * i + 4 * j + k);
    }
    assert.deepEqual(slice(x, 1, 1, 2).toNested(), [[[4, 5, 6, 7], [8, 9, 10, 11]], [[16, 17, 18, 19], [20, 21, 22, 23]]]);
    assert.deepEqual(split(t64([1, 2, 3, 4, 5]), [2, 3]).map((t) => flat(t)), [[1, 2], [3, 4, 5]]);
    assert.deepEqual(stack([t64([1, 2]), t64([3, 4])], 1).toNested(), [[1, 3], [2, 4]]);
    assert.deepEqual(transpose(t64([1, 2, 3, 4, 5, 6], [2, 3])).toNested(), [[1, 4], [2, 5], [3, 6]]);
    assert.deepEqual([...reshape(x, [-1, 8]).shape], [3, 8]);
  });

  test('shape errors name the shapes', () => {
    assert.throws(() => concat([r([2, 3]), r([3, 3])], 1), /concat.*\[2, 3\].*\[3, 3\]/);
    assert.throws(() => concat([r([2, 3]), r([2, 3, 1])], 0), /concat.*\[2, 3\].*\[2, 3, 1\]/);
    assert.throws(() => concat([]), /at least one/);
    assert.throws(() => reshape(r([2, 3]), [4, 2]), /\[2, 3\].*\[4, 2\]/);
    assert.throws(() => reshape(r([2, 3]), [4, -1]), /cannot infer.*\[2, 3\].*\[4, -1\]/);
    assert.throws(() => permute(r([2, 3, 4]), [0, 0, 1]), /\[0, 0, 1\].*\[2, 3, 4\]/);
    assert.throws(() => permute(r([2, 3]), [1, 0, 2]), /not a permutation/);
    assert.throws(() => slice(r([2, 3]), 1, 2, 2), /\[2, 4\).*size 3.*\[2, 3\]/);
    assert.throws(() => split(r([2, 5]), [2, 2], 1), /split.*\[2, 2\].*5/);
    assert.throws(() => stack([r([2, 3]), r([3, 2])]), /\[1, 2, 3\].*\[1, 3, 2\]/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('softmax family', () => {
  test('softmax on [3, 5]', () => gradcheck(([x]) => softmax(x), [r([3, 5], -2, 2)]));
  test('logSoftmax on [3, 5]', () => gradcheck(([x]) => logSoftmax(x), [r([3, 5], -2, 2)]));
  test('softmax / logSoftmax on rank 3, explicit last axis', () => {
    gradcheck(([x]) => softmax(x, 2), [r([2, 3, 4], -2, 2)]);
    gradcheck(([x]) => logSoftmax(x, -1), [r([2, 3, 4], -2, 2)]);
  });
  test('forward values, large logits stay finite', () => {
    const x = t64([1, 2, 3, 1000, 1001, 1002], [2, 3]);
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const z = e[0] + e[1] + e[2];
    const p = e.map((v) => v / z);
    assertClose(flat(softmax(x)), [...p, ...p], 1e-15, 'softmax');
    assertClose(flat(logSoftmax(x)), [...p, ...p].map(Math.log), 1e-13, 'logSoftmax');
  });
  test('only the last axis is supported', () => {
    assert.throws(() => softmax(r([2, 3]), 0), /last axis.*axis 0.*\[2, 3\]/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('crossEntropy', () => {
  const targets = [1, 4, 0, 2];
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    test(`plain, reduction ${reduction}`, () => {
      gradcheck(([x]) => crossEntropy(x, targets, { reduction }), [r([4, 5], -2, 2)]);
    });
    test(`ignoreIndex (default -100), reduction ${reduction}`, () => {
      gradcheck(([x]) => crossEntropy(x, [1, -100, 0, -100], { reduction }), [r([4, 5], -2, 2)]);
    });
    test(`custom ignoreIndex inside the class range, reduction ${reduction}`, () => {
      gradcheck(([x]) => crossEntropy(x, [1, 3, 3, 2], { ignoreIndex: 3, reduction }), [r([4, 5], -2, 2)]);
    });
    test(`mask, reduction ${reduction}`, () => {
      gradcheck(([x]) => crossEntropy(x, targets, { mask: [1, 0, 0.5, 1], reduction }), [r([4, 5], -2, 2)]);
    });
    test(`mask and ignoreIndex on 3-D logits, reduction ${reduction}`, () => {
      gradcheck(
        ([x]) => crossEntropy(x, [0, 1, -100, 3, 2, 1], { mask: [1, 1, 1, 0, 1, 0.25], reduction }),
        [r([2, 3, 4], -2, 2)],
      );
    });
  }

  for (const reduction of ['mean', 'sum', 'none'] as const) {
    test(`labelSmoothing with ignoreIndex and mask, reduction ${reduction}`, () => {
      gradcheck(
        ([x]) => crossEntropy(x, [0, 1, -100, 3, 2, 1], { labelSmoothing: 0.15, mask: [1, 1, 1, 0, 1, 0.25], reduction }),
        [r([2, 3, 4], -2, 2)],
      );
    });
  }

  test('labelSmoothing: loss and gradient equal PyTorch label_smoothing (test/fixtures/torch_losses.json)', () => {
    const fx = JSON.parse(readFileSync(new URL('./fixtures/torch_losses.json', import.meta.url), 'utf8')) as {
      crossEntropy: { logits: number[]; shape: [number, number]; targets: number[]; options: { labelSmoothing: number; ignoreIndex: number; reduction: Reduction }; loss: number[]; grad: number[] }[];
    };
    assert.ok(fx.crossEntropy.some((c) => c.options.labelSmoothing > 0));
    for (const c of fx.crossEntropy) {
      const name = JSON.stringify(c.options);
      const x = tensor(c.logits, c.shape, { dtype: 'float64', requiresGrad: true });
      const loss = crossEntropy(x, c.targets, c.options);
      assertClose(flat(loss), c.loss, 1e-12, `loss ${name}`);
      backward(c.options.reduction === 'none' ? sum(loss) : loss);
      assertClose(flat(x.grad!), c.grad, 1e-12, `grad ${name}`);
    }
    assert.throws(() => crossEntropy(tensor([1, 2], [1, 2]), [0], { labelSmoothing: 1 }), /labelSmoothing must be in \[0, 1\), got 1/);
  });

  /** −log softmax(row)[t], by hand. */
  function nll(row: number[], t: number): number {
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    return lse - row[t];
  }

  test('forward equals −log softmax at target, averaged over non-ignored rows', () => {
    const x = randomTensor([5, 4], rng, { lo: -3, hi: 3 });
    const v = flat(x);
    const rows = [0, 1, 2, 3, 4].map((i) => v.slice(i * 4, i * 4 + 4));
    const tg = [2, -100, 0, 3, -100];
    const kept = [0, 2, 3];
    const want = kept.reduce((s, i) => s + nll(rows[i], tg[i]), 0) / kept.length;
    assertClose([crossEntropy(x, tg).item()], [want], 1e-14, 'ce mean');
    assertClose([crossEntropy(x, tg, { reduction: 'sum' }).item()], [want * 3], 1e-14, 'ce sum');
    const none = crossEntropy(x, tg, { reduction: 'none' });
    assert.deepEqual([...none.shape], [5]);
    assertClose(flat(none), tg.map((t, i) => (t === -100 ? 0 : nll(rows[i], t))), 1e-14, 'ce none');
    // agrees with logSoftmax
    const ls = flat(logSoftmax(x));
    assertClose([crossEntropy(x, tg).item()], [-(ls[0 * 4 + 2] + ls[2 * 4 + 0] + ls[3 * 4 + 3]) / 3], 1e-14, 'ce vs logSoftmax');
  });

  test('mask: weighted mean divides by the total weight', () => {
    const x = randomTensor([3, 4], rng, { lo: -3, hi: 3 });
    const v = flat(x);
    const rows = [0, 1, 2].map((i) => v.slice(i * 4, i * 4 + 4));
    const tg = [1, 2, 3];
    const mask = [1, 0.5, 0];
    const want = (nll(rows[0], 1) + 0.5 * nll(rows[1], 2)) / 1.5;
    assertClose([crossEntropy(x, tg, { mask }).item()], [want], 1e-14, 'masked mean');
  });

  test('gradient of the mean is (softmax − onehot)/N on kept rows, 0 on ignored rows', () => {
    const x = randomTensor([3, 4], rng, { requiresGrad: true });
    const loss = crossEntropy(x, [1, -100, 2]);
    backward(loss);
    const p = flat(softmax(x.detach()));
    const want = p.map((v, k) => {
      const row = Math.floor(k / 4), c = k % 4;
      if (row === 1) return 0;
      const t = row === 0 ? 1 : 2;
      return (v - (c === t ? 1 : 0)) / 2;
    });
    assertClose(flat(x.grad!), want, 1e-14, 'ce grad');
  });

  test('all rows ignored: mean is NaN (as PyTorch), sum is 0', () => {
    const x = randomTensor([2, 3], rng);
    assert.ok(Number.isNaN(crossEntropy(x, [-100, -100]).item()));
    assert.equal(crossEntropy(x, [-100, -100], { reduction: 'sum' }).item(), 0);
  });

  test('errors', () => {
    assert.throws(() => crossEntropy(r([4, 5]), [1, 2, 3]), /3 targets.*\[4, 5\].*expected 4/);
    assert.throws(() => crossEntropy(r([4, 5]), [1, 2, 3, 5]), /target 5/);
    assert.throws(() => crossEntropy(r([2, 5]), [1, 2], { mask: [1] }), /mask has 1 entries, expected 2/);
    assert.throws(() => crossEntropy(r([2, 5]), [1, 2], { reduce: 'sum' } as never), /unknown option 'reduce'/);
    assert.throws(() => crossEntropy(r([2, 5]), [1, 2], { reduction: 'avg' as never }), /reduction must be/);
    assert.throws(() => crossEntropy(r([2, 5]), [1, 1.5]), /not an integer/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('embedding', () => {
  test('gradcheck with repeated ids (scatter-add)', () => {
    gradcheck(([w]) => embedding(w, [1, 3, 1, 0, 1, 3], [2, 3]), [r([5, 4])]);
  });
  test('repeated ids accumulate exactly', () => {
    const w = randomTensor([4, 2], rng, { requiresGrad: true });
    const out = embedding(w, [2, 2, 0, 2]);
    backward(out, t64([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]));
    assert.deepEqual(flat(w.grad!), [5, 6, 0, 0, 1 + 3 + 7, 2 + 4 + 8, 0, 0]);
  });
  test('forward rows and shape', () => {
    const w = t64([0, 1, 10, 11, 20, 21], [3, 2]);
    const out = embedding(w, [2, 0, 2, 1], [2, 2]);
    assert.deepEqual([...out.shape], [2, 2, 2]);
    assert.deepEqual(out.toNested(), [[[20, 21], [0, 1]], [[20, 21], [10, 11]]]);
  });
  test('errors', () => {
    assert.throws(() => embedding(r([3, 2]), [0, 3]), /index 3 at position 1 is outside \[0, 3\)/);
    assert.throws(() => embedding(r([3, 2]), [-1]), /index -1/);
    assert.throws(() => embedding(r([3]), [0]), /weight must be.*\[3\]/);
    assert.throws(() => embedding(r([3, 2]), [0, 1, 2], [2, 2]), /3 ids do not fill shape \[2, 2\]/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('maxOverTime', () => {
  test('gradcheck with and without lengths (random values: no ties within a step of the difference)', () => {
    gradcheck(([x]) => maxOverTime(x), [r([5, 3, 4])]);
    gradcheck(([x]) => maxOverTime(x, [5, 1, 3]), [r([5, 3, 4])]);
  });
  test('forward: each sequence to its length, the padding never wins; the first maximum takes the gradient', () => {
    // x [T 3, B 2, F 2]: sequence 1 has length 1, its later steps hold larger values that must not count
    const x = t64([1, 5, 0, 0, 4, 5, 9, 9, 4, -1, 9, 9], [3, 2, 2]);
    x.requiresGrad = true;
    const y = maxOverTime(x, [3, 1]);
    assert.deepEqual(y.toNested(), [[4, 5], [0, 0]]);
    backward(y, t64([10, 20, 30, 40], [2, 2]));
    // b 0, f 0: 4 at t 1 and t 2, the first wins; b 0, f 1: 5 at t 0 and t 1, the first wins
    assert.deepEqual(flat(x.grad!), [0, 20, 30, 40, 10, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(maxOverTime(t64([1, 5, 0, 0, 4, 5, 9, 9, 4, -1, 9, 9], [3, 2, 2])).toNested(), [[4, 5], [9, 9]]);
  });
  test('a NaN wins (as PyTorch\'s max) and takes the gradient', () => {
    const x = t64([1, 2, NaN, 3, 7, NaN], [3, 1, 2]);
    x.requiresGrad = true;
    const y = maxOverTime(x);
    assert.ok(Number.isNaN(y.toArray()[0]) && Number.isNaN(y.toArray()[1]));
    backward(y, t64([1, 1], [1, 2]));
    assert.deepEqual(flat(x.grad!), [0, 0, 1, 0, 0, 1]);
  });
  test('errors', () => {
    assert.throws(() => maxOverTime(r([3, 2])), /x must be \[T, B, F\], got \[3, 2\]/);
    assert.throws(() => maxOverTime(r([3, 2, 1]), [1]), /1 lengths for a batch of 2/);
    assert.throws(() => maxOverTime(r([3, 2, 1]), [1, 4]), /length 4 of sequence 1 is outside \[1, 3\]/);
    assert.throws(() => maxOverTime(r([3, 2, 1]), [0, 2]), /length 0 of sequence 0 is outside \[1, 3\]/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('dropout', () => {
  const p = 0.4;
  test('gradcheck with a fixed seed', () => {
    gradcheck(([x]) => dropout(x, p, true, new Rng(99)), [r([3, 5])]);
  });
  test('gradient equals the mask drawn from the seeded RNG', () => {
    const x = randomTensor([4, 6], rng, { requiresGrad: true });
    const out = dropout(x, p, true, new Rng(5));
    const ref = new Rng(5);
    const mask = Array.from({ length: 24 }, () => (ref.random() < p ? 0 : 1 / (1 - p)));
    assert.ok(mask.some((m) => m === 0) && mask.some((m) => m !== 0), 'mask should have both kinds');
    assertClose(flat(out), flat(x).map((v, i) => v * mask[i]), 1e-15, 'dropout forward');
    backward(sum(out));
    assertClose(flat(x.grad!), mask, 1e-15, 'dropout grad');
  });
  test('identity when not training or p = 0', () => {
    const x = r([3]);
    assert.equal(dropout(x, 0.5, false), x);
    assert.equal(dropout(x, 0, true), x);
  });
  test('p outside [0, 1) is refused', () => {
    assert.throws(() => dropout(r([3]), 1, true), /p must be in \[0, 1\), got 1/);
    assert.throws(() => dropout(r([3]), -0.1, true), /got -0.1/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('regression and binary losses', () => {
  for (const reduction of ['mean', 'sum', 'none'] as const) {
    test(`mseLoss ${reduction}`, () => gradcheck(([a, b]) => mseLoss(a, b, reduction), [r([3, 4]), r([3, 4])]));
    test(`bceWithLogits ${reduction}`, () => {
      gradcheck(([x, y]) => bceWithLogits(x, y, reduction), [r([3, 4], -3, 3), r([3, 4], 0, 1)]);
    });
  }
  test('forward values', () => {
    const a = t64([1, 2, 3]), b = t64([1, 0, 5]);
    assert.equal(mseLoss(a, b).item(), (0 + 4 + 4) / 3);
    assert.equal(mseLoss(a, b, 'sum').item(), 8);
    const x = t64([-2, 0, 3]), y = t64([0, 1, 1]);
    const want = [-2, 0, 3].map((v, i) => {
      const s = 1 / (1 + Math.exp(-v));
      const t = [0, 1, 1][i];
      return -(t * Math.log(s) + (1 - t) * Math.log(1 - s));
    });
    assertClose(flat(bceWithLogits(x, y, 'none')), want, 1e-14, 'bce none');
    assertClose([bceWithLogits(x, y).item()], [(want[0] + want[1] + want[2]) / 3], 1e-14, 'bce mean');
    assertClose([bceWithLogits(t64([800]), t64([0])).item()], [800], 1e-15, 'bce stable for large logits');
  });
  test('size mismatch names both shapes', () => {
    assert.throws(() => mseLoss(r([2, 3]), r([3, 3])), /mseLoss.*\[2, 3\].*\[3, 3\]/);
    assert.throws(() => bceWithLogits(r([4]), r([2, 3])), /bceWithLogits.*\[4\].*\[2, 3\]/);
  });
  test('same size, different shape: pair element-wise or refuse, never broadcast', () => {
    // [3] vs [3, 1] hold the same number of elements, so the size check passes; the loss must then
    // either pair element i with element i or refuse with both shapes, but not broadcast.
    const a = t64([1, 2, 3]), b = t64([1, 2, 4], [3, 1]);
    const check = (f: () => Tensor, pairwise: number): void => {
      let v: number;
      try {
        v = f().item();
      } catch (e) {
        assert.match((e as Error).message, /\[3\].*\[3, 1\]/);
        return;
      }
      assertClose([v], [pairwise], 1e-12, 'pairwise loss');
    };
    check(() => mseLoss(a, b, 'sum'), 1);
    const x = t64([-2, 0, 3]), y = t64([0, 1, 1], [3, 1]);
    const pair = [-2, 0, 3].reduce((s, v, i) => s + Math.log1p(Math.exp(v)) - v * [0, 1, 1][i], 0);
    check(() => bceWithLogits(x, y, 'sum'), pair);
  });
});
