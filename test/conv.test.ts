/**
 * conv2d, maxPool2d, avgPool2d: forward values against a direct (naive) computation, float64
 * finite-difference gradient checks over strides, paddings, odd sizes and batch 1, and the modules.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Rng } from '../src/tensor/rng.ts';
import { type Shape, type Tensor } from '../src/tensor/tensor.ts';
import { avgPool2d, conv2d, convOutSize, maxPool2d } from '../src/autograd/ops/conv.ts';
import { relu, sum, tanh } from '../src/autograd/ops/elementwise.ts';
import { backward } from '../src/autograd/tape.ts';
import { Conv2d, Flatten, MaxPool2d, AvgPool2d } from '../src/nn/conv.ts';
import { assertClose, gradcheck, randomTensor, t64 } from './helpers/gradcheck.ts';

const rng = new Rng(31337);
const r = (shape: Shape): Tensor => randomTensor(shape, rng, { requiresGrad: true });

/** Direct convolution, the definition: y[n,o,i,j] = b[o] + Σ_c,a,b x[n,c,i·s+a−p, j·s+b−p]·w[o,c,a,b]. */
function naiveConv(x: Tensor, w: Tensor, b: Tensor | null, s: [number, number], p: [number, number]): number[] {
  const [N, C, H, W] = x.shape;
  const [O, , kh, kw] = w.shape;
  const Ho = convOutSize(H, kh, s[0], p[0]), Wo = convOutSize(W, kw, s[1], p[1]);
  const xv = x.toArray(), wv = w.toArray(), bv = b ? b.toArray() : null;
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    let acc = bv ? bv[o] : 0;
    for (let c = 0; c < C; c++) for (let a = 0; a < kh; a++) for (let e = 0; e < kw; e++) {
      const rr = i * s[0] + a - p[0], cc = j * s[1] + e - p[1];
      if (rr < 0 || rr >= H || cc < 0 || cc >= W) continue;
      acc += xv[((n * C + c) * H + rr) * W + cc] * wv[((o * C + c) * kh + a) * kw + e];
    }
    out.push(acc);
  }
  return out;
}

const CASES: { name: string; x: Shape; w: Shape; stride: [number, number]; padding: [number, number]; bias: boolean }[] = [
  { name: '3×3 s1 p0', x: [2, 2, 5, 5], w: [3, 2, 3, 3], stride: [1, 1], padding: [0, 0], bias: true },
  { name: '3×3 s1 p1 (same)', x: [1, 3, 4, 4], w: [2, 3, 3, 3], stride: [1, 1], padding: [1, 1], bias: true },
  { name: '3×3 s2 p1 odd input', x: [2, 1, 5, 7], w: [2, 1, 3, 3], stride: [2, 2], padding: [1, 1], bias: false },
  { name: '2×3 kernel, stride [1,2], padding [0,1]', x: [1, 2, 4, 5], w: [3, 2, 2, 3], stride: [1, 2], padding: [0, 1], bias: true },
  { name: '1×1 kernel', x: [2, 3, 3, 2], w: [4, 3, 1, 1], stride: [1, 1], padding: [0, 0], bias: true },
  { name: 'stride 3, large padding', x: [1, 1, 4, 4], w: [1, 1, 3, 3], stride: [3, 3], padding: [2, 2], bias: true },
];

describe('conv2d', () => {
  for (const c of CASES) {
    test(`forward = direct convolution: ${c.name}`, () => {
      const x = r(c.x), w = r(c.w), b = c.bias ? r([c.w[0]]) : null;
      const y = conv2d(x, w, b, { stride: c.stride, padding: c.padding });
      const Ho = convOutSize(c.x[2], c.w[2], c.stride[0], c.padding[0]);
      const Wo = convOutSize(c.x[3], c.w[3], c.stride[1], c.padding[1]);
      assert.deepEqual([...y.shape], [c.x[0], c.w[0], Ho, Wo]);
      assertClose(y.toArray(), naiveConv(x, w, b, c.stride, c.padding), 1e-12, c.name);
    });
    test(`gradcheck: ${c.name}`, () => {
      const x = r(c.x), w = r(c.w), b = c.bias ? r([c.w[0]]) : null;
      gradcheck(() => conv2d(x, w, b, { stride: c.stride, padding: c.padding }), b ? [x, w, b] : [x, w], { name: c.name });
    });
  }

  test('a hand-computed value', () => {
    // x = 1..9 on a 3×3 grid, kernel [[1, 0], [0, −1]], no padding: y = x[i,j] − x[i+1,j+1] = −4
    const x = t64([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    const w = t64([1, 0, 0, -1], [1, 1, 2, 2]);
    assert.deepEqual([...conv2d(x, w).toArray()], [-4, -4, -4, -4]);
  });

  test('only the weight (or only the input) requires grad', () => {
    const x = randomTensor([1, 2, 4, 4], rng), w = r([2, 2, 3, 3]);
    gradcheck(() => conv2d(x, w, null, { padding: 1 }), [w]);
    const x2 = r([1, 2, 4, 4]), w2 = randomTensor([2, 2, 3, 3], rng);
    gradcheck(() => conv2d(x2, w2, null, { stride: 2 }), [x2]);
  });

  test('rejects bad shapes and options with clear messages', () => {
    assert.throws(() => conv2d(r([2, 3, 4]), r([1, 3, 3, 3])), /input must be \[N, C, H, W\]/);
    assert.throws(() => conv2d(r([1, 2, 4, 4]), r([1, 3, 3, 3])), /expects 3 input channels.*has 2/);
    assert.throws(() => conv2d(r([1, 1, 2, 2]), r([1, 1, 3, 3])), /larger than the padded input/);
    assert.throws(() => conv2d(r([1, 1, 4, 4]), r([1, 1, 3, 3]), r([2])), /bias must be \[1\]/);
    assert.throws(() => conv2d(r([1, 1, 4, 4]), r([1, 1, 3, 3]), null, { stride: 0 }), /stride/);
    assert.throws(() => conv2d(r([1, 1, 4, 4]), r([1, 1, 3, 3]), null, { dilation: 2 } as never), /unknown option 'dilation'/);
  });
});

describe('pooling', () => {
  test('maxPool2d forward values, ties and padding', () => {
    const x = t64([1, 5, 2, 0, 3, 4, 9, 9, 7, 8, 6, 1, 0, 0, 2, 3], [1, 1, 4, 4]);
    assert.deepEqual([...maxPool2d(x, 2).toArray()], [5, 9, 8, 6]);
    assert.deepEqual([...maxPool2d(x, 3, { stride: 1 }).toArray()], [9, 9, 9, 9]);
    assert.deepEqual([...maxPool2d(x, [2, 4], { stride: [2, 1] }).toArray()], [9, 8]);
    // padding 1 with kernel 2, stride 2: windows are clipped to the input; pads never win
    const neg = t64([-1, -2, -3, -4], [1, 1, 2, 2]);
    assert.deepEqual([...maxPool2d(neg, 2, { stride: 2, padding: 1 }).toArray()], [-1, -2, -3, -4]);
  });

  test('maxPool2d gradient goes to the first maximum only (ties)', () => {
    const x = t64([1, 1, 1, 1, 2, 2, 2, 2], [1, 2, 2, 2], true);
    backward(sum(maxPool2d(x, 2)));
    assert.deepEqual([...x.grad!.toArray()], [1, 0, 0, 0, 1, 0, 0, 0]);
  });

  test('maxPool2d with padding: a tie goes to the first real element of the window; a NaN wins and takes the gradient', () => {
    const x = t64(new Array(9).fill(5), [1, 1, 3, 3], true);
    const y = maxPool2d(x, 2, { stride: 2, padding: 1 });
    assert.deepEqual([...y.toArray()], [5, 5, 5, 5]);
    backward(sum(y));
    // windows (rows × cols): {0}×{0}, {0}×{1,2}, {1,2}×{0}, {1,2}×{1,2}: each one's first real element
    assert.deepEqual([...x.grad!.toArray()], [1, 1, 0, 1, 1, 0, 0, 0, 0]);
    const z = t64([1, NaN, 3, NaN], [1, 1, 2, 2], true);
    const m = maxPool2d(z, 2);
    assert.ok(Number.isNaN(m.toArray()[0]));
    backward(m, t64([1], [1, 1, 1, 1]));
    assert.deepEqual([...z.grad!.toArray()], [0, 1, 0, 0]);
  });

  for (const [name, shape, k, s, p] of [
    ['2×2 s2', [2, 2, 4, 4], 2, 2, 0],
    ['3×3 s2 odd input', [1, 3, 5, 7], 3, 2, 0],
    ['3×3 s1 padding 1', [1, 2, 4, 3], 3, 1, 1],
    ['2×2 s2 floor (odd)', [2, 1, 5, 5], 2, 2, 0],
  ] as [string, Shape, number, number, number][]) {
    test(`maxPool2d gradcheck ${name}`, () => {
      const x = r(shape); // continuous values: ties have probability 0
      gradcheck(() => maxPool2d(x, k, { stride: s, padding: p }), [x], { name });
    });
    if (p === 0) {
      test(`avgPool2d gradcheck ${name}`, () => {
        const x = r(shape);
        gradcheck(() => avgPool2d(x, k, { stride: s }), [x], { name });
      });
    }
  }

  test('avgPool2d forward values', () => {
    const x = t64([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]);
    assert.deepEqual([...avgPool2d(x, 2).toArray()], [3.5, 5.5, 11.5, 13.5]);
    assert.throws(() => avgPool2d(x, 2, { padding: 1 }), /padding is not supported/);
    assert.throws(() => maxPool2d(x, 5), /larger than the input/);
  });
});

describe('modules', () => {
  test('Conv2d: PyTorch names, shapes and init range', () => {
    const m = new Conv2d(3, 8, 3, { padding: 1, rng: new Rng(1) });
    assert.deepEqual(m.namedParameters().map(([n, p]) => [n, [...p.shape]]), [['weight', [8, 3, 3, 3]], ['bias', [8]]]);
    // U(−k, k) with k = 1/√fan_in for the 216 weights and the 8 biases. With Rng(1): max|w| = 0.995k,
    // |mean w| = 0.037k (its standard deviation is k/√(3·216) = 0.039k), max|b| = 0.75k.
    const k = 1 / Math.sqrt(27);
    const w = Array.from(m.weight.toArray()), b = Array.from(m.bias!.toArray());
    for (const v of w) assert.ok(Math.abs(v) <= k, `weight ${v} outside ±${k}`);
    assert.ok(Math.max(...w.map(Math.abs)) > 0.9 * k, 'the weights fill the range');
    assert.ok(Math.abs(w.reduce((a, c) => a + c, 0) / w.length) < 0.15 * k, 'the weights are centred');
    for (const v of b) assert.ok(Math.abs(v) <= k, `bias ${v} outside ±${k}`);
    assert.ok(Math.max(...b.map(Math.abs)) > 0.25 * k, 'the bias is not zero-initialised');
    assert.throws(() => new Conv2d(3, 8, 3, { groups: 2 } as never), /unknown option 'groups'/);
    assert.throws(() => new Conv2d(3, 8, 0), /kernelSize/);
  });

  test('a small CNN gradchecks end to end (conv → relu → maxpool → conv → avgpool → flatten)', () => {
    const rr = new Rng(5);
    const c1 = new Conv2d(2, 3, 3, { padding: 1, dtype: 'float64', rng: rr });
    const c2 = new Conv2d(3, 2, 2, { stride: 1, dtype: 'float64', rng: rr });
    const pool = new MaxPool2d(2), avg = new AvgPool2d(2), flat = new Flatten();
    const x = r([2, 2, 6, 6]);
    gradcheck(() => flat.forward(avg.forward(tanh(c2.forward(pool.forward(relu(c1.forward(x))))))), [x, ...c1.parameters(), ...c2.parameters()], { name: 'cnn', atol: 1e-6 });
  });
});
